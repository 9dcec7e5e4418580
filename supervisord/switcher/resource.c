/*
 * resource.c -- residues, fitting and victim choice for the GPU model.
 */
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

#include "resource.h"

double
resource_residue(const struct eviction *e, double fraction,
    double context_residue)
{
	if (e->process != PROCESS_KEEP_RUNNING)
		return (0.0);
	if (e->weights == WEIGHTS_RETAIN)
		return (fraction);
	return (context_residue < fraction ? context_residue : fraction);
}

uint64_t
resource_all_gpus(unsigned n)
{
	if (n >= 64)
		return (~(uint64_t)0);
	if (n == 0)
		return (1);
	return (((uint64_t)1 << n) - 1);
}

/* Does the claim fit given what each holder keeps (held, or after if chosen)? */
static bool
resource_fits(const struct resource_holder *h, size_t n, uint64_t chosen,
    bool all_stop, uint64_t gpus, double fraction)
{
	for (unsigned g = 0; g < RESOURCE_MAX_GPUS; g++) {
		double	used = fraction;

		if ((gpus & ((uint64_t)1 << g)) == 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			if ((h[i].gpus & ((uint64_t)1 << g)) == 0)
				continue;
			if (h[i].model >= 0 && h[i].model < 64 &&
			    (chosen & ((uint64_t)1 << h[i].model)))
				used += all_stop ? 0.0 : h[i].after;
			else
				used += h[i].held;
		}
		if (used > 1.0 + RESOURCE_EPSILON)
			return (false);
	}
	return (true);
}

/* Order of preference among possible victims. */
static int
resource_cmp(const void *a, const void *b)
{
	const struct resource_holder *x = *(const struct resource_holder *const *)a;
	const struct resource_holder *y = *(const struct resource_holder *const *)b;

	if (x->class != y->class)
		return (x->class < y->class ? -1 : 1);
	if (x->last_used_ms != y->last_used_ms)
		return (x->last_used_ms < y->last_used_ms ? -1 : 1);
	return (x->model < y->model ? -1 : x->model > y->model);
}

/* One greedy pass, evicting the victims their own way or with stop. */
static int
resource_pass(const struct resource_holder *h, size_t n,
    const struct resource_holder **order, size_t n_order, bool all_stop,
    uint64_t gpus, double fraction, uint64_t *victims)
{
	uint64_t	chosen = 0;
	size_t		i, used = 0;

	for (i = 0; i < n_order; i++) {
		if (resource_fits(h, n, chosen, all_stop, gpus, fraction))
			break;
		chosen |= (uint64_t)1 << order[i]->model;
		used = i + 1;
	}
	if (!resource_fits(h, n, chosen, all_stop, gpus, fraction))
		return (-1);
	/* Give back any victim the others made unnecessary. */
	for (i = used; i-- > 0;) {
		uint64_t bit = (uint64_t)1 << order[i]->model;

		if (resource_fits(h, n, chosen & ~bit, all_stop, gpus, fraction))
			chosen &= ~bit;
	}
	*victims = chosen;
	return (0);
}

int
resource_choose_victims(const struct resource_holder *h, size_t n,
    uint64_t gpus, double fraction, uint64_t *victims, uint64_t *stop)
{
	const struct resource_holder	**order;
	size_t				  n_order = 0;
	int				  rc;

	*victims = *stop = 0;
	if (resource_fits(h, n, 0, false, gpus, fraction))
		return (0);
	order = xcalloc(n > 0 ? n : 1, sizeof(*order));
	for (size_t i = 0; i < n; i++) {
		if (h[i].evictable && (h[i].gpus & gpus) != 0 &&
		    h[i].model >= 0 && h[i].model < 64)
			order[n_order++] = &h[i];
	}
	qsort(order, n_order, sizeof(*order), resource_cmp);
	rc = resource_pass(h, n, order, n_order, false, gpus, fraction,
	    victims);
	if (rc != 0) {
		rc = resource_pass(h, n, order, n_order, true, gpus, fraction,
		    victims);
		if (rc == 0)
			*stop = *victims;
	}
	free(order);
	return (rc);
}
