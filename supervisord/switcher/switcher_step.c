/*
 * switcher_step.c -- everything that can happen at one instant: advance
 * the switches in progress, then start-up warm-up, the operator's orders,
 * preload, idle ttl, max_sleeping, and finally the policy's decision.
 */
#include <string.h>

#include "log.h"

#include "switcher_int.h"

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
	sw->m[lru].evicting_held = switcher_held(sw, lru);
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
	if (d.no_cooldown) {
		/* The policy timed this switch itself: no cooldown. */
		sw->sw[idx].deadline_ms = now;
	}
	return (true);
}

/* Everything that can happen at this instant, until nothing more can. */
void
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
