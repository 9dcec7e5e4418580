/*
 * dev.c -- the routes vLLM serves only with VLLM_SERVER_DEV_MODE=1
 * (/sleep, /wake_up, /is_sleeping, /collective_rpc, /reset_prefix_cache),
 * answered as vLLM answers them, and our own /fake/state and /fake/faults
 * for tests (with dev mode or --fake-admin). Without the switch these
 * paths are unknown (404), as in vLLM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include "fv_evhtp.h"
#include <yajl/yajl_tree.h>

#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

struct dev_call {
	struct fv_idnode	 node;		/* first: found by id */
	evhtp_request_t		*req;		/* NULL once the client left */
	int64_t			 t0;
	int			 op;
};

static void
dev_call_gone(void *arg)
{
	struct dev_call	*c = arg;

	fv_server_access(c->req, c->t0, 499);
	c->req = NULL;	/* the engine's reply will find nobody */
}

/* Send a call to the engine; the reply comes back through fv_dev_reply. */
static void
dev_call(evhtp_request_t *req, int64_t t0, int op, int64_t a, int64_t b)
{
	struct dev_call	*c = xcalloc(1, sizeof(*c));
	struct fv_msg	 m;

	c->req = req;
	c->t0 = t0;
	c->op = op;
	memset(&m, 0, sizeof(m));
	m.type = FV_MSG_CALL;
	m.op = (uint16_t)op;
	m.id = ++fv_server.next_id;
	m.a = a;
	m.b = b;
	fv_idmap_add(&fv_server.calls, &c->node, m.id);
	fv_server_watch(req, dev_call_gone, c);
	fv_channel_to_engine(&m, NULL);
}

static const char *
dev_op_name(int op)
{
	switch (op) {
	case FV_CALL_SLEEP:
		return ("sleep");
	case FV_CALL_WAKE:
		return ("wake_up");
	case FV_CALL_IS_SLEEPING:
		return ("is_sleeping");
	case FV_CALL_RELOAD:
		return ("reload_weights");
	case FV_CALL_SUSPEND_NCCL:
		return ("suspend_nccl");
	case FV_CALL_RESUME_NCCL:
		return ("resume_nccl");
	case FV_CALL_RESET_PREFIX:
		return ("reset_prefix_cache");
	default:
		return ("unknown");
	}
}

/* The engine answered a call. */
void
fv_dev_reply(const struct fv_msg *m, const char *data)
{
	struct dev_call	*c;
	struct evbuffer	*b;
	int		 status = (int)m->a, i;

	if ((c = (struct dev_call *)fv_idmap_find(&fv_server.calls,
	    m->id)) == NULL)
		return;
	fv_idmap_remove(&fv_server.calls, &c->node);
	if (c->req == NULL) {
		free(c);
		return;
	}
	fv_server_unwatch(c->req);
	if (status != 200) {
		fv_server_error(c->req, c->t0, status, status == 400 ?
		    "BadRequestError" : status == 503 ?
		    "ServiceUnavailableError" : "InternalServerError", NULL,
		    "%s", m->len > 0 ? data : "engine call failed");
		free(c);
		return;
	}
	b = evbuffer_new();
	switch (c->op) {
	case FV_CALL_SLEEP:
	case FV_CALL_WAKE:
		log_info("%s done", dev_op_name(c->op));
		break;
	case FV_CALL_IS_SLEEPING:
		evbuffer_add_printf(b, "{\"is_sleeping\":%s}",
		    m->b ? "true" : "false");
		break;
	case FV_CALL_RESET_PREFIX:
		evbuffer_add_printf(b, "{\"success\":%s}",
		    m->b ? "true" : "false");
		break;
	default:
		/* collective_rpc: one result per worker (tensor rank). */
		evbuffer_add_printf(b, "{\"results\":[");
		for (i = 0; i < fv_server.opts->tp; i++)
			evbuffer_add_printf(b, "%snull", i ? "," : "");
		evbuffer_add_printf(b, "]}");
		break;
	}
	fv_server_reply(c->req, c->t0, 200, evbuffer_get_length(b) > 0 ?
	    "application/json" : NULL, b);
	evbuffer_free(b);
	free(c);
}

/* The engine died: answer every call in flight with 500. */
void
fv_dev_fail_all(const char *msg)
{
	struct dev_call	*c;
	evhtp_request_t	*req;

	while ((c = (struct dev_call *)fv_idmap_any(&fv_server.calls)) !=
	    NULL) {
		fv_idmap_remove(&fv_server.calls, &c->node);
		if ((req = c->req) != NULL) {
			fv_server_unwatch(req);
			fv_server_error(req, c->t0, 500, "InternalServerError",
			    NULL, "%s", msg);
			fv_server_flush_request(req);
		}
		free(c);
	}
}

static void
dev_sleep(evhtp_request_t *req, int64_t t0)
{
	char	level[32], mode[32];
	int	lv, md, rc;

	if ((rc = fv_server_query(req, "level", 0, level, sizeof(level))) == 0)
		snprintf(level, sizeof(level), "1");
	if (rc < 0 || (strcmp(level, "0") != 0 && strcmp(level, "1") != 0 &&
	    strcmp(level, "2") != 0)) {
		fv_server_error(req, t0, 400, "BadRequestError", "level",
		    "invalid sleep level '%s' (expected 0, 1 or 2)",
		    rc < 0 ? "(too long)" : level);
		return;
	}
	lv = level[0] - '0';
	if ((rc = fv_server_query(req, "mode", 0, mode, sizeof(mode))) == 0)
		snprintf(mode, sizeof(mode), "abort");
	if (rc > 0 && strcmp(mode, "abort") == 0)
		md = FV_MODE_ABORT;
	else if (rc > 0 && strcmp(mode, "wait") == 0)
		md = FV_MODE_WAIT;
	else if (rc > 0 && strcmp(mode, "keep") == 0)
		md = FV_MODE_KEEP;
	else if (rc == 0)
		md = FV_MODE_ABORT;
	else {
		fv_server_error(req, t0, 400, "BadRequestError", "mode",
		    "Invalid pause mode: %s", rc < 0 ? "(too long)" : mode);
		return;
	}
	if (lv > 0 && !fv_server.opts->sleep_mode) {
		fv_server_error(req, t0, 400, "BadRequestError", NULL,
		    "Sleep mode is not enabled; start the server with "
		    "--enable-sleep-mode");
		return;
	}
	log_info("sleep level=%d mode=%s", lv, md == FV_MODE_ABORT ? "abort" :
	    md == FV_MODE_WAIT ? "wait" : "keep");
	dev_call(req, t0, FV_CALL_SLEEP, lv, md);
}

static void
dev_wake(evhtp_request_t *req, int64_t t0)
{
	char	tag[64];
	int	i, rc, mask = 0, given = 0;

	for (i = 0; (rc = fv_server_query(req, "tags", i, tag,
	    sizeof(tag))) != 0; i++) {
		given = 1;
		if (rc > 0 && strcmp(tag, "weights") == 0)
			mask |= FV_TAG_WEIGHTS;
		else if (rc > 0 && strcmp(tag, "kv_cache") == 0)
			mask |= FV_TAG_KV;
		else if (rc > 0 && strcmp(tag, "scheduling") == 0)
			mask |= FV_TAG_SCHED;
		else
			log_warnx("wake_up: ignoring unknown tag tag=%s",
			    rc > 0 ? tag : "(too long)");
	}
	if (!given)
		mask = FV_TAG_ALL;
	log_info("wake up the engine with tags: %s%s%s%s",
	    mask & FV_TAG_ALL ? "None" : "",
	    mask & FV_TAG_WEIGHTS ? "weights " : "",
	    mask & FV_TAG_KV ? "kv_cache " : "",
	    mask & FV_TAG_SCHED ? "scheduling" : "");
	dev_call(req, t0, FV_CALL_WAKE, mask, 0);
}

/* Parse a small JSON body; sends the 400 itself on failure. */
static yajl_val
dev_json(evhtp_request_t *req, int64_t t0)
{
	yajl_val	 root;
	const char	*body;
	char		*text, err[256];
	size_t		 len;

	body = fv_server_body(req, &len);
	if (len > 1024 * 1024 || memchr(body, '\0', len) != NULL ||
	    !fv_json_depth_ok(body, len, FV_JSON_DEPTH)) {
		fv_server_error(req, t0, 400, "Bad Request", NULL,
		    "JSON decode error: invalid request body");
		return (NULL);
	}
	text = xmalloc(len + 1);
	memcpy(text, body, len);
	text[len] = '\0';
	err[0] = '\0';
	root = yajl_tree_parse(text, err, sizeof(err));
	free(text);
	if (root == NULL) {
		err[strcspn(err, "\n")] = '\0';
		fv_server_error(req, t0, 400, "Bad Request", NULL,
		    "JSON decode error: %s", err[0] != '\0' ? err :
		    "invalid JSON");
		return (NULL);
	}
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		fv_server_error(req, t0, 400, "Bad Request", NULL,
		    "the request body must be a JSON object");
		return (NULL);
	}
	return (root);
}

static yajl_val
dev_get(yajl_val obj, const char *key)
{
	size_t	i;

	for (i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return (obj->u.object.values[i]);
	return (NULL);
}

static void
dev_rpc(evhtp_request_t *req, int64_t t0)
{
	yajl_val	 root, method;
	const char	*name;
	int		 op;

	if ((root = dev_json(req, t0)) == NULL)
		return;
	method = dev_get(root, "method");
	if (method == NULL || YAJL_IS_NULL(method)) {
		yajl_tree_free(root);
		fv_server_error(req, t0, 400, "Bad Request", NULL,
		    "Missing 'method' in request body");
		return;
	}
	if (!YAJL_IS_STRING(method)) {
		yajl_tree_free(root);
		fv_server_error(req, t0, 400, "Bad Request", NULL,
		    "'method' must be a string");
		return;
	}
	name = method->u.string;
	if (strcmp(name, "reload_weights") == 0)
		op = FV_CALL_RELOAD;
	else if (strcmp(name, "suspend_nccl") == 0)
		op = FV_CALL_SUSPEND_NCCL;
	else if (strcmp(name, "resume_nccl") == 0)
		op = FV_CALL_RESUME_NCCL;
	else {
		fv_server_error(req, t0, 500, "InternalServerError", NULL,
		    "'Worker' object has no attribute '%s' (llmux-fakevllm "
		    "knows reload_weights, suspend_nccl, resume_nccl)", name);
		yajl_tree_free(root);
		return;
	}
	log_info("collective_rpc method=%s", name);
	yajl_tree_free(root);
	dev_call(req, t0, op, 0, 0);
}

static void
dev_reset_prefix(evhtp_request_t *req, int64_t t0)
{
	char	v[16];
	int	all = 0;

	if (fv_server_query(req, "reset_running_requests", 0, v,
	    sizeof(v)) > 0)
		all = (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
		    strcmp(v, "yes") == 0 || strcmp(v, "on") == 0);
	log_info("Resetting prefix cache...");
	dev_call(req, t0, FV_CALL_RESET_PREFIX, all, 0);
}

static void
dev_bool(struct evbuffer *b, const char *key, int v)
{
	evbuffer_add_printf(b, ",\"%s\":%s", key, v ? "true" : "false");
}

/* --fake-gpu cuda: the device memory and the weights' checks, or null. */
static void
dev_gpu_json(struct evbuffer *b, const struct fv_state *s)
{
	if (s->gpu_mode != FV_GPU_CUDA) {
		evbuffer_add_printf(b, ",\"gpu\":null");
		return;
	}
	evbuffer_add_printf(b, ",\"gpu\":{\"mode\":\"cuda\",\"device\":");
	fv_json_cstring(b, s->gpu_name);
	evbuffer_add_printf(b, ",\"total_bytes\":%lld,\"claim_bytes\":%lld,"
	    "\"weights_bytes\":%lld,\"kv_cache_bytes\":%lld,"
	    "\"device_bytes\":%lld,\"host_bytes\":%lld,"
	    "\"pattern_checks\":%lld,\"pattern_failures\":%lld,"
	    "\"last_sleep_ms\":%lld,\"last_wake_ms\":%lld,"
	    "\"last_reload_ms\":%lld,\"last_check_us\":%lld,"
	    "\"pattern_error\":", (long long)s->gpu_total,
	    (long long)s->gpu_claim, (long long)s->gpu_weights,
	    (long long)s->gpu_kv, (long long)s->gpu_device,
	    (long long)s->gpu_host, (long long)s->gpu_checks,
	    (long long)s->gpu_failures, (long long)s->gpu_sleep_ms,
	    (long long)s->gpu_wake_ms, (long long)s->gpu_reload_ms,
	    (long long)s->gpu_check_us);
	if (s->gpu_error[0] != '\0')
		fv_json_cstring(b, s->gpu_error);
	else
		evbuffer_add_printf(b, "null");
	evbuffer_add(b, "}", 1);
}

/* Everything a test may want to know, as one JSON object. */
void
fv_dev_state_json(struct evbuffer *b)
{
	const struct fv_state	*s = &fv_server.engine;
	struct fv_faults	 f = s->faults;
	pid_t			 epid = s->pid != 0 ? s->pid : getpid();
	int			 first = 1;

	f.count[FV_FAULT_HEALTH_500] = fv_server.faults.count[FV_FAULT_HEALTH_500];
	f.arg[FV_FAULT_HEALTH_500] = fv_server.faults.arg[FV_FAULT_HEALTH_500];
	evbuffer_add_printf(b, "{\"model\":");
	fv_json_cstring(b, fv_server.opts->names[0]);
	evbuffer_add_printf(b, ",\"pid\":%ld,\"engine_pid\":%ld",
	    (long)getpid(), (long)epid);
	dev_bool(b, "ready", s->ready);
	dev_bool(b, "is_sleeping", s->paused || s->tags != 0);
	dev_bool(b, "scheduler_paused", s->paused);
	evbuffer_add_printf(b, ",\"sleep_level\":%d,\"sleeping_tags\":[",
	    (int)s->level);
	if (s->tags & FV_TAG_WEIGHTS) {
		evbuffer_add_printf(b, "\"weights\"");
		first = 0;
	}
	if (s->tags & FV_TAG_KV)
		evbuffer_add_printf(b, "%s\"kv_cache\"", first ? "" : ",");
	evbuffer_add(b, "]", 1);
	dev_bool(b, "weights_loaded", !(s->tags & FV_TAG_WEIGHTS) &&
	    !s->discarded);
	dev_bool(b, "weights_discarded", s->discarded);
	dev_bool(b, "weights_mapped", s->mapped);
	evbuffer_add_printf(b, ",\"weights_mb\":%lld,\"rss_kb\":%ld",
	    (long long)fv_server.opts->weights_mb, fv_weights_rss_kb(epid));
	dev_bool(b, "nccl_suspended", s->nccl_suspended);
	dev_bool(b, "busy", s->busy);
	fv_visible_json(b);
	evbuffer_add_printf(b, ",\"requests_running\":%d,"
	    "\"requests_waiting\":%d,\"requests_frozen\":%d,"
	    "\"requests_stalled\":%d,\"engine_queue\":%d,"
	    "\"requests_served\":%llu,"
	    "\"requests_failed\":%llu,\"requests_in_flight\":%zu,"
	    "\"requests_aborted\":%lld,\"tokens_generated\":%lld,"
	    "\"sleeps\":%lld,\"wakes\":%lld,\"reloads\":%lld,"
	    "\"prefix_cache_resets\":%lld,\"http_requests\":%llu",
	    (int)s->running, (int)s->waiting, (int)s->frozen, (int)s->stalled,
	    (int)s->queued, (unsigned long long)fv_server.served,
	    (unsigned long long)fv_server.failed, fv_server.gens.n,
	    (long long)s->aborted, (long long)s->tokens, (long long)s->sleeps,
	    (long long)s->wakes, (long long)s->reloads,
	    (long long)s->prefix_resets,
	    (unsigned long long)fv_server.http_requests);
	dev_gpu_json(b, s);
	evbuffer_add_printf(b, ",\"faults\":");
	fv_faults_json(b, &f);
	evbuffer_add(b, "}", 1);
}

static void
dev_state(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer	*b = evbuffer_new();

	fv_dev_state_json(b);
	fv_server_reply(req, t0, 200, "application/json", b);
	evbuffer_free(b);
}

static void
dev_faults_get(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer		*b = evbuffer_new();
	struct fv_faults	 f = fv_server.engine.faults;

	f.count[FV_FAULT_HEALTH_500] = fv_server.faults.count[FV_FAULT_HEALTH_500];
	evbuffer_add_printf(b, "{\"faults\":");
	fv_faults_json(b, &f);
	evbuffer_add(b, "}", 1);
	fv_server_reply(req, t0, 200, "application/json", b);
	evbuffer_free(b);
}

/* Read an optional integer field of /fake/faults' body. */
static int
dev_int(yajl_val root, const char *key, int64_t min, int64_t max,
    int64_t *out)
{
	yajl_val	v;

	if ((v = dev_get(root, key)) == NULL || YAJL_IS_NULL(v))
		return (0);
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min ||
	    YAJL_GET_INTEGER(v) > max)
		return (-1);
	*out = YAJL_GET_INTEGER(v);
	return (1);
}

/* POST /fake/faults {"fault": NAME, "count": N, "arg"|"after": M}. */
static void
dev_faults_post(evhtp_request_t *req, int64_t t0)
{
	yajl_val	 root, name;
	struct evbuffer	*b;
	struct fv_msg	 m;
	int64_t		 count = 1, arg;
	int		 f;

	if ((root = dev_json(req, t0)) == NULL)
		return;
	name = dev_get(root, "fault");
	if (name == NULL || !YAJL_IS_STRING(name)) {
		yajl_tree_free(root);
		fv_server_error(req, t0, 400, "BadRequestError", "fault",
		    "'fault' must name a fault (or be \"clear\")");
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = FV_MSG_FAULT;
	b = evbuffer_new();
	if (strcmp(name->u.string, "clear") == 0) {
		memset(&fv_server.faults, 0, sizeof(fv_server.faults));
		m.op = FV_FAULT_MAX;
		fv_channel_to_engine(&m, NULL);
		log_info("faults cleared");
		evbuffer_add_printf(b, "{\"cleared\":true}");
		goto reply;
	}
	f = fv_faults_lookup(name->u.string);
	arg = fv_faults_default_arg(f);
	if (f == -1 || f == FV_FAULT_EXIT_STARTUP) {
		fv_server_error(req, t0, 400, "BadRequestError", "fault",
		    "unknown fault '%s'", name->u.string);
		goto out;
	}
	if (dev_int(root, "count", -1, 1000000, &count) < 0 ||
	    dev_int(root, "arg", 0, 1000000, &arg) < 0 ||
	    dev_int(root, "after", 0, 1000000, &arg) < 0) {
		fv_server_error(req, t0, 400, "BadRequestError", NULL,
		    "'count' must be an integer from -1 to 1000000, "
		    "'arg'/'after' from 0 to 1000000");
		goto out;
	}
	if (f == FV_FAULT_HEALTH_500)
		fv_faults_set(&fv_server.faults, f, (int32_t)count,
		    (int32_t)arg);
	else {
		m.op = (uint16_t)f;
		m.a = count;
		m.b = arg;
		fv_channel_to_engine(&m, NULL);
	}
	log_info("fault armed fault=%s count=%lld arg=%lld", fv_faults_name(f),
	    (long long)count, (long long)arg);
	evbuffer_add_printf(b, "{\"fault\":\"%s\",\"count\":%lld,\"arg\":%lld}",
	    fv_faults_name(f), (long long)count, (long long)arg);
reply:
	fv_server_reply(req, t0, 200, "application/json", b);
out:
	evbuffer_free(b);
	yajl_tree_free(root);
}

static void
dev_method_not_allowed(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add_printf(b, "{\"detail\":\"Method Not Allowed\"}");
	fv_server_reply(req, t0, 405, "application/json", b);
	evbuffer_free(b);
}

/* Route a dev or /fake/ path; returns 0 when the path is not ours. */
int
fv_dev_handle(evhtp_request_t *req, int64_t t0, const char *path, int method)
{
	int	get = (method == htp_method_GET), post = (method == htp_method_POST);
	int	dev = fv_server.dev_mode;
	int	admin = dev || fv_server.admin;

	if (dev && strcmp(path, "/sleep") == 0) {
		if (post)
			dev_sleep(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else if (dev && strcmp(path, "/wake_up") == 0) {
		if (post)
			dev_wake(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else if (dev && strcmp(path, "/is_sleeping") == 0) {
		if (get)
			dev_call(req, t0, FV_CALL_IS_SLEEPING, 0, 0);
		else
			dev_method_not_allowed(req, t0);
	} else if (dev && strcmp(path, "/collective_rpc") == 0) {
		if (post)
			dev_rpc(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else if (dev && strcmp(path, "/reset_prefix_cache") == 0) {
		if (post)
			dev_reset_prefix(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else if (admin && strcmp(path, "/fake/state") == 0) {
		if (get)
			dev_state(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else if (admin && strcmp(path, "/fake/faults") == 0) {
		if (get)
			dev_faults_get(req, t0);
		else if (post)
			dev_faults_post(req, t0);
		else
			dev_method_not_allowed(req, t0);
	} else
		return (0);
	return (1);
}
