/*
 * persist.c -- keeping the state journal (journal.c) current: every
 * change of a model schedules a write, and the writes of one pass of the
 * event loop are coalesced into one (a switch changes several models at
 * once). At exit the journal is written synchronously.
 *
 * Writes from the event loop are not fsynced. The journal is for a
 * supervisor that dies or restarts while the machine stays up: the page
 * cache keeps the renamed file whatever happens to the process. After a
 * crash of the machine no model process survives to be adopted, and the
 * pid and start time checks (adopt.c) refuse whatever a stale journal
 * says. An fsync in the loop, on the other hand, costs milliseconds in
 * the middle of every switch. The last write at exit is made durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "supervisor.h"
#include "xmalloc.h"

void
persist_snapshot(struct supervisor *sup, struct journal *j)
{
	struct model		*m;
	struct journal_entry	*e;
	enum evict_kind		 kind;
	size_t			 n = 0;
	const char		*pinned;

	memset(j, 0, sizeof(*j));
	/* Before the switcher exists, what the journal said is kept. */
	if (sup->switcher != NULL) {
		j->manual = switching_manual(sup);
		pinned = switching_pinned(sup);
		if ((m = switching_active(sup)) != NULL)
			j->active = xstrdup(m->name);
	} else {
		j->manual = sup->journal_manual;
		pinned = sup->journal_pinned;
	}
	j->pinned = pinned != NULL ? xstrdup(pinned) : NULL;
	TAILQ_FOREACH(m, &sup->models, entry)
		n++;
	j->v = xcalloc(n == 0 ? 1 : n, sizeof(*j->v));
	TAILQ_FOREACH(m, &sup->models, entry) {
		e = &j->v[j->n++];
		e->name = xstrdup(m->name);
		e->pstate = m->pstate;
		e->generation = m->generation;
		e->tp = 1;
		if (m->cfg != NULL)
			e->port = m->cfg->port;
		if (m->proc != NULL && !m->proc->exited) {
			e->pid = m->proc->pid;
			e->start_time = m->proc->start_time;
			e->port = m->proc->port;
			e->tp = m->proc->tp;
			if (m->proc->cgroup != NULL)
				e->cgroup = xstrdup(m->proc->cgroup);
		}
		if (m->pstate == MODEL_SLEEPING ||
		    m->pstate == MODEL_CHECKPOINTED) {
			e->has_sleeping = true;
			e->sleeping = m->sleeping;
		}
		e->has_override = m->has_override;
		e->override = m->override;
		if (evict_busy(m, &kind, NULL))
			e->busy = xstrdup(evict_kind_name(kind));
		if (m->images != NULL)
			e->images = xstrdup(m->images);
		if (m->reason != NULL)
			e->reason = xstrdup(m->reason);
	}
}

void
persist_flush(struct supervisor *sup, bool durable)
{
	struct journal	j;
	char		err[512];

	if (!sup->journal_dirty)
		return;
	sup->journal_dirty = false;
	persist_snapshot(sup, &j);
	if (journal_write_file(sup->conf->state_dir, &j, durable, err,
	    sizeof(err)) != 0) {
		if (sup->journal_failures++ == 0)
			log_warnx("cannot write the state journal, a restart "
			    "will not re-adopt models reason=\"%s\"", err);
	} else {
		if (sup->journal_failures > 0)
			log_info("state journal written again after %llu "
			    "failures", (unsigned long long)
			    sup->journal_failures);
		sup->journal_failures = 0;
		sup->journal_writes++;
	}
	journal_free(&j);
}

static void
persist_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	persist_flush(arg, false);
}

void
persist_schedule(struct supervisor *sup)
{
	sup->journal_dirty = true;
	if (sup->ev_journal == NULL) {
		sup->ev_journal = event_new(sup->base, -1, 0, persist_write_cb,
		    sup);
	}
	if (!event_pending(sup->ev_journal, EV_TIMEOUT, NULL))
		event_active(sup->ev_journal, EV_TIMEOUT, 0);
}
