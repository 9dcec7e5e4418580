/*
 * core.h -- the ground floor of llmux-supervisord: the two structures
 * every level shares (struct supervisor, struct model) and the enums that
 * go with them. It calls nothing and declares no function but the top's
 * entry point; each folder's header is the map of that folder, and
 * docs/architecture.md says which folder may call which.
 *
 * Fields are grouped by the folder that owns them: the others read them,
 * and change them only through that folder's functions.
 */
#ifndef LLMUX_CORE_H
#define LLMUX_CORE_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eviction.h"
#include "proto.h"

struct client;
struct ctl_call;
struct ctl_reply;
struct server_ops;
struct event;
struct event_base;
struct engine_hooks;
struct events;
struct evict_op;
struct gpu_hooks;
struct gpu_saved;
struct gpu_state;
struct httpc_call;
struct infer_call;
struct op_result;
struct persist;
struct process;
struct process_flush;
struct process_stop;
struct store_job;
struct switch_stats;
struct switch_watch;
struct switcher;

/* ---- a model (engine/model.c) ------------------------------------------ */

/* The process state of llmux 0.7's orchestrator (format_process_state). */
enum model_pstate {
	MODEL_NOT_STARTED,	/* no process (never started, or stopped) */
	MODEL_STARTING,		/* process started, not healthy yet */
	MODEL_RUNNING,		/* healthy, awake */
	MODEL_SLEEPING,		/* process kept, evicted with m->sleeping */
	MODEL_CHECKPOINTED,	/* CRIU images on disk, no process */
	MODEL_FAILED,		/* last start or wake failed, or it crashed */
	MODEL_PSTATE__COUNT
};

/* How many times and how long a phase ran, for metrics. */
struct phase_stat {
	uint64_t	count;
	uint64_t	total_ms;
	uint64_t	last_ms;
};

/* The steps of evictions and wakes (evict.c); also the metric phases. */
enum evict_step {
	STEP_SLEEP_OFFLOAD,	/* POST /sleep?level=1 */
	STEP_SLEEP_DISCARD,	/* POST /sleep?level=2 */
	STEP_NCCL_SUSPEND,	/* POST /collective_rpc suspend_nccl */
	STEP_CUDA_SUSPEND,	/* gpu module: lock + checkpoint */
	STEP_CRIU_DUMP,		/* criu module: dump the tree */
	STEP_STOP,		/* SIGTERM, grace, SIGKILL, cgroup kill */
	STEP_START,		/* spawn, then /health until ready */
	STEP_CRIU_RESTORE,	/* criu module: restore the tree */
	STEP_HEALTH,		/* /health until ready */
	STEP_CUDA_RESUME,	/* gpu module: restore + unlock */
	STEP_NCCL_RESUME,	/* POST /collective_rpc resume_nccl */
	STEP_WAKE_UP,		/* POST /wake_up */
	STEP_RELOAD_WEIGHTS,	/* POST /collective_rpc reload_weights */
	STEP_RESET_PREFIX_CACHE, /* POST /reset_prefix_cache */
	STEP_UPLOAD,		/* store module: images to the object store */
	STEP_DOWNLOAD,		/* store module: images from it, if missing */
	STEP__COUNT
};

struct model {
	struct supervisor	*sup;
	char			*name;
	struct model_config	*cfg;		/* NULL once removed by reload */
	TAILQ_ENTRY(model)	 entry;

	enum model_pstate	 pstate;
	struct eviction		 sleeping;	/* SLEEPING, CHECKPOINTED: how */
	bool			 has_override;
	struct eviction		 override;	/* from eviction_set */
	char			*reason;	/* FAILED: why */
	char			*last_error;	/* last failure or escalation */
	uint64_t		 generation;	/* bumps on every start */
	bool			 draining;	/* a switch drains it */
	bool			 warming;	/* its warm-up inference runs */
	bool			 removed;	/* stop, then free */
	char			*images;	/* CHECKPOINTED: images dir */
	char			*store_url;	/* where they are in the store */
	char			*store_error;	/* the last transfer's failure */

	struct process		*proc;		/* NULL: no process */
	struct evict_op		*op;		/* operation in progress */

	/* Crashes and automatic restarts. */
	uint32_t		 starts;
	uint32_t		 crashes;
	uint32_t		 restarts;
	uint32_t		 crash_streak;	/* short-lived runs in a row */
	bool			 crash_loop;	/* gave up restarting */
	int64_t			 restart_delay_ms; /* after a crash; -1: none */
	struct event		*ev_restart;

	/* Demand reported by the proxy. */
	uint32_t		 queued;
	uint32_t		 in_flight;
	uint32_t		 oldest_ms;
	int64_t			 demand_ms;	/* when it came */
	uint64_t		 done;		/* requests the proxy completed */
	struct done_sample {			/* for requests/s, 1 s apart */
		int64_t		 ms;
		uint64_t	 done;
	}			 done_samples[16];
	unsigned		 n_done_samples;

	struct phase_stat	 phases[STEP__COUNT];
	uint32_t		 escalations;
	uint32_t		 wake_failures;

	/* GPU placement. */
	struct gpu_saved	*gpu_saved;	/* CUDA-suspended: where it was */
	uint64_t		 gpus_moved;	/* restored elsewhere: where; 0 no */
	bool			 start_for_criu; /* next start: CRIU-safe */
	uint64_t		 step_us;	/* time in engine steps, µs */

	/* What switching/ keeps for the switcher's operations. */
	uint32_t		 drain_id;	/* the drain the proxy answers */
	size_t			 drain_waiting;	/* proxies yet to answer */
	struct op_result	*last_sleep;	/* the last sleep's report */
	struct op_result	*last_wake;	/* the last wake's report */
	struct infer_call	*warm_call;	/* the warm-up inference */
	bool			 restarting;	/* a crash restart was asked */
	bool			 evict_pending;	/* after the running operation */
	struct eviction		 evict_with;
	bool			 wake_pending;	/* after the running operation */

	/* server/events.c: what the event stream last told of it. */
	bool			 ev_told;
	int			 ev_state;	/* enum proto_model_state */
	int64_t			 ev_state_ms;	/* since when */
	int64_t			 ev_queue_ms;	/* its last queue event */
	bool			 ev_queue_pending;

	/* engine/liveness.c: its health checks while it runs. */
	struct httpc_call	*live_call;
	uint32_t		 live_failures;	/* in a row */
	pid_t			 live_pid;	/* what the check asked */
	uint64_t		 live_generation;
	/* The proxy could not reach it: the check's answer goes here. */
	void			(*live_asked)(struct model *);
};
TAILQ_HEAD(models, model);

/* ---- a model's process (engine/process.c) ------------------------------ */

/* criu/ and gpu/ read pid, tp and exited; the engine alone changes it. */
struct process {
	struct model	*model;
	pid_t		 pid;		/* leader; also the pgid and sid */
	int		 pidfd;
	struct event	*ev_exit;
	uint64_t	 start_time;	/* /proc/PID/stat starttime */
	char		*cgroup;	/* its cgroup dir, or NULL */
	uint16_t	 port;
	unsigned	 tp;		/* tensor parallel size */
	int64_t		 started_ms;
	bool		 adopted;	/* not our child: no exit status */
	bool		 exited;
	char		*exit_reason;
	int		 flushed_fd;	/* log keeper's EOF pipe, or -1 */
	bool		 log_file_mode;	/* plain file log (CRIU) */
	struct process_stop *stop;
	struct process_flush *flush;
	char		*kill_reason;	/* process_kill: why */
};

/* ---- the supervisor ---------------------------------------------------- */

/* Who may take which role on the socket (server/server.c fills it in). */
struct role_policy {
	bool	privileged;	/* we run as root */
	uid_t	self_uid;
	bool	has_proxy_uid;
	uid_t	proxy_uid;
	bool	has_admin_gid;
	gid_t	admin_gid;
};

TAILQ_HEAD(clients, client);
TAILQ_HEAD(ctl_calls, ctl_call);
TAILQ_HEAD(ctl_replies, ctl_reply);

struct supervisor {
	struct event_base	*base;
	struct config		*conf;
	char			*config_path;
	char			*socket_path;
	bool			 privileged;	/* euid 0 */
	uid_t			 uid;
	gid_t			 gid;
	bool			 said_unprivileged;
	char			*cgroup_root;	/* delegated v2 cgroup, or NULL */

	struct models		 models;
	const struct engine_hooks *engine_hooks; /* engine/'s news, upward */

	/* switching/: the switcher and what drives it. */
	struct switcher		*switcher;
	struct config		*switcher_conf;	/* what it was made from */
	bool			 switcher_stale; /* a reload waits to rebuild */
	struct event		*ev_switcher;	/* its one timer */
	struct event		*ev_rebuild;	/* after a reload */
	struct event		*ev_pending;	/* operations that waited */
	struct switch_watch	*watches;	/* switches in progress, timed */
	size_t			 n_watches;
	bool			 journal_manual; /* from the journal, for init */
	char			*journal_pinned;
	uint32_t		 drain_seq;
	struct switch_stats	*switch_stats;	/* switching/stats.c */

	/* server/: the socket, its peers, the calls waiting. */
	const struct server_ops	*server_ops;	/* server/'s news, upward */
	int			 listen_fd;
	struct role_policy	 roles;
	bool			 has_proxy_gid;
	gid_t			 proxy_gid;
	struct event		*ev_listen;
	struct event		*ev_accept_retry;
	struct clients		 clients;
	struct ctl_calls	 calls;
	struct ctl_replies	 replies;	/* waiting for the journal */
	struct event		*ev_state;
	uint64_t		 config_generation;
	struct events		*events;	/* the stream (events.c) */

	/* persist/: the journal and its writer thread. */
	struct event		*ev_journal;
	struct persist		*persist;	/* the writer thread */
	bool			 journal_dirty;
	uint64_t		 journal_writes;
	uint64_t		 journal_failures;

	/* supervisor.c: signals and timers; engine/liveness.c. */
	struct event		*ev_sigs[5];
	struct event		*ev_watchdog;
	struct event		*ev_logcheck;
	struct event		*ev_liveness;	/* engine/liveness.c */
	bool			 exiting;
	uint64_t		 reloads;

	/* base/worker.c, store/, gpu/. */
	int			 worker_fds[2];
	struct event		*ev_worker;
	TAILQ_HEAD(, store_job)	 store_jobs;	/* transfers running */
	struct gpu_state	*gpu;
	const struct gpu_hooks	*gpu_hooks;	/* gpu/'s news, upward */
	uint64_t		 reload_failures;
	int64_t			 started_ms;
};

/* ---- supervisor.c: the top, what main.c calls -------------------------- */

/* What main.c passes besides the config. */
struct supervisor_opts {
	const char	*config_path;	/* for reload */
	const char	*socket_path;	/* --socket or LLMUX_SOCKET; NULL: config */
	int		 verbose;
};

/* Run the daemon until SIGTERM; takes the config (and frees it). */
int	supervisor_main(struct config *, const struct supervisor_opts *);

#endif
