/*
 * switcher_switch.c -- the phases of one switch: cooldown, drain, sleep
 * (evict), wake, and for start-up warm-up the warm-up inference; timing
 * every phase, the timeouts, and the end of a switch (record, cost
 * estimate, ready or failed, backoff).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#include "switcher_int.h"

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
	/* While warming, only the start-up warm-up starts switches. */
	s->warmup = sw->warming;
	if (target >= 0)
		sw->m[target].sw = idx;
	for (size_t i = 0; i < sw->n; i++) {
		struct sw_model	*m = &sw->m[i];

		if (!(s->victims & SW_BIT(i)))
			continue;
		m->sw = idx;
		/*
		 * The room was planned with these evictions: fix them now, so
		 * that an eviction set while the switch runs applies to the
		 * model's next sleep, not to this one.
		 */
		if (m->state == SWM_SLEEPING || (s->stop & SW_BIT(i)))
			m->evicting_with = (struct eviction){
			    m->eviction.weights, PROCESS_STOP };
		else
			m->evicting_with = m->eviction;
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
void
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
void
switcher_enter(struct switcher *sw, struct sw_switch *s,
    enum switcher_phase phase, int64_t now)
{
	struct switcher_switch_status	st;
	int64_t				prev = now - s->phase_ms;

	switcher_account(s, now);
	s->phase = phase;
	s->phase_ms = now;
	s->deadline_ms = SWITCHER_NEVER;
	sw->dirty = true;
	/* A warm-up has no record either: it is not told. */
	if (sw->ops.phase != NULL && !s->warmup) {
		switcher_switch_fill(s, &st);
		sw->ops.phase(sw->arg, &st, prev > 0 ? prev : 0);
	}

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
			/* As planned when the switch began (see below). */
			if (s->sleep_eviction_set)
				m->evicting_with = s->sleep_eviction;
			m->evicting_held = switcher_held(sw, (int)i);
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

		int64_t limit = sw->params.wake_timeout_ms;

		/* A warm wake never deserves longer than a cold start. */
		if (cold || t->startup_timeout_ms < limit)
			limit = t->startup_timeout_ms;
		s->target_was = t->state;
		t->state = SWM_WAKING;
		s->deadline_ms = now + limit + sw->params.wake_grace_ms;
		/*
		 * A CUDA resume needs what the model held, not its claim, and
		 * finds its own room (at home or, allowed, on other GPUs).
		 */
		if (sw->ops.check_room != NULL &&
		    !(s->target_was == SWM_SLEEPING &&
		    t->slept_with.process == PROCESS_CUDA_SUSPEND)) {
			/* switcher_room answers: wake, more victims, or fail. */
			s->room_wait = true;
			sw->ops.check_room(sw->arg, s->target);
		} else
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

		t->evicting_held = t->fraction;
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
bool
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
void
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
	r.victims = s->victims | s->victims_before;
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
			/* As in llmux 0.7: a pin whose switch failed is undone. */
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
