/*
 * cost.h -- per-direction switch cost estimates: llmux 0.7's exponential
 * moving average of measured switch times (alpha 0.3, the first sample
 * taken raw, samples capped at 60 s, 10 s before any sample).
 *
 * Directions are (from, to) model indexes; from is -1 for a switch that
 * evicted nothing (a start from idle).
 */
#ifndef LLMUX_COST_H
#define LLMUX_COST_H

#include <stddef.h>
#include <stdint.h>

#define COST_INITIAL_MS		10000	/* estimate before any sample */
#define COST_SAMPLE_CAP_MS	60000	/* longer samples count as this */

struct cost_ema {
	int64_t		ms;		/* current estimate */
	uint32_t	samples;	/* how many were recorded */
};

struct cost_table {
	size_t		 n;		/* models */
	struct cost_ema	*v;		/* (n + 1) rows of n: row 0 is "none" */
};

void	 cost_init(struct cost_table *, size_t n_models);
void	 cost_free(struct cost_table *);
/* Feed one measured switch (from may be -1). */
void	 cost_record(struct cost_table *, int from, int to, int64_t ms);
/* The estimate for a direction, milliseconds. */
int64_t	 cost_estimate(const struct cost_table *, int from, int to);
uint32_t cost_samples(const struct cost_table *, int from, int to);

#endif
