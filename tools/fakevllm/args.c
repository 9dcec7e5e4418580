/*
 * args.c -- the command line: `llmux-fakevllm serve MODEL [vLLM options]
 * [--fake-* options]`.
 *
 * vLLM has hundreds of options and the supervisor passes whatever a
 * model's config says, so an option we do not know is accepted and
 * ignored, with or without a value, the way vLLM would accept it. Our own
 * options all start with --fake-, and a misspelt one of those is an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakevllm.h"
#include "xmalloc.h"

enum args_kind {
	ARGS_NOARG,	/* --flag */
	ARGS_VALUE,	/* --flag VALUE or --flag=VALUE */
	ARGS_OPTVAL,	/* --flag or --flag=VALUE, never the next word */
	ARGS_NAMES	/* --flag NAME [NAME ...] */
};

enum args_id {
	A_HOST, A_PORT, A_NAMES, A_MODEL, A_SLEEP_MODE, A_TP, A_MAX_LEN,
	A_MAX_SEQS, A_API_KEY, A_NO_ACCESS_LOG, A_LOG_REQ, A_NO_LOG_REQ,
	A_FAST, A_ADMIN, A_ENGINE, A_STARTUP, A_SLEEP1, A_SLEEP2, A_WAKE,
	A_RELOAD, A_TOKEN, A_WEIGHTS, A_ASLEEP, A_FAULT, A_FAIL_SLEEP,
	A_FAIL_WAKE, A_HANG_SLEEP, A_HANG_WAKE, A_FAIL_RELOAD, A_CRASH_AFTER,
	A_STALL_AFTER, A_HEALTH_500, A_EXIT_STARTUP, A_GPU_DIR, A_GPU_MB,
	A_RESTORE_STATE, A_GPU_UTIL, A_FAKE_GPU, A_KV_MB, A_TASK
};

static const struct args_entry {
	const char	*name;
	int		 kind;
	int		 id;
} args_table[] = {
	{ "--host", ARGS_VALUE, A_HOST },
	{ "--port", ARGS_VALUE, A_PORT },
	{ "--served-model-name", ARGS_NAMES, A_NAMES },
	{ "--model", ARGS_VALUE, A_MODEL },
	{ "--enable-sleep-mode", ARGS_NOARG, A_SLEEP_MODE },
	{ "--tensor-parallel-size", ARGS_VALUE, A_TP },
	{ "-tp", ARGS_VALUE, A_TP },
	{ "--max-model-len", ARGS_VALUE, A_MAX_LEN },
	{ "--max-num-seqs", ARGS_VALUE, A_MAX_SEQS },
	{ "--gpu-memory-utilization", ARGS_VALUE, A_GPU_UTIL },
	{ "--task", ARGS_VALUE, A_TASK },
	{ "--api-key", ARGS_VALUE, A_API_KEY },
	{ "--disable-uvicorn-access-log", ARGS_NOARG, A_NO_ACCESS_LOG },
	{ "--enable-log-requests", ARGS_NOARG, A_LOG_REQ },
	{ "--disable-log-requests", ARGS_NOARG, A_NO_LOG_REQ },
	{ "--fake-fast", ARGS_NOARG, A_FAST },
	{ "--fake-admin", ARGS_NOARG, A_ADMIN },
	{ "--fake-engine-process", ARGS_NOARG, A_ENGINE },
	{ "--fake-startup-ms", ARGS_VALUE, A_STARTUP },
	{ "--fake-sleep-level1-ms", ARGS_VALUE, A_SLEEP1 },
	{ "--fake-sleep-level2-ms", ARGS_VALUE, A_SLEEP2 },
	{ "--fake-wake-ms", ARGS_VALUE, A_WAKE },
	{ "--fake-reload-ms", ARGS_VALUE, A_RELOAD },
	{ "--fake-token-ms", ARGS_VALUE, A_TOKEN },
	{ "--fake-weights-mb", ARGS_VALUE, A_WEIGHTS },
	{ "--fake-requests-while-asleep", ARGS_VALUE, A_ASLEEP },
	{ "--fake-fault", ARGS_VALUE, A_FAULT },
	{ "--fake-fail-sleep", ARGS_OPTVAL, A_FAIL_SLEEP },
	{ "--fake-fail-wake", ARGS_OPTVAL, A_FAIL_WAKE },
	{ "--fake-hang-sleep", ARGS_OPTVAL, A_HANG_SLEEP },
	{ "--fake-hang-wake", ARGS_OPTVAL, A_HANG_WAKE },
	{ "--fake-fail-reload", ARGS_OPTVAL, A_FAIL_RELOAD },
	{ "--fake-crash-after-tokens", ARGS_VALUE, A_CRASH_AFTER },
	{ "--fake-stall-after-tokens", ARGS_VALUE, A_STALL_AFTER },
	{ "--fake-health-500", ARGS_NOARG, A_HEALTH_500 },
	{ "--fake-exit-during-startup", ARGS_OPTVAL, A_EXIT_STARTUP },
	{ "--fake-gpu-dir", ARGS_VALUE, A_GPU_DIR },
	{ "--fake-gpu-mb", ARGS_VALUE, A_GPU_MB },
	{ "--fake-restore-state", ARGS_VALUE, A_RESTORE_STATE },
	{ "--fake-gpu", ARGS_VALUE, A_FAKE_GPU },
	{ "--fake-kv-mb", ARGS_VALUE, A_KV_MB },
};

/* vLLM options that take no value, beyond --enable-*, --disable-*, --no-*. */
static const char *args_booleans[] = {
	"--enforce-eager", "--trust-remote-code", "--headless",
	"--skip-tokenizer-init", "--async-scheduling", "--fully-sharded-loras",
	"--return-tokens-as-token-ids", "--allow-credentials",
	"--use-tqdm-on-load", "--ray-workers-use-nsight",
	"--data-parallel-external-lb", "--data-parallel-hybrid-lb",
	"--kv-sharing-fast-prefill", "--calculate-kv-scales",
	"--optimization-level-auto", "--structured-outputs-config.enable-in-reasoning",
};

/* Millisecond knobs set on the command line; -1 when left to defaults. */
struct args_delays {
	int64_t	startup, sleep1, sleep2, wake, reload, token;
};

void
fv_args_defaults(struct fv_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = FV_DEFAULT_PORT;
	o->tp = 1;
	o->max_model_len = FV_DEFAULT_MAX_MODEL_LEN;
	o->max_num_seqs = FV_DEFAULT_MAX_NUM_SEQS;
	o->gpu_util = FV_DEFAULT_GPU_UTIL;
	o->kv_mb = -1;
	o->access_log = 1;
	o->asleep = FV_ASLEEP_QUEUE;
	/* What a small model (about 1B parameters) looks like on one GPU. */
	o->startup_ms = 3000;
	o->sleep1_ms = 500;
	o->sleep2_ms = 300;
	o->wake_ms = 500;
	o->reload_ms = 2000;
	o->token_ms = 20;
}

/* Parse a decimal integer in [min, max]; "k"/"m" suffixes when scaled. */
static int
args_number(const char *s, int64_t min, int64_t max, int scaled, int64_t *out)
{
	char		*end;
	long long	 v;

	if (*s == '\0')
		return (-1);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s)
		return (-1);
	if (scaled && (*end == 'k' || *end == 'K') && end[1] == '\0') {
		if (v > INT64_MAX / 1024)
			return (-1);
		v *= 1024;
		end++;
	} else if (scaled && (*end == 'm' || *end == 'M') && end[1] == '\0') {
		if (v > INT64_MAX / (1024 * 1024))
			return (-1);
		v *= 1024 * 1024;
		end++;
	}
	if (*end != '\0' || v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/* Does this word look like an option's value rather than an option? */
static int
args_is_value(const char *s)
{
	char	*end;

	if (s[0] != '-' || s[1] == '\0')
		return (1);
	strtod(s, &end);
	return (end != s && *end == '\0');
}

static int
args_is_boolean(const char *name)
{
	size_t	i;

	if (strncmp(name, "--enable-", 9) == 0 ||
	    strncmp(name, "--disable-", 10) == 0 ||
	    strncmp(name, "--no-", 5) == 0)
		return (1);
	for (i = 0; i < sizeof(args_booleans) / sizeof(args_booleans[0]); i++)
		if (strcmp(name, args_booleans[i]) == 0)
			return (1);
	return (0);
}

static void
args_ignore(struct fv_opts *o, const char *name, const char *value)
{
	o->ignored = xreallocarray(o->ignored, o->nignored + 1,
	    sizeof(*o->ignored));
	if (value != NULL)
		xasprintf(&o->ignored[o->nignored], "%s %s", name, value);
	else
		o->ignored[o->nignored] = xstrdup(name);
	o->nignored++;
}

static int
args_ms(const char *name, const char *v, int64_t *out, char **cause)
{
	if (args_number(v, 0, 3600 * 1000, 0, out) != 0) {
		xasprintf(cause, "%s: expected milliseconds (0 to 3600000), "
		    "got '%s'", name, v);
		return (-1);
	}
	return (0);
}

/* A fault flag: optional count (default 1), argument from the table. */
static int
args_fault(struct fv_opts *o, int fault, const char *name, const char *v,
    int counted, char **cause)
{
	int64_t	n = 1;

	if (v != NULL && args_number(v, counted ? -1 : 0,
	    counted ? 1000000 : 255, 0, &n) != 0) {
		xasprintf(cause, "%s: invalid value '%s'", name, v);
		return (-1);
	}
	if (counted)
		fv_faults_set(&o->faults, fault, (int32_t)n,
		    fv_faults_default_arg(fault));
	else
		fv_faults_set(&o->faults, fault, 1, (int32_t)n);
	return (0);
}

/* Apply one known option; v is its value or NULL. */
static int
args_apply(struct fv_opts *o, const struct args_entry *e, const char *v,
    struct args_delays *d, int *fast, char **cause)
{
	int64_t	n;
	char	*end;

	switch (e->id) {
	case A_HOST:
		free(o->host);
		o->host = xstrdup(v);
		break;
	case A_PORT:
		if (args_number(v, 0, 65535, 0, &n) != 0)
			goto bad;
		o->port = (int)n;
		break;
	case A_MODEL:
		free(o->model);
		o->model = xstrdup(v);
		break;
	case A_SLEEP_MODE:
		o->sleep_mode = 1;
		break;
	case A_TP:
		if (args_number(v, 1, 1024, 0, &n) != 0)
			goto bad;
		o->tp = (int)n;
		break;
	case A_MAX_LEN:
		if (args_number(v, 1, 64 * 1024 * 1024, 1, &n) != 0)
			goto bad;
		o->max_model_len = (int)n;
		break;
	case A_MAX_SEQS:
		if (args_number(v, 1, 1000000, 0, &n) != 0)
			goto bad;
		o->max_num_seqs = (int)n;
		break;
	case A_API_KEY:
		free(o->api_key);
		o->api_key = xstrdup(v);
		break;
	case A_NO_ACCESS_LOG:
		o->access_log = 0;
		break;
	case A_LOG_REQ:
		o->log_requests = 1;
		break;
	case A_NO_LOG_REQ:
		o->log_requests = 0;
		break;
	case A_FAST:
		*fast = 1;
		break;
	case A_ADMIN:
		o->admin = 1;
		break;
	case A_ENGINE:
		o->engine_process = 1;
		break;
	case A_STARTUP:
		return (args_ms(e->name, v, &d->startup, cause));
	case A_SLEEP1:
		return (args_ms(e->name, v, &d->sleep1, cause));
	case A_SLEEP2:
		return (args_ms(e->name, v, &d->sleep2, cause));
	case A_WAKE:
		return (args_ms(e->name, v, &d->wake, cause));
	case A_RELOAD:
		return (args_ms(e->name, v, &d->reload, cause));
	case A_TOKEN:
		return (args_ms(e->name, v, &d->token, cause));
	case A_WEIGHTS:
		if (args_number(v, 0, 256 * 1024, 0, &n) != 0)
			goto bad;
		o->weights_mb = n;
		break;
	case A_TASK:
		if (strcmp(v, "generate") == 0 || strcmp(v, "auto") == 0)
			o->task = FV_TASK_GENERATE;
		else if (strcmp(v, "embed") == 0 || strcmp(v, "embedding") == 0)
			o->task = FV_TASK_EMBED;
		else {
			xasprintf(cause, "%s: llmux-fakevllm serves generate or "
			    "embed, not '%s'", e->name, v);
			return (-1);
		}
		break;
	case A_ASLEEP:
		if (strcmp(v, "queue") == 0)
			o->asleep = FV_ASLEEP_QUEUE;
		else if (strcmp(v, "fail") == 0)
			o->asleep = FV_ASLEEP_FAIL;
		else
			goto bad;
		break;
	case A_FAULT:
		if (fv_faults_parse_spec(&o->faults, v, cause) != 0) {
			char	*why = *cause;

			xasprintf(cause, "%s: %s", e->name, why);
			free(why);
			return (-1);
		}
		break;
	case A_FAIL_SLEEP:
		return (args_fault(o, FV_FAULT_FAIL_SLEEP, e->name, v, 1, cause));
	case A_FAIL_WAKE:
		return (args_fault(o, FV_FAULT_FAIL_WAKE, e->name, v, 1, cause));
	case A_HANG_SLEEP:
		return (args_fault(o, FV_FAULT_HANG_SLEEP, e->name, v, 1, cause));
	case A_HANG_WAKE:
		return (args_fault(o, FV_FAULT_HANG_WAKE, e->name, v, 1, cause));
	case A_FAIL_RELOAD:
		return (args_fault(o, FV_FAULT_FAIL_RELOAD, e->name, v, 1,
		    cause));
	case A_CRASH_AFTER:
	case A_STALL_AFTER:
		if (args_number(v, 0, 1000000, 0, &n) != 0)
			goto bad;
		fv_faults_set(&o->faults, e->id == A_CRASH_AFTER ?
		    FV_FAULT_CRASH_STREAM : FV_FAULT_STALL_STREAM, 1,
		    (int32_t)n);
		break;
	case A_HEALTH_500:
		fv_faults_set(&o->faults, FV_FAULT_HEALTH_500, -1, 0);
		break;
	case A_EXIT_STARTUP:
		return (args_fault(o, FV_FAULT_EXIT_STARTUP, e->name,
		    v != NULL ? v : "1", 0, cause));
	case A_GPU_DIR:
		free(o->gpu_dir);
		o->gpu_dir = xstrdup(v);
		break;
	case A_GPU_MB:
		if (args_number(v, 0, 16 * 1024 * 1024, 0, &n) != 0)
			goto bad;
		o->gpu_mb = n;
		break;
	case A_RESTORE_STATE:
		if (fv_fakegpu_parse_state(v, &o->restore) != 0)
			goto bad;
		o->has_restore = 1;
		break;
	case A_GPU_UTIL:
		o->gpu_util = strtod(v, &end);
		if (end == v || *end != '\0' || !(o->gpu_util > 0.0) ||
		    o->gpu_util > 1.0)
			goto bad;
		break;
	case A_FAKE_GPU:
		if (strcmp(v, "cuda") != 0) {
			xasprintf(cause, "%s: expected cuda, got '%s'",
			    e->name, v);
			return (-1);
		}
		o->gpu_mode = FV_GPU_CUDA;
		break;
	case A_KV_MB:
		if (args_number(v, 0, 16 * 1024 * 1024, 0, &n) != 0)
			goto bad;
		o->kv_mb = n;
		break;
	}
	return (0);
bad:
	xasprintf(cause, "%s: invalid value '%s'", e->name, v);
	return (-1);
}

static const struct args_entry *
args_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(args_table) / sizeof(args_table[0]); i++)
		if (strcmp(args_table[i].name, name) == 0)
			return (&args_table[i]);
	return (NULL);
}

/* The served names: every following word that is not an option. */
static int
args_names(struct fv_opts *o, int argc, char **argv, int *i, const char *v,
    char **cause)
{
	int	j;

	for (j = 0; j < o->nnames; j++)
		free(o->names[j]);
	free(o->names);
	o->names = NULL;
	o->nnames = 0;
	if (v != NULL) {
		o->names = xcalloc(1, sizeof(*o->names));
		o->names[o->nnames++] = xstrdup(v);
		return (0);
	}
	while (*i + 1 < argc && argv[*i + 1][0] != '-') {
		o->names = xreallocarray(o->names, o->nnames + 1,
		    sizeof(*o->names));
		o->names[o->nnames++] = xstrdup(argv[++*i]);
	}
	if (o->nnames == 0) {
		xasprintf(cause, "--served-model-name: expected at least one "
		    "name");
		return (-1);
	}
	return (0);
}

int
fv_args_parse(struct fv_opts *o, int argc, char **argv, char **cause)
{
	struct args_delays	 d = { -1, -1, -1, -1, -1, -1 };
	const struct args_entry	*e;
	char			*name, *eq;
	const char		*v;
	int			 i, fast = 0, rest = 0, rc = 0;

	if (argc < 2 || strcmp(argv[1], "serve") != 0) {
		xasprintf(cause, "expected the serve command: "
		    "llmux-fakevllm serve MODEL [options]");
		return (-1);
	}
	for (i = 2; i < argc && rc == 0; i++) {
		if (rest || argv[i][0] != '-' || argv[i][1] == '\0') {
			if (o->model != NULL) {
				xasprintf(cause, "unexpected argument '%s'",
				    argv[i]);
				return (-1);
			}
			o->model = xstrdup(argv[i]);
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			rest = 1;
			continue;
		}
		name = xstrdup(argv[i]);
		v = NULL;
		if ((eq = strchr(name, '=')) != NULL) {
			*eq = '\0';
			v = eq + 1;
		}
		if ((e = args_find(name)) == NULL) {
			if (strncmp(name, "--fake-", 7) == 0) {
				xasprintf(cause, "unknown option %s", name);
				free(name);
				return (-1);
			}
			if (v == NULL && !args_is_boolean(name) &&
			    i + 1 < argc && args_is_value(argv[i + 1]))
				v = argv[++i];
			args_ignore(o, name, v);
			free(name);
			continue;
		}
		switch (e->kind) {
		case ARGS_NOARG:
			if (v != NULL) {
				xasprintf(cause, "%s takes no value", name);
				rc = -1;
			} else
				rc = args_apply(o, e, NULL, &d, &fast, cause);
			break;
		case ARGS_OPTVAL:
			rc = args_apply(o, e, v, &d, &fast, cause);
			break;
		case ARGS_VALUE:
			if (v == NULL && i + 1 < argc)
				v = argv[++i];
			if (v == NULL) {
				xasprintf(cause, "%s needs a value", name);
				rc = -1;
			} else
				rc = args_apply(o, e, v, &d, &fast, cause);
			break;
		case ARGS_NAMES:
			rc = args_names(o, argc, argv, &i, v, cause);
			break;
		}
		free(name);
	}
	if (rc != 0)
		return (-1);
	if (o->model == NULL) {
		xasprintf(cause, "no model given: llmux-fakevllm serve MODEL "
		    "[options]");
		return (-1);
	}
	if (o->nnames == 0) {
		o->names = xcalloc(1, sizeof(*o->names));
		o->names[o->nnames++] = xstrdup(o->model);
	}
	/* vLLM's default: every address (llmux passes --host 127.0.0.1). */
	if (o->host == NULL)
		o->host = xstrdup("0.0.0.0");
	if (o->gpu_mode == FV_GPU_CUDA && o->gpu_dir != NULL) {
		xasprintf(cause, "--fake-gpu cuda and --fake-gpu-dir are two "
		    "different GPUs: give one");
		return (-1);
	}
	if (o->gpu_mode == FV_GPU_CUDA && o->tp != 1) {
		xasprintf(cause, "--fake-gpu cuda holds one GPU: "
		    "--tensor-parallel-size must be 1");
		return (-1);
	}
	if (fast) {
		o->startup_ms = o->sleep1_ms = o->sleep2_ms = 0;
		o->wake_ms = o->reload_ms = o->token_ms = 0;
	}
	if (d.startup >= 0)
		o->startup_ms = d.startup;
	if (d.sleep1 >= 0)
		o->sleep1_ms = d.sleep1;
	if (d.sleep2 >= 0)
		o->sleep2_ms = d.sleep2;
	if (d.wake >= 0)
		o->wake_ms = d.wake;
	if (d.reload >= 0)
		o->reload_ms = d.reload;
	if (d.token >= 0)
		o->token_ms = d.token;
	return (0);
}

void
fv_args_free(struct fv_opts *o)
{
	int	i;

	free(o->model);
	for (i = 0; i < o->nnames; i++)
		free(o->names[i]);
	free(o->names);
	free(o->host);
	free(o->api_key);
	free(o->gpu_dir);
	for (i = 0; i < o->nignored; i++)
		free(o->ignored[i]);
	free(o->ignored);
	memset(o, 0, sizeof(*o));
}

void
fv_args_usage(void)
{
	fprintf(stderr,
"usage: llmux-fakevllm serve MODEL [--port P] [--host H]\n"
"           [--served-model-name NAME ...] [--enable-sleep-mode]\n"
"           [--tensor-parallel-size N] [--max-model-len N] [--max-num-seqs N]\n"
"           [--api-key KEY] [--disable-uvicorn-access-log]\n"
"           [--task generate|embed]\n"
"           [--enable-log-requests] [any other vLLM option, ignored]\n"
"           [--fake-fast] [--fake-admin] [--fake-engine-process]\n"
"           [--fake-startup-ms N] [--fake-sleep-level1-ms N]\n"
"           [--fake-sleep-level2-ms N] [--fake-wake-ms N] [--fake-reload-ms N]\n"
"           [--fake-token-ms N] [--fake-weights-mb N]\n"
"           [--fake-requests-while-asleep queue|fail]\n"
"           [--fake-fault NAME[:COUNT[:ARG]]] [--fake-fail-sleep[=N]]\n"
"           [--fake-fail-wake[=N]] [--fake-hang-sleep[=N]] [--fake-hang-wake[=N]]\n"
"           [--fake-fail-reload[=N]] [--fake-crash-after-tokens N]\n"
"           [--fake-stall-after-tokens N] [--fake-health-500]\n"
"           [--fake-exit-during-startup[=CODE]]\n"
"           [--fake-gpu-dir DIR --fake-gpu-mb N] [--fake-restore-state S]\n"
"           [--fake-gpu cuda [--gpu-memory-utilization F] [--fake-kv-mb N]]\n"
"The sleep, wake_up, is_sleeping, collective_rpc and reset_prefix_cache\n"
"routes need VLLM_SERVER_DEV_MODE=1, as in vLLM; /fake/ routes need it or\n"
"--fake-admin. See docs/fakevllm.md.\n");
}
