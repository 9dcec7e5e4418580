/*
 * process.c -- one model process tree: starting it (identity, log, cgroup,
 * spawn.c), adopting one left by an earlier supervisor, noticing its exit
 * at once through a pidfd watched by libevent, and stopping the whole tree
 * so that nothing survives: SIGTERM to the group and to every member found
 * in /proc (descendants and the leader's session), SIGKILL after a grace
 * period, and cgroup.kill when the model has a cgroup. Each member is
 * watched by its own pidfd, so a stop completes when the last one is gone
 * and signals never reach a recycled pid.
 */
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"

#ifndef P_PIDFD
#define P_PIDFD	3
#endif

#define PROCESS_MAX_MEMBERS	1024
#define PROCESS_LOG_FLUSH_MS	1000

extern char **environ;

struct process_member {
	struct process_stop	*stop;
	pid_t			 pid;
	int			 pidfd;
	struct event		*ev;
	bool			 gone;
};

struct process_stop {
	struct process		*p;
	struct process_member	*v;
	size_t			 n;
	bool			 leader_gone;
	bool			 killed;	/* SIGKILL sent */
	int64_t			 grace_ms;
	struct event		*ev_timer;
	struct event		*ev_done;
	process_cb		 cb;
	void			*arg;
};

struct process_flush {
	struct event	*ev;
	process_cb	 cb;
	void		*arg;
};

static void	process_exit_cb(evutil_socket_t, short, void *);
static void	process_stop_check(struct process_stop *);

static int
process_pidfd_open(pid_t pid)
{
	return ((int)syscall(SYS_pidfd_open, pid, 0));
}

static int
process_pidfd_signal(int pidfd, int sig)
{
	return ((int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0));
}

/* As root, the configured user; unprivileged, ourselves (said once). */
static int
process_identity(struct supervisor *sup, struct spawn_spec *sp,
    char ***envp, char *err, size_t errlen)
{
	struct passwd	*pw;
	char		*kv;
	size_t		 n;

	if (!sup->privileged) {
		if (!sup->said_unprivileged) {
			pw = getpwuid(sup->uid);
			log_info("running unprivileged: models run as this "
			    "process's user, not as the configured user "
			    "uid=%u user=%s configured=%s", (unsigned)sup->uid,
			    pw != NULL ? pw->pw_name : "?", sup->conf->user);
			sup->said_unprivileged = true;
		}
		sp->drop = false;
		return (0);
	}
	if ((pw = getpwnam(sup->conf->user)) == NULL) {
		snprintf(err, errlen, "user '%s' does not exist (set user: in "
		    "the config, or create it)", sup->conf->user);
		return (-1);
	}
	sp->drop = true;
	sp->uid = pw->pw_uid;
	sp->gid = pw->pw_gid;
	n = spawn_strv_len(*envp);
	/* The user's own HOME, USER and LOGNAME. */
	const char *keys[] = { "HOME", "USER", "LOGNAME" };
	const char *vals[] = { pw->pw_dir, pw->pw_name, pw->pw_name };
	for (size_t k = 0; k < 3; k++) {
		size_t	klen = strlen(keys[k]), i;

		xasprintf(&kv, "%s=%s", keys[k], vals[k]);
		for (i = 0; i < n; i++) {
			if (strncmp((*envp)[i], keys[k], klen) == 0 &&
			    (*envp)[i][klen] == '=') {
				free((*envp)[i]);
				(*envp)[i] = kv;
				break;
			}
		}
		if (i == n) {
			*envp = xreallocarray(*envp, n + 2, sizeof(char *));
			(*envp)[n++] = kv;
			(*envp)[n] = NULL;
		}
	}
	return (0);
}

static struct process *
process_new(struct model *m, pid_t pid, int pidfd)
{
	struct process	*p;

	p = xcalloc(1, sizeof(*p));
	p->model = m;
	p->pid = pid;
	p->pidfd = pidfd;
	p->flushed_fd = -1;
	p->started_ms = clock_ms();
	p->ev_exit = event_new(m->sup->base, pidfd, EV_READ | EV_PERSIST,
	    process_exit_cb, p);
	event_add(p->ev_exit, NULL);
	return (p);
}

struct process *
process_start(struct model *m, char *err, size_t errlen)
{
	struct supervisor	*sup = m->sup;
	struct model_config	*mc = m->cfg;
	struct spawn_spec	 sp;
	struct modellog_out	 out;
	struct eviction		 ev = model_eviction(m);
	struct procfs_stat	 st;
	struct process		*p;
	char			*cgroup = NULL;
	bool			 criu;
	pid_t			 pid;
	int			 pidfd;

	if (mc == NULL) {
		snprintf(err, errlen, "model is no longer configured");
		return (NULL);
	}
	criu = ev.process == PROCESS_CHECKPOINT || mc->checkpoint_path != NULL ||
	    m->start_for_criu;
	m->start_for_criu = false;
	memset(&sp, 0, sizeof(sp));
	sp.cgroup_fd = -1;
	sp.argv = spawn_argv(sup->conf, mc);
	sp.envp = spawn_envp(environ, mc, criu);
	if (process_identity(sup, &sp, &sp.envp, err, errlen) != 0)
		goto fail;
	if (modellog_open(sup, m, criu, &out, err, errlen) != 0)
		goto fail;
	sp.out_fd = out.fd;
	if ((cgroup = cgroup_create(sup, m->name)) != NULL &&
	    (sp.cgroup_fd = cgroup_open_procs(cgroup)) == -1) {
		log_warn("cannot open cgroup.procs, not using a cgroup path=%s",
		    cgroup);
		free(cgroup);
		cgroup = NULL;
	}
	pid = spawn_exec(&sp, err, errlen);
	close(out.fd);
	if (sp.cgroup_fd != -1)
		close(sp.cgroup_fd);
	if (pid == -1) {
		if (out.flushed_fd != -1)
			close(out.flushed_fd);
		goto fail;
	}
	if ((pidfd = process_pidfd_open(pid)) == -1) {
		snprintf(err, errlen, "pidfd_open: %s (Linux 5.3 or later is "
		    "needed)", strerror(errno));
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (out.flushed_fd != -1)
			close(out.flushed_fd);
		goto fail;
	}
	p = process_new(m, pid, pidfd);
	p->cgroup = cgroup;
	p->port = mc->port;
	p->tp = mc->tensor_parallel_size > 0 ? mc->tensor_parallel_size : 1;
	p->flushed_fd = out.flushed_fd;
	p->log_file_mode = out.file_mode;
	if (procfs_read_stat(pid, &st) == 0)
		p->start_time = st.starttime;
	log_info("model process started model=%s pid=%d port=%u cmd=%s "
	    "user=%s log=%s", m->name, (int)pid, (unsigned)p->port, sp.argv[0],
	    sp.drop ? sup->conf->user : "(supervisor's)",
	    out.file_mode ? "file" : "pipe");
	spawn_strv_free(sp.argv);
	spawn_strv_free(sp.envp);
	return (p);

fail:
	if (cgroup != NULL) {
		cgroup_remove(cgroup);
		free(cgroup);
	}
	spawn_strv_free(sp.argv);
	spawn_strv_free(sp.envp);
	return (NULL);
}

struct process *
process_adopt(struct model *m, pid_t pid, uint64_t start_time,
    const char *cgroup, uint16_t port, char *err, size_t errlen)
{
	struct process	*p;
	int		 pidfd;

	if (!procfs_alive(pid, start_time)) {
		snprintf(err, errlen, "process %d is gone", (int)pid);
		return (NULL);
	}
	if ((pidfd = process_pidfd_open(pid)) == -1) {
		snprintf(err, errlen, "pidfd_open %d: %s", (int)pid,
		    strerror(errno));
		return (NULL);
	}
	/* Checked again now that the pidfd pins the process. */
	if (!procfs_alive(pid, start_time)) {
		close(pidfd);
		snprintf(err, errlen, "process %d is gone", (int)pid);
		return (NULL);
	}
	p = process_new(m, pid, pidfd);
	p->start_time = start_time;
	p->cgroup = cgroup != NULL ? xstrdup(cgroup) : NULL;
	p->port = port;
	p->tp = m->cfg != NULL && m->cfg->tensor_parallel_size > 0 ?
	    m->cfg->tensor_parallel_size : 1;
	p->adopted = true;
	/*
	 * Its output: a file when it was started for a checkpoint eviction
	 * or restored by CRIU (rotated by the supervisor, and CRIU can dump
	 * it), else the log keeper's pipe.
	 */
	p->log_file_mode = procfs_fd_is_file(pid, STDOUT_FILENO);
	return (p);
}

/*
 * Does the leader's pid still name our tree? The kernel keeps a pid that
 * is in use as a process group or session id, so once the leader is gone
 * the pid can only be taken by a new process when nothing of our group or
 * session is left: a live process with that pid and another start time
 * means there is nothing of ours to find by that id (and signalling it
 * would hit a stranger).
 */
static bool
process_ids_ours(const struct process *p)
{
	struct procfs_stat	st;

	if (procfs_read_stat(p->pid, &st) != 0)
		return (true);
	return (st.starttime == p->start_time);
}

/* The members of the tree (not the leader), if the ids are still ours. */
static size_t
process_scan(const struct process *p, struct procfs_stat *out, size_t max)
{
	if (!process_ids_ours(p))
		return (0);
	return (procfs_members(p->pid, out, max));
}

/* SIGKILL whatever is left of a tree whose leader is gone. */
static void
process_kill_remnants(struct process *p)
{
	struct procfs_stat	*mem;
	size_t			 n;

	mem = xcalloc(PROCESS_MAX_MEMBERS, sizeof(*mem));
	n = process_scan(p, mem, PROCESS_MAX_MEMBERS);
	for (size_t i = 0; i < n; i++) {
		int	fd = process_pidfd_open(mem[i].pid);

		if (fd == -1)
			continue;
		log_info("killing what is left of a model's tree model=%s "
		    "pid=%d", p->model->name, (int)mem[i].pid);
		process_pidfd_signal(fd, SIGKILL);
		close(fd);
	}
	free(mem);
	if (p->cgroup != NULL)
		cgroup_kill(p->cgroup);
}

static void
process_exit_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct process	*p = arg;
	struct model	*m = p->model;
	siginfo_t	 si;
	char		 reason[512];
	int64_t		 ran;

	if (p->adopted)
		snprintf(reason, sizeof(reason), "exited (status unknown: "
		    "adopted from an earlier supervisor)");
	else {
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si,
		    WEXITED | WNOHANG) == -1) {
			if (errno == EINTR)
				return;
			snprintf(reason, sizeof(reason), "exited (%s)",
			    strerror(errno));
		} else if (si.si_pid == 0)
			return;		/* not yet */
		else
			procfs_exit_reason(si.si_code, si.si_status, reason,
			    sizeof(reason));
	}
	if (p->kill_reason != NULL) {
		char	how[128];

		snprintf(how, sizeof(how), "%.120s", reason);
		snprintf(reason, sizeof(reason), "%s: %s", p->kill_reason, how);
	}
	event_del(p->ev_exit);
	p->exited = true;
	free(p->exit_reason);
	p->exit_reason = xstrdup(reason);
	ran = clock_ms() - p->started_ms;
	log_info("model process exited model=%s pid=%d reason=\"%s\" "
	    "ran_ms=%lld%s", m->name, (int)p->pid, reason, (long long)ran,
	    p->stop != NULL ? " (stopping)" : "");

	if (p->stop != NULL) {
		p->stop->leader_gone = true;
		process_stop_check(p->stop);
		return;
	}
	if (m->op != NULL) {
		evict_process_exited(m);
		return;
	}
	process_kill_remnants(p);
	m->proc = NULL;
	process_free(p);
	model_process_exited(m, reason, ran);
}

static void
process_member_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct process_member	*pm = arg;

	pm->gone = true;
	event_del(pm->ev);
	process_stop_check(pm->stop);
}

static void
process_stop_signal(struct process_stop *ps, int sig)
{
	struct process	*p = ps->p;

	if (!ps->leader_gone)
		process_pidfd_signal(p->pidfd, sig);
	/* The group outlives its leader while any member is left. */
	if (process_ids_ours(p))
		kill(-p->pid, sig);
	for (size_t i = 0; i < ps->n; i++)
		if (!ps->v[i].gone)
			process_pidfd_signal(ps->v[i].pidfd, sig);
	if (sig == SIGKILL && p->cgroup != NULL)
		cgroup_kill(p->cgroup);
}

static void
process_stop_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct process_stop	*ps = arg;
	struct timeval		 tv;

	if (!ps->killed) {
		log_info("model did not stop in time, killing it model=%s "
		    "pid=%d grace_ms=%lld", ps->p->model->name, (int)ps->p->pid,
		    (long long)ps->grace_ms);
		ps->killed = true;
		process_stop_signal(ps, SIGKILL);
		tv.tv_sec = PROCESS_KILL_WAIT_MS / 1000;
		tv.tv_usec = (PROCESS_KILL_WAIT_MS % 1000) * 1000;
		evtimer_add(ps->ev_timer, &tv);
		return;
	}
	log_warnx("model processes survived SIGKILL (uninterruptible?) "
	    "model=%s pid=%d", ps->p->model->name, (int)ps->p->pid);
	ps->leader_gone = true;
	for (size_t i = 0; i < ps->n; i++)
		ps->v[i].gone = true;
	process_stop_check(ps);
}

static void
process_stop_free(struct process_stop *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		event_free(ps->v[i].ev);
		close(ps->v[i].pidfd);
	}
	free(ps->v);
	event_free(ps->ev_timer);
	event_free(ps->ev_done);
	free(ps);
}

static void
process_stop_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct process_stop	*ps = arg;
	struct process		*p = ps->p;
	process_cb		 cb = ps->cb;
	void			*cbarg = ps->arg;

	if (p->cgroup != NULL)
		cgroup_remove(p->cgroup);
	p->stop = NULL;
	process_stop_free(ps);
	if (cb != NULL)
		cb(p, cbarg);
}

static void
process_stop_check(struct process_stop *ps)
{
	if (!ps->leader_gone)
		return;
	for (size_t i = 0; i < ps->n; i++)
		if (!ps->v[i].gone)
			return;
	evtimer_del(ps->ev_timer);
	/* From the loop, so the caller never sees p freed under it. */
	event_active(ps->ev_done, EV_TIMEOUT, 0);
}

void
process_stop(struct process *p, int64_t grace_ms, process_cb cb, void *arg)
{
	struct event_base	*base = p->model->sup->base;
	struct process_stop	*ps;
	struct procfs_stat	*mem;
	struct timeval		 tv;
	size_t			 n;

	if (p->stop != NULL) {
		p->stop->cb = cb;
		p->stop->arg = arg;
		return;
	}
	ps = xcalloc(1, sizeof(*ps));
	ps->p = p;
	ps->cb = cb;
	ps->arg = arg;
	ps->grace_ms = grace_ms;
	ps->leader_gone = p->exited;
	ps->ev_timer = evtimer_new(base, process_stop_timer_cb, ps);
	ps->ev_done = event_new(base, -1, 0, process_stop_done_cb, ps);
	p->stop = ps;

	mem = xcalloc(PROCESS_MAX_MEMBERS, sizeof(*mem));
	n = process_scan(p, mem, PROCESS_MAX_MEMBERS);
	ps->v = xcalloc(n == 0 ? 1 : n, sizeof(*ps->v));
	for (size_t i = 0; i < n; i++) {
		struct process_member	*pm = &ps->v[ps->n];

		if ((pm->pidfd = process_pidfd_open(mem[i].pid)) == -1)
			continue;
		/* Checked again now that the pidfd pins it. */
		if (!procfs_alive(mem[i].pid, mem[i].starttime)) {
			close(pm->pidfd);
			continue;
		}
		pm->stop = ps;
		pm->pid = mem[i].pid;
		pm->ev = event_new(base, pm->pidfd, EV_READ, process_member_cb,
		    pm);
		event_add(pm->ev, NULL);
		ps->n++;
	}
	free(mem);
	log_info("stopping model model=%s pid=%d members=%zu grace_ms=%lld",
	    p->model->name, (int)p->pid, ps->n, (long long)grace_ms);
	if (grace_ms <= 0) {
		ps->killed = true;
		process_stop_signal(ps, SIGKILL);
		grace_ms = PROCESS_KILL_WAIT_MS;
	} else
		process_stop_signal(ps, SIGTERM);
	tv.tv_sec = grace_ms / 1000;
	tv.tv_usec = (grace_ms % 1000) * 1000;
	evtimer_add(ps->ev_timer, &tv);
	process_stop_check(ps);
}

bool
process_stopping(const struct process *p)
{
	return (p->stop != NULL);
}

size_t
process_members(const struct process *p, pid_t *out, size_t max)
{
	struct procfs_stat	*mem;
	size_t			 n, o = 0;

	if (max == 0)
		return (0);
	if (!p->exited)
		out[o++] = p->pid;
	mem = xcalloc(PROCESS_MAX_MEMBERS, sizeof(*mem));
	n = process_scan(p, mem, PROCESS_MAX_MEMBERS);
	for (size_t i = 0; i < n && o < max; i++)
		out[o++] = mem[i].pid;
	free(mem);
	return (o);
}

static void
process_flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct process		*p = arg;
	struct process_flush	*pf = p->flush;
	process_cb		 cb = pf->cb;
	void			*cbarg = pf->arg;

	event_free(pf->ev);
	free(pf);
	p->flush = NULL;
	cb(p, cbarg);
}

void
process_wait_log(struct process *p, process_cb cb, void *arg)
{
	struct process_flush	*pf;
	struct timeval		 tv = { PROCESS_LOG_FLUSH_MS / 1000,
				    (PROCESS_LOG_FLUSH_MS % 1000) * 1000 };

	if (p->flush != NULL) {
		p->flush->cb = cb;
		p->flush->arg = arg;
		return;
	}
	pf = xcalloc(1, sizeof(*pf));
	pf->cb = cb;
	pf->arg = arg;
	p->flush = pf;
	if (p->flushed_fd == -1) {
		pf->ev = event_new(p->model->sup->base, -1, 0,
		    process_flush_cb, p);
		event_active(pf->ev, EV_TIMEOUT, 0);
		return;
	}
	pf->ev = event_new(p->model->sup->base, p->flushed_fd, EV_READ,
	    process_flush_cb, p);
	event_add(pf->ev, &tv);
}

void
process_wait_log_cancel(struct process *p)
{
	if (p->flush == NULL)
		return;
	event_free(p->flush->ev);
	free(p->flush);
	p->flush = NULL;
}

/*
 * Kill the whole tree at once (a hung model: liveness.c). The leader's
 * pidfd pins it; its exit, seen as any death is, kills the rest and is
 * reported with why before the kernel's reason.
 */
void
process_kill(struct process *p, const char *why)
{
	if (p->exited)
		return;
	free(p->kill_reason);
	p->kill_reason = xstrdup(why);
	if (process_pidfd_signal(p->pidfd, SIGKILL) == -1)
		log_warn("cannot kill model process model=%s pid=%d",
		    p->model->name, (int)p->pid);
}

void
process_free(struct process *p)
{
	process_wait_log_cancel(p);
	if (p->stop != NULL)
		process_stop_free(p->stop);
	event_free(p->ev_exit);
	close(p->pidfd);
	if (p->flushed_fd != -1)
		close(p->flushed_fd);
	free(p->cgroup);
	free(p->exit_reason);
	free(p->kill_reason);
	free(p);
}
