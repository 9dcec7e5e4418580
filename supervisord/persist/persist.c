/*
 * persist.c -- keeping the state journal (journal.c) current: every
 * change of a model schedules a write, and the writes of one pass of the
 * event loop are coalesced into one (a switch changes several models at
 * once); a journal the same as the last one written is not written again.
 *
 * The loop encodes the journal; a writer thread writes it (a temp file,
 * then a rename), so the loop never waits for the disk: on ext4 replacing
 * a file by a rename flushes its data, half a millisecond each time, and
 * a switch changes the journal five times. The thread takes the latest
 * text only (older ones waiting are dropped) and tells the loop how its
 * writes went through an eventfd.
 *
 * The thread writes durably (fsync of the file, rename, fsync of the
 * directory), so the journal on disk is always a whole one; since the loop
 * never waits for it, that costs a switch nothing (an fsync took 17 ms a
 * switch when the loop did it). A supervisor killed between a change and
 * the thread's write leaves the journal one change behind, which adoption
 * handles like any other mismatch: the pid and start time checks (adopt.c)
 * refuse what is no longer true. At exit the thread is stopped and the
 * last journal written from the loop, durably.
 *
 * What an operator is told must not be forgotten that way, though: the
 * reply to a control call that changed something waits until the
 * journal saying so is on disk (persist_after). Each text handed to the
 * thread has a number; a waiter waits for the number of the text that
 * holds what is known when it asks (the next one, when a change is not
 * encoded yet: that is the last one handed over again when the new text
 * is the same), and runs when the thread has written that one or a later
 * one.
 */
#include <sys/eventfd.h>
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"

struct persist_waiter {
	bool			 next;	/* for the text not encoded yet */
	uint64_t		 seq;	/* the text it waits for */
	void			(*fn)(void *);
	void			*arg;
	TAILQ_ENTRY(persist_waiter) entry;
};

struct persist {
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	bool		 stop;
	/* The next write, handed over by the loop (owned). */
	char		*dir;
	char		*buf;
	size_t		 len;
	uint64_t	 seq;		/* of buf */
	uint64_t	 written;	/* the last seq the thread wrote */
	/* What the thread did since the loop last looked. */
	uint64_t	 ok;
	uint64_t	 failed;
	bool		 last_ok;
	char		 error[512];
	int		 efd;		/* the thread says: results */
	struct event	*ev;
	/* The loop's: the last text handed over, and its number. */
	char		*last;
	size_t		 last_len;
	uint64_t	 handed;
	TAILQ_HEAD(, persist_waiter) waiters;
};

/*
 * The active model the journal records: the first the switcher has active
 * (llmux 0.7 had one), if the config still has it.
 */
static const char *
persist_active(struct supervisor *sup)
{
	uint64_t	 mask = switcher_active(sup->switcher);
	const char	*name;
	struct model	*m;

	if (mask == 0 || (name = switcher_model_name(sup->switcher,
	    __builtin_ctzll(mask))) == NULL ||
	    (m = model_find(sup, name)) == NULL)
		return (NULL);
	return (m->name);
}

void
persist_snapshot(struct supervisor *sup, struct journal *j)
{
	struct model		*m;
	struct journal_entry	*e;
	enum evict_kind		 kind;
	size_t			 n = 0;
	const char		*pinned, *active;

	memset(j, 0, sizeof(*j));
	/* Before the switcher exists, what the journal said is kept. */
	if (sup->switcher != NULL) {
		j->manual = switcher_mode(sup->switcher) == SWITCHER_MANUAL;
		pinned = switcher_model_name(sup->switcher,
		    switcher_pinned(sup->switcher));
		if ((active = persist_active(sup)) != NULL)
			j->active = xstrdup(active);
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
		if (m->store_url != NULL)
			e->store_url = xstrdup(m->store_url);
		if (m->store_error != NULL)
			e->store_error = xstrdup(m->store_error);
	}
}

static void *
persist_thread(void *arg)
{
	struct persist	*p = arg;
	char		*dir, *buf, err[512];
	size_t		 len;
	uint64_t	 one = 1, seq;
	int		 rc;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->buf == NULL)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		dir = p->dir;
		buf = p->buf;
		len = p->len;
		seq = p->seq;
		p->dir = p->buf = NULL;
		pthread_mutex_unlock(&p->lock);

		rc = journal_write_buf(dir, buf, len, true, err, sizeof(err));
		free(dir);
		free(buf);

		pthread_mutex_lock(&p->lock);
		p->written = seq;
		p->last_ok = rc == 0;
		if (rc == 0)
			p->ok++;
		else {
			p->failed++;
			snprintf(p->error, sizeof(p->error), "%s", err);
		}
		/* Only an overflowing counter refuses the write (EAGAIN),
		 * and then a wake-up is pending anyway. */
		if (write(p->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("cannot wake the loop for the journal");
	}
	pthread_mutex_unlock(&p->lock);
	return (NULL);
}

/* Account for writes: a failure is logged once, a recovery too. */
static void
persist_result(struct supervisor *sup, uint64_t ok, uint64_t failed,
    bool last_ok, const char *err)
{
	if (failed > 0 && sup->journal_failures == 0 && !last_ok)
		log_warnx("cannot write the state journal, a restart will not "
		    "re-adopt models reason=\"%s\"", err);
	sup->journal_writes += ok;
	if (last_ok) {
		if (sup->journal_failures > 0)
			log_info("state journal written again after %llu "
			    "failures", (unsigned long long)
			    sup->journal_failures);
		sup->journal_failures = 0;
	} else
		sup->journal_failures += failed;
}

/* Run the waiters whose text is written (every one: all). */
static void
persist_release(struct persist *p, bool all)
{
	struct persist_waiter	*w, *next;
	uint64_t		 written;

	pthread_mutex_lock(&p->lock);
	written = p->written;
	pthread_mutex_unlock(&p->lock);
	for (w = TAILQ_FIRST(&p->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (!all && (w->next || w->seq > written))
			continue;
		TAILQ_REMOVE(&p->waiters, w, entry);
		w->fn(w->arg);
		free(w);
	}
}

static void
persist_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct persist		*p = sup->persist;
	uint64_t		 n, ok, failed;
	bool			 last_ok;
	char			 err[512];

	/* EAGAIN: the flush at exit calls this with nothing to read. */
	if (read(p->efd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("cannot read the journal writer's wake-up");
	pthread_mutex_lock(&p->lock);
	ok = p->ok;
	failed = p->failed;
	last_ok = p->last_ok;
	snprintf(err, sizeof(err), "%s", p->error);
	p->ok = p->failed = 0;
	pthread_mutex_unlock(&p->lock);
	if (ok > 0 || failed > 0)
		persist_result(sup, ok, failed, last_ok, err);
	persist_release(p, false);
}

static struct persist *
persist_start(struct supervisor *sup)
{
	struct persist	*p;

	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	TAILQ_INIT(&p->waiters);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	p->ev = event_new(sup->base, p->efd, EV_READ | EV_PERSIST,
	    persist_done_cb, sup);
	event_add(p->ev, NULL);
	if ((errno = pthread_create(&p->thread, NULL, persist_thread, p)) != 0)
		fatal("pthread_create");
	return (p);
}

/* Hand the journal to the writer thread, unless it is what it has. */
static void
persist_hand(struct supervisor *sup, struct persist *p)
{
	struct journal		 j;
	char			*buf;
	size_t			 len;

	persist_snapshot(sup, &j);
	if (journal_encode(&j, &buf, &len) != 0) {
		journal_free(&j);
		persist_result(sup, 0, 1, false, "journal too large");
		return;
	}
	journal_free(&j);
	if (p->last != NULL && p->last_len == len &&
	    memcmp(p->last, buf, len) == 0) {
		free(buf);
		return;
	}
	free(p->last);
	p->last = xmalloc(len);
	memcpy(p->last, buf, len);
	p->last_len = len;
	pthread_mutex_lock(&p->lock);
	free(p->dir);
	free(p->buf);
	p->dir = xstrdup(sup->conf->state_dir);
	p->buf = buf;
	p->len = len;
	p->seq = ++p->handed;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void
persist_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct persist		*p;
	struct persist_waiter	*w;

	if (!sup->journal_dirty || sup->exiting)
		return;
	sup->journal_dirty = false;
	if (sup->persist == NULL)
		sup->persist = persist_start(sup);
	p = sup->persist;
	persist_hand(sup, p);
	/* The text the waiters of this pass wait for is known now. */
	TAILQ_FOREACH(w, &p->waiters, entry) {
		if (w->next) {
			w->next = false;
			w->seq = p->handed;
		}
	}
	persist_release(p, false);
}

void
persist_after(struct supervisor *sup, void (*fn)(void *), void *arg)
{
	struct persist		*p = sup->persist;
	struct persist_waiter	*w;
	uint64_t		 written = 0;

	if (!sup->journal_dirty) {
		if (p != NULL) {
			pthread_mutex_lock(&p->lock);
			written = p->written;
			pthread_mutex_unlock(&p->lock);
		}
		if (p == NULL || p->handed <= written) {
			fn(arg);
			return;
		}
	}
	if (p == NULL)
		p = sup->persist = persist_start(sup);
	w = xcalloc(1, sizeof(*w));
	w->next = sup->journal_dirty;
	w->seq = p->handed;
	w->fn = fn;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
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

/* Stop the writer thread, after the write it may be doing. */
void
persist_free(struct supervisor *sup)
{
	struct persist	*p = sup->persist;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	persist_done_cb(p->efd, 0, sup);
	persist_release(p, true);
	event_free(p->ev);
	close(p->efd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->dir);
	free(p->buf);
	free(p->last);
	free(p);
	sup->persist = NULL;
}

/* At exit: the journal as it is now, written durably from the loop. */
void
persist_flush(struct supervisor *sup)
{
	struct journal	j;
	char		err[512];
	int		rc;

	persist_free(sup);
	persist_snapshot(sup, &j);
	rc = journal_write_file(sup->conf->state_dir, &j, true, err,
	    sizeof(err));
	persist_result(sup, rc == 0 ? 1 : 0, rc == 0 ? 0 : 1, rc == 0, err);
	journal_free(&j);
	sup->journal_dirty = false;
}
