/*
 * modellog.c -- each model's output in log_dir/NAME.log, capped at
 * model_log_max_bytes and rotated to NAME.log.1 .. NAME.log.KEEP.
 *
 * Two ways, chosen at each start:
 *
 * - A pipe (every model that is not CRIU-checkpointed). Its read end
 *   belongs to a "log keeper": a small process forked from the supervisor
 *   (double-forked, in its own session) that copies the pipe to the files
 *   and rotates them at line boundaries, so the cap is exact and a model
 *   that floods its output never fills the disk. The keeper is not the
 *   supervisor, so a restarted or killed supervisor never breaks a model's
 *   stdout (a pipe without a reader would). It exits when the model's last
 *   process closes the pipe; a second pipe tells the supervisor when it
 *   has written everything (for "the last lines of the log" of a failed
 *   start).
 *
 * - A plain file opened O_APPEND (models whose eviction is checkpoint:
 *   CRIU cannot dump a pipe to a process outside the tree). The supervisor
 *   checks its size every second and rotates by copy and truncate; the
 *   file can grow past the cap by what the model writes in a second.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"

#define MODELLOG_BUF	65536

char *
modellog_path(const struct supervisor *sup, const char *model, int n)
{
	char	*name, *path;

	name = model_path_name(model);
	if (n == 0)
		xasprintf(&path, "%s/%s.log", sup->conf->log_dir, name);
	else
		xasprintf(&path, "%s/%s.log.%d", sup->conf->log_dir, name, n);
	free(name);
	return (path);
}

static int
modellog_write_all(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		buf += n;
		len -= (size_t)n;
	}
	return (0);
}

/* NAME.log -> NAME.log.1 -> ... -> NAME.log.KEEP (relative to dirfd). */
static void
modellog_shift(int dirfd, const char *file, uint32_t keep)
{
	char	from[512], to[512];

	for (uint32_t k = keep; k >= 2; k--) {
		snprintf(from, sizeof(from), "%s.%u", file, k - 1);
		snprintf(to, sizeof(to), "%s.%u", file, k);
		(void)renameat(dirfd, from, dirfd, to);
	}
}

static int
modellog_keeper_rotate(int fd, int dirfd, const char *file, uint32_t keep)
{
	char	to[512];

	close(fd);
	if (keep == 0)
		(void)unlinkat(dirfd, file, 0);
	else {
		modellog_shift(dirfd, file, keep);
		snprintf(to, sizeof(to), "%s.1", file);
		(void)renameat(dirfd, file, dirfd, to);
	}
	return (openat(dirfd, file, O_WRONLY | O_APPEND | O_CREAT |
	    O_TRUNC | O_CLOEXEC, 0640));
}

/* The keeper's file: where it writes, how full it is, its limits. */
struct modellog_out_file {
	int		 fd;
	int		 dirfd;
	const char	*file;
	uint64_t	 size;
	uint64_t	 max_bytes;	/* 0: no cap */
	uint32_t	 keep;
};

/*
 * Append buf, never letting the file pass max_bytes: a part that does not
 * fit is cut after its last newline that fits, the files are rotated and
 * the rest goes to the new file; a single line longer than the cap is
 * split.
 */
static void
modellog_keeper_put(struct modellog_out_file *o, const char *buf, size_t n)
{
	uint64_t	room;
	size_t		off, chunk;

	for (off = 0; off < n; off += chunk) {
		chunk = n - off;
		if (o->fd == -1)
			return;		/* nowhere to write: drop */
		room = o->max_bytes == 0 ? UINT64_MAX :
		    (o->size < o->max_bytes ? o->max_bytes - o->size : 0);
		if (chunk > room) {
			const char *nl = NULL;

			for (size_t i = (size_t)room; i > 0; i--) {
				if (buf[off + i - 1] == '\n') {
					nl = buf + off + i - 1;
					break;
				}
			}
			if (nl != NULL)
				chunk = (size_t)(nl - (buf + off)) + 1;
			else if (o->size > 0) {
				/* Start the long line afresh. */
				o->fd = modellog_keeper_rotate(o->fd, o->dirfd,
				    o->file, o->keep);
				o->size = 0;
				chunk = 0;
				continue;
			} else
				chunk = (size_t)room;
		}
		if (chunk > 0 && modellog_write_all(o->fd, buf + off,
		    chunk) == 0)
			o->size += chunk;
		if (o->max_bytes != 0 && o->size >= o->max_bytes) {
			o->fd = modellog_keeper_rotate(o->fd, o->dirfd, o->file,
			    o->keep);
			o->size = 0;
		}
	}
}

/*
 * Copy in to dirfd/file until EOF, rotating at line ends (see
 * modellog_keeper_put). A read that ends inside a line keeps that part
 * back until the line is whole (or fills the buffer), so a rotated file
 * never ends with half a line.
 */
void
modellog_keeper_run(int in, int dirfd, const char *file, uint64_t max_bytes,
    uint32_t keep)
{
	struct modellog_out_file o = { -1, dirfd, file, 0, max_bytes, keep };
	char		*buf;
	struct stat	 sb;
	size_t		 have = 0, end;
	ssize_t		 n;

	buf = xmalloc(MODELLOG_BUF);
	o.fd = openat(dirfd, file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640);
	if (o.fd != -1 && fstat(o.fd, &sb) == 0)
		o.size = (uint64_t)sb.st_size;
	for (;;) {
		n = read(in, buf + have, MODELLOG_BUF - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		for (end = have; end > 0 && buf[end - 1] != '\n'; end--)
			;
		if (end == 0 && have == MODELLOG_BUF)
			end = have;	/* a line longer than the buffer */
		modellog_keeper_put(&o, buf, end);
		memmove(buf, buf + end, have - end);
		have -= end;
	}
	modellog_keeper_put(&o, buf, have);	/* a last line without end */
	if (o.fd != -1)
		close(o.fd);
	free(buf);
}

/* Close fds lo..hi (inclusive), one by one if close_range is missing. */
static void
modellog_close_range(unsigned lo, unsigned hi)
{
	if (close_range(lo, hi, 0) == 0)
		return;
	for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
		close((int)fd);
}

/* In the keeper: close every descriptor but the ones listed. */
static void
modellog_close_others(const int *keep, size_t n)
{
	unsigned	lo = 3;

	for (;;) {
		int	next = -1;

		for (size_t i = 0; i < n; i++)
			if (keep[i] >= (int)lo && (next == -1 || keep[i] < next))
				next = keep[i];
		if (next == -1) {
			modellog_close_range(lo, ~0U);
			return;
		}
		if ((unsigned)next > lo)
			modellog_close_range(lo, (unsigned)next - 1);
		lo = (unsigned)next + 1;
	}
}

/* Fork the keeper for pipe p (read end), signalling alive when done. */
static int
modellog_fork_keeper(struct supervisor *sup, const char *file, int in,
    int alive, int dirfd, char *err, size_t errlen)
{
	pid_t	pid, kid;
	int	status, devnull, keep[3] = { in, alive, dirfd };
	sigset_t set;

	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return (-1);
	}
	if (pid == 0) {
		if ((kid = fork()) != 0)
			_exit(kid == -1 ? 1 : 0);
		/* The keeper: named so that ps and top tell it apart. */
		(void)prctl(PR_SET_NAME, "llmux-logkeeper", 0, 0, 0);
		setsid();
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		sigemptyset(&set);
		sigprocmask(SIG_SETMASK, &set, NULL);
		if ((devnull = open("/dev/null", O_RDWR)) != -1) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			if (devnull > STDERR_FILENO)
				close(devnull);
		}
		modellog_close_others(keep, 3);
		modellog_keeper_run(in, dirfd, file,
		    sup->conf->model_log_max_bytes, sup->conf->model_log_keep);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "cannot start the log keeper");
		return (-1);
	}
	return (0);
}

static int
modellog_mkdir(const char *dir)
{
	if (mkdir(dir, 0750) == -1 && errno != EEXIST)
		return (-1);
	return (0);
}

int
modellog_open(struct supervisor *sup, struct model *m, bool file_mode,
    struct modellog_out *out, char *err, size_t errlen)
{
	char	*path, *name, *file, header[256], when[64];
	int	 p[2], a[2], dirfd, hl;
	time_t	 now = time(NULL);
	struct tm tm;

	out->fd = out->flushed_fd = -1;
	out->file_mode = file_mode;
	if (modellog_mkdir(sup->conf->log_dir) == -1) {
		snprintf(err, errlen, "cannot create log_dir %s: %s",
		    sup->conf->log_dir, strerror(errno));
		return (-1);
	}
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	hl = snprintf(header, sizeof(header), "--- llmux: starting model %s "
	    "at %s ---\n", m->name, when);
	if (hl < 0 || (size_t)hl >= sizeof(header))
		hl = (int)strlen(header);

	if (file_mode) {
		path = modellog_path(sup, m->name, 0);
		out->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		    0640);
		if (out->fd == -1) {
			snprintf(err, errlen, "cannot open %s: %s", path,
			    strerror(errno));
			free(path);
			return (-1);
		}
		free(path);
		(void)modellog_write_all(out->fd, header, (size_t)hl);
		return (0);
	}

	if ((dirfd = open(sup->conf->log_dir, O_DIRECTORY | O_RDONLY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open log_dir %s: %s",
		    sup->conf->log_dir, strerror(errno));
		return (-1);
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(dirfd);
		return (-1);
	}
	if (pipe2(a, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(dirfd);
		close(p[0]);
		close(p[1]);
		return (-1);
	}
	name = model_path_name(m->name);
	xasprintf(&file, "%s.log", name);
	free(name);
	if (modellog_fork_keeper(sup, file, p[0], a[1], dirfd, err,
	    errlen) == -1) {
		free(file);
		close(dirfd);
		close(p[0]);
		close(p[1]);
		close(a[0]);
		close(a[1]);
		return (-1);
	}
	free(file);
	close(dirfd);
	close(p[0]);
	close(a[1]);
	(void)modellog_write_all(p[1], header, (size_t)hl);
	out->fd = p[1];
	out->flushed_fd = a[0];
	return (0);
}

char *
modellog_tail(const struct supervisor *sup, const char *model, int lines,
    size_t max_bytes)
{
	char		*path, *buf, *p;
	struct stat	 sb;
	off_t		 from;
	size_t		 len = 0;
	int		 fd, seen = 0;

	path = modellog_path(sup, model, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd == -1)
		return (NULL);
	if (fstat(fd, &sb) == -1) {
		close(fd);
		return (NULL);
	}
	from = sb.st_size > (off_t)max_bytes ? sb.st_size - (off_t)max_bytes :
	    0;
	buf = xmalloc(max_bytes + 1);
	if (lseek(fd, from, SEEK_SET) == from)
		len = procfs_read_fd(fd, buf, max_bytes);
	close(fd);
	buf[len] = '\0';
	/* Drop a trailing newline, then walk back over `lines` lines. */
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	p = buf + len;
	while (p > buf) {
		if (p[-1] == '\n' && ++seen == lines)
			break;
		p--;
	}
	if (p == buf && from > 0) {
		/* The first line may be cut: start after its newline. */
		char	*nl = strchr(buf, '\n');

		if (nl != NULL)
			p = nl + 1;
	}
	memmove(buf, p, strlen(p) + 1);
	return (buf);
}

/* Copy-truncate rotation of a plain-file log past its cap. */
void
modellog_check_file(struct supervisor *sup, const char *model)
{
	char		*path, *to, buf[MODELLOG_BUF];
	struct stat	 sb;
	uint64_t	 max = sup->conf->model_log_max_bytes;
	uint32_t	 keep = sup->conf->model_log_keep;
	int		 in, outfd, dirfd;
	ssize_t		 n;

	path = modellog_path(sup, model, 0);
	if (max == 0 || stat(path, &sb) == -1 || (uint64_t)sb.st_size <= max) {
		free(path);
		return;
	}
	if (keep > 0) {
		char	*name = model_path_name(model), *file;

		xasprintf(&file, "%s.log", name);
		free(name);
		if ((dirfd = open(sup->conf->log_dir, O_DIRECTORY | O_RDONLY |
		    O_CLOEXEC)) != -1) {
			modellog_shift(dirfd, file, keep);
			close(dirfd);
		}
		free(file);
		to = modellog_path(sup, model, 1);
		in = open(path, O_RDONLY | O_CLOEXEC);
		outfd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0640);
		while (in != -1 && outfd != -1 &&
		    (n = read(in, buf, sizeof(buf))) > 0)
			if (modellog_write_all(outfd, buf, (size_t)n) == -1)
				break;
		if (in != -1)
			close(in);
		if (outfd != -1)
			close(outfd);
		free(to);
	}
	if (truncate(path, 0) == -1)
		log_warn("cannot truncate model log path=%s", path);
	else
		log_info("model log rotated model=%s bytes=%lld", model,
		    (long long)sb.st_size);
	free(path);
}
