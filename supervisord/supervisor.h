/*
 * supervisor.h -- llmux-supervisord's shared types and what each of its
 * files exports, file by file (as tmux.h does for tmux).
 *
 * The daemon owns the model processes (process.c, spawn.c, cgroup.c,
 * modellog.c), performs every eviction as an asynchronous sequence of steps
 * (evict.c, over httpc.c, health.c, gpu.c, criu.c), records what it owns in
 * a journal (journal.c, adopt.c) and serves its Unix socket (server.c,
 * control.c, metrics.c, reload.c). Nothing here blocks the event loop on a
 * model: every operation completes through a callback.
 */
#ifndef LLMUX_SUPERVISOR_H
#define LLMUX_SUPERVISOR_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "eviction.h"
#include "proto.h"

struct body;
struct event;
struct event_base;
struct proto_conn;
struct client;
struct evict_op;
struct httpc_call;
struct persist;
struct process;
struct store_job;
struct supervisor;
struct switch_record;
struct switch_stats;
struct switch_watch;
struct switcher;

/* ---- supervisor.c ------------------------------------------------------ */

/* What main.c passes besides the config. */
struct supervisor_opts {
	const char	*config_path;	/* for reload */
	const char	*socket_path;	/* --socket or LLMUX_SOCKET; NULL: config */
	int		 verbose;
};

/* Run the daemon until SIGTERM; takes the config (and frees it). */
int	supervisor_main(struct config *, const struct supervisor_opts *);
void	supervisor_dispatch_proxy(struct client *, struct proto_msg *);
void	supervisor_dispatch_ctl(struct client *, struct proto_msg *);

/* ---- model.c: a configured model and its state --------------------------- */

/* The process state of the seed's orchestrator (format_process_state). */
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
	struct event		*ev_restart;

	/* Demand reported by the proxy. */
	uint32_t		 queued;
	uint32_t		 in_flight;
	uint32_t		 oldest_ms;
	int64_t			 demand_ms;	/* when it came */

	struct phase_stat	 phases[STEP__COUNT];
	uint32_t		 escalations;
	uint32_t		 wake_failures;

	/* GPU placement. */
	struct gpu_saved	*gpu_saved;	/* CUDA-suspended: where it was */
	uint64_t		 gpus_moved;	/* restored elsewhere: where; 0 no */
	bool			 start_for_criu; /* next start: CRIU-safe */
	uint64_t		 step_us;	/* time in engine steps, µs */

	/* What switching.c keeps for the switcher's operations. */
	uint32_t		 drain_id;	/* the drain the proxy answers */
	size_t			 drain_waiting;	/* proxies yet to answer */
	struct op_result	*last_sleep;	/* the last sleep's report */
	struct op_result	*last_wake;	/* the last wake's report */
	struct httpc_call	*warm_call;	/* the warm-up inference */
	bool			 restarting;	/* a crash restart was asked */
	bool			 evict_pending;	/* after the running operation */
	struct eviction		 evict_with;
	bool			 wake_pending;	/* after the running operation */

	/* liveness.c: its health checks while it runs. */
	struct httpc_call	*live_call;
	uint32_t		 live_failures;	/* in a row */
	pid_t			 live_pid;	/* what the check asked */
	uint64_t		 live_generation;
};
TAILQ_HEAD(models, model);

/* Crash restarts: delay doubles from BASE up to MAX; LIMIT short runs in a
 * row (each under STABLE_MS) is a crash loop, and restarting stops. */
#define MODEL_RESTART_BASE_MS	500
#define MODEL_RESTART_MAX_MS	30000
#define MODEL_CRASH_LOOP_LIMIT	5
#define MODEL_STABLE_MS		60000

struct model	*model_new(struct supervisor *, struct model_config *);
struct model	*model_new_unconfigured(struct supervisor *, const char *);
void		 model_free(struct model *);
void		 model_free_later(struct model *);
struct model	*model_find(struct supervisor *, const char *);
/* The eviction a sleep uses when none is given: override, config, policy. */
struct eviction	 model_eviction(const struct model *);
/* The seed's process_state string ("sleeping:Offload+KeepRunning"). */
char		*model_process_state(const struct model *);
const char	*model_pstate_name(enum model_pstate);
int		 model_pstate_parse(const char *, enum model_pstate *);
/* The state published to the proxy (ready, waking, evicting, ...). */
enum proto_model_state model_published_state(const struct model *);
/* A model's name made safe as one path component ("a%2Fb"). */
char		*model_path_name(const char *);
/* Something about m changed: push state, write the journal. */
void		 model_changed(struct model *);
void		 model_set_pstate(struct model *, enum model_pstate);
void		 model_set_failed(struct model *, const char *reason);
void		 model_set_error(struct model *, const char *);
/* The model's process went away without being asked to. */
void		 model_process_exited(struct model *, const char *reason,
		    int64_t ran_ms);
void		 model_clear_crash_loop(struct model *);
/* A crash restart asked of the switcher ended (ok: the model is ready). */
void		 model_restart_done(struct model *, bool ok, const char *reason);
void		 model_phase_record(struct model *, enum evict_step,
		    int64_t ms);

/* ---- spawn.c: argv, environment and the child's setup ------------------ */

struct spawn_spec {
	char		**argv;
	char		**envp;
	bool		  drop;		/* switch to uid/gid (as root) */
	uid_t		  uid;
	gid_t		  gid;
	int		  out_fd;	/* stdout and stderr */
	int		  cgroup_fd;	/* cgroup.procs to join, or -1 */
};

char	**spawn_argv(const struct config *, const struct model_config *);
char	**spawn_envp(char *const *base, const struct model_config *,
	    bool criu);
bool	  spawn_names_served_model(char *const *);
/* The first name the model is served as (its name, or extra_args'). */
const char *spawn_served_name(const struct model_config *);
/* fork, set the child up and exec; -1 with the reason in err. */
pid_t	  spawn_exec(const struct spawn_spec *, char *err, size_t errlen);
void	  spawn_strv_free(char **);
size_t	  spawn_strv_len(char *const *);

/* ---- procfs.c: reading /proc ------------------------------------------- */

struct procfs_stat {
	pid_t		pid;
	char		state;		/* R, S, D, Z, ... */
	pid_t		ppid;
	pid_t		pgrp;
	pid_t		session;
	uint64_t	starttime;	/* clock ticks after boot */
};

int	procfs_parse_stat(const char *, size_t, struct procfs_stat *);
int	procfs_read_stat(pid_t, struct procfs_stat *);
/* Is the process alive (not a zombie) and started at starttime? */
bool	procfs_alive(pid_t, uint64_t starttime);
/* Is the process's descriptor fd a regular file? */
bool	procfs_fd_is_file(pid_t, int fd);
/*
 * The processes that belong to a model whose leader is pid: its
 * descendants and every process of its session. Returns how many were
 * written to out (at most max), the leader excluded.
 */
size_t	procfs_members(pid_t, struct procfs_stat *out, size_t max);
/* Pure helper of procfs_members, over a snapshot. */
size_t	procfs_members_of(pid_t, const struct procfs_stat *, size_t,
	    struct procfs_stat *out, size_t max);
/* Does this /proc/PID/maps text map a /dev/nvidia* device? */
bool	procfs_maps_nvidia(const char *, size_t);
bool	procfs_pid_maps_nvidia(pid_t);
/* "0::/path" line of /proc/PID/cgroup: the v2 path, or -1. */
int	procfs_cgroup2_path(const char *, size_t, char *, size_t);
/* The mount point of cgroup2 in a mountinfo text, or -1. */
int	procfs_cgroup2_mount(const char *, size_t, char *, size_t);
/* Read a whole small file (at most max bytes) into a new buffer. */
char	*procfs_read_file(const char *, size_t max, size_t *len);

/* ---- cgroup.c: a cgroup v2 per model, when delegated to us ------------- */

void	 cgroup_init(struct supervisor *);
/* Make the model's cgroup; returns its path or NULL (then none is used). */
char	*cgroup_create(struct supervisor *, const char *model);
int	 cgroup_open_procs(const char *);
void	 cgroup_kill(const char *);
bool	 cgroup_populated(const char *);
void	 cgroup_remove(const char *);

/* ---- modellog.c: per-model log files ----------------------------------- */

struct modellog_out {
	int	fd;		/* for the child's stdout/stderr */
	int	flushed_fd;	/* EOF once everything is on disk, or -1 */
	bool	file_mode;	/* a plain file (CRIU), not a pipe */
};

/* Prepare the model's output; -1 with a reason. */
int	 modellog_open(struct supervisor *, struct model *, bool file_mode,
	    struct modellog_out *, char *err, size_t errlen);
/* Paths: log_dir/NAME.log, and NAME.log.N for rotated ones. */
char	*modellog_path(const struct supervisor *, const char *model, int n);
/* The last lines of the model's log as one string, or NULL. */
char	*modellog_tail(const struct supervisor *, const char *model,
	    int lines, size_t max_bytes);
/* Copy-truncate rotation of a file-mode log that is over the cap. */
void	 modellog_check_file(struct supervisor *, const char *model);
/* The keeper's loop, exposed for tests: copy in to the log files. */
void	 modellog_keeper_run(int in, int dirfd, const char *file,
	    uint64_t max_bytes, uint32_t keep);

/* ---- httpc.c: calls to a model's HTTP server --------------------------- */

struct httpc_result {
	int		 status;	/* HTTP status; 0 on failure */
	const char	*error;		/* failure: "timed out", ... */
	const char	*body;		/* NUL-terminated, possibly cut */
	size_t		 body_len;
	int64_t		 ms;		/* how long the call took */
};
typedef void	(*httpc_cb)(const struct httpc_result *, void *);

#define HTTPC_MAX_BODY	(64u << 10)

struct httpc_call *httpc_request(struct event_base *, uint16_t port,
		    const char *method, const char *path, const char *body,
		    int64_t timeout_ms, httpc_cb, void *);
/* Forget a call: its callback will not run. */
void		 httpc_cancel(struct httpc_call *);

/* ---- health.c: readiness ------------------------------------------------ */

struct health;
typedef void	(*health_cb)(int ok, const char *reason, void *);

/* Poll GET /health every 10 ms, growing to HEALTH_MAX_INTERVAL_MS. */
#define HEALTH_FIRST_INTERVAL_MS	10
#define HEALTH_MAX_INTERVAL_MS		40
#define HEALTH_CALL_TIMEOUT_MS		2000

struct health	*health_wait(struct event_base *, uint16_t port,
		    int64_t timeout_ms, health_cb, void *);
void		 health_cancel(struct health *);
/* The poll delays, for tests: the next after cur. */
int64_t		 health_next_interval(int64_t cur);

/* ---- liveness.c: health checks of running models ------------------------ */

/* Failed checks in a row that make a model hung; the longest check. */
#define LIVENESS_FAILURES	3
#define LIVENESS_MAX_WAIT_MS	30000

void		 liveness_init(struct supervisor *);
void		 liveness_free(struct supervisor *);
void		 liveness_forget(struct model *);

/* ---- worker.c: blocking work on threads -------------------------------- */

typedef void	(*worker_fn)(void *);
/* Back on the loop; cancelled at exit: free, call nobody back. */
typedef void	(*worker_done_fn)(void *, bool cancelled);

void	worker_init(struct supervisor *);
void	worker_run(struct supervisor *, worker_fn, worker_done_fn, void *);
void	worker_shutdown(struct supervisor *);
int	worker_count(void);

/* ---- gpu.c, gpu_ops.c: CUDA suspend and NVML telemetry ------------------ */

struct gpu_state;
struct gpu_saved;

/* How a suspend or resume went (the callback may take saved). */
struct gpu_result {
	bool		  ok;
	bool		  failed_state;	/* a process is in CUDA's FAILED state */
	const char	 *reason;
	bool		  moved;	/* restored onto other GPUs */
	uint64_t	  gpus;		/* where the model is now; 0: unknown */
	const char	 *detail;	/* "GPU 0 -> GPU 1", or why not */
	struct gpu_saved *saved;	/* suspend: where each process was */
};
typedef void	(*gpu_cb)(struct gpu_result *, void *);
typedef void	(*gpu_measure_cb)(bool ok, uint64_t mib, void *);

void	 gpu_init(struct supervisor *);
void	 gpu_free(struct supervisor *);
/* Read NVML again soon (after a suspend or a resume). */
void	 gpu_refresh(struct supervisor *);
/* Can CUDA suspend run here? Loads the driver (blocks: not in the loop). */
bool	 gpu_available(const struct config *, char *why, size_t);
/* --check-config: -1 with a warning when a model needs what is missing. */
int	 gpu_check_config(const struct config *, char *why, size_t);
/* Lock + checkpoint every GPU process of the model, in parallel. */
int	 gpu_suspend(struct model *, gpu_cb, void *);
/* Restore + unlock them; maybe onto other GPUs (gpu.allow_migration). */
int	 gpu_resume(struct model *, gpu_cb, void *);
/* GPU memory the model's processes hold now, MiB (NVML). */
void	 gpu_measure(struct model *, gpu_measure_cb, void *);
void	 gpu_saved_free(struct gpu_saved *);
/* From the last telemetry: status "gpus", a model's GPUs, metrics. */
void	 gpu_status_body(struct supervisor *, struct body *);
uint64_t gpu_model_gpus(struct supervisor *, const struct model *,
	    uint64_t *bytes);
const char *gpu_telemetry_error(struct supervisor *);
char	*gpu_metrics_text(struct supervisor *);

/* ---- criu.c: checkpoint to disk ---------------------------------------- */

typedef void	(*criu_cb)(int ok, const char *reason, pid_t restored,
		    void *);
typedef void	(*criu_progress_cb)(const char *detail, void *);

bool	criu_available(const struct config *, char *why, size_t);
/* --check-config: -1 with a warning when criu is missing or too old. */
int	criu_check_config(const struct config *, char *why, size_t);
/* Dump the tree of the model's process to images_dir/NAME/images. */
int	criu_dump(struct model *, const struct eviction *, criu_cb,
	    criu_progress_cb, void *);
/* Check the images' manifest and checksums, then restore them. */
int	criu_restore(struct model *, const char *dir, criu_cb,
	    criu_progress_cb, void *);
/* images_dir/NAME/images */
char	*criu_images_dir(const struct config *, const char *model);
/* "Version: 4.1" (criu --version) to 4 and 1; -1 if none. */
int	criu_parse_version(const char *, int *major, int *minor);
/* The eviction a checkpoint directory's manifest records; -1 if none. */
int	criu_images_eviction(const char *dir, struct eviction *);

/* ---- store.c: checkpoint images in an S3-compatible object store ------- */

struct store_result {
	bool		 ok;
	bool		 skipped;	/* download: the images are here */
	const char	*reason;	/* !ok: why */
	const char	*url;		/* s3://BUCKET/MODEL/ID/ */
	uint64_t	 bytes;
	bool		 has_eviction;	/* download: the manifest's */
	struct eviction	 eviction;
};
typedef void	(*store_cb)(const struct store_result *, void *);
typedef void	(*store_progress_cb)(const char *detail, void *);

void	 store_init(struct supervisor *);
/* Cancel every transfer (at exit, before worker_shutdown); then free. */
void	 store_shutdown(struct supervisor *);
void	 store_free(struct supervisor *);
bool	 store_configured(const struct config *);
/* "s3://BUCKET/MODEL/", for messages. */
char	*store_model_url(const struct config *, const char *model);
/* --check-config: -1 with a warning when this libcurl cannot sign. */
int	 store_check_config(const struct config *, char *why, size_t);
/*
 * Copy the images in dir (a checkpoint with its manifest) to the store,
 * or fetch the model's latest checkpoint into dir unless dir exists.
 * cb runs once, from the loop, also for a cancelled job (at exit: ok
 * false, "cancelled").
 */
struct store_job *store_upload(struct model *, const char *dir, store_cb,
	    store_progress_cb, void *);
struct store_job *store_download(struct model *, const char *dir,
	    store_cb, store_progress_cb, void *);
/* Make the transfer stop soon (it still calls back). */
void	 store_cancel(struct store_job *);

/* ---- process.c: one model process -------------------------------------- */

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

typedef void	(*process_cb)(struct process *, void *);

/* Grace between SIGTERM and SIGKILL, and how long to wait after SIGKILL. */
#define PROCESS_STOP_GRACE_MS	5000
#define PROCESS_KILL_WAIT_MS	5000

struct process	*process_start(struct model *, char *err, size_t errlen);
struct process	*process_adopt(struct model *, pid_t, uint64_t start_time,
		    const char *cgroup, uint16_t port, char *err, size_t);
/* Stop the whole tree; cb runs when every member is gone. */
void		 process_stop(struct process *, int64_t grace_ms,
		    process_cb, void *);
bool		 process_stopping(const struct process *);
/* SIGKILL the tree now; its exit is reported as a death, with why. */
void		 process_kill(struct process *, const char *why);
/* Forget the process, leaving it as it is (stop it first to kill it). */
void		 process_free(struct process *);
/* The pids of the tree (leader first); returns the count. */
size_t		 process_members(const struct process *, pid_t *, size_t);
/* "exited with status 1", "killed by signal 9 (Killed)" */
void		 process_exit_reason(int code, int status, char *, size_t);
/* Wait for the log keeper to flush (or a deadline), then cb. */
void		 process_wait_log(struct process *, process_cb, void *);
void		 process_wait_log_cancel(struct process *);

/* ---- evict.c: eviction and wake sequences ------------------------------ */

enum evict_kind { EVICT_SLEEP, EVICT_WAKE, EVICT_STOP };

struct evict_plan {
	enum evict_step	steps[16];
	size_t		n;
};

enum evict_result {
	EVICT_FAILED,		/* did not happen; reason says why */
	EVICT_OK,
	EVICT_ESCALATED,	/* a step failed, the model was stopped */
};

#define EVICT_MAX_PHASES	32

/* What an operation did, for its callers and their replies. */
struct evict_report {
	enum evict_kind		 kind;
	enum evict_result	 result;
	const char		*reason;	/* FAILED, ESCALATED: why */
	const char		*log;		/* a failed start's last log lines */
	int64_t			 total_ms;
	bool			 moved;		/* restored onto other GPUs */
	uint64_t		 gpus;		/* ... these (a mask) */
	size_t			 n_phases;
	struct {
		enum evict_step	 step;
		int64_t		 ms;
		bool		 ok;
	}			 phases[EVICT_MAX_PHASES];
};

typedef void	(*evict_done_cb)(struct model *, const struct evict_report *,
		    void *);

/* A copy of an operation's report that outlives it. */
struct op_result {
	struct evict_report	 r;		/* reason and log: the copies */
	char			*reason;
	char			*log;
	int64_t			 at_ms;		/* when it ended */
};
typedef void	(*evict_progress_cb)(struct model *, const char *phase,
		    int64_t elapsed_ms, const char *detail, void *);

/* Per-call timeouts of the model's HTTP API. */
#define EVICT_SLEEP_TIMEOUT_MS		120000
#define EVICT_WAKE_TIMEOUT_MS		120000
#define EVICT_NCCL_TIMEOUT_MS		60000
#define EVICT_RESET_CACHE_TIMEOUT_MS	30000
#define EVICT_HEALTH_TIMEOUT_MS		30000

void		 evict_plan_sleep(const struct eviction *, unsigned tp,
		    struct evict_plan *);
void		 evict_plan_wake(enum model_pstate, const struct eviction *,
		    unsigned tp, bool has_images, struct evict_plan *);
/* With an object store: upload after a dump, download before a restore. */
void		 evict_plan_store(struct evict_plan *);
const char	*evict_step_name(enum evict_step);
const char	*evict_kind_name(enum evict_kind);
/*
 * Start an operation, or join the same one already running. Returns -1
 * with a reason when it cannot start (another operation is running, or
 * the model is in no state for it); the callback is not called then.
 * A stop interrupts any other operation.
 */
int		 evict_sleep(struct model *, const struct eviction *,
		    evict_done_cb, evict_progress_cb, void *, char *err,
		    size_t errlen);
int		 evict_wake(struct model *, evict_done_cb, evict_progress_cb,
		    void *, char *err, size_t errlen);
int		 evict_stop(struct model *, evict_done_cb, evict_progress_cb,
		    void *);
/* Re-check an adopted process: /health, then its recorded state. */
int		 evict_adopt(struct model *, enum model_pstate,
		    int64_t timeout_ms);
/* Is the running operation the check of an adopted process? */
bool		 evict_adopting(const struct model *);
/* A running operation's kind and current phase, for status. */
bool		 evict_busy(const struct model *, enum evict_kind *,
		    const char **phase);
/* Is the running operation in one of the model's HTTP calls? */
bool		 evict_in_http_step(const struct model *);
/* Stop delivering callbacks for one waiter (its caller is gone). */
void		 evict_forget(struct model *, void *arg);
/* Be told when the running operation ends, whatever it is (-1: none). */
int		 evict_wait(struct model *, evict_done_cb, void *);
/* The model's process exited while an operation was running. */
void		 evict_process_exited(struct model *);
/* Drop every operation at exit, without callbacks. */
void		 evict_abandon(struct model *);

/* ---- journal.c: what the supervisor owns, on disk ---------------------- */

#define JOURNAL_MAX_BYTES	(1u << 20)
#define JOURNAL_MAX_LINE	8192
#define JOURNAL_VERSION		1

struct journal_entry {
	char		*name;
	pid_t		 pid;		/* 0: no process */
	uint64_t	 start_time;
	enum model_pstate pstate;
	bool		 has_sleeping;
	struct eviction	 sleeping;
	bool		 has_override;
	struct eviction	 override;
	uint64_t	 generation;
	uint16_t	 port;
	unsigned	 tp;
	char		*busy;		/* an operation was running: its kind */
	char		*cgroup;
	char		*images;
	char		*reason;
	char		*store_url;	/* last checkpoint in the object store */
	char		*store_error;	/* its last failed transfer */
};

struct journal {
	bool			 manual;
	char			*pinned;
	char			*active;
	struct journal_entry	*v;
	size_t			 n;
};

int	journal_encode(const struct journal *, char **, size_t *);
int	journal_decode(const char *, size_t, struct journal *, char *err,
	    size_t errlen);
void	journal_free(struct journal *);
/*
 * Write atomically: a temp file, then rename. durable: fsync the file
 * before and the directory after, so the write survives a crash of the
 * machine, not only of the supervisor.
 */
int	journal_write_file(const char *dir, const struct journal *,
	    bool durable, char *err, size_t errlen);
int	journal_write_buf(const char *dir, const char *, size_t, bool durable,
	    char *err, size_t errlen);
/* 1: read; 0: no journal; -1: unreadable (err says why). */
int	journal_read_file(const char *dir, struct journal *, char *err,
	    size_t errlen);
char	*journal_path(const char *dir);

/* ---- persist.c: keeping the journal current ---------------------------- */

/* The journal of the live models. */
void	persist_snapshot(struct supervisor *, struct journal *);
/* Write soon (coalesced within one loop pass, by the writer thread). */
void	persist_schedule(struct supervisor *);
/* Write now, from the loop, durably (fsync); the writer thread ends. */
void	persist_flush(struct supervisor *);
/*
 * Run fn(arg) once the journal on disk says what the supervisor knows
 * now: at once when it does, else after the writer's next write (a
 * failed one too: nothing waits for ever). At exit, pending ones run
 * when the writer stops.
 */
void	persist_after(struct supervisor *, void (*)(void *), void *);
void	persist_free(struct supervisor *);

/* ---- adopt.c: re-adoption after a restart ------------------------------ */

void	adopt_from_journal(struct supervisor *);

/* ---- server.c: the socket, its peers and pushes ------------------------ */

struct peer_cred {
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	const gid_t	*groups;
	size_t		 ngroups;
};

struct role_policy {
	bool	privileged;	/* we run as root */
	uid_t	self_uid;
	bool	has_proxy_uid;
	uid_t	proxy_uid;
	bool	has_admin_gid;
	gid_t	admin_gid;
};

#define ROLE_BIT(r)	(1 << (r))

struct client {
	struct supervisor	*sup;
	struct proto_conn	*conn;
	struct peer_cred	 cred;
	gid_t			*groups;
	int			 roles;		/* ROLE_BIT()s allowed */
	enum proto_role		 role;		/* granted by hello */
	bool			 hello;
	bool			 subscribed;
	char			 name[96];
	struct logfollow	*follow;
	TAILQ_ENTRY(client)	 entry;
};
TAILQ_HEAD(clients, client);

int	 server_peer_roles(const struct peer_cred *, const struct role_policy *);
void	 server_update_roles(struct supervisor *);
int	 server_listen(struct supervisor *, char *err, size_t errlen);
void	 server_close(struct supervisor *);
void	 server_reply(struct client *, uint32_t id, int status,
	    const uint8_t *body, size_t len);
void	 server_progress(struct client *, uint32_t id, const char *model,
	    const char *phase, int64_t elapsed_ms, const char *detail);
void	 server_log_data(struct client *, uint32_t id, const uint8_t *,
	    size_t);
/* Push state (soon, coalesced) to the proxy and subscribers. */
void	 server_schedule_state(struct supervisor *);
/* Send now to one peer, or (NULL) to every proxy / subscriber. */
void	 server_send_state(struct supervisor *, struct client *);
void	 server_send_config(struct supervisor *, struct client *);
void	 server_send_ready(struct supervisor *, struct model *);
void	 server_send_failed(struct supervisor *, struct model *,
	    const char *reason);
void	 server_client_drop(struct client *, const char *code,
	    const char *message);
bool	 server_client_alive(struct supervisor *, struct client *);
size_t	 server_count_role(struct supervisor *, enum proto_role);

/* ---- control.c: the control calls --------------------------------------- */

/* A call waiting for an operation; it outlives its peer. */
struct ctl_call {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	enum proto_type		 type;
	char			*name;
	struct eviction		 eviction;
	int64_t			 start_ms;
	bool			 ordered;	/* waits for the switcher */
	int			 phase;		/* last switch phase told, -1 */
	char			**policies;	/* VALIDATE: its evictions */
	size_t			 n_policies;
	/* What the call's handler holds, freed at exit if still unreplied. */
	void			*state;
	void			(*state_free)(void *);
	TAILQ_ENTRY(ctl_call)	 entry;
};
TAILQ_HEAD(ctl_calls, ctl_call);

/* A reply that waits for the journal (control_reply). */
struct ctl_reply {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	int			 status;
	struct body		*body;
	TAILQ_ENTRY(ctl_reply)	 entry;
};
TAILQ_HEAD(ctl_replies, ctl_reply);

void	 control_call(struct client *, struct proto_msg *);
struct ctl_call *control_call_new(struct client *, struct proto_msg *,
	    const char *);
/* Send the final reply (if the peer is still there), free the call. */
void	 control_call_done(struct ctl_call *, int, struct body *);
/*
 * The reply to a call that may have changed what the journal records:
 * sent once the journal on disk says so, so that what an operator was
 * told survives a supervisor killed right after (persist_after).
 */
void	 control_reply(struct client *, uint32_t, int, struct body *);
/* The reply body of sleep, wake, checkpoint and restore. */
struct body *control_op_body(struct model *, const char *key,
	    const char *text, const struct evict_report *);
/* An evict_progress_cb that sends progress on the call's id. */
void	 control_progress_cb(struct model *, const char *, int64_t,
	    const char *, void *);
void	 control_client_gone(struct client *);
/* {key: text, model, process_state, elapsed_ms, escalated, reason, log,
 * phases} from an operation's report. */
struct body *control_op_body(struct model *, const char *key,
	    const char *text, const struct evict_report *);
void	 control_call_free(struct ctl_call *);

/* ---- switching.c: the switcher driving the engine ------------------------ */

/*
 * Make the switcher from the config, tell it what the engine has (models
 * re-adopted, mode and pin from the journal, the proxy), and start it.
 */
void	 switching_init(struct supervisor *);
void	 switching_free(struct supervisor *);
/* The model's index in the switcher, -1 if it has none (yet). */
int	 switching_index(struct supervisor *, const struct model *);
struct model *switching_model(struct supervisor *, int);
/* Inputs from the proxy. */
void	 switching_demand(struct model *, uint32_t queued, uint32_t in_flight,
	    uint32_t oldest_ms);
void	 switching_drained(struct supervisor *, const char *, uint32_t);
void	 switching_proxy(struct supervisor *);
/* Inputs from the engine. */
void	 switching_died(struct model *, const char *reason);
void	 switching_restart(struct model *);
/* The engine changed m outside the switcher: tell it, now or when the
 * running operation ends. */
void	 switching_resync(struct model *);
void	 switching_watch(struct model *);
/* A reload replaced sup->conf (old is still the switcher's, or freed). */
void	 switching_reload(struct supervisor *);
/* For status, the journal and the proxy. */
const char *switching_state_string(struct supervisor *, char *, size_t);
bool	 switching_manual(struct supervisor *);
const char *switching_pinned(struct supervisor *);
struct model *switching_active(struct supervisor *);
bool	 switching_admits(struct supervisor *, const struct model *);
void	 switching_result_free(struct op_result *);

/* ---- order.c: the operator's orders through the switcher ---------------- */

/* switch, pin, unpin, mode, sleep, wake, eviction set; validate's wake. */
void	 order_call(struct client *, struct proto_msg *, struct model *);
/* What the switcher says, for the calls waiting on it. */
void	 order_ready(struct supervisor *, struct model *);
void	 order_failed(struct supervisor *, struct model *, const char *);
void	 order_record(struct supervisor *, const struct switch_record *);
void	 order_check(struct supervisor *);
void	 order_progress(struct model *, const char *, int64_t,
	    const char *, void *);
/* The switcher was rebuilt: order again what waits. */
void	 order_rebuilt(struct supervisor *);

/* ---- checkpoint.c: the checkpoint call --------------------------------- */

/* Start M if need be, warm it up, then sleep it with W+checkpoint. */
void	 checkpoint_call(struct ctl_call *, struct model *,
	    const struct proto_msg *);

/* ---- validate.c: the validate call -------------------------------------- */

#define VALIDATE_REQUEST_TIMEOUT_MS	60000
#define VALIDATE_MAX_POLICIES		16

void	 validate_call(struct ctl_call *, struct model *,
	    const struct proto_strlist *);
/* The "text" of the first choice of a completion, or NULL. */
char	*validate_text(const char *, size_t);
/* A deterministic completion request for the model (temperature 0). */
char	*validate_request_body(const struct model *, int max_tokens);

/* ---- logfollow.c: the logs call ----------------------------------------- */

struct logfollow;
void	 logfollow_call(struct client *, uint32_t id, struct model *,
	    uint32_t lines, bool follow);
void	 logfollow_free(struct logfollow *);
void	 logfollow_model_gone(struct supervisor *, struct model *);

/* ---- body.c: building reply bodies (msgpack maps) ----------------------- */

struct body;
struct body	*body_new(void);
void		 body_free(struct body *);
const uint8_t	*body_data(const struct body *, size_t *);
void		 body_map(struct body *, size_t);
void		 body_array(struct body *, size_t);
void		 body_str(struct body *, const char *);
void		 body_uint(struct body *, uint64_t);
void		 body_int(struct body *, int64_t);
void		 body_double(struct body *, double);
void		 body_bool(struct body *, bool);
void		 body_nil(struct body *);
void		 body_kstr(struct body *, const char *, const char *);
void		 body_kuint(struct body *, const char *, uint64_t);
void		 body_kbool(struct body *, const char *, bool);
void		 body_eviction(struct body *, const struct eviction *);
/* A one-key map {key: printf(...)}. */
struct body	*body_message(const char *key, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/* Text from a model made valid UTF-8 and short enough for a message. */
void		 body_text_clean(char *);
char		*body_text_dup(const char *);
/* The seed's Rust Debug form: "EvictionPolicy { weights: Offload, ... }" */
const char	*body_eviction_debug(const struct eviction *, char *, size_t);

/* ---- metrics.c ----------------------------------------------------------- */

char	*metrics_text(struct supervisor *);
/* A finished switch, for the llmux_switch_* metrics. */
void	 metrics_switch_record(struct supervisor *, const char *from,
	    const char *to, const struct switch_record *);
void	 metrics_free(struct supervisor *);

/* ---- reload.c ------------------------------------------------------------ */

struct reload_result {
	bool	  ok;
	char	**errors;		/* "FILE:LINE:COL: message" */
	size_t	  n_errors;
	char	**added, **removed, **changed;
	size_t	  n_added, n_removed, n_changed;
};

void	reload_run(struct supervisor *, struct reload_result *);
void	reload_result_free(struct reload_result *);
/* Does a change of this model's config need a new process? */
bool	reload_model_changed(const struct config *, const struct model_config *,
	    const struct config *, const struct model_config *);

/* ---- the supervisor ------------------------------------------------------ */

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

	/* The switcher (switching.c). */
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
	struct switch_stats	*switch_stats;	/* metrics.c */

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

	struct event		*ev_journal;
	struct persist		*persist;	/* the writer thread */
	bool			 journal_dirty;
	uint64_t		 journal_writes;
	uint64_t		 journal_failures;

	struct event		*ev_sigs[5];
	struct event		*ev_watchdog;
	struct event		*ev_logcheck;
	struct event		*ev_liveness;	/* liveness.c */
	bool			 exiting;
	uint64_t		 reloads;

	int			 worker_fds[2];
	struct event		*ev_worker;
	TAILQ_HEAD(, store_job)	 store_jobs;	/* transfers running */
	struct gpu_state	*gpu;
	uint64_t		 reload_failures;
	int64_t			 started_ms;
};

#endif
