/*
 * memory.c -- the fake libcuda.so's devices, primary context and memory
 * (tests/fakes/libcuda.c has the checkpoint API; both make one library),
 * for llmux-fakevllm --fake-gpu cuda and the device-run tools: the
 * process's GPU is CUDA_VISIBLE_DEVICES' first (else GPU 0) of the `gpus`
 * file; retaining the primary context registers the process (proc.PID,
 * owner itself) holding a context's memory (1/160 of the GPU, as an H100
 * context is about 500 MiB), every cuMemAlloc_v2 adds its size and
 * cuMemFree_v2 takes it away, so the fake NVML and the fake checkpoint
 * see the process's memory as the driver would report it. An allocation
 * the GPU has no room for is CUDA_ERROR_OUT_OF_MEMORY. "Device" memory is
 * host memory of this process (so a checkpoint moves nothing); pointers
 * outside an allocation are CUDA_ERROR_INVALID_VALUE. While the process is
 * locked or checkpointed (by the supervisor's checkpoint calls) every call
 * waits, as the real driver blocks a locked process's calls. One thread.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <time.h>

#include "fakecuda.h"

#define initialized	fakecuda_initialized

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
