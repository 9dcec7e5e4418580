/*
 * policy.h -- switch policies: when to switch, and to which model.
 *
 * A policy is plain C: no I/O, no clock of its own (now_ms comes in the
 * view), no global state. Each instance owns its state, so the supervisor
 * and llmux-sim run the very same code, one in real time, one in virtual
 * time. The switcher builds a view of every model each time something
 * changes and asks the policy to decide; the policy answers with a target
 * (or none) and the time at which it wants to be asked again even if
 * nothing changes (the end of a coalescing window, the next tick, a
 * staleness deadline).
 *
 * llmux 0.7's one-active-model vocabulary maps onto the resource model
 * through each candidate's victims: the "active model" of a decision about
 * target T is the set of models that must be evicted to wake T. A target
 * that fits beside what is resident has no victims, which llmux 0.7's rules
 * treat as "nothing is active".
 */
#ifndef LLMUX_POLICY_H
#define LLMUX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define POLICY_NEVER	INT64_MAX

/* Where a model stands, as far as a policy cares. */
enum policy_mstate {
	POLICY_ASLEEP,		/* not resident: stopped or sleeping */
	POLICY_WAKING,		/* being woken: its requests join that switch */
	POLICY_ACTIVE,		/* ready and serving */
	POLICY_LEAVING,		/* a victim being drained or evicted */
};

struct policy_model {
	enum policy_mstate state;
	uint32_t	 queued;	/* requests waiting for it */
	uint32_t	 in_flight;	/* requests it is serving */
	int64_t		 oldest_ms;	/* arrival of the oldest queued request */
	int64_t		 active_since_ms; /* when it became ready (ACTIVE) */
	int64_t		 last_used_ms;	/* last time it had work */

	/*
	 * A candidate is a model that could be switched to right now: asleep,
	 * requests waiting, automatic switching allowed, not backing off after
	 * a failure, its GPUs not busy with another switch, and room can be
	 * made. The rest of these fields describe that switch.
	 */
	bool		 candidate;
	uint64_t	 victims;	/* models that would be evicted */
	int		 victim;	/* the main one; -1: it fits as it is */
	int64_t		 victims_since_ms; /* latest activation among them */
	uint32_t	 victims_queued;
	uint32_t	 victims_in_flight;
	int64_t		 cost_ms;	/* estimated switch cost victim -> it */
	int64_t		 cost_back_ms;	/* estimated cost it -> victim */
};

struct policy_view {
	int64_t			 now_ms;
	size_t			 n_models;
	const struct policy_model *models;
};

struct policy_decision {
	int		 target;	/* model index to switch to; -1: none */
	int64_t		 next_ms;	/* ask again by then; POLICY_NEVER */
	/*
	 * The policy timed this switch itself: its victims are drained at
	 * once, without the switcher's cooldown (min_active_secs). A policy
	 * that sets it applies min_active_secs on its own terms; llmux 0.7's
	 * policies never set it.
	 */
	bool		 no_cooldown;
};

struct policy;

/* A new policy of the configured type for n_models models. */
struct policy	*policy_new(const struct policy_config *, size_t n_models);
void		 policy_free(struct policy *);
/* Decide; target is always a candidate of the view or -1. */
void		 policy_decide(struct policy *, const struct policy_view *,
		    struct policy_decision *);
const char	*policy_name(const struct policy *);
enum policy_type policy_type(const struct policy *);

/* Config names: "fifo", "cost_aware", "time_slice", "batch_aware". */
const char	*policy_type_name(enum policy_type);
int		 policy_type_parse(const char *, enum policy_type *);
/* llmux 0.7's defaults for every policy knob. */
void		 policy_config_default(struct policy_config *);

/* One policy implementation (policy_*.c). */
struct policy_impl {
	enum policy_type type;
	const char	*name;
	void		*(*init)(const struct policy_config *, size_t n_models);
	void		 (*free)(void *);
	void		 (*decide)(void *, const struct policy_config *,
			    const struct policy_view *, struct policy_decision *);
};

extern const struct policy_impl policy_fifo;
extern const struct policy_impl policy_cost_aware;
extern const struct policy_impl policy_time_slice;
extern const struct policy_impl policy_batch_aware;

/* Helpers the implementations share. */
bool	policy_stale(const struct policy_config *, const struct policy_view *,
	    const struct policy_model *);
int64_t	policy_stale_at(const struct policy_config *,
	    const struct policy_model *);
/* Of two candidates, the one whose oldest request came first. */
int	policy_older(const struct policy_view *, int a, int b);
int64_t	policy_min(int64_t, int64_t);

#endif
