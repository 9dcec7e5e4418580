/*
 * front.c -- the proxy port: libevhtp's server, the limits checked while a
 * request arrives (401, 404, 413, 431, connection count), and the routing
 * of a complete request (/health, /v1/models, or forward/queue by model).
 *
 * A request's life: on_headers creates its struct preq and checks what the
 * head alone decides; on_read feeds the body to the model parser and
 * counts it; the request callback routes it. Anything answered before the
 * body is read is answered on a copy of the socket after libevhtp lets go
 * of it, with "Connection: close" and a lingering close (linger.c), since
 * libevhtp would otherwise drop the answer with the connection.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

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
#include <yajl/yajl_gen.h>

#include "clock.h"
#include "linger.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

static evhtp_t			*front_htp;
static TAILQ_HEAD(, fconn)	 front_conns = TAILQ_HEAD_INITIALIZER(front_conns);
static uint32_t			 front_nconns;
static bool			 front_paused;		/* accept disabled */
static struct event		*front_accept_timer;	/* EMFILE backoff */
static uint64_t			 front_rejected[REJ__COUNT];
static uint32_t			 front_active;		/* forwarded, not freed */

static const struct timeval	 front_idle_timeout = { 120, 0 };

static void	front_release(struct preq *);
static void	front_accept_update(void);

/* The request is answered (or abandoned). */
static void
front_set_done(struct preq *pr)
{
	pr->phase = PR_DONE;
}

void
front_count_reject(enum reject_code code)
{
	if ((unsigned)code < REJ__COUNT)
		front_rejected[code]++;
}

/* {"error":{"message":…,"type":"llmux_error","code":…}} into buf. */
static void
front_error_body(struct evbuffer *buf, const char *msg, const char *code)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 len;

	g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"error", 5);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"message", 7);
	yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
	yajl_gen_string(g, (const unsigned char *)"type", 4);
	yajl_gen_string(g, (const unsigned char *)"llmux_error", 11);
	yajl_gen_string(g, (const unsigned char *)"code", 4);
	yajl_gen_string(g, (const unsigned char *)code, strlen(code));
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &out, &len);
	evbuffer_add(buf, out, len);
	evbuffer_add(buf, "\n", 1);
	yajl_gen_free(g);
}

/*
 * Stop parsing more requests on this connection, but keep reading it.
 * evhtp_request_pause would also stop reading, which hides a client that
 * goes away (and costs two epoll_ctl calls when reading is turned back
 * on), so this sets the same flags libevhtp's pause sets and leaves the
 * socket read: libevhtp's read callback ignores the bytes while paused,
 * and the connection's read watermark bounds them, so EOF is seen at once.
 */
void
front_pause(struct preq *pr)
{
	evhtp_connection_t	*conn = evhtp_request_get_connection(pr->req);

	if (pr->paused)
		return;
	pr->paused = true;
	pr->req->status = EVHTP_RES_PAUSE;
	conn->flags |= EVHTP_CONN_FLAG_PAUSED;
	bufferevent_set_timeouts(conn->bev, NULL, NULL);
	if (!(bufferevent_get_enabled(conn->bev) & EV_READ))
		bufferevent_enable(conn->bev, EV_READ);
}

/*
 * Close the connection once this answer is out. evhtp_request_set_keepalive
 * can only turn keep-alive on (with 0 it does nothing), so clear the flag
 * libevhtp reads when the answer is finished: a Connection: close header
 * follows from it, and the connection is closed instead of kept.
 */
void
front_close_after(evhtp_request_t *req)
{
	req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
}

static void
front_resume(struct preq *pr)
{
	if (pr->paused) {
		pr->paused = false;
		evhtp_request_resume(pr->req);
	}
}

void
front_error(struct preq *pr, int status, enum reject_code code,
    int retry_after, const char *fmt, ...)
{
	evhtp_request_t	*req = pr->req;
	char		 msg[1024], ra[16];
	va_list		 ap;

	if (pr->phase == PR_DONE || pr->gone)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	front_count_reject(code);
	log_debug("request refused status=%d code=%s model=%s msg=\"%s\"",
	    status, metrics_reject_name(code), pr->model_name, msg);

	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	if (retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", retry_after);
		evhtp_headers_add_header(req->headers_out,
		    evhtp_header_new("Retry-After", ra, 0, 1));
	}
	if (proxy_exiting)
		front_close_after(req);
	front_error_body(req->buffer_out, msg, metrics_reject_name(code));
	front_set_done(pr);
	evhtp_send_reply(req, status);
	front_resume(pr);
}

/* Send a JSON reply made by the proxy (health, models). */
void
front_reply_json(struct preq *pr, int status, const unsigned char *json,
    size_t len)
{
	evhtp_request_t	*req = pr->req;

	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	if (proxy_exiting)
		front_close_after(req);
	evbuffer_add(req->buffer_out, json, len);
	front_set_done(pr);
	evhtp_send_reply(req, status);
	front_resume(pr);
}

void
front_finish(struct preq *pr)
{
	struct bufferevent	*bev;

	if (pr->phase == PR_DONE)
		return;
	front_set_done(pr);
	evhtp_send_reply_end(pr->req);
	front_resume(pr);
	/*
	 * libevhtp finishes a request in its write callback, which runs when
	 * the output drains; if the answer went straight to the socket there
	 * is nothing to drain, so run it once.
	 */
	bev = evhtp_request_get_bev(pr->req);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

/* The request is forwarded: paused, and active until its answer is out. */
void
front_mark_upstream(struct preq *pr)
{
	front_pause(pr);
	pr->phase = PR_UPSTREAM;
	pr->counted = true;
	front_active++;
}

uint32_t
front_active_requests(void)
{
	return (front_active);
}

/*
 * Shutting down, may the proxy exit now? Not while a request is forwarded,
 * nor while a connection has a request in progress (being read, queued,
 * or its answer being written: a 503 for a queued one included), nor
 * while one accepted before the signal has not sent its first request:
 * it came before the socket was handed over, so it is answered here. A
 * connection that has been answered and is idle is closed.
 */
bool
front_settled(void)
{
	struct fconn		*fc;
	struct bufferevent	*bev;

	if (front_active > 0)
		return (false);
	TAILQ_FOREACH(fc, &front_conns, entry) {
		bev = evhtp_connection_get_bev(fc->conn);
		if (fc->pr != NULL || fc->served == 0 || (bev != NULL &&
		    evbuffer_get_length(bufferevent_get_input(bev)) > 0))
			return (false);
	}
	return (true);
}

/* After a request or a connection ends: exit if that was the last. */
static void
front_exit_check(void)
{
	if (proxy_exiting && front_settled())
		event_base_loopexit(proxy_base, NULL);
}

/* Remember an answer to give before the body is read; the hook fails. */
static evhtp_res
front_early(struct fconn *fc, int status, enum reject_code code,
    const char *fmt, ...)
{
	va_list	ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fc->early_status == 0) {
		fc->early_status = status;
		fc->early_code = code;
		fc->early_msg = xstrdup(msg);
	}
	return (EVHTP_RES_ERROR);
}

/* ------------------------------------------------------------------ */
/* Connections and accept. */

static void
front_accept_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	front_paused = false;
	front_accept_update();
}

/* Accept while under the connection limit; back off otherwise. */
static void
front_accept_update(void)
{
	struct evconnlistener	*lev;
	uint32_t		 max = proxy_conf.max_connections;

	if (front_htp == NULL || (lev = front_htp->server) == NULL)
		return;
	if (proxy_exiting) {
		evconnlistener_disable(lev);
		return;
	}
	if (front_nconns >= max) {
		if (!front_paused)
			log_warnx("connection limit reached, not accepting "
			    "connections=%u max=%u", front_nconns, max);
		front_paused = true;
		evconnlistener_disable(lev);
	} else if (front_paused && !evtimer_pending(front_accept_timer, NULL)) {
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

static evhtp_res	front_on_header(evhtp_request_t *, evhtp_header_t *,
			    void *);
static evhtp_res	front_on_headers(evhtp_request_t *, evhtp_headers_t *,
			    void *);
static evhtp_res	front_on_conn_fini(evhtp_connection_t *, void *);

static evhtp_res
front_post_accept(evhtp_connection_t *conn, void *arg)
{
	struct fconn		*fc;
	struct bufferevent	*bev = evhtp_connection_get_bev(conn);
	int			 one = 1;

	if (proxy_exiting)
		return (EVHTP_RES_ERROR);
	fc = xcalloc(1, sizeof(*fc));
	fc->conn = conn;
	TAILQ_INSERT_TAIL(&front_conns, fc, entry);
	front_nconns++;
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	/* Bound what a client can make us hold while a request is paused. */
	bufferevent_setwatermark(bev, EV_READ, 0, 128 * 1024);
	bufferevent_set_timeouts(bev, &front_idle_timeout, NULL);
	evhtp_connection_set_hook(conn, evhtp_hook_on_header,
	    (evhtp_hook)front_on_header, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_headers,
	    (evhtp_hook)front_on_headers, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
	    (evhtp_hook)front_on_conn_fini, fc);
	front_accept_update();
	return (EVHTP_RES_OK);
}

/*
 * libevhtp is freeing the connection. If it does so because of a bad or
 * refused request, answer it first on a duplicate of the socket.
 */
static evhtp_res
front_on_conn_fini(evhtp_connection_t *conn, void *arg)
{
	struct fconn		*fc = arg;
	struct bufferevent	*bev = evhtp_connection_get_bev(conn);
	htpparse_error		 perr = htparse_error_none;
	int			 status = fc->early_status;
	enum reject_code	 code = fc->early_code;
	const char		*msg = fc->early_msg;
	struct evbuffer		*body;

	if (conn->parser != NULL)
		perr = htparser_get_error(conn->parser);
	if (status == 0 && perr != htparse_error_none &&
	    perr != htparse_error_user) {
		if (perr == htparse_error_too_big) {
			status = 431;
			code = REJ_HEADERS_TOO_LARGE;
			msg = "request line or header field is too large";
		} else {
			status = 400;
			code = REJ_BAD_REQUEST;
			msg = "malformed HTTP request";
		}
	}
	if (status != 0 && bev != NULL) {
		front_count_reject(code);
		body = evbuffer_new();
		front_error_body(body, msg, metrics_reject_name(code));
		linger_reply(bev, status, body);
		evbuffer_free(body);
	}
	if (fc->pr != NULL)
		fc->pr->fc = NULL;
	TAILQ_REMOVE(&front_conns, fc, entry);
	front_nconns--;
	free(fc->early_msg);
	free(fc);
	front_accept_update();
	front_exit_check();
	return (EVHTP_RES_OK);
}

/* ------------------------------------------------------------------ */
/* The request as it arrives. */

static evhtp_res
front_on_header(evhtp_request_t *req, evhtp_header_t *h, void *arg)
{
	struct fconn	*fc = arg;

	fc->hdr_bytes += h->klen + h->vlen + 4;
	if (fc->hdr_bytes > proxy_conf.max_header_bytes)
		return (front_early(fc, 431, REJ_HEADERS_TOO_LARGE,
		    "request headers are larger than %u bytes",
		    proxy_conf.max_header_bytes));
	return (EVHTP_RES_OK);
}

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
	pr->fc = fc;
	pr->phase = PR_READING;
	pr->t_start_us = clock_us();
	fc->pr = pr;
	evhtp_request_set_hook(req, evhtp_hook_on_read,
	    (evhtp_hook)front_on_body, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	    (evhtp_hook)front_on_request_fini, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_error,
	    (evhtp_hook)(void (*)(void))front_on_error, pr);

	path = req->uri != NULL && req->uri->path != NULL ?
	    req->uri->path->full : "/";
	method = evhtp_request_get_method(req);
	override = evhtp_header_find(hdrs, "model-override");

	if (strcmp(path, "/health") == 0)
		pr->route = ROUTE_HEALTH;
	else if (strncmp(path, "/v1/", 4) == 0) {
		if (!front_authorized(req))
			return (front_early(fc, 401, REJ_UNAUTHORIZED,
			    "invalid or missing API key"));
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
		return (front_early(fc, 404, REJ_NOT_FOUND,
		    "unknown path %s (llmux serves /v1/* and /health)", path));

	clen = htparser_get_content_length(req->conn->parser);
	if (clen > proxy_conf.max_body_bytes && clen != UINT64_MAX)
		return (front_early(fc, 413, REJ_TOO_LARGE,
		    "request body is larger than %llu bytes",
		    (unsigned long long)proxy_conf.max_body_bytes));

	if (pr->route == ROUTE_INFER) {
		if (override != NULL) {
			if (!model_name_valid(override, strlen(override)))
				return (front_early(fc, 400, REJ_BAD_REQUEST,
				    "model-override is not a valid model "
				    "name"));
			strcpy(pr->model_name, override);
		} else
			pr->mp = model_parser_new();
	}
	return (EVHTP_RES_OK);
}

static evhtp_res
front_on_body(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
	struct preq		*pr = arg;
	struct evbuffer_iovec	 v[8];
	size_t			 len = evbuffer_get_length(buf);
	int			 n, i;

	pr->body_bytes += len;
	if (pr->body_bytes > proxy_conf.max_body_bytes && pr->fc != NULL)
		return (front_early(pr->fc, 413, REJ_TOO_LARGE,
		    "request body is larger than %llu bytes",
		    (unsigned long long)proxy_conf.max_body_bytes));
	if (pr->mp == NULL)
		return (EVHTP_RES_OK);
	n = evbuffer_peek(buf, -1, NULL, v, 8);
	for (i = 0; i < n && i < 8; i++) {
		if (model_parser_feed(pr->mp, v[i].iov_base, v[i].iov_len) !=
		    MODEL_MORE)
			break;
	}
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
	front_set_done(pr);
	/* A paused connection is only freed once resumed. */
	front_resume(pr);
}

/* Take a request out of every structure; it is about to be freed. */
static void
front_release(struct preq *pr)
{
	struct pmodel	*pm = pr->model;

	route_forget(pr);
	if (pr->us != NULL)
		upstream_abort(pr);
	if (pr->mp != NULL) {
		model_parser_free(pr->mp);
		pr->mp = NULL;
	}
	if (pr->counted && pm != NULL) {
		/* Its last byte is out (or the client is gone). */
		pr->counted = false;
		front_active--;
		pm->in_flight--;
		pm->done++;
		supervisor_demand(pm);
		registry_check_drained(pm);
	}
}

static evhtp_res
front_on_request_fini(evhtp_request_t *req, void *arg)
{
	struct preq		*pr = arg;
	struct bufferevent	*bev;

	front_release(pr);
	front_set_done(pr);
	if (pr->fc != NULL) {
		pr->fc->pr = NULL;
		pr->fc->served++;
		pr->fc->hdr_bytes = 0;
		if ((bev = evhtp_request_get_bev(req)) != NULL)
			bufferevent_set_timeouts(bev, &front_idle_timeout,
			    NULL);
	}
	free(pr);
	front_exit_check();
	return (EVHTP_RES_OK);
}

/* ------------------------------------------------------------------ */
/* Routing a complete request. */

/* The request callback: the whole request has been read. */
static void
front_request_cb(evhtp_request_t *req, void *arg)
{
	struct preq		*pr;
	enum model_result	 r;

	if (req->hooks == NULL || (pr = req->hooks->on_error_arg) == NULL) {
		evhtp_send_reply(req, 500);
		return;
	}
	switch (pr->route) {
	case ROUTE_HEALTH:
		route_health(pr);
		return;
	case ROUTE_MODELS:
		if (!proxy_conf.have)
			front_error(pr, 503, REJ_UNAVAILABLE,
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
		front_error(pr, 404, REJ_NOT_FOUND, 0, "unknown path");
		return;
	}
	if (pr->mp != NULL) {
		r = model_parser_finish(pr->mp);
		if (r != MODEL_FOUND) {
			front_error(pr, 400, REJ_BAD_REQUEST, 0, "%s",
			    model_parser_error(pr->mp));
			return;
		}
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
	evhtp_set_post_accept_cb(front_htp, front_post_accept, NULL);
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

/* Without --listen or a socket from systemd, bind where the config says. */
void
front_apply_config(void)
{
	const char	*addr;

	if (!front_listening() && !proxy_exiting && proxy_conf.port != 0) {
		addr = proxy_conf.listen_address != NULL ?
		    proxy_conf.listen_address : "0.0.0.0";
		if (front_listen(addr, proxy_conf.port) != 0)
			log_warnx("cannot listen on the proxy port addr=%s "
			    "port=%u", addr, proxy_conf.port);
	}
	front_accept_update();
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
	struct fconn	*fc;

	while ((fc = TAILQ_FIRST(&front_conns)) != NULL)
		evhtp_connection_free(fc->conn);
	if (front_htp != NULL) {
		evhtp_unbind_socket(front_htp);
		evhtp_free(front_htp);
	}
	front_htp = NULL;
	route_shutdown();
	if (front_accept_timer != NULL)
		event_free(front_accept_timer);
	linger_shutdown();
}

void
front_metrics_view(struct metrics_proxy_view *v)
{
	memset(v, 0, sizeof(*v));
	v->connections = front_nconns + linger_count();
	v->max_connections = proxy_conf.max_connections;
	v->accept_paused = front_paused;
	v->supervisor_connected = supervisor_connected();
	memcpy(v->rejected, front_rejected, sizeof(v->rejected));
	v->waiting_for_config = route_pending_count();
}
