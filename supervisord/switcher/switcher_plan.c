/*
 * switcher_plan.c -- what waking a model would take: the memory each model
 * holds, the GPUs that switches in progress hold, the victims to evict;
 * the view of all that which the policy decides on; and what a wake does
 * with the free memory the embedder measured just before it (more
 * victims, or a refusal that says why).
 */
#include <stdio.h>
#include <string.h>

#include "log.h"

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

/* ---- the room a wake finds (switcher_room) ------------------------------ */

/* "12.0 GiB" */
static void
switcher_gib(uint64_t bytes, char *buf, size_t len)
{
	snprintf(buf, len, "%.1f GiB", (double)bytes / (1024.0 * 1024 * 1024));
}

/*
 * The wake of s->target found too little free on some of its GPUs: count
 * what the resource model does not know of as held there, and choose the
 * victims that make room, beyond those already evicted. 0 with them, -1
 * when none can (the GPUs of another switch are not touched).
 */
static int
switcher_room_victims(const struct switcher *sw, const struct sw_switch *s,
    const double *outside, uint64_t measured, uint64_t *victims,
    uint64_t *stop)
{
	struct resource_holder	 h[SW_MAX_MODELS + RESOURCE_MAX_GPUS];
	const struct sw_model	*t = &sw->m[s->target];
	uint64_t		 others = 0;
	size_t			 n = 0;

	for (size_t i = 0; i < sw->n; i++) {
		if (sw->sw[i].used && &sw->sw[i] != s)
			others |= sw->sw[i].gpus;
	}
	memset(h, 0, sizeof(h));
	for (size_t i = 0; i < sw->n; i++) {
		const struct sw_model	*m = &sw->m[i];
		double			 held;

		if ((int)i == s->target || (held = switcher_held(sw, (int)i)) <= 0.0)
			continue;
		h[n].model = (int)i;
		h[n].gpus = m->gpus;
		h[n].held = held;
		h[n].last_used_ms = m->last_used_ms;
		h[n].evictable = m->sw < 0 && (int)i != sw->pinned &&
		    (m->gpus & others) == 0 &&
		    (m->state == SWM_ACTIVE || m->state == SWM_SLEEPING);
		if (m->state == SWM_SLEEPING) {
			h[n].class = RESOURCE_ASLEEP;
			h[n].after = 0.0;
		} else {
			h[n].class = m->queued == 0 && m->in_flight == 0 ?
			    RESOURCE_IDLE : RESOURCE_BUSY;
			h[n].after = resource_residue(&m->eviction, m->fraction,
			    sw->params.context_residue);
		}
		n++;
	}
	for (unsigned g = 0; g < RESOURCE_MAX_GPUS; g++) {
		if (!(measured & SW_BIT(g)) || outside[g] <= 0.0)
			continue;
		h[n].model = -1;
		h[n].gpus = SW_BIT(g);
		h[n].held = h[n].after = outside[g];
		n++;
	}
	return (resource_choose_victims(h, n, t->gpus, t->fraction, victims,
	    stop));
}

void
switcher_apply_room(struct switcher *sw, struct sw_event *ev)
{
	struct sw_model		*t = &sw->m[ev->model], *m;
	struct sw_switch	*s = NULL;
	double			 outside[RESOURCE_MAX_GPUS], mine, need;
	uint64_t		 measured = 0, victims = 0, stop = 0;
	char			 why[512], fb[32], nb[32], tb[32];
	int			 idx = t->sw, worst = -1;
	double			 worst_short = 0.0;

	if (idx >= 0 && sw->sw[idx].used)
		s = &sw->sw[idx];
	if (s == NULL || s->target != ev->model || s->phase != SWP_WAKE ||
	    !s->room_wait || t->state != SWM_WAKING)
		return;		/* late: the wake was given up */
	s->room_wait = false;

	/* What it holds itself before its wake (a context) is its own. */
	mine = s->target_was == SWM_SLEEPING ? resource_residue(&t->slept_with,
	    t->fraction, sw->params.context_residue) : 0.0;
	need = t->fraction - mine;
	memset(outside, 0, sizeof(outside));
	for (size_t k = 0; k < ev->n_rooms; k++) {
		const struct switcher_gpu_room *r = &ev->rooms[k];
		double	 used, known = mine, short_by;
		unsigned g = r->gpu;

		if (g >= RESOURCE_MAX_GPUS || !(t->gpus & SW_BIT(g)) ||
		    r->total_bytes == 0 || r->free_bytes > r->total_bytes)
			continue;
		measured |= SW_BIT(g);
		used = 1.0 - (double)r->free_bytes / (double)r->total_bytes;
		for (size_t i = 0; i < sw->n; i++) {
			if ((int)i != ev->model && (sw->m[i].gpus & SW_BIT(g)))
				known += switcher_held(sw, (int)i);
		}
		if (used > known)
			outside[g] = used - known;
		short_by = need - (double)r->free_bytes /
		    (double)r->total_bytes;
		if (short_by > RESOURCE_EPSILON && short_by > worst_short) {
			worst_short = short_by;
			worst = (int)k;
		}
	}
	if (worst < 0) {
		sw->ops.wake(sw->arg, ev->model);
		return;
	}

	{
		const struct switcher_gpu_room *r = &ev->rooms[worst];
		uint64_t need_b = (uint64_t)(need * (double)r->total_bytes);

		switcher_gib(r->free_bytes, fb, sizeof(fb));
		switcher_gib(need_b, nb, sizeof(nb));
		switcher_gib(r->total_bytes, tb, sizeof(tb));
		snprintf(why, sizeof(why), "not enough free memory on GPU %u "
		    "for %s: %llu bytes free (%s), %llu needed (%s: "
		    "gpu_memory_utilization %.2f of %s)", r->gpu, t->cfg->name,
		    (unsigned long long)r->free_bytes, fb,
		    (unsigned long long)need_b, nb, t->fraction, tb);
	}
	t->state = s->target_was;
	sw->dirty = true;
	if (switcher_room_victims(sw, s, outside, measured, &victims,
	    &stop) != 0 || victims == 0) {
		log_warnx("wake refused, no room model=%s reason=\"%s\"",
		    t->cfg->name, why);
		switcher_finish(sw, s, false, why, ev->now);
		return;
	}

	/* Evict those too, then check again before the wake. */
	s->victims_before |= s->victims;
	s->victims = victims;
	s->stop = stop;
	for (size_t i = 0; i < sw->n; i++) {
		if (!(victims & SW_BIT(i)))
			continue;
		m = &sw->m[i];
		m->sw = idx;
		s->gpus |= m->gpus;
		if (m->state == SWM_SLEEPING || (stop & SW_BIT(i)))
			m->evicting_with = (struct eviction){
			    m->eviction.weights, PROCESS_STOP };
		else
			m->evicting_with = m->eviction;
		if (s->from < 0 && m->state == SWM_ACTIVE)
			s->from = (int)i;
	}
	if (!sw->params.quiet)
		log_info("wake needs more room, evicting first model=%s "
		    "victims=%d reason=\"%s\"", t->cfg->name,
		    __builtin_popcountll(victims), why);
	switcher_enter(sw, s, SWP_DRAIN, ev->now);
}
