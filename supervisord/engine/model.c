/*
 * model.c -- one configured model as the supervisor tracks it: its process
 * state in llmux 0.7's terms (not_started, starting, running, sleeping,
 * checkpointed, failed), the state it publishes to the proxy, what happens
 * when its process dies unasked (crash, restart with backoff, crash loop),
 * and the one place every change goes through (model_changed). The levels
 * above hear of changes, deaths, restarts and frees through the table in
 * sup->engine_hooks (supervisor.c: push state to the proxy, schedule a
 * journal write, tell the switcher), never by being called from here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/engine/engine.h"

static const char *model_pstate_names[] = {
	"not_started", "starting", "running", "sleeping", "checkpointed",
	"failed"
};

static void	model_restart_cb(evutil_socket_t, short, void *);

/* The table of engine_hooks the level above set, or NULL. */
static const struct engine_hooks *
model_hooks(const struct model *m)
{
	return (m->sup->engine_hooks);
}

struct model *
model_new(struct supervisor *sup, struct model_config *mc)
{
	struct model	*m;

	m = xcalloc(1, sizeof(*m));
	m->sup = sup;
	m->name = xstrdup(mc->name);
	m->cfg = mc;
	m->pstate = MODEL_NOT_STARTED;
	m->ev_restart = evtimer_new(sup->base, model_restart_cb, m);
	TAILQ_INSERT_TAIL(&sup->models, m, entry);
	return (m);
}

/* A model the config no longer has, known only to stop its process. */
struct model *
model_new_unconfigured(struct supervisor *sup, const char *name)
{
	struct model	*m;

	m = xcalloc(1, sizeof(*m));
	m->sup = sup;
	m->name = xstrdup(name);
	m->removed = true;
	m->pstate = MODEL_NOT_STARTED;
	m->ev_restart = evtimer_new(sup->base, model_restart_cb, m);
	TAILQ_INSERT_TAIL(&sup->models, m, entry);
	return (m);
}

void
model_free(struct model *m)
{
	struct supervisor	*sup = m->sup;

	evict_abandon(m);
	liveness_forget(m);
	infer_cancel(m->warm_call);
	if (model_hooks(m) != NULL && model_hooks(m)->gone != NULL)
		model_hooks(m)->gone(m);
	TAILQ_REMOVE(&sup->models, m, entry);
	if (m->proc != NULL)
		process_free(m->proc);
	event_free(m->ev_restart);
	free(m->name);
	free(m->reason);
	free(m->last_error);
	free(m->images);
	free(m->store_url);
	free(m->store_error);
	gpu_saved_free(m->gpu_saved);
	free(m);
}

static void
model_free_cb(evutil_socket_t fd, short ev, void *arg)
{
	model_free(arg);
}

/* Free from the loop: the caller may be one of several callbacks of m. */
void
model_free_later(struct model *m)
{
	struct timeval	tv = { 0, 0 };

	m->removed = true;
	event_base_once(m->sup->base, -1, EV_TIMEOUT, model_free_cb, m, &tv);
}

struct model *
model_find(struct supervisor *sup, const char *name)
{
	struct model	*m;

	TAILQ_FOREACH(m, &sup->models, entry)
		if (!m->removed && strcmp(m->name, name) == 0)
			return (m);
	return (NULL);
}

struct eviction
model_eviction(const struct model *m)
{
	if (m->has_override)
		return (m->override);
	if (m->cfg != NULL)
		return (config_model_eviction(m->sup->conf, m->cfg));
	return (m->sup->conf->policy.eviction);
}

const char *
model_pstate_name(enum model_pstate s)
{
	return ((unsigned)s < MODEL_PSTATE__COUNT ? model_pstate_names[s] :
	    "unknown");
}

int
model_pstate_parse(const char *s, enum model_pstate *out)
{
	for (int i = 0; i < MODEL_PSTATE__COUNT; i++) {
		if (strcmp(s, model_pstate_names[i]) == 0) {
			*out = (enum model_pstate)i;
			return (0);
		}
	}
	return (-1);
}

char *
model_process_state(const struct model *m)
{
	char	*s;

	switch (m->pstate) {
	case MODEL_SLEEPING:
		xasprintf(&s, "sleeping:%s+%s",
		    eviction_weights_title(m->sleeping.weights),
		    eviction_process_title(m->sleeping.process));
		return (s);
	case MODEL_FAILED:
		xasprintf(&s, "failed:%s", m->reason != NULL ? m->reason :
		    "unknown");
		return (s);
	default:
		return (xstrdup(model_pstate_name(m->pstate)));
	}
}

enum proto_model_state
model_published_state(const struct model *m)
{
	enum evict_kind	kind;

	/* An adopted model keeps its state while it is checked. */
	if (evict_busy(m, &kind, NULL) && !evict_adopting(m)) {
		switch (kind) {
		case EVICT_WAKE:
			return (m->pstate == MODEL_STARTING ||
			    m->pstate == MODEL_NOT_STARTED ||
			    m->pstate == MODEL_FAILED ? PROTO_MS_STARTING :
			    PROTO_MS_WAKING);
		case EVICT_SLEEP:
		case EVICT_STOP:
			return (PROTO_MS_EVICTING);
		}
	}
	/* Warming up (start-up) or being drained: the switcher's. */
	if (m->warming && m->pstate == MODEL_RUNNING)
		return (PROTO_MS_WAKING);
	if (m->draining && m->pstate == MODEL_RUNNING)
		return (PROTO_MS_DRAINING);
	switch (m->pstate) {
	case MODEL_NOT_STARTED:
		return (PROTO_MS_STOPPED);
	case MODEL_STARTING:
		return (PROTO_MS_STARTING);
	case MODEL_RUNNING:
		return (PROTO_MS_READY);
	case MODEL_SLEEPING:
		return (PROTO_MS_SLEEPING);
	case MODEL_CHECKPOINTED:
		return (PROTO_MS_CHECKPOINTED);
	case MODEL_FAILED:
	default:
		return (PROTO_MS_FAILED);
	}
}

void
model_changed(struct model *m)
{
	if (model_hooks(m) != NULL && model_hooks(m)->changed != NULL)
		model_hooks(m)->changed(m);
}

void
model_set_pstate(struct model *m, enum model_pstate s)
{
	if (m->pstate != s)
		log_debug("model state model=%s from=%s to=%s", m->name,
		    model_pstate_name(m->pstate), model_pstate_name(s));
	m->pstate = s;
	if (s != MODEL_FAILED) {
		free(m->reason);
		m->reason = NULL;
	}
	if (s != MODEL_CHECKPOINTED) {
		free(m->images);
		m->images = NULL;
	}
	if (s != MODEL_SLEEPING) {
		gpu_saved_free(m->gpu_saved);
		m->gpu_saved = NULL;
	}
	if (s == MODEL_NOT_STARTED || s == MODEL_FAILED ||
	    s == MODEL_STARTING || s == MODEL_CHECKPOINTED)
		m->gpus_moved = 0;
	model_changed(m);
}

void
model_set_failed(struct model *m, const char *reason)
{
	model_set_pstate(m, MODEL_FAILED);
	m->reason = body_text_dup(reason);
	model_set_error(m, reason);
}

void
model_set_error(struct model *m, const char *err)
{
	free(m->last_error);
	m->last_error = err != NULL ? body_text_dup(err) : NULL;
}

void
model_phase_record(struct model *m, enum evict_step step, int64_t ms)
{
	struct phase_stat	*ps;

	if ((unsigned)step >= STEP__COUNT)
		return;
	ps = &m->phases[step];
	ps->count++;
	ps->total_ms += (uint64_t)(ms < 0 ? 0 : ms);
	ps->last_ms = (uint64_t)(ms < 0 ? 0 : ms);
}

void
model_clear_crash_loop(struct model *m)
{
	m->crash_loop = false;
	m->crash_streak = 0;
	evtimer_del(m->ev_restart);
}

/* The delay before the next crash restart, or -1: a crash loop. */
static int64_t
model_restart_delay(const struct model *m)
{
	int64_t	delay;

	if (m->crash_streak >= MODEL_CRASH_LOOP_LIMIT)
		return (-1);
	delay = MODEL_RESTART_BASE_MS;
	for (uint32_t i = 1; i < m->crash_streak &&
	    delay < MODEL_RESTART_MAX_MS; i++)
		delay *= 2;
	if (delay > MODEL_RESTART_MAX_MS)
		delay = MODEL_RESTART_MAX_MS;
	return (delay);
}

/* Restart after a delay that doubles with the streak, or give up. */
static void
model_schedule_restart(struct model *m)
{
	int64_t		 delay;
	struct timeval	 tv;

	if ((delay = model_restart_delay(m)) < 0) {
		m->crash_loop = true;
		log_warnx("model is crash-looping, not restarting it model=%s "
		    "crashes=%u", m->name, m->crash_streak);
		model_changed(m);
		return;
	}
	log_info("restarting model after crash model=%s delay_ms=%lld",
	    m->name, (long long)delay);
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(m->ev_restart, &tv);
}

/*
 * The process died without being asked to. The switcher is told (the model
 * holds no memory any more; dying while being woken fails that wake). A
 * model that was serving is restarted after a delay that doubles with each
 * short-lived run (and each failed restart), if it fits beside what is
 * awake by then; after MODEL_CRASH_LOOP_LIMIT of those in a row it stays
 * failed (crash_loop in status) until an operator wakes it. A sleeping
 * model just becomes failed: its next wake starts it. Either way a request
 * for it wakes it again as for any model that is not awake.
 */
void
model_process_exited(struct model *m, const char *reason, int64_t ran_ms)
{
	bool	was_serving = m->pstate == MODEL_RUNNING;

	m->crashes++;
	if (ran_ms >= MODEL_STABLE_MS)
		m->crash_streak = 0;
	m->crash_streak++;
	log_warnx("model process exited unexpectedly model=%s reason=\"%s\" "
	    "ran_ms=%lld streak=%u", m->name, reason, (long long)ran_ms,
	    m->crash_streak);
	model_set_failed(m, reason);
	/* What the hook is told: whether and when it is restarted. */
	m->restart_delay_ms = !was_serving || m->removed || m->sup->exiting ?
	    -1 : model_restart_delay(m);
	if (model_hooks(m) != NULL && model_hooks(m)->died != NULL)
		model_hooks(m)->died(m, reason);
	if (!was_serving || m->removed || m->sup->exiting)
		return;
	model_schedule_restart(m);
}

/* The switcher's answer to a restart: counted, or tried again later. */
void
model_restart_done(struct model *m, bool ok, const char *reason)
{
	if (!m->restarting)
		return;
	m->restarting = false;
	if (ok) {
		m->restarts++;
		log_info("model restarted model=%s", m->name);
		return;
	}
	log_warnx("restart failed model=%s reason=\"%s\"", m->name,
	    reason != NULL ? reason : "?");
	if (m->removed || m->sup->exiting || m->crash_loop)
		return;
	m->crash_streak++;
	model_schedule_restart(m);
}

static void
model_restart_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct model	*m = arg;

	if (m->pstate != MODEL_FAILED || m->removed || m->crash_loop)
		return;
	m->restarting = true;
	if (model_hooks(m) != NULL && model_hooks(m)->restart != NULL)
		model_hooks(m)->restart(m);
}
