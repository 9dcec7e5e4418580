/*
 * adopt.c -- at start, taking back what an earlier supervisor left
 * running. Every model process in the journal that is still alive (same
 * pid and same start time in /proc, so a recycled pid is never taken for
 * it) is adopted: watched by a pidfd again and checked with /health, then
 * put back in its recorded state, without a restart. What is dead is
 * cleaned up (leftover session members, cgroups). A process caught in the
 * middle of an operation (sleep, wake, stop) is in an unknown state and is
 * stopped, as is one whose model is no longer configured.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"

#define ADOPT_MAX_MEMBERS	1024

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

void
adopt_from_journal(struct supervisor *sup)
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
