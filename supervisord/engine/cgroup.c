/*
 * cgroup.c -- one cgroup v2 per model process tree, when the supervisor's
 * own cgroup is delegated to it (systemd's Delegate=yes makes
 * cgroup.subtree_control writable to us). A model's cgroup lets a stop
 * kill the whole tree at once (cgroup.kill), wherever its processes went.
 *
 * No controller is enabled, so the "no internal processes" rule does not
 * apply and the supervisor can stay in its own cgroup beside its models'.
 * When there is no delegated cgroup v2 the supervisor says so once and
 * relies on process groups and /proc instead.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"

void
cgroup_init(struct supervisor *sup)
{
	char	*buf, mnt[512], rel[1024], path[2048];
	size_t	 len;
	int	 found;

	sup->cgroup_root = NULL;
	if ((buf = procfs_read_file("/proc/self/mountinfo", 1u << 20,
	    &len)) == NULL)
		return;
	found = procfs_cgroup2_mount(buf, len, mnt, sizeof(mnt));
	free(buf);
	if (found != 0) {
		log_info("no cgroup v2 mounted; model trees are tracked by "
		    "process group and /proc");
		return;
	}
	if ((buf = procfs_read_file("/proc/self/cgroup", 65536, &len)) ==
	    NULL)
		return;
	found = procfs_cgroup2_path(buf, len, rel, sizeof(rel));
	free(buf);
	if (found != 0 || strcmp(rel, "/") == 0) {
		log_info("not in a delegated cgroup v2; model trees are "
		    "tracked by process group and /proc");
		return;
	}
	snprintf(path, sizeof(path), "%s%s/cgroup.subtree_control", mnt, rel);
	if (access(path, W_OK) != 0) {
		log_info("cgroup v2 is not delegated to the supervisor; model "
		    "trees are tracked by process group and /proc path=%s",
		    path);
		return;
	}
	xasprintf(&sup->cgroup_root, "%s%s", mnt, rel);
	log_info("using cgroup v2 for model processes path=%s",
	    sup->cgroup_root);
}

char *
cgroup_create(struct supervisor *sup, const char *model)
{
	char	*name, *path;

	if (sup->cgroup_root == NULL)
		return (NULL);
	name = model_path_name(model);
	xasprintf(&path, "%s/model.%s", sup->cgroup_root, name);
	free(name);
	/* A leftover of an earlier run is emptied and used again. */
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		log_warn("cannot create cgroup path=%s", path);
		free(path);
		return (NULL);
	}
	if (cgroup_populated(path)) {
		log_warnx("model cgroup still has processes, killing them "
		    "path=%s", path);
		cgroup_kill(path);
	}
	return (path);
}

int
cgroup_open_procs(const char *path)
{
	char	file[2048];

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	return (open(file, O_WRONLY | O_CLOEXEC));
}

/* Kill every process in the cgroup: cgroup.kill, else one by one. */
void
cgroup_kill(const char *path)
{
	char	 file[2048], *buf, *p, *end;
	size_t	 len;
	long	 pid;
	int	 fd;

	snprintf(file, sizeof(file), "%s/cgroup.kill", path);
	if ((fd = open(file, O_WRONLY | O_CLOEXEC)) != -1) {
		if (write(fd, "1", 1) == 1) {
			close(fd);
			return;
		}
		close(fd);
	}
	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	if ((buf = procfs_read_file(file, 1u << 20, &len)) == NULL)
		return;
	for (p = buf; *p != '\0'; p = end) {
		pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
		while (*end == '\n')
			end++;
	}
	free(buf);
}

bool
cgroup_populated(const char *path)
{
	char	 file[2048], *buf, *p;
	size_t	 len;
	bool	 yes = false;

	snprintf(file, sizeof(file), "%s/cgroup.events", path);
	if ((buf = procfs_read_file(file, 4096, &len)) == NULL)
		return (false);
	if ((p = strstr(buf, "populated ")) != NULL)
		yes = p[10] == '1';
	free(buf);
	return (yes);
}

void
cgroup_remove(const char *path)
{
	if (rmdir(path) == -1 && errno != ENOENT)
		log_debug("cannot remove cgroup yet path=%s errno=%d", path,
		    errno);
}
