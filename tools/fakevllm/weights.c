/*
 * weights.c -- anonymous memory that stands for a model's GPU weights, so
 * that a test can watch the process's RSS move as vLLM's GPU memory does:
 * mapped and touched at start, kept by sleep level 1, unmapped by level 2,
 * mapped again (untouched) by wake_up and touched by reload_weights.
 * Touching goes a chunk at a time so the event loop is never held long.
 */
#include <sys/mman.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fakevllm.h"

#define WEIGHTS_CHUNK	(32 * 1024 * 1024)

static unsigned char	*weights_base;
static size_t		 weights_size;
static size_t		 weights_touched;

/* Map size bytes (not yet resident). */
int
fv_weights_map(size_t size)
{
	void	*p;

	if (weights_base != NULL || size == 0)
		return (0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return (-1);
	weights_base = p;
	weights_size = size;
	weights_touched = 0;
	return (0);
}

void
fv_weights_unmap(void)
{
	if (weights_base == NULL)
		return;
	munmap(weights_base, weights_size);
	weights_base = NULL;
	weights_size = 0;
	weights_touched = 0;
}

void
fv_weights_touch_reset(void)
{
	weights_touched = 0;
}

/* Write to the next chunk of pages; returns 1 once everything is resident. */
int
fv_weights_touch_step(void)
{
	size_t	end, off, page = (size_t)sysconf(_SC_PAGESIZE);

	if (weights_base == NULL || weights_touched >= weights_size)
		return (1);
	end = weights_touched + WEIGHTS_CHUNK;
	if (end > weights_size)
		end = weights_size;
	/* Non-zero bytes, so that no page can stay the shared zero page. */
	for (off = weights_touched; off < end; off += page)
		weights_base[off] = (unsigned char)(off / page) | 1;
	weights_touched = end;
	return (weights_touched >= weights_size);
}

size_t
fv_weights_bytes(void)
{
	return (weights_size);
}

int
fv_weights_mapped(void)
{
	return (weights_base != NULL);
}

/* VmRSS of a process in KiB, or -1. */
long
fv_weights_rss_kb(pid_t pid)
{
	FILE	*f;
	char	 path[64], line[256];
	long	 kb = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			if (sscanf(line + 6, "%ld", &kb) != 1)
				kb = -1;
			break;
		}
	}
	fclose(f);
	return (kb);
}
