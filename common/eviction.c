/*
 * eviction.c -- names, parsing and properties of eviction strategies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eviction.h"

static const char *weights_names[] = { "retain", "offload", "discard" };
static const char *weights_titles[] = { "Retain", "Offload", "Discard" };
static const char *process_names[] = {
	"keep_running", "cuda_suspend", "checkpoint", "stop"
};
static const char *process_titles[] = {
	"KeepRunning", "CudaSuspend", "Checkpoint", "Stop"
};

const char *
eviction_weights_name(enum weights_strategy w)
{
	return ((unsigned)w < WEIGHTS__COUNT ? weights_names[w] : "?");
}

const char *
eviction_process_name(enum process_strategy p)
{
	return ((unsigned)p < PROCESS__COUNT ? process_names[p] : "?");
}

const char *
eviction_weights_title(enum weights_strategy w)
{
	return ((unsigned)w < WEIGHTS__COUNT ? weights_titles[w] : "?");
}

const char *
eviction_process_title(enum process_strategy p)
{
	return ((unsigned)p < PROCESS__COUNT ? process_titles[p] : "?");
}

int
eviction_weights_parse(const char *s, enum weights_strategy *out)
{
	for (int i = 0; i < WEIGHTS__COUNT; i++) {
		if (strcmp(s, weights_names[i]) == 0 ||
		    strcmp(s, weights_titles[i]) == 0) {
			*out = (enum weights_strategy)i;
			return (0);
		}
	}
	return (-1);
}

int
eviction_process_parse(const char *s, enum process_strategy *out)
{
	for (int i = 0; i < PROCESS__COUNT; i++) {
		if (strcmp(s, process_names[i]) == 0 ||
		    strcmp(s, process_titles[i]) == 0) {
			*out = (enum process_strategy)i;
			return (0);
		}
	}
	return (-1);
}

int
eviction_from_level(long level, struct eviction *out)
{
	static const struct eviction levels[] = {
		{ WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING },
		{ WEIGHTS_DISCARD, PROCESS_KEEP_RUNNING },
		{ WEIGHTS_RETAIN, PROCESS_CUDA_SUSPEND },
		{ WEIGHTS_DISCARD, PROCESS_CHECKPOINT },
		{ WEIGHTS_RETAIN, PROCESS_STOP },
	};

	if (level < 1 || level > 5)
		return (-1);
	*out = levels[level - 1];
	return (0);
}

int
eviction_parse(const char *s, struct eviction *out)
{
	const char	*plus;
	char		 w[32], *end;
	long		 level;
	size_t		 len;

	if ((plus = strchr(s, '+')) == NULL) {
		level = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0')
			return (-1);
		return (eviction_from_level(level, out));
	}
	len = (size_t)(plus - s);
	if (len >= sizeof(w))
		return (-1);
	memcpy(w, s, len);
	w[len] = '\0';
	if (eviction_weights_parse(w, &out->weights) != 0)
		return (-1);
	return (eviction_process_parse(plus + 1, &out->process));
}

const char *
eviction_format(const struct eviction *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s+%s", eviction_weights_name(e->weights),
	    eviction_process_name(e->process));
	return (buf);
}

bool
eviction_keeps_gpu_context(const struct eviction *e)
{
	return (e->process == PROCESS_KEEP_RUNNING);
}

bool
eviction_keeps_process(const struct eviction *e)
{
	return (e->process == PROCESS_KEEP_RUNNING ||
	    e->process == PROCESS_CUDA_SUSPEND);
}
