/*
 * libcuda.c -- a fake libcuda.so.1 for the tests of llmux's GPU module:
 * the functions the supervisor uses (cuInit, cuDriverGetVersion,
 * cuGetErrorName and the checkpoint API), acting on the fake GPU state
 * directory (fakegpu.h) that llmux-fakevllm --fake-gpu-dir registers its
 * processes in (the device and memory functions that llmux-fakevllm
 * --fake-gpu cuda and tests/gpu/gpu_copy.c use are in libcuda/memory.c,
 * built into the same library). The process states and their transitions
 * are the driver's: RUNNING -lock-> LOCKED -checkpoint-> CHECKPOINTED
 * -restore-> LOCKED -unlock-> RUNNING, anything else is
 * CUDA_ERROR_ILLEGAL_STATE. A checkpointed process holds no GPU memory; a
 * restore needs room on its GPU (or on the GPU its UUID pair names), else
 * CUDA_ERROR_OUT_OF_MEMORY. Faults (fault.NAME files):
 *   cuda_lock_timeout      the lock waits timeoutMs, then CUDA_ERROR_TIMEOUT
 *   cuda_checkpoint_fail   the checkpoint fails, the process stays LOCKED
 *   cuda_checkpoint_failed the checkpoint leaves the process FAILED
 *   cuda_restore_failed    the restore leaves the process FAILED
 *   cuda_restore_corrupt   the restore loses a 2 MiB page of each of the
 *                          process's allocations (it finds out at its next
 *                          driver call)
 *   cuda_copy_corrupt      the next host-to-device copy zeroes a 2 MiB page
 *                          of what it wrote
 * Selected by LLMUX_CUDA_LIBRARY (or gpu.cuda_library), never installed.
 */
#include <time.h>

#include "libcuda/fakecuda.h"

struct lock_args {
	unsigned int		timeout_ms;
	unsigned int		reserved0;
	unsigned long long	reserved1[7];
};

struct gpu_pair {
	unsigned char	from[16];
	unsigned char	to[16];
};

struct restore_args {
	struct gpu_pair	*pairs;
	unsigned int	 npairs;
	char		 reserved[52 - sizeof(struct gpu_pair *)];
	unsigned long long reserved1;
};

CUresult	cuInit(unsigned int);
CUresult	cuDriverGetVersion(int *);
CUresult	cuGetErrorName(CUresult, const char **);
CUresult	cuGetErrorString(CUresult, const char **);
CUresult	cuCheckpointProcessGetState(int, int *);
CUresult	cuCheckpointProcessLock(int, struct lock_args *);
CUresult	cuCheckpointProcessCheckpoint(int, void *);
CUresult	cuCheckpointProcessRestore(int, struct restore_args *);
CUresult	cuCheckpointProcessUnlock(int, void *);

int	fakecuda_initialized;
#define initialized	fakecuda_initialized

CUresult
cuInit(unsigned int flags)
{
	if (flags != 0)
		return (CUDA_ERROR_INVALID_VALUE);
	if (fg_dir() == NULL)
		return (CUDA_ERROR_NOT_INITIALIZED);
	initialized = 1;
	return (CUDA_SUCCESS);
}

CUresult
cuDriverGetVersion(int *v)
{
	char	version[64];

	if (v == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	fg_driver(version, sizeof(version), v);
	return (CUDA_SUCCESS);
}

/* The errors the fake returns: the driver's name and text of each. */
static const struct {
	CUresult	 rc;
	const char	*name;
	const char	*text;
} errors[] = {
	{ CUDA_SUCCESS, "CUDA_SUCCESS", "no error" },
	{ CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE",
	    "invalid argument" },
	{ CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY",
	    "out of memory" },
	{ CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED",
	    "initialization error" },
	{ CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE",
	    "invalid device ordinal" },
	{ CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT",
	    "invalid device context" },
	{ CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE",
	    "the operation cannot be performed in the present state" },
	{ CUDA_ERROR_TIMEOUT, "CUDA_ERROR_TIMEOUT",
	    "wait operation timed out" },
	{ CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error" },
};

static int
error_index(CUresult rc)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].rc == rc)
			return ((int)i);
	return (-1);
}

CUresult
cuGetErrorName(CUresult rc, const char **name)
{
	int	i = error_index(rc);

	if (i < 0)
		return (CUDA_ERROR_INVALID_VALUE);
	*name = errors[i].name;
	return (CUDA_SUCCESS);
}

CUresult
cuGetErrorString(CUresult rc, const char **text)
{
	int	i = error_index(rc);

	if (i < 0)
		return (CUDA_ERROR_INVALID_VALUE);
	*text = errors[i].text;
	return (CUDA_SUCCESS);
}

static int
state_code(const char *s)
{
	if (strcmp(s, "running") == 0)
		return (0);
	if (strcmp(s, "locked") == 0)
		return (1);
	if (strcmp(s, "checkpointed") == 0)
		return (2);
	if (strcmp(s, "failed") == 0)
		return (3);
	return (-1);
}

/* The process's record, under the lock; an error when it has none. */
static CUresult
begin(int pid, struct fg_proc *p, int *fd)
{
	*fd = -1;
	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (pid <= 0 || kill(pid, 0) != 0)
		return (CUDA_ERROR_INVALID_VALUE);
	*fd = fg_lock();
	if (fg_proc_read(pid, p) != 0) {
		fg_unlock(*fd);
		*fd = -1;
		return (CUDA_ERROR_INVALID_VALUE);	/* not a CUDA process */
	}
	return (CUDA_SUCCESS);
}

static CUresult
end(int fd, struct fg_proc *p, const char *state, CUresult rc)
{
	if (state != NULL) {
		snprintf(p->state, sizeof(p->state), "%s", state);
		fg_proc_write(p);
	}
	fg_unlock(fd);
	return (rc);
}

CUresult
cuCheckpointProcessGetState(int pid, int *state)
{
	struct fg_proc	p;
	CUresult	rc;
	int		fd;

	if (state == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	if ((rc = begin(pid, &p, &fd)) != CUDA_SUCCESS)
		return (rc);
	*state = state_code(p.state);
	return (end(fd, &p, NULL, *state < 0 ? CUDA_ERROR_UNKNOWN :
	    CUDA_SUCCESS));
}

CUresult
cuCheckpointProcessLock(int pid, struct lock_args *a)
{
	struct fg_proc	p;
	struct timespec	ts;
	CUresult	rc;
	unsigned	ms;
	int		fd;

	if ((rc = begin(pid, &p, &fd)) != CUDA_SUCCESS)
		return (rc);
	fg_log("lock %d", pid);
	if (strcmp(p.state, "running") != 0)
		return (end(fd, &p, NULL, CUDA_ERROR_ILLEGAL_STATE));
	if (fg_fault("cuda_lock_timeout")) {
		/* A kernel that never ends: wait out the timeout, unlocked. */
		fg_unlock(fd);
		ms = a != NULL && a->timeout_ms > 0 ? a->timeout_ms : 60000;
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		nanosleep(&ts, NULL);
		return (CUDA_ERROR_TIMEOUT);
	}
	return (end(fd, &p, "locked", CUDA_SUCCESS));
}

CUresult
cuCheckpointProcessCheckpoint(int pid, void *args)
{
	struct fg_proc	p;
	CUresult	rc;
	int		fd;

	if ((rc = begin(pid, &p, &fd)) != CUDA_SUCCESS)
		return (rc);
	fg_log("checkpoint %d", pid);
	if (strcmp(p.state, "locked") != 0)
		return (end(fd, &p, NULL, CUDA_ERROR_ILLEGAL_STATE));
	if (fg_fault("cuda_checkpoint_fail"))
		return (end(fd, &p, NULL, CUDA_ERROR_OUT_OF_MEMORY));
	if (fg_fault("cuda_checkpoint_failed"))
		return (end(fd, &p, "failed", CUDA_ERROR_UNKNOWN));
	return (end(fd, &p, "checkpointed", CUDA_SUCCESS));
}

static int
parse_uuid(const char *s, unsigned char out[16])
{
	int	n = 0, hi, lo;

	if (strncmp(s, "GPU-", 4) == 0)
		s += 4;
	for (; *s != '\0' && n < 16; s++) {
		if (*s == '-')
			continue;
		if (sscanf(s, "%1x%1x", (unsigned *)&hi, (unsigned *)&lo) != 2)
			return (-1);
		out[n++] = (unsigned char)(hi << 4 | lo);
		s++;
	}
	return (n == 16 ? 0 : -1);
}

CUresult
cuCheckpointProcessRestore(int pid, struct restore_args *a)
{
	struct fg_proc	p;
	struct fg_gpu	g[FG_MAX_GPUS];
	unsigned char	u[16];
	CUresult	rc;
	int		fd, n, target, found = 0;

	if ((rc = begin(pid, &p, &fd)) != CUDA_SUCCESS)
		return (rc);
	if (strcmp(p.state, "checkpointed") != 0)
		return (end(fd, &p, NULL, CUDA_ERROR_ILLEGAL_STATE));
	n = fg_gpus(g, FG_MAX_GPUS);
	target = p.gpu;
	if (a != NULL && a->npairs > 0) {
		/* Every checkpointed GPU must be in the pairs. */
		if (p.gpu >= n || parse_uuid(g[p.gpu].uuid, u) != 0)
			return (end(fd, &p, NULL, CUDA_ERROR_INVALID_VALUE));
		for (unsigned i = 0; i < a->npairs && !found; i++) {
			if (memcmp(a->pairs[i].from, u, 16) != 0)
				continue;
			for (int k = 0; k < n; k++) {
				unsigned char	v[16];

				if (parse_uuid(g[k].uuid, v) == 0 &&
				    memcmp(a->pairs[i].to, v, 16) == 0) {
					target = k;
					found = 1;
				}
			}
		}
		if (!found || strcmp(g[target].name, g[p.gpu].name) != 0)
			return (end(fd, &p, NULL, CUDA_ERROR_INVALID_VALUE));
	}
	fg_log("restore %d gpu=%d", pid, target);
	if (fg_fault("cuda_restore_failed"))
		return (end(fd, &p, "failed", CUDA_ERROR_UNKNOWN));
	if (target >= n || g[target].total_mib - fg_used(target, pid) < p.mib)
		return (end(fd, &p, NULL, CUDA_ERROR_OUT_OF_MEMORY));
	if (fg_fault("cuda_restore_corrupt")) {
		char	name[64];

		/* The process itself finds it at its next call (below). */
		snprintf(name, sizeof(name), "corrupt.%d", pid);
		fg_write(name, "restore\n");
		fg_log("restore %d corrupts its memory", pid);
	}
	p.gpu = target;
	return (end(fd, &p, "locked", CUDA_SUCCESS));
}

CUresult
cuCheckpointProcessUnlock(int pid, void *args)
{
	struct fg_proc	p;
	CUresult	rc;
	int		fd;

	if ((rc = begin(pid, &p, &fd)) != CUDA_SUCCESS)
		return (rc);
	fg_log("unlock %d", pid);
	if (strcmp(p.state, "locked") != 0)
		return (end(fd, &p, NULL, CUDA_ERROR_ILLEGAL_STATE));
	return (end(fd, &p, "running", CUDA_SUCCESS));
}
