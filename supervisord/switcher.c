/*
 * switcher.c -- the switch state machine: inputs, the queue that keeps the
 * switcher from re-entering itself, and the phases of a switch.
 *
 * Every public input becomes an event; switcher_pump handles queued events
 * one at a time, and after each one steps the machine (advance switches,
 * start what the operator ordered, housekeeping, ask the policy) until
 * nothing more can happen at that instant. Engine operations called from
 * a step may complete synchronously: their completions are queued events.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#include "switcher_int.h"

static void	switcher_pump(struct switcher *);
static void	switcher_step(struct switcher *, int64_t);
static void	switcher_enter(struct switcher *, struct sw_switch *,
		    enum switcher_phase, int64_t);
static void	switcher_finish(struct switcher *, struct sw_switch *, bool,
		    const char *, int64_t);

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
	for (size_t i = 0; i < sw->q_len; i++)
		free(sw->q[(sw->q_head + i) % sw->q_cap].reason);
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

static const char *
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

static void
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
	/* Busy now, or busy until now: either way it was used now. */
	if (ev->queued > 0 || ev->in_flight > 0 || m->queued > 0 ||
	    m->in_flight > 0)
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
		switcher_set_error(m, ev->reason);
		log_warnx("eviction failed, model stopped model=%s reason=\"%s\"",
		    m->cfg->name, m->last_error);
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
	/* Either way it goes to sleep now, as in the seed. */
	m->state = SWM_ACTIVE;
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

static void
switcher_apply(struct switcher *sw, struct sw_event *ev)
{
	switch (ev->type) {
	case SWE_START:
		if (!sw->started) {
			sw->started = true;
			sw->warming = sw->cfg->warmup && sw->n > 0;
			for (size_t i = 0; i < sw->n; i++) {
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

/* ---- the phases of a switch --------------------------------------------- */

int
switcher_start_switch(struct switcher *sw, int target, const struct sw_plan *p,
    bool by_operator, enum sw_op_kind kind, int64_t now)
{
	struct sw_switch	*s = NULL;
	int			 idx = -1;

	for (size_t i = 0; i < sw->n; i++) {
		if (!sw->sw[i].used) {
			s = &sw->sw[i];
			idx = (int)i;
			break;
		}
	}
	if (s == NULL)
		return (-1);
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->target = target;
	s->from = p->from;
	s->victims = p->victims;
	s->stop = p->stop;
	s->gpus = p->gpus;
	s->start_ms = now;
	s->phase = SWP_COOLDOWN;
	s->phase_ms = now;
	s->by_operator = by_operator;
	s->op_kind = kind;
	s->prev_pinned = -1;
	if (target >= 0)
		sw->m[target].sw = idx;
	for (size_t i = 0; i < sw->n; i++) {
		if (s->victims & SW_BIT(i))
			sw->m[i].sw = idx;
	}
	sw->dirty = true;
	if (!sw->params.quiet)
		log_info("switch started from=%s to=%s victims=%zu operator=%d",
		    switcher_name(sw, s->from), switcher_name(sw, target),
		    (size_t)__builtin_popcountll(s->victims), by_operator);
	switcher_enter(sw, s, SWP_COOLDOWN, now);
	return (idx);
}

/* Give up a switch still in its cooldown: nothing has been done yet. */
void
switcher_cancel(struct switcher *sw, struct sw_switch *s)
{
	for (size_t i = 0; i < sw->n; i++) {
		if (sw->m[i].sw >= 0 && &sw->sw[sw->m[i].sw] == s)
			sw->m[i].sw = -1;
	}
	if (!sw->params.quiet)
		log_info("switch cancelled to=%s", switcher_name(sw, s->target));
	s->used = false;
	sw->dirty = true;
}

/* Add the time spent in the current phase to its total. */
static void
switcher_account(struct sw_switch *s, int64_t now)
{
	int64_t	spent = now - s->phase_ms;

	switch (s->phase) {
	case SWP_COOLDOWN:
		s->cooldown_ms += spent;
		break;
	case SWP_DRAIN:
		s->drain_ms += spent;
		break;
	case SWP_EVICT:
		s->sleep_ms += spent;
		break;
	case SWP_WAKE:
	case SWP_WARMUP:
	case SWP_ABORT:
		s->wake_ms += spent;
		break;
	}
	s->phase_ms = now;
}

/* Close the current phase's timing and begin the next. */
static void
switcher_enter(struct switcher *sw, struct sw_switch *s,
    enum switcher_phase phase, int64_t now)
{
	switcher_account(s, now);
	s->phase = phase;
	s->phase_ms = now;
	s->deadline_ms = SWITCHER_NEVER;
	sw->dirty = true;

	switch (phase) {
	case SWP_COOLDOWN: {
		int64_t until = now;

		/* An operator's sleep is not held back by min_active_secs. */
		for (size_t i = 0; i < sw->n && !(s->by_operator &&
		    s->target < 0); i++) {
			struct sw_model *m = &sw->m[i];
			int64_t t;

			if (!(s->victims & SW_BIT(i)) || m->state != SWM_ACTIVE)
				continue;
			t = m->active_since_ms +
			    (int64_t)sw->cfg->policy.min_active_secs * 1000;
			if (t > until)
				until = t;
		}
		s->deadline_ms = until;
		break;
	}
	case SWP_DRAIN: {
		uint64_t drain = 0;

		for (size_t i = 0; i < sw->n; i++) {
			struct sw_model *m = &sw->m[i];

			if (!(s->victims & SW_BIT(i)))
				continue;
			m->op_done = true;
			if (m->state == SWM_ACTIVE) {
				m->state = SWM_DRAINING;
				m->op_done = !sw->cfg->policy.drain_before_switch;
				drain |= SW_BIT(i);
			}
		}
		s->deadline_ms = now +
		    (int64_t)sw->cfg->policy.drain_timeout_secs * 1000;
		for (size_t i = 0; i < sw->n; i++) {
			if ((drain & SW_BIT(i)) && sw->ops.drain != NULL)
				sw->ops.drain(sw->arg, (int)i);
		}
		break;
	}
	case SWP_EVICT: {
		uint64_t evict = 0;

		for (size_t i = 0; i < sw->n; i++) {
			struct sw_model *m = &sw->m[i];

			if (!(s->victims & SW_BIT(i)))
				continue;
			m->op_done = true;
			if (m->state != SWM_DRAINING && m->state != SWM_ACTIVE &&
			    m->state != SWM_SLEEPING)
				continue;
			if (m->state == SWM_SLEEPING || (s->stop & SW_BIT(i)))
				m->evicting_with = (struct eviction){
				    m->eviction.weights, PROCESS_STOP };
			else if (s->sleep_eviction_set)
				m->evicting_with = s->sleep_eviction;
			else
				m->evicting_with = m->eviction;
			m->state = SWM_EVICTING;
			m->op_done = false;
			evict |= SW_BIT(i);
		}
		for (size_t i = 0; i < sw->n; i++) {
			if (evict & SW_BIT(i))
				sw->ops.evict(sw->arg, (int)i,
				    sw->m[i].evicting_with);
		}
		break;
	}
	case SWP_WAKE: {
		struct sw_model *t = &sw->m[s->target];
		bool cold = t->state == SWM_STOPPED ||
		    t->slept_with.process == PROCESS_CHECKPOINT ||
		    t->slept_with.process == PROCESS_STOP;

		t->state = SWM_WAKING;
		s->deadline_ms = now + (cold ? t->startup_timeout_ms :
		    sw->params.wake_timeout_ms);
		sw->ops.wake(sw->arg, s->target);
		break;
	}
	case SWP_WARMUP:
		sw->m[s->target].state = SWM_WARMING;
		if (sw->ops.warmup != NULL)
			sw->ops.warmup(sw->arg, s->target);
		else
			switcher_warmed(sw, s->target, true, NULL, now);
		break;
	case SWP_ABORT: {
		struct sw_model *t = &sw->m[s->target];

		t->state = SWM_EVICTING;
		t->evicting_with = (struct eviction){ WEIGHTS_RETAIN,
		    PROCESS_STOP };
		t->op_done = false;
		sw->ops.evict(sw->arg, s->target, t->evicting_with);
		break;
	}
	}
}

/* Are all the victims' drains (or evictions) complete? */
static bool
switcher_victims_done(const struct switcher *sw, const struct sw_switch *s)
{
	for (size_t i = 0; i < sw->n; i++) {
		if ((s->victims & SW_BIT(i)) && !sw->m[i].op_done)
			return (false);
	}
	return (true);
}

/* Move a switch on as far as it can go now; true if anything changed. */
static bool
switcher_advance(struct switcher *sw, struct sw_switch *s, int64_t now)
{
	struct sw_model	*t = s->target >= 0 ? &sw->m[s->target] : NULL;
	char		*why;

	switch (s->phase) {
	case SWP_COOLDOWN:
		if (s->by_policy &&
		    (t->queued == 0 || sw->mode != SWITCHER_AUTO)) {
			/* Its clients gave up before anything was done. */
			switcher_cancel(sw, s);
			return (true);
		}
		if (now < s->deadline_ms)
			return (false);
		switcher_enter(sw, s, SWP_DRAIN, now);
		return (true);
	case SWP_DRAIN:
		if (!switcher_victims_done(sw, s)) {
			if (now < s->deadline_ms)
				return (false);
			log_warnx("drain timed out, evicting anyway to=%s "
			    "timeout_s=%u", switcher_name(sw, s->target),
			    sw->cfg->policy.drain_timeout_secs);
		}
		switcher_enter(sw, s, SWP_EVICT, now);
		return (true);
	case SWP_EVICT:
		if (!switcher_victims_done(sw, s))
			return (false);
		for (size_t i = 0; i < sw->n; i++) {
			if ((s->victims & SW_BIT(i)) && sw->m[i].sw >= 0 &&
			    &sw->sw[sw->m[i].sw] == s && (int)i != s->target)
				sw->m[i].sw = -1;
		}
		if (t == NULL || s->warmup) {
			switcher_finish(sw, s, true, NULL, now);
			return (true);
		}
		switcher_enter(sw, s, SWP_WAKE, now);
		return (true);
	case SWP_WAKE:
		if (now < s->deadline_ms)
			return (false);
		xasprintf(&why, "timed out after %lld s waking %s",
		    (long long)((now - s->phase_ms) / 1000), t->cfg->name);
		log_warnx("wake timed out, stopping model=%s", t->cfg->name);
		switcher_set_error(t, why);
		sw->ops.failed(sw->arg, s->target, why);
		t->queued = 0;
		s->failed_notified = true;
		free(why);
		switcher_enter(sw, s, SWP_ABORT, now);
		return (true);
	case SWP_WARMUP:
	case SWP_ABORT:
		return (false);
	}
	return (false);
}

/* A switch is over: account, notify, free its GPUs. */
static void
switcher_finish(struct switcher *sw, struct sw_switch *s, bool ok,
    const char *reason, int64_t now)
{
	struct sw_model		*t = s->target >= 0 ? &sw->m[s->target] : NULL;
	struct switch_record	 r;
	char			*why = NULL;

	switcher_account(s, now);
	if (!ok) {
		if (reason == NULL && t != NULL && t->last_error != NULL)
			reason = t->last_error;
		why = xstrdup(reason != NULL ? reason : "wake failed");
	}

	memset(&r, 0, sizeof(r));
	r.from = s->from;
	r.to = s->target;
	r.victims = s->victims;
	r.start_ms = s->start_ms;
	r.cooldown_ms = s->cooldown_ms;
	r.drain_ms = s->drain_ms;
	r.sleep_ms = s->sleep_ms;
	r.wake_ms = s->wake_ms;
	r.total_ms = now - s->start_ms;
	r.ok = ok;
	r.by_operator = s->by_operator;
	r.evict_failures = s->evict_failures;
	r.reason = ok ? NULL : why;

	for (size_t i = 0; i < sw->n; i++) {
		if (sw->m[i].sw >= 0 && &sw->sw[sw->m[i].sw] == s)
			sw->m[i].sw = -1;
	}
	s->used = false;
	sw->dirty = true;

	if (s->warmup) {
		if (!sw->params.quiet || !ok)
			log_info("warm-up done model=%s ok=%d ms=%lld",
			    switcher_name(sw, s->target), ok,
			    (long long)r.total_ms);
		free(why);
		return;
	}
	if (ok && t != NULL) {
		t->state = SWM_ACTIVE;
		t->active_since_ms = now;
		t->last_used_ms = now;
		t->failures = 0;
		t->backoff_until_ms = 0;
		cost_record(&sw->costs, s->from, s->target, r.total_ms);
	} else if (t != NULL) {
		int64_t	backoff = sw->params.backoff_ms;

		t->failures++;
		t->failures_total++;
		for (unsigned i = 1; i < t->failures && backoff <
		    sw->params.backoff_max_ms; i++)
			backoff *= 2;
		if (backoff > sw->params.backoff_max_ms)
			backoff = sw->params.backoff_max_ms;
		t->backoff_until_ms = now + backoff;
		switcher_set_error(t, why);
		if (s->op_kind == SW_OP_PIN && s->by_operator) {
			/* As the seed: a pin whose switch failed is undone. */
			sw->mode = s->prev_mode;
			sw->pinned = s->prev_pinned;
		}
	}

	if (ok) {
		if (!sw->params.quiet)
			log_info("switch done from=%s to=%s cooldown_ms=%lld "
			    "drain_ms=%lld sleep_ms=%lld wake_ms=%lld "
			    "total_ms=%lld", switcher_name(sw, s->from),
			    switcher_name(sw, s->target),
			    (long long)r.cooldown_ms, (long long)r.drain_ms,
			    (long long)r.sleep_ms, (long long)r.wake_ms,
			    (long long)r.total_ms);
	} else
		log_warnx("switch failed from=%s to=%s total_ms=%lld "
		    "backoff_ms=%lld reason=\"%s\"", switcher_name(sw, s->from),
		    switcher_name(sw, s->target), (long long)r.total_ms,
		    t != NULL ? (long long)(t->backoff_until_ms - now) : 0LL,
		    why != NULL ? why : "");
	if (sw->ops.record != NULL)
		sw->ops.record(sw->arg, &r);
	if (t != NULL) {
		if (ok)
			sw->ops.ready(sw->arg, s->target);
		else if (!s->failed_notified) {
			sw->ops.failed(sw->arg, s->target, why);
			t->queued = 0;
		}
	}
	free(why);
}

/* ---- start-up, housekeeping and the policy ------------------------------ */

/* Warm-up: start each model in turn, one inference, sleep it. */
static bool
switcher_run_warmup(struct switcher *sw, int64_t now)
{
	struct sw_plan	 p;
	int		 idx;

	for (size_t i = 0; i < sw->n; i++) {
		if (sw->sw[i].used)
			return (false);	/* one at a time */
	}
	if (sw->warm_next >= sw->n) {
		sw->warming = false;
		return (true);
	}
	idx = (int)sw->warm_next++;
	if (sw->m[idx].state != SWM_STOPPED) {
		/* A checkpointed model is already warm. */
		return (true);
	}
	if (switcher_plan(sw, idx, &p) != SW_PLAN_OK || p.victims != 0) {
		log_warnx("warm-up skipped, no room model=%s",
		    sw->m[idx].cfg->name);
		return (true);
	}
	if ((idx = switcher_start_switch(sw, idx, &p, false, SW_OP_PRELOAD,
	    now)) < 0)
		return (false);
	sw->sw[idx].warmup = true;
	switcher_enter(sw, &sw->sw[idx], SWP_WAKE, now);
	return (true);
}

/* Preload: wake the `preload:` models that fit beside what is resident. */
static bool
switcher_run_preload(struct switcher *sw, int64_t now)
{
	struct sw_plan	p;
	bool		progress = false;

	for (size_t i = 0; i < sw->n; i++) {
		int rc;

		if (!(sw->preload & SW_BIT(i)))
			continue;
		if (sw->m[i].state == SWM_ACTIVE || sw->m[i].sw >= 0) {
			sw->preload &= ~SW_BIT(i);
			continue;
		}
		rc = switcher_plan(sw, (int)i, &p);
		if (rc == SW_PLAN_WAIT)
			continue;
		sw->preload &= ~SW_BIT(i);
		progress = true;
		if (rc != SW_PLAN_OK || p.victims != 0) {
			log_warnx("preload skipped, it does not fit beside the "
			    "models already awake model=%s", sw->m[i].cfg->name);
			continue;
		}
		switcher_start_switch(sw, (int)i, &p, false, SW_OP_PRELOAD,
		    now);
	}
	return (progress);
}

/* Idle models past their ttl go to sleep. */
static bool
switcher_run_ttl(struct switcher *sw, int64_t now)
{
	struct sw_plan	p;

	if (!sw->proxy_up)
		return (false);
	for (size_t i = 0; i < sw->n; i++) {
		struct sw_model	*m = &sw->m[i];
		int64_t		 idle;

		if (m->ttl_secs == 0 || m->state != SWM_ACTIVE || m->sw >= 0 ||
		    (int)i == sw->pinned || m->queued > 0 || m->in_flight > 0)
			continue;
		idle = m->last_used_ms >= m->active_since_ms ?
		    m->last_used_ms : m->active_since_ms;
		if (now < idle + (int64_t)m->ttl_secs * 1000)
			continue;
		if ((m->gpus & switcher_locked_gpus(sw)) != 0)
			continue;
		memset(&p, 0, sizeof(p));
		p.victims = SW_BIT(i);
		p.gpus = m->gpus;
		p.from = (int)i;
		if (!sw->params.quiet)
			log_info("idle past its ttl, sleeping model=%s ttl_s=%u",
			    m->cfg->name, m->ttl_secs);
		switcher_start_switch(sw, -1, &p, false, SW_OP_SWITCH, now);
		return (true);
	}
	return (false);
}

/* Beyond max_sleeping sleeping processes, stop the least recently used. */
static bool
switcher_run_max_sleeping(struct switcher *sw, int64_t now)
{
	size_t	count = 0;
	int	lru = -1;

	if (sw->cfg->max_sleeping == 0)
		return (false);
	for (size_t i = 0; i < sw->n; i++) {
		struct sw_model	*m = &sw->m[i];

		if (m->state != SWM_SLEEPING ||
		    !eviction_keeps_process(&m->slept_with))
			continue;
		count++;
		if (m->sw < 0 && (lru < 0 ||
		    m->last_used_ms < sw->m[lru].last_used_ms))
			lru = (int)i;
	}
	if (count <= sw->cfg->max_sleeping || lru < 0)
		return (false);
	if (!sw->params.quiet)
		log_info("too many sleeping models, stopping the least recently "
		    "used model=%s max_sleeping=%u", sw->m[lru].cfg->name,
		    sw->cfg->max_sleeping);
	sw->m[lru].state = SWM_EVICTING;
	sw->m[lru].evicting_with = (struct eviction){
	    sw->m[lru].slept_with.weights, PROCESS_STOP };
	sw->m[lru].op_done = false;
	sw->dirty = true;
	sw->ops.evict(sw->arg, lru, sw->m[lru].evicting_with);
	return (true);
}

/* Ask the policy; start the switch it wants. */
static bool
switcher_run_policy(struct switcher *sw, int64_t now)
{
	struct policy_view	v;
	struct policy_decision	d;
	struct sw_plan		p;
	int			idx;

	sw->policy_next = SWITCHER_NEVER;
	if (!switcher_policy_allowed(sw))
		return (false);
	switcher_build_view(sw, now, &v);
	policy_decide(sw->policy, &v, &d);
	sw->policy_next = d.next_ms;
	if (d.target < 0)
		return (false);
	if (switcher_plan(sw, d.target, &p) != SW_PLAN_OK)
		return (false);
	idx = switcher_start_switch(sw, d.target, &p, false, SW_OP_SWITCH,
	    now);
	if (idx < 0)
		return (false);
	sw->sw[idx].by_policy = true;
	return (true);
}

/* Everything that can happen at this instant, until nothing more can. */
static void
switcher_step(struct switcher *sw, int64_t now)
{
	bool	progress;
	size_t	guard = 0;

	if (!sw->started)
		return;
	do {
		progress = false;
		for (size_t i = 0; i < sw->n; i++) {
			if (sw->sw[i].used &&
			    switcher_advance(sw, &sw->sw[i], now))
				progress = true;
		}
		if (progress)
			continue;
		if (sw->warming) {
			progress = switcher_run_warmup(sw, now);
			continue;
		}
		if (switcher_run_ops(sw, now) ||
		    switcher_run_preload(sw, now) ||
		    switcher_run_ttl(sw, now) ||
		    switcher_run_max_sleeping(sw, now) ||
		    switcher_run_policy(sw, now))
			progress = true;
	} while (progress && ++guard < 64 * (sw->n + 4));
}
