/*
 * gpu_check.c -- the GPU module on a real GPU, for tests/gpu/real-gpu-check.sh:
 * suspend a CUDA process with the driver's checkpoint API as the
 * supervisor does (cuda.c), check with NVML (nvml.c) that its memory was
 * freed, resume it (optionally onto another GPU of the same kind, with
 * UUID remapping) and check that the memory is back, printing the times
 * and the rates.
 *
 *     gpu_check PID [TO_GPU]
 *
 * Exit 0 when every check passed. Never built by `make`: the script
 * builds it where a GPU is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "supervisord/gpu/gpu.h"

static int	failures;

static void
expect(int ok, const char *what)
{
	printf("%-58s %s\n", what, ok ? "ok" : "FAILED");
	if (!ok)
		failures++;
}

/* Bytes pid holds, and on which GPU (or -1), per NVML. */
static uint64_t
held(pid_t pid, int *gpu, struct gpu_snapshot *out)
{
	struct gpu_snapshot	s;
	char			err[256];
	uint64_t		b = 0;

	*gpu = -1;
	if (nvml_snapshot(&s, err, sizeof(err)) != 0) {
		fprintf(stderr, "gpu_check: %s\n", err);
		exit(2);
	}
	for (size_t i = 0; i < s.n; i++)
		for (size_t j = 0; j < s.v[i].nprocs; j++)
			if (s.v[i].procs[j].pid == pid) {
				b += s.v[i].procs[j].bytes;
				*gpu = (int)s.v[i].index;
			}
	if (out != NULL)
		*out = s;
	else
		nvml_snapshot_free(&s);
	return (b);
}

int
main(int argc, char **argv)
{
	struct gpu_snapshot	s;
	struct cuda_outcome	o;
	struct cuda_pair	pair;
	pid_t			pid;
	uint64_t		before, asleep, after;
	int			gpu, gpu2, to = -1;
	double			gb;
	char			err[512];

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gpu_check PID [TO_GPU]\n");
		return (2);
	}
	pid = (pid_t)atoi(argv[1]);
	if (argc == 3)
		to = atoi(argv[2]);
	if (nvml_open(NULL, err, sizeof(err)) != 0 ||
	    cuda_open(NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "gpu_check: %s\n", err);
		return (2);
	}
	printf("CUDA driver API %d.%d\n", cuda_driver_version() / 1000,
	    cuda_driver_version() % 1000 / 10);
	before = held(pid, &gpu, &s);
	gb = (double)before / (1 << 30);
	printf("process %d holds %.2f GiB on GPU %d (%s, driver %s)\n",
	    (int)pid, gb, gpu, gpu >= 0 ? s.v[gpu].name : "?", s.driver);
	expect(before > (1ULL << 30), "the process holds more than 1 GiB");

	cuda_suspend_pid(pid, 10000, &o);
	if (!o.ok)
		printf("suspend: %s\n", o.reason);
	expect(o.ok, "lock + checkpoint");
	printf("suspend: %lld ms, %.2f GB/s\n", (long long)o.ms,
	    o.ms > 0 ? (double)before / 1e9 / ((double)o.ms / 1000) : 0.0);
	asleep = held(pid, &gpu2, NULL);
	expect(asleep == 0, "NVML: the memory was freed");

	memset(&pair, 0, sizeof(pair));
	if (to >= 0 && (size_t)to < s.n && gpu >= 0 &&
	    cuda_uuid_parse(s.v[gpu].uuid, pair.from) == 0 &&
	    cuda_uuid_parse(s.v[to].uuid, pair.to) == 0) {
		printf("restoring onto GPU %d (%s)\n", to, s.v[to].uuid);
		cuda_resume_pid(pid, &pair, 1, &o);
	} else
		cuda_resume_pid(pid, NULL, 0, &o);
	if (!o.ok)
		printf("resume: %s\n", o.reason);
	expect(o.ok, "restore + unlock");
	printf("resume: %lld ms, %.2f GB/s\n", (long long)o.ms,
	    o.ms > 0 ? (double)before / 1e9 / ((double)o.ms / 1000) : 0.0);
	after = held(pid, &gpu2, NULL);
	expect(after >= before - before / 20, "NVML: the memory is back");
	expect(gpu2 == (to >= 0 ? to : gpu), "on the GPU expected");
	nvml_snapshot_free(&s);
	return (failures == 0 ? 0 : 1);
}
