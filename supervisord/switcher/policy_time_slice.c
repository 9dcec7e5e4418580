/*
 * policy_time_slice.c -- llmux 0.7's time_slice policy.
 *
 * Never switch reactively, except for a request that has waited max_wait
 * (staleness) or when nothing needs evicting (a cold start). A scheduler
 * tick every tick_interval_ms switches only when the active model has
 * been active min_active_secs and has nothing queued and nothing in
 * flight, to the model with the most waiting requests.
 *
 * Ticks fall on a fixed grid that starts at the first decision; the
 * switcher is asked at the next grid point only while some model waits
 * for a tick, which gives the same decisions as ticking forever.
 */
#include <stdlib.h>

#include "xmalloc.h"

#include "policy.h"

struct time_slice {
	bool		 started;
	int64_t		 next_tick;
	bool		 waiting;	/* the last decision asked for a tick */
};

static void *
policy_time_slice_init(const struct policy_config *pc, size_t n)
{
	return (xcalloc(1, sizeof(struct time_slice)));
}

static void
policy_time_slice_free(void *state)
{
	free(state);
}

/* Of two tick targets, the one with more waiting (then the older). */
static int
policy_time_slice_better(const struct policy_view *v, int a, int b)
{
	if (a < 0)
		return (b);
	if (v->models[b].queued != v->models[a].queued)
		return (v->models[b].queued > v->models[a].queued ? b : a);
	return (policy_older(v, a, b));
}

static void
policy_time_slice_decide(void *state, const struct policy_config *pc,
    const struct policy_view *v, struct policy_decision *d)
{
	struct time_slice	*ts = state;
	int64_t			 now = v->now_ms;
	int64_t			 interval = pc->tick_interval_ms;
	int			 reactive = -1, tick = -1;
	bool			 waiting = false, ticked = false;

	if (interval <= 0)
		interval = 1;
	if (!ts->started) {
		ts->started = true;
		ts->next_tick = now;
	}
	if (now >= ts->next_tick) {
		/*
		 * Grid points passed while nothing waited were ticks that found
		 * nothing to do; only a point reached while waiting (or exactly
		 * now) is a tick.
		 */
		ticked = ts->waiting || (now - ts->next_tick) % interval == 0;
		ts->next_tick += ((now - ts->next_tick) / interval + 1) *
		    interval;
	}

	for (size_t i = 0; i < v->n_models; i++) {
		const struct policy_model *m = &v->models[i];

		if (!m->candidate || m->queued == 0)
			continue;
		if (policy_stale(pc, v, m) || m->victim < 0) {
			reactive = policy_older(v, reactive, (int)i);
			continue;
		}
		waiting = true;
		d->next_ms = policy_min(d->next_ms, policy_stale_at(pc, m));
		if (!ticked || m->victims_queued > 0 ||
		    m->victims_in_flight > 0 ||
		    now - m->victims_since_ms <
		    (int64_t)pc->min_active_secs * 1000)
			continue;
		tick = policy_time_slice_better(v, tick, (int)i);
	}
	if (reactive >= 0)
		d->target = reactive;
	else if (tick >= 0)
		d->target = tick;
	ts->waiting = waiting && d->target < 0;
	if (ts->waiting)
		d->next_ms = policy_min(d->next_ms, ts->next_tick);
}

const struct policy_impl policy_time_slice = {
	.type = POLICY_TIME_SLICE,
	.name = "time_slice",
	.init = policy_time_slice_init,
	.free = policy_time_slice_free,
	.decide = policy_time_slice_decide,
};
