/*
 * gpu_copy.c -- the device-run's small CUDA driver-API program
 * (tests/gpu/device-run.sh), through dlopen (tools/fakevllm/cudadrv.c):
 *
 *     gpu_copy info                 the device: name, memory, driver
 *     gpu_copy bandwidth [MIB]      host<->device copy GB/s (pinned and
 *                                   pageable) and pinned allocation GB/s
 *     gpu_copy hold MIB             hold MIB of known data on the device,
 *                                   print "READY pid=...", wait for a line
 *                                   on stdin, then check every byte:
 *                                   "DATA OK" (exit 0) or "DATA CORRUPT"
 *
 * Results are key=value lines. The bandwidth is the physical limit of an
 * offload (sleep level 1) and of a CUDA suspend, which both copy device
 * memory to host memory and back. Built by `make device-bundle`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "tools/fakevllm/cudadrv.h"
#include "tools/fakevllm/fakevllm.h"

#define MIB		((size_t)1 << 20)
#define CHUNK		((size_t)1 << 30)
#define STAGING		((size_t)64 << 20)
#define HOLD_SEED	0x686f6c6465720001ULL

static struct fv_cuda	cu;

static void __attribute__((noreturn))
die(const char *what, int rc)
{
	char	buf[160];

	printf("error=\"%s: %s\"\n", what, fv_cudadrv_strerror(&cu, rc, buf,
	    sizeof(buf)));
	exit(1);
}

static double
gbs(size_t bytes, int64_t us)
{
	return (us > 0 ? (double)bytes / 1e3 / (double)us : 0.0);
}

static int
cmd_info(void)
{
	size_t	free_b = 0, total = 0;
	int	v = 0, n = 0, rc;

	cu.DriverGetVersion(&v);
	cu.DeviceGetCount(&n);
	if ((rc = cu.MemGetInfo(&free_b, &total)) != 0)
		die("cuMemGetInfo", rc);
	printf("device=\"%s\"\ndevices=%d\ncuda_api=%d.%d\ntotal_bytes=%zu\n"
	    "free_bytes=%zu\n", cu.name, n, v / 1000, v % 1000 / 10,
	    cu.total, free_b);
	return (0);
}

/* The best of REPS copies of n bytes each way, in µs. */
static void
copy_times(uint64_t d, void *h, size_t n, int reps, int64_t *htod,
    int64_t *dtoh)
{
	int64_t	t;
	int	rc;

	*htod = *dtoh = INT64_MAX;
	for (int i = 0; i < reps; i++) {
		t = clock_us();
		if ((rc = cu.MemcpyHtoD(d, h, n)) != 0)
			die("cuMemcpyHtoD", rc);
		if ((t = clock_us() - t) < *htod)
			*htod = t;
		t = clock_us();
		if ((rc = cu.MemcpyDtoH(h, d, n)) != 0)
			die("cuMemcpyDtoH", rc);
		if ((t = clock_us() - t) < *dtoh)
			*dtoh = t;
	}
}

static int
cmd_bandwidth(size_t mib)
{
	size_t		 n = mib * MIB;
	uint64_t	 d;
	void		*pinned;
	unsigned char	*pageable;
	int64_t		 t, pin, h1, d1, h2, d2;
	int		 rc;

	if ((rc = cu.MemAlloc(&d, n)) != 0)
		die("cuMemAlloc", rc);
	t = clock_us();
	if ((rc = cu.MemAllocHost(&pinned, n)) != 0)
		die("cuMemAllocHost", rc);
	pin = clock_us() - t;
	if ((pageable = malloc(n)) == NULL) {
		printf("error=\"out of host memory\"\n");
		return (1);
	}
	memset(pageable, 1, n);
	memset(pinned, 1, n);
	copy_times(d, pinned, n, 1, &h1, &d1);	/* warm up */
	copy_times(d, pinned, n, 3, &h1, &d1);
	copy_times(d, pageable, n, 3, &h2, &d2);
	printf("bytes=%zu\nhtod_pinned_gbs=%.2f\ndtoh_pinned_gbs=%.2f\n"
	    "htod_pageable_gbs=%.2f\ndtoh_pageable_gbs=%.2f\n"
	    "pinned_alloc_gbs=%.2f\n", n, gbs(n, h1), gbs(n, d1), gbs(n, h2),
	    gbs(n, d2), gbs(n, pin));
	cu.MemFreeHost(pinned);
	free(pageable);
	cu.MemFree(d);
	return (0);
}

static int
cmd_hold(size_t mib)
{
	size_t		 total = mib * MIB, nblocks = (total + CHUNK - 1) / CHUNK;
	size_t		 size, off, n;
	uint64_t	*d;
	unsigned char	*stage;
	char		 line[64];
	int64_t		 t, bad;
	int		 rc;

	if ((d = calloc(nblocks, sizeof(*d))) == NULL)
		return (1);
	if ((rc = cu.MemAllocHost((void **)&stage, STAGING)) != 0)
		die("cuMemAllocHost", rc);
	fv_pattern_base(stage, STAGING, HOLD_SEED);
	t = clock_us();
	for (size_t b = 0; b < nblocks; b++) {
		size = b + 1 < nblocks ? CHUNK : total - b * CHUNK;
		if ((rc = cu.MemAlloc(&d[b], size)) != 0)
			die("cuMemAlloc", rc);
		for (off = 0; off < size; off += n) {
			n = size - off < STAGING ? size - off : STAGING;
			fv_pattern_stamp(stage, n, HOLD_SEED, (uint32_t)b, off);
			if ((rc = cu.MemcpyHtoD(d[b] + off, stage, n)) != 0)
				die("cuMemcpyHtoD", rc);
		}
	}
	printf("READY pid=%d bytes=%zu write_gbs=%.2f\n", (int)getpid(), total,
	    gbs(total, clock_us() - t));
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return (1);
	t = clock_us();
	for (size_t b = 0; b < nblocks; b++) {
		size = b + 1 < nblocks ? CHUNK : total - b * CHUNK;
		for (off = 0; off < size; off += n) {
			n = size - off < STAGING ? size - off : STAGING;
			if ((rc = cu.MemcpyDtoH(stage, d[b] + off, n)) != 0)
				die("cuMemcpyDtoH", rc);
			if ((bad = fv_pattern_find(stage, n, HOLD_SEED,
			    (uint32_t)b, off)) >= 0) {
				printf("DATA CORRUPT block=%zu offset=%" PRIu64
				    "\n", b, (uint64_t)(off + (size_t)bad));
				return (1);
			}
		}
	}
	printf("DATA OK bytes=%zu check_gbs=%.2f\n", total,
	    gbs(total, clock_us() - t));
	return (0);
}

int
main(int argc, char **argv)
{
	char	err[512];
	long	mib = 0;

	if (argc < 2 || (strcmp(argv[1], "info") != 0 &&
	    strcmp(argv[1], "bandwidth") != 0 && strcmp(argv[1], "hold") != 0) ||
	    argc > 3 || (argc == 3 && (mib = atol(argv[2])) <= 0) ||
	    (strcmp(argv[1], "hold") == 0 && argc != 3)) {
		fprintf(stderr, "usage: gpu_copy info | bandwidth [MIB] | "
		    "hold MIB\n");
		return (2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fv_cudadrv_open(&cu, err, sizeof(err)) != 0 ||
	    fv_cudadrv_context(&cu, 0, err, sizeof(err)) != 0) {
		printf("error=\"%s\"\n", err);
		return (1);
	}
	if (strcmp(argv[1], "info") == 0)
		return (cmd_info());
	if (strcmp(argv[1], "bandwidth") == 0)
		return (cmd_bandwidth(mib > 0 ? (size_t)mib : 1024));
	return (cmd_hold((size_t)mib));
}
