/*
 * criu.c -- checkpointing a model's whole process tree to disk with CRIU
 * and its CUDA plugin, and restoring it (the checkpoint process strategy,
 * the checkpoint and restore calls, and a model's checkpoint_path).
 *
 * Dump, as llmux 0.7 (Rust) does it: stale /dev/shm/link_remap.* files
 * removed, then `criu dump -t PID --shell-job --ext-unix-sk
 * --tcp-established --link-remap --enable-external-masters -L
 * cuda_plugin_dir`, into images_dir/NAME/images.tmp; when it succeeds,
 * every image file is hashed into a manifest (store/manifest.c) with the
 * model and the machine it was made on, and the directory is renamed to
 * images_dir/NAME/images, so a failed dump (ENOSPC, say) never replaces
 * good images.
 *
 * Restore: the manifest is read and checked against this machine (driver,
 * GPU kinds and count), the model (path and port) and the files'
 * checksums (their names and sizes only after a download, which hashed
 * every byte as it wrote it: each byte is hashed once); an image that
 * fails is refused with the reason and never restored. Then `criu restore --restore-detached --pidfile`, and the
 * restored tree's pid is handed back for re-adoption (evict_step.c).
 *
 * criu runs as a child of the supervisor with its output in files (no
 * pipes: the restored tree must not inherit one), watched by a pidfd;
 * the file work (hashing, renaming, removing) runs on worker threads.
 *
 * Every directory is opened safely (base/fs.c: from "/", no link
 * followed, owned by root, not writable by others) or the dump or restore
 * is refused with the path and why; images, manifest, logs and pidfile
 * are then read and written below those descriptors, never by path.
 * criu gets them as descriptors too: the images directory as fd 3 and
 * its work directory (images_dir/NAME, where its logs and pidfile go)
 * as fd 4, named -D /proc/self/fd/3 -W /proc/self/fd/4, with its log
 * and pidfile relative to the work directory it changes into.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "criu_int.h"

#ifndef P_PIDFD
#define P_PIDFD	3
#endif

#define CRIU_TIMEOUT_MS		(3600 * 1000)	/* a dump of 100s of GB */
#define CRIU_IMAGES_FD		3	/* in criu: -D /proc/self/fd/3 */
#define CRIU_WORK_FD		4	/* in criu: -W /proc/self/fd/4 */

extern char **environ;

enum criu_kind { CRIU_DUMP, CRIU_RESTORE };

/* One dump or restore, from start to callback. */
struct criu_op {
	struct supervisor	*sup;
	enum criu_kind		 kind;
	criu_cb			 cb;
	criu_progress_cb	 progress;
	void			*arg;

	char			*criu;		/* the program */
	char			*plugin_dir;
	char			*top;		/* images_dir */
	char			*name;		/* NAME, as model_path_name */
	char			*base;		/* images_dir/NAME */
	char			*dir;		/* images (final) */
	struct images_loc	 loc;		/* RESTORE: where dir is */
	char			*tmp;		/* DUMP: images.tmp */
	const char		*log;		/* criu's -o log, in base */
	int			 base_fd;	/* images_dir/NAME */
	int			 img_fd;	/* DUMP: images.tmp; RESTORE */
	int			 out_fd;	/* criu's stdout and stderr */
	bool			 remove_after;	/* RESTORE: !keep_images */
	bool			 checked;	/* RESTORE: sums checked */
	pid_t			 target;	/* DUMP: the tree's root */
	struct manifest		 man;		/* DUMP: what to write */
	char			*nvml_path;
	char			*cuda_path;

	pid_t			 child;
	int			 pidfd;
	struct event		*ev_exit;
	struct event		*ev_timeout;
	int64_t			 start_ms;

	bool			 ok;
	pid_t			 restored;
	char			 reason[1024];
};

static void	criu_op_finish(struct criu_op *);

/* ---- running criu ---------------------------------------------------------------- */

static void
criu_op_free(struct criu_op *op)
{
	if (op->ev_exit != NULL)
		event_free(op->ev_exit);
	if (op->ev_timeout != NULL)
		event_free(op->ev_timeout);
	if (op->pidfd != -1)
		close(op->pidfd);
	if (op->base_fd != -1)
		close(op->base_fd);
	if (op->img_fd != -1)
		close(op->img_fd);
	if (op->out_fd != -1)
		close(op->out_fd);
	free(op->criu);
	free(op->plugin_dir);
	free(op->top);
	free(op->name);
	free(op->base);
	free(op->dir);
	model_path_loc_free(&op->loc);
	free(op->tmp);
	free(op->nvml_path);
	free(op->cuda_path);
	manifest_free(&op->man);
	free(op);
}

static void
criu_progress(struct criu_op *op, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
criu_progress(struct criu_op *op, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;

	if (op->progress == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	op->progress(buf, op->arg);
}

/*
 * In the child: its output to out, the images and work directories as
 * fds 3 and 4 (moved out of the way first, so no dup2 lands on a source
 * still needed, and dup2 clears close-on-exec), nothing else, then criu.
 */
static void __attribute__((noreturn))
criu_child(char **argv, int out, int images, int work)
{
	int	fd;

	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	out = fcntl(out, F_DUPFD, 10);
	images = fcntl(images, F_DUPFD, 10);
	work = fcntl(work, F_DUPFD, 10);
	if (out == -1 || images == -1 || work == -1)
		_exit(126);
	if ((fd = open("/dev/null", O_RDONLY)) != -1 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
	if (dup2(out, 1) == -1 || dup2(out, 2) == -1 ||
	    dup2(images, CRIU_IMAGES_FD) == -1 ||
	    dup2(work, CRIU_WORK_FD) == -1)
		_exit(126);
	closefrom(CRIU_WORK_FD + 1);
	execvp(argv[0], argv);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void
criu_exit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct criu_op	*op = arg;
	siginfo_t	 si;
	char		 why[512];

	memset(&si, 0, sizeof(si));
	if (ev & EV_TIMEOUT) {
		log_warnx("criu takes too long, killing it pid=%d",
		    (int)op->child);
		syscall(SYS_pidfd_send_signal, op->pidfd, SIGKILL, NULL, 0);
		return;
	}
	if (waitid((idtype_t)P_PIDFD, (id_t)op->pidfd, &si, WEXITED |
	    WNOHANG) == -1 || si.si_pid == 0)
		return;
	event_del(op->ev_exit);
	event_del(op->ev_timeout);
	op->child = -1;
	if (si.si_code == CLD_EXITED && si.si_status == 0) {
		op->ok = true;
		criu_op_finish(op);
		return;
	}
	procfs_exit_reason(si.si_code, si.si_status, why, sizeof(why));
	criu_log_reason(op->base_fd, op->log, op->reason, sizeof(op->reason));
	if (op->reason[0] == '\0')
		criu_log_reason(op->base_fd, "criu.out", op->reason,
		    sizeof(op->reason));
	{
		char	detail[sizeof(op->reason)];

		snprintf(detail, sizeof(detail), "%s", op->reason);
		snprintf(op->reason, sizeof(op->reason), "criu %s %.200s%s%.700s",
		    op->kind == CRIU_DUMP ? "dump" : "restore", why,
		    detail[0] != '\0' ? ": " : "", detail);
	}
	op->ok = false;
	criu_op_finish(op);
}

static int
criu_spawn(struct criu_op *op, char **argv)
{
	struct timeval	tv = { CRIU_TIMEOUT_MS / 1000, 0 };
	pid_t		pid;

	log_info("running criu kind=%s argv0=%s dir=%s", op->kind == CRIU_DUMP ?
	    "dump" : "restore", argv[0], op->kind == CRIU_DUMP ? op->tmp :
	    op->dir);
	if ((pid = fork()) == -1) {
		snprintf(op->reason, sizeof(op->reason), "cannot fork: %s",
		    strerror(errno));
		return (-1);
	}
	if (pid == 0)
		criu_child(argv, op->out_fd, op->img_fd, op->base_fd);
	op->child = pid;
	if ((op->pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1) {
		snprintf(op->reason, sizeof(op->reason), "pidfd_open: %s",
		    strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return (-1);
	}
	op->ev_exit = event_new(op->sup->base, op->pidfd, EV_READ |
	    EV_PERSIST, criu_exit_cb, op);
	op->ev_timeout = evtimer_new(op->sup->base, criu_exit_cb, op);
	event_add(op->ev_exit, NULL);
	evtimer_add(op->ev_timeout, &tv);
	return (0);
}

static struct criu_op *
criu_op_new(struct model *m, enum criu_kind kind, criu_cb cb,
    criu_progress_cb progress, void *arg)
{
	const struct config	*conf = m->sup->conf;
	struct criu_op		*op;
	char			*dir;

	op = xcalloc(1, sizeof(*op));
	op->sup = m->sup;
	op->kind = kind;
	op->cb = cb;
	op->progress = progress;
	op->arg = arg;
	op->pidfd = -1;
	op->base_fd = op->img_fd = op->out_fd = -1;
	op->child = -1;
	op->start_ms = clock_ms();
	op->criu = xstrdup(criu_program(conf));
	op->plugin_dir = xstrdup(conf->checkpoint.cuda_plugin_dir != NULL ?
	    conf->checkpoint.cuda_plugin_dir : "/usr/lib/criu/");
	op->nvml_path = xstrdup(conf->gpu.nvml_library != NULL ?
	    conf->gpu.nvml_library : "libnvidia-ml.so.1");
	op->cuda_path = xstrdup(conf->gpu.cuda_library != NULL ?
	    conf->gpu.cuda_library : "libcuda.so.1");
	dir = model_path_images(conf, m->name);
	op->base = xstrndup(dir, strlen(dir) - strlen("/images"));
	free(dir);
	op->top = model_path_images_dir(conf);
	op->name = model_path_name(m->name);
	op->log = kind == CRIU_DUMP ? "dump.log" : "restore.log";
	return (op);
}

/*
 * images_dir/NAME, made if need be, opened safely; its logs and criu's
 * output made afresh. On a worker thread; op->reason says why not.
 */
static int
criu_open_work(struct criu_op *op)
{
	char	err[1024];

	if ((op->base_fd = fs_open_dir(op->top, op->name, true, err,
	    sizeof(err))) == -1) {
		snprintf(op->reason, sizeof(op->reason), "%s refused: %.900s",
		    op->kind == CRIU_DUMP ? "checkpoint" : "restore", err);
		return (-1);
	}
	(void)unlinkat(op->base_fd, op->log, 0);
	(void)unlinkat(op->base_fd, "criu.out", 0);
	if (op->kind == CRIU_RESTORE)
		(void)unlinkat(op->base_fd, "restore.pid", 0);
	if ((op->out_fd = openat(op->base_fd, "criu.out", O_WRONLY | O_CREAT |
	    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		snprintf(op->reason, sizeof(op->reason), "cannot create "
		    "%s/criu.out: %s", op->base, strerror(errno));
		return (-1);
	}
	return (0);
}

/* Hand the outcome back from the loop, as every other step does. */
static void
criu_op_report(evutil_socket_t fd, short ev, void *arg)
{
	struct criu_op	*op = arg;

	log_info("criu %s done ok=%d ms=%lld%s%s%s", op->kind == CRIU_DUMP ?
	    "dump" : "restore", op->ok, (long long)(clock_ms() -
	    op->start_ms), op->ok ? "" : " reason=\"", op->ok ? "" :
	    op->reason, op->ok ? "" : "\"");
	op->cb(op->ok, op->ok ? NULL : op->reason, op->restored, op->arg);
	criu_op_free(op);
}

static void
criu_op_report_soon(struct criu_op *op)
{
	struct timeval	tv = { 0, 0 };

	event_base_once(op->sup->base, -1, EV_TIMEOUT, criu_op_report, op,
	    &tv);
}

/* The machine as a manifest sees it: driver and GPUs (NVML). */
static void
criu_machine(const struct criu_op *op, struct manifest *m)
{
	struct gpu_snapshot	s;
	char			err[256];

	if (cuda_open(op->cuda_path, err, sizeof(err)) == 0)
		m->cuda = cuda_driver_version();
	if (nvml_open(op->nvml_path, err, sizeof(err)) != 0 ||
	    nvml_snapshot(&s, err, sizeof(err)) != 0) {
		m->driver = xstrdup("none");
		return;
	}
	m->driver = xstrdup(s.driver);
	m->gpus = xcalloc(s.n > 0 ? s.n : 1, sizeof(*m->gpus));
	for (size_t i = 0; i < s.n; i++) {
		m->gpus[i].index = s.v[i].index;
		m->gpus[i].name = xstrdup(s.v[i].name);
		m->gpus[i].uuid = xstrdup(s.v[i].uuid);
	}
	m->ngpus = s.n;
	nvml_snapshot_free(&s);
}

/*
 * Back from the worker that prepared criu's run: true when criu is to run
 * now (with op->ok false again, for its outcome); false when the op was
 * cancelled (and is freed) or its preparation failed (and is reported).
 */
static bool
criu_prepared(struct criu_op *op, bool cancelled)
{
	if (cancelled) {
		criu_op_free(op);
		return (false);
	}
	if (!op->ok) {
		criu_op_report_soon(op);
		return (false);
	}
	op->ok = false;
	return (true);
}

/* ---- dump ------------------------------------------------------------------------ */

static void
criu_dump_prepare(void *arg)
{
	struct criu_op	*op = arg;
	char		 err[1024];

	criu_remove_link_remap();
	if (criu_open_work(op) != 0)
		return;
	fs_rmtree_at(op->base_fd, "images.tmp");
	if ((op->img_fd = fs_open_sub(op->base_fd, op->base, "images.tmp",
	    true, err, sizeof(err))) == -1) {
		snprintf(op->reason, sizeof(op->reason), "%s", err);
		return;
	}
	op->ok = true;
}

static void
criu_dump_prepared(void *arg, bool cancelled)
{
	struct criu_op	*op = arg;
	char		 pid[32], images[32], work[32];
	char		*argv[] = { op->criu, "dump", "-t", pid, "-D", images,
			    "-W", work, "-o", (char *)op->log, "-v4",
			    "--shell-job", "--ext-unix-sk", "--tcp-established",
			    "--link-remap", "--enable-external-masters", "-L",
			    op->plugin_dir, NULL };

	if (!criu_prepared(op, cancelled))
		return;
	snprintf(pid, sizeof(pid), "%d", (int)op->target);
	snprintf(images, sizeof(images), "/proc/self/fd/%d", CRIU_IMAGES_FD);
	snprintf(work, sizeof(work), "/proc/self/fd/%d", CRIU_WORK_FD);
	criu_progress(op, "criu dump of pid %d to %s", (int)op->target,
	    op->tmp);
	if (criu_spawn(op, argv) != 0)
		criu_op_report_soon(op);
}

/* Hash the images, write the manifest, rename into place. */
static void
criu_dump_seal(void *arg)
{
	struct criu_op	*op = arg;

	op->ok = false;
	criu_machine(op, &op->man);
	op->man.created = (int64_t)time(NULL);
	if (manifest_scan(op->img_fd, op->tmp, &op->man, op->reason,
	    sizeof(op->reason)) != 0 ||
	    manifest_write(op->img_fd, op->tmp, &op->man, op->reason,
	    sizeof(op->reason)) != 0) {
		fs_rmtree_at(op->base_fd, "images.tmp");
		return;
	}
	fs_fsync_fd(op->img_fd);
	fs_rmtree_at(op->base_fd, "images.old");
	if (renameat(op->base_fd, "images", op->base_fd, "images.old") != 0 &&
	    errno != ENOENT) {
		snprintf(op->reason, sizeof(op->reason), "cannot move the old "
		    "images aside: %s", strerror(errno));
		fs_rmtree_at(op->base_fd, "images.tmp");
		return;
	}
	if (renameat(op->base_fd, "images.tmp", op->base_fd, "images") != 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot rename %s: "
		    "%s", op->tmp, strerror(errno));
		(void)renameat(op->base_fd, "images.old", op->base_fd,
		    "images");
		fs_rmtree_at(op->base_fd, "images.tmp");
		return;
	}
	fs_fsync_fd(op->base_fd);
	fs_rmtree_at(op->base_fd, "images.old");
	op->ok = true;
}

static void
criu_cleanup(void *arg)
{
	struct criu_op	*op = arg;
	char		 err[256];
	int		 parent;

	if (op->kind == CRIU_DUMP) {
		if (op->base_fd != -1)
			fs_rmtree_at(op->base_fd, "images.tmp");
	} else if (op->remove_after && (parent = fs_open_loc_parent(&op->loc,
	    false, err, sizeof(err))) != -1) {
		fs_rmtree_at(parent, op->loc.name);
		close(parent);
	}
}

static void
criu_job_done(void *arg, bool cancelled)
{
	struct criu_op	*op = arg;

	if (cancelled) {
		criu_op_free(op);
		return;
	}
	criu_op_report_soon(op);
}

/* criu is done (or never ran): seal a dump, or clean up after it. */
static void
criu_dump_finish(struct criu_op *op)
{
	if (!op->ok) {
		worker_run(op->sup, criu_cleanup, criu_job_done, op);
		return;
	}
	criu_progress(op, "writing the manifest of %s", op->dir);
	worker_run(op->sup, criu_dump_seal, criu_job_done, op);
}

int
criu_dump(struct model *m, const struct eviction *ev, criu_cb cb,
    criu_progress_cb progress, void *arg)
{
	struct criu_op	*op = criu_op_new(m, CRIU_DUMP, cb, progress, arg);
	char		 why[256];

	op->dir = model_path_images(m->sup->conf, m->name);
	xasprintf(&op->tmp, "%s.tmp", op->dir);
	op->target = m->proc != NULL ? m->proc->pid : 0;
	op->man.model = xstrdup(m->name);
	op->man.model_path = xstrdup(m->cfg != NULL ? m->cfg->model_path : "");
	op->man.port = m->cfg != NULL ? m->cfg->port : 0;
	op->man.tp = m->proc != NULL ? m->proc->tp : 1;
	op->man.has_eviction = true;
	op->man.eviction = *ev;
	if (!criu_available(m->sup->conf, why, sizeof(why)) ||
	    op->target <= 0) {
		snprintf(op->reason, sizeof(op->reason), "%s", op->target <= 0 ?
		    "the model has no process" : why);
		criu_op_report_soon(op);
		return (0);
	}
	worker_run(m->sup, criu_dump_prepare, criu_dump_prepared, op);
	return (0);
}

/* ---- restore ------------------------------------------------------------------------ */

/* Is this image for this model, and made on a machine like this one? */
static void
criu_restore_check(void *arg)
{
	struct criu_op	*op = arg;
	struct manifest	 img, here;
	char		 err[512];

	op->ok = false;
	memset(&here, 0, sizeof(here));
	memset(&img, 0, sizeof(img));
	if (criu_open_work(op) != 0)
		return;
	if ((op->img_fd = fs_open_loc(&op->loc, err, sizeof(err))) == -1) {
		snprintf(op->reason, sizeof(op->reason), "restore refused: "
		    "%.900s", err);
		return;
	}
	if (manifest_read(op->img_fd, &img, err, sizeof(err)) != 0) {
		snprintf(op->reason, sizeof(op->reason), "image refused: %s",
		    err);
		return;
	}
	criu_machine(op, &here);
	if (manifest_match(&img, &here, err, sizeof(err)) != 0) {
		snprintf(op->reason, sizeof(op->reason), "image refused: it "
		    "was %s", err);
		goto out;
	}
	if (op->man.port != 0 && img.port != op->man.port) {
		snprintf(op->reason, sizeof(op->reason), "image refused: it "
		    "serves port %u, model %s is configured on port %u",
		    img.port, op->man.model, op->man.port);
		goto out;
	}
	if (op->man.model_path != NULL && img.model_path != NULL &&
	    strcmp(img.model_path, op->man.model_path) != 0) {
		snprintf(op->reason, sizeof(op->reason), "image refused: it "
		    "holds %s, model %s is %s", img.model_path, op->man.model,
		    op->man.model_path);
		goto out;
	}
	if ((op->checked ? manifest_verify_sizes(op->img_fd, op->dir, &img,
	    err, sizeof(err)) : manifest_verify(op->img_fd, op->dir, &img,
	    err, sizeof(err))) != 0) {
		snprintf(op->reason, sizeof(op->reason), "image refused: %s",
		    err);
		goto out;
	}
	op->ok = true;
out:
	manifest_free(&img);
	manifest_free(&here);
}

static void
criu_restore_checked(void *arg, bool cancelled)
{
	struct criu_op	*op = arg;
	char		 images[32], work[32];
	char		*argv[] = { op->criu, "restore", "-D", images,
			    "-W", work, "-o", (char *)op->log, "-v4",
			    "--restore-detached", "--pidfile", "restore.pid",
			    "--shell-job", "--ext-unix-sk", "--tcp-established",
			    "--enable-external-masters", "-L", op->plugin_dir,
			    NULL };

	if (!criu_prepared(op, cancelled))
		return;
	snprintf(images, sizeof(images), "/proc/self/fd/%d", CRIU_IMAGES_FD);
	snprintf(work, sizeof(work), "/proc/self/fd/%d", CRIU_WORK_FD);
	criu_progress(op, "criu restore from %s", op->dir);
	if (criu_spawn(op, argv) != 0)
		criu_op_report_soon(op);
}

static void
criu_restore_finish(struct criu_op *op)
{
	char		 text[64], err[256];
	ssize_t		 n = -1;
	long		 pid = 0;
	int		 fd;

	if (op->ok) {
		/* Small, and below the work directory's descriptor. */
		if ((fd = fs_open_file(op->base_fd, op->base, "restore.pid",
		    err, sizeof(err))) != -1) {
			n = read(fd, text, sizeof(text) - 1);
			close(fd);
		}
		if (n > 0) {
			text[n] = '\0';
			pid = strtol(text, NULL, 10);
		}
		if (pid <= 1 || pid > INT_MAX) {
			op->ok = false;
			snprintf(op->reason, sizeof(op->reason), "criu restore "
			    "left no pid in %s/restore.pid", op->base);
		} else
			op->restored = (pid_t)pid;
	}
	if (op->ok && op->remove_after) {
		worker_run(op->sup, criu_cleanup, criu_job_done, op);
		return;
	}
	criu_op_report_soon(op);
}

int
criu_restore(struct model *m, const char *dir, bool checked, criu_cb cb,
    criu_progress_cb progress, void *arg)
{
	struct criu_op	*op = criu_op_new(m, CRIU_RESTORE, cb, progress,
			    arg);
	char		*ours, why[256];

	op->dir = xstrdup(dir);
	model_path_locate(m->sup->conf, dir, &op->loc);
	op->checked = checked;
	op->man.model = xstrdup(m->name);
	op->man.model_path = m->cfg != NULL ? xstrdup(m->cfg->model_path) :
	    NULL;
	op->man.port = m->cfg != NULL ? m->cfg->port : 0;
	/* Only our own images go; a checkpoint_path is the operator's. */
	ours = model_path_images(m->sup->conf, m->name);
	op->remove_after = !m->sup->conf->checkpoint.keep_images &&
	    strcmp(ours, dir) == 0;
	free(ours);
	if (*dir == '\0' || !criu_available(m->sup->conf, why,
	    sizeof(why))) {
		snprintf(op->reason, sizeof(op->reason), "%s", *dir == '\0' ?
		    "no images to restore" : why);
		criu_op_report_soon(op);
		return (0);
	}
	if (checked)
		criu_progress(op, "checking the manifest of %s (the checksums "
		    "were checked as it was downloaded)", dir);
	else
		criu_progress(op, "checking the manifest and the checksums of "
		    "%s", dir);
	worker_run(m->sup, criu_restore_check, criu_restore_checked, op);
	return (0);
}

static void
criu_op_finish(struct criu_op *op)
{
	if (op->kind == CRIU_DUMP)
		criu_dump_finish(op);
	else
		criu_restore_finish(op);
}
