/*
 * config.h -- llmux configuration: the plain C structs every program uses,
 * and the loader for /etc/llmux/llmux.yaml (YAML, or llmux 0.7's JSON).
 *
 * Only the supervisor reads the file. The proxy receives what it needs over
 * the socket (proto/), never the file itself.
 *
 * Every key, its type, bounds and default are declared once, in the key
 * table of config.c; docs/configuration.md documents the same table.
 */
#ifndef LLMUX_CONFIG_H
#define LLMUX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eviction.h"

#define CONFIG_MAX_MODELS	64
#define CONFIG_MAX_GPUS		64
#define CONFIG_NAME_MAX		128	/* model names and aliases */

enum policy_type {
	POLICY_FIFO,
	POLICY_COST_AWARE,
	POLICY_TIME_SLICE,
	POLICY_BATCH_AWARE,	/* llmux's own; see docs/policies.md */
	POLICY__COUNT
};

/* Where a key or section was written, for FILE:LINE:COL messages. */
struct config_pos {
	unsigned	line;
	unsigned	col;
};

struct model_config {
	char		 *name;
	char		 *model_path;		/* required */
	uint16_t	  port;			/* required, unique */
	char		**extra_args;		/* NULL-terminated */
	size_t		  n_extra_args;
	struct eviction	  eviction;		/* policy.eviction if unset */
	bool		  eviction_set;
	char		 *checkpoint_path;	/* NULL: none */

	/* llmux additions. */
	char		**aliases;		/* other names clients may use */
	size_t		  n_aliases;
	char		**env;			/* "KEY=VALUE", NULL-terminated */
	size_t		  n_env;
	int		 *gpus;			/* GPU indexes; NULL = all */
	size_t		  n_gpus;
	double		  gpu_memory_utilization; /* key, else extra_args, else 0.9 */
	unsigned	  tensor_parallel_size;	/* from extra_args, default 1 */
	uint32_t	  ttl_secs;		/* evict when idle this long; 0 off */
	bool		  preload;		/* wake at supervisor start */
	uint32_t	  startup_timeout_secs;	/* 0: the top-level value */
	uint32_t	  max_concurrency;	/* requests at once; 0: no limit */

	struct config_pos pos;			/* of the model's key */
};

struct object_store_config {
	bool	 set;
	char	*endpoint;
	char	*bucket;
	char	*access_key;
	char	*secret_key;
	char	*region;			/* "us-east-1" */
	uint32_t timeout_secs;			/* 60: a request that stalls */
	uint32_t retries;			/* 4: of a failed request */
	uint32_t part_size_mb;			/* 64: of a multipart upload */
	uint32_t multipart_threshold_mb;	/* 5120: multipart above this */
};

struct checkpoint_config {
	bool	 set;				/* the section is present */
	char	*criu_path;			/* "criu" */
	char	*cuda_plugin_dir;		/* "/usr/lib/criu/" */
	char	*images_dir;			/* NULL: state_dir/checkpoints */
	char	*cuda_checkpoint_path;		/* "cuda-checkpoint" (seed; unused) */
	bool	 keep_images;			/* true */
	struct object_store_config object_store;
};

struct policy_config {
	enum policy_type type;			/* "fifo" */
	uint32_t	 request_timeout_secs;	/* 300 */
	bool		 drain_before_switch;	/* true */
	struct eviction	 eviction;		/* retain+stop */
	uint32_t	 min_active_secs;	/* 5 */
	uint32_t	 coalesce_window_ms;	/* 2000 */
	double		 amortization_factor;	/* 0.5 */
	uint32_t	 max_wait_secs;		/* 15 */
	uint32_t	 tick_interval_ms;	/* 500 */
	uint32_t	 min_quantum_ms;	/* 2000 (unused, as in llmux 0.7) */
	uint32_t	 drain_timeout_secs;	/* 300 */
};

/* Limits of llmux-proxyd, pushed to it by the supervisor. */
struct proxy_config {
	char		*listen_address;	/* "0.0.0.0"; port is top-level */
	char		*admin_address;		/* "127.0.0.1" */
	uint32_t	 max_queue_per_model;	/* 16384 */
	uint64_t	 max_body_bytes;	/* 32 MiB */
	uint32_t	 max_header_bytes;	/* 64 KiB */
	uint32_t	 max_connections;	/* 4096 */
	uint32_t	 max_connections_per_ip; /* 1024 */
	uint32_t	 max_buffered_body_mb;	/* 128 */
	uint32_t	 header_timeout_ms;	/* 10000 */
	uint32_t	 body_timeout_ms;	/* 30000 */
	uint32_t	 keepalive_timeout_secs; /* 75 */
	uint32_t	 upstream_timeout_secs;	/* 600; 0: none */
	char		*ui_dir;		/* "/usr/share/llmux/ui" */
	char		*javascript_dir;	/* "/usr/share/javascript" */
	char	       **api_keys;		/* NULL-terminated; none = open */
	size_t		 n_api_keys;
	char		*admin_token;		/* inline, else admin_token_file's */
	bool		 allow_unauthenticated;	/* public port, no api_keys */
};

/* GPU access: CUDA driver API and NVML, loaded with dlopen. */
struct gpu_config {
	char		*cuda_library;		/* "libcuda.so.1" */
	char		*nvml_library;		/* "libnvidia-ml.so.1" */
	uint32_t	 lock_timeout_ms;	/* 10000 */
	bool		 allow_migration;	/* false */
};

struct config {
	char			*path;		/* the file it came from */

	struct model_config	*models;	/* in file order */
	size_t			 n_models;
	struct policy_config	 policy;
	struct checkpoint_config checkpoint;
	struct proxy_config	 proxy;
	struct gpu_config	 gpu;

	uint16_t	 port;			/* 3000 */
	uint16_t	 metrics_port;		/* 3002; 0 disables */
	uint16_t	 admin_port;		/* 3001; 0 disables */
	bool		 admin_port_set;
	char		*vllm_command;		/* "vllm" */
	bool		 warmup;		/* false */
	uint32_t	 startup_timeout_secs;	/* 900 */
	uint32_t	 max_sleeping;		/* 0: no cap */
	uint32_t	 health_check_secs;	/* 10; 0: never */

	char		*supervisor_socket;	/* "/run/llmux/supervisor.sock" */
	char		*user;			/* "llmux-engine" */
	char		*proxy_user;		/* "llmux" */
	char		*admin_group;		/* "llmux-admin" */
	char		*admin_token_file;	/* "/etc/llmux/admin-token" */
	char		*state_dir;		/* "/var/lib/llmux" */
	char		*log_dir;		/* "/var/log/llmux" */
	uint64_t	 model_log_max_bytes;	/* 64 MiB */
	uint32_t	 model_log_keep;	/* 3 rotated files */
	uint32_t	 gpu_count;		/* 0: ask NVML; for `gpus:` checks */
	uint32_t	 event_ring_size;	/* 4096 events kept */
};

/* How strict to be about what this machine lacks. */
enum config_mode {
	CONFIG_CHECK,		/* --check-config: machine facts are warnings */
	CONFIG_RUN,		/* the supervisor needs them: errors */
};

/*
 * One problem found while loading. Errors make the load fail; warnings do
 * not. Messages read "FILE:LINE:COL: message" via config_diag_format.
 */
struct config_diag {
	bool		 error;
	bool		 machine;	/* about this host, not the file */
	unsigned	 line, col;	/* 0 when not tied to a place */
	char		*msg;
};

/*
 * In file order. Past CONFIG_MAX_DIAGS the rest are dropped and counted in
 * one last diagnostic; n_errors counts every error, dropped ones too.
 */
struct config_diags {
	struct config_diag	*v;
	size_t			 n;
	size_t			 n_errors;
};

/* Hard limits on input files. */
#define CONFIG_MAX_FILE_BYTES	(4u << 20)
#define CONFIG_MAX_DEPTH	32
#define CONFIG_MAX_SCALAR	(64u << 10)
#define CONFIG_MAX_NODES	100000
#define CONFIG_MAX_DIAGS	100	/* kept; the rest are counted */

/*
 * Load and validate a config file. Returns the config, or NULL when there
 * are errors; every problem (all of them, in file order) is in diags,
 * which the caller frees with config_diags_free. A returned config is
 * complete: each model's eviction is its effective one, and its
 * gpu_memory_utilization and tensor_parallel_size are filled in.
 */
struct config	*config_load(const char *path, enum config_mode,
		    struct config_diags *diags);
/* The same from memory; name is used in messages. */
struct config	*config_load_buffer(const char *name, const char *buf,
		    size_t len, enum config_mode, struct config_diags *diags);
void		 config_free(struct config *);
void		 config_diags_free(struct config_diags *);
/* Print every diagnostic to f, one "FILE:LINE:COL: error: msg" a line. */
void		 config_diags_print(const struct config_diags *,
		    const char *path, void *file /* FILE * */);

/* Lookups. */
struct model_config *config_find_model(const struct config *, const char *);
/* By name or alias. */
struct model_config *config_resolve_model(const struct config *,
		    const char *);
const char	*config_policy_name(enum policy_type);
int		 config_policy_parse(const char *, enum policy_type *);
/* The model's eviction: its own, else the policy default. */
struct eviction	 config_model_eviction(const struct config *,
		    const struct model_config *);
/* The effective startup timeout of a model, seconds. */
uint32_t	 config_model_startup_timeout(const struct config *,
		    const struct model_config *);

#endif
