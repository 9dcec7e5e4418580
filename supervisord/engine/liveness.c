/*
 * liveness.c -- is each model that should answer still answering? Every
 * health_check_secs the supervisor sends GET /health to each model that
 * runs awake, or asleep with its process kept (vLLM answers /health while
 * asleep), and that no operation is busy with, but for the server's own
 * HTTP calls (a sleep that hangs would hold a switch until its deadline).
 * A model that fails LIVENESS_FAILURES checks in a row (no answer within
 * three quarters of the interval, at most LIVENESS_MAX_WAIT_MS, or an
 * error status) is hung: a stopped process, a dead lock, a server that
 * lost its port. It is killed with SIGKILL and its exit is handled as any
 * death is (docs/supervisor.md): the requests it held end, the switcher
 * is told, an awake model is restarted, an operation in progress fails.
 * A pidfd sees a process die; only a check sees it stop.
 *
 * The proxy says when it could not reach a model (its port refused the
 * connection): that model is checked at once, killed if this one check
 * fails too, and handed back to the caller if it answers.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"

/* How often when checks are off: a reload may turn them on. */
#define LIVENESS_IDLE_MS	1000
/* How long a check the proxy asked for waits when checks are off. */
#define LIVENESS_ASKED_WAIT_MS	5000

static void	liveness_tick(evutil_socket_t, short, void *);

/*
 * May m be checked now? Not while it starts, stops, is checkpointed or
 * suspended, or warms up; during a sleep or a wake only while the
 * operation waits for one of the server's own HTTP calls.
 */
static bool
liveness_wanted(const struct model *m)
{
	/* A process killed already: its exit is on its way. */
	if (m->proc == NULL || m->proc->exited || process_stopping(m->proc) ||
	    m->proc->kill_reason != NULL ||
	    (m->op != NULL && !evict_in_http_step(m)) || m->warming ||
	    m->removed)
		return (false);
	if (m->pstate == MODEL_RUNNING)
		return (true);
	return (m->pstate == MODEL_SLEEPING &&
	    m->sleeping.process == PROCESS_KEEP_RUNNING);
}

static void
liveness_schedule(struct supervisor *sup)
{
	uint32_t	secs = sup->conf->health_check_secs;
	int64_t		ms = secs != 0 ? (int64_t)secs * 1000 : LIVENESS_IDLE_MS;
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(sup->ev_liveness, &tv);
}

void
liveness_init(struct supervisor *sup)
{
	sup->ev_liveness = evtimer_new(sup->base, liveness_tick, sup);
	liveness_schedule(sup);
}

void
liveness_free(struct supervisor *sup)
{
	if (sup->ev_liveness != NULL)
		event_free(sup->ev_liveness);
	sup->ev_liveness = NULL;
}

/* m is going away, or its check no longer matters. */
void
liveness_forget(struct model *m)
{
	if (m->live_call != NULL)
		httpc_cancel(m->live_call);
	m->live_call = NULL;
	m->live_failures = 0;
	m->live_asked = NULL;
}

static void
liveness_done(const struct httpc_result *r, void *arg)
{
	struct model	*m = arg;
	char		 why[256], what[128];
	void		(*asked)(struct model *) = m->live_asked;

	m->live_call = NULL;
	m->live_asked = NULL;
	if (!liveness_wanted(m) || m->proc->pid != m->live_pid ||
	    m->generation != m->live_generation) {
		/* It changed meanwhile: the answer says nothing of it now. */
		m->live_failures = 0;
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		if (m->live_failures > 0 || asked != NULL)
			log_info("model answers its health check again "
			    "model=%s", m->name);
		m->live_failures = 0;
		if (asked != NULL)
			asked(m);
		return;
	}
	if (r->status != 0)
		snprintf(what, sizeof(what), "answered %d", r->status);
	else
		snprintf(what, sizeof(what), "%s", r->error != NULL ?
		    r->error : "failed");
	m->live_failures++;
	log_warnx("model failed its health check model=%s pid=%d failures=%u "
	    "reason=\"GET /health %s\"", m->name, (int)m->proc->pid,
	    m->live_failures, what);
	if (m->live_failures < LIVENESS_FAILURES && asked == NULL)
		return;
	if (asked != NULL)
		snprintf(why, sizeof(why), "unreachable (the proxy could not "
		    "connect, then GET /health %s), killed", what);
	else
		snprintf(why, sizeof(why), "unresponsive (GET /health %s, %u "
		    "times in a row), killed", what, m->live_failures);
	log_warnx("killing an %s model model=%s pid=%d", asked != NULL ?
	    "unreachable" : "unresponsive", m->name, (int)m->proc->pid);
	m->live_failures = 0;
	process_kill(m->proc, why);
}

/* Three quarters of the interval: answered before the next check. */
static int64_t
liveness_wait(const struct supervisor *sup)
{
	int64_t	wait = (int64_t)sup->conf->health_check_secs * 750;

	return (wait > LIVENESS_MAX_WAIT_MS ? LIVENESS_MAX_WAIT_MS : wait);
}

static void
liveness_start(struct model *m, int64_t wait)
{
	m->live_pid = m->proc->pid;
	m->live_generation = m->generation;
	m->live_call = httpc_request(m->sup->base, m->proc->port, "GET",
	    "/health", NULL, wait, liveness_done, m);
}

static void
liveness_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct model		*m;
	int64_t			 wait;

	if (sup->exiting)
		return;
	wait = liveness_wait(sup);
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (!liveness_wanted(m) || (wait == 0 && m->live_asked == NULL)) {
			liveness_forget(m);
			continue;
		}
		if (m->live_call != NULL || wait == 0)
			continue;	/* the last one is still waiting */
		liveness_start(m, wait);
	}
	liveness_schedule(sup);
}

int
liveness_unreachable(struct model *m, void (*answered)(struct model *))
{
	int64_t	wait = liveness_wait(m->sup);

	if (m->sup->exiting || !liveness_wanted(m))
		return (-1);
	/* A check already under way may have been answered before. */
	if (m->live_call != NULL)
		httpc_cancel(m->live_call);
	m->live_asked = answered;
	liveness_start(m, wait != 0 ? wait : LIVENESS_ASKED_WAIT_MS);
	return (0);
}
