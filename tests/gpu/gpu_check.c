/*
 * gpu_check.c -- the GPU module on a real GPU, for tests/gpu/device-run.sh:
 * suspend a CUDA process with the driver's checkpoint API as the
 * supervisor does (cuda.c), check with NVML (nvml.c) that its memory was
 * freed, resume it (optionally onto another GPU of the same kind, with
 * UUID remapping) and check that the memory is back, printing the times
 * and the rates; or list what NVML sees.
 *
 *     gpu_check [-b BYTES] PID [TO_GPU]   suspend and resume PID
 *     gpu_check procs                     every GPU and its processes
 *
 * When NVML lists no process PID (in a container NVML reports the host's
 * pids), the memory is judged by the GPU's memory in use instead: BYTES
 * (what PID holds; else 1 GiB) must leave at the suspend and come back.
 * Results are also key=value lines (suspend_ms=, resume_ms=, bytes=, ...;
 * "gpu index=..." and "proc gpu=... pid=... bytes=..."). Exit 0 when
 * every check passed. Built by `make device-bundle`.
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

static void
snapshot(struct gpu_snapshot *s)
{
	char	err[256];

	if (nvml_snapshot(s, err, sizeof(err)) != 0) {
		fprintf(stderr, "gpu_check: %s\n", err);
		exit(2);
	}
}

/* Memory in use on the GPU of NVML index g, or 0. */
static uint64_t
used_on(int g)
{
	struct gpu_snapshot	s;
	uint64_t		u = 0;

	snapshot(&s);
	for (size_t i = 0; i < s.n; i++)
		if ((int)s.v[i].index == g)
			u = s.v[i].used;
	nvml_snapshot_free(&s);
	return (u);
}

/* Bytes pid holds, and on which GPU (or -1), per NVML. */
static uint64_t
held(pid_t pid, int *gpu, struct gpu_snapshot *out)
{
	struct gpu_snapshot	s;
	uint64_t		b = 0;

	*gpu = -1;
	snapshot(&s);
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

static int
procs(void)
{
	struct gpu_snapshot	s;

	snapshot(&s);
	printf("driver=%s\n", s.driver);
	for (size_t i = 0; i < s.n; i++) {
		printf("gpu index=%u total=%llu used=%llu free=%llu uuid=%s "
		    "name=\"%s\"\n", s.v[i].index,
		    (unsigned long long)s.v[i].total,
		    (unsigned long long)s.v[i].used,
		    (unsigned long long)s.v[i].free, s.v[i].uuid,
		    s.v[i].name);
		for (size_t j = 0; j < s.v[i].nprocs; j++)
			printf("proc gpu=%u pid=%d bytes=%llu\n", s.v[i].index,
			    (int)s.v[i].procs[j].pid,
			    (unsigned long long)s.v[i].procs[j].bytes);
	}
	nvml_snapshot_free(&s);
	return (0);
}

static double
rate(uint64_t bytes, int64_t ms)
{
	return (ms > 0 ? (double)bytes / 1e9 / ((double)ms / 1000) : 0.0);
}

int
main(int argc, char **argv)
{
	struct gpu_snapshot	s;
	struct cuda_outcome	o;
	struct cuda_pair	pair;
	pid_t			pid;
	uint64_t		before, asleep, after, want = 1ULL << 30;
	uint64_t		used0, used1, used2;
	int			gpu, gpu2, home, to = -1, hidden, c;
	char			err[512];

	while ((c = getopt(argc, argv, "b:")) != -1) {
		if (c != 'b' || (want = strtoull(optarg, NULL, 10)) == 0) {
			fprintf(stderr, "usage: gpu_check [-b BYTES] PID [TO_GPU] "
			    "| gpu_check procs\n");
			return (2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2) {
		fprintf(stderr, "usage: gpu_check [-b BYTES] PID [TO_GPU] | "
		    "gpu_check procs\n");
		return (2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (nvml_open(NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "gpu_check: %s\n", err);
		return (2);
	}
	if (strcmp(argv[0], "procs") == 0)
		return (procs());
	pid = (pid_t)atoi(argv[0]);
	if (argc == 2)
		to = atoi(argv[1]);
	if (cuda_open(NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "gpu_check: %s\n", err);
		return (2);
	}
	printf("CUDA driver API %d.%d\n", cuda_driver_version() / 1000,
	    cuda_driver_version() % 1000 / 10);
	before = held(pid, &gpu, &s);
	hidden = (before == 0);
	home = gpu >= 0 ? gpu : 0;
	used0 = used_on(home);
	if (hidden)
		printf("NVML lists no process %d (a PID namespace?): judging by "
		    "GPU %d's memory in use, %.2f GiB expected\n", (int)pid, home,
		    (double)want / (1 << 30));
	printf("process %d holds %.2f GiB on GPU %d (%s, driver %s)\n",
	    (int)pid, (double)(hidden ? want : before) / (1 << 30), home,
	    (size_t)home < s.n ? s.v[home].name : "?", s.driver);
	printf("bytes=%llu gpu=%d pid_listed=%d used_before=%llu\n",
	    (unsigned long long)(hidden ? want : before), home, !hidden,
	    (unsigned long long)used0);
	expect(hidden ? used0 >= want : before > 0,
	    "NVML: the process holds GPU memory");
	if (hidden)
		before = want;

	cuda_suspend_pid(pid, 10000, &o);
	if (!o.ok)
		printf("suspend: %s\n", o.reason);
	expect(o.ok, "lock + checkpoint");
	printf("suspend_ms=%lld suspend_gbs=%.2f\n", (long long)o.ms,
	    rate(before, o.ms));
	asleep = held(pid, &gpu2, NULL);
	used1 = used_on(home);
	if (hidden)	/* what is left of it: in use now, less the others */
		asleep = used0 >= before && used1 > used0 - before ?
		    used1 - (used0 - before) : 0;
	printf("asleep_bytes=%llu used_asleep=%llu\n",
	    (unsigned long long)asleep, (unsigned long long)used1);
	expect(hidden ? used0 > used1 && used0 - used1 >= before - before / 20 :
	    asleep == 0, "NVML: the memory was freed");

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
	printf("resume_ms=%lld resume_gbs=%.2f\n", (long long)o.ms,
	    rate(before, o.ms));
	after = held(pid, &gpu2, NULL);
	used2 = used_on(to >= 0 ? to : home);
	if (hidden) {
		after = used2 > used1 ? used2 - used1 : 0;
		if (to >= 0)	/* another GPU: what it holds now */
			after = used2;
		gpu2 = to >= 0 ? to : home;
	}
	printf("after_bytes=%llu gpu_after=%d used_after=%llu\n",
	    (unsigned long long)after, gpu2, (unsigned long long)used2);
	expect(after >= before - before / 20, "NVML: the memory is back");
	expect(gpu2 == (to >= 0 ? to : gpu >= 0 ? gpu : home),
	    "on the GPU expected");
	nvml_snapshot_free(&s);
	printf("result=%s\n", failures == 0 ? "ok" : "failed");
	return (failures == 0 ? 0 : 1);
}
