/*
 * criu.c -- checkpointing a model's whole process tree to disk with CRIU
 * (and its CUDA plugin) and restoring it, for the checkpoint process
 * strategy. Images live in images_dir/NAME.
 *
 * This implementation checks for criu and reports dump and restore as
 * unavailable, with the reason, so that checkpoint escalates to stop (and
 * wake starts the model afresh) as it does on a machine without CRIU. The
 * interface is what the CRIU implementation fills in.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "supervisor.h"
#include "xmalloc.h"

struct criu_pending {
	criu_cb	 cb;
	void	*arg;
	char	 reason[512];
};

/* Is prog runnable, as a path or through PATH? */
static bool
criu_find(const char *prog)
{
	const char	*path;
	char		*copy, *dir, *save = NULL, full[4096];
	bool		 found = false;

	if (strchr(prog, '/') != NULL)
		return (access(prog, X_OK) == 0);
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/sbin:/usr/bin:/sbin:/bin";
	copy = xstrdup(path);
	for (dir = strtok_r(copy, ":", &save); dir != NULL && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(full, sizeof(full), "%s/%s", dir, prog);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return (found);
}

bool
criu_available(const struct config *conf, char *why, size_t len)
{
	const char	*criu = conf->checkpoint.criu_path != NULL ?
			    conf->checkpoint.criu_path : "criu";

	if (!criu_find(criu)) {
		snprintf(why, len, "unavailable on this machine: %s not found",
		    criu);
		return (false);
	}
	snprintf(why, len, "unavailable on this machine: CRIU checkpoint is "
	    "not supported by this build of llmux");
	return (false);
}

char *
criu_images_dir(const struct config *conf, const char *model)
{
	const char	*base = conf->checkpoint.images_dir != NULL ?
			    conf->checkpoint.images_dir :
			    "/tmp/llmux-checkpoints";
	char		*name, *dir;

	name = model_path_name(model);
	xasprintf(&dir, "%s/%s", base, name);
	free(name);
	return (dir);
}

static void
criu_pending_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct criu_pending	*cp = arg;

	cp->cb(0, cp->reason, 0, cp->arg);
	free(cp);
}

static int
criu_fail(struct supervisor *sup, criu_cb cb, void *arg)
{
	struct criu_pending	*cp;
	struct timeval		 tv = { 0, 0 };

	cp = xcalloc(1, sizeof(*cp));
	cp->cb = cb;
	cp->arg = arg;
	criu_available(sup->conf, cp->reason, sizeof(cp->reason));
	event_base_once(sup->base, -1, EV_TIMEOUT, criu_pending_cb, cp, &tv);
	return (0);
}

int
criu_dump(struct supervisor *sup, pid_t pid, const char *dir, criu_cb cb,
    void *arg)
{
	(void)pid;
	(void)dir;
	return (criu_fail(sup, cb, arg));
}

int
criu_restore(struct supervisor *sup, const char *dir, criu_cb cb, void *arg)
{
	(void)dir;
	return (criu_fail(sup, cb, arg));
}
