/*
 * policy.c -- the policy registry: names, defaults, and the calls that
 * dispatch to one implementation.
 */
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#include "policy.h"

struct policy {
	const struct policy_impl *impl;
	struct policy_config	  cfg;
	void			 *state;
};

static const struct policy_impl *policy_impls[POLICY__COUNT] = {
	[POLICY_FIFO] = &policy_fifo,
	[POLICY_COST_AWARE] = &policy_cost_aware,
	[POLICY_TIME_SLICE] = &policy_time_slice,
	[POLICY_BATCH_AWARE] = &policy_batch_aware,
};

void
policy_config_default(struct policy_config *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->type = POLICY_FIFO;
	pc->request_timeout_secs = 300;
	pc->drain_before_switch = true;
	pc->eviction = EVICTION_DEFAULT;
	pc->min_active_secs = 5;
	pc->coalesce_window_ms = 2000;
	pc->amortization_factor = 0.5;
	pc->max_wait_secs = 15;
	pc->tick_interval_ms = 500;
	pc->min_quantum_ms = 2000;
	pc->drain_timeout_secs = 300;
}

const char *
policy_type_name(enum policy_type t)
{
	if ((unsigned)t >= POLICY__COUNT)
		return ("?");
	return (policy_impls[t]->name);
}

int
policy_type_parse(const char *s, enum policy_type *t)
{
	for (int i = 0; i < POLICY__COUNT; i++) {
		if (strcmp(s, policy_impls[i]->name) == 0) {
			*t = (enum policy_type)i;
			return (0);
		}
	}
	return (-1);
}

struct policy *
policy_new(const struct policy_config *pc, size_t n_models)
{
	struct policy	*p;

	if ((unsigned)pc->type >= POLICY__COUNT)
		return (NULL);
	p = xcalloc(1, sizeof(*p));
	p->impl = policy_impls[pc->type];
	p->cfg = *pc;
	p->state = p->impl->init(pc, n_models);
	return (p);
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	p->impl->free(p->state);
	free(p);
}

void
policy_decide(struct policy *p, const struct policy_view *v,
    struct policy_decision *d)
{
	d->target = -1;
	d->next_ms = POLICY_NEVER;
	d->no_cooldown = false;
	p->impl->decide(p->state, &p->cfg, v, d);
	if (d->target >= 0 && ((size_t)d->target >= v->n_models ||
	    !v->models[d->target].candidate))
		d->target = -1;
	if (d->target < 0)
		d->no_cooldown = false;
	if (d->next_ms <= v->now_ms && d->target < 0)
		d->next_ms = POLICY_NEVER;
}

const char *
policy_name(const struct policy *p)
{
	return (p->impl->name);
}

enum policy_type
policy_type(const struct policy *p)
{
	return (p->impl->type);
}

int64_t
policy_min(int64_t a, int64_t b)
{
	return (a < b ? a : b);
}

int64_t
policy_stale_at(const struct policy_config *pc, const struct policy_model *m)
{
	return (m->oldest_ms + (int64_t)pc->max_wait_secs * 1000);
}

bool
policy_stale(const struct policy_config *pc, const struct policy_view *v,
    const struct policy_model *m)
{
	return (m->queued > 0 && v->now_ms >= policy_stale_at(pc, m));
}

int
policy_older(const struct policy_view *v, int a, int b)
{
	if (a < 0)
		return (b);
	if (b < 0)
		return (a);
	if (v->models[b].oldest_ms < v->models[a].oldest_ms)
		return (b);
	return (a);
}
