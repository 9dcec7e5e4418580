/*
 * policy_batch_aware.c -- llmux's own policy: serve each model's waiting
 * requests as one batch, and switch the moment the active batch is done.
 *
 * The requests waiting for a model are its batch. A visit serves the whole
 * batch, and everything that joins it while the model is awake (exhaustive
 * service, as time_slice), because leaving a model that still has work
 * only buys a second switch back to it. Three differences from time_slice:
 *
 *   - Decisions are made on every change of demand, not on a scheduler
 *     tick: the switch starts the moment the active model's last request
 *     finishes (or its min_active_secs end), so the GPU never idles for
 *     part of a tick while requests wait.
 *   - The next batch is the one that has waited most in total, its size
 *     times the age of its oldest request, rather than the largest: a
 *     small batch that has waited long goes before a large fresh one, and
 *     a large batch before a single fresh request.
 *   - A staleness deadline is a timer, not a check made when the next
 *     request happens to arrive, so a lone request is never forgotten.
 *
 * As in the seed's policies, a request that has waited max_wait_secs
 * forces a switch even from a busy model, and a model that fits beside
 * the active ones (no victims) is woken at once. docs/policies.md has the
 * measurements.
 */
#include <stdlib.h>

#include "policy.h"

static void *
policy_batch_aware_init(const struct policy_config *pc, size_t n)
{
	return (NULL);
}

static void
policy_batch_aware_free(void *state)
{
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
	int64_t	now = v->now_ms;
	int64_t	min_active = (int64_t)pc->min_active_secs * 1000;
	int	urgent = -1, next = -1;

	for (size_t i = 0; i < v->n_models; i++) {
		const struct policy_model *m = &v->models[i];
		int64_t	free_at;

		if (!m->candidate || m->queued == 0)
			continue;
		if (policy_stale(pc, v, m) || m->victim < 0) {
			urgent = policy_older(v, urgent, (int)i);
			continue;
		}
		d->next_ms = policy_min(d->next_ms, policy_stale_at(pc, m));
		if (m->victims_queued > 0 || m->victims_in_flight > 0)
			continue;	/* the active batch is not done */
		free_at = m->victims_since_ms + min_active;
		if (now < free_at) {
			d->next_ms = policy_min(d->next_ms, free_at);
			continue;
		}
		next = policy_batch_aware_better(v, next, (int)i);
	}
	if (urgent >= 0)
		d->target = urgent;
	else if (next >= 0)
		d->target = next;
}

const struct policy_impl policy_batch_aware = {
	.type = POLICY_BATCH_AWARE,
	.name = "batch_aware",
	.init = policy_batch_aware_init,
	.free = policy_batch_aware_free,
	.decide = policy_batch_aware_decide,
};
