/*
 * front.c -- the proxy port: libevhtp's server and the requests it reads,
 * and the routing of a complete request (/health, /v1/models, or
 * forward/queue by model). client.c holds its connections: their limits,
 * their time limits, the framing checks of what they send.
 *
 * A request's life: on_headers creates its struct preq and checks what the
 * head alone decides (the framing, 401, 404, room for its body under
 * max_buffered_body_mb); on_read stores the body compactly, counts it and
 * feeds it to the model scanner; the request callback routes it. Anything
 * answered before the body is read is answered on a copy of the socket
 * after libevhtp lets go of it, with "Connection: close" and a lingering
 * close (client.c, linger.c), since libevhtp would otherwise drop the
 * answer with the connection; the others are answered through preq.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <evhtp/evhtp.h>

#include "clock.h"
#include "linger.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

#define FRONT_CHUNK_ROOM_MAX	(8u << 20)	/* a chunked body grows so */

static evhtp_t			*front_htp;
static bool			 front_paused;		/* accept disabled */
static struct event		*front_accept_timer;	/* EMFILE backoff */

static void	front_release(struct preq *);
static void	front_accept_update(void);
static void	front_route(struct preq *);

uint32_t
front_active_requests(void)
{
	return (preq_active());
}

/* ------------------------------------------------------------------ */
/* Connections and accept. */

/* The second after a failed accept() is over: accept again. */
static void
front_accept_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	front_accept_update();
}

/* Accept unless shutting down or backing off (the pause ends here). */
static void
front_accept_update(void)
{
	struct evconnlistener	*lev;

	if (front_htp == NULL || (lev = front_htp->server) == NULL)
		return;
	if (proxy_exiting) {
		evconnlistener_disable(lev);
		return;
	}
	if (front_paused && !evtimer_pending(front_accept_timer, NULL)) {
		front_paused = false;
		evconnlistener_enable(lev);
	}
}

/* accept() failed (EMFILE, ENFILE): stop for a second, as tmux does. */
static void
front_accept_error(struct evconnlistener *lev, void *arg)
{
	struct timeval	tv = { 1, 0 };
	int		err = EVUTIL_SOCKET_ERROR();

	log_warnx("accept failed, pausing accept for 1s error=\"%s\"",
	    evutil_socket_error_to_string(err));
	front_paused = true;
	evconnlistener_disable(lev);
	evtimer_add(front_accept_timer, &tv);
}

/* ------------------------------------------------------------------ */
/* The request as it arrives. */

/* Does the request carry one of the configured API keys? */
static bool
front_authorized(evhtp_request_t *req)
{
	const char	*auth, *key;
	size_t		 i, klen, alen;
	unsigned char	 diff;

	if (proxy_conf.n_api_keys == 0)
		return (true);
	if ((auth = evhtp_header_find(req->headers_in, "Authorization")) ==
	    NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return (false);
	auth += 7;
	while (*auth == ' ')
		auth++;
	alen = strlen(auth);
	for (i = 0; i < proxy_conf.n_api_keys; i++) {
		key = proxy_conf.api_keys[i];
		klen = strlen(key);
		if (klen != alen)
			continue;
		/* Compare in constant time. */
		diff = 0;
		for (size_t j = 0; j < klen; j++)
			diff |= (unsigned char)key[j] ^ (unsigned char)auth[j];
		if (diff == 0)
			return (true);
	}
	return (false);
}

/*
 * Refuse the request from its head. Without a body it is answered like
 * any request once read, and the connection kept (requests pipelined
 * behind it are answered too); with one, at once, and the connection
 * closed rather than its body read.
 */
static evhtp_res
front_refuse_head(struct fconn *fc, struct preq *pr, int status,
    enum reject_code code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static evhtp_res
front_refuse_head(struct fconn *fc, struct preq *pr, int status,
    enum reject_code code, const char *fmt, ...)
{
	va_list	ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (htparser_get_content_length(pr->req->conn->parser) != 0 ||
	    reqscan_phase(&fc->scan) == RQ_BODY)
		return (client_early(fc, status, code, 0, "%s", msg));
	pr->refuse_status = status;
	pr->refuse_code = code;
	pr->refuse_msg = xstrdup(msg);
	return (EVHTP_RES_OK);
}

/*
 * vLLM's routes outside /v1/ that name a model in their body, as the
 * POSTs under /v1/ do: forwarded by it the same way.
 */
static bool
front_model_path(const char *path)
{
	static const char *paths[] = {
		"/tokenize", "/detokenize", "/pooling", "/classify", "/score",
		"/rerank", "/v2/rerank",
	};
	size_t	i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(path, paths[i]) == 0)
			return (true);
	}
	return (false);
}

/* Content-Type, its name's length checked first: most names differ. */
static const char *
front_content_type(evhtp_headers_t *hdrs)
{
	struct evhtp_kv	*kv;

	TAILQ_FOREACH(kv, hdrs, next) {
		if (kv->klen == 12 && strcasecmp(kv->key, "content-type") == 0)
			return (kv->val);
	}
	return (NULL);
}

static evhtp_res	front_on_body(evhtp_request_t *, struct evbuffer *,
			    void *);
static evhtp_res	front_on_request_fini(evhtp_request_t *, void *);
static void		front_on_error(evhtp_request_t *, evhtp_error_flags,
			    void *);

static evhtp_res
front_on_headers(evhtp_request_t *req, evhtp_headers_t *hdrs, void *arg)
{
	struct fconn	*fc = arg;
	struct preq	*pr;
	const char	*path, *override;
	htp_method	 method;
	uint64_t	 clen;

	if (fc->early_status != 0)
		return (EVHTP_RES_ERROR);
	pr = xcalloc(1, sizeof(*pr));
	pr->req = req;
	pr->phase = PR_READING;
	pr->t_start_us = clock_us();
	client_request_begins(fc, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_read,
	    (evhtp_hook)front_on_body, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	    (evhtp_hook)front_on_request_fini, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_error,
	    (evhtp_hook)(void (*)(void))front_on_error, pr);
	if (client_scan_refused(fc, pr->index))
		return (client_early(fc, fc->scan.status, fc->scan.code, 0, "%s",
		    fc->scan.error));

	path = req->uri != NULL && req->uri->path != NULL ?
	    req->uri->path->full : "/";
	method = evhtp_request_get_method(req);
	override = evhtp_header_find(hdrs, "model-override");

	if (strcmp(path, "/health") == 0)
		pr->route = ROUTE_HEALTH;
	else if (strncmp(path, "/v1/", 4) != 0) {
		if (method == htp_method_POST && front_model_path(path)) {
			if (!front_authorized(req))
				return (front_refuse_head(fc, pr, 401,
				    REJ_UNAUTHORIZED, "invalid or missing API "
				    "key"));
			pr->route = ROUTE_INFER;
		}
	} else {
		if (!front_authorized(req))
			return (front_refuse_head(fc, pr, 401,
			    REJ_UNAUTHORIZED, "invalid or missing API key"));
		if (method == htp_method_GET && override == NULL &&
		    strcmp(path, "/v1/models") == 0)
			pr->route = ROUTE_MODELS;
		else if (method == htp_method_GET && override == NULL &&
		    strncmp(path, "/v1/models/", 11) == 0)
			pr->route = ROUTE_MODEL_ONE;
		else if (method == htp_method_POST || (override != NULL &&
		    method != htp_method_HEAD))
			pr->route = ROUTE_INFER;
	}
	if (pr->route == ROUTE_NONE)
		return (front_refuse_head(fc, pr, 404, REJ_NOT_FOUND,
		    "unknown path %s (llmux serves /v1/* and /health)", path));

	/* A body that comes with a length: counted, and its room made. */
	clen = htparser_get_content_length(req->conn->parser);
	if (clen != UINT64_MAX && clen > 0) {
		if (!client_body_take(pr, clen))
			return (client_early(fc, 503, REJ_BUFFERS_FULL,
			    PROXY_RETRY_AFTER_SECS, "the proxy holds as many "
			    "request bodies as it may; try again later"));
		if (evbuffer_expand(req->buffer_in, clen) == 0)
			pr->body_room = clen;
	}

	if (pr->route == ROUTE_INFER) {
		/*
		 * The body is scanned for its model (a JSON body's, or a
		 * multipart form's model field) even when model-override
		 * names it: the body's model is rewritten to the target's.
		 */
		pr->mp = model_parser_new_type(front_content_type(hdrs));
		if (override != NULL) {
			if (!model_name_valid(override, strlen(override)))
				return (client_early(fc, 400, REJ_BAD_REQUEST, 0,
				    "model-override is not a valid model "
				    "name"));
			strcpy(pr->model_name, override);
			pr->override = true;
		} else if (pr->mp == NULL)
			return (client_early(fc, 400, REJ_BAD_REQUEST, 0,
			    "a multipart/form-data body needs a boundary of 1 "
			    "to 70 characters"));
	}
	client_arm_timer(fc);
	return (EVHTP_RES_OK);
}

/*
 * A piece of the body. It is copied into room made for the whole body
 * (one block, or blocks that double for a chunked one), not kept in
 * libevhtp's pieces: those take twice their size each, and the memory
 * comes back to the system when the request is freed.
 */
static evhtp_res
front_on_body(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
	struct preq		*pr = arg;
	size_t			 len = evbuffer_get_length(buf);
	const unsigned char	*data;
	uint64_t		 room;

	pr->body_bytes += len;
	if (pr->fc == NULL)
		return (EVHTP_RES_ERROR);
	if (client_scan_refused(pr->fc, pr->index))
		return (client_early(pr->fc, pr->fc->scan.status,
		    pr->fc->scan.code, 0, "%s", pr->fc->scan.error));
	if (pr->body_bytes > pr->body_held &&
	    !client_body_take(pr, pr->body_bytes - pr->body_held))
		return (client_early(pr->fc, 503, REJ_BUFFERS_FULL,
		    PROXY_RETRY_AFTER_SECS, "the proxy holds as many request "
		    "bodies as it may; try again later"));
	if (len == 0)
		return (EVHTP_RES_OK);
	data = evbuffer_pullup(buf, -1);
	if (pr->body_room < len) {
		room = pr->body_bytes < FRONT_CHUNK_ROOM_MAX ? pr->body_bytes :
		    FRONT_CHUNK_ROOM_MAX;
		if (room < len)
			room = len;
		pr->body_room = evbuffer_expand(req->buffer_in, room) == 0 ?
		    room : 0;
	}
	evbuffer_add(req->buffer_in, data, len);
	pr->body_room = pr->body_room > len ? pr->body_room - len : 0;
	if (pr->mp != NULL)
		model_parser_feed(pr->mp, data, len);
	evbuffer_drain(buf, len);
	return (EVHTP_RES_OK);
}

/* The client is gone (or the connection failed) while we hold it. */
static void
front_on_error(evhtp_request_t *req, evhtp_error_flags what, void *arg)
{
	struct preq	*pr = arg;

	if (pr->gone)
		return;
	pr->gone = true;
	log_debug("client went away model=%s phase=%d", pr->model_name,
	    pr->phase);
	front_release(pr);
	pr->phase = PR_DONE;
	/* A paused connection is only freed once resumed. */
	preq_resume(pr);
}

/* Take a request out of every structure; it is about to be freed. */
static void
front_release(struct preq *pr)
{
	struct pmodel	*pm = pr->model;
	int64_t		 now;

	route_forget(pr);
	if (pr->us != NULL)
		upstream_abort(pr);
	if (pr->mp != NULL) {
		model_parser_free(pr->mp);
		pr->mp = NULL;
	}
	client_body_give_back(pr);
	if (pm != NULL && pr->status != 0 && !pr->observed) {
		/* Answered (its last byte is out, or the client is gone). */
		pr->observed = true;
		now = clock_us();
		metrics_observe_request(&pm->metrics, pr->status,
		    (double)(now - pr->t_start_us) / 1e6, pr->t_first_us != 0 ?
		    (double)(pr->t_first_us - pr->t_start_us) / 1e6 : -1);
	}
	if (pm != NULL && preq_uncount(pr)) {
		/* Its last byte is out (or the client is gone). */
		pm->in_flight--;
		pm->done++;
		link_demand(pm);
		registry_check_drained(pm);
	}
}

static evhtp_res
front_on_request_fini(evhtp_request_t *req, void *arg)
{
	struct preq	*pr = arg;

	front_release(pr);
	pr->phase = PR_DONE;
	if (pr->fc != NULL)
		client_request_done(pr->fc);
	if (pr->later != NULL)
		event_free(pr->later);
	free(pr->refuse_msg);
	free(pr);
	client_exit_check();
	return (EVHTP_RES_OK);
}

/* ------------------------------------------------------------------ */
/* Routing a complete request. */

static void	front_route_later(evutil_socket_t, short, void *);

/* The request callback: the whole request has been read. */
static void
front_request_cb(evhtp_request_t *req, void *arg)
{
	struct preq	*pr;

	if (req->hooks == NULL || (pr = req->hooks->on_error_arg) == NULL) {
		evhtp_send_reply(req, 500);
		return;
	}
	if (pr->fc != NULL && client_scan_refused(pr->fc, pr->index)) {
		preq_close_after(req);
		preq_error(pr, pr->fc->scan.status, pr->fc->scan.code, 0, "%s",
		    pr->fc->scan.error);
		return;
	}
	if (pr->fc != NULL && pr->fc->scan.begun > pr->index + 1) {
		/*
		 * More requests came behind it. libevhtp reads them in turn
		 * only after a request it saw paused, so pause this one and
		 * route it from the connection's timer, next loop turn.
		 */
		preq_pause(pr);
		pr->later = evtimer_new(proxy_base, front_route_later, pr);
		event_active(pr->later, EV_TIMEOUT, 1);
		return;
	}
	front_route(pr);
}

static void
front_route_later(evutil_socket_t fd, short ev, void *arg)
{
	front_route(arg);
}

/* Answer the request, forward it or queue it. */
static void
front_route(struct preq *pr)
{
	enum model_result	 r;

	if (pr->refuse_status != 0) {
		preq_error(pr, pr->refuse_status, pr->refuse_code, 0, "%s",
		    pr->refuse_msg);
		return;
	}
	switch (pr->route) {
	case ROUTE_HEALTH:
		route_health(pr);
		return;
	case ROUTE_MODELS:
		if (!proxy_conf.have)
			preq_error(pr, 503, REJ_UNAVAILABLE,
			    PROXY_RETRY_AFTER_SECS,
			    "the proxy has no configuration yet");
		else
			route_models(pr);
		return;
	case ROUTE_MODEL_ONE:
		route_model_one(pr);
		return;
	case ROUTE_INFER:
		break;
	default:
		preq_error(pr, 404, REJ_NOT_FOUND, 0, "unknown path");
		return;
	}
	if (pr->mp != NULL) {
		r = model_parser_finish(pr->mp);
		if (pr->override)
			/* Whatever the body holds: the header names the model. */
			pr->has_span = model_parser_span(pr->mp, &pr->span);
		else if (r != MODEL_FOUND) {
			preq_error(pr, 400, REJ_BAD_REQUEST, 0, "%s",
			    model_parser_error(pr->mp));
			return;
		} else
			strcpy(pr->model_name, model_parser_name(pr->mp));
		model_parser_free(pr->mp);
		pr->mp = NULL;
	}
	route_request(pr);
}

/* ------------------------------------------------------------------ */

void
front_init(void)
{
	route_init();
	front_accept_timer = evtimer_new(proxy_base, front_accept_timer_cb,
	    NULL);
	front_htp = evhtp_new(proxy_base, NULL);
	if (front_htp == NULL)
		fatalx("evhtp_new failed");
	evhtp_set_gencb(front_htp, front_request_cb, NULL);
	client_init(front_htp, (evhtp_hook)front_on_headers);
}

int
front_listen_fd(int fd)
{
	/* systemd's sockets are blocking; the listener's loop must not be. */
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if (evhtp_accept_socket(front_htp, fd, 1024) != 0)
		return (-1);
	evconnlistener_set_error_cb(front_htp->server, front_accept_error);
	front_accept_update();
	return (0);
}

int
front_listen(const char *addr, uint16_t port)
{
	int	fd;

	if ((fd = listen_tcp(addr, port)) == -1)
		return (-1);
	if (front_listen_fd(fd) != 0) {
		close(fd);
		return (-1);
	}
	log_info("listening addr=%s port=%u", addr, port);
	return (0);
}

bool
front_listening(void)
{
	return (front_htp != NULL && front_htp->server != NULL);
}

/*
 * Would the API port face the network with no api_keys? Only when the
 * config says so (allow_unauthenticated). If it would and may not, why
 * holds the one-line refusal.
 */
static bool
front_refuse_open(const char *addr, int fd, char *why, size_t len)
{
	char	name[80];

	if (proxy_conf.n_api_keys != 0 || proxy_conf.allow_unauthenticated ||
	    (fd >= 0 ? listen_fd_is_loopback(fd) :
	    listen_addr_is_loopback(addr)))
		return (false);
	if (fd >= 0)
		addr = listen_fd_name(fd, name, sizeof(name));
	snprintf(why, len, "refusing to serve the API on %s with no api_keys, "
	    "open to anyone who reaches it (set proxy.api_keys, listen on "
	    "127.0.0.1, or set proxy.allow_unauthenticated: true)", addr);
	return (true);
}

/*
 * Without --listen or a socket from systemd, bind where the config says.
 * -1, with why: the port would be open to the network with no api_keys.
 */
int
front_apply_config(char *why, size_t len)
{
	const char	*addr;

	if (front_listening()) {
		if (front_refuse_open(NULL,
		    evconnlistener_get_fd(front_htp->server), why, len))
			return (-1);
	} else if (!proxy_exiting && proxy_conf.port != 0) {
		addr = proxy_conf.listen_address != NULL ?
		    proxy_conf.listen_address : "127.0.0.1";
		if (front_refuse_open(addr, -1, why, len))
			return (-1);
		if (front_listen(addr, proxy_conf.port) != 0)
			log_warnx("cannot listen on the proxy port addr=%s "
			    "port=%u", addr, proxy_conf.port);
	}
	front_accept_update();
	return (0);
}

/* SIGTERM: accept nothing more; fail what waits; let what runs finish. */
void
front_stop_accepting(void)
{
	if (front_htp != NULL && front_htp->server != NULL)
		evhtp_unbind_socket(front_htp);
	route_fail_all("the proxy is shutting down");
}

void
front_shutdown(void)
{
	client_shutdown();
	if (front_htp != NULL) {
		evhtp_unbind_socket(front_htp);
		evhtp_free(front_htp);
	}
	front_htp = NULL;
	route_shutdown();
	if (front_accept_timer != NULL)
		event_free(front_accept_timer);
	front_accept_timer = NULL;
	linger_shutdown();
}

void
front_metrics_view(struct metrics_proxy_view *v)
{
	memset(v, 0, sizeof(*v));
	v->connections = client_count() + linger_count();
	v->max_connections = proxy_conf.max_connections;
	v->accept_paused = front_paused;
	v->supervisor_connected = link_connected();
	memcpy(v->rejected, preq_reject_counts(), sizeof(v->rejected));
	v->waiting_for_config = route_pending_count();
	v->body_bytes = client_body_bytes();
	v->max_body_bytes = proxy_conf.max_buffered_body;
}
