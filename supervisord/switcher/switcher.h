/*
 * switcher.h -- the switch state machine and resource model
 * (docs/policies.md, "The resource model").
 *
 * The switcher decides and sequences every switch; it never performs one.
 * It is engine-agnostic and clock-free: the embedder (the supervisor, or
 * llmux-sim in virtual time) feeds it inputs, each with the time now_ms,
 * and it answers through an ops vtable: engine operations (drain, evict,
 * wake, warm up), notifications (ready, failed, state changed, switch
 * records) and one timer (set_timer: the earliest time it wants to be
 * called again through switcher_timer).
 *
 * A switch: cooldown (victims active for min_active_secs; none when the
 * policy's decision says no_cooldown) -> drain victims -> evict victims ->
 * wake the target -> ready. Engine operations are
 * asynchronous: the embedder reports completions with switcher_drained,
 * switcher_evicted, switcher_woken and switcher_warmed. An engine may also
 * complete an operation synchronously, from inside the op call: inputs that
 * arrive while the switcher is running are queued and handled once the
 * current one is done, so the switcher never re-enters itself.
 *
 * Models are numbered 0..n-1 in config order.
 */
#ifndef LLMUX_SWITCHER_H
#define LLMUX_SWITCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cost.h"
#include "eviction.h"

#define SWITCHER_NEVER	INT64_MAX

struct switcher;

/* A model's state in the switcher. */
enum switcher_mstate {
	SWM_STOPPED,	/* no process: nothing resident */
	SWM_SLEEPING,	/* asleep with an eviction (see slept_with) */
	SWM_WAKING,	/* the target of a switch: started or woken */
	SWM_WARMING,	/* start-up warm-up: one inference */
	SWM_ACTIVE,	/* ready: requests are dispatched to it */
	SWM_DRAINING,	/* a victim: new requests wait, in-flight finish */
	SWM_EVICTING,	/* a victim (or a failed target) being evicted */
};

enum switcher_phase {
	SWP_COOLDOWN,	/* victims serve until active min_active_secs */
	SWP_DRAIN,	/* waiting for the victims' in-flight requests */
	SWP_EVICT,	/* victims being put to sleep */
	SWP_WAKE,	/* the target being woken */
	SWP_WARMUP,	/* start-up: the warm-up inference */
	SWP_ABORT,	/* a hung wake: the target is being stopped */
};

enum switcher_mode {
	SWITCHER_AUTO,
	SWITCHER_MANUAL,	/* no automatic switching */
};

/* Every phase of one finished switch, for metrics and logs. */
struct switch_record {
	int		 from;		/* main victim; -1: none */
	int		 to;		/* target; -1: a sleep with no target */
	uint64_t	 victims;	/* every model evicted */
	int64_t		 start_ms;
	int64_t		 cooldown_ms;
	int64_t		 drain_ms;
	int64_t		 sleep_ms;
	int64_t		 wake_ms;
	int64_t		 total_ms;
	bool		 ok;
	bool		 by_operator;
	unsigned	 evict_failures; /* victims the engine had to stop */
	const char	*reason;	/* when !ok */
};

struct switcher_switch_status;

struct switcher_ops {
	/* Engine operations: each is answered by a completion input. */
	void	(*drain)(void *, int model);
	void	(*evict)(void *, int model, struct eviction);
	void	(*wake)(void *, int model);
	void	(*warmup)(void *, int model);	/* NULL: no warm-up step */
	/*
	 * Before each wake: how much memory is free on the target's GPUs,
	 * answered by switcher_room. NULL: no check, the wake goes at once;
	 * nor is a model suspended with cuda_suspend checked (its resume
	 * places itself).
	 */
	void	(*check_room)(void *, int model);
	/* Notifications. */
	void	(*ready)(void *, int model);
	void	(*failed)(void *, int model, const char *reason);
	void	(*state_changed)(void *);
	void	(*record)(void *, const struct switch_record *);
	/*
	 * A phase of a switch began (NULL: nobody is told; nor of the
	 * start-up warm-up); prev_ms is how long the phase before it
	 * lasted (0 for the first).
	 */
	void	(*phase)(void *, const struct switcher_switch_status *,
		    int64_t prev_ms);
	/* Call switcher_timer at at_ms (SWITCHER_NEVER: no timer). */
	void	(*set_timer)(void *, int64_t at_ms);
};

/* Knobs that are not in the config file. */
struct switcher_params {
	double		 context_residue;	/* RESOURCE_CONTEXT_RESIDUE */
	int64_t		 wake_timeout_ms;	/* warm wakes: 300 s */
	int64_t		 wake_grace_ms;		/* added to wake deadlines,
						   so an engine's own
						   timeouts go first: 0 */
	int64_t		 backoff_ms;		/* first failure: 2 s */
	int64_t		 backoff_max_ms;	/* doubling up to 60 s */
	unsigned	 n_gpus;		/* 0: from the config */
	bool		 quiet;			/* no info logs per switch */
	bool		 resumed;		/* a rebuild: no warm-up or
						   preload at start */
};

void	 switcher_params_default(struct switcher_params *);

/* The config must outlive the switcher. */
struct switcher	*switcher_new(const struct config *, const struct switcher_ops *,
		    void *arg, const struct switcher_params *);
void		 switcher_free(struct switcher *);
/* Warm-up (config warmup) and preload; call once, when ready to serve. */
void		 switcher_start(struct switcher *, int64_t now_ms);
/*
 * Before switcher_start, what an embedder restarted or rebuilt keeps: the
 * mode and pin (pinned -1: none) and the cost estimates.
 */
void		 switcher_restore_mode(struct switcher *, enum switcher_mode,
		    int pinned);
void		 switcher_restore_cost(struct switcher *, int from, int to,
		    const struct cost_ema *);

/* Inputs: demand as the proxy reports it. */
void	switcher_demand(struct switcher *, int model, uint32_t queued,
	    uint32_t in_flight, int64_t oldest_wait_ms, int64_t now_ms);
/* The proxy went away (its counts become zero, no policy evictions). */
void	switcher_proxy(struct switcher *, bool connected, int64_t now_ms);
void	switcher_timer(struct switcher *, int64_t now_ms);

/* Inputs: engine completions. reason may be NULL when ok. */
void	switcher_drained(struct switcher *, int model, int64_t now_ms);
void	switcher_evicted(struct switcher *, int model, bool ok,
	    const char *reason, int64_t now_ms);
void	switcher_woken(struct switcher *, int model, bool ok,
	    const char *reason, int64_t now_ms);
void	switcher_warmed(struct switcher *, int model, bool ok,
	    const char *reason, int64_t now_ms);
void	switcher_died(struct switcher *, int model, const char *reason,
	    int64_t now_ms);
/*
 * The engine changed a model outside the switcher: re-adoption after a
 * restart, an operator's checkpoint, restore or validate, a rebuild after a
 * reload. state is SWM_STOPPED, SWM_SLEEPING (with slept_with) or
 * SWM_ACTIVE. Ignored while the model is part of a switch or is being
 * woken, drained or evicted: the switch's own completions say how it ends.
 */
void	switcher_resync(struct switcher *, int model, enum switcher_mstate,
	    const struct eviction *slept_with, int64_t now_ms);
/*
 * Wake a model again if it fits beside what is awake without evicting
 * anything (a crashed model's restart). Answered by ready or failed, or
 * dropped (logged) when it does not fit or is already awake.
 */
void	switcher_restart(struct switcher *, int model, int64_t now_ms);

/* What is free on one GPU, as the embedder measured it (NVML). */
struct switcher_gpu_room {
	unsigned	 gpu;
	uint64_t	 total_bytes;
	uint64_t	 free_bytes;
};

/*
 * Input: the answer to check_room for a model about to be woken: what is
 * free on its GPUs now (n 0: unknown, the wake goes on). When its
 * fraction fits what is free, the wake goes on (ops.wake). When it does
 * not, the memory the resource model does not know of (another program,
 * a model holding more than it claims) is counted as held on those GPUs
 * and more victims are chosen and evicted before the wake is tried again;
 * when none can make room, the wake fails at once, its reason naming the
 * GPU, the bytes free and the bytes needed.
 */
void	switcher_room(struct switcher *, int model,
	    const struct switcher_gpu_room *, size_t n, int64_t now_ms);

/*
 * Input: where a model lives now, as a mask of GPUs, when the engine
 * restored it onto other GPUs than its configured ones (CUDA restore with
 * UUID remapping, gpu.allow_migration); 0: back to its configured GPUs.
 * Report it before the completion of that wake (switcher_woken).
 */
void	switcher_model_placed(struct switcher *, int model, uint64_t gpus);

/*
 * Inputs: operator commands. Each returns 0, or -1 with *cause set (free
 * it). A switch, pin or wake is answered later by ready or failed for the
 * model; a sleep by a switch record with to == -1 (or, when the model was
 * no longer awake by the time its GPUs were free, by nothing: see
 * switcher_sleep_pending). A sleeping model may be slept again with the
 * eviction it sleeps with (no work) or one that stops it.
 */
int	switcher_cmd_switch(struct switcher *, int model, int64_t now_ms,
	    char **cause);
int	switcher_cmd_pin(struct switcher *, int model, int64_t now_ms,
	    char **cause);
void	switcher_cmd_unpin(struct switcher *, int64_t now_ms);
void	switcher_cmd_mode(struct switcher *, enum switcher_mode,
	    int64_t now_ms);
int	switcher_cmd_sleep(struct switcher *, int model,
	    const struct eviction *, int64_t now_ms, char **cause);
int	switcher_cmd_wake(struct switcher *, int model, int64_t now_ms,
	    char **cause);
int	switcher_cmd_set_eviction(struct switcher *, int model,
	    struct eviction, int64_t now_ms, char **cause);

/* Introspection. */
struct switcher_model_status {
	const char		*name;
	enum switcher_mstate	 state;
	struct eviction		 eviction;	/* used for its next sleep */
	struct eviction		 slept_with;	/* when SLEEPING */
	uint64_t		 gpus;
	double			 fraction;
	double			 held;		/* on each of its GPUs now */
	uint32_t		 queued;
	uint32_t		 in_flight;
	int64_t			 active_since_ms;
	int64_t			 last_used_ms;
	int64_t			 backoff_until_ms;
	unsigned		 failures;	/* in a row */
	unsigned		 failures_total;
	const char		*last_error;	/* NULL: none */
	bool			 pinned;
	bool			 admitted;	/* the proxy may queue for it */
};

struct switcher_switch_status {
	int			 target;	/* -1: a sleep */
	int			 from;		/* main victim, -1: none */
	uint64_t		 victims;
	uint64_t		 gpus;
	enum switcher_phase	 phase;
	int64_t			 start_ms;
	int64_t			 phase_start_ms;
	bool			 by_operator;
	bool			 warmup;	/* start-up warm-up, no victim */
};

size_t		 switcher_n_models(const struct switcher *);
int		 switcher_model_index(const struct switcher *, const char *);
const char	*switcher_model_name(const struct switcher *, int);
void		 switcher_model_status(const struct switcher *, int,
		    struct switcher_model_status *);
enum switcher_mstate switcher_model_state(const struct switcher *, int);
/* May the proxy queue a request for the model (else 503: manual mode)? */
bool		 switcher_admits(const struct switcher *, int);
/* The switches in progress; returns how many (at most max are filled). */
size_t		 switcher_switches(const struct switcher *,
		    struct switcher_switch_status *, size_t max);
enum switcher_mode switcher_mode(const struct switcher *);
int		 switcher_pinned(const struct switcher *);
/* Is an operator's sleep of the model waiting to start? */
bool		 switcher_sleep_pending(const struct switcher *, int);
/*
 * How long until the idle TTL puts the model to sleep, as things are at
 * now_ms; -1 when no countdown runs (no ttl_secs, not active, pinned, in
 * use, part of a switch, no proxy).
 */
int64_t		 switcher_ttl_remaining_ms(const struct switcher *, int,
		    int64_t now_ms);
/* Models ready now, as a mask. */
uint64_t	 switcher_active(const struct switcher *);
/* "idle", "active:m", "switching:a->b", "switching:none->b". */
const char	*switcher_state_string(const struct switcher *, char *, size_t);
const struct cost_table *switcher_costs(const struct switcher *);
const char	*switcher_policy_name(const struct switcher *);
unsigned	 switcher_n_gpus(const struct switcher *);

const char	*switcher_mstate_name(enum switcher_mstate);
const char	*switcher_phase_name(enum switcher_phase);

#endif
