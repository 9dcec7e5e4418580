/*
 * adopt.c -- at start, taking back what an earlier supervisor left
 * running. Every model process in the journal that is still alive (same
 * pid and same start time in /proc, so a recycled pid is never taken for
 * it) is adopted: watched by a pidfd again and checked with /health, then
 * put back in its recorded state, without a restart. What is dead is
 * cleaned up (leftover session members, cgroups). A process caught in the
 * middle of an operation (sleep, wake, stop) is in an unknown state and is
 * stopped, as is one whose model is no longer configured.
 *
 * Then, journal or not (lost, damaged, or one change behind), each model
 * without a process has its port looked at: a process listening there
 * that is llmux's own -- in the model's cgroup, or running the model's
 * own command line (spawn_argv) as a session leader -- is adopted, its
 * state asked of it (GET /is_sleeping; evict_adopt_found), so a new start
 * never fails on the port beside an untracked orphan and crash-loops. A
 * process that is not llmux's is never signalled: the model reports it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"

#define ADOPT_MAX_MEMBERS	1024
#define ADOPT_MAX_HOLDERS	64
#define ADOPT_MAX_CMDLINE	(256u << 10)

/*
 * Kill what is left of a dead leader's session. Only when no process has
 * the leader's pid any more: then a session with that id can only be the
 * old one (the kernel keeps the id while the session has members).
 */
static void
adopt_sweep(const char *name, pid_t pid)
{
	struct procfs_stat	 st, *mem;
	size_t			 n;

	if (procfs_read_stat(pid, &st) == 0)
		return;
	mem = xcalloc(ADOPT_MAX_MEMBERS, sizeof(*mem));
	n = procfs_members(pid, mem, ADOPT_MAX_MEMBERS);
	for (size_t i = 0; i < n; i++) {
		if (mem[i].session != pid)
			continue;
		log_info("killing a leftover process of a dead model model=%s "
		    "pid=%d", name, (int)mem[i].pid);
		kill(mem[i].pid, SIGKILL);
	}
	free(mem);
}

static void
adopt_orphan_stopped(struct model *m, const struct evict_report *r,
    void *arg)
{
	log_info("stopped a process of a model no longer configured model=%s",
	    m->name);
	model_free_later(m);
}

static void
adopt_entry(struct supervisor *sup, const struct journal_entry *e)
{
	struct model	*m = model_find(sup, e->name);
	struct process	*p;
	enum model_pstate st = e->pstate;
	char		 err[256];
	int64_t		 timeout;

	if (m != NULL) {
		m->generation = e->generation;
		m->has_override = e->has_override;
		m->override = e->override;
		if (e->has_sleeping)
			m->sleeping = e->sleeping;
		/* Where its checkpoint is stored, or why its upload failed
		 * (the next sleep with a checkpoint uploads it again). */
		free(m->store_url);
		m->store_url = e->store_url != NULL ? xstrdup(e->store_url) :
		    NULL;
		free(m->store_error);
		m->store_error = e->store_error != NULL ?
		    xstrdup(e->store_error) : NULL;
	}
	if (e->pid <= 0) {
		if (m != NULL && st == MODEL_CHECKPOINTED && e->images != NULL) {
			m->pstate = MODEL_CHECKPOINTED;
			free(m->images);	/* a checkpoint_path's */
			m->images = xstrdup(e->images);
		}
		return;
	}
	if (!procfs_alive(e->pid, e->start_time)) {
		log_info("model process from the journal is gone model=%s "
		    "pid=%d", e->name, (int)e->pid);
		adopt_sweep(e->name, e->pid);
		if (e->cgroup != NULL) {
			cgroup_kill(e->cgroup);
			cgroup_remove(e->cgroup);
		}
		if (m != NULL && (st == MODEL_RUNNING || st == MODEL_SLEEPING ||
		    st == MODEL_STARTING))
			model_set_error(m, "the process exited while the "
			    "supervisor was not running");
		return;
	}
	if (m == NULL) {
		/* Not configured any more: adopt it only to stop it. */
		m = model_new_unconfigured(sup, e->name);
	}
	if ((p = process_adopt(m, e->pid, e->start_time, e->cgroup, e->port,
	    err, sizeof(err))) == NULL) {
		log_warnx("cannot adopt model process model=%s pid=%d "
		    "reason=\"%s\"", e->name, (int)e->pid, err);
		if (m->cfg == NULL)
			model_free(m);
		return;
	}
	if (e->tp > 0)
		p->tp = e->tp;
	m->proc = p;
	m->pstate = st;
	log_info("adopted model process model=%s pid=%d state=%s%s%s",
	    m->name, (int)e->pid, model_pstate_name(st),
	    e->busy != NULL ? " interrupted=" : "",
	    e->busy != NULL ? e->busy : "");
	if (m->cfg == NULL) {
		evict_stop(m, adopt_orphan_stopped, NULL, NULL);
		return;
	}
	/* A start may go on; anything else half done is stopped. */
	if (st != MODEL_STARTING && (e->busy != NULL ||
	    (st != MODEL_RUNNING && st != MODEL_SLEEPING))) {
		model_set_error(m, "stopped after a supervisor restart: its "
		    "state was not known");
		evict_stop(m, NULL, NULL, NULL);
		return;
	}
	if (st == MODEL_STARTING) {
		timeout = (int64_t)config_model_startup_timeout(sup->conf,
		    m->cfg) * 1000;
		evict_adopt(m, MODEL_RUNNING, timeout);
	} else
		evict_adopt(m, st, EVICT_HEALTH_TIMEOUT_MS);
}

static void
adopt_journal(struct supervisor *sup)
{
	struct journal	 j;
	char		 err[512], *path, *bad;
	int		 rc;

	rc = journal_read_file(sup->conf->state_dir, &j, err, sizeof(err));
	if (rc == 0)
		return;
	if (rc < 0) {
		path = journal_path(sup->conf->state_dir);
		xasprintf(&bad, "%s.bad", path);
		log_warnx("state journal is unreadable, starting without it "
		    "(kept as %s) reason=\"%s\"", bad, err);
		(void)rename(path, bad);
		free(path);
		free(bad);
		return;
	}
	/* For the switcher, made once every model is known (switching.c). */
	sup->journal_manual = j.manual;
	if (j.pinned != NULL && model_find(sup, j.pinned) != NULL)
		sup->journal_pinned = xstrdup(j.pinned);
	for (size_t i = 0; i < j.n; i++)
		adopt_entry(sup, &j.v[i]);
	journal_free(&j);
	persist_schedule(sup);
}

/* ---- a model's port held without a journal entry ---------------------------- */

static const char *
adopt_base(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return (slash != NULL ? slash + 1 : path);
}

/*
 * Is cmdline (NUL-separated, as in /proc/PID/cmdline) the command llmux
 * starts the model with? Its arguments after the program must end the
 * command line, and the word before them name the same program by its
 * base name: vLLM's `vllm` is a script, which the kernel runs as
 * `python3 /usr/bin/vllm serve ...`.
 */
bool
adopt_is_model_command(const struct config *conf,
    const struct model_config *mc, const char *cmdline, size_t len)
{
	char		**want = spawn_argv(conf, mc);
	const char	**got;
	size_t		  nw = spawn_strv_len(want), ng = 0, off;
	bool		  same = false;

	if (len > 0 && cmdline[len - 1] == '\0')
		len--;
	got = xcalloc(len + 2, sizeof(*got));
	for (size_t i = 0; i <= len; ) {
		got[ng++] = cmdline + i;
		i += strnlen(cmdline + i, len - i) + 1;
	}
	if (len > 0 && ng >= nw && nw > 0) {
		off = ng - nw;
		same = strcmp(adopt_base(got[off]), adopt_base(want[0])) == 0;
		for (size_t i = 1; same && i < nw; i++)
			same = strcmp(got[off + i], want[i]) == 0;
	}
	free(got);
	spawn_strv_free(want);
	return (same);
}

/* The model's cgroup, when pid is in it (a new string), else NULL. */
static char *
adopt_cgroup_of(struct supervisor *sup, const struct model *m, pid_t pid)
{
	char	 path[64], rel[1024], *buf, *name, *want, *slash, *full = NULL;
	size_t	 len, plen, rlen;

	if (sup->cgroup_root == NULL)
		return (NULL);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if ((buf = procfs_read_file(path, 65536, &len)) == NULL)
		return (NULL);
	if (procfs_cgroup2_path(buf, len, rel, sizeof(rel)) != 0 ||
	    (slash = strrchr(rel, '/')) == NULL) {
		free(buf);
		return (NULL);
	}
	free(buf);
	name = model_path_name(m->name);
	xasprintf(&want, "model.%s", name);
	free(name);
	/* cgroup_root is the mount point then our own cgroup's path. */
	plen = (size_t)(slash - rel);
	rlen = strlen(sup->cgroup_root);
	if (strcmp(slash + 1, want) == 0 && rlen >= plen &&
	    strncmp(sup->cgroup_root + rlen - plen, rel, plen) == 0)
		xasprintf(&full, "%s/%s", sup->cgroup_root, want);
	free(want);
	return (full);
}

static void
adopt_port_holder(struct supervisor *sup, struct model *m)
{
	pid_t			 holders[ADOPT_MAX_HOLDERS], leader = 0;
	struct procfs_stat	 st, ls;
	struct process		*p;
	char			 path[64], err[256], *cmd, *cgroup = NULL;
	size_t			 n, len;
	bool			 by_cmd = false, listening;

	n = procfs_port_holders(m->cfg->port, holders, ADOPT_MAX_HOLDERS,
	    &listening);
	for (size_t i = 0; i < n && leader == 0; i++) {
		if (holders[i] == getpid() ||
		    procfs_read_stat(holders[i], &st) != 0 ||
		    procfs_read_stat(st.session, &ls) != 0 ||
		    ls.session != ls.pid)
			continue;
		/* Our model processes lead their session (spawn.c). */
		cgroup = adopt_cgroup_of(sup, m, ls.pid);
		by_cmd = false;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)ls.pid);
		if ((cmd = procfs_read_file(path, ADOPT_MAX_CMDLINE,
		    &len)) != NULL) {
			by_cmd = adopt_is_model_command(sup->conf, m->cfg, cmd,
			    len);
			free(cmd);
		}
		if (cgroup != NULL || by_cmd)
			leader = ls.pid;
	}
	if (!listening)
		return;
	if (leader == 0) {
		if (n > 0)
			snprintf(path, sizeof(path), "process %d",
			    (int)holders[0]);
		else
			snprintf(path, sizeof(path), "a process of another "
			    "user");
		snprintf(err, sizeof(err), "port %u is held by %s, which is "
		    "not one of llmux's model processes",
		    (unsigned)m->cfg->port, path);
		log_warnx("a model's port is held by another program model=%s "
		    "port=%u holder=\"%s\"", m->name, (unsigned)m->cfg->port,
		    path);
		model_set_error(m, err);
		return;
	}
	p = process_adopt(m, leader, ls.starttime, cgroup, m->cfg->port, err,
	    sizeof(err));
	if (p == NULL) {
		log_warnx("cannot adopt the process on a model's port model=%s "
		    "pid=%d reason=\"%s\"", m->name, (int)leader, err);
		free(cgroup);
		return;
	}
	m->proc = p;
	m->generation++;
	m->pstate = MODEL_STARTING;	/* until /is_sleeping says */
	log_info("adopted a model process found on its port, not in the "
	    "journal model=%s pid=%d port=%u by=%s", m->name, (int)leader,
	    (unsigned)m->cfg->port, cgroup != NULL ? "cgroup" :
	    "command_line");
	free(cgroup);
	evict_adopt_found(m, EVICT_HEALTH_TIMEOUT_MS);
}

void
adopt_from_journal(struct supervisor *sup)
{
	struct model	*m;

	adopt_journal(sup);
	TAILQ_FOREACH(m, &sup->models, entry)
		if (m->cfg != NULL && !m->removed && m->proc == NULL)
			adopt_port_holder(sup, m);
}
