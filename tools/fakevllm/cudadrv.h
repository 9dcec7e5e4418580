/*
 * cudadrv.h -- the CUDA driver API entry points the stand-in's --fake-gpu
 * cuda mode and the device-run tools use, loaded with dlopen (cudadrv.c).
 * The types are the driver's (cuda.h), written out here so that nothing
 * needs the CUDA toolkit to build.
 */
#ifndef LLMUX_CUDADRV_H
#define LLMUX_CUDADRV_H

#include <stddef.h>
#include <stdint.h>

/* CUmemorytype */
#define FV_CU_MEMORYTYPE_HOST	1
#define FV_CU_MEMORYTYPE_DEVICE	2

/* CUDA_MEMCPY2D (the _v2 layout, as cuMemcpy2D_v2 takes it). */
struct fv_cuda_memcpy2d {
	size_t		 srcXInBytes;
	size_t		 srcY;
	int		 srcMemoryType;
	const void	*srcHost;
	uint64_t	 srcDevice;
	void		*srcArray;
	size_t		 srcPitch;
	size_t		 dstXInBytes;
	size_t		 dstY;
	int		 dstMemoryType;
	void		*dstHost;
	uint64_t	 dstDevice;
	void		*dstArray;
	size_t		 dstPitch;
	size_t		 WidthInBytes;
	size_t		 Height;
};

/* The driver, its device and context. Every call returns a CUresult. */
struct fv_cuda {
	void	*lib;
	int	(*Init)(unsigned int);
	int	(*DriverGetVersion)(int *);
	int	(*DeviceGetCount)(int *);
	int	(*DeviceGet)(int *, int);
	int	(*DeviceGetName)(char *, int, int);
	int	(*DeviceTotalMem)(size_t *, int);
	int	(*DevicePrimaryCtxRetain)(void **, int);
	int	(*DevicePrimaryCtxRelease)(int);
	int	(*CtxSetCurrent)(void *);
	int	(*MemGetInfo)(size_t *, size_t *);
	int	(*MemAlloc)(uint64_t *, size_t);
	int	(*MemFree)(uint64_t);
	int	(*MemAllocHost)(void **, size_t);
	int	(*MemFreeHost)(void *);
	int	(*MemcpyHtoD)(uint64_t, const void *, size_t);
	int	(*MemcpyDtoH)(void *, uint64_t, size_t);
	int	(*Memcpy2D)(const struct fv_cuda_memcpy2d *);
	int	(*GetErrorName)(int, const char **);
	int	(*GetErrorString)(int, const char **);

	int	 dev;
	void	*ctx;
	char	 name[128];
	size_t	 total;
};

/* $LLMUX_CUDA_LIBRARY, else libcuda.so.1. */
const char	*fv_cudadrv_library(void);
/* Load the library and every entry point; -1 with the reason. */
int		 fv_cudadrv_open(struct fv_cuda *, char *, size_t);
/* cuInit, device ORDINAL's primary context made current, its name and size. */
int		 fv_cudadrv_context(struct fv_cuda *, int, char *, size_t);
/* "CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for a CUresult. */
const char	*fv_cudadrv_strerror(const struct fv_cuda *, int, char *, size_t);
/* A 2D copy: HEIGHT rows of WIDTH bytes, PITCH apart from SRC, to DST. */
int		 fv_cudadrv_gather(struct fv_cuda *, void *, uint64_t, size_t,
		    size_t, size_t);

#endif
