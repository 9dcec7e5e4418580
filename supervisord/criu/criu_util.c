/*
 * criu_util.c -- what the CRIU module needs besides dumping and
 * restoring (criu.c): finding the criu program and its version (for
 * --check-config: CRIU 4 or later), the eviction a checkpoint's manifest
 * records, the reason of a failed criu from its log, and CRIU's stale
 * /dev/shm/link_remap.* files. Where a model's images live and the file
 * chores (rm -rf, mkdir -p, fsync of a directory) are base/'s.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "criu_int.h"

#define CRIU_VERSION_WAIT_MS	5000
#define CRIU_MIN_MAJOR		4

/* ---- small helpers ----------------------------------------------------------- */

/* Is prog runnable, as a path or through PATH? */
bool
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

const char *
criu_program(const struct config *conf)
{
	return (conf->checkpoint.criu_path != NULL ?
	    conf->checkpoint.criu_path : "criu");
}

/* CRIU leaves these behind when a dump fails; a later dump trips on them. */
void
criu_remove_link_remap(void)
{
	glob_t	g;

	if (glob("/dev/shm/link_remap.*", 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		(void)unlink(g.gl_pathv[i]);
	globfree(&g);
}

/*
 * The last line of criu's log that says what went wrong ("Error (...)"),
 * else its last line; the reason of a failed dump or restore.
 */
void
criu_log_reason(int dirfd, const char *name, char *buf, size_t len)
{
	char	*text, *line, *save = NULL, *last = NULL, *err = NULL;
	size_t	 n = 0;
	ssize_t	 r;
	int	 fd;

	buf[0] = '\0';
	if (dirfd == -1 || (fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	/* The end of a long log is where the reason is. */
	text = xmalloc(256 * 1024 + 1);
	if (lseek(fd, 0, SEEK_END) > 256 * 1024)
		(void)lseek(fd, -256 * 1024, SEEK_END);
	else
		(void)lseek(fd, 0, SEEK_SET);
	while (n < 256 * 1024 && (r = read(fd, text + n, 256 * 1024 - n)) > 0)
		n += (size_t)r;
	close(fd);
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '\0')
			continue;
		last = line;
		if (strstr(line, "Error") != NULL || strstr(line, "error") !=
		    NULL)
			err = line;
	}
	if (err != NULL || last != NULL)
		snprintf(buf, len, "%s", err != NULL ? err : last);
	free(text);
}

/* ---- versions ----------------------------------------------------------------- */

/* "Version: 4.1" (also "GitID: ..." lines) to 4 and 1; -1 if none. */
int
criu_parse_version(const char *text, int *major, int *minor)
{
	const char	*p;

	if ((p = strstr(text, "Version:")) == NULL)
		return (-1);
	p += 8;
	while (*p == ' ' || *p == '\t')
		p++;
	if (sscanf(p, "%d.%d", major, minor) < 1)
		return (-1);
	if (sscanf(p, "%d.%d", major, minor) < 2)
		*minor = 0;
	return (*major >= 0 ? 0 : -1);
}

/* Run `criu --version` (blocks, bounded): for --check-config only. */
static int
criu_version(const char *prog, int *major, int *minor, char *err,
    size_t errlen)
{
	char		 out[1024];
	int		 fds[2], status;
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int64_t		 deadline = clock_ms() + CRIU_VERSION_WAIT_MS;
	struct pollfd	 pfd;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return (-1);
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return (-1);
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execlp(prog, prog, "--version", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (len < sizeof(out) - 1 && clock_ms() < deadline) {
		if (poll(&pfd, 1, (int)(deadline - clock_ms())) <= 0)
			break;
		if ((n = read(fds[0], out + len, sizeof(out) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(fds[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (criu_parse_version(out, major, minor) != 0) {
		snprintf(err, errlen, "%s --version said no version", prog);
		return (-1);
	}
	return (0);
}

static bool
criu_config_uses(const struct config *conf, const char **name)
{
	for (size_t i = 0; i < conf->n_models; i++) {
		if (conf->models[i].checkpoint_path != NULL ||
		    config_model_eviction(conf, &conf->models[i]).process ==
		    PROCESS_CHECKPOINT) {
			*name = conf->models[i].name;
			return (true);
		}
	}
	return (false);
}

int
criu_check_config(const struct config *conf, char *why, size_t len)
{
	const char	*prog = criu_program(conf), *name;
	int		 major, minor;
	char		 err[256];

	if (!criu_config_uses(conf, &name) || !criu_find(prog))
		return (0);	/* config_check says when it is missing */
	if (criu_version(prog, &major, &minor, err, sizeof(err)) != 0) {
		snprintf(why, len, "checkpoint.criu_path: %s; model %s needs "
		    "CRIU %d or later with its CUDA plugin", err, name,
		    CRIU_MIN_MAJOR);
		return (-1);
	}
	if (major < CRIU_MIN_MAJOR) {
		snprintf(why, len, "checkpoint.criu_path: %s is CRIU %d.%d, "
		    "too old: model %s needs CRIU %d or later with its CUDA "
		    "plugin (CRIU 3.x cannot run on current kernels)", prog,
		    major, minor, name, CRIU_MIN_MAJOR);
		return (-1);
	}
	return (0);
}

bool
criu_available(const struct config *conf, char *why, size_t len)
{
	if (!criu_find(criu_program(conf))) {
		snprintf(why, len, "unavailable on this machine: %s not found",
		    criu_program(conf));
		return (false);
	}
	snprintf(why, len, "%s", criu_program(conf));
	return (true);
}

int
criu_images_eviction(const struct config *conf, const char *dir,
    struct eviction *ev)
{
	struct images_loc	loc;
	struct manifest		m;
	char			err[1024];
	int			rc = -1, fd;

	model_path_locate(conf, dir, &loc);
	fd = fs_open_loc(&loc, err, sizeof(err));
	model_path_loc_free(&loc);
	if (fd == -1)
		return (-1);	/* the restore says why */
	rc = manifest_read(fd, &m, err, sizeof(err));
	close(fd);
	if (rc != 0)
		return (-1);
	rc = -1;
	if (m.has_eviction) {
		*ev = m.eviction;
		rc = 0;
	}
	manifest_free(&m);
	return (rc);
}

