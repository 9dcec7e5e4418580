/*
 * gpu.c -- the GPU side of eviction: finding a model's GPU processes and
 * suspending or resuming them with the CUDA driver's checkpoint API (lock,
 * checkpoint; restore, unlock), for the cuda_suspend process strategy.
 *
 * The driver library and NVML are loaded with dlopen at run time so llmux
 * runs on machines without them. This implementation finds GPU processes
 * from /proc (those mapping /dev/nvidia*), and reports suspend and resume
 * as unavailable, with the reason, so that cuda_suspend escalates to stop
 * (and wake starts the model afresh) the way it does on a machine without
 * a driver. The interface is what the CUDA implementation fills in.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "supervisor.h"
#include "xmalloc.h"

struct gpu_pending {
	gpu_cb	 cb;
	void	*arg;
	char	 reason[512];
};

bool
gpu_available(const struct config *conf, char *why, size_t len)
{
	const char	*lib = conf->gpu.cuda_library != NULL ?
			    conf->gpu.cuda_library : "libcuda.so.1";
	void		*h;

	if ((h = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(why, len, "unavailable on this machine: cannot load "
		    "%s (%s)", lib, dlerror());
		return (false);
	}
	dlclose(h);
	snprintf(why, len, "unavailable on this machine: CUDA suspend is not "
	    "supported by this build of llmux");
	return (false);
}

size_t
gpu_processes(const struct config *conf, const pid_t *pids, size_t n,
    pid_t *out, size_t max)
{
	size_t	found = 0;

	(void)conf;
	for (size_t i = 0; i < n && found < max; i++)
		if (procfs_pid_maps_nvidia(pids[i]))
			out[found++] = pids[i];
	return (found);
}

static void
gpu_pending_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct gpu_pending	*gp = arg;

	gp->cb(0, gp->reason, gp->arg);
	free(gp);
}

/* Report failure from the loop, as a real operation would. */
static int
gpu_fail(struct supervisor *sup, gpu_cb cb, void *arg)
{
	struct gpu_pending	*gp;
	struct timeval		 tv = { 0, 0 };

	gp = xcalloc(1, sizeof(*gp));
	gp->cb = cb;
	gp->arg = arg;
	gpu_available(sup->conf, gp->reason, sizeof(gp->reason));
	event_base_once(sup->base, -1, EV_TIMEOUT, gpu_pending_cb, gp, &tv);
	return (0);
}

int
gpu_suspend(struct supervisor *sup, const pid_t *pids, size_t n, gpu_cb cb,
    void *arg)
{
	(void)pids;
	(void)n;
	return (gpu_fail(sup, cb, arg));
}

int
gpu_resume(struct supervisor *sup, const pid_t *pids, size_t n, gpu_cb cb,
    void *arg)
{
	(void)pids;
	(void)n;
	return (gpu_fail(sup, cb, arg));
}

int
gpu_memory_mib(const struct config *conf, const pid_t *pids, size_t n,
    uint64_t *mib)
{
	(void)conf;
	(void)pids;
	(void)n;
	*mib = 0;
	return (-1);	/* NVML is not loaded by this build */
}
