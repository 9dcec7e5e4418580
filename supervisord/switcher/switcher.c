/*
 * switcher.c -- the switcher's inputs: creation, the queue that keeps the
 * switcher from re-entering itself, and what each input changes.
 *
 * Every public input becomes an event; switcher_pump handles queued events
 * one at a time, and after each one steps the machine (switcher_step.c)
 * until nothing more can happen at that instant, then sets the timer.
 * Engine operations called from a step may complete synchronously: their
 * completions are queued events. The phases of a switch are in
 * switcher_switch.c.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#include "switcher_int.h"

static void	switcher_pump(struct switcher *);

void
switcher_params_default(struct switcher_params *p)
{
	memset(p, 0, sizeof(*p));
	p->context_residue = RESOURCE_CONTEXT_RESIDUE;
	p->wake_timeout_ms = 300 * 1000;
	p->backoff_ms = 2000;
	p->backoff_max_ms = 60 * 1000;
}

/* The number of GPUs: the config's, else enough for every `gpus:` entry. */
static unsigned
switcher_count_gpus(const struct config *cfg, const struct switcher_params *p)
{
	unsigned	n = p->n_gpus != 0 ? p->n_gpus : cfg->gpu_count;

	if (n == 0) {
		for (size_t i = 0; i < cfg->n_models; i++) {
			for (size_t j = 0; j < cfg->models[i].n_gpus; j++) {
				int g = cfg->models[i].gpus[j];

				if (g >= 0 && (unsigned)g + 1 > n)
					n = (unsigned)g + 1;
			}
		}
	}
	if (n == 0)
		n = 1;
	if (n > RESOURCE_MAX_GPUS)
		n = RESOURCE_MAX_GPUS;
	return (n);
}

/* A model's configured GPUs: its gpus list, or all of them. */
static void
switcher_init_gpus(struct switcher *sw, struct sw_model *m,
    const struct model_config *mc)
{
	if (mc->n_gpus == 0 || mc->gpus == NULL)
		m->gpus = resource_all_gpus(sw->n_gpus);
	else {
		for (size_t j = 0; j < mc->n_gpus; j++) {
			if (mc->gpus[j] >= 0 &&
			    (unsigned)mc->gpus[j] < sw->n_gpus)
				m->gpus |= SW_BIT(mc->gpus[j]);
		}
		if (m->gpus == 0)
			m->gpus = resource_all_gpus(sw->n_gpus);
	}
}

/* Fill one model from its config. */
static void
switcher_init_model(struct switcher *sw, struct sw_model *m,
    const struct model_config *mc)
{
	const struct config	*cfg = sw->cfg;
	uint32_t		 startup;

	m->cfg = mc;
	m->sw = -1;
	m->state = SWM_STOPPED;
	switcher_init_gpus(sw, m, mc);
	m->fraction = mc->gpu_memory_utilization;
	if (m->fraction <= 0.0 || m->fraction > 1.0)
		m->fraction = 0.9;
	m->eviction = mc->eviction_set ? mc->eviction : cfg->policy.eviction;
	startup = mc->startup_timeout_secs != 0 ? mc->startup_timeout_secs :
	    cfg->startup_timeout_secs;
	if (startup == 0)
		startup = 600;
	m->startup_timeout_ms = (int64_t)startup * 1000;
	m->ttl_secs = mc->ttl_secs;
	if (mc->checkpoint_path != NULL) {
		/* It starts checkpointed: its wake is a CRIU restore. */
		m->state = SWM_SLEEPING;
		m->slept_with.weights = m->eviction.weights;
		m->slept_with.process = PROCESS_CHECKPOINT;
	}
}

/*
 * The engine restored a model onto other GPUs than its own (CUDA restore
 * with UUID remapping): it holds its memory there now, and is woken there
 * next time. 0 gives it back its configured GPUs (after a stop, say).
 * Call it before the completion that goes with it (switcher_woken), which
 * plans with the new place.
 */
void
switcher_model_placed(struct switcher *sw, int model, uint64_t gpus)
{
	struct sw_model	*m;
	uint64_t	 all;

	if (model < 0 || (size_t)model >= sw->n)
		return;
	/*
	 * Placed on a GPU beyond those the config names (no gpu_count, and
	 * `gpus:` lists that do not reach it): the machine has it, since the
	 * model runs there. Count it, so the model is not believed to be
	 * back on its configured GPUs.
	 */
	while (sw->n_gpus < RESOURCE_MAX_GPUS &&
	    (gpus & ~resource_all_gpus(sw->n_gpus)) != 0)
		sw->n_gpus++;
	all = resource_all_gpus(sw->n_gpus);
	m = &sw->m[model];
	if (gpus == 0 || (gpus & all) == 0) {
		m->gpus = 0;
		switcher_init_gpus(sw, m, m->cfg);
	} else
		m->gpus = gpus & all;
	sw->dirty = true;
}

struct switcher *
switcher_new(const struct config *cfg, const struct switcher_ops *ops,
    void *arg, const struct switcher_params *params)
{
	struct switcher	*sw;

	if (cfg->n_models > SW_MAX_MODELS)
		return (NULL);
	sw = xcalloc(1, sizeof(*sw));
	sw->cfg = cfg;
	sw->ops = *ops;
	sw->arg = arg;
	if (params != NULL)
		sw->params = *params;
	else
		switcher_params_default(&sw->params);
	sw->n_gpus = switcher_count_gpus(cfg, &sw->params);
	sw->n = cfg->n_models;
	sw->m = xcalloc(sw->n > 0 ? sw->n : 1, sizeof(*sw->m));
	sw->sw = xcalloc(sw->n > 0 ? sw->n : 1, sizeof(*sw->sw));
	sw->view = xcalloc(sw->n > 0 ? sw->n : 1, sizeof(*sw->view));
	sw->sleep_with = xcalloc(sw->n > 0 ? sw->n : 1,
	    sizeof(*sw->sleep_with));
	for (size_t i = 0; i < sw->n; i++)
		switcher_init_model(sw, &sw->m[i], &cfg->models[i]);
	if ((sw->policy = policy_new(&cfg->policy, sw->n)) == NULL) {
		switcher_free(sw);
		return (NULL);
	}
	cost_init(&sw->costs, sw->n);
	sw->mode = SWITCHER_AUTO;
	sw->pinned = -1;
	sw->proxy_up = true;
	sw->op.target = -1;
	sw->policy_next = SWITCHER_NEVER;
	sw->timer_at = SWITCHER_NEVER;
	return (sw);
}

void
switcher_free(struct switcher *sw)
{
	if (sw == NULL)
		return;
	for (size_t i = 0; i < sw->n; i++)
		free(sw->m[i].last_error);
	for (size_t i = 0; i < sw->q_len; i++) {
		free(sw->q[(sw->q_head + i) % sw->q_cap].reason);
		free(sw->q[(sw->q_head + i) % sw->q_cap].rooms);
	}
	free(sw->q);
	free(sw->m);
	free(sw->sw);
	free(sw->view);
	free(sw->sleep_with);
	policy_free(sw->policy);
	cost_free(&sw->costs);
	free(sw);
}

const char *
switcher_phase_name(enum switcher_phase p)
{
	static const char *names[] = {
		"cooldown", "drain", "sleep", "wake", "warmup", "abort"
	};

	return ((unsigned)p < sizeof(names) / sizeof(names[0]) ?
	    names[p] : "?");
}

const char *
switcher_mstate_name(enum switcher_mstate s)
{
	static const char *names[] = {
		"stopped", "sleeping", "waking", "warming", "active",
		"draining", "evicting"
	};

	return ((unsigned)s < sizeof(names) / sizeof(names[0]) ?
	    names[s] : "?");
}

const char *
switcher_name(const struct switcher *sw, int i)
{
	return (i >= 0 && (size_t)i < sw->n ? sw->m[i].cfg->name : "none");
}

void
switcher_set_error(struct sw_model *m, const char *reason)
{
	free(m->last_error);
	m->last_error = xstrdup(reason != NULL ? reason : "unknown error");
}

/* ---- the input queue ---------------------------------------------------- */

/* Queue an input (taking its reason string) and run it unless running. */
void
switcher_post(struct switcher *sw, struct sw_event *ev)
{
	if (sw->q_len == sw->q_cap) {
		size_t		 cap = sw->q_cap == 0 ? 16 : sw->q_cap * 2;
		struct sw_event	*q = xcalloc(cap, sizeof(*q));

		for (size_t i = 0; i < sw->q_len; i++)
			q[i] = sw->q[(sw->q_head + i) % sw->q_cap];
		free(sw->q);
		sw->q = q;
		sw->q_cap = cap;
		sw->q_head = 0;
	}
	sw->q[(sw->q_head + sw->q_len) % sw->q_cap] = *ev;
	sw->q_len++;
	switcher_pump(sw);
}

void
switcher_post_simple(struct switcher *sw, enum sw_event_type type, int model,
    int64_t now)
{
	struct sw_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.model = model;
	ev.now = now;
	switcher_post(sw, &ev);
}

static void
switcher_post_result(struct switcher *sw, enum sw_event_type type, int model,
    bool ok, const char *reason, int64_t now)
{
	struct sw_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.model = model;
	ev.ok = ok;
	ev.reason = reason != NULL ? xstrdup(reason) : NULL;
	ev.now = now;
	switcher_post(sw, &ev);
}

static bool
switcher_valid(const struct switcher *sw, int model)
{
	return (model >= 0 && (size_t)model < sw->n);
}

void
switcher_start(struct switcher *sw, int64_t now)
{
	switcher_post_simple(sw, SWE_START, -1, now);
}

void
switcher_demand(struct switcher *sw, int model, uint32_t queued,
    uint32_t in_flight, int64_t oldest_wait_ms, int64_t now)
{
	struct sw_event	ev;

	if (!switcher_valid(sw, model))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_DEMAND;
	ev.model = model;
	ev.queued = queued;
	ev.in_flight = in_flight;
	ev.wait_ms = oldest_wait_ms < 0 ? 0 : oldest_wait_ms;
	ev.now = now;
	switcher_post(sw, &ev);
}

void
switcher_proxy(struct switcher *sw, bool connected, int64_t now)
{
	struct sw_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_PROXY;
	ev.ok = connected;
	ev.now = now;
	switcher_post(sw, &ev);
}

void
switcher_timer(struct switcher *sw, int64_t now)
{
	switcher_post_simple(sw, SWE_TIMER, -1, now);
}

void
switcher_drained(struct switcher *sw, int model, int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_simple(sw, SWE_DRAINED, model, now);
}

void
switcher_evicted(struct switcher *sw, int model, bool ok, const char *reason,
    int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_result(sw, SWE_EVICTED, model, ok, reason, now);
}

void
switcher_woken(struct switcher *sw, int model, bool ok, const char *reason,
    int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_result(sw, SWE_WOKEN, model, ok, reason, now);
}

void
switcher_warmed(struct switcher *sw, int model, bool ok, const char *reason,
    int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_result(sw, SWE_WARMED, model, ok, reason, now);
}

void
switcher_died(struct switcher *sw, int model, const char *reason, int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_result(sw, SWE_DIED, model, false, reason, now);
}

void
switcher_resync(struct switcher *sw, int model, enum switcher_mstate state,
    const struct eviction *slept_with, int64_t now)
{
	struct sw_event	ev;

	if (!switcher_valid(sw, model) || (state != SWM_STOPPED &&
	    state != SWM_SLEEPING && state != SWM_ACTIVE) ||
	    (state == SWM_SLEEPING && slept_with == NULL))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_RESYNC;
	ev.model = model;
	ev.mstate = state;
	if (slept_with != NULL)
		ev.eviction = *slept_with;
	ev.now = now;
	switcher_post(sw, &ev);
}

void
switcher_restart(struct switcher *sw, int model, int64_t now)
{
	if (switcher_valid(sw, model))
		switcher_post_simple(sw, SWE_RESTART, model, now);
}

void
switcher_room(struct switcher *sw, int model,
    const struct switcher_gpu_room *rooms, size_t n, int64_t now)
{
	struct sw_event	ev;

	if (!switcher_valid(sw, model))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_ROOM;
	ev.model = model;
	if (n > RESOURCE_MAX_GPUS)
		n = RESOURCE_MAX_GPUS;
	if (n > 0) {
		ev.rooms = xcalloc(n, sizeof(*ev.rooms));
		memcpy(ev.rooms, rooms, n * sizeof(*ev.rooms));
		ev.n_rooms = n;
	}
	ev.now = now;
	switcher_post(sw, &ev);
}

void
switcher_restore_mode(struct switcher *sw, enum switcher_mode mode, int pinned)
{
	sw->mode = mode;
	sw->pinned = mode == SWITCHER_MANUAL && switcher_valid(sw, pinned) ?
	    pinned : -1;
}

void
switcher_restore_cost(struct switcher *sw, int from, int to,
    const struct cost_ema *e)
{
	size_t	row = (size_t)(from + 1);

	if (from < -1 || (from >= 0 && !switcher_valid(sw, from)) ||
	    !switcher_valid(sw, to) || e->samples == 0)
		return;
	sw->costs.v[row * sw->costs.n + (size_t)to] = *e;
}

/* ---- applying inputs ---------------------------------------------------- */

static struct sw_switch *
switcher_switch_of(struct switcher *sw, int model)
{
	int	s = sw->m[model].sw;

	return (s >= 0 && sw->sw[s].used ? &sw->sw[s] : NULL);
}

static void
switcher_apply_demand(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model	*m = &sw->m[ev->model];

	if (!sw->proxy_up)
		return;
	if (m->queued != ev->queued || m->in_flight != ev->in_flight)
		sw->dirty = true;
	/*
	 * Busy now, or busy until now while it served: either way it was used
	 * now. A model put away since then that reports its last requests
	 * gone (the proxy sends that up to 50 ms late) was used before.
	 */
	if (ev->queued > 0 || ev->in_flight > 0 ||
	    ((m->queued > 0 || m->in_flight > 0) &&
	    (m->state == SWM_ACTIVE || m->state == SWM_DRAINING)))
		m->last_used_ms = ev->now;
	m->queued = ev->queued;
	m->in_flight = ev->in_flight;
	m->oldest_ms = ev->queued > 0 ? ev->now - ev->wait_ms : 0;
}

static void
switcher_apply_proxy(struct switcher *sw, struct sw_event *ev)
{
	if (sw->proxy_up == ev->ok)
		return;
	sw->proxy_up = ev->ok;
	if (!ev->ok) {
		/* Its counts are gone with it. */
		for (size_t i = 0; i < sw->n; i++) {
			sw->m[i].queued = sw->m[i].in_flight = 0;
			sw->m[i].oldest_ms = 0;
		}
	}
	if (!sw->params.quiet)
		log_info("proxy %s", ev->ok ? "connected" : "disconnected");
	sw->dirty = true;
}

static void
switcher_apply_drained(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model	*m = &sw->m[ev->model];

	if (m->state == SWM_DRAINING)
		m->op_done = true;
}

static void
switcher_apply_evicted(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model		*m = &sw->m[ev->model];
	struct sw_switch	*s = switcher_switch_of(sw, ev->model);

	if (m->state != SWM_EVICTING)
		return;
	m->op_done = true;
	sw->dirty = true;
	if (ev->ok) {
		m->slept_with = m->evicting_with;
		m->state = m->evicting_with.process == PROCESS_STOP ?
		    SWM_STOPPED : SWM_SLEEPING;
	} else {
		/* The engine escalated to stop: memory is free anyway. */
		m->state = SWM_STOPPED;
		m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
		log_warnx("eviction failed, model stopped model=%s reason=\"%s\"",
		    m->cfg->name, ev->reason != NULL ? ev->reason : "unknown");
		/* Stopping a hung target: its error is still the timeout. */
		if (s == NULL || s->phase != SWP_ABORT || s->target != ev->model)
			switcher_set_error(m, ev->reason);
		if (s != NULL)
			s->evict_failures++;
	}
	if (s == NULL)
		m->sw = -1;
	else if (s->phase == SWP_ABORT && s->target == ev->model)
		switcher_finish(sw, s, false, NULL, ev->now);
}

static void
switcher_apply_woken(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model		*m = &sw->m[ev->model];
	struct sw_switch	*s = switcher_switch_of(sw, ev->model);

	if (m->state != SWM_WAKING || s == NULL || s->phase != SWP_WAKE)
		return;	/* late: the wake was given up */
	if (ev->ok) {
		if (s->warmup)
			switcher_enter(sw, s, SWP_WARMUP, ev->now);
		else
			switcher_finish(sw, s, true, NULL, ev->now);
		return;
	}
	/* The engine has stopped the half-woken model. */
	m->state = SWM_STOPPED;
	m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
	switcher_finish(sw, s, false, ev->reason != NULL ? ev->reason :
	    "wake failed", ev->now);
}

static void
switcher_apply_warmed(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model		*m = &sw->m[ev->model];
	struct sw_switch	*s = switcher_switch_of(sw, ev->model);

	if (m->state != SWM_WARMING || s == NULL)
		return;
	if (!ev->ok)
		log_warnx("warm-up inference failed model=%s reason=\"%s\"",
		    m->cfg->name, ev->reason != NULL ? ev->reason : "?");
	/* Either way it goes to sleep now, as in llmux 0.7 (Rust). */
	m->state = SWM_ACTIVE;
	m->evicting_with = m->eviction;
	s->victims = SW_BIT(ev->model);
	s->from = ev->model;
	switcher_enter(sw, s, SWP_EVICT, ev->now);
}

static void
switcher_apply_died(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model		*m = &sw->m[ev->model];
	struct sw_switch	*s = switcher_switch_of(sw, ev->model);
	char			*why;

	xasprintf(&why, "model process died: %s",
	    ev->reason != NULL ? ev->reason : "unknown");
	log_warnx("model process died model=%s state=%s reason=\"%s\"",
	    m->cfg->name, switcher_mstate_name(m->state),
	    ev->reason != NULL ? ev->reason : "unknown");
	switcher_set_error(m, why);
	sw->dirty = true;
	switch (m->state) {
	case SWM_WAKING:
	case SWM_WARMING:
		m->state = SWM_STOPPED;
		m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
		if (s != NULL)
			switcher_finish(sw, s, false, why, ev->now);
		break;
	case SWM_EVICTING:
		m->state = SWM_STOPPED;
		m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
		m->op_done = true;
		if (s == NULL)
			m->sw = -1;
		else if (s->phase == SWP_ABORT && s->target == ev->model)
			switcher_finish(sw, s, false, NULL, ev->now);
		break;
	case SWM_ACTIVE:
	case SWM_DRAINING:
	case SWM_SLEEPING:
		m->state = SWM_STOPPED;
		m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
		m->op_done = true;
		break;
	case SWM_STOPPED:
		break;
	}
	free(why);
}

/* The engine says what a model is now, outside any switch. */
static void
switcher_apply_resync(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model	*m = &sw->m[ev->model];

	if (m->sw >= 0 || (m->state != SWM_STOPPED &&
	    m->state != SWM_SLEEPING && m->state != SWM_ACTIVE)) {
		log_debug("resync ignored, the model is switching model=%s "
		    "state=%s", m->cfg->name, switcher_mstate_name(m->state));
		return;
	}
	switch (ev->mstate) {
	case SWM_ACTIVE:
		if (m->state != SWM_ACTIVE) {
			m->active_since_ms = ev->now;
			m->last_used_ms = ev->now;
		}
		break;
	case SWM_SLEEPING:
		m->slept_with = ev->eviction;
		break;
	default:
		m->slept_with = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
		break;
	}
	if (m->state != ev->mstate)
		log_debug("resync model=%s from=%s to=%s", m->cfg->name,
		    switcher_mstate_name(m->state),
		    switcher_mstate_name(ev->mstate));
	m->state = ev->mstate;
	sw->dirty = true;
}

static void
switcher_apply(struct switcher *sw, struct sw_event *ev)
{
	switch (ev->type) {
	case SWE_START:
		if (!sw->started) {
			sw->started = true;
			sw->warming = sw->cfg->warmup && sw->n > 0 &&
			    !sw->params.resumed;
			for (size_t i = 0; i < sw->n && !sw->params.resumed;
			    i++) {
				if (sw->m[i].cfg->preload)
					sw->preload |= SW_BIT(i);
			}
		}
		break;
	case SWE_DEMAND:
		switcher_apply_demand(sw, ev);
		break;
	case SWE_PROXY:
		switcher_apply_proxy(sw, ev);
		break;
	case SWE_TIMER:
		/* The embedder's timer is spent: always set it again. */
		sw->timer_at = INT64_MIN;
		break;
	case SWE_DRAINED:
		switcher_apply_drained(sw, ev);
		break;
	case SWE_EVICTED:
		switcher_apply_evicted(sw, ev);
		break;
	case SWE_WOKEN:
		switcher_apply_woken(sw, ev);
		break;
	case SWE_WARMED:
		switcher_apply_warmed(sw, ev);
		break;
	case SWE_DIED:
		switcher_apply_died(sw, ev);
		break;
	case SWE_RESYNC:
		switcher_apply_resync(sw, ev);
		break;
	case SWE_RESTART:
		/* Woken like a preload: only if it fits as things are. */
		sw->preload |= SW_BIT(ev->model);
		break;
	case SWE_ROOM:
		switcher_apply_room(sw, ev);
		break;
	default:
		switcher_apply_cmd(sw, ev);
		break;
	}
}

/* Run queued inputs, then tell the embedder about the timer and state. */
static void
switcher_pump(struct switcher *sw)
{
	int64_t	at;

	if (sw->busy)
		return;
	sw->busy = true;
	while (sw->q_len > 0) {
		struct sw_event	ev = sw->q[sw->q_head];

		sw->q_head = (sw->q_head + 1) % sw->q_cap;
		sw->q_len--;
		if (ev.now > sw->now)
			sw->now = ev.now;
		ev.now = sw->now;
		switcher_apply(sw, &ev);
		free(ev.reason);
		free(ev.rooms);
		switcher_step(sw, sw->now);
		if (sw->dirty && sw->ops.state_changed != NULL) {
			sw->dirty = false;
			sw->ops.state_changed(sw->arg);
		}
	}
	sw->busy = false;

	at = SWITCHER_NEVER;
	for (size_t i = 0; i < sw->n; i++) {
		struct sw_switch	*s = &sw->sw[i];
		struct sw_model		*m = &sw->m[i];

		if (s->used && s->deadline_ms < at)
			at = s->deadline_ms;
		if (m->queued > 0 && m->backoff_until_ms > sw->now &&
		    m->backoff_until_ms < at)
			at = m->backoff_until_ms;
		if (m->state == SWM_ACTIVE && m->sw < 0 && m->ttl_secs > 0 &&
		    (int)i != sw->pinned && sw->proxy_up &&
		    (m->gpus & switcher_locked_gpus(sw)) == 0) {
			int64_t idle = m->last_used_ms >= m->active_since_ms ?
			    m->last_used_ms : m->active_since_ms;
			int64_t ttl_at = idle + (int64_t)m->ttl_secs * 1000;

			if (m->queued == 0 && m->in_flight == 0 && ttl_at < at)
				at = ttl_at;
		}
	}
	if (sw->policy_next < at)
		at = sw->policy_next;
	if (at <= sw->now) {
		/* Everything due has been done; never spin on the past. */
		log_debug("switcher timer in the past at=%lld now=%lld",
		    (long long)at, (long long)sw->now);
		at = sw->now + 1;
	}
	if (at != sw->timer_at) {
		sw->timer_at = at;
		if (sw->ops.set_timer != NULL)
			sw->ops.set_timer(sw->arg, at);
	}
}
