/*
 * switcher_int.h -- the switcher's private structures, shared by
 * switcher.c (inputs), switcher_switch.c (the phases of a switch),
 * switcher_step.c (what happens at each instant), switcher_plan.c
 * (resource planning and the policy view), switcher_cmd.c (operator
 * commands) and switcher_status.c (introspection).
 */
#ifndef LLMUX_SWITCHER_INT_H
#define LLMUX_SWITCHER_INT_H

#include "policy.h"
#include "resource.h"
#include "switcher.h"

#define SW_MAX_MODELS	64
#define SW_BIT(i)	((uint64_t)1 << (i))

struct sw_model {
	const struct model_config *cfg;
	uint64_t		 gpus;
	double			 fraction;
	struct eviction		 eviction;	/* for its next sleep */
	enum switcher_mstate	 state;
	struct eviction		 slept_with;	/* SLEEPING: how */
	struct eviction		 evicting_with;	/* EVICTING: how */
	double			 evicting_held;	/* EVICTING: held until done */
	uint32_t		 queued;
	uint32_t		 in_flight;
	int64_t			 oldest_ms;
	int64_t			 active_since_ms;
	int64_t			 last_used_ms;
	int64_t			 backoff_until_ms;
	unsigned		 failures;
	unsigned		 failures_total;
	char			*last_error;
	int			 sw;		/* its switch, -1: none */
	bool			 op_done;	/* drain/evict completed */
	int64_t			 startup_timeout_ms;
	uint32_t		 ttl_secs;
};

enum sw_op_kind {
	SW_OP_SWITCH,
	SW_OP_PIN,
	SW_OP_WAKE,
	SW_OP_PRELOAD,
};

struct sw_switch {
	bool			 used;
	int			 target;	/* -1: a sleep */
	int			 from;
	uint64_t		 victims;
	uint64_t		 victims_before; /* evicted before a room check
						   asked for more */
	uint64_t		 stop;		/* victims evicted with stop */
	uint64_t		 gpus;
	enum switcher_phase	 phase;
	int64_t			 start_ms;
	int64_t			 phase_ms;	/* when the phase began */
	int64_t			 deadline_ms;
	int64_t			 cooldown_ms;
	int64_t			 drain_ms;
	int64_t			 sleep_ms;
	int64_t			 wake_ms;
	bool			 by_operator;
	bool			 by_policy;	/* cancelled if demand goes */
	enum sw_op_kind		 op_kind;
	enum switcher_mode	 prev_mode;	/* SW_OP_PIN: to roll back */
	int			 prev_pinned;
	bool			 warmup;
	bool			 failed_notified;
	unsigned		 evict_failures;
	struct eviction		 sleep_eviction;	/* a sleep command's */
	bool			 sleep_eviction_set;
	bool			 room_wait;	/* check_room asked, unanswered */
	enum switcher_mstate	 target_was;	/* before its wake began */
};

/* A switch ordered by the operator, waiting for its GPUs. */
struct sw_op {
	int			 target;	/* -1: none pending */
	enum sw_op_kind		 kind;
	enum switcher_mode	 prev_mode;
	int			 prev_pinned;
};

enum sw_event_type {
	SWE_START,
	SWE_DEMAND,
	SWE_PROXY,
	SWE_TIMER,
	SWE_DRAINED,
	SWE_EVICTED,
	SWE_WOKEN,
	SWE_WARMED,
	SWE_DIED,
	SWE_RESYNC,
	SWE_RESTART,
	SWE_ROOM,
	SWE_CMD_SWITCH,
	SWE_CMD_PIN,
	SWE_CMD_UNPIN,
	SWE_CMD_MODE,
	SWE_CMD_SLEEP,
	SWE_CMD_WAKE,
	SWE_CMD_EVICTION,
};

struct sw_event {
	enum sw_event_type	 type;
	int			 model;
	int64_t			 now;
	uint32_t		 queued;
	uint32_t		 in_flight;
	int64_t			 wait_ms;
	bool			 ok;
	char			*reason;
	struct eviction		 eviction;
	bool			 eviction_set;
	enum switcher_mode	 mode;
	enum switcher_mstate	 mstate;	/* SWE_RESYNC */
	struct switcher_gpu_room *rooms;	/* SWE_ROOM, owned */
	size_t			 n_rooms;
};

/* What switching to a model takes (switcher_plan). */
struct sw_plan {
	uint64_t		 victims;
	uint64_t		 stop;
	uint64_t		 gpus;
	int			 from;		/* main awake victim, -1 */
};

#define SW_PLAN_OK	0
#define SW_PLAN_WAIT	1	/* GPUs busy with a switch or in flux */
#define SW_PLAN_NEVER	(-1)	/* no choice of victims makes room */

struct switcher {
	const struct config	*cfg;
	struct switcher_ops	 ops;
	void			*arg;
	struct switcher_params	 params;
	unsigned		 n_gpus;

	size_t			 n;
	struct sw_model		*m;
	struct sw_switch	*sw;		/* n slots */
	struct policy		*policy;
	struct policy_model	*view;		/* n, rebuilt per decision */
	struct cost_table	 costs;

	enum switcher_mode	 mode;
	int			 pinned;
	bool			 proxy_up;
	bool			 started;
	bool			 warming;	/* start-up warm-up running */
	size_t			 warm_next;
	uint64_t		 preload;	/* preload models not yet woken */
	struct sw_op		 op;
	uint64_t		 sleep_pending;	/* sleep commands waiting */
	struct eviction		*sleep_with;	/* n: their evictions */

	int64_t			 now;
	int64_t			 policy_next;
	int64_t			 timer_at;	/* as last given to set_timer */
	bool			 dirty;		/* state changed: notify */

	struct sw_event		*q;		/* queued inputs */
	size_t			 q_head, q_len, q_cap;
	bool			 busy;
};

/* switcher.c */
void	switcher_post(struct switcher *, struct sw_event *);
/* An event with only its type, model and time. */
void	switcher_post_simple(struct switcher *, enum sw_event_type, int model,
	    int64_t now);
void	switcher_set_error(struct sw_model *, const char *);

/* switcher_switch.c */
int	switcher_start_switch(struct switcher *, int target,
	    const struct sw_plan *, bool by_operator, enum sw_op_kind,
	    int64_t now);
void	switcher_cancel(struct switcher *, struct sw_switch *);
void	switcher_account(struct sw_switch *, int64_t now);
void	switcher_enter(struct switcher *, struct sw_switch *,
	    enum switcher_phase, int64_t now);
bool	switcher_advance(struct switcher *, struct sw_switch *, int64_t now);
void	switcher_finish(struct switcher *, struct sw_switch *, bool ok,
	    const char *reason, int64_t now);
const char *switcher_name(const struct switcher *, int);

/* switcher_status.c */
void	switcher_switch_fill(const struct sw_switch *,
	    struct switcher_switch_status *);

/* switcher_step.c */
void	switcher_step(struct switcher *, int64_t now);

/* switcher_plan.c */
double	switcher_held(const struct switcher *, int);
uint64_t switcher_locked_gpus(const struct switcher *);
int	switcher_plan(const struct switcher *, int target, struct sw_plan *);
void	switcher_apply_room(struct switcher *, struct sw_event *);
void	switcher_build_view(struct switcher *, int64_t now,
	    struct policy_view *);
bool	switcher_policy_allowed(const struct switcher *);

/* switcher_cmd.c */
void	switcher_apply_cmd(struct switcher *, struct sw_event *);
bool	switcher_run_ops(struct switcher *, int64_t now);

#endif
