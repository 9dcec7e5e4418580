/*
 * control.c -- the admin port (default 127.0.0.1:3001): llmux 0.7's
 * /control/... endpoints, each turned into one control call to the
 * supervisor whose reply (status and body) is passed through as JSON, so
 * the HTTP API and the socket cannot drift apart; GET /control/events,
 * the event stream (sse.c); GET /control/history, the last hour
 * (history.c); GET /control/logs, the tail of a model's log; the web page
 * (webui.c); and /metrics, the proxy's own metrics followed by the
 * supervisor's switch metrics.
 *
 * The admin port is bound only once the config has arrived, and never on
 * an address that is not loopback unless the config's admin_address says
 * so. Reading (status, models, eviction, metrics, history, events, the
 * web page) is open to whoever reaches the port; a call that changes
 * state, and a model's log (it may hold what clients sent), need the admin
 * token as a bearer token, and are forwarded saying so (authorized), which
 * the supervisor checks; reload, the admin role's alone, is never
 * forwarded (proto_call_access says which is which).
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <evhtp/evhtp.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "linger.h"
#include "log.h"
#include "mpjson.h"
#include "mpread.h"
#include "proxy.h"
#include "xmalloc.h"

#define CONTROL_MAX_BODY	(64u << 10)
#define CONTROL_SHORT_MS	10000		/* status, eviction, mode ... */
#define CONTROL_LONG_MS		(60u * 60 * 1000) /* switch, sleep, wake ... */
#define CONTROL_METRICS_MS	2000
#define CONTROL_MAX_LOG		(1u << 20)	/* GET /control/logs */
#define CONTROL_MAX_LOG_LINES	1000

/* One /control or /metrics request waiting for the supervisor. */
struct creq {
	evhtp_request_t	*req;
	uint32_t	 call;		/* supervisor call id */
	bool		 gone;
	bool		 metrics;	/* /metrics */
};

/* An open connection of the admin or metrics port, freed at exit. */
struct cconn {
	evhtp_connection_t	*conn;
	TAILQ_ENTRY(cconn)	 entry;
};
static TAILQ_HEAD(, cconn) control_conns =
    TAILQ_HEAD_INITIALIZER(control_conns);

static evhtp_t		*control_htp;		/* admin port */
static evhtp_t		*control_mhtp;		/* metrics_port, /metrics only */
static char		*control_flag_addr;	/* --admin-listen */
static uint16_t		 control_flag_port;
static int		 control_fd = -1;	/* from systemd */

/* llmux 0.7's routes: method, path, call, fields read from the body. */
static const struct control_route {
	htp_method	 method;
	const char	*path;
	enum proto_type	 type;
	uint32_t	 timeout_ms;
} control_routes[] = {
	{ htp_method_GET, "/control/status", PROTO_CTL_STATUS, CONTROL_SHORT_MS },
	{ htp_method_GET, "/control/models", PROTO_CTL_MODELS, CONTROL_SHORT_MS },
	{ htp_method_POST, "/control/mode", PROTO_CTL_MODE, CONTROL_SHORT_MS },
	{ htp_method_POST, "/control/pin", PROTO_CTL_PIN, CONTROL_LONG_MS },
	{ htp_method_POST, "/control/unpin", PROTO_CTL_UNPIN, CONTROL_SHORT_MS },
	{ htp_method_POST, "/control/switch", PROTO_CTL_SWITCH, CONTROL_LONG_MS },
	{ htp_method_GET, "/control/eviction", PROTO_CTL_EVICTION_GET,
	  CONTROL_SHORT_MS },
	{ htp_method_POST, "/control/eviction", PROTO_CTL_EVICTION_SET,
	  CONTROL_SHORT_MS },
	{ htp_method_POST, "/control/sleep", PROTO_CTL_SLEEP, CONTROL_LONG_MS },
	{ htp_method_POST, "/control/wake", PROTO_CTL_WAKE, CONTROL_LONG_MS },
	{ htp_method_POST, "/control/checkpoint", PROTO_CTL_CHECKPOINT,
	  CONTROL_LONG_MS },
	{ htp_method_POST, "/control/restore", PROTO_CTL_RESTORE,
	  CONTROL_LONG_MS },
	{ htp_method_POST, "/control/validate", PROTO_CTL_VALIDATE,
	  CONTROL_LONG_MS },
	{ htp_method_POST, "/control/reload", PROTO_CTL_RELOAD,
	  CONTROL_SHORT_MS },
};

/* {"error": msg}, llmux 0.7's ErrorResponse shape. */
static void
control_reply_error(evhtp_request_t *req, int status, const char *msg)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 len;

	g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"error", 5);
	yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &out, &len);
	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	evbuffer_add(req->buffer_out, out, len);
	evbuffer_add(req->buffer_out, "\n", 1);
	evhtp_send_reply(req, status);
	yajl_gen_free(g);
}

void
control_metrics_text(struct evbuffer *out)
{
	struct metrics_model_view	*v;
	struct metrics_proxy_view	 pv;
	struct metrics_process		 proc;
	struct pmodel			*pm;
	size_t				 n = 0, i = 0;

	TAILQ_FOREACH(pm, &proxy_models, entry)
		n++;
	v = xcalloc(n + 1, sizeof(*v));
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		v[i].name = pm->name;
		v[i].m = &pm->metrics;
		v[i].in_flight = pm->in_flight;
		v[i].queued = queue_len(&pm->queue);
		v[i].ready = pm->ready && !pm->draining;
		i++;
	}
	front_metrics_view(&pv);
	metrics_format(out, v, n, &pv);
	sse_metrics_text(out);
	metrics_process_read(&proc);
	metrics_format_process(out, &proc);
	free(v);
}

static void
control_send_metrics(evhtp_request_t *req, const uint8_t *body, size_t len)
{
	const uint8_t	*val;
	size_t		 left;
	struct mpr	 r;
	struct mpr_item	 it;
	const char	*err;

	control_metrics_text(req->buffer_out);
	if (body != NULL &&
	    (val = mpjson_find(body, len, "text", &left)) != NULL) {
		mpr_init(&r, val, left);
		if (mpr_next(&r, &it, &err) == 0 && it.kind == MPR_STR)
			evbuffer_add(req->buffer_out, it.s, it.len);
	}
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8", 0, 0));
	evhtp_send_reply(req, 200);
}

/* The supervisor answered a call (or is away: 503, or slow: 504). */
static void
control_reply_cb(int status, const uint8_t *body, size_t len, void *arg)
{
	struct creq	*cr = arg;
	evhtp_request_t	*req = cr->req;
	char		*json;

	cr->call = 0;
	if (cr->gone)
		return;
	if (cr->metrics)
		control_send_metrics(req, status == 200 ? body : NULL, len);
	else if (body == NULL)
		control_reply_error(req, status, status == 504 ?
		    "the supervisor did not answer in time" : status == 503 ?
		    "the supervisor is unreachable" : status == 403 ?
		    "the supervisor refused the call" : "the call was refused");
	else if ((json = mpjson_string(body, len, 0)) == NULL)
		control_reply_error(req, 502,
		    "the supervisor sent a malformed reply");
	else {
		evhtp_headers_add_header(req->headers_out, evhtp_header_new(
		    "Content-Type", "application/json", 0, 0));
		evbuffer_add(req->buffer_out, json, strlen(json));
		evbuffer_add(req->buffer_out, "\n", 1);
		free(json);
		evhtp_send_reply(req, status);
	}
	evhtp_request_resume(req);
}

static void
control_on_error(evhtp_request_t *req, evhtp_error_flags what, void *arg)
{
	struct creq	*cr = arg;

	cr->gone = true;
	if (cr->call != 0) {
		link_cancel(cr->call);
		cr->call = 0;
		evhtp_request_resume(req);
	}
}

static evhtp_res
control_on_fini(evhtp_request_t *req, void *arg)
{
	struct creq	*cr = arg;

	if (cr->call != 0)
		link_cancel(cr->call);
	free(cr);
	return (EVHTP_RES_OK);
}

static struct creq *
control_creq(evhtp_request_t *req)
{
	struct creq	*cr;

	cr = xcalloc(1, sizeof(*cr));
	cr->req = req;
	evhtp_request_set_hook(req, evhtp_hook_on_error,
	    (evhtp_hook)(void (*)(void))control_on_error, cr);
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	    (evhtp_hook)control_on_fini, cr);
	return (cr);
}

/* Read an eviction given as {"weights","process"}, a level or "W+P". */
static int
control_eviction(yajl_val v, struct eviction *e)
{
	const char	*path_w[] = { "weights", NULL };
	const char	*path_p[] = { "process", NULL };
	yajl_val	 w, p;

	if (YAJL_IS_INTEGER(v))
		return (eviction_from_level((long)YAJL_GET_INTEGER(v), e));
	if (YAJL_IS_STRING(v))
		return (eviction_parse(YAJL_GET_STRING(v), e));
	if (!YAJL_IS_OBJECT(v))
		return (-1);
	w = yajl_tree_get(v, path_w, yajl_t_string);
	p = yajl_tree_get(v, path_p, yajl_t_string);
	if (w == NULL || p == NULL ||
	    eviction_weights_parse(YAJL_GET_STRING(w), &e->weights) != 0 ||
	    eviction_process_parse(YAJL_GET_STRING(p), &e->process) != 0)
		return (-1);
	return (0);
}

/*
 * The body's fields into call. Returns 0, or an HTTP status (400 for bad
 * JSON, 422 for missing or ill-typed fields, as llmux 0.7's JSON
 * extractor answers) with a message.
 */
static int
control_parse(evhtp_request_t *req, enum proto_type type,
    struct proto_call *call, yajl_val *treep, char *msg, size_t msglen)
{
	const char	*pm[] = { "model", NULL }, *pmo[] = { "mode", NULL };
	const char	*pe[] = { "eviction", NULL }, *pp[] = { "policies", NULL };
	const char	*pw[] = { "no_warmup", NULL };
	size_t		 len = evbuffer_get_length(req->buffer_in), i;
	int		 fields = proto_call_fields(type);
	char		*text, err[256], *s;
	yajl_val	 tree = NULL, v;

	*treep = NULL;
	if (fields <= 0 && len == 0)
		return (0);
	if (len > CONTROL_MAX_BODY) {
		snprintf(msg, msglen, "request body is too large");
		return (413);
	}
	text = xmalloc(len + 1);
	evbuffer_copyout(req->buffer_in, text, len);
	text[len] = '\0';
	if (len > 0)
		tree = yajl_tree_parse(text, err, sizeof(err));
	free(text);
	if (len > 0 && tree == NULL) {
		snprintf(msg, msglen, "Failed to parse the request body as "
		    "JSON");
		return (400);
	}
	*treep = tree;
	if (fields <= 0)
		return (0);
	if (tree == NULL || !YAJL_IS_OBJECT(tree)) {
		snprintf(msg, msglen, "the request body must be a JSON object");
		return (tree == NULL ? 400 : 422);
	}
	if (fields & PROTO_F_MODEL) {
		v = yajl_tree_get(tree, pm, yajl_t_string);
		s = v != NULL ? YAJL_GET_STRING(v) : NULL;
		if (s == NULL || !model_name_valid(s, strlen(s))) {
			snprintf(msg, msglen, "missing or invalid field `model`");
			return (422);
		}
		call->model = s;
	}
	if (fields & PROTO_F_MODE) {
		v = yajl_tree_get(tree, pmo, yajl_t_string);
		s = v != NULL ? YAJL_GET_STRING(v) : NULL;
		if (s == NULL || strlen(s) > PROTO_MAX_NAME) {
			snprintf(msg, msglen, "missing or invalid field `mode`");
			return (422);
		}
		call->mode = s;
	}
	if (fields & (PROTO_F_EVICTION | PROTO_F_EVICTION_OPT)) {
		v = yajl_tree_get(tree, pe, yajl_t_any);
		if (v != NULL && !YAJL_IS_NULL(v)) {
			if (control_eviction(v, &call->eviction) != 0) {
				snprintf(msg, msglen, "invalid field "
				    "`eviction`");
				return (422);
			}
			call->has_eviction = true;
		} else if (fields & PROTO_F_EVICTION) {
			snprintf(msg, msglen, "missing field `eviction`");
			return (422);
		}
	}
	if (fields & PROTO_F_NO_WARMUP_OPT) {
		v = yajl_tree_get(tree, pw, yajl_t_any);
		call->no_warmup = v != NULL && YAJL_IS_TRUE(v);
	}
	if (fields & PROTO_F_POLICIES_OPT) {
		v = yajl_tree_get(tree, pp, yajl_t_array);
		if (v != NULL) {
			if (YAJL_GET_ARRAY(v)->len > PROTO_MAX_LIST) {
				snprintf(msg, msglen, "too many policies");
				return (422);
			}
			call->policies.v = xcalloc(YAJL_GET_ARRAY(v)->len + 1,
			    sizeof(char *));
			for (i = 0; i < YAJL_GET_ARRAY(v)->len; i++) {
				yajl_val e = YAJL_GET_ARRAY(v)->values[i];

				if (!YAJL_IS_STRING(e)) {
					snprintf(msg, msglen, "policies must "
					    "be strings");
					return (422);
				}
				call->policies.v[call->policies.n++] =
				    YAJL_GET_STRING(e);
			}
		}
	}
	return (0);
}

/* What a request presents to change state (control_credential). */
enum control_cred {
	CRED_OK,		/* the admin token */
	CRED_NONE,		/* no bearer token */
	CRED_WRONG,		/* a bearer token that is not it */
	CRED_UNSET,		/* no admin token is set: nothing is it */
};

/*
 * The request's bearer token against the admin token, in a time that
 * depends on the length of what was sent, never on the token.
 */
static enum control_cred
control_credential(evhtp_request_t *req)
{
	const char	*auth, *tok = proxy_conf.admin_token;
	size_t		 i, n, m;
	unsigned char	 diff;

	if (tok == NULL || (n = strlen(tok)) == 0)
		return (CRED_UNSET);
	if ((auth = evhtp_header_find(req->headers_in, "Authorization")) ==
	    NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return (CRED_NONE);
	auth += 7;
	m = strlen(auth);
	diff = m != n;
	for (i = 0; i < m; i++)
		diff |= (unsigned char)auth[i] ^ (unsigned char)tok[i % n];
	return (diff == 0 ? CRED_OK : CRED_WRONG);
}

/*
 * A refusal of the admin port's guard: an OpenAI error object (type,
 * param: null, code) from the proxy's one builder (preq_error_object).
 */
static void
control_reply_denied(evhtp_request_t *req, int status, const char *type,
    const char *code, const char *msg)
{
	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	if (status == 401)
		evhtp_headers_add_header(req->headers_out, evhtp_header_new(
		    "WWW-Authenticate", strcmp(code, "invalid_admin_token") ==
		    0 ? "Bearer realm=\"llmux\", error=\"invalid_token\"" :
		    "Bearer realm=\"llmux\"", 0, 0));
	preq_error_object(req->buffer_out, msg, type, NULL, code);
	evbuffer_add(req->buffer_out, "\n", 1);
	evhtp_send_reply(req, status);
}

/*
 * May the request make this call? Reading is open; changing state, and
 * reading a model's log, need the admin token; what the admin role alone
 * may do (reload) is never forwarded. Answers 401 or 403 and returns
 * false when it may not.
 */
static bool
control_allowed(evhtp_request_t *req, enum proto_type type, bool *authorized)
{
	enum proto_access	access = proto_call_access(type);
	enum control_cred	cred = control_credential(req);
	const char		*what;
	char			 msg[512];

	*authorized = cred == CRED_OK;
	if (access == PROTO_ACCESS_READ || ((access == PROTO_ACCESS_CHANGE ||
	    access == PROTO_ACCESS_PRIVATE) && cred == CRED_OK))
		return (true);
	what = access == PROTO_ACCESS_PRIVATE ? "a model's log may hold what "
	    "clients sent, so reading it" : "this call changes state and";
	switch (cred) {
	case CRED_UNSET:
		snprintf(msg, sizeof(msg), "%s needs the admin token, and none "
		    "is set: the supervisor's admin_token_file "
		    "(/etc/llmux/admin-token by default) is missing; use "
		    "llmuxctl, or create the file and reload", what);
		control_reply_denied(req, 401, "authentication_error",
		    "admin_token_required", msg);
		return (false);
	case CRED_NONE:
		snprintf(msg, sizeof(msg), "%s needs the admin token: send it "
		    "as `Authorization: Bearer TOKEN` (it is in the "
		    "supervisor's admin_token_file, /etc/llmux/admin-token by "
		    "default, which root and the admin group may read)", what);
		control_reply_denied(req, 401, "authentication_error",
		    "admin_token_required", msg);
		return (false);
	case CRED_WRONG:
		control_reply_denied(req, 401, "authentication_error",
		    "invalid_admin_token", "the bearer token is not the admin "
		    "token");
		return (false);
	default:
		control_reply_denied(req, 403, "permission_error",
		    "admin_role_required", "only llmuxctl, over the "
		    "supervisor's socket, may make this call (llmuxctl reload, "
		    "or systemctl reload llmux-supervisord)");
		return (false);
	}
}

static void
control_metrics(evhtp_request_t *req)
{
	struct creq	*cr = control_creq(req);

	cr->metrics = true;
	if (!link_connected()) {
		control_send_metrics(req, NULL, 0);
		return;
	}
	evhtp_request_pause(req);
	cr->call = link_call(PROTO_CTL_METRICS, NULL, CONTROL_METRICS_MS,
	    control_reply_cb, cr);
}

/* GET /control/history: the last hour (history.c), from ?since=MS on. */
static void
control_history(evhtp_request_t *req)
{
	const char	*since;
	long long	 ms = 0;

	if (evhtp_request_get_method(req) != htp_method_GET) {
		control_reply_error(req, 405, "method not allowed");
		return;
	}
	if (req->uri->query != NULL &&
	    (since = evhtp_kv_find(req->uri->query, "since")) != NULL &&
	    sscanf(since, "%lld", &ms) != 1) {
		control_reply_error(req, 400, "since: want unix milliseconds");
		return;
	}
	history_json(req->buffer_out, (int64_t)ms);
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(
	    "Content-Type", "application/json", 0, 0));
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(
	    "Cache-Control", "no-store", 0, 0));
	evhtp_send_reply(req, 200);
}

/* A log chunk of GET /control/logs: kept up to CONTROL_MAX_LOG bytes. */
static void
control_log_data(const uint8_t *data, size_t len, void *arg)
{
	struct creq	*cr = arg;
	size_t		 have = evbuffer_get_length(cr->req->buffer_out);

	if (cr->gone || have >= CONTROL_MAX_LOG)
		return;
	if (len > CONTROL_MAX_LOG - have)
		len = CONTROL_MAX_LOG - have;
	evbuffer_add(cr->req->buffer_out, data, len);
}

/* The logs call ended: the lines, or its error. */
static void
control_log_reply(int status, const uint8_t *body, size_t len, void *arg)
{
	struct creq	*cr = arg;
	evhtp_request_t	*req = cr->req;

	if (status == 200 || cr->gone) {
		cr->call = 0;
		if (!cr->gone) {
			evhtp_headers_add_header(req->headers_out,
			    evhtp_header_new("Content-Type",
			    "text/plain; charset=utf-8", 0, 0));
			evhtp_headers_add_header(req->headers_out,
			    evhtp_header_new("Cache-Control", "no-store", 0,
			    0));
			evhtp_send_reply(req, 200);
			evhtp_request_resume(req);
		}
		return;
	}
	evbuffer_drain(req->buffer_out, evbuffer_get_length(req->buffer_out));
	control_reply_cb(status, body, len, arg);
}

/*
 * GET /control/logs?model=M&lines=N: the last lines of a model's log (the
 * logs call, never a follow), as text. A log may hold what clients sent,
 * so it takes the admin token (proto_call_access: PROTO_ACCESS_PRIVATE).
 */
static void
control_logs(evhtp_request_t *req)
{
	struct proto_call	 call;
	struct creq		*cr;
	const char		*v;
	char			 model[MODEL_NAME_MAX + 1];
	unsigned		 lines = 100;

	if (evhtp_request_get_method(req) != htp_method_GET) {
		control_reply_error(req, 405, "method not allowed");
		return;
	}
	memset(&call, 0, sizeof(call));
	if (!control_allowed(req, PROTO_CTL_LOGS, &call.authorized))
		return;
	if (req->uri->query == NULL ||
	    (v = evhtp_kv_find(req->uri->query, "model")) == NULL ||
	    webui_decode(v, model, sizeof(model)) != 0 ||
	    !model_name_valid(model, strlen(model))) {
		control_reply_error(req, 422, "missing or invalid `model`");
		return;
	}
	if ((v = evhtp_kv_find(req->uri->query, "lines")) != NULL &&
	    (sscanf(v, "%u", &lines) != 1 || lines < 1 ||
	    lines > CONTROL_MAX_LOG_LINES)) {
		control_reply_error(req, 422, "lines: want 1 to 1000");
		return;
	}
	call.model = model;
	call.lines = lines;
	cr = control_creq(req);
	evhtp_request_pause(req);
	cr->call = link_call_data(PROTO_CTL_LOGS, &call, CONTROL_SHORT_MS,
	    control_log_data, control_log_reply, cr);
}

/* GET /control/events: the connection becomes an event stream (sse.c). */
static void
control_events(evhtp_request_t *req)
{
	evhtp_connection_t	*conn = evhtp_request_get_connection(req);
	struct cconn		*cc;
	char			 msg[256];
	int			 st;

	if (evhtp_request_get_method(req) != htp_method_GET) {
		control_reply_error(req, 405, "method not allowed");
		return;
	}
	/* A read, like /control/status: open to whoever reaches the port. */
	if ((st = sse_open(req, msg, sizeof(msg))) != 0) {
		control_reply_error(req, st, msg);
		return;
	}
	/* libevhtp frees the connection without its hooks: forget it. */
	TAILQ_FOREACH(cc, &control_conns, entry) {
		if (cc->conn == conn) {
			TAILQ_REMOVE(&control_conns, cc, entry);
			free(cc);
			break;
		}
	}
}

static void
control_request_cb(evhtp_request_t *req, void *arg)
{
	const struct control_route	*r = NULL;
	const char			*path = req->uri->path->full;
	htp_method			 method = evhtp_request_get_method(req);
	struct proto_call		 call;
	struct creq			*cr;
	yajl_val			 tree;
	char				 msg[256];
	bool				 known = false;
	size_t				 i;
	int				 st;

	if (strcmp(path, "/metrics") == 0) {
		control_metrics(req);
		return;
	}
	if (arg != NULL) {	/* the metrics-only port */
		control_reply_error(req, 404, "not found");
		return;
	}
	if (strcmp(path, "/control/events") == 0) {
		control_events(req);
		return;
	}
	if (strcmp(path, "/control/history") == 0) {
		control_history(req);
		return;
	}
	if (strcmp(path, "/control/logs") == 0) {
		control_logs(req);
		return;
	}
	if (webui_path(path)) {
		if ((st = webui_serve(req, msg, sizeof(msg))) != 0)
			control_reply_error(req, st, msg);
		return;
	}
	for (i = 0; i < sizeof(control_routes) / sizeof(control_routes[0]);
	    i++) {
		if (strcmp(control_routes[i].path, path) != 0)
			continue;
		known = true;
		if (control_routes[i].method == method) {
			r = &control_routes[i];
			break;
		}
	}
	if (r == NULL) {
		control_reply_error(req, known ? 405 : 404, known ?
		    "method not allowed" : "not found");
		return;
	}
	memset(&call, 0, sizeof(call));
	if (!control_allowed(req, r->type, &call.authorized))
		return;
	if ((st = control_parse(req, r->type, &call, &tree, msg,
	    sizeof(msg))) != 0) {
		control_reply_error(req, st, msg);
		free(call.policies.v);
		yajl_tree_free(tree);
		return;
	}
	cr = control_creq(req);
	evhtp_request_pause(req);
	cr->call = link_call(r->type, &call, r->timeout_ms,
	    control_reply_cb, cr);
	free(call.policies.v);
	yajl_tree_free(tree);
}

static evhtp_res
control_on_conn_fini(evhtp_connection_t *conn, void *arg)
{
	struct cconn	*cc = arg;

	TAILQ_REMOVE(&control_conns, cc, entry);
	free(cc);
	return (EVHTP_RES_OK);
}

/* Keep every connection, so that those still open at exit are freed. */
static evhtp_res
control_post_accept(evhtp_connection_t *conn, void *arg)
{
	struct cconn	*cc;

	cc = xcalloc(1, sizeof(*cc));
	cc->conn = conn;
	TAILQ_INSERT_TAIL(&control_conns, cc, entry);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
	    (evhtp_hook)control_on_conn_fini, cc);
	return (EVHTP_RES_OK);
}

static evhtp_t *
control_new_htp(void *arg)
{
	evhtp_t	*htp;

	if ((htp = evhtp_new(proxy_base, NULL)) == NULL)
		fatalx("evhtp_new failed");
	evhtp_set_gencb(htp, control_request_cb, arg);
	evhtp_set_post_accept_cb(htp, control_post_accept, NULL);
	evhtp_set_max_body_size(htp, CONTROL_MAX_BODY + 1);
	return (htp);
}

void
control_init(void)
{
	control_htp = control_new_htp(NULL);
}

void
control_set_listen(const char *addr, uint16_t port)
{
	free(control_flag_addr);
	control_flag_addr = xstrdup(addr);
	control_flag_port = port;
}

int
control_listen_fd(int fd)
{
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	control_fd = fd;
	return (0);
}

/* May the admin API be served on this address? */
static bool
control_address_allowed(const char *addr, int fd)
{
	bool	loop = fd >= 0 ? listen_fd_is_loopback(fd) :
		    listen_addr_is_loopback(addr);

	if (loop)
		return (true);
	return (proxy_conf.admin_address != NULL &&
	    !listen_addr_is_loopback(proxy_conf.admin_address));
}

int
control_listen(const char *addr, uint16_t port)
{
	int	fd;

	if ((fd = listen_tcp(addr, port)) == -1)
		return (-1);
	if (evhtp_accept_socket(control_htp, fd, 128) != 0) {
		close(fd);
		return (-1);
	}
	log_info("admin port listening addr=%s port=%u", addr, port);
	return (0);
}

/* Bind the admin (and metrics) port once the config says where. */
void
control_apply_config(void)
{
	const char	*addr;
	uint16_t	 port;
	int		 fd;

	if (control_htp == NULL || control_htp->server != NULL)
		goto metrics;
	if (control_fd >= 0) {
		if (!control_address_allowed(NULL, control_fd)) {
			log_warnx("refusing to serve the admin API on a "
			    "public address (set admin_address to allow it)");
			goto metrics;
		}
		if (evhtp_accept_socket(control_htp, control_fd, 128) == 0)
			log_info("admin port from systemd fd=%d", control_fd);
		goto metrics;
	}
	if (control_flag_addr != NULL) {
		addr = control_flag_addr;
		port = control_flag_port;
	} else {
		if (proxy_conf.admin_port == 0)
			goto metrics;
		addr = proxy_conf.admin_address != NULL ?
		    proxy_conf.admin_address : "127.0.0.1";
		port = proxy_conf.admin_port;
	}
	if (!control_address_allowed(addr, -1)) {
		log_warnx("refusing to serve the admin API on a public "
		    "address addr=%s (set admin_address to allow it)", addr);
		goto metrics;
	}
	if (control_listen(addr, port) != 0)
		log_warn("cannot listen on the admin port addr=%s port=%u",
		    addr, port);
metrics:
	if (control_mhtp != NULL || proxy_conf.metrics_port == 0 ||
	    proxy_conf.metrics_port == proxy_conf.admin_port ||
	    proxy_conf.metrics_port == proxy_conf.port ||
	    (control_flag_addr != NULL &&
	    proxy_conf.metrics_port == control_flag_port))
		return;
	addr = proxy_conf.admin_address != NULL ? proxy_conf.admin_address :
	    "127.0.0.1";
	control_mhtp = control_new_htp((void *)1);
	if ((fd = listen_tcp(addr, proxy_conf.metrics_port)) == -1 ||
	    evhtp_accept_socket(control_mhtp, fd, 128) != 0) {
		log_warn("cannot listen on the metrics port addr=%s port=%u",
		    addr, proxy_conf.metrics_port);
		if (fd != -1)
			close(fd);
	} else
		log_info("metrics port listening addr=%s port=%u", addr,
		    proxy_conf.metrics_port);
}

void
control_shutdown(void)
{
	struct cconn	*cc;

	/* Connections still open (kept alive, or waiting for a reply). */
	while ((cc = TAILQ_FIRST(&control_conns)) != NULL)
		evhtp_connection_free(cc->conn);
	/* evhtp_free leaves the listener: free it first. */
	if (control_htp != NULL) {
		evhtp_unbind_socket(control_htp);
		evhtp_free(control_htp);
	}
	if (control_mhtp != NULL) {
		evhtp_unbind_socket(control_mhtp);
		evhtp_free(control_mhtp);
	}
	control_htp = control_mhtp = NULL;
	free(control_flag_addr);
	control_flag_addr = NULL;
}
