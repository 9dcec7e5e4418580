/*
 * server.c -- the HTTP side of llmux-fakevllm on libevhtp: the listening
 * socket (bound at once, listening only once the engine is ready, as
 * vLLM's uvicorn does), the routing of every request (the routes of the
 * model's task: generation, or embeddings), replies and vLLM's error
 * JSON, /metrics, an access log line per request, and the messages that
 * come back from the engine.
 */
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "fv_evhtp.h"

#include "clock.h"
#include "fakevllm.h"
#include "hex.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

struct fv_server fv_server;

/* Bind (but do not yet listen on) the server's address. */
int
fv_server_bind(struct fv_opts *o, char **cause)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	char			 port[16];
	int			 fd = -1, on = 1, err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", o->port);
	if ((err = getaddrinfo(o->host, port, &hints, &res)) != 0) {
		xasprintf(cause, "cannot resolve %s: %s", o->host,
		    gai_strerror(err));
		return (-1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		xasprintf(cause, "cannot bind %s:%d: %s", o->host, o->port,
		    strerror(errno));
		return (-1);
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			o->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			o->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	fv_server.fd = fd;
	return (0);
}

uint64_t
fv_server_random(void)
{
	fv_server.rand = fv_generate_mix(fv_server.rand);
	return (fv_server.rand);
}

static const char *
server_method(evhtp_request_t *req)
{
	return (htparser_get_methodstr_m(evhtp_request_get_method(req)));
}

void
fv_server_access(evhtp_request_t *req, int64_t t0, int status)
{
	if (!fv_server.opts->access_log)
		return;
	log_info("http method=%s path=%s status=%d ms=%.3f",
	    server_method(req), req->uri->path->full, status,
	    (double)(clock_us() - t0) / 1000.0);
}

/* Send a complete reply; body (moved into the reply) may be NULL. */
void
fv_server_reply(evhtp_request_t *req, int64_t t0, int status,
    const char *ctype, struct evbuffer *body)
{
	if (ctype != NULL)
		evhtp_headers_add_header(req->headers_out,
		    evhtp_header_new("Content-Type", ctype, 0, 0));
	if (body != NULL)
		evbuffer_add_buffer(req->buffer_out, body);
	evhtp_send_reply(req, status);
	fv_server_access(req, t0, status);
}

/* vLLM's error body: {"error":{"message","type","param","code"}}. */
void
fv_server_error(evhtp_request_t *req, int64_t t0, int status,
    const char *type, const char *param, const char *fmt, ...)
{
	struct evbuffer	*b = evbuffer_new();
	char		*msg;
	va_list		 ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatalx("out of memory");
	va_end(ap);
	evbuffer_add_printf(b, "{\"error\":{\"message\":");
	fv_json_cstring(b, msg);
	evbuffer_add_printf(b, ",\"type\":");
	fv_json_cstring(b, type);
	evbuffer_add_printf(b, ",\"param\":");
	if (param != NULL)
		fv_json_cstring(b, param);
	else
		evbuffer_add_printf(b, "null");
	evbuffer_add_printf(b, ",\"code\":%d}}", status);
	if (status >= 500)
		log_warnx("request failed path=%s status=%d error=\"%s\"",
		    req->uri->path->full, status, msg);
	free(msg);
	fv_server_reply(req, t0, status, "application/json", b);
	evbuffer_free(b);
}

/* FastAPI's own answers for unknown routes and methods. */
static void
server_detail(evhtp_request_t *req, int64_t t0, int status, const char *what)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add_printf(b, "{\"detail\":\"%s\"}", what);
	fv_server_reply(req, t0, status, "application/json", b);
	evbuffer_free(b);
}

/* Percent-decode [s, s+len) into out (size bytes); -1 if too long. */
static int
server_unescape(const char *s, size_t len, char *out, size_t size)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < len; i++) {
		if (o + 1 >= size)
			return (-1);
		if (s[i] == '+')
			out[o++] = ' ';
		else if (s[i] == '%' && i + 2 < len &&
		    (hi = hex_digit(s[i + 1])) != -1 &&
		    (lo = hex_digit(s[i + 2])) != -1) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return (0);
}

/*
 * The nth (from 0) value of query parameter key, decoded into out.
 * Returns 1 when found, 0 when not, -1 when it does not fit.
 */
int
fv_server_query(evhtp_request_t *req, const char *key, int nth, char *out,
    size_t size)
{
	const char	*q, *amp, *eq, *end;
	size_t		 klen = strlen(key);

	if (req->uri == NULL || req->uri->query_raw == NULL)
		return (0);
	for (q = (const char *)req->uri->query_raw; *q != '\0'; q = amp + 1) {
		if ((amp = strchr(q, '&')) == NULL)
			amp = q + strlen(q);
		end = amp;
		eq = memchr(q, '=', (size_t)(end - q));
		if (eq == NULL)
			eq = end;
		if ((size_t)(eq - q) == klen && strncmp(q, key, klen) == 0 &&
		    nth-- == 0) {
			if (eq == end)
				return (server_unescape("", 0, out, size) == 0 ?
				    1 : -1);
			return (server_unescape(eq + 1, (size_t)(end - eq - 1),
			    out, size) == 0 ? 1 : -1);
		}
		if (*amp == '\0')
			break;
	}
	return (0);
}

/* The request body as one contiguous block (not NUL-terminated). */
char *
fv_server_body(evhtp_request_t *req, size_t *len)
{
	*len = evbuffer_get_length(req->buffer_in);
	if (*len == 0)
		return ((char *)"");
	return ((char *)evbuffer_pullup(req->buffer_in, -1));
}

struct server_watch {
	void	(*cb)(void *);
	void	*arg;
};

static evhtp_res
server_fini(evhtp_request_t *req, void *arg)
{
	struct server_watch	*w = arg;

	w->cb(w->arg);
	free(w);
	return (EVHTP_RES_OK);
}

/* Call cb(arg) if the request goes away (the client left) before a reply. */
void
fv_server_watch(evhtp_request_t *req, void (*cb)(void *), void *arg)
{
	struct server_watch	*w = xmalloc(sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	    (evhtp_hook)server_fini, w);
}

void
fv_server_unwatch(evhtp_request_t *req)
{
	if (req->hooks != NULL && req->hooks->on_request_fini_arg != NULL)
		free(req->hooks->on_request_fini_arg);
	evhtp_request_unset_hook(req, evhtp_hook_on_request_fini);
}

/* Write a request's pending output now (before the process dies). */
void
fv_server_flush_request(evhtp_request_t *req)
{
	struct bufferevent	*bev;
	struct evbuffer		*out;
	int			 tries = 0;

	if (req->conn == NULL || (bev = req->conn->bev) == NULL)
		return;
	out = bufferevent_get_output(bev);
	/* A bufferevent keeps the start of its output frozen between writes. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0 && tries++ < 100) {
		if (evbuffer_write(out, bufferevent_getfd(bev)) == -1 &&
		    errno != EAGAIN && errno != EINTR)
			break;
	}
}

void
fv_server_flush_all(void)
{
	fv_openai_flush_all();
}

/* Is this one of the names the model is served under? */
int
fv_server_served(const char *name)
{
	int	i;

	for (i = 0; i < fv_server.opts->nnames; i++)
		if (strcmp(fv_server.opts->names[i], name) == 0)
			return (1);
	return (0);
}

static void
server_health(evhtp_request_t *req, int64_t t0)
{
	if (fv_faults_take(&fv_server.faults, FV_FAULT_HEALTH_500, NULL)) {
		fv_server_reply(req, t0, 500, NULL, NULL);
		return;
	}
	fv_server_reply(req, t0, 200, NULL, NULL);
}

static void
server_version(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add_printf(b, "{\"version\":\"%s+fakevllm\"}", LLMUX_VERSION);
	fv_server_reply(req, t0, 200, "application/json", b);
	evbuffer_free(b);
}

static void
server_models(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer	*b = evbuffer_new();
	struct fv_opts	*o = fv_server.opts;
	int		 i;

	evbuffer_add_printf(b, "{\"object\":\"list\",\"data\":[");
	for (i = 0; i < o->nnames; i++) {
		evbuffer_add_printf(b, "%s{\"id\":", i ? "," : "");
		fv_json_cstring(b, o->names[i]);
		evbuffer_add_printf(b, ",\"object\":\"model\",\"created\":%lld,"
		    "\"owned_by\":\"vllm\",\"root\":",
		    (long long)fv_server.started_at);
		fv_json_cstring(b, o->model);
		evbuffer_add_printf(b, ",\"parent\":null,\"max_model_len\":%d,"
		    "\"permission\":[{\"id\":\"modelperm-%016llx\","
		    "\"object\":\"model_permission\",\"created\":%lld,"
		    "\"allow_create_engine\":false,\"allow_sampling\":true,"
		    "\"allow_logprobs\":true,\"allow_search_indices\":false,"
		    "\"allow_view\":true,\"allow_fine_tuning\":false,"
		    "\"organization\":\"*\",\"group\":null,"
		    "\"is_blocking\":false}]}", o->max_model_len,
		    (unsigned long long)fv_server_random(),
		    (long long)fv_server.started_at);
	}
	evbuffer_add_printf(b, "]}");
	fv_server_reply(req, t0, 200, "application/json", b);
	evbuffer_free(b);
}

/*
 * GET /metrics: Prometheus text, vLLM's gauges of running and waiting
 * requests, and ours: the generations the API server holds now and the
 * most it ever held at once (what a concurrency limit in front of it
 * lets through).
 */
static void
server_metrics(evhtp_request_t *req, int64_t t0)
{
	struct evbuffer	*b = evbuffer_new();
	const char	*s = fv_server.opts->names[0];
	char		*name;
	size_t		 n = 0;

	/* The model name as a label value: \ and " escaped. */
	name = xmalloc(2 * strlen(s) + 1);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			name[n++] = '\\';
		name[n++] = *s;
	}
	name[n] = '\0';
	evbuffer_add_printf(b,
	    "# HELP vllm:num_requests_running Number of requests in model "
	    "execution batches.\n"
	    "# TYPE vllm:num_requests_running gauge\n"
	    "vllm:num_requests_running{engine=\"0\",model_name=\"%s\"} %d\n"
	    "# HELP vllm:num_requests_waiting Number of requests waiting to be "
	    "processed.\n"
	    "# TYPE vllm:num_requests_waiting gauge\n"
	    "vllm:num_requests_waiting{engine=\"0\",model_name=\"%s\"} %d\n"
	    "# HELP fakevllm_requests_in_flight Generation requests the API "
	    "server holds.\n"
	    "# TYPE fakevllm_requests_in_flight gauge\n"
	    "fakevllm_requests_in_flight{model_name=\"%s\"} %zu\n"
	    "# HELP fakevllm_requests_in_flight_peak The most generation "
	    "requests held at once.\n"
	    "# TYPE fakevllm_requests_in_flight_peak gauge\n"
	    "fakevllm_requests_in_flight_peak{model_name=\"%s\"} %zu\n",
	    name, (int)fv_server.engine.running, name,
	    (int)(fv_server.engine.waiting + fv_server.engine.frozen), name,
	    fv_server.gens.n, name, fv_server.peak);
	free(name);
	fv_server_reply(req, t0, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
}

/* vLLM's --api-key check: only /v1 paths, "Authorization: Bearer KEY". */
static int
server_authorised(evhtp_request_t *req, const char *path)
{
	const char	*h;

	if (fv_server.opts->api_key == NULL || strncmp(path, "/v1", 3) != 0)
		return (1);
	h = evhtp_header_find(req->headers_in, "Authorization");
	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return (0);
	return (strcmp(h + 7, fv_server.opts->api_key) == 0);
}

static void
server_route(evhtp_request_t *req, void *arg)
{
	int64_t		 t0 = clock_us();
	const char	*path = req->uri->path->full;
	int		 m = evhtp_request_get_method(req);
	int		 get = (m == htp_method_GET || m == htp_method_HEAD);
	int		 post = (m == htp_method_POST);
	int		 embed = fv_server.opts->task == FV_TASK_EMBED;
	struct evbuffer	*b;

	fv_server.http_requests++;
	if (!server_authorised(req, path)) {
		b = evbuffer_new();
		evbuffer_add_printf(b, "{\"error\":\"Unauthorized\"}");
		fv_server_reply(req, t0, 401, "application/json", b);
		evbuffer_free(b);
		return;
	}
	if (strcmp(path, "/health") == 0 || strcmp(path, "/ping") == 0) {
		if (get || (post && path[1] == 'p'))
			server_health(req, t0);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/version") == 0) {
		if (get)
			server_version(req, t0);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/v1/models") == 0) {
		if (get)
			server_models(req, t0);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/metrics") == 0) {
		if (get)
			server_metrics(req, t0);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/v1/chat/completions") == 0 && !embed) {
		if (post)
			fv_openai_handle(req, t0, FV_CHAT);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/v1/completions") == 0 && !embed) {
		if (post)
			fv_openai_handle(req, t0, FV_COMPLETION);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (strcmp(path, "/v1/embeddings") == 0 && embed) {
		if (post)
			fv_embed_handle(req, t0);
		else
			server_detail(req, t0, 405, "Method Not Allowed");
	} else if (!fv_dev_handle(req, t0, path, m))
		server_detail(req, t0, 404, "Not Found");
}

void
fv_server_init(struct event_base *base, struct fv_opts *opts, int dev_mode,
    int admin)
{
	uint64_t	seed;

	fv_server.base = base;
	fv_server.opts = opts;
	fv_server.dev_mode = dev_mode;
	fv_server.admin = admin;
	fv_server.faults = opts->faults;
	fv_server.started_at = (int64_t)time(NULL);
	fv_idmap_init(&fv_server.gens);
	fv_idmap_init(&fv_server.calls);
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)clock_us() ^ ((uint64_t)getpid() << 32);
	fv_server.rand = seed;
	fv_server.model_hash = fv_generate_hash(FV_HASH_INIT, opts->names[0],
	    strlen(opts->names[0]));
	if ((fv_server.htp = evhtp_new(base, NULL)) == NULL)
		fatalx("evhtp_new failed");
	evhtp_set_gencb(fv_server.htp, server_route, NULL);
	evhtp_set_max_body_size(fv_server.htp, FV_BODY_MAX);
}

static void
server_accept_resume(evutil_socket_t fd, short events, void *arg)
{
	evconnlistener_enable(fv_server.htp->server);
}

/* Out of descriptors: stop accepting for a second instead of spinning. */
static void
server_accept_error(struct evconnlistener *l, void *arg)
{
	static struct event	*ev;
	struct timeval		 tv = { 1, 0 };

	log_warn("accept failed; not accepting for a second");
	if (ev == NULL)
		ev = evtimer_new(fv_server.base, server_accept_resume, NULL);
	evconnlistener_disable(l);
	evtimer_add(ev, &tv);
}

/* The engine is ready: start accepting connections. */
void
fv_server_listen(void)
{
	if (fv_server.listening)
		return;
	if (evhtp_accept_socket(fv_server.htp, fv_server.fd, 1024) != 0)
		fatal("cannot listen on %s:%d", fv_server.opts->host,
		    fv_server.opts->port);
	evconnlistener_set_error_cb(fv_server.htp->server, server_accept_error);
	fv_server.listening = 1;
	log_info("Starting vLLM API server on http://%s:%d host=%s port=%d "
	    "model=%s", fv_server.opts->host, fv_server.opts->port,
	    fv_server.opts->host, fv_server.opts->port,
	    fv_server.opts->names[0]);
	log_info("Application startup complete.");
}

/* A message from the engine. */
void
fv_server_dispatch(const struct fv_msg *m, const char *data)
{
	switch (m->type) {
	case FV_MSG_READY:
		fv_server_listen();
		break;
	case FV_MSG_STATE:
		if (m->len == sizeof(fv_server.engine))
			memcpy(&fv_server.engine, data,
			    sizeof(fv_server.engine));
		break;
	case FV_MSG_TOKEN:
	case FV_MSG_DONE:
	case FV_MSG_GENERR:
		fv_openai_dispatch(m, data);
		break;
	case FV_MSG_REPLY:
		fv_dev_reply(m, data);
		break;
	default:
		log_warnx("unexpected message from the engine type=%d",
		    m->type);
		break;
	}
}

/*
 * The engine process is gone: fail what is in flight and exit, as vLLM's
 * API server does when its EngineCore dies.
 */
void
fv_server_engine_died(const char *why)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	int		status = 0, tries;
	pid_t		pid = fv_channel_child();

	/* The socket closes as the child exits: reap it, briefly. */
	for (tries = 0; pid != -1 && tries < 100; tries++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		nanosleep(&ts, NULL);
	}
	if (WIFSIGNALED(status))
		log_warnx("Engine core proc EngineCore_0 died unexpectedly, "
		    "shutting down client. reason=\"%s\" signal=%d", why,
		    WTERMSIG(status));
	else
		log_warnx("Engine core proc EngineCore_0 died unexpectedly, "
		    "shutting down client. reason=\"%s\" status=%d", why,
		    WEXITSTATUS(status));
	if (!fv_server.listening)
		log_warnx("Engine core initialization failed.");
	fv_openai_fail_all("EngineCore encountered an issue. See stack trace "
	    "(above) for the root cause.");
	fv_dev_fail_all("EngineCore encountered an issue.");
	fv_openai_flush_all();
	exit(1);
}
