/*
 * cost.c -- the per-direction switch cost EMA the policies plan with.
 *
 * Integer milliseconds throughout, new = (3 * sample + 7 * old) / 10, so
 * that the figures are llmux 0.7's to the millisecond.
 */
#include <stdlib.h>

#include "xmalloc.h"

#include "cost.h"

/* The cell of a direction, or NULL when an index is out of range. */
static struct cost_ema *
cost_cell(const struct cost_table *t, int from, int to)
{
	if (from < -1 || to < 0 || (size_t)to >= t->n ||
	    (from >= 0 && (size_t)from >= t->n))
		return (NULL);
	return (&t->v[(size_t)(from + 1) * t->n + (size_t)to]);
}

void
cost_init(struct cost_table *t, size_t n)
{
	t->n = n;
	t->v = xcalloc((n + 1) * (n > 0 ? n : 1), sizeof(*t->v));
	for (size_t i = 0; i < (n + 1) * n; i++)
		t->v[i].ms = COST_INITIAL_MS;
}

void
cost_free(struct cost_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

void
cost_record(struct cost_table *t, int from, int to, int64_t ms)
{
	struct cost_ema	*c;

	if ((c = cost_cell(t, from, to)) == NULL)
		return;
	if (ms < 0)
		ms = 0;
	if (ms > COST_SAMPLE_CAP_MS)
		ms = COST_SAMPLE_CAP_MS;
	if (c->samples == 0)
		c->ms = ms;
	else
		c->ms = (3 * ms + 7 * c->ms) / 10;
	if (c->samples < UINT32_MAX)
		c->samples++;
}

int64_t
cost_estimate(const struct cost_table *t, int from, int to)
{
	struct cost_ema	*c;

	if ((c = cost_cell(t, from, to)) == NULL)
		return (COST_INITIAL_MS);
	return (c->ms);
}

uint32_t
cost_samples(const struct cost_table *t, int from, int to)
{
	struct cost_ema	*c;

	if ((c = cost_cell(t, from, to)) == NULL)
		return (0);
	return (c->samples);
}
