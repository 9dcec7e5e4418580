/*
 * switcher_plan.c -- what waking a model would take: the memory each model
 * holds, the GPUs that switches in progress hold, the victims to evict;
 * and the view of all that which the policy decides on.
 */
#include <string.h>

#include "switcher_int.h"

/* What a model holds on each of its GPUs in its present state. */
double
switcher_held(const struct switcher *sw, int i)
{
	const struct sw_model	*m = &sw->m[i];

	switch (m->state) {
	case SWM_STOPPED:
		return (0.0);
	case SWM_SLEEPING:
		return (resource_residue(&m->slept_with, m->fraction,
		    sw->params.context_residue));
	case SWM_EVICTING:
		/* A sleeping model stopped further still holds its residue. */
		return (m->evicting_held);
	case SWM_WAKING:
	case SWM_WARMING:
	case SWM_ACTIVE:
	case SWM_DRAINING:
		return (m->fraction);
	}
	return (m->fraction);
}

/* The GPUs of every switch in progress. */
uint64_t
switcher_locked_gpus(const struct switcher *sw)
{
	uint64_t	gpus = 0;

	for (size_t i = 0; i < sw->n; i++) {
		if (sw->sw[i].used)
			gpus |= sw->sw[i].gpus;
	}
	return (gpus);
}

/*
 * Plan a switch to target: SW_PLAN_OK with the victims, SW_PLAN_WAIT when
 * its GPUs are busy (a switch, or memory in flux), SW_PLAN_NEVER when even
 * evicting every model that may be evicted would not make room.
 */
int
switcher_plan(const struct switcher *sw, int target, struct sw_plan *p)
{
	struct resource_holder	 h[SW_MAX_MODELS];
	const struct sw_model	*t = &sw->m[target];
	size_t			 n = 0;
	bool			 flux = false;
	int64_t			 since = INT64_MIN;

	memset(h, 0, sizeof(h));
	memset(p, 0, sizeof(*p));
	p->from = -1;
	for (size_t i = 0; i < sw->n; i++) {
		const struct sw_model	*m = &sw->m[i];
		double			 held;

		if ((int)i == target || (held = switcher_held(sw, (int)i)) <= 0.0)
			continue;
		h[n].model = (int)i;
		h[n].gpus = m->gpus;
		h[n].held = held;
		h[n].last_used_ms = m->last_used_ms;
		h[n].evictable = m->sw < 0 && (int)i != sw->pinned &&
		    (m->state == SWM_ACTIVE || m->state == SWM_SLEEPING);
		if (m->state == SWM_SLEEPING) {
			h[n].class = RESOURCE_ASLEEP;
			h[n].after = 0.0;	/* evicted further: stopped */
		} else {
			h[n].class = m->queued == 0 && m->in_flight == 0 ?
			    RESOURCE_IDLE : RESOURCE_BUSY;
			h[n].after = resource_residue(&m->eviction, m->fraction,
			    sw->params.context_residue);
		}
		if (!h[n].evictable && (m->gpus & t->gpus) != 0 &&
		    m->state != SWM_ACTIVE && m->state != SWM_SLEEPING)
			flux = true;
		n++;
	}
	if (resource_choose_victims(h, n, t->gpus, t->fraction, &p->victims,
	    &p->stop) != 0)
		return (flux || (t->gpus & switcher_locked_gpus(sw)) != 0 ?
		    SW_PLAN_WAIT : SW_PLAN_NEVER);
	p->gpus = t->gpus;
	for (size_t i = 0; i < sw->n; i++) {
		if (!(p->victims & SW_BIT(i)))
			continue;
		p->gpus |= sw->m[i].gpus;
		if (sw->m[i].state == SWM_ACTIVE &&
		    sw->m[i].active_since_ms > since) {
			since = sw->m[i].active_since_ms;
			p->from = (int)i;
		}
	}
	if ((p->gpus & switcher_locked_gpus(sw)) != 0)
		return (SW_PLAN_WAIT);
	return (SW_PLAN_OK);
}

/* May the policy start switches now? */
bool
switcher_policy_allowed(const struct switcher *sw)
{
	return (sw->started && !sw->warming && sw->mode == SWITCHER_AUTO &&
	    sw->proxy_up);
}

/* Describe every model to the policy. */
void
switcher_build_view(struct switcher *sw, int64_t now, struct policy_view *v)
{
	for (size_t i = 0; i < sw->n; i++) {
		const struct sw_model	*m = &sw->m[i];
		struct policy_model	*pm = &sw->view[i];
		struct sw_plan		 p;

		memset(pm, 0, sizeof(*pm));
		switch (m->state) {
		case SWM_STOPPED:
		case SWM_SLEEPING:
			pm->state = POLICY_ASLEEP;
			break;
		case SWM_WAKING:
		case SWM_WARMING:
			pm->state = POLICY_WAKING;
			break;
		case SWM_ACTIVE:
			pm->state = POLICY_ACTIVE;
			break;
		case SWM_DRAINING:
		case SWM_EVICTING:
			pm->state = POLICY_LEAVING;
			break;
		}
		pm->queued = m->queued;
		pm->in_flight = m->in_flight;
		pm->oldest_ms = m->oldest_ms;
		pm->active_since_ms = m->active_since_ms;
		pm->last_used_ms = m->last_used_ms;
		pm->victim = -1;
		if (pm->state != POLICY_ASLEEP || m->queued == 0 ||
		    m->sw >= 0 || now < m->backoff_until_ms ||
		    switcher_plan(sw, (int)i, &p) != SW_PLAN_OK)
			continue;
		pm->candidate = true;
		pm->victims = p.victims;
		pm->victim = p.from;
		pm->victims_since_ms = INT64_MIN;
		for (size_t j = 0; j < sw->n; j++) {
			const struct sw_model *vm = &sw->m[j];

			if (!(p.victims & SW_BIT(j)) || vm->state != SWM_ACTIVE)
				continue;
			pm->victims_queued += vm->queued;
			pm->victims_in_flight += vm->in_flight;
			if (vm->active_since_ms > pm->victims_since_ms)
				pm->victims_since_ms = vm->active_since_ms;
		}
		if (pm->victim < 0)
			pm->victims_since_ms = now;
		pm->cost_ms = cost_estimate(&sw->costs, p.from, (int)i);
		pm->cost_back_ms = p.from >= 0 ?
		    cost_estimate(&sw->costs, (int)i, p.from) : 0;
	}
	v->now_ms = now;
	v->n_models = sw->n;
	v->models = sw->view;
}
