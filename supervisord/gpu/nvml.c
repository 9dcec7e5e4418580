/*
 * nvml.c -- GPU telemetry through NVML, loaded with dlopen: each GPU's
 * name, UUID, total, used and free memory and the compute processes on
 * it with their memory. That is how the supervisor finds a model's GPU
 * processes, what status and /metrics show, what the validate call
 * measures and what a checkpoint's manifest records about the machine.
 *
 * NVML is loaded once per process (gpu.nvml_library, or
 * LLMUX_NVML_LIBRARY for tests). Its calls may block (nvmlInit can take
 * seconds without persistence mode), so they run on worker threads.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "xmalloc.h"
#include "supervisord/gpu/gpu.h"

typedef int nvml_return_t;			/* nvmlReturn_t */
typedef void *nvml_device_t;			/* nvmlDevice_t */
#define NVML_SUCCESS			0
#define NVML_ERROR_INSUFFICIENT_SIZE	7

struct nvml_memory {				/* nvmlMemory_t */
	unsigned long long	total;
	unsigned long long	free;
	unsigned long long	used;
};

struct nvml_process {				/* nvmlProcessInfo_t (v2, v3) */
	unsigned int		pid;
	unsigned long long	used_gpu_memory;
	unsigned int		gpu_instance_id;
	unsigned int		compute_instance_id;
};

static struct {
	pthread_mutex_t	 lock;
	bool		 tried;
	bool		 ok;
	char		 err[512];
	void		*handle;
	nvml_return_t	(*init)(void);
	nvml_return_t	(*count)(unsigned int *);
	nvml_return_t	(*by_index)(unsigned int, nvml_device_t *);
	nvml_return_t	(*memory)(nvml_device_t, struct nvml_memory *);
	nvml_return_t	(*processes)(nvml_device_t, unsigned int *,
			    struct nvml_process *);
	nvml_return_t	(*uuid)(nvml_device_t, char *, unsigned int);
	nvml_return_t	(*name)(nvml_device_t, char *, unsigned int);
	nvml_return_t	(*driver)(char *, unsigned int);
	const char	*(*error_string)(nvml_return_t);
} nvml = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *
nvml_error(nvml_return_t rc, char *buf, size_t len)
{
	const char	*s = nvml.error_string != NULL ?
			    nvml.error_string(rc) : NULL;

	snprintf(buf, len, "%s", s != NULL ? s : "NVML error");
	snprintf(buf + strlen(buf), len - strlen(buf), " (%d)", rc);
	return (buf);
}

static void
nvml_load(const char *path)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} syms[] = {
#define SYM(n, f) { n, offsetof(__typeof__(nvml), f) }
		SYM("nvmlInit_v2", init),
		SYM("nvmlDeviceGetCount_v2", count),
		SYM("nvmlDeviceGetHandleByIndex_v2", by_index),
		SYM("nvmlDeviceGetMemoryInfo", memory),
		SYM("nvmlDeviceGetComputeRunningProcesses_v3", processes),
		SYM("nvmlDeviceGetUUID", uuid),
		SYM("nvmlDeviceGetName", name),
		SYM("nvmlSystemGetDriverVersion", driver),
#undef SYM
	};
	char		 missing[300] = "", ebuf[96];
	void		*f;
	nvml_return_t	 rc;
	size_t		 o = 0;

	if ((nvml.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(nvml.err, sizeof(nvml.err), "cannot load %s (%s)",
		    path, dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if ((f = dlsym(nvml.handle, syms[i].name)) == NULL) {
			if (o < sizeof(missing))
				o += (size_t)snprintf(missing + o,
				    sizeof(missing) - o, "%s%s", o ? ", " : "",
				    syms[i].name);
			continue;
		}
		memcpy((char *)&nvml + syms[i].off, &f, sizeof(f));
	}
	*(void **)&nvml.error_string = dlsym(nvml.handle, "nvmlErrorString");
	if (missing[0] != '\0') {
		snprintf(nvml.err, sizeof(nvml.err), "NVML %s lacks %s: a "
		    "driver of the 525 series or later is needed", path,
		    missing);
		return;
	}
	if ((rc = nvml.init()) != NVML_SUCCESS) {
		snprintf(nvml.err, sizeof(nvml.err), "nvmlInit failed: %s",
		    nvml_error(rc, ebuf, sizeof(ebuf)));
		return;
	}
	nvml.ok = true;
}

int
nvml_open(const char *path, char *err, size_t errlen)
{
	const char	*env = getenv("LLMUX_NVML_LIBRARY");
	int		 rc;

	if (env != NULL && *env != '\0')
		path = env;
	if (path == NULL)
		path = "libnvidia-ml.so.1";
	pthread_mutex_lock(&nvml.lock);
	if (!nvml.tried) {
		nvml.tried = true;
		nvml_load(path);
	}
	rc = nvml.ok ? 0 : -1;
	if (!nvml.ok)
		snprintf(err, errlen, "%s", nvml.err);
	pthread_mutex_unlock(&nvml.lock);
	return (rc);
}

/* The compute processes of one GPU; the list may grow between calls. */
static int
nvml_processes(nvml_device_t dev, struct gpu_info *g, char *err,
    size_t errlen)
{
	struct nvml_process	*v = NULL;
	unsigned int		 n = 16, got;
	nvml_return_t		 rc;
	char			 ebuf[96];

	for (;;) {
		v = xreallocarray(v, n, sizeof(*v));
		got = n;
		rc = nvml.processes(dev, &got, v);
		if (rc == NVML_SUCCESS)
			break;
		if (rc != NVML_ERROR_INSUFFICIENT_SIZE || n >= GPU_MAX_PROCS) {
			free(v);
			snprintf(err, errlen, "cannot list the processes of GPU "
			    "%u: %s", g->index, nvml_error(rc, ebuf,
			    sizeof(ebuf)));
			return (-1);
		}
		n = got > n && got <= GPU_MAX_PROCS ? got + 8 : n * 2;
		if (n > GPU_MAX_PROCS)
			n = GPU_MAX_PROCS;
	}
	if (got > n)
		got = n;
	g->procs = xcalloc(got > 0 ? got : 1, sizeof(*g->procs));
	for (unsigned int i = 0; i < got; i++) {
		g->procs[i].pid = (pid_t)v[i].pid;
		/* NVML_VALUE_NOT_AVAILABLE is all ones. */
		g->procs[i].bytes = v[i].used_gpu_memory == ~0ULL ? 0 :
		    v[i].used_gpu_memory;
	}
	g->nprocs = got;
	free(v);
	return (0);
}

int
nvml_snapshot(struct gpu_snapshot *s, char *err, size_t errlen)
{
	struct nvml_memory	 mem;
	nvml_device_t		 dev;
	unsigned int		 n;
	nvml_return_t		 rc;
	char			 ebuf[96];

	memset(s, 0, sizeof(*s));
	if (!nvml.ok) {
		snprintf(err, errlen, "NVML is not loaded");
		return (-1);
	}
	if ((rc = nvml.driver(s->driver, sizeof(s->driver))) != NVML_SUCCESS)
		snprintf(s->driver, sizeof(s->driver), "unknown");
	s->driver[sizeof(s->driver) - 1] = '\0';
	if ((rc = nvml.count(&n)) != NVML_SUCCESS) {
		snprintf(err, errlen, "cannot count the GPUs: %s",
		    nvml_error(rc, ebuf, sizeof(ebuf)));
		return (-1);
	}
	if (n > GPU_MAX)
		n = GPU_MAX;
	s->v = xcalloc(n > 0 ? n : 1, sizeof(*s->v));
	for (unsigned int i = 0; i < n; i++) {
		struct gpu_info	*g = &s->v[i];

		g->index = i;
		s->n = i + 1;
		if ((rc = nvml.by_index(i, &dev)) != NVML_SUCCESS ||
		    (rc = nvml.memory(dev, &mem)) != NVML_SUCCESS) {
			snprintf(err, errlen, "cannot read GPU %u: %s", i,
			    nvml_error(rc, ebuf, sizeof(ebuf)));
			nvml_snapshot_free(s);
			return (-1);
		}
		if (nvml.name(dev, g->name, sizeof(g->name)) != NVML_SUCCESS)
			snprintf(g->name, sizeof(g->name), "unknown");
		if (nvml.uuid(dev, g->uuid, sizeof(g->uuid)) != NVML_SUCCESS)
			snprintf(g->uuid, sizeof(g->uuid), "unknown-%u", i);
		g->name[sizeof(g->name) - 1] = '\0';
		g->uuid[sizeof(g->uuid) - 1] = '\0';
		g->total = mem.total;
		g->used = mem.used;
		g->free = mem.free;
		if (nvml_processes(dev, g, err, errlen) != 0) {
			nvml_snapshot_free(s);
			return (-1);
		}
	}
	s->taken_ms = clock_ms();
	return (0);
}

void
nvml_snapshot_free(struct gpu_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].procs);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void
nvml_snapshot_copy(struct gpu_snapshot *dst, const struct gpu_snapshot *src)
{
	*dst = *src;
	dst->v = xcalloc(src->n > 0 ? src->n : 1, sizeof(*dst->v));
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = src->v[i];
		dst->v[i].procs = xcalloc(src->v[i].nprocs > 0 ?
		    src->v[i].nprocs : 1, sizeof(struct gpu_proc));
		if (src->v[i].nprocs > 0)
			memcpy(dst->v[i].procs, src->v[i].procs,
			    src->v[i].nprocs * sizeof(struct gpu_proc));
	}
}

const struct gpu_info *
nvml_snapshot_find(const struct gpu_snapshot *s, const char *uuid)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].uuid, uuid) == 0)
			return (&s->v[i]);
	return (NULL);
}

uint64_t
nvml_snapshot_bytes(const struct gpu_snapshot *s, const pid_t *pids, size_t n)
{
	uint64_t	total = 0;

	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->v[i].nprocs; j++)
			for (size_t k = 0; k < n; k++)
				if (s->v[i].procs[j].pid == pids[k])
					total += s->v[i].procs[j].bytes;
	return (total);
}
