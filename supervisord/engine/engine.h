/*
 * engine.h -- supervisord/engine/, the map of what runs the models: a
 * model's state (model.c), its process (process.c, spawn.c, cgroup.c,
 * modellog.c), every eviction and wake as an asynchronous sequence of
 * steps (evict.c, evict_step.c, evict_plan.c; evict_int.h) and the health
 * checks of running models (liveness.c). The engine calls down into
 * criu/, store/, gpu/ and base/; nothing here blocks the event loop on a
 * model: every operation completes through a callback.
 */
#ifndef LLMUX_ENGINE_H
#define LLMUX_ENGINE_H

#include "supervisord/core.h"

struct store_job;

/* ---- model.c: a configured model and its state ------------------------- */

/* Crash restarts: delay doubles from BASE up to MAX; LIMIT short runs in a
 * row (each under STABLE_MS) is a crash loop, and restarting stops. */
#define MODEL_RESTART_BASE_MS	500
#define MODEL_RESTART_MAX_MS	30000
#define MODEL_CRASH_LOOP_LIMIT	5
#define MODEL_STABLE_MS		60000

/*
 * What the engine tells the levels above about a model, through the table
 * that supervisor.c sets in sup->engine_hooks (each may be NULL, as may
 * the table: then nobody is told).
 */
struct engine_hooks {
	/* Something about m changed: push state, write the journal. */
	void	(*changed)(struct model *);
	/*
	 * Its process died unasked (the switcher: it holds nothing now);
	 * m->restart_delay_ms says when it is restarted (-1: it is not).
	 */
	void	(*died)(struct model *, const char *reason);
	/* Its crash restart is due (the switcher makes room and starts it). */
	void	(*restart)(struct model *);
	/* It is being freed: drop what the levels above keep on it. */
	void	(*gone)(struct model *);
};

struct model	*model_new(struct supervisor *, struct model_config *);
struct model	*model_new_unconfigured(struct supervisor *, const char *);
void		 model_free(struct model *);
void		 model_free_later(struct model *);
struct model	*model_find(struct supervisor *, const char *);
/* The eviction a sleep uses when none is given: override, config, policy. */
struct eviction	 model_eviction(const struct model *);
/* llmux 0.7's process_state string ("sleeping:Offload+KeepRunning"). */
char		*model_process_state(const struct model *);
const char	*model_pstate_name(enum model_pstate);
int		 model_pstate_parse(const char *, enum model_pstate *);
/* The state published to the proxy (ready, waking, evicting, ...). */
enum proto_model_state model_published_state(const struct model *);
/* Something about m changed: the engine_hooks' changed. */
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
bool	  spawn_names_option(char *const *, const char *opt);
bool	  spawn_names_served_model(char *const *);
/* The first name the model is served as (its name, or extra_args'). */
const char *spawn_served_name(const struct model_config *);
/* fork, set the child up and exec; -1 with the reason in err. */
pid_t	  spawn_exec(const struct spawn_spec *, char *err, size_t errlen);
void	  spawn_strv_free(char **);
size_t	  spawn_strv_len(char *const *);

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

/* ---- process.c: one model process -------------------------------------- */

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
/*
 * Adopt a process found serving the model's port that no journal names
 * (persist/adopt.c): /health, then GET /is_sleeping says its state:
 * awake, it runs; asleep, it sleeps with the model's eviction when that
 * keeps the process and offloads or discards the weights; otherwise its
 * state cannot be known, and it is stopped (the model fails with why).
 */
int		 evict_adopt_found(struct model *, int64_t timeout_ms);
/* vLLM's /is_sleeping body: 1 asleep, 0 awake, -1 not an answer. */
int		 evict_parse_is_sleeping(const char *);
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

/* ---- liveness.c: health checks of running models ----------------------- */

/* Failed checks in a row that make a model hung; the longest check. */
#define LIVENESS_FAILURES	3
#define LIVENESS_MAX_WAIT_MS	30000

void		 liveness_init(struct supervisor *);
void		 liveness_free(struct supervisor *);
void		 liveness_forget(struct model *);
/*
 * The proxy could not reach m: check it now, not at the next tick. A
 * model that fails this one check is killed at once (the proxy's failure
 * was the first); one that answers is handed to answered (the proxy may
 * dispatch to it again). -1 when m is not one to check now (not running,
 * or an operation has it): what changes it tells the proxy anyway.
 */
int		 liveness_unreachable(struct model *,
		    void (*answered)(struct model *));

#endif
