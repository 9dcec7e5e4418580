/*
 * base.h -- supervisord/base/, the level every other level stands on
 * (but the pure switcher): reply bodies, reading /proc, blocking work on
 * worker threads, HTTP calls to a model and its readiness. Nothing here
 * knows a model's state machine: these files call only each other, libevent
 * and common/.
 */
#ifndef LLMUX_BASE_H
#define LLMUX_BASE_H

#include "supervisord/core.h"

struct body;

/* ---- body.c: building reply bodies (msgpack maps) ---------------------- */

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
/* llmux 0.7's Rust Debug form: "EvictionPolicy { weights: Offload, ... }" */
const char	*body_eviction_debug(const struct eviction *, char *, size_t);

/* ---- model_path.c: where a model's files go ---------------------------- */

/* A model's name made safe as one path component ("a%2Fb"). */
char	*model_path_name(const char *);
/* images_dir, else state_dir/checkpoints (a new string). */
char	*model_path_images_dir(const struct config *);
/* images_dir/NAME/images */
char	*model_path_images(const struct config *, const char *model);
/*
 * Where an images directory is, to open it safely (fs.c): its parent is
 * fs_open_dir(top, below), then name below that. llmux's own
 * (images_dir/NAME/images): top images_dir, below NAME, name "images";
 * any other (a checkpoint_path): top its parent, below NULL.
 */
struct images_loc {
	char	*top;
	char	*below;		/* NULL: none */
	char	*name;
	char	*parent;	/* top[/below], for messages */
	char	*path;		/* parent/name */
};
void	 model_path_locate(const struct config *, const char *dir,
	    struct images_loc *);
void	 model_path_loc_free(struct images_loc *);

/* ---- fs.c: directories opened safely, and file chores ------------------ */

/*
 * Open the directory top (absolute), then each component of below
 * (relative; NULL for none): every component walked from "/" with
 * O_NOFOLLOW, a directory owned by root or by us, not writable by group
 * or others (on the way to top, a sticky one may be). Missing ones are
 * created when create (0700). -1 with err naming the path and why.
 */
int	 fs_open_dir(const char *top, const char *below, bool create,
	    char *err, size_t errlen);
/* One directory name below dirfd (path: dirfd's, for messages), checked. */
int	 fs_open_sub(int dirfd, const char *path, const char *name,
	    bool create, char *err, size_t errlen);
/* A regular file below dirfd owned by root or us, read-only, no link. */
int	 fs_open_file(int dirfd, const char *path, const char *name,
	    char *err, size_t errlen);
/* An images directory's parent (created when create); the directory. */
int	 fs_open_loc_parent(const struct images_loc *, bool create,
	    char *err, size_t errlen);
int	 fs_open_loc(const struct images_loc *, char *err, size_t errlen);
/* rm -rf of name below dirfd, never following a link. */
void	 fs_rmtree_at(int dirfd, const char *name);
/* So that a rename in the directory survives a crash of the machine. */
void	 fs_fsync_fd(int);

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
/* The inodes of LISTEN sockets on TCP port in a /proc/net/tcp{,6} text. */
size_t	procfs_listen_inodes(const char *, size_t, uint16_t port,
	    uint64_t *out, size_t max);
/* The processes holding a socket that listens on TCP port (any address). */
size_t	procfs_port_holders(uint16_t port, pid_t *out, size_t max,
	    bool *listening);
/* Read fd until its end or max bytes (EINTR retried): the bytes read. */
size_t	 procfs_read_fd(int fd, char *buf, size_t max);
/* Read a whole small file (at most max bytes) into a new buffer. */
char	*procfs_read_file(const char *, size_t max, size_t *len);
/* "exited with status 1", "killed by signal 9 (Killed)" */
void	 procfs_exit_reason(int code, int status, char *, size_t);

/* ---- worker.c: blocking work on threads -------------------------------- */

typedef void	(*worker_fn)(void *);
/* Back on the loop; cancelled at exit: free, call nobody back. */
typedef void	(*worker_done_fn)(void *, bool cancelled);

void	worker_init(struct supervisor *);
void	worker_run(struct supervisor *, worker_fn, worker_done_fn, void *);
void	worker_shutdown(struct supervisor *);
int	worker_count(void);

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

/* ---- infer.c: a warm-up inference, completions or else embeddings ---- */

#define INFER_COMPLETE_ROUTE	"/v1/completions"
#define INFER_EMBED_ROUTE	"/v1/embeddings"

struct infer_call;
/*
 * POST prompt to /v1/completions (max_tokens, temperature 0, seed 0);
 * answered 404 or 400 (a pooling model serves no completions), POST it to
 * /v1/embeddings instead. cb gets the last answer; timeout_ms covers both.
 */
struct infer_call *infer_request(struct event_base *, uint16_t port,
		    const char *model, const char *prompt, int max_tokens,
		    int64_t timeout_ms, httpc_cb, void *);
/* Forget it: its callback will not run. */
void		 infer_cancel(struct infer_call *);

/* ---- health.c: readiness ----------------------------------------------- */

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

#endif
