/*
 * config_keys.c -- the one table of llmux configuration keys: for each its
 * section, type, bounds, default (written as it would be in the file, and
 * bound by the same code as the file), the field it fills, a validator
 * and a line of meaning. docs/configuration.md describes the same table;
 * a unit test checks that it names every key.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "config_int.h"

#define KIB	(UINT64_C(1) << 10)
#define MIB	(UINT64_C(1) << 20)
#define GIB	(UINT64_C(1) << 30)

#define TOP(f)		.section = CS_TOP, .off = offsetof(struct config, f)
#define MODEL(f)	.section = CS_MODEL, \
			.off = offsetof(struct model_config, f)
#define POLICY(f)	.section = CS_POLICY, \
			.off = offsetof(struct policy_config, f)
#define CKPT(f)		.section = CS_CHECKPOINT, \
			.off = offsetof(struct checkpoint_config, f)
#define OSTORE(f)	.section = CS_OBJECT_STORE, \
			.off = offsetof(struct object_store_config, f)
#define PROXY(f)	.section = CS_PROXY, \
			.off = offsetof(struct proxy_config, f)
#define GPU(f)		.section = CS_GPU, .off = offsetof(struct gpu_config, f)
#define SET(s, f)	.set_off = offsetof(s, f) + 1
#define COUNT(s, f)	.aux_off = offsetof(s, f)

static const char *config_keys_check_path(const char *);
static const char *config_keys_check_user(const char *);
static const char *config_keys_check_address(const char *);
static const char *config_keys_check_token(const char *);
static const char *config_keys_check_endpoint(const char *);
static const char *config_keys_check_bucket(const char *);
static const char *config_keys_check_region(const char *);

const struct config_key config_keys[] = {
	/* The top level: llmux 0.7's keys. */
	{ "models", TOP(models), .type = CT_MODELS, .flags = CK_REQUIRED,
	  .max = CONFIG_MAX_MODELS,
	  .doc = "the models: a mapping of model name to model" },
	{ "policy", TOP(policy), .type = CT_SECTION, .sub = CS_POLICY,
	  .doc = "when and how to switch models" },
	{ "checkpoint", TOP(checkpoint), .type = CT_SECTION,
	  .sub = CS_CHECKPOINT, .flags = CK_NULLABLE,
	  SET(struct config, checkpoint.set),
	  .doc = "CRIU checkpointing; needed by checkpoint_path" },
	{ "port", TOP(port), .type = CT_PORT, .min = 1, .max = 65535,
	  .def = "3000", .doc = "the OpenAI API port of llmux-proxyd" },
	{ "metrics_port", TOP(metrics_port), .type = CT_PORT, .min = 0,
	  .max = 65535, .def = "3002",
	  .doc = "the Prometheus metrics port (beside 3000 and 3001: 9090 is "
	  "Prometheus's own); 0 disables" },
	{ "admin_port", TOP(admin_port), .type = CT_PORT, .min = 0,
	  .max = 65535, .def = "3001", .flags = CK_NULLABLE,
	  SET(struct config, admin_port_set),
	  .doc = "the control API port (loopback); 0 or null disables" },
	{ "vllm_command", TOP(vllm_command), .type = CT_STRING,
	  .max = 4096, .def = "vllm",
	  .doc = "the vLLM program: a path, or a name looked up on PATH" },
	{ "warmup", TOP(warmup), .type = CT_BOOL, .def = "false",
	  .doc = "start, test and put to sleep every model at startup" },
	{ "startup_timeout_secs", TOP(startup_timeout_secs), .type = CT_U32,
	  .min = 1, .max = 604800, .def = "900",
	  .doc = "how long a model may take to become healthy" },
	{ "max_sleeping", TOP(max_sleeping), .type = CT_U32, .min = 0,
	  .max = 1000, .def = "0",
	  .doc = "most models asleep holding host memory; past it the least "
	  "recently used is stopped; 0: no cap" },

	/* The top level: llmux's own keys. */
	{ "health_check_secs", TOP(health_check_secs), .type = CT_U32,
	  .min = 0, .max = 3600, .def = "10",
	  .doc = "how often each running model's GET /health is checked; one "
	  "that fails 3 checks in a row is killed and restarted; 0: never" },
	{ "proxy", TOP(proxy), .type = CT_SECTION, .sub = CS_PROXY,
	  .doc = "limits and keys of llmux-proxyd" },
	{ "gpu", TOP(gpu), .type = CT_SECTION, .sub = CS_GPU,
	  .doc = "how the supervisor reaches the GPUs" },
	{ "supervisor_socket", TOP(supervisor_socket), .type = CT_STRING,
	  .max = 107, .def = "/run/llmux/supervisor.sock",
	  .doc = "the supervisor's Unix socket (LLMUX_SOCKET and --socket "
	  "override it)" },
	{ "user", TOP(user), .type = CT_STRING, .max = 32,
	  .def = "llmux-engine", .check = config_keys_check_user,
	  .doc = "the user model processes run as" },
	{ "proxy_user", TOP(proxy_user), .type = CT_STRING, .max = 32,
	  .def = "llmux", .check = config_keys_check_user,
	  .doc = "the user whose connections get the proxy role" },
	{ "admin_group", TOP(admin_group), .type = CT_STRING, .max = 32,
	  .def = "llmux-admin", .check = config_keys_check_user,
	  .doc = "members may use every control command" },
	{ "admin_token_file", TOP(admin_token_file), .type = CT_STRING,
	  .flags = CK_NULLABLE, .max = 4096, .def = "/etc/llmux/admin-token",
	  .check = config_keys_check_path,
	  .doc = "the admin token, unless proxy.admin_token is written: "
	  "root's, mode 0640, group admin_group; missing: none" },
	{ "state_dir", TOP(state_dir), .type = CT_STRING, .max = 4096,
	  .def = "/var/lib/llmux", .check = config_keys_check_path,
	  .doc = "the supervisor's state journal lives here" },
	{ "log_dir", TOP(log_dir), .type = CT_STRING, .max = 4096,
	  .def = "/var/log/llmux", .check = config_keys_check_path,
	  .doc = "model process logs go here" },
	{ "model_log_max_bytes", TOP(model_log_max_bytes), .type = CT_BYTES,
	  .min = KIB, .max = 1024 * GIB, .def = "64MiB",
	  .doc = "rotate a model's log when it grows past this" },
	{ "model_log_keep", TOP(model_log_keep), .type = CT_U32, .min = 0,
	  .max = 1000, .def = "3", .doc = "rotated model logs kept" },
	{ "gpu_count", TOP(gpu_count), .type = CT_U32, .min = 0,
	  .max = CONFIG_MAX_GPUS, .def = "0",
	  .doc = "GPUs on this machine, to check gpus: lists; 0: ask NVML" },
	{ "event_ring_size", TOP(event_ring_size), .type = CT_U32, .min = 64,
	  .max = 65536, .def = "4096",
	  .doc = "events the supervisor keeps for subscribers that resume "
	  "(GET /control/events, llmuxctl events --since)" },

	/* A model. */
	{ "model_path", MODEL(model_path), .type = CT_STRING,
	  .flags = CK_REQUIRED, .max = 4096,
	  .doc = "a Hugging Face model id or a local path" },
	{ "port", MODEL(port), .type = CT_PORT, .flags = CK_REQUIRED,
	  .min = 1, .max = 65535,
	  .doc = "the model server's port on 127.0.0.1; unique" },
	{ "extra_args", MODEL(extra_args), .type = CT_STRLIST,
	  .flags = CK_EMPTY_OK, .max = 1024,
	  COUNT(struct model_config, n_extra_args),
	  .doc = "more vLLM arguments, passed as they are" },
	{ "eviction", MODEL(eviction), .type = CT_EVICTION,
	  SET(struct model_config, eviction_set),
	  .doc = "how it sleeps: {weights, process}, \"weights+process\" or "
	  "a level 1..5; default policy.eviction" },
	{ "sleep_level", MODEL(eviction), .type = CT_LEVEL,
	  SET(struct model_config, eviction_set),
	  .doc = "the old spelling of eviction as a level 1..5" },
	{ "checkpoint_path", MODEL(checkpoint_path), .type = CT_STRING,
	  .flags = CK_NULLABLE, .max = 4096,
	  .doc = "CRIU images to restore on first use instead of a cold "
	  "start" },
	{ "aliases", MODEL(aliases), .type = CT_STRLIST, .max = 32,
	  COUNT(struct model_config, n_aliases),
	  .check = config_keys_check_name,
	  .doc = "other names clients may use for the model" },
	{ "env", MODEL(env), .type = CT_ENV, .max = 256,
	  COUNT(struct model_config, n_env),
	  .doc = "environment variables for the model process" },
	{ "gpus", MODEL(gpus), .type = CT_GPUS, .max = CONFIG_MAX_GPUS - 1,
	  COUNT(struct model_config, n_gpus),
	  .doc = "the GPU indexes the model uses; default all" },
	{ "gpu_memory_utilization", MODEL(gpu_memory_utilization),
	  .type = CT_DOUBLE, .flags = CK_MIN_EXCL, .dmin = 0, .dmax = 1,
	  .doc = "the fraction of each GPU it claims; default from "
	  "extra_args --gpu-memory-utilization, else 0.9" },
	{ "ttl_secs", MODEL(ttl_secs), .type = CT_U32, .min = 0,
	  .max = UINT32_MAX, .def = "0",
	  .doc = "put the model to sleep after this long idle; 0: never" },
	{ "preload", MODEL(preload), .type = CT_BOOL, .def = "false",
	  .doc = "wake the model when the supervisor starts" },
	{ "startup_timeout_secs", MODEL(startup_timeout_secs), .type = CT_U32,
	  .min = 0, .max = 604800, .def = "0",
	  .doc = "this model's startup timeout; 0: the top-level value" },
	{ "max_concurrency", MODEL(max_concurrency), .type = CT_U32,
	  .min = 0, .max = 1024, .def = "0",
	  .doc = "requests its server is sent at once, the rest wait in its "
	  "queue; 0: no limit" },

	/* policy: */
	{ "policy_type", POLICY(type), .type = CT_POLICY, .def = "fifo",
	  .doc = "fifo, cost_aware, time_slice or batch_aware" },
	{ "request_timeout_secs", POLICY(request_timeout_secs), .type = CT_U32,
	  .min = 1, .max = 604800, .def = "300",
	  .doc = "how long a request may wait for its model" },
	{ "drain_before_switch", POLICY(drain_before_switch), .type = CT_BOOL,
	  .def = "true",
	  .doc = "let in-flight requests finish before a switch" },
	{ "eviction", POLICY(eviction), .type = CT_EVICTION,
	  .def = "retain+stop",
	  .doc = "the eviction of models that have none" },
	{ "sleep_level", POLICY(eviction), .type = CT_LEVEL,
	  .doc = "the old spelling of eviction as a level 1..5" },
	{ "min_active_secs", POLICY(min_active_secs), .type = CT_U32,
	  .min = 0, .max = 86400, .def = "5",
	  .doc = "a model stays active at least this long" },
	{ "coalesce_window_ms", POLICY(coalesce_window_ms), .type = CT_U32,
	  .min = 0, .max = 3600000, .def = "2000",
	  .doc = "cost_aware: wait this long to gather demand" },
	{ "amortization_factor", POLICY(amortization_factor),
	  .type = CT_DOUBLE, .dmin = 0, .dmax = 1000, .def = "0.5",
	  .doc = "cost_aware: queue depth per second of switch cost" },
	{ "max_wait_secs", POLICY(max_wait_secs), .type = CT_U32, .min = 0,
	  .max = 86400, .def = "15",
	  .doc = "cost_aware, time_slice: switch once a request waited this "
	  "long" },
	{ "tick_interval_ms", POLICY(tick_interval_ms), .type = CT_U32,
	  .min = 10, .max = 3600000, .def = "500",
	  .doc = "time_slice: the scheduler tick" },
	{ "min_quantum_ms", POLICY(min_quantum_ms), .type = CT_U32, .min = 0,
	  .max = 3600000, .def = "2000",
	  .doc = "time_slice: accepted and unused, as in llmux 0.7 (Rust)" },
	{ "drain_timeout_secs", POLICY(drain_timeout_secs), .type = CT_U32,
	  .min = 1, .max = 86400, .def = "300",
	  .doc = "give up waiting for in-flight requests after this long" },

	/* checkpoint: */
	{ "criu_path", CKPT(criu_path), .type = CT_STRING, .max = 4096,
	  .def = "criu", .doc = "the criu program" },
	{ "cuda_plugin_dir", CKPT(cuda_plugin_dir), .type = CT_STRING,
	  .max = 4096, .def = "/usr/lib/criu/",
	  .doc = "the directory holding CRIU's CUDA plugin" },
	{ "images_dir", CKPT(images_dir), .type = CT_STRING, .max = 4096,
	  .check = config_keys_check_path,
	  .doc = "checkpoint images go to images_dir/MODEL/images; default "
	  "state_dir/checkpoints" },
	{ "cuda_checkpoint_path", CKPT(cuda_checkpoint_path),
	  .type = CT_STRING, .max = 4096, .def = "cuda-checkpoint",
	  .doc = "accepted for llmux 0.7 configs; llmux calls the driver API "
	      "itself" },
	{ "keep_images", CKPT(keep_images), .type = CT_BOOL, .def = "true",
	  .doc = "keep images after a restore" },
	{ "object_store", CKPT(object_store), .type = CT_SECTION,
	  .sub = CS_OBJECT_STORE, .flags = CK_NULLABLE,
	  SET(struct checkpoint_config, object_store.set),
	  .doc = "an S3 store that checkpoint images are copied to" },

	/* checkpoint.object_store: */
	{ "endpoint", OSTORE(endpoint), .type = CT_STRING,
	  .flags = CK_REQUIRED, .max = 4096,
	  .check = config_keys_check_endpoint,
	  .doc = "the store's http:// or https:// URL (path-style requests)" },
	{ "bucket", OSTORE(bucket), .type = CT_STRING, .flags = CK_REQUIRED,
	  .max = 63, .check = config_keys_check_bucket,
	  .doc = "the bucket (S3's naming rules)" },
	{ "access_key", OSTORE(access_key), .type = CT_STRING,
	  .flags = CK_REQUIRED, .max = 1024, .check = config_keys_check_token,
	  .doc = "the access key" },
	{ "secret_key", OSTORE(secret_key), .type = CT_STRING,
	  .flags = CK_REQUIRED | CK_SECRET, .max = 1024,
	  .check = config_keys_check_token,
	  .doc = "the secret key (never logged)" },
	{ "region", OSTORE(region), .type = CT_STRING, .max = 64,
	  .def = "us-east-1", .check = config_keys_check_region,
	  .doc = "the region requests are signed for" },
	{ "timeout_secs", OSTORE(timeout_secs), .type = CT_U32, .min = 1,
	  .max = 3600, .def = "60",
	  .doc = "a request that moves no byte for this long is tried again" },
	{ "retries", OSTORE(retries), .type = CT_U32, .min = 0, .max = 20,
	  .def = "4",
	  .doc = "tries again after a connection error, timeout or 5xx" },
	{ "part_size_mb", OSTORE(part_size_mb), .type = CT_U32, .min = 5,
	  .max = 5120, .def = "64",
	  .doc = "the parts of a multipart upload, MiB" },
	{ "multipart_threshold_mb", OSTORE(multipart_threshold_mb),
	  .type = CT_U32, .min = 5, .max = 5120, .def = "5120",
	  .doc = "a larger image file is uploaded in parts (multipart)" },

	/* proxy: */
	{ "listen_address", PROXY(listen_address), .type = CT_STRING,
	  .max = 64, .def = "127.0.0.1", .check = config_keys_check_address,
	  .doc = "the address of the API port" },
	{ "admin_address", PROXY(admin_address), .type = CT_STRING,
	  .max = 64, .def = "127.0.0.1", .check = config_keys_check_address,
	  .doc = "the address of the control API and metrics ports" },
	{ "max_queue_per_model", PROXY(max_queue_per_model), .type = CT_U32,
	  .min = 1, .max = 1000000, .def = "16384",
	  .doc = "requests that may wait for one model" },
	{ "max_body_bytes", PROXY(max_body_bytes), .type = CT_BYTES,
	  .min = KIB, .max = 4 * GIB, .def = "32MiB",
	  .doc = "the largest request body" },
	{ "max_header_bytes", PROXY(max_header_bytes), .type = CT_BYTES32,
	  .min = KIB, .max = 16 * MIB, .def = "64KiB",
	  .doc = "the largest request head" },
	{ "max_connections", PROXY(max_connections), .type = CT_U32,
	  .min = 1, .max = 1000000, .def = "4096",
	  .doc = "client connections open at once (loopback has 64 more)" },
	{ "max_connections_per_ip", PROXY(max_connections_per_ip),
	  .type = CT_U32, .min = 1, .max = 1000000, .def = "1024",
	  .doc = "client connections open at once from one address "
	  "(loopback: no limit)" },
	{ "max_buffered_body_mb", PROXY(max_buffered_body_mb), .type = CT_U32,
	  .min = 1, .max = 1048576, .def = "128",
	  .doc = "request bodies held at once, MiB; one address holds at "
	  "most a quarter" },
	{ "header_timeout_ms", PROXY(header_timeout_ms), .type = CT_U32,
	  .min = 100, .max = 3600000, .def = "10000",
	  .doc = "a request head must arrive whole within this time" },
	{ "body_timeout_ms", PROXY(body_timeout_ms), .type = CT_U32,
	  .min = 100, .max = 3600000, .def = "30000",
	  .doc = "a request body that sends nothing for this long is refused" },
	{ "keepalive_timeout_secs", PROXY(keepalive_timeout_secs),
	  .type = CT_U32, .min = 1, .max = 86400, .def = "75",
	  .doc = "an idle connection between requests is closed after this" },
	{ "upstream_timeout_secs", PROXY(upstream_timeout_secs),
	  .type = CT_U32, .min = 0, .max = 604800, .def = "600",
	  .doc = "fail a forwarded request whose model server sends nothing "
	  "for this long; 0: never" },
	{ "ui_dir", PROXY(ui_dir), .type = CT_STRING, .max = 1024,
	  .def = "/usr/share/llmux/ui", .check = config_keys_check_path,
	  .doc = "the web page's files, served at / and /ui/ on the admin "
	  "port" },
	{ "javascript_dir", PROXY(javascript_dir), .type = CT_STRING,
	  .max = 1024, .def = "/usr/share/javascript",
	  .check = config_keys_check_path,
	  .doc = "the distribution's JavaScript libraries (Chart.js), served "
	  "at /javascript/ on the admin port" },
	{ "api_keys", PROXY(api_keys), .type = CT_STRLIST, .max = 1024,
	  COUNT(struct proxy_config, n_api_keys),
	  .check = config_keys_check_token,
	  .doc = "bearer tokens clients must send; none: open" },
	{ "admin_token", PROXY(admin_token), .type = CT_STRING,
	  .flags = CK_NULLABLE | CK_SECRET, .max = 256,
	  .check = config_keys_check_token,
	  .doc = "the bearer token of state-changing control calls; null: "
	  "admin_token_file's" },
	{ "allow_unauthenticated", PROXY(allow_unauthenticated),
	  .type = CT_BOOL, .def = "false",
	  .doc = "let the API port listen on a public address with no "
	  "api_keys" },

	/* gpu: */
	{ "cuda_library", GPU(cuda_library), .type = CT_STRING, .max = 4096,
	  .def = "libcuda.so.1", .doc = "the CUDA driver library to dlopen" },
	{ "nvml_library", GPU(nvml_library), .type = CT_STRING, .max = 4096,
	  .def = "libnvidia-ml.so.1", .doc = "the NVML library to dlopen" },
	{ "lock_timeout_ms", GPU(lock_timeout_ms), .type = CT_U32, .min = 0,
	  .max = 600000, .def = "10000",
	  .doc = "how long a CUDA lock before suspend may take" },
	{ "allow_migration", GPU(allow_migration), .type = CT_BOOL,
	  .def = "false",
	  .doc = "let a CUDA-suspended process resume on other GPUs" },
};

const size_t config_nkeys = sizeof(config_keys) / sizeof(config_keys[0]);

const struct config_key *
config_keys_find(enum config_section sec, const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].section == sec &&
		    strcmp(config_keys[i].name, name) == 0)
			return (&config_keys[i]);
	return (NULL);
}

const char *
config_keys_section_name(enum config_section sec)
{
	static const char *names[CS__COUNT] = {
		[CS_TOP] = "the top level",
		[CS_MODEL] = "a model",
		[CS_POLICY] = "policy",
		[CS_CHECKPOINT] = "checkpoint",
		[CS_OBJECT_STORE] = "checkpoint.object_store",
		[CS_PROXY] = "proxy",
		[CS_GPU] = "gpu",
	};

	return ((unsigned)sec < CS__COUNT ? names[sec] : "?");
}

/* Levenshtein distance of two short strings (capped at 64 bytes). */
size_t
config_keys_distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), row[65], i, j, diag, up;

	if (la > 64 || lb > 64)
		return (SIZE_MAX);
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return (row[lb]);
}

const char *
config_keys_suggest(enum config_section sec, const char *name)
{
	const char	*best = NULL;
	size_t		 d, bestd = SIZE_MAX, limit, len, klen;

	len = strlen(name);
	limit = len / 3;
	if (limit < 2)
		limit = 2;
	for (size_t i = 0; i < config_nkeys; i++) {
		if (config_keys[i].section != sec)
			continue;
		/* The distance is at least the difference in length. */
		klen = strlen(config_keys[i].name);
		if (len > klen + limit || klen > len + limit)
			continue;
		d = config_keys_distance(name, config_keys[i].name);
		if (d <= limit && d < bestd) {
			bestd = d;
			best = config_keys[i].name;
		}
	}
	return (best);
}

const char *
config_keys_check_name(const char *s)
{
	size_t	len = strlen(s);

	if (len == 0 || len > CONFIG_NAME_MAX)
		return ("must be 1 to 128 bytes long");
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._:/@-") != len)
		return ("may hold only letters, digits and . _ : / @ -");
	return (NULL);
}

static const char *
config_keys_check_path(const char *s)
{
	if (s[0] != '/')
		return ("must be an absolute path");
	return (NULL);
}

static const char *
config_keys_check_user(const char *s)
{
	size_t	len = strlen(s);

	if (s[0] == '-' || strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len)
		return ("is not a valid user or group name");
	return (NULL);
}

static const char *
config_keys_check_address(const char *s)
{
	unsigned char	addr[16];

	if (inet_pton(AF_INET, s, addr) == 1 ||
	    inet_pton(AF_INET6, s, addr) == 1)
		return (NULL);
	return ("is not an IPv4 or IPv6 address");
}

static const char *
config_keys_check_token(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e)
			return ("may hold only printable ASCII without spaces");
	return (NULL);
}

/* An http:// or https:// URL of a host, with no credentials in it. */
static const char *
config_keys_check_endpoint(const char *s)
{
	const char	*host, *end;

	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return ("is not an http:// or https:// URL");
	end = host + strcspn(host, "/?#");
	if (end == host)
		return ("has no host");
	if (memchr(host, '@', (size_t)(end - host)) != NULL)
		return ("must not hold credentials (use access_key and "
		    "secret_key)");
	if (strpbrk(end, "?#") != NULL)
		return ("must not have a query or a fragment");
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e)
			return ("may hold only printable ASCII without spaces");
	return (NULL);
}

/*
 * S3's bucket naming rules: 3 to 63 lowercase letters, digits, dots and
 * hyphens, a letter or digit at each end, no two dots in a row, not an
 * IPv4 address, not one of the reserved prefixes and suffixes.
 */
static const char *
config_keys_check_bucket(const char *s)
{
	size_t		len = strlen(s);
	unsigned char	addr[4];

	if (len < 3 || len > 63)
		return ("must be 3 to 63 characters long (S3's bucket rules)");
	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len)
		return ("may hold only lowercase letters, digits, '.' and '-' "
		    "(S3's bucket rules)");
	if (!isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[len - 1]))
		return ("must begin and end with a letter or a digit (S3's "
		    "bucket rules)");
	if (strstr(s, "..") != NULL)
		return ("must not hold two dots in a row (S3's bucket rules)");
	if (inet_pton(AF_INET, s, addr) == 1)
		return ("must not be an IP address (S3's bucket rules)");
	if (strncmp(s, "xn--", 4) == 0 || strncmp(s, "sthree-", 7) == 0 ||
	    (len > 8 && strcmp(s + len - 8, "-s3alias") == 0) ||
	    (len > 7 && strcmp(s + len - 7, "--ol-s3") == 0))
		return ("uses a prefix or suffix S3 reserves (S3's bucket "
		    "rules)");
	return (NULL);
}

static const char *
config_keys_check_region(const char *s)
{
	size_t	len = strlen(s);

	if (len == 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len)
		return ("may hold only letters, digits, '-' and '_'");
	return (NULL);
}
