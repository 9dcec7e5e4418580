/*
 * verbs.c -- llmuxctl's commands, in one table (name, arguments, help,
 * argument counts, function) from which `llmuxctl help` and every usage
 * line are generated, and each command: its arguments, its call (call.c)
 * and how it shows the reply.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "xmalloc.h"

static int	verb_status(struct ctl *, int, char **);
static int	verb_models(struct ctl *, int, char **);
static int	verb_switch(struct ctl *, int, char **);
static int	verb_pin(struct ctl *, int, char **);
static int	verb_unpin(struct ctl *, int, char **);
static int	verb_mode(struct ctl *, int, char **);
static int	verb_sleep(struct ctl *, int, char **);
static int	verb_wake(struct ctl *, int, char **);
static int	verb_stop(struct ctl *, int, char **);
static int	verb_eviction(struct ctl *, int, char **);
static int	verb_checkpoint(struct ctl *, int, char **);
static int	verb_restore(struct ctl *, int, char **);
static int	verb_validate(struct ctl *, int, char **);
static int	verb_reload(struct ctl *, int, char **);
static int	verb_logs(struct ctl *, int, char **);
static int	verb_metrics(struct ctl *, int, char **);
static int	verb_help(struct ctl *, int, char **);

const struct ctl_verb ctl_verbs[] = {
	{ "status", "", "the switcher, the mode and every model", 0, 0,
	  verb_status },
	{ "models", "", "the configured models", 0, 0, verb_models },
	{ "switch", "MODEL", "make MODEL the active model", 1, 1,
	  verb_switch },
	{ "pin", "MODEL", "manual mode, pinned to MODEL (switches to it)",
	  1, 1, verb_pin },
	{ "unpin", "", "back to auto mode", 0, 0, verb_unpin },
	{ "mode", "auto|manual", "set the switch mode", 1, 1, verb_mode },
	{ "sleep", "MODEL [--eviction W+P]", "put MODEL to sleep", 1, 3,
	  verb_sleep },
	{ "wake", "MODEL", "wake MODEL (starts it if needed)", 1, 1,
	  verb_wake },
	{ "stop", "MODEL|--all", "stop a model's processes (all models' with "
	  "--all)", 1, 1, verb_stop },
	{ "eviction", "[MODEL W+P]", "show every model's eviction, or set "
	  "MODEL's", 0, 2, verb_eviction },
	{ "checkpoint", "MODEL [--eviction W+checkpoint] [--no-warmup]",
	  "CRIU-checkpoint MODEL to disk", 1, 4, verb_checkpoint },
	{ "restore", "MODEL", "restore a checkpointed MODEL", 1, 1,
	  verb_restore },
	{ "validate", "MODEL [--policies W+P,...]", "sleep and wake MODEL with "
	  "each eviction, checking its answers", 1, 3, verb_validate },
	{ "reload", "", "read the configuration again", 0, 0, verb_reload },
	{ "logs", "MODEL [-f] [-n LINES]", "MODEL's log (-f: follow it)", 1, 4,
	  verb_logs },
	{ "metrics", "", "the supervisor's metrics (Prometheus text)", 0, 0,
	  verb_metrics },
	{ "events", "[--json] [--since ID]", "print the supervisor's events as "
	  "they come (--since: those after ID first)", 0, 3, events_verb },
	{ "top", "", "a live view: the models, the switch in progress, the "
	  "last switches", 0, 0, top_verb },
	{ "help", "[COMMAND]", "this list, or one command's usage", 0, 1,
	  verb_help },
	{ NULL, NULL, NULL, 0, 0, NULL }
};

const struct ctl_verb *
verbs_find(const char *name)
{
	for (const struct ctl_verb *v = ctl_verbs; v->name != NULL; v++)
		if (strcmp(v->name, name) == 0)
			return (v);
	return (NULL);
}

void
verbs_usage(FILE *f)
{
	char	line[128];

	fprintf(f, "usage: llmuxctl [--socket PATH] [--json] COMMAND [ARGS]\n\n"
	    "commands:\n");
	for (const struct ctl_verb *v = ctl_verbs; v->name != NULL; v++) {
		snprintf(line, sizeof(line), "%s%s%s", v->name,
		    *v->args != '\0' ? " " : "", v->args);
		if (strlen(line) > 34)
			fprintf(f, "  %s\n  %-34s  %s\n", line, "", v->help);
		else
			fprintf(f, "  %-34s  %s\n", line, v->help);
	}
	fprintf(f, "\nexit status: 0 done, 1 failed or refused, 2 usage, "
	    "3 supervisor unreachable\n");
}

int
verbs_usage_line(const struct ctl_verb *v)
{
	output_usage("usage: llmuxctl %s%s%s", v->name,
	    *v->args != '\0' ? " " : "", v->args);
	return (CTL_EXIT_USAGE);
}

void
verbs_help(const struct ctl_verb *v)
{
	printf("usage: llmuxctl %s%s%s\n  %s\n", v->name,
	    *v->args != '\0' ? " " : "", v->args, v->help);
}

int
verbs_run(struct ctl *ctl, const struct ctl_verb *v, int argc, char **argv)
{
	/* VERB --help (or -h) anywhere among its arguments: its help. */
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			verbs_help(v);
			return (CTL_EXIT_OK);
		}
	if (argc < v->min_args || (v->max_args >= 0 && argc > v->max_args))
		return (verbs_usage_line(v));
	return (v->exec(ctl, argc, argv));
}

/* "offload+keep_running" from a reply's {weights, process}. */
static const char *
verbs_eviction_text(const struct value *ev, char *buf, size_t len)
{
	snprintf(buf, len, "%s+%s", value_str(value_get(ev, "weights"), "?"),
	    value_str(value_get(ev, "process"), "?"));
	return (buf);
}

/* ---- the commands ---------------------------------------------------------------- */

static int
verb_status(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply	 r;
	const struct value	*models, *m, *mode, *ev, *sv;
	struct table		*t;
	char			 port[16], pid[16], infl[16], q[16], rs[16];
	char			 evs[64], d[32], note[256], used[32], ttl[32];
	const struct value	*x;
	int			 rc;

	if ((rc = call_run(ctl, "status", PROTO_CTL_STATUS, NULL, &r)) != 0)
		return (rc);
	if (ctl->json || r.status != 200 || r.v == NULL) {
		rc = call_result(ctl, &r);
		call_reply_free(&r);
		return (rc);
	}
	mode = value_get(r.v, "mode");
	sv = value_get(r.v, "supervisor");
	printf("state: %s   mode: %s%s%s   supervisor: pid %llu, up %s%s\n",
	    value_str(value_get(r.v, "state"), "?"),
	    value_str(value_get(mode, "mode"), "?"),
	    value_str(value_get(mode, "pinned"), NULL) != NULL ?
	    ", pinned to " : "", value_str(value_get(mode, "pinned"), ""),
	    (unsigned long long)value_uint(value_get(sv, "pid"), 0),
	    output_duration(value_uint(value_get(sv, "uptime_secs"), 0) * 1000,
	    d, sizeof(d)), value_bool(value_get(sv, "unprivileged")) ?
	    ", unprivileged" : "");
	t = table_new(12, "MODEL", "STATE", "PROCESS", "EVICTION", "PORT",
	    "PID", "IN_FLIGHT", "QUEUED", "RESTARTS", "LAST_USED", "TTL", "NOTE");
	models = value_get(r.v, "models");
	for (size_t i = 0; models != NULL && i < models->n; i++) {
		m = value_at(models, i);
		ev = value_get(m, "eviction");
		verbs_eviction_text(ev, evs, sizeof(evs));
		snprintf(port, sizeof(port), "%llu", (unsigned long long)
		    value_uint(value_get(m, "port"), 0));
		pid[0] = '\0';
		if (value_get(m, "pid") != NULL &&
		    value_get(m, "pid")->kind == VALUE_UINT)
			snprintf(pid, sizeof(pid), "%llu", (unsigned long long)
			    value_uint(value_get(m, "pid"), 0));
		snprintf(infl, sizeof(infl), "%llu", (unsigned long long)
		    value_uint(value_get(m, "in_flight"), 0));
		snprintf(q, sizeof(q), "%llu", (unsigned long long)
		    value_uint(value_get(m, "queue_depth"), 0));
		snprintf(rs, sizeof(rs), "%llu", (unsigned long long)
		    value_uint(value_get(m, "restarts"), 0));
		x = value_get(m, "last_used_ms_ago");
		output_ago(x != NULL && x->kind == VALUE_UINT ? (int64_t)x->u :
		    -1, used, sizeof(used));
		x = value_get(m, "ttl_remaining_s");
		output_left(x != NULL && x->kind == VALUE_UINT ?
		    (int64_t)x->u * 1000 : -1, ttl, sizeof(ttl));
		note[0] = '\0';
		if (value_bool(value_get(m, "crash_loop")))
			snprintf(note, sizeof(note), "crash loop");
		else if (value_str(value_get(m, "phase"), NULL) != NULL)
			snprintf(note, sizeof(note), "phase %s",
			    value_str(value_get(m, "phase"), ""));
		else if (value_str(value_get(m, "last_error"), NULL) != NULL) {
			snprintf(note, sizeof(note), "%.80s",
			    value_str(value_get(m, "last_error"), ""));
			for (char *p = note; *p != '\0'; p++)
				if (*p == '\n')
					*p = ' ';
		}
		table_add(t, value_key(models, i),
		    value_str(value_get(m, "state"), "?"),
		    value_str(value_get(m, "process_state"), "?"), evs, port,
		    pid, infl, q, rs, used, ttl, note);
	}
	table_print(t);
	table_free(t);
	gpuout_status(value_get(r.v, "gpus"));
	call_reply_free(&r);
	return (CTL_EXIT_OK);
}

static int
verb_models(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply	 r;
	const struct value	*models, *m, *ev, *al;
	struct table		*t;
	char			 port[16], evs[64], aliases[512];
	size_t			 o;
	int			 rc;

	if ((rc = call_run(ctl, "models", PROTO_CTL_MODELS, NULL, &r)) != 0)
		return (rc);
	if (ctl->json || r.status != 200 || r.v == NULL) {
		rc = call_result(ctl, &r);
		call_reply_free(&r);
		return (rc);
	}
	t = table_new(6, "MODEL", "PORT", "EVICTION", "STATE", "ALIASES",
	    "PATH");
	models = value_get(r.v, "models");
	for (size_t i = 0; models != NULL && i < models->n; i++) {
		m = value_at(models, i);
		ev = value_get(m, "eviction");
		verbs_eviction_text(ev, evs, sizeof(evs));
		snprintf(port, sizeof(port), "%llu", (unsigned long long)
		    value_uint(value_get(m, "port"), 0));
		al = value_get(m, "aliases");
		aliases[0] = '\0';
		o = 0;
		for (size_t j = 0; al != NULL && j < al->n; j++)
			o += (size_t)snprintf(aliases + o, o < sizeof(aliases) ?
			    sizeof(aliases) - o : 0, "%s%s", j ? "," : "",
			    value_str(value_at(al, j), "?"));
		table_add(t, value_str(value_get(m, "name"), "?"), port, evs,
		    value_str(value_get(m, "state"), "?"), aliases,
		    value_str(value_get(m, "model_path"), "?"));
	}
	table_print(t);
	table_free(t);
	call_reply_free(&r);
	return (CTL_EXIT_OK);
}

static int
verbs_model_call(struct ctl *ctl, const char *verb, enum proto_type type,
    char *model)
{
	struct proto_call	call;

	memset(&call, 0, sizeof(call));
	call.model = model;
	return (call_simple(ctl, verb, type, &call));
}

static int
verb_switch(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_model_call(ctl, "switch", PROTO_CTL_SWITCH, argv[0]));
}

static int
verb_pin(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_model_call(ctl, "pin", PROTO_CTL_PIN, argv[0]));
}

static int
verb_unpin(struct ctl *ctl, int argc, char **argv)
{
	return (call_simple(ctl, "unpin", PROTO_CTL_UNPIN, NULL));
}

static int
verb_mode(struct ctl *ctl, int argc, char **argv)
{
	struct proto_call	call;

	if (strcmp(argv[0], "auto") != 0 && strcmp(argv[0], "manual") != 0)
		return (verbs_usage_line(verbs_find("mode")));
	memset(&call, 0, sizeof(call));
	call.mode = argv[0];
	return (call_simple(ctl, "mode", PROTO_CTL_MODE, &call));
}

/* MODEL [--eviction W+P] (and for checkpoint, [--no-warmup]). */
static int
verbs_eviction_call(struct ctl *ctl, const char *verb, enum proto_type type,
    int argc, char **argv)
{
	const struct ctl_verb	*v = verbs_find(verb);
	struct proto_call	 call;
	const char		*s;
	int			 i, rc;

	memset(&call, 0, sizeof(call));
	call.model = argv[0];
	for (i = 1; i < argc; i++) {
		if (type == PROTO_CTL_CHECKPOINT &&
		    strcmp(argv[i], "--no-warmup") == 0) {
			call.no_warmup = true;
			continue;
		}
		if ((s = call_option("--eviction", argc, argv, &i)) == NULL)
			return (verbs_usage_line(v));
		if ((rc = call_eviction(v, s, &call.eviction)) != 0)
			return (rc);
		call.has_eviction = true;
	}
	return (call_simple(ctl, verb, type, &call));
}

static int
verb_sleep(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_eviction_call(ctl, "sleep", PROTO_CTL_SLEEP, argc, argv));
}

static int
verb_wake(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_model_call(ctl, "wake", PROTO_CTL_WAKE, argv[0]));
}

/*
 * Whether the supervisor's status shows MODEL with no process, at rest:
 * stopped (never started, or stopped) or failed.
 */
static bool
verbs_stopped(struct ctl *ctl, const char *model)
{
	struct ctl_reply	 r;
	const struct value	*m, *pid;
	const char		*state;
	bool			 stopped = false;

	if (call_run(ctl, "status", PROTO_CTL_STATUS, NULL, &r) != 0)
		return (false);
	if (r.status == 200 &&
	    (m = value_get(value_get(r.v, "models"), model)) != NULL) {
		pid = value_get(m, "pid");
		state = value_str(value_get(m, "state"), "");
		stopped = (pid == NULL || pid->kind == VALUE_NIL) &&
		    (strcmp(state, "stopped") == 0 ||
		    strcmp(state, "failed") == 0);
	}
	call_reply_free(&r);
	return (stopped);
}

static int
verbs_stop_one(struct ctl *ctl, struct proto_call *call)
{
	struct ctl_reply	r;
	int			rc;

	if ((rc = call_run(ctl, "stop", PROTO_CTL_SLEEP, call, &r)) != 0)
		return (rc);
	if (!ctl->json && r.status == 200) {
		printf("Model %s stopped\n", call->model);
		call_phases(r.v);
		rc = CTL_EXIT_OK;
	} else if (r.status != 200 && verbs_stopped(ctl, call->model)) {
		/*
		 * As `systemctl stop`: a model that has no process is
		 * stopped already, which is what was asked.
		 */
		output_message("%s", value_str(value_get(r.v, "error"),
		    "Model is not running"));
		rc = CTL_EXIT_OK;
	} else
		rc = call_result(ctl, &r);
	call_reply_free(&r);
	return (rc);
}

/* Stop = sleep with retain+stop; --all does it for every model with a
 * process. */
static int
verb_stop(struct ctl *ctl, int argc, char **argv)
{
	struct proto_call	 call;
	struct ctl_reply	 r;
	const struct value	*models, *m, *pid;
	int			 rc, worst = CTL_EXIT_OK;

	memset(&call, 0, sizeof(call));
	call.has_eviction = true;
	call.eviction = (struct eviction){ WEIGHTS_RETAIN, PROCESS_STOP };
	if (strcmp(argv[0], "--all") != 0) {
		if (argv[0][0] == '-')
			return (verbs_usage_line(verbs_find("stop")));
		call.model = argv[0];
		return (verbs_stop_one(ctl, &call));
	}
	if ((rc = call_run(ctl, "status", PROTO_CTL_STATUS, NULL, &r)) != 0)
		return (rc);
	if (r.status != 200) {
		rc = call_result(ctl, &r);
		call_reply_free(&r);
		return (rc);
	}
	models = value_get(r.v, "models");
	for (size_t i = 0; models != NULL && i < models->n; i++) {
		m = value_at(models, i);
		pid = value_get(m, "pid");
		if (pid == NULL || pid->kind != VALUE_UINT)
			continue;
		call.model = (char *)value_key(models, i);
		if ((rc = verbs_stop_one(ctl, &call)) > worst)
			worst = rc;
	}
	call_reply_free(&r);
	return (worst);
}

static int
verb_eviction(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_verb	*v = verbs_find("eviction");
	struct proto_call	 call;
	struct ctl_reply	 r;
	const struct value	*models, *m, *ev;
	struct table		*t;
	char			 evs[64];
	int			 rc;

	if (argc == 1)
		return (verbs_usage_line(v));
	if (argc == 2) {
		memset(&call, 0, sizeof(call));
		call.model = argv[0];
		if ((rc = call_eviction(v, argv[1], &call.eviction)) !=
		    0)
			return (rc);
		call.has_eviction = true;
		return (call_simple(ctl, "eviction", PROTO_CTL_EVICTION_SET,
		    &call));
	}
	if ((rc = call_run(ctl, "eviction", PROTO_CTL_EVICTION_GET, NULL,
	    &r)) != 0)
		return (rc);
	if (ctl->json || r.status != 200 || r.v == NULL) {
		rc = call_result(ctl, &r);
		call_reply_free(&r);
		return (rc);
	}
	t = table_new(3, "MODEL", "EVICTION", "PROCESS");
	models = value_get(r.v, "models");
	for (size_t i = 0; models != NULL && i < models->n; i++) {
		m = value_at(models, i);
		ev = value_get(m, "eviction");
		verbs_eviction_text(ev, evs, sizeof(evs));
		table_add(t, value_key(models, i), evs,
		    value_str(value_get(m, "process_state"), "?"));
	}
	table_print(t);
	table_free(t);
	call_reply_free(&r);
	return (CTL_EXIT_OK);
}

static int
verb_checkpoint(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_eviction_call(ctl, "checkpoint", PROTO_CTL_CHECKPOINT,
	    argc, argv));
}

static int
verb_restore(struct ctl *ctl, int argc, char **argv)
{
	return (verbs_model_call(ctl, "restore", PROTO_CTL_RESTORE, argv[0]));
}

/* llmux 0.7's table: eviction, sleep and wake time, GPU MiB, match, pass. */
static void
verbs_validate_table(const struct value *results)
{
	static const char	*mem[] = { "gpu_mib_before", "gpu_mib_asleep",
				    "gpu_mib_awake" };
	const struct value	*row, *x;
	struct table		*t;
	char			 s[32], w[32], g[3][24];

	if (results == NULL || results->n == 0)
		return;
	t = table_new(9, "EVICTION", "SLEEP", "WAKE", "GPU_MIB_BEFORE",
	    "ASLEEP", "AWAKE", "MATCH", "PASS", "ERROR");
	for (size_t i = 0; i < results->n; i++) {
		row = value_at(results, i);
		output_duration(value_uint(value_get(row, "sleep_ms"), 0), s,
		    sizeof(s));
		output_duration(value_uint(value_get(row, "wake_ms"), 0), w,
		    sizeof(w));
		for (int k = 0; k < 3; k++) {
			x = value_get(row, mem[k]);
			if (x != NULL && x->kind == VALUE_UINT)
				snprintf(g[k], sizeof(g[k]), "%llu",
				    (unsigned long long)x->u);
			else
				snprintf(g[k], sizeof(g[k]), "-");
		}
		table_add(t, value_str(value_get(row, "eviction"), "?"), s, w,
		    g[0], g[1], g[2], value_bool(value_get(row,
		    "response_match")) ? "yes" : "no", value_bool(value_get(row,
		    "pass")) ? "PASS" : "FAIL", value_str(value_get(row,
		    "error"), NULL));
	}
	table_print(t);
	table_free(t);
}

static int
verb_validate(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_verb	*v = verbs_find("validate");
	struct proto_call	 call;
	struct ctl_reply	 r;
	struct eviction		 e;
	char			*list = NULL, *p, *save = NULL, **pol = NULL;
	const char		*s;
	size_t			 n = 0;
	int			 i, rc;

	memset(&call, 0, sizeof(call));
	call.model = argv[0];
	for (i = 1; i < argc; i++) {
		if ((s = call_option("--policies", argc, argv, &i)) == NULL)
			return (verbs_usage_line(v));
		free(list);
		list = xstrdup(s);
	}
	for (p = list != NULL ? strtok_r(list, ",", &save) : NULL; p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		if ((rc = call_eviction(v, p, &e)) != 0) {
			free(pol);
			free(list);
			return (rc);
		}
		pol = xreallocarray(pol, n + 1, sizeof(*pol));
		pol[n++] = p;
	}
	call.policies.v = pol;
	call.policies.n = n;
	rc = call_run(ctl, "validate", PROTO_CTL_VALIDATE, &call, &r);
	free(pol);
	free(list);
	if (rc != 0)
		return (rc);
	rc = call_result(ctl, &r);
	if (!ctl->json) {
		verbs_validate_table(value_get(r.v, "results"));
		gpuout_validate_phases(value_get(r.v, "results"));
	}
	call_reply_free(&r);
	return (rc);
}

static int
verb_reload(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply	 r;
	const struct value	*l;
	static const char	*lists[] = { "added", "removed", "changed" };
	int			 rc;

	if ((rc = call_run(ctl, "reload", PROTO_CTL_RELOAD, NULL, &r)) != 0)
		return (rc);
	rc = call_result(ctl, &r);
	if (!ctl->json && r.v != NULL) {
		l = value_get(r.v, "errors");
		for (size_t i = 0; l != NULL && i < l->n; i++)
			fprintf(stderr, "%s\n", value_str(value_at(l, i), "?"));
		for (size_t k = 0; k < 3; k++) {
			l = value_get(r.v, lists[k]);
			if (l == NULL || l->n == 0)
				continue;
			printf("  %s:", lists[k]);
			for (size_t i = 0; i < l->n; i++)
				printf(" %s", value_str(value_at(l, i), "?"));
			printf("\n");
		}
	}
	call_reply_free(&r);
	return (rc);
}

static int
verb_logs(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_verb	*v = verbs_find("logs");
	struct proto_call	 call;
	struct ctl_reply	 r;
	const char		*s;
	char			*end;
	long			 n;
	int			 i, rc;

	memset(&call, 0, sizeof(call));
	call.model = argv[0];
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 ||
		    strcmp(argv[i], "--follow") == 0) {
			call.follow = true;
			continue;
		}
		if ((s = call_option("-n", argc, argv, &i)) == NULL &&
		    (s = call_option("--lines", argc, argv, &i)) == NULL)
			return (verbs_usage_line(v));
		n = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || n < 1 || n > 1000000)
			return (verbs_usage_line(v));
		call.lines = (uint32_t)n;
	}
	/* The log is printed as it comes; only a failure is reported. */
	if ((rc = call_run(ctl, "logs", PROTO_CTL_LOGS, &call, &r)) != 0)
		return (rc);
	rc = CTL_EXIT_OK;
	if (r.status != 200)
		rc = call_result(ctl, &r);
	call_reply_free(&r);
	return (rc);
}

static int
verb_metrics(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_reply	r;
	int			rc;

	if ((rc = call_run(ctl, "metrics", PROTO_CTL_METRICS, NULL, &r)) !=
	    0)
		return (rc);
	if (ctl->json || r.status != 200) {
		rc = call_result(ctl, &r);
		call_reply_free(&r);
		return (rc);
	}
	fputs(value_str(value_get(r.v, "text"), ""), stdout);
	call_reply_free(&r);
	return (CTL_EXIT_OK);
}

static int
verb_help(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_verb	*v;

	if (argc == 0) {
		verbs_usage(stdout);
		return (CTL_EXIT_OK);
	}
	if ((v = verbs_find(argv[0])) == NULL) {
		output_error("unknown command '%s'", argv[0]);
		return (CTL_EXIT_USAGE);
	}
	verbs_help(v);
	return (CTL_EXIT_OK);
}
