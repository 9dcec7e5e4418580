/*
 * policy_fifo.c -- llmux 0.7's fifo: switch on the first request for a
 * model that is not active. When several wait, the oldest request goes
 * first, which is the order llmux 0.7's switch lock serves them in.
 */
#include <stdlib.h>

#include "policy.h"

static void *
policy_fifo_init(const struct policy_config *pc, size_t n)
{
	return (NULL);
}

static void
policy_fifo_free(void *state)
{
}

static void
policy_fifo_decide(void *state, const struct policy_config *pc,
    const struct policy_view *v, struct policy_decision *d)
{
	for (size_t i = 0; i < v->n_models; i++) {
		if (v->models[i].candidate && v->models[i].queued > 0)
			d->target = policy_older(v, d->target, (int)i);
	}
}

const struct policy_impl policy_fifo = {
	.type = POLICY_FIFO,
	.name = "fifo",
	.init = policy_fifo_init,
	.free = policy_fifo_free,
	.decide = policy_fifo_decide,
};
