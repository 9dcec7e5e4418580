/*
 * fakevllm.h -- llmux-fakevllm, a stand-in for a vLLM OpenAI server.
 *
 * The program has two halves, as vLLM has: the API server (server.c,
 * openai.c, dev.c) speaks HTTP, and the engine (engine.c, weights.c) owns
 * the "weights", the sleep state and the pacing of generated tokens. The
 * halves talk in fv_msg messages through channel.c, either by direct calls
 * in one process or over a socketpair to a forked "EngineCore" child
 * (--fake-engine-process). Every public function is named after its file
 * with an fv_ prefix, since every program's library is linked into the
 * unit tests together.
 */
#ifndef LLMUX_FAKEVLLM_H
#define LLMUX_FAKEVLLM_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct event_base;

/* ---- faults.c: injected failures -------------------------------------- */

enum fv_fault {
	FV_FAULT_FAIL_SLEEP,	/* the next sleep answers 500 */
	FV_FAULT_FAIL_WAKE,	/* the next wake_up answers 500 */
	FV_FAULT_HANG_SLEEP,	/* the next sleep never finishes */
	FV_FAULT_HANG_WAKE,	/* the next wake_up never finishes */
	FV_FAULT_FAIL_RELOAD,	/* the next reload_weights answers 500 */
	FV_FAULT_CRASH_STREAM,	/* the engine dies after ARG tokens of a stream */
	FV_FAULT_STALL_STREAM,	/* a stream stops after ARG tokens, forever */
	FV_FAULT_HEALTH_500,	/* /health answers 500 */
	FV_FAULT_EXIT_STARTUP,	/* exit with code ARG half way through startup */
	FV_FAULT_MAX
};

/* count: 0 off, N > 0 the next N occurrences, -1 every occurrence. */
struct fv_faults {
	int32_t	count[FV_FAULT_MAX];
	int32_t	arg[FV_FAULT_MAX];
};

const char	*fv_faults_name(int);
int		 fv_faults_lookup(const char *);
int		 fv_faults_default_arg(int);
void		 fv_faults_set(struct fv_faults *, int, int32_t, int32_t);
int		 fv_faults_parse_spec(struct fv_faults *, const char *, char **);
int		 fv_faults_take(struct fv_faults *, int, int32_t *);
void		 fv_faults_json(struct evbuffer *, const struct fv_faults *);

/* ---- fakegpu.c: the fake-GPU hook (tests of llmux's GPU module) ----- */

/* The sleep state a fake CRIU image carries (--fake-restore-state). */
struct fv_gpustate {
	int	level;
	int	tags;
	int	discarded;
	int	nccl;
	int	paused;
};

struct fv_opts;
struct fv_state;

int		 fv_fakegpu_parse_state(const char *, struct fv_gpustate *);
/* Register this engine's ranks and their memory; -1 if the GPU is full. */
int		 fv_fakegpu_start(struct fv_opts *);
/* Why the GPU state forbids generating (locked, checkpointed), or NULL. */
const char	*fv_fakegpu_blocked(void);
/* Record the engine's sleep state for a fake CRIU dump. */
void		 fv_fakegpu_note(const struct fv_state *);

/* ---- pattern.c: the known bytes of device memory -------------------- */

uint64_t fv_pattern_tag(uint64_t, uint32_t, uint64_t);
uint64_t fv_pattern_word(uint64_t, uint32_t, uint64_t);
void	 fv_pattern_base(void *, size_t, uint64_t);
void	 fv_pattern_stamp(void *, size_t, uint64_t, uint32_t, uint64_t);
int64_t	 fv_pattern_find(const void *, size_t, uint64_t, uint32_t, uint64_t);

/* ---- cudagpu.c: --fake-gpu cuda, real device memory ----------------- */

enum fv_gpu_mode { FV_GPU_NONE, FV_GPU_CUDA };

int		 fv_cudagpu_enabled(void);
/* Claim the device memory and write the weights; -1 with the cause. */
int		 fv_cudagpu_start(struct fv_opts *, char **);
/* Check a sample of the weights: NULL when intact, else why not. */
const char	*fv_cudagpu_check(void);
/* The failure of the last check, or NULL. */
const char	*fv_cudagpu_error(void);
int		 fv_cudagpu_sleep(int, char **);
int		 fv_cudagpu_wake(int, char **);
int		 fv_cudagpu_reload(char **);
void		 fv_cudagpu_state(struct fv_state *);

/* ---- args.c: the command line --------------------------------------- */

enum fv_asleep { FV_ASLEEP_QUEUE, FV_ASLEEP_FAIL };
enum fv_task { FV_TASK_GENERATE, FV_TASK_EMBED };

struct fv_opts {
	char		*model;		/* MODEL, the positional after serve */
	char		**names;	/* --served-model-name, default MODEL */
	int		 nnames;
	char		*host;		/* --host, default 127.0.0.1 */
	int		 port;		/* --port, default 8000 */
	int		 sleep_mode;	/* --enable-sleep-mode */
	int		 tp;		/* --tensor-parallel-size */
	int		 max_model_len;	/* --max-model-len */
	int		 max_num_seqs;	/* --max-num-seqs */
	char		*api_key;	/* --api-key (or VLLM_API_KEY) */
	int		 access_log;	/* off with --disable-uvicorn-access-log */
	int		 log_requests;	/* --enable-log-requests */
	int		 task;		/* --task: FV_TASK_* */

	int		 admin;		/* --fake-admin */
	int		 engine_process; /* --fake-engine-process */
	int		 asleep;	/* --fake-requests-while-asleep */
	int64_t		 startup_ms;
	int64_t		 sleep1_ms;
	int64_t		 sleep2_ms;
	int64_t		 wake_ms;
	int64_t		 reload_ms;
	int64_t		 token_ms;
	int64_t		 weights_mb;
	struct fv_faults faults;
	char		*gpu_dir;	/* --fake-gpu-dir: fake GPU state */
	int64_t		 gpu_mb;	/* --fake-gpu-mb: per rank */
	int		 gpu_mode;	/* --fake-gpu: FV_GPU_* */
	double		 gpu_util;	/* --gpu-memory-utilization */
	int64_t		 kv_mb;		/* --fake-kv-mb, -1: the rest */
	int		 has_restore;	/* --fake-restore-state */
	struct fv_gpustate restore;

	char		**ignored;	/* vLLM flags accepted and ignored */
	int		 nignored;
};

#define FV_DEFAULT_PORT		8000
#define FV_DEFAULT_MAX_MODEL_LEN 8192
#define FV_DEFAULT_MAX_NUM_SEQS	256
#define FV_DEFAULT_GPU_UTIL	0.9	/* vLLM's --gpu-memory-utilization */

void	 fv_args_defaults(struct fv_opts *);
int	 fv_args_parse(struct fv_opts *, int, char **, char **);
void	 fv_args_free(struct fv_opts *);
void	 fv_args_usage(void);

/* ---- generate.c: deterministic text --------------------------------- */

#define FV_HASH_INIT	0xcbf29ce484222325ULL
#define FV_TOKEN_MAX	16	/* longest token text, NUL included */

uint64_t fv_generate_hash(uint64_t, const void *, size_t);
uint64_t fv_generate_mix(uint64_t);
size_t	 fv_generate_token(uint64_t, uint32_t, char *, size_t);
uint32_t fv_generate_count(const char *, size_t);
uint32_t fv_generate_natural(uint64_t);

/* ---- request.c: OpenAI request bodies ------------------------------- */

enum fv_kind { FV_CHAT, FV_COMPLETION, FV_EMBED };

#define FV_EMBED_MAX_INPUTS	2048	/* inputs of one embeddings request */
#define FV_EMBED_DIM		32	/* the stand-in's vectors */

struct fv_genreq {
	int		 kind;
	char		*model;		/* NULL when absent */
	uint64_t	 prompt_hash;
	uint32_t	 prompt_tokens;
	/* FV_EMBED: each input's hash and tokens, the output's form. */
	uint64_t	*input_hash;
	uint32_t	*input_tokens;
	size_t		 n_inputs;
	int		 base64;	/* encoding_format: "base64" */
	int64_t		 dimensions;	/* -1 when absent */
	int64_t		 max_tokens;	/* -1 when absent */
	int		 stream;
	int		 include_usage;
	int		 continuous_usage;
	int		 has_seed;
	int64_t		 seed;
	int		 has_temperature;
	double		 temperature;
};

#define FV_BODY_MAX	(32 * 1024 * 1024)
#define FV_JSON_DEPTH	64

int	fv_request_parse(struct fv_genreq *, int, const char *, size_t,
	    char *, size_t, const char **);
void	fv_request_free(struct fv_genreq *);

/* ---- json.c: JSON output helpers ------------------------------------ */

void	fv_json_string(struct evbuffer *, const char *, size_t);
void	fv_json_cstring(struct evbuffer *, const char *);
int	fv_json_depth_ok(const char *, size_t, int);

/* ---- idmap.c: requests by id ---------------------------------------- */

struct fv_idnode {
	uint64_t			id;
	LIST_ENTRY(fv_idnode)		entry;
};
LIST_HEAD(fv_idlist, fv_idnode);

#define FV_IDMAP_BUCKETS	1024
struct fv_idmap {
	struct fv_idlist	b[FV_IDMAP_BUCKETS];
	size_t			n;
};

void		 fv_idmap_init(struct fv_idmap *);
void		 fv_idmap_add(struct fv_idmap *, struct fv_idnode *, uint64_t);
struct fv_idnode *fv_idmap_find(struct fv_idmap *, uint64_t);
void		 fv_idmap_remove(struct fv_idmap *, struct fv_idnode *);
struct fv_idnode *fv_idmap_any(struct fv_idmap *);

/* ---- messages between the API server and the engine ----------------- */

enum fv_msg_type {
	/* API server -> engine */
	FV_MSG_ADD = 1,		/* id, seed, a: tokens, b: FV_ADD_* flags */
	FV_MSG_ABORT,		/* id */
	FV_MSG_CALL,		/* id: cookie, op: FV_CALL_*, a, b */
	FV_MSG_FAULT,		/* op: fault, a: count, b: arg */
	/* engine -> API server */
	FV_MSG_READY = 16,	/* startup finished */
	FV_MSG_TOKEN,		/* id, a: index, op: FV_FINISH_* if last, data */
	FV_MSG_DONE,		/* id, op: FV_FINISH_*, a: tokens so far */
	FV_MSG_GENERR,		/* id, a: HTTP status, data: message */
	FV_MSG_REPLY,		/* id: cookie, a: HTTP status, b: value, data */
	FV_MSG_STATE		/* data: struct fv_state */
};

#define FV_ADD_STREAM	0x1	/* a streamed request (stream faults apply) */
#define FV_ADD_STOP	0x2	/* ends as "stop" (EOS), not "length" */

enum fv_finish { FV_FINISH_NONE, FV_FINISH_LENGTH, FV_FINISH_STOP,
	FV_FINISH_ABORT };

enum fv_call {
	FV_CALL_SLEEP = 1,	/* a: level, b: FV_MODE_* */
	FV_CALL_WAKE,		/* a: FV_TAG_* mask */
	FV_CALL_IS_SLEEPING,
	FV_CALL_RELOAD,
	FV_CALL_SUSPEND_NCCL,
	FV_CALL_RESUME_NCCL,
	FV_CALL_RESET_PREFIX	/* a: reset running requests too */
};

enum fv_mode { FV_MODE_ABORT, FV_MODE_WAIT, FV_MODE_KEEP };

#define FV_TAG_WEIGHTS	0x1
#define FV_TAG_KV	0x2
#define FV_TAG_SCHED	0x4
#define FV_TAG_ALL	0x8	/* no tags given: wake everything */

struct fv_msg {
	uint32_t	len;		/* bytes of data after the header */
	uint16_t	type;
	uint16_t	op;
	uint64_t	id;
	uint64_t	seed;
	int64_t		a;
	int64_t		b;
};
#define FV_MSG_DATA_MAX	(64 * 1024)

/* The engine's state, sent whole to the API server after each change. */
struct fv_state {
	int32_t		ready;
	int32_t		paused;		/* scheduler paused (sleep of any level) */
	int32_t		tags;		/* FV_TAG_WEIGHTS|FV_TAG_KV asleep */
	int32_t		level;		/* level of the sleep in effect */
	int32_t		discarded;	/* weights content lost (level 2) */
	int32_t		mapped;		/* weights memory mapped */
	int32_t		nccl_suspended;
	int32_t		busy;		/* a command is running or hung */
	int32_t		running;
	int32_t		waiting;
	int32_t		frozen;		/* held by a sleep with mode=keep */
	int32_t		stalled;	/* stopped by the stall_stream fault */
	int32_t		pid;
	int32_t		queued;		/* messages waiting behind a command */
	int64_t		weights_bytes;
	int64_t		sleeps;
	int64_t		wakes;
	int64_t		reloads;
	int64_t		prefix_resets;
	int64_t		finished;
	int64_t		aborted;
	int64_t		tokens;
	struct fv_faults faults;
	/* --fake-gpu cuda (cudagpu.c) */
	int32_t		gpu_mode;
	int64_t		gpu_total;	/* the device's memory */
	int64_t		gpu_claim;	/* gpu_memory_utilization of it */
	int64_t		gpu_weights;
	int64_t		gpu_kv;
	int64_t		gpu_device;	/* bytes allocated on the device now */
	int64_t		gpu_host;	/* weights offloaded to host memory */
	int64_t		gpu_checks;	/* pattern checks, and failed ones */
	int64_t		gpu_failures;
	int64_t		gpu_sleep_ms;	/* the last sleep, wake, reload */
	int64_t		gpu_wake_ms;
	int64_t		gpu_reload_ms;
	int64_t		gpu_check_us;
	char		gpu_name[128];
	char		gpu_error[256];
};

/* ---- channel.c: how the halves talk ------------------------------- */

void	fv_channel_inproc(void);
pid_t	fv_channel_fork(struct fv_opts *, int);
void	fv_channel_parent_start(struct event_base *);
void	fv_channel_to_engine(const struct fv_msg *, const void *);
void	fv_channel_to_api(const struct fv_msg *, const void *);
void	fv_channel_flush(void);
pid_t	fv_channel_child(void);
__attribute__((noreturn)) void fv_channel_crash(const char *);

/* ---- engine.c: the engine core -------------------------------------- */

#define FV_ENGINE_QUEUE_MAX	100000

void	fv_engine_init(struct event_base *, struct fv_opts *);
void	fv_engine_start(void);
void	fv_engine_dispatch(const struct fv_msg *, const char *);
/*
 * Why an engine in state s cannot run a model (asleep, weights discarded,
 * NCCL suspended), or NULL; the API side asks it too (embeddings).
 */
const char *fv_engine_unloaded(const struct fv_state *);

/* ---- weights.c: memory that stands for GPU weights ------------------ */

int	fv_weights_map(size_t);
void	fv_weights_unmap(void);
int	fv_weights_touch_step(void);
void	fv_weights_touch_reset(void);
size_t	fv_weights_bytes(void);
int	fv_weights_mapped(void);
long	fv_weights_rss_kb(pid_t);

/* ---- server.c: the HTTP side ---------------------------------------- */

struct evhtp_request;

struct fv_server {
	struct event_base	*base;
	struct evhtp		*htp;
	struct fv_opts		*opts;
	int			 dev_mode;	/* VLLM_SERVER_DEV_MODE=1 */
	int			 admin;		/* /fake/ routes */
	int			 fd;		/* bound, listening after startup */
	int			 listening;
	pid_t			 engine_pid;
	struct fv_state		 engine;	/* last state from the engine */
	struct fv_faults	 faults;	/* faults the API side applies */
	uint64_t		 next_id;
	uint64_t		 rand;		/* for response ids */
	uint64_t		 model_hash;	/* mixed into every seed */
	int64_t			 started_at;	/* wall seconds, for "created" */
	struct fv_idmap		 gens;
	struct fv_idmap		 calls;
	uint64_t		 served;
	uint64_t		 failed;
	uint64_t		 http_requests;
	size_t			 peak;		/* most generations at once */
};
extern struct fv_server fv_server;

int	 fv_server_bind(struct fv_opts *, char **);
void	 fv_server_init(struct event_base *, struct fv_opts *, int, int);
void	 fv_server_listen(void);
void	 fv_server_dispatch(const struct fv_msg *, const char *);
void	 fv_server_engine_died(const char *);
void	 fv_server_flush_all(void);
uint64_t fv_server_random(void);
void	 fv_server_access(struct evhtp_request *, int64_t, int);
void	 fv_server_reply(struct evhtp_request *, int64_t, int, const char *,
	    struct evbuffer *);
void	 fv_server_error(struct evhtp_request *, int64_t, int, const char *,
	    const char *, const char *, ...)
	    __attribute__((format(printf, 6, 7)));
int	 fv_server_query(struct evhtp_request *, const char *, int,
	    char *, size_t);
char	*fv_server_body(struct evhtp_request *, size_t *);
void	 fv_server_watch(struct evhtp_request *, void (*)(void *), void *);
void	 fv_server_unwatch(struct evhtp_request *);
int	 fv_server_served(const char *);
void	 fv_server_flush_request(struct evhtp_request *);

/* ---- openai.c: completions on the API side -------------------------- */

/*
 * The body of a request of this kind, parsed, for a model this server
 * serves; -1 once it is answered with a 400 or a 404.
 */
int	fv_openai_request(struct evhtp_request *, int64_t, int,
	    struct fv_genreq *);
void	fv_openai_handle(struct evhtp_request *, int64_t, int);
void	fv_openai_dispatch(const struct fv_msg *, const char *);
void	fv_openai_fail_all(const char *);
void	fv_openai_flush_all(void);

/* ---- embed.c: POST /v1/embeddings (--task embed) ---------------------- */

void	fv_embed_handle(struct evhtp_request *, int64_t);
/* The vector of an input: FV_EMBED_DIM floats, of length 1. */
void	fv_embed_vector(uint64_t, float *);
/* Base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes). */
void	fv_embed_base64(const unsigned char *, size_t, char *);

/* ---- dev.c: vLLM's dev-mode routes and our /fake/ routes ------------ */

int	fv_dev_handle(struct evhtp_request *, int64_t, const char *, int);
void	fv_dev_reply(const struct fv_msg *, const char *);
void	fv_dev_state_json(struct evbuffer *);
void	fv_dev_fail_all(const char *);

/* ---- visible.c: the GPUs it was given (CUDA_VISIBLE_DEVICES) -------- */

void	fv_visible_json(struct evbuffer *);

#endif
