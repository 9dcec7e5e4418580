/*
 * policy_cost_aware.c -- llmux 0.7's cost_aware policy.
 *
 * For a model with waiting requests: switch at once when its oldest
 * request has waited max_wait or when nothing needs evicting; otherwise
 * let the active model serve for at least the estimated switch cost (the
 * serving window), then switch when the queue reaches
 * ceil(amortization_factor x cost in seconds) requests, else wait one
 * coalescing window and switch when it ends. A pending window is not
 * restarted by later requests (llmux 0.7's defer_pending); it is forgotten
 * when the model stops waiting (woken, or its clients gave up).
 */
#include <math.h>
#include <stdlib.h>

#include "xmalloc.h"

#include "policy.h"

struct cost_aware {
	size_t		 n;
	int64_t		*defer_until;	/* 0: no window pending */
};

static void *
policy_cost_aware_init(const struct policy_config *pc, size_t n)
{
	struct cost_aware	*ca = xcalloc(1, sizeof(*ca));

	ca->n = n;
	ca->defer_until = xcalloc(n > 0 ? n : 1, sizeof(*ca->defer_until));
	return (ca);
}

static void
policy_cost_aware_free(void *state)
{
	struct cost_aware	*ca = state;

	if (ca == NULL)
		return;
	free(ca->defer_until);
	free(ca);
}

/* The queue depth that justifies a switch costing cost_ms. */
static uint32_t
policy_cost_aware_required(const struct policy_config *pc, int64_t cost_ms)
{
	double	need = ceil(pc->amortization_factor * (double)cost_ms / 1000.0);

	if (need < 1.0)
		return (1);
	if (need > (double)UINT32_MAX)
		return (UINT32_MAX);
	return ((uint32_t)need);
}

static void
policy_cost_aware_decide(void *state, const struct policy_config *pc,
    const struct policy_view *v, struct policy_decision *d)
{
	struct cost_aware	*ca = state;
	int64_t			 now = v->now_ms;

	for (size_t i = 0; i < v->n_models && i < ca->n; i++) {
		const struct policy_model *m = &v->models[i];
		int64_t		 active_for, window_end;
		bool		 want = false;

		if (m->state != POLICY_ASLEEP || m->queued == 0) {
			ca->defer_until[i] = 0;
			continue;
		}
		if (!m->candidate)
			continue;

		active_for = now - m->victims_since_ms;
		window_end = m->victims_since_ms + m->cost_ms;
		if (policy_stale(pc, v, m) || m->victim < 0)
			want = true;
		else if (ca->defer_until[i] != 0 && now >= ca->defer_until[i])
			want = true;
		else if (active_for < m->cost_ms) {
			/* Serving window: the active model earns its wake. */
			if (ca->defer_until[i] == 0)
				ca->defer_until[i] = window_end;
		} else if (m->queued >= policy_cost_aware_required(pc,
		    m->cost_ms))
			want = true;
		else if (ca->defer_until[i] == 0)
			ca->defer_until[i] = now + pc->coalesce_window_ms;

		if (want) {
			d->target = policy_older(v, d->target, (int)i);
			continue;
		}
		d->next_ms = policy_min(d->next_ms, ca->defer_until[i]);
		d->next_ms = policy_min(d->next_ms, policy_stale_at(pc, m));
	}
}

const struct policy_impl policy_cost_aware = {
	.type = POLICY_COST_AWARE,
	.name = "cost_aware",
	.init = policy_cost_aware_init,
	.free = policy_cost_aware_free,
	.decide = policy_cost_aware_decide,
};
