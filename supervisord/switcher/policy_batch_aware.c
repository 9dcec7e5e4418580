/*
 * policy_batch_aware.c -- llmux's own policy: time_slice's rules, and a
 * fast path wherever a switch is cheap.
 *
 * The requests waiting for a model are its batch. batch_aware asks
 * time_slice first and keeps its answer: staleness (max_wait_secs), cold
 * starts, and the scheduler tick that leaves an idle model once it has been
 * active min_active_secs. Where time_slice would wait, batch_aware switches
 * at once when a round trip (there and back) costs no more than the
 * min_active_secs hold it replaces:
 *
 *   - an idle active model is left the moment another batch waits, with
 *     no cooldown (the decision's no_cooldown) and no tick;
 *   - a busy active model is left, once it has had min_active_secs, when
 *     the oldest waiting request has waited a full round trip (by then the
 *     waiting batch has paid more than leaving costs the active model's
 *     next requests, about one round trip) and the model has little left
 *     in flight: a drain of at most a quarter of the round trip. A drain
 *     has to finish what is in flight anyway, so leaving a long backlog
 *     frees the GPU no sooner; it only holds back the model's new
 *     requests, which then force a switch back. Until its backlog is
 *     nearly done the model goes on taking its new requests (they ride
 *     along), which time_slice's staleness bounds for the waiting batch;
 *   - among such batches, the one that has waited most in total (its size
 *     times the age of its oldest request) goes first.
 *
 * The round trip comes from the policy's own measurements: it times every
 * switch it sees in the view, from the moment the victims have nothing left
 * in flight (or the target starts waking, when nothing is evicted) to the
 * target's being ready, per target model, with llmux 0.7's moving average.
 * That is the price of the switch itself; the switcher's estimates
 * (cost_ms) also count cooldowns and drains. A model never timed is priced
 * at the mean of those that were; with no measurement at all nothing is
 * cheap and the policy is time_slice. A drain is priced the same way, from
 * the drains it sees: the time from a victim's leaving to its last request
 * done, over the requests it had in flight, per model (the mean of the
 * others, then one request left, where none was seen).
 *
 * Where switches are dear, every departure from time_slice that was
 * measured (switching on demand instead of on the tick, leaving idle
 * models early, lingering on a model whose next request looks imminent,
 * letting a busy model finish instead of honouring staleness) came out
 * better or worse than time_slice by chance, trace by trace: the switches
 * of a loaded system are all forced by staleness, and a small change of
 * timing reshuffles which requests wait. docs/policies.md has the numbers.
 */
#include <stdlib.h>

#include "xmalloc.h"

#include "policy.h"

struct ba_model {
	enum policy_mstate	 state;		/* as last seen */
	int64_t			 started;	/* waking: its switch's work began */
	int64_t			 cost;		/* ms to switch to it; 0: unknown */
	int64_t			 left;		/* LEAVING since; -1: not seen */
	uint32_t		 left_in_flight; /* its in-flight count then */
	int64_t			 drain_us;	/* us a request in flight adds to
						   its drain; 0: unknown */
};

struct batch_aware {
	void			*ts;		/* time_slice's state */
	size_t			 n;
	struct ba_model		*m;
	int64_t			 drained;	/* a victim had nothing in flight */
};

static void *
policy_batch_aware_init(const struct policy_config *pc, size_t n)
{
	struct batch_aware	*ba = xcalloc(1, sizeof(*ba));

	ba->ts = policy_time_slice.init(pc, n);
	ba->n = n;
	ba->m = xcalloc(n > 0 ? n : 1, sizeof(*ba->m));
	for (size_t i = 0; i < n; i++) {
		ba->m[i].state = POLICY_ASLEEP;
		ba->m[i].started = -1;
		ba->m[i].left = -1;
	}
	ba->drained = -1;
	return (ba);
}

static void
policy_batch_aware_free(void *state)
{
	struct batch_aware	*ba = state;

	if (ba == NULL)
		return;
	policy_time_slice.free(ba->ts);
	free(ba->m);
	free(ba);
}

/* llmux 0.7's moving average: the first sample raw, then 0.3 of each. */
static int64_t
policy_batch_aware_ema(int64_t old, int64_t sample)
{
	if (sample < 1)
		sample = 1;
	return (old == 0 ? sample : (3 * sample + 7 * old) / 10);
}

/*
 * Time a victim's drain: from its leaving (ACTIVE to LEAVING, with requests
 * in flight) to its last request done, per request it had in flight. New
 * requests are not sent to a model that is leaving, so nothing else is
 * counted.
 */
static void
policy_batch_aware_drain_seen(struct ba_model *m, const struct policy_model *pm,
    int64_t now)
{
	if (pm->state != POLICY_LEAVING) {
		m->left = -1;
		return;
	}
	if (m->state == POLICY_ACTIVE && pm->in_flight > 0) {
		m->left = now;
		m->left_in_flight = pm->in_flight;
	} else if (m->left >= 0 && pm->in_flight == 0) {
		m->drain_us = policy_batch_aware_ema(m->drain_us,
		    (now - m->left) * 1000 / m->left_in_flight);
		m->left = -1;
	}
}

/*
 * Time the switches the view shows: work begun (a victim with nothing left
 * in flight, or the wake), target ready. Two switches at once on disjoint
 * GPUs share one start, the earlier: the later one is overpriced, which
 * errs towards time_slice's rules. And time the drains.
 */
static void
policy_batch_aware_observe(struct batch_aware *ba, const struct policy_view *v)
{
	bool	leaving = false;

	for (size_t i = 0; i < v->n_models && i < ba->n; i++) {
		const struct policy_model *pm = &v->models[i];

		if (pm->state != POLICY_LEAVING)
			continue;
		leaving = true;
		if (pm->in_flight == 0 && ba->drained < 0)
			ba->drained = v->now_ms;
	}
	for (size_t i = 0; i < v->n_models && i < ba->n; i++) {
		const struct policy_model *pm = &v->models[i];
		struct ba_model		*m = &ba->m[i];

		policy_batch_aware_drain_seen(m, pm, v->now_ms);
		if (pm->state == POLICY_WAKING && m->state != POLICY_WAKING)
			m->started = ba->drained >= 0 ? ba->drained : v->now_ms;
		else if (pm->state == POLICY_ACTIVE &&
		    m->state == POLICY_WAKING && m->started >= 0)
			m->cost = policy_batch_aware_ema(m->cost,
			    v->now_ms - m->started);
		if (pm->state != POLICY_WAKING)
			m->started = -1;
		m->state = pm->state;
	}
	if (!leaving)
		ba->drained = -1;
}

/* What switching to model i costs, measured; -1 when nothing is known. */
static int64_t
policy_batch_aware_cost(const struct batch_aware *ba, int i)
{
	int64_t	sum = 0, n = 0;

	if (ba->m[i].cost > 0)
		return (ba->m[i].cost);
	for (size_t j = 0; j < ba->n; j++) {
		if (ba->m[j].cost > 0) {
			sum += ba->m[j].cost;
			n++;
		}
	}
	return (n > 0 ? sum / n : -1);
}

/*
 * Has candidate m's victim little left in flight: would its drain
 * take at most a quarter of the round trip rt? Priced by the victim's
 * drains seen, else by the others'; with none seen, one request left is
 * little.
 */
static bool
policy_batch_aware_little_left(const struct batch_aware *ba,
    const struct policy_model *m, int64_t rt)
{
	int64_t	per = 0, sum = 0, n = 0;

	if (m->victims_in_flight == 0)
		return (true);
	if ((size_t)m->victim < ba->n)
		per = ba->m[m->victim].drain_us;
	for (size_t j = 0; per == 0 && j < ba->n; j++) {
		if (ba->m[j].drain_us > 0) {
			sum += ba->m[j].drain_us;
			n++;
		}
	}
	if (per == 0 && n > 0)
		per = sum / n;
	if (per == 0)
		return (m->victims_in_flight <= 1);
	return (per * (int64_t)m->victims_in_flight <= rt * 1000 / 4);
}

/* There and back again: to candidate i and then to its main victim. */
static int64_t
policy_batch_aware_round_trip(const struct batch_aware *ba,
    const struct policy_view *v, int i)
{
	int64_t	there, back;

	if ((size_t)i >= ba->n || v->models[i].victim < 0 ||
	    (size_t)v->models[i].victim >= ba->n)
		return (-1);
	there = policy_batch_aware_cost(ba, i);
	back = policy_batch_aware_cost(ba, v->models[i].victim);
	if (there < 0 || back < 0)
		return (-1);
	return (there + back);
}

/* Request-milliseconds a batch has waited, counting its oldest's age. */
static double
policy_batch_aware_weight(const struct policy_view *v, int i)
{
	const struct policy_model *m = &v->models[i];
	int64_t	age = v->now_ms - m->oldest_ms;

	if (age < 0)
		age = 0;
	return ((double)m->queued * (double)(age + 1000));
}

/* Of two batches ready to be served, the one that has waited more. */
static int
policy_batch_aware_better(const struct policy_view *v, int a, int b)
{
	double	wa, wb;

	if (a < 0)
		return (b);
	wa = policy_batch_aware_weight(v, a);
	wb = policy_batch_aware_weight(v, b);
	if (wa != wb)
		return (wb > wa ? b : a);
	return (policy_older(v, a, b));
}

static void
policy_batch_aware_decide(void *state, const struct policy_config *pc,
    const struct policy_view *v, struct policy_decision *d)
{
	struct batch_aware	*ba = state;
	int64_t			 now = v->now_ms;
	int64_t			 min_active = (int64_t)pc->min_active_secs * 1000;
	int			 idle = -1, busy = -1;

	policy_batch_aware_observe(ba, v);
	policy_time_slice.decide(ba->ts, pc, v, d);
	if (d->target >= 0)
		return;		/* staleness, a cold start or its tick */

	for (size_t i = 0; i < v->n_models; i++) {
		const struct policy_model *m = &v->models[i];
		int64_t	rt, at;

		if (!m->candidate || m->queued == 0 || m->victim < 0)
			continue;
		rt = policy_batch_aware_round_trip(ba, v, (int)i);
		if (rt < 0 || rt > min_active)
			continue;	/* dear: time_slice's rules */
		if (m->victims_queued == 0 && m->victims_in_flight == 0) {
			idle = policy_batch_aware_better(v, idle, (int)i);
			continue;
		}
		if (!policy_batch_aware_little_left(ba, m, rt))
			continue;	/* it rides along: asked again as it drains */
		at = m->oldest_ms + rt;
		if (at < m->victims_since_ms + min_active)
			at = m->victims_since_ms + min_active;
		if (now >= at)
			busy = policy_batch_aware_better(v, busy, (int)i);
		else
			d->next_ms = policy_min(d->next_ms, at);
	}
	if (idle >= 0)
		d->target = idle;
	else if (busy >= 0)
		d->target = busy;
	/* min_active_secs was applied above, where it applies. */
	d->no_cooldown = d->target >= 0;
}

const struct policy_impl policy_batch_aware = {
	.type = POLICY_BATCH_AWARE,
	.name = "batch_aware",
	.init = policy_batch_aware_init,
	.free = policy_batch_aware_free,
	.decide = policy_batch_aware_decide,
};
