/*
 * validate.c -- the validate call (llmux 0.7's --validate): does a model
 * sleep and wake correctly with each of some evictions? The model is woken
 * and asked a deterministic question (temperature 0, fixed seed); then for
 * each eviction it is put to sleep, woken, and asked again, and the answer
 * must be the same (a completion's text; for a model that serves no
 * completions, an embedding model, the vector of the same text, in
 * base64: base/infer.c). Each row records the sleep and wake times and the
 * time of each of their phases, the GPU memory of the model's processes
 * before, asleep and awake (measured with NVML on a worker thread; null
 * where NVML is not available), whether the answer matched and whether
 * the eviction took place without escalating. Default evictions:
 * offload+keep_running and discard+keep_running, as in llmux 0.7 (Rust).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"
#include "supervisord/control/control.h"

struct validate_row {
	struct eviction	 ev;
	int64_t		 sleep_ms;
	int64_t		 wake_ms;
	bool		 has_mem[3];	/* before, asleep, awake */
	uint64_t	 mem[3];
	bool		 slept;		/* the eviction itself, not escalated */
	bool		 woke;
	bool		 match;
	char		*error;
	struct {
		bool		 wake;		/* else a sleep phase */
		enum evict_step	 step;
		int64_t		 ms;
		bool		 ok;
	}		 phases[2 * EVICT_MAX_PHASES];
	size_t		 nphases;
};

struct validate;
typedef void	(*validate_next_fn)(struct validate *, struct model *);

struct validate {
	struct ctl_call		*call;
	char			*model;
	struct validate_row	 rows[VALIDATE_MAX_POLICIES];
	size_t			 n;
	size_t			 i;
	char			*reference;
	struct infer_call	*http;
	int			 measuring;	/* which memory column */
	validate_next_fn	 after;		/* once it is measured */
};

static void	validate_row_start(struct validate *);

/* Progress of the sleeps and wakes, on the call's id. */
static void
validate_progress_cb(struct model *m, const char *phase, int64_t elapsed,
    const char *detail, void *arg)
{
	struct validate	*v = arg;

	call_progress_cb(m, phase, elapsed, detail, v->call);
}

static void
validate_free(struct validate *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->rows[i].error);
	free(v->reference);
	free(v->model);
	free(v);
}

static void
validate_fail(struct validate *v, int status, const char *fmt, const char *why)
{
	call_done(v->call, status, body_message("error", fmt, why));
	validate_free(v);
}

/*
 * The JSON string at the first key that has one in body, still escaped;
 * NULL if there is none. key is quoted; the same word as a value (as in
 * "object":"embedding") is passed over.
 */
static char *
validate_string_at(const char *body, size_t len, const char *key)
{
	const char	*p = body, *end = body + len, *s;
	size_t		 klen = strlen(key);

	while ((p = memmem(p, (size_t)(end - p), key, klen)) != NULL) {
		for (p += klen; p < end && *p == ' '; p++)
			;
		if (p >= end || *p != ':')
			continue;
		for (p++; p < end && *p == ' '; p++)
			;
		if (p >= end || *p != '"')
			return (NULL);
		for (s = ++p; p < end && *p != '"'; p++)
			if (*p == '\\' && p + 1 < end)
				p++;
		if (p >= end)
			return (NULL);
		return (xstrndup(s, (size_t)(p - s)));
	}
	return (NULL);
}

/*
 * What is compared: the "text" of a completion reply, else the base64
 * "embedding" of an embedding reply; still escaped, or NULL.
 */
char *
validate_text(const char *body, size_t len)
{
	char	*t;

	if ((t = validate_string_at(body, len, "\"text\"")) != NULL)
		return (t);
	return (validate_string_at(body, len, "\"embedding\""));
}

static struct model	*validate_model(struct validate *);

static void
validate_mem_cb(bool ok, uint64_t mib, void *arg)
{
	struct validate		*v = arg;
	struct validate_row	*r = &v->rows[v->i];
	struct model		*m;

	r->has_mem[v->measuring] = ok;
	r->mem[v->measuring] = mib;
	if ((m = validate_model(v)) == NULL)
		return;
	v->after(v, m);
}

/* Measure the model's GPU memory into column which, then go on. */
static void
validate_mem(struct validate *v, struct model *m, int which,
    validate_next_fn after)
{
	pid_t	pids[GPU_MAX_PROCS];
	size_t	n = 0;

	v->measuring = which;
	v->after = after;
	if (m->proc != NULL && !m->proc->exited)
		n = process_members(m->proc, pids, GPU_MAX_PROCS);
	gpu_measure(m, pids, n, validate_mem_cb, v);
}

static void
validate_phases(struct validate_row *r, const struct evict_report *rep,
    bool wake)
{
	for (size_t i = 0; i < rep->n_phases && r->nphases <
	    sizeof(r->phases) / sizeof(r->phases[0]); i++) {
		r->phases[r->nphases].wake = wake;
		r->phases[r->nphases].step = rep->phases[i].step;
		r->phases[r->nphases].ms = rep->phases[i].ms;
		r->phases[r->nphases].ok = rep->phases[i].ok;
		r->nphases++;
	}
}

static struct model *
validate_model(struct validate *v)
{
	struct model	*m = model_find(v->call->sup, v->model);

	if (m == NULL)
		validate_fail(v, 500, "%s", "the model was removed");
	return (m);
}

/* POST the question; cb gets the answer. */
static void
validate_ask(struct validate *v, struct model *m, httpc_cb cb)
{
	call_progress_cb(m, "request", 0, "POST /v1/completions", v->call);
	v->http = infer_request(m->sup->base, m->proc->port,
	    m->cfg != NULL ? spawn_served_name(m->cfg) : m->name,
	    VALIDATE_PROMPT, VALIDATE_TOKENS, VALIDATE_REQUEST_TIMEOUT_MS, cb,
	    v);
}

static void
validate_finish(struct validate *v)
{
	struct body	*b = body_new();
	size_t		 passed = 0;
	char		 ev[64];
	static const char *mem_keys[] = { "gpu_mib_before", "gpu_mib_asleep",
			    "gpu_mib_awake" };

	for (size_t i = 0; i < v->n; i++)
		if (v->rows[i].slept && v->rows[i].woke && v->rows[i].match)
			passed++;
	body_map(b, 3);
	if (passed == v->n)
		body_str(b, "message");
	else
		body_str(b, "error");
	{
		char	*text;

		xasprintf(&text, "Model %s: %zu of %zu evictions passed",
		    v->model, passed, v->n);
		body_str(b, text);
		free(text);
	}
	body_kstr(b, "model", v->model);
	body_str(b, "results");
	body_array(b, v->n);
	for (size_t i = 0; i < v->n; i++) {
		struct validate_row	*r = &v->rows[i];

		body_map(b, 11);
		body_kstr(b, "eviction", eviction_format(&r->ev, ev,
		    sizeof(ev)));
		body_kuint(b, "sleep_ms", (uint64_t)r->sleep_ms);
		body_kuint(b, "wake_ms", (uint64_t)r->wake_ms);
		for (int k = 0; k < 3; k++) {
			body_str(b, mem_keys[k]);
			if (r->has_mem[k])
				body_uint(b, r->mem[k]);
			else
				body_nil(b);
		}
		body_kbool(b, "response_match", r->match);
		body_kbool(b, "pass", r->slept && r->woke && r->match);
		body_kstr(b, "error", r->error);
		body_str(b, "woke");
		body_bool(b, r->woke);
		body_str(b, "phases");
		body_array(b, r->nphases);
		for (size_t k = 0; k < r->nphases; k++) {
			body_map(b, 4);
			body_kstr(b, "op", r->phases[k].wake ? "wake" : "sleep");
			body_kstr(b, "phase", evict_step_name(r->phases[k].step));
			body_kuint(b, "ms", (uint64_t)r->phases[k].ms);
			body_kbool(b, "ok", r->phases[k].ok);
		}
	}
	log_info("validate done model=%s passed=%zu of=%zu", v->model, passed,
	    v->n);
	call_done(v->call, passed == v->n ? 200 : 500, b);
	validate_free(v);
}

static void
validate_next(struct validate *v)
{
	v->i++;
	if (v->i >= v->n)
		validate_finish(v);
	else
		validate_row_start(v);
}

static void
validate_row_error(struct validate_row *r, const char *what, const char *why)
{
	if (r->error == NULL)
		xasprintf(&r->error, "%s: %s", what, why != NULL ? why : "?");
}

static void
validate_answered(struct validate *v, struct model *m)
{
	validate_next(v);
}

static void
validate_answer_cb(const struct httpc_result *res, void *arg)
{
	struct validate		*v = arg;
	struct validate_row	*r = &v->rows[v->i];
	struct model		*m;
	char			*text;

	v->http = NULL;
	if ((m = validate_model(v)) == NULL)
		return;
	if (res->status != 200)
		validate_row_error(r, "the request after waking failed",
		    res->status != 0 ? "the model did not answer 200" :
		    res->error);
	else {
		text = validate_text(res->body, res->body_len);
		r->match = text != NULL && strcmp(text, v->reference) == 0;
		if (!r->match)
			validate_row_error(r, "response", "differs from the "
			    "one before sleeping");
		free(text);
	}
	validate_mem(v, m, 2, validate_answered);
}

static void
validate_woken_cb(struct model *m, const struct evict_report *rep, void *arg)
{
	struct validate		*v = arg;
	struct validate_row	*r = &v->rows[v->i];

	r->wake_ms = rep->total_ms;
	r->woke = rep->result != EVICT_FAILED;
	validate_phases(r, rep, true);
	if (!r->woke) {
		validate_row_error(r, "wake", rep->reason);
		validate_next(v);
		return;
	}
	validate_ask(v, m, validate_answer_cb);
}

static void
validate_wake(struct validate *v, struct model *m)
{
	struct validate_row	*r = &v->rows[v->i];
	char			 err[256];

	if (evict_wake(m, validate_woken_cb, validate_progress_cb, v, err,
	    sizeof(err)) != 0) {
		validate_row_error(r, "wake", err);
		validate_next(v);
	}
}

static void
validate_slept_cb(struct model *m, const struct evict_report *rep, void *arg)
{
	struct validate		*v = arg;
	struct validate_row	*r = &v->rows[v->i];

	r->sleep_ms = rep->total_ms;
	r->slept = rep->result == EVICT_OK;
	validate_phases(r, rep, false);
	if (!r->slept)
		validate_row_error(r, rep->result == EVICT_ESCALATED ?
		    "sleep escalated to stop" : "sleep", rep->reason);
	validate_mem(v, m, 1, validate_wake);
}

static void
validate_sleep(struct validate *v, struct model *m)
{
	struct validate_row	*r = &v->rows[v->i];
	char			 err[256];

	if (evict_sleep(m, &r->ev, validate_slept_cb, validate_progress_cb, v,
	    err, sizeof(err)) != 0) {
		validate_row_error(r, "sleep", err);
		validate_next(v);
	}
}

static void
validate_row_start(struct validate *v)
{
	struct validate_row	*r = &v->rows[v->i];
	struct model		*m;

	if ((m = validate_model(v)) == NULL)
		return;
	if (m->pstate != MODEL_RUNNING || m->proc == NULL) {
		validate_row_error(r, "sleep", "the model is not running");
		validate_next(v);
		return;
	}
	validate_mem(v, m, 0, validate_sleep);
}

static void
validate_reference_cb(const struct httpc_result *res, void *arg)
{
	struct validate	*v = arg;

	v->http = NULL;
	if (res->status != 200) {
		validate_fail(v, 500, "the model did not answer the test "
		    "request: %s", res->status != 0 ? "it answered an error" :
		    res->error);
		return;
	}
	if ((v->reference = validate_text(res->body, res->body_len)) ==
	    NULL) {
		validate_fail(v, 500, "%s", "the model's answer has no text");
		return;
	}
	validate_row_start(v);
}

static void
validate_first_wake_cb(struct model *m, const struct evict_report *rep,
    void *arg)
{
	struct validate	*v = arg;

	if (rep->result == EVICT_FAILED) {
		validate_fail(v, 500, "Failed to wake model: %s", rep->reason);
		return;
	}
	validate_ask(v, m, validate_reference_cb);
}

static void
validate_call(struct ctl_call *call, struct model *m,
    const struct proto_strlist *policies)
{
	struct validate	*v;
	char		 err[256];

	v = xcalloc(1, sizeof(*v));
	v->call = call;
	v->model = xstrdup(m->name);
	for (size_t i = 0; i < policies->n && v->n < VALIDATE_MAX_POLICIES;
	    i++)
		if (eviction_parse(policies->v[i], &v->rows[v->n].ev) == 0)
			v->n++;
	if (v->n == 0) {
		v->rows[0].ev = (struct eviction){ WEIGHTS_OFFLOAD,
		    PROCESS_KEEP_RUNNING };
		v->rows[1].ev = (struct eviction){ WEIGHTS_DISCARD,
		    PROCESS_KEEP_RUNNING };
		v->n = 2;
	}
	log_info("validate begins model=%s evictions=%zu", m->name, v->n);
	if (evict_wake(m, validate_first_wake_cb, validate_progress_cb, v, err,
	    sizeof(err)) != 0) {
		call_done(call, 409, body_message("error", "%s", err));
		validate_free(v);
	}
}

/* The switcher woke the model for this call: validate it now. */
static void
validate_woken(struct ctl_call *call, struct model *m)
{
	struct proto_strlist	pl;

	pl.v = call->policies;
	pl.n = call->n_policies;
	validate_call(call, m, &pl);
}

/* The validate call: at once if the model is awake, else once the
 * switcher has woken it, making room for it (order_begin). */
void
validate_begin(struct client *c, struct proto_msg *msg, struct model *m)
{
	struct supervisor	*sup = c->sup;
	struct ctl_call		*call;
	int			 i = switching_index(sup, m);

	call = call_new(c, msg, m->name);
	/* Awake already: validate it as it is. */
	if (i < 0 || (switcher_model_state(sup->switcher, i) == SWM_ACTIVE &&
	    m->pstate == MODEL_RUNNING)) {
		validate_call(call, m, &msg->u.call.policies);
		return;
	}
	/* Else the switcher wakes it first, making room for it. */
	call->n_policies = msg->u.call.policies.n;
	call->policies = xcalloc(call->n_policies + 1, sizeof(char *));
	for (size_t k = 0; k < call->n_policies; k++)
		call->policies[k] = xstrdup(msg->u.call.policies.v[k]);
	call->then = validate_woken;
	order_begin(sup, c, msg, m, call);
}
