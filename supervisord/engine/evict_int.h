/*
 * evict_int.h -- what the files of the eviction engine (evict.c: the
 * operations and their callers; evict_step.c: the steps; evict_plan.c: the
 * plans) share and nothing else needs: an operation in progress.
 */
#ifndef LLMUX_EVICT_INT_H
#define LLMUX_EVICT_INT_H

#include "supervisord/engine/engine.h"

#define EVICT_MAX_PIDS	1024

struct evict_waiter {
	evict_done_cb		 done;
	evict_progress_cb	 progress;
	void			*arg;
};

/* An asynchronous gpu or criu call; op is cleared if the op goes away. */
struct evict_pending {
	struct evict_op		*op;
	struct store_job	*job;		/* a transfer: cancel it */
};

struct evict_op {
	struct model		*m;
	enum evict_kind		 kind;
	struct eviction		 eviction;	/* SLEEP: applied; WAKE: from */
	struct evict_plan	 plan;
	size_t			 idx;
	bool			 in_step;
	int64_t			 start_ms;
	int64_t			 step_ms;
	int64_t			 step_us;	/* for the model's step_us */
	struct evict_waiter	*w;
	size_t			 nw;
	struct httpc_call	*call;
	struct health		*health;
	struct evict_pending	*pending;
	bool			 waiting_log;
	struct event		*ev_next;
	enum evict_result	 result;
	char			*reason;
	bool			 failing;	/* WAKE: stop, then fail */
	bool			 cuda_failed;	/* a GPU process is FAILED */
	bool			 adopting;
	bool			 adopt_probe;	/* found: ask /is_sleeping */
	enum model_pstate	 adopt_state;
	int64_t			 health_timeout_ms;
	char			*images;	/* CHECKPOINT: where */
	bool			 images_checked; /* downloaded: sums checked */
	char			*log;		/* last lines of a failed start */
	struct evict_report	 report;
};

/* evict.c */
void	evict_progress(struct evict_op *, const char *, const char *);
void	evict_schedule(struct evict_op *);
void	evict_finish(struct evict_op *);
void	evict_set_reason(struct evict_op *, const char *, const char *,
	    const char *);
/* After a download: the rest of the wake from the manifest's eviction. */
void	evict_replan_restore(struct evict_op *, const struct eviction *);

/* evict_step.c */
void	evict_step_start(struct evict_op *);
void	evict_step_end(struct evict_op *, bool, const char *);
void	evict_replan(struct evict_op *, enum evict_step);
/* The step had nothing to do: on to the next, with no phase recorded. */
void	evict_step_skip(struct evict_op *);

#endif
