/*
 * cudadrv.c -- the CUDA driver API through dlopen, for the stand-in's
 * --fake-gpu cuda mode and the device-run tools (tests/gpu/gpu_copy.c):
 * no link-time dependency on libcuda.so.1, so llmux-fakevllm runs
 * everywhere and only this mode needs a driver.
 *
 * Every entry point is the one cuda.h maps its name to (cuMemAlloc is
 * cuMemAlloc_v2, cuMemcpyHtoD is cuMemcpyHtoD_v2, ...), looked up by that
 * name, so the signatures are those of the CUDA 3.2+ driver API with
 * size_t sizes and 64-bit device pointers. The context is the device's
 * primary context, as the CUDA runtime (and so PyTorch and vLLM) uses.
 * The library is $LLMUX_CUDA_LIBRARY, else libcuda.so.1 (the test suite
 * points the variable at its fake, tests/fakes/libcuda.c).
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cudadrv.h"

#define CUDADRV_SYM(field, name)	{ offsetof(struct fv_cuda, field), name }

static const struct {
	size_t		 off;
	const char	*name;
} cudadrv_syms[] = {
	CUDADRV_SYM(Init, "cuInit"),
	CUDADRV_SYM(DriverGetVersion, "cuDriverGetVersion"),
	CUDADRV_SYM(DeviceGetCount, "cuDeviceGetCount"),
	CUDADRV_SYM(DeviceGet, "cuDeviceGet"),
	CUDADRV_SYM(DeviceGetName, "cuDeviceGetName"),
	CUDADRV_SYM(DeviceTotalMem, "cuDeviceTotalMem_v2"),
	CUDADRV_SYM(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
	CUDADRV_SYM(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
	CUDADRV_SYM(CtxSetCurrent, "cuCtxSetCurrent"),
	CUDADRV_SYM(MemGetInfo, "cuMemGetInfo_v2"),
	CUDADRV_SYM(MemAlloc, "cuMemAlloc_v2"),
	CUDADRV_SYM(MemFree, "cuMemFree_v2"),
	CUDADRV_SYM(MemAllocHost, "cuMemAllocHost_v2"),
	CUDADRV_SYM(MemFreeHost, "cuMemFreeHost"),
	CUDADRV_SYM(MemcpyHtoD, "cuMemcpyHtoD_v2"),
	CUDADRV_SYM(MemcpyDtoH, "cuMemcpyDtoH_v2"),
	CUDADRV_SYM(Memcpy2D, "cuMemcpy2D_v2"),
	CUDADRV_SYM(GetErrorName, "cuGetErrorName"),
	CUDADRV_SYM(GetErrorString, "cuGetErrorString"),
};

static void
cudadrv_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cudadrv_err(char *err, size_t len, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

const char *
fv_cudadrv_library(void)
{
	const char	*p = getenv("LLMUX_CUDA_LIBRARY");

	return (p != NULL && *p != '\0' ? p : "libcuda.so.1");
}

int
fv_cudadrv_open(struct fv_cuda *cu, char *err, size_t len)
{
	const char	*path = fv_cudadrv_library();
	void		*fn;
	size_t		 i;

	memset(cu, 0, sizeof(*cu));
	if ((cu->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		cudadrv_err(err, len, "cannot load %s (%s)", path, dlerror());
		return (-1);
	}
	for (i = 0; i < sizeof(cudadrv_syms) / sizeof(cudadrv_syms[0]); i++) {
		if ((fn = dlsym(cu->lib, cudadrv_syms[i].name)) == NULL) {
			cudadrv_err(err, len, "%s has no %s: the driver is too "
			    "old", path, cudadrv_syms[i].name);
			dlclose(cu->lib);
			cu->lib = NULL;
			return (-1);
		}
		memcpy((char *)cu + cudadrv_syms[i].off, &fn, sizeof(fn));
	}
	return (0);
}

const char *
fv_cudadrv_strerror(const struct fv_cuda *cu, int rc, char *buf, size_t len)
{
	const char	*name = NULL, *text = NULL;

	if (cu->GetErrorName == NULL || cu->GetErrorName(rc, &name) != 0 ||
	    name == NULL)
		name = NULL;
	if (cu->GetErrorString == NULL || cu->GetErrorString(rc, &text) != 0)
		text = NULL;
	if (name != NULL && text != NULL)
		snprintf(buf, len, "%s (%s)", name, text);
	else if (name != NULL)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "CUDA error %d", rc);
	return (buf);
}

int
fv_cudadrv_context(struct fv_cuda *cu, int ordinal, char *err, size_t len)
{
	char	why[160];
	int	rc, n = 0;

	if ((rc = cu->Init(0)) != 0) {
		cudadrv_err(err, len, "cuInit: %s",
		    fv_cudadrv_strerror(cu, rc, why, sizeof(why)));
		return (-1);
	}
	if ((rc = cu->DeviceGetCount(&n)) != 0 || n <= ordinal) {
		cudadrv_err(err, len, "no CUDA device %d (%d visible%s%s)",
		    ordinal, n, rc != 0 ? ": " : "", rc != 0 ?
		    fv_cudadrv_strerror(cu, rc, why, sizeof(why)) : "");
		return (-1);
	}
	if ((rc = cu->DeviceGet(&cu->dev, ordinal)) != 0 ||
	    (rc = cu->DevicePrimaryCtxRetain(&cu->ctx, cu->dev)) != 0 ||
	    (rc = cu->CtxSetCurrent(cu->ctx)) != 0) {
		cudadrv_err(err, len, "cannot create a CUDA context on device "
		    "%d: %s", ordinal, fv_cudadrv_strerror(cu, rc, why,
		    sizeof(why)));
		return (-1);
	}
	if ((rc = cu->DeviceGetName(cu->name, (int)sizeof(cu->name),
	    cu->dev)) != 0)
		snprintf(cu->name, sizeof(cu->name), "CUDA device %d", ordinal);
	if ((rc = cu->DeviceTotalMem(&cu->total, cu->dev)) != 0) {
		cudadrv_err(err, len, "cuDeviceTotalMem: %s",
		    fv_cudadrv_strerror(cu, rc, why, sizeof(why)));
		return (-1);
	}
	return (0);
}

/* Gather height rows of width bytes, pitch apart on the device, densely. */
int
fv_cudadrv_gather(struct fv_cuda *cu, void *dst, uint64_t src, size_t pitch,
    size_t width, size_t height)
{
	struct fv_cuda_memcpy2d	c;

	memset(&c, 0, sizeof(c));
	c.srcMemoryType = FV_CU_MEMORYTYPE_DEVICE;
	c.srcDevice = src;
	c.srcPitch = pitch;
	c.dstMemoryType = FV_CU_MEMORYTYPE_HOST;
	c.dstHost = dst;
	c.dstPitch = width;
	c.WidthInBytes = width;
	c.Height = height;
	return (cu->Memcpy2D(&c));
}
