/*
 * fakecuda.h -- what the two halves of the fake libcuda.so share
 * (tests/fakes/libcuda.c, the checkpoint API; libcuda/memory.c, devices
 * and memory): the driver's result codes and whether cuInit was called.
 */
#ifndef LLMUX_FAKECUDA_H
#define LLMUX_FAKECUDA_H

#include "../fakegpu.h"

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

/* cuInit(0) succeeded in this process. */
extern int	fakecuda_initialized;

#endif
