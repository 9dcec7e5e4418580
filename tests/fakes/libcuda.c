/*
 * libcuda.c -- a fake libcuda.so.1 for the tests of llmux's GPU module:
 * the functions the supervisor uses (cuInit, cuDriverGetVersion,
 * cuGetErrorName and the checkpoint API), acting on the fake GPU state
 * directory (fakegpu.h) that llmux-fakevllm --fake-gpu-dir registers its
 * processes in, and the device and memory functions that
 * llmux-fakevllm --fake-gpu cuda and tests/gpu/gpu_copy.c use (below). The process states and their transitions are the
 * driver's: RUNNING -lock-> LOCKED -checkpoint-> CHECKPOINTED
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
#include <sys/mman.h>

#include <stdint.h>
#include <time.h>

#include "fakegpu.h"

typedef int CUresult;
#define CUDA_SUCCESS			0
#define CUDA_ERROR_INVALID_VALUE	1
#define CUDA_ERROR_OUT_OF_MEMORY	2
#define CUDA_ERROR_NOT_INITIALIZED	3
#define CUDA_ERROR_INVALID_DEVICE	101
#define CUDA_ERROR_INVALID_CONTEXT	201
#define CUDA_ERROR_ILLEGAL_STATE	401
#define CUDA_ERROR_TIMEOUT		909
#define CUDA_ERROR_UNKNOWN		999

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
CUresult	cuCheckpointProcessGetState(int, int *);
CUresult	cuCheckpointProcessLock(int, struct lock_args *);
CUresult	cuCheckpointProcessCheckpoint(int, void *);
CUresult	cuCheckpointProcessRestore(int, struct restore_args *);
CUresult	cuCheckpointProcessUnlock(int, void *);

static int	initialized;

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

CUresult
cuGetErrorName(CUresult rc, const char **name)
{
	switch (rc) {
	case CUDA_SUCCESS:
		*name = "CUDA_SUCCESS";
		break;
	case CUDA_ERROR_INVALID_VALUE:
		*name = "CUDA_ERROR_INVALID_VALUE";
		break;
	case CUDA_ERROR_OUT_OF_MEMORY:
		*name = "CUDA_ERROR_OUT_OF_MEMORY";
		break;
	case CUDA_ERROR_NOT_INITIALIZED:
		*name = "CUDA_ERROR_NOT_INITIALIZED";
		break;
	case CUDA_ERROR_INVALID_DEVICE:
		*name = "CUDA_ERROR_INVALID_DEVICE";
		break;
	case CUDA_ERROR_INVALID_CONTEXT:
		*name = "CUDA_ERROR_INVALID_CONTEXT";
		break;
	case CUDA_ERROR_ILLEGAL_STATE:
		*name = "CUDA_ERROR_ILLEGAL_STATE";
		break;
	case CUDA_ERROR_TIMEOUT:
		*name = "CUDA_ERROR_TIMEOUT";
		break;
	case CUDA_ERROR_UNKNOWN:
		*name = "CUDA_ERROR_UNKNOWN";
		break;
	default:
		return (CUDA_ERROR_INVALID_VALUE);
	}
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

/*
 * ---- Devices, the primary context and memory ----
 *
 * For llmux-fakevllm --fake-gpu cuda and the device-run tools: the
 * process's GPU is CUDA_VISIBLE_DEVICES' first (else GPU 0) of the `gpus`
 * file; retaining the primary context registers the process (proc.PID,
 * owner itself) holding a context's memory (1/160 of the GPU, as an H100
 * context is about 500 MiB), every cuMemAlloc_v2 adds its size and
 * cuMemFree_v2 takes it away, so the fake NVML and the fake checkpoint
 * see the process's memory as the driver would report it. An allocation
 * the GPU has no room for is CUDA_ERROR_OUT_OF_MEMORY. "Device" memory is
 * host memory of this process (so a checkpoint moves nothing); pointers
 * outside an allocation are CUDA_ERROR_INVALID_VALUE. While the process is
 * locked or checkpointed (by the supervisor's calls above) every call
 * waits, as the real driver blocks a locked process's calls. One thread.
 */

typedef unsigned long long CUdeviceptr;

struct memcpy2d {
	size_t		 srcXInBytes;
	size_t		 srcY;
	int		 srcMemoryType;
	const void	*srcHost;
	CUdeviceptr	 srcDevice;
	void		*srcArray;
	size_t		 srcPitch;
	size_t		 dstXInBytes;
	size_t		 dstY;
	int		 dstMemoryType;
	void		*dstHost;
	CUdeviceptr	 dstDevice;
	void		*dstArray;
	size_t		 dstPitch;
	size_t		 WidthInBytes;
	size_t		 Height;
};
#define MEMORYTYPE_HOST		1
#define MEMORYTYPE_DEVICE	2
#define FAKE_PAGE		((size_t)2 << 20)
#define FAKE_MIB		((size_t)1 << 20)

CUresult	cuGetErrorString(CUresult, const char **);
CUresult	cuDeviceGetCount(int *);
CUresult	cuDeviceGet(int *, int);
CUresult	cuDeviceGetName(char *, int, int);
CUresult	cuDeviceTotalMem_v2(size_t *, int);
CUresult	cuDevicePrimaryCtxRetain(void **, int);
CUresult	cuDevicePrimaryCtxRelease_v2(int);
CUresult	cuCtxSetCurrent(void *);
CUresult	cuMemGetInfo_v2(size_t *, size_t *);
CUresult	cuMemAlloc_v2(CUdeviceptr *, size_t);
CUresult	cuMemFree_v2(CUdeviceptr);
CUresult	cuMemAllocHost_v2(void **, size_t);
CUresult	cuMemFreeHost(void *);
CUresult	cuMemcpyHtoD_v2(CUdeviceptr, const void *, size_t);
CUresult	cuMemcpyDtoH_v2(void *, CUdeviceptr, size_t);
CUresult	cuMemcpy2D_v2(const struct memcpy2d *);

struct fake_block {
	unsigned char		*p;
	size_t			 size;
	struct fake_block	*next;
};

static struct {
	int			 retained;	/* primary context refs */
	int			 current;
	int			 gpu;		/* the GPU's line in `gpus` */
	long long		 ctx_mib;
	size_t			 bytes;		/* device memory allocated */
	struct fake_block	*dev;
	struct fake_block	*host;
} fm;

static int	fm_context;	/* its address is the context handle */

CUresult
cuGetErrorString(CUresult rc, const char **text)
{
	switch (rc) {
	case CUDA_SUCCESS:
		*text = "no error";
		break;
	case CUDA_ERROR_INVALID_VALUE:
		*text = "invalid argument";
		break;
	case CUDA_ERROR_OUT_OF_MEMORY:
		*text = "out of memory";
		break;
	case CUDA_ERROR_NOT_INITIALIZED:
		*text = "initialization error";
		break;
	case CUDA_ERROR_INVALID_DEVICE:
		*text = "invalid device ordinal";
		break;
	case CUDA_ERROR_INVALID_CONTEXT:
		*text = "invalid device context";
		break;
	case CUDA_ERROR_ILLEGAL_STATE:
		*text = "the operation cannot be performed in the present state";
		break;
	case CUDA_ERROR_TIMEOUT:
		*text = "wait operation timed out";
		break;
	case CUDA_ERROR_UNKNOWN:
		*text = "unknown error";
		break;
	default:
		return (CUDA_ERROR_INVALID_VALUE);
	}
	return (CUDA_SUCCESS);
}

/* CUDA_VISIBLE_DEVICES' list (indexes only), else every GPU. */
static int
fm_visible(int *map, int max)
{
	struct fg_gpu	 g[FG_MAX_GPUS];
	const char	*cvd = getenv("CUDA_VISIBLE_DEVICES");
	char		*end;
	int		 n = fg_gpus(g, FG_MAX_GPUS), k = 0;
	long		 v;

	if (n < 0)
		return (-1);
	if (cvd == NULL) {
		for (k = 0; k < n && k < max; k++)
			map[k] = k;
		return (k);
	}
	while (*cvd != '\0' && k < max) {
		v = strtol(cvd, &end, 10);
		if (end == cvd || v < 0 || v >= n)
			break;		/* the driver stops at the first bad one */
		map[k++] = (int)v;
		cvd = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			break;
	}
	return (k);
}

CUresult
cuDeviceGetCount(int *n)
{
	int	map[FG_MAX_GPUS];

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (n == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	*n = fm_visible(map, FG_MAX_GPUS);
	if (*n < 0)
		*n = 0;
	return (CUDA_SUCCESS);
}

CUresult
cuDeviceGet(int *dev, int ordinal)
{
	int	map[FG_MAX_GPUS], n;

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	n = fm_visible(map, FG_MAX_GPUS);
	if (dev == NULL || ordinal < 0 || ordinal >= n)
		return (CUDA_ERROR_INVALID_DEVICE);
	*dev = map[ordinal];
	return (CUDA_SUCCESS);
}

static int
fm_gpu(int dev, struct fg_gpu *out)
{
	struct fg_gpu	g[FG_MAX_GPUS];
	int		n = fg_gpus(g, FG_MAX_GPUS);

	if (dev < 0 || dev >= n)
		return (-1);
	*out = g[dev];
	return (0);
}

CUresult
cuDeviceGetName(char *name, int len, int dev)
{
	struct fg_gpu	g;

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (fm_gpu(dev, &g) != 0)
		return (CUDA_ERROR_INVALID_DEVICE);
	if (name == NULL || len <= 0)
		return (CUDA_ERROR_INVALID_VALUE);
	snprintf(name, (size_t)len, "%s", g.name);
	return (CUDA_SUCCESS);
}

CUresult
cuDeviceTotalMem_v2(size_t *bytes, int dev)
{
	struct fg_gpu	g;

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (fm_gpu(dev, &g) != 0)
		return (CUDA_ERROR_INVALID_DEVICE);
	if (bytes == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	*bytes = (size_t)g.total_mib * FAKE_MIB;
	return (CUDA_SUCCESS);
}

/* MiB this process holds: its context and its allocations. */
static long long
fm_mib(size_t bytes)
{
	return (fm.ctx_mib + (long long)((bytes + FAKE_MIB - 1) / FAKE_MIB));
}

/* Record what the process holds, keeping the state the driver set. */
static void
fm_register(void)
{
	struct fg_proc	p;

	if (fg_proc_read(getpid(), &p) != 0) {
		memset(&p, 0, sizeof(p));
		p.pid = getpid();
		snprintf(p.state, sizeof(p.state), "running");
	}
	p.gpu = fm.gpu;
	p.mib = fm_mib(fm.bytes);
	p.owner = getpid();
	fg_proc_write(&p);
}

/* Lose a 2 MiB page in the middle of each allocation. */
static void
fm_corrupt_all(void)
{
	for (struct fake_block *b = fm.dev; b != NULL; b = b->next) {
		size_t	off = b->size / 2 / FAKE_PAGE * FAKE_PAGE;
		size_t	n = b->size - off < FAKE_PAGE ? b->size - off : FAKE_PAGE;

		memset(b->p + off, 0, n);
	}
}

/*
 * Before every call with a context: wait while the process is locked or
 * checkpointed, and take a damage a restore left for it.
 */
static CUresult
fm_enter(void)
{
	struct timespec	 ts = { 0, 2 * 1000 * 1000 };
	struct fg_proc	 p;
	char		 name[64], *text;

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (!fm.current)
		return (CUDA_ERROR_INVALID_CONTEXT);
	for (;;) {
		if (fg_proc_read(getpid(), &p) != 0 ||
		    strcmp(p.state, "running") == 0)
			break;
		if (strcmp(p.state, "failed") == 0)
			return (CUDA_ERROR_UNKNOWN);
		nanosleep(&ts, NULL);
	}
	snprintf(name, sizeof(name), "corrupt.%d", (int)getpid());
	if ((text = fg_read(name)) != NULL) {
		char	path[1024];

		free(text);
		fm_corrupt_all();
		if (fg_path(path, sizeof(path), "%s", name) == 0)
			unlink(path);
	}
	return (CUDA_SUCCESS);
}

CUresult
cuDevicePrimaryCtxRetain(void **ctx, int dev)
{
	struct fg_gpu	g;
	long long	used;
	int		fd;

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (ctx == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	if (fm_gpu(dev, &g) != 0)
		return (CUDA_ERROR_INVALID_DEVICE);
	if (fm.retained > 0 && dev != fm.gpu)
		return (CUDA_ERROR_INVALID_DEVICE);	/* one GPU a process */
	if (fm.retained++ == 0) {
		fd = fg_lock();
		fm.gpu = dev;
		fm.ctx_mib = g.total_mib / 160 > 0 ? g.total_mib / 160 : 1;
		used = fg_used(dev, getpid());
		if (g.total_mib - used < fm.ctx_mib) {
			fg_unlock(fd);
			fm.retained = 0;
			return (CUDA_ERROR_OUT_OF_MEMORY);
		}
		fm_register();
		fg_unlock(fd);
		fg_log("context %d gpu=%d", (int)getpid(), dev);
	}
	*ctx = &fm_context;
	return (CUDA_SUCCESS);
}

CUresult
cuDevicePrimaryCtxRelease_v2(int dev)
{
	char	path[1024];

	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (fm.retained == 0 || dev != fm.gpu)
		return (CUDA_ERROR_INVALID_CONTEXT);
	if (--fm.retained > 0)
		return (CUDA_SUCCESS);
	/* The context goes, and all its memory with it. */
	while (fm.dev != NULL) {
		struct fake_block *b = fm.dev;

		fm.dev = b->next;
		munmap(b->p, b->size);
		free(b);
	}
	fm.bytes = 0;
	fm.current = 0;
	if (fg_path(path, sizeof(path), "proc.%d", (int)getpid()) == 0)
		unlink(path);
	return (CUDA_SUCCESS);
}

CUresult
cuCtxSetCurrent(void *ctx)
{
	if (!initialized)
		return (CUDA_ERROR_NOT_INITIALIZED);
	if (ctx != NULL && (ctx != &fm_context || fm.retained == 0))
		return (CUDA_ERROR_INVALID_CONTEXT);
	fm.current = ctx != NULL;
	return (CUDA_SUCCESS);
}

CUresult
cuMemGetInfo_v2(size_t *free_b, size_t *total)
{
	struct fg_gpu	g;
	long long	used;
	CUresult	rc;
	int		fd;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (free_b == NULL || total == NULL || fm_gpu(fm.gpu, &g) != 0)
		return (CUDA_ERROR_INVALID_VALUE);
	fd = fg_lock();
	used = fg_used(fm.gpu, getpid()) + fm_mib(fm.bytes);
	fg_unlock(fd);
	if (used > g.total_mib)
		used = g.total_mib;
	*total = (size_t)g.total_mib * FAKE_MIB;
	*free_b = (size_t)(g.total_mib - used) * FAKE_MIB;
	return (CUDA_SUCCESS);
}

static void *
fm_pages(size_t n)
{
	void	*p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return (p == MAP_FAILED ? NULL : p);
}

CUresult
cuMemAlloc_v2(CUdeviceptr *dptr, size_t n)
{
	struct fake_block	*b;
	struct fg_gpu		 g;
	CUresult		 rc;
	int			 fd;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (dptr == NULL || n == 0 || fm_gpu(fm.gpu, &g) != 0)
		return (CUDA_ERROR_INVALID_VALUE);
	fd = fg_lock();
	if (fg_used(fm.gpu, getpid()) + fm_mib(fm.bytes + n) > g.total_mib) {
		fg_unlock(fd);
		return (CUDA_ERROR_OUT_OF_MEMORY);
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->p = fm_pages(n)) == NULL) {
		free(b);
		fg_unlock(fd);
		return (CUDA_ERROR_OUT_OF_MEMORY);
	}
	b->size = n;
	b->next = fm.dev;
	fm.dev = b;
	fm.bytes += n;
	fm_register();
	fg_unlock(fd);
	*dptr = (CUdeviceptr)(uintptr_t)b->p;
	return (CUDA_SUCCESS);
}

CUresult
cuMemFree_v2(CUdeviceptr dptr)
{
	struct fake_block	**bp, *b;
	CUresult		  rc;
	int			  fd;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	for (bp = &fm.dev; (b = *bp) != NULL; bp = &b->next)
		if ((CUdeviceptr)(uintptr_t)b->p == dptr)
			break;
	if (b == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	*bp = b->next;
	fm.bytes -= b->size;
	munmap(b->p, b->size);
	free(b);
	fd = fg_lock();
	fm_register();
	fg_unlock(fd);
	return (CUDA_SUCCESS);
}

CUresult
cuMemAllocHost_v2(void **pp, size_t n)
{
	struct fake_block	*b;
	CUresult		 rc;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (pp == NULL || n == 0)
		return (CUDA_ERROR_INVALID_VALUE);
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->p = fm_pages(n)) == NULL) {
		free(b);
		return (CUDA_ERROR_OUT_OF_MEMORY);
	}
	b->size = n;
	b->next = fm.host;
	fm.host = b;
	*pp = b->p;
	return (CUDA_SUCCESS);
}

CUresult
cuMemFreeHost(void *p)
{
	struct fake_block	**bp, *b;
	CUresult		  rc;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	for (bp = &fm.host; (b = *bp) != NULL; bp = &b->next)
		if (b->p == p)
			break;
	if (b == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	*bp = b->next;
	munmap(b->p, b->size);
	free(b);
	return (CUDA_SUCCESS);
}

/* The host address of N bytes of device memory at DPTR, or NULL. */
static unsigned char *
fm_device(CUdeviceptr dptr, size_t n)
{
	for (struct fake_block *b = fm.dev; b != NULL; b = b->next) {
		CUdeviceptr	base = (CUdeviceptr)(uintptr_t)b->p;

		if (dptr >= base && n <= b->size && dptr - base <= b->size - n)
			return (b->p + (dptr - base));
	}
	return (NULL);
}

CUresult
cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
	unsigned char	*d;
	CUresult	 rc;
	int		 fd, hit;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (src == NULL || (d = fm_device(dst, n)) == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	memcpy(d, src, n);
	fd = fg_lock();
	hit = fg_fault("cuda_copy_corrupt");
	fg_unlock(fd);
	if (hit) {
		size_t	off = n / 2 / FAKE_PAGE * FAKE_PAGE;

		memset(d + off, 0, n - off < FAKE_PAGE ? n - off : FAKE_PAGE);
		fg_log("copy to %d corrupted", (int)getpid());
	}
	return (CUDA_SUCCESS);
}

CUresult
cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
	unsigned char	*s;
	CUresult	 rc;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (dst == NULL || (s = fm_device(src, n)) == NULL)
		return (CUDA_ERROR_INVALID_VALUE);
	memcpy(dst, s, n);
	return (CUDA_SUCCESS);
}

/* Row r of one side of a 2D copy, checked; NULL when out of bounds. */
static unsigned char *
fm_row(int type, const void *host, CUdeviceptr dev, size_t x, size_t y,
    size_t pitch, size_t r, size_t width)
{
	size_t	off = (y + r) * pitch + x;

	if (type == MEMORYTYPE_HOST)
		return (host != NULL ? (unsigned char *)(uintptr_t)host + off :
		    NULL);
	if (type == MEMORYTYPE_DEVICE)
		return (fm_device(dev + off, width));
	return (NULL);
}

CUresult
cuMemcpy2D_v2(const struct memcpy2d *c)
{
	unsigned char	*s, *d;
	CUresult	 rc;

	if ((rc = fm_enter()) != CUDA_SUCCESS)
		return (rc);
	if (c == NULL || c->WidthInBytes > c->srcPitch ||
	    c->WidthInBytes > c->dstPitch)
		return (CUDA_ERROR_INVALID_VALUE);
	for (size_t r = 0; r < c->Height; r++) {
		s = fm_row(c->srcMemoryType, c->srcHost, c->srcDevice,
		    c->srcXInBytes, c->srcY, c->srcPitch, r, c->WidthInBytes);
		d = fm_row(c->dstMemoryType, c->dstHost, c->dstDevice,
		    c->dstXInBytes, c->dstY, c->dstPitch, r, c->WidthInBytes);
		if (s == NULL || d == NULL)
			return (CUDA_ERROR_INVALID_VALUE);
		memcpy(d, s, c->WidthInBytes);
	}
	return (CUDA_SUCCESS);
}
