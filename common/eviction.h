/*
 * eviction.h -- the two axes of eviction (docs/reference-behaviour.md,
 * "Eviction: two axes"): what happens to a model's weights and what
 * happens to its process when it is put to sleep.
 */
#ifndef LLMUX_EVICTION_H
#define LLMUX_EVICTION_H

#include <stdbool.h>
#include <stddef.h>

enum weights_strategy {
	WEIGHTS_RETAIN,		/* nothing */
	WEIGHTS_OFFLOAD,	/* vLLM sleep level 1: weights to host memory */
	WEIGHTS_DISCARD,	/* vLLM sleep level 2: weights dropped */
	WEIGHTS__COUNT
};

enum process_strategy {
	PROCESS_KEEP_RUNNING,	/* the process keeps its CUDA context */
	PROCESS_CUDA_SUSPEND,	/* CUDA driver checkpoint API, in memory */
	PROCESS_CHECKPOINT,	/* CRIU dump of the whole tree to disk */
	PROCESS_STOP,		/* kill the tree */
	PROCESS__COUNT
};

struct eviction {
	enum weights_strategy	weights;
	enum process_strategy	process;
};

/* llmux 0.7's default: retain + stop. */
#define EVICTION_DEFAULT ((struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP })

/* snake_case names as in llmux 0.7's JSON: "offload", "cuda_suspend". */
const char	*eviction_weights_name(enum weights_strategy);
const char	*eviction_process_name(enum process_strategy);
/* llmux 0.7's Debug spelling, used in process_state strings: "Offload". */
const char	*eviction_weights_title(enum weights_strategy);
const char	*eviction_process_title(enum process_strategy);

int	eviction_weights_parse(const char *, enum weights_strategy *);
int	eviction_process_parse(const char *, enum process_strategy *);
/* The old numeric levels 1..5; -1 when out of range. */
int	eviction_from_level(long, struct eviction *);
/* "offload+keep_running" (also accepts a level "1".."5"). */
int	eviction_parse(const char *, struct eviction *);
/* "offload+keep_running" into buf. */
const char *eviction_format(const struct eviction *, char *, size_t);

/* Does this eviction leave a CUDA context resident on the GPUs? */
bool	eviction_keeps_gpu_context(const struct eviction *);
/* Does this eviction keep the process alive (so wake is not a start)? */
bool	eviction_keeps_process(const struct eviction *);

#endif
