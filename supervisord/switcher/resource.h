/*
 * resource.h -- the GPU memory model of the switcher (docs/policies.md,
 * "The resource model").
 *
 * Every model claims a set of GPUs (a bitmask) and a fraction of each. What
 * a model holds on its GPUs depends on its state: its whole fraction while
 * it is awake (or being woken, drained or evicted), and while asleep a
 * residue set by its eviction: a CUDA context for offload/discard with
 * keep_running, everything for retain+keep_running (nothing was freed),
 * nothing for cuda_suspend, checkpoint and stop.
 *
 * A model fits on its GPUs when, on each of them, what the others hold plus
 * its fraction is at most 1.0. Pure arithmetic: no I/O, no state.
 */
#ifndef LLMUX_RESOURCE_H
#define LLMUX_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eviction.h"

#define RESOURCE_MAX_GPUS	64
#define RESOURCE_EPSILON	1e-6
/* What a CUDA context keeps on each GPU, as a fraction of the GPU. */
#define RESOURCE_CONTEXT_RESIDUE 0.01

/* Why a holder is a worse victim: lower classes are chosen first. */
enum resource_class {
	RESOURCE_IDLE,		/* awake with nothing queued or in flight */
	RESOURCE_BUSY,		/* awake and serving or wanted */
	RESOURCE_ASLEEP,	/* asleep, holding only a residue */
};

/*
 * One model that holds memory on some GPUs; model -1 (never evictable):
 * memory held by something else (another program, measured).
 */
struct resource_holder {
	int			 model;
	uint64_t		 gpus;
	double			 held;		/* on each of its GPUs now */
	double			 after;		/* once evicted its own way */
	bool			 evictable;	/* may be chosen as a victim */
	enum resource_class	 class;
	int64_t			 last_used_ms;
};

/* What a model holds while asleep with this eviction. */
double	resource_residue(const struct eviction *, double fraction,
	    double context_residue);
/* Mask of GPUs 0..n-1. */
uint64_t resource_all_gpus(unsigned n_gpus);

/*
 * Choose the victims that must be evicted so that a claim of fraction on
 * every GPU in gpus fits beside the holders. Preference: idle awake models,
 * then busy ones, then sleeping residues; least recently used first within
 * each; then any victim that turns out unnecessary is dropped again.
 * When evicting victims their own way cannot make room, evicting them with
 * stop (which frees everything) is tried; those are also set in *stop.
 * Returns 0 with *victims (0 when it fits as it is), or -1 when no choice
 * of evictable holders makes room.
 */
int	resource_choose_victims(const struct resource_holder *, size_t n,
	    uint64_t gpus, double fraction, uint64_t *victims, uint64_t *stop);

#endif
