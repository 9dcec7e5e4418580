/*
 * libnvidia-ml.c -- a fake libnvidia-ml.so.1 for the tests of llmux's GPU
 * module: the NVML functions the supervisor uses, answering from the fake
 * GPU state directory (fakegpu.h): the GPUs of its `gpus` file, the
 * driver of its `driver` file, each GPU's memory in use as the sum of the
 * live processes registered on it that are not checkpointed (and of
 * extra.G), and those processes as its compute processes. Selected by
 * LLMUX_NVML_LIBRARY (or gpu.nvml_library), never installed. A file
 * nvml_pid_offset holding N adds N to every pid it reports, as NVML in a
 * container reports the host's pids.
 */
#include <stdint.h>

#include "fakegpu.h"

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;
#define NVML_SUCCESS			0
#define NVML_ERROR_UNINITIALIZED	1
#define NVML_ERROR_INVALID_ARGUMENT	2
#define NVML_ERROR_INSUFFICIENT_SIZE	7
#define NVML_ERROR_DRIVER_NOT_LOADED	9

typedef struct {
	unsigned long long	total;
	unsigned long long	free;
	unsigned long long	used;
} nvmlMemory_t;

typedef struct {
	unsigned int		pid;
	unsigned long long	usedGpuMemory;
	unsigned int		gpuInstanceId;
	unsigned int		computeInstanceId;
} nvmlProcessInfo_t;

nvmlReturn_t	nvmlInit_v2(void);
nvmlReturn_t	nvmlShutdown(void);
nvmlReturn_t	nvmlDeviceGetCount_v2(unsigned int *);
nvmlReturn_t	nvmlDeviceGetHandleByIndex_v2(unsigned int, nvmlDevice_t *);
nvmlReturn_t	nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t *);
nvmlReturn_t	nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t,
		    unsigned int *, nvmlProcessInfo_t *);
nvmlReturn_t	nvmlDeviceGetUUID(nvmlDevice_t, char *, unsigned int);
nvmlReturn_t	nvmlDeviceGetName(nvmlDevice_t, char *, unsigned int);
nvmlReturn_t	nvmlSystemGetDriverVersion(char *, unsigned int);
const char	*nvmlErrorString(nvmlReturn_t);

static int	initialized;

#define MIB	(1024ULL * 1024ULL)

nvmlReturn_t
nvmlInit_v2(void)
{
	struct fg_gpu	g[FG_MAX_GPUS];

	if (fg_dir() == NULL || fg_gpus(g, FG_MAX_GPUS) < 0)
		return (NVML_ERROR_DRIVER_NOT_LOADED);
	initialized = 1;
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlShutdown(void)
{
	initialized = 0;
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetCount_v2(unsigned int *n)
{
	struct fg_gpu	g[FG_MAX_GPUS];
	int		c;

	if (!initialized)
		return (NVML_ERROR_UNINITIALIZED);
	if ((c = fg_gpus(g, FG_MAX_GPUS)) < 0)
		return (NVML_ERROR_DRIVER_NOT_LOADED);
	*n = (unsigned int)c;
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *dev)
{
	unsigned int	n;

	if (nvmlDeviceGetCount_v2(&n) != NVML_SUCCESS)
		return (NVML_ERROR_UNINITIALIZED);
	if (i >= n)
		return (NVML_ERROR_INVALID_ARGUMENT);
	*dev = (nvmlDevice_t)(uintptr_t)(i + 1);
	return (NVML_SUCCESS);
}

/* The GPU a handle names, or -1. */
static int
device(nvmlDevice_t dev, struct fg_gpu *g)
{
	struct fg_gpu	v[FG_MAX_GPUS];
	int		i = (int)(uintptr_t)dev - 1, n;

	if (!initialized || (n = fg_gpus(v, FG_MAX_GPUS)) < 0 || i < 0 ||
	    i >= n)
		return (-1);
	*g = v[i];
	return (i);
}

nvmlReturn_t
nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *m)
{
	struct fg_gpu	g;
	long long	used;
	int		i, fd;

	if ((i = device(dev, &g)) < 0)
		return (NVML_ERROR_INVALID_ARGUMENT);
	fd = fg_lock();
	used = fg_used(i, 0);
	fg_unlock(fd);
	if (used > g.total_mib)
		used = g.total_mib;
	m->total = (unsigned long long)g.total_mib * MIB;
	m->used = (unsigned long long)used * MIB;
	m->free = m->total - m->used;
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *n,
    nvmlProcessInfo_t *out)
{
	struct fg_gpu	g;
	struct fg_proc	v[512];
	unsigned int	k = 0;
	int		i, np, fd, offset = 0;
	char		*text;

	if ((i = device(dev, &g)) < 0 || n == NULL)
		return (NVML_ERROR_INVALID_ARGUMENT);
	fd = fg_lock();
	np = fg_procs(v, 512);
	fg_unlock(fd);
	if ((text = fg_read("nvml_pid_offset")) != NULL) {
		offset = atoi(text);
		free(text);
	}
	for (int j = 0; j < np; j++) {
		if (v[j].gpu != i || strcmp(v[j].state, "checkpointed") == 0)
			continue;
		if (k < *n && out != NULL) {
			out[k].pid = (unsigned int)(v[j].pid + offset);
			out[k].usedGpuMemory = (unsigned long long)v[j].mib *
			    MIB;
			out[k].gpuInstanceId = 0xFFFFFFFFu;
			out[k].computeInstanceId = 0xFFFFFFFFu;
		}
		k++;
	}
	if (k > *n) {
		*n = k;
		return (NVML_ERROR_INSUFFICIENT_SIZE);
	}
	*n = k;
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetUUID(nvmlDevice_t dev, char *buf, unsigned int len)
{
	struct fg_gpu	g;

	if (device(dev, &g) < 0 || strlen(g.uuid) + 1 > len)
		return (NVML_ERROR_INVALID_ARGUMENT);
	snprintf(buf, len, "%s", g.uuid);
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlDeviceGetName(nvmlDevice_t dev, char *buf, unsigned int len)
{
	struct fg_gpu	g;

	if (device(dev, &g) < 0 || strlen(g.name) + 1 > len)
		return (NVML_ERROR_INVALID_ARGUMENT);
	snprintf(buf, len, "%s", g.name);
	return (NVML_SUCCESS);
}

nvmlReturn_t
nvmlSystemGetDriverVersion(char *buf, unsigned int len)
{
	char	version[64];
	int	api;

	if (!initialized)
		return (NVML_ERROR_UNINITIALIZED);
	fg_driver(version, sizeof(version), &api);
	if (strlen(version) + 1 > len)
		return (NVML_ERROR_INSUFFICIENT_SIZE);
	snprintf(buf, len, "%s", version);
	return (NVML_SUCCESS);
}

const char *
nvmlErrorString(nvmlReturn_t rc)
{
	switch (rc) {
	case NVML_SUCCESS:
		return ("Success");
	case NVML_ERROR_UNINITIALIZED:
		return ("Uninitialized");
	case NVML_ERROR_INVALID_ARGUMENT:
		return ("Invalid Argument");
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return ("Insufficient Size");
	case NVML_ERROR_DRIVER_NOT_LOADED:
		return ("Driver Not Loaded");
	default:
		return ("Unknown Error");
	}
}
