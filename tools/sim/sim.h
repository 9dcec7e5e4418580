/*
 * sim.h -- llmux-sim's virtual-time engine: replays a trace through the
 * supervisor's real switcher and policy, with simulated model servers.
 *
 * The model (docs/policies.md has the definitions):
 *   - every model claims one GPU at fraction 0.9, so one is awake at a time;
 *   - an awake model is sent every request for it at once (as the proxy
 *     does) and serves up to `concurrency` of them at a time, each for
 *     `service` ms; the others wait inside it, in arrival order;
 *   - a drain completes when the model's in-flight count reaches 0;
 *   - a switch costs `switch_cost` ms of evict plus wake: the eviction
 *     takes SIM_EVICT_SHARE of it, the wake the rest (the whole of it when
 *     nothing was evicted first);
 *   - nothing ever fails.
 */
#ifndef LLMUX_SIM_H
#define LLMUX_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "trace.h"

/* The seed's report: about 88 % of a switch is the wake. */
#define SIM_EVICT_SHARE	0.12

struct sim_options {
	enum policy_type policy;
	int64_t		 switch_cost_ms;
	int64_t		 service_ms;
	uint32_t	 max_wait_secs;
	uint32_t	 min_active_secs;
	uint32_t	 concurrency;
	double		 fraction;	/* each model's GPU memory share */
};

struct sim_result {
	size_t		 requests;
	size_t		 switches;
	int64_t		 serving_ms;	/* some request being served */
	int64_t		 switching_ms;	/* a switch, nothing served */
	int64_t		 held_ms;	/* requests wait, no switch, no service */
	int64_t		 idle_ms;	/* nothing to do */
	double		 switch_time;	/* s: switching + held */
	double		 wall_time;	/* s: serving + switch_time */
	double		 gpu_fraction;	/* 1 - switch_time / wall_time */
	double		 mean_wait;	/* s: arrival to start of service */
	double		 max_wait;
};

void	sim_options_default(struct sim_options *);
/* Run; 0, or -1 with *cause (free it). */
int	sim_run(const struct trace *, const struct sim_options *,
	    struct sim_result *, char **cause);

#endif
