/*
 * front.c -- the proxy port: libevhtp's server, what holds it against
 * clients that are slow, idle, numerous or deceitful, and the routing of a
 * complete request (/health, /v1/models, or forward/queue by model).
 *
 * A connection: its address may hold max_connections_per_ip of them
 * (127.0.0.1 and ::1 any number), all together max_connections (loopback
 * PROXY_LOOPBACK_RESERVE more); at the limit the oldest idle connection is
 * closed for the newcomer, else the newcomer is answered 503 with
 * Retry-After. Every byte it sends goes through the framing checks of
 * reqscan.c as it arrives, before libevhtp parses it. One timer holds its
 * time limit: a head must come whole within header_timeout_ms, a body
 * must not stop for body_timeout_ms, and an idle connection is closed
 * after keepalive_timeout_secs; a request held (queued, forwarded,
 * streamed) has none.
 *
 * A request's life: on_headers creates its struct preq and checks what the
 * head alone decides (the framing, 401, 404, room for its body under
 * max_buffered_body_mb); on_read stores the body compactly, counts it and
 * feeds it to the model scanner; the request callback routes it. Anything
 * answered before the body is read is answered on a copy of the socket
 * after libevhtp lets go of it, with "Connection: close" and a lingering
 * close (linger.c), since libevhtp would otherwise drop the answer with the
 * connection; the others are answered through preq.c.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <malloc.h>
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

#define FRONT_TRIM_BYTES	(4u << 20)	/* freed bodies, then trim */
#define FRONT_TRIM_DELAY_MS	200
#define FRONT_CHUNK_ROOM_MAX	(8u << 20)	/* a chunked body grows so */
#define FRONT_WARN_EVERY_MS	10000		/* refusing connections */

/* Which time limit a connection is under. */
enum front_wait {
	FW_NONE,		/* a request is held: none */
	FW_HEAD,		/* header_timeout_ms */
	FW_BODY,		/* body_timeout_ms since the last bytes */
	FW_IDLE,		/* keepalive_timeout_secs */
};

static evhtp_t			*front_htp;
static TAILQ_HEAD(, fconn)	 front_conns = TAILQ_HEAD_INITIALIZER(front_conns);
static TAILQ_HEAD(, fconn)	 front_idle = TAILQ_HEAD_INITIALIZER(front_idle);
static uint32_t			 front_nconns;
static bool			 front_paused;		/* accept disabled */
static struct event		*front_accept_timer;	/* EMFILE backoff */
static uint64_t			 front_body_held;	/* max_buffered_body */
static uint64_t			 front_body_freed;	/* since the last trim */
static struct event		*front_trim_timer;
static uint64_t			 front_refused;		/* connections */
static int64_t			 front_refused_warned;

static void	front_release(struct preq *);
static void	front_accept_update(void);
static void	front_conn_arm(struct fconn *);
static void	front_route(struct preq *);

uint32_t
front_active_requests(void)
{
	return (preq_active());
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

	if (preq_active() > 0)
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
    int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static evhtp_res
front_early(struct fconn *fc, int status, enum reject_code code,
    int retry_after, const char *fmt, ...)
{
	va_list	ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (fc->early_status == 0) {
		fc->early_status = status;
		fc->early_code = code;
		fc->early_retry = retry_after;
		fc->early_msg = xstrdup(msg);
	}
	return (EVHTP_RES_ERROR);
}

/* ------------------------------------------------------------------ */
/* Body memory: max_buffered_body_mb, and a quarter of it per address. */

/* Count n more body bytes for pr, if they fit. */
static bool
front_body_take(struct preq *pr, uint64_t n)
{
	struct peer	*p = pr->peer;
	uint64_t	 max = proxy_conf.max_buffered_body;

	if (n == 0)
		return (true);
	if (front_body_held + n > max)
		return (false);
	/* An address holding nothing may always start one body. */
	if (!p->loopback && p->body > 0 && p->body + n > max / 4)
		return (false);
	front_body_held += n;
	p->body += n;
	pr->body_held += n;
	return (true);
}

/*
 * Bodies are freed to the allocator, which keeps small freed blocks for
 * itself: after a flood of bodies, give the memory back to the system.
 */
static void
front_trim_cb(evutil_socket_t fd, short ev, void *arg)
{
	front_body_freed = 0;
	malloc_trim(0);
}

/* pr's body is about to be freed (with its request). */
static void
front_body_give_back(struct preq *pr)
{
	struct timeval	tv = { 0, FRONT_TRIM_DELAY_MS * 1000 };

	if (pr->body_held == 0)
		return;
	front_body_held -= pr->body_held;
	pr->peer->body -= pr->body_held;
	front_body_freed += pr->body_held;
	pr->body_held = 0;
	peer_put(pr->peer);
	pr->peer = NULL;
	if (front_body_freed >= FRONT_TRIM_BYTES &&
	    !evtimer_pending(front_trim_timer, NULL))
		evtimer_add(front_trim_timer, &tv);
}

/* ------------------------------------------------------------------ */
/* Idle connections, the oldest first. */

static void
front_idle_add(struct fconn *fc)
{
	if (!fc->idle) {
		fc->idle = true;
		TAILQ_INSERT_TAIL(&front_idle, fc, idle_entry);
	}
}

static void
front_idle_del(struct fconn *fc)
{
	if (fc->idle) {
		fc->idle = false;
		TAILQ_REMOVE(&front_idle, fc, idle_entry);
	}
}

/* At the connection limit: close the oldest idle connection, if any. */
static bool
front_close_idle(void)
{
	struct fconn	*fc;

	if ((fc = TAILQ_FIRST(&front_idle)) == NULL)
		return (false);
	log_debug("connection limit: closing the oldest idle connection");
	evhtp_connection_free(fc->conn);
	return (true);
}

/* ------------------------------------------------------------------ */
/* Time limits, and what the framing checks refused. */

/* The connection's next deadline (clock_ms), or -1: none. */
static int64_t
front_deadline(const struct fconn *fc, enum front_wait *what)
{
	int64_t	start;

	if (fc->pr != NULL) {
		if (fc->pr->phase == PR_READING && !fc->pr->paused) {
			*what = FW_BODY;
			return (fc->read_ms + proxy_conf.body_timeout_ms);
		}
		*what = FW_NONE;
		return (-1);
	}
	if (reqscan_phase(&fc->scan) == RQ_IDLE && fc->served > 0) {
		*what = FW_IDLE;
		return (fc->idle_ms + (int64_t)proxy_conf.keepalive_timeout_ms);
	}
	/* A head, or a new connection's first: timed from when it began. */
	*what = FW_HEAD;
	start = fc->head_ms > fc->idle_ms ? fc->head_ms : fc->idle_ms;
	return (start + proxy_conf.header_timeout_ms);
}

static void
front_conn_arm(struct fconn *fc)
{
	enum front_wait	 what;
	int64_t		 deadline, left;
	struct timeval	 tv;

	if ((deadline = front_deadline(fc, &what)) < 0) {
		evtimer_del(fc->timer);
		return;
	}
	left = deadline - clock_ms();
	if (left < 0)
		left = 0;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000 + 1000;
	evtimer_add(fc->timer, &tv);
}

/* Look at the connection again, at once (not from within libevhtp). */
static void
front_conn_schedule(struct fconn *fc)
{
	event_active(fc->timer, EV_TIMEOUT, 1);
}

/* Answer the connection's current request with an error and close it. */
static void
front_refuse(struct fconn *fc, int status, enum reject_code code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
front_refuse(struct fconn *fc, int status, enum reject_code code,
    const char *fmt, ...)
{
	va_list	ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	front_early(fc, status, code, 0, "%s", msg);
	evhtp_connection_free(fc->conn);
}

/*
 * Did the framing checks refuse the request the connection is at (not one
 * sent after a request still being answered)?
 */
static bool
front_scan_refused(const struct fconn *fc, uint64_t index)
{
	return (reqscan_phase(&fc->scan) == RQ_FAILED &&
	    fc->scan.failed_request == index);
}

/*
 * The connection's timer, or a look at it after a request ends or the
 * framing checks refused something: answer a refusal that is due, let
 * libevhtp read requests that came while the last one was answered, close
 * a connection past its time limit, or wait for the next.
 */
static void
front_conn_check(evutil_socket_t fd, short ev, void *arg)
{
	struct fconn		*fc = arg;
	struct bufferevent	*bev = evhtp_connection_get_bev(fc->conn);
	struct reqscan		*rs = &fc->scan;
	enum front_wait		 what;
	int64_t			 deadline;

	if (fc->pr != NULL && fc->pr->route_later) {
		fc->pr->route_later = false;
		front_route(fc->pr);
		return;
	}
	if ((fc->pr == NULL && front_scan_refused(fc, fc->served)) ||
	    (fc->pr != NULL && fc->pr->phase == PR_READING &&
	    front_scan_refused(fc, fc->pr->index))) {
		log_debug("request refused status=%d reason=\"%s\"",
		    rs->status, rs->error);
		front_refuse(fc, rs->status, rs->code, "%s", rs->error);
		return;
	}
	if (fc->pr == NULL && bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		/*
		 * Pipelined: libevhtp reads a connection's next request only
		 * when more bytes come, and none may; it reads it now.
		 */
		front_conn_arm(fc);
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	deadline = front_deadline(fc, &what);
	if (deadline < 0 || clock_ms() < deadline) {
		front_conn_arm(fc);
		return;
	}
	switch (what) {
	case FW_BODY:
		front_refuse(fc, 408, REJ_REQUEST_TIMEOUT, "the request body "
		    "sent nothing for %u ms", proxy_conf.body_timeout_ms);
		break;
	case FW_HEAD:
		if (reqscan_phase(rs) != RQ_IDLE) {
			front_refuse(fc, 408, REJ_REQUEST_TIMEOUT, "the request "
			    "head did not come whole within %u ms",
			    proxy_conf.header_timeout_ms);
			break;
		}
		/* Nothing came: there is nothing to answer. */
		/* FALLTHROUGH */
	default:
		log_debug("closing an idle connection");
		evhtp_connection_free(fc->conn);
		break;
	}
}

/*
 * Bytes came from the client: the framing checks read them now, before
 * libevhtp does (this runs as they are added to the connection's input).
 */
static void
front_scan_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct fconn		*fc = arg;
	struct reqscan_limits	 lim;
	struct evbuffer_ptr	 at;
	struct evbuffer_iovec	 v[4];
	size_t			 len, left, k;
	uint64_t		 begun = fc->scan.begun;
	int			 n, i;

	if (info->n_added == 0)
		return;
	fc->read_ms = clock_ms();
	if (reqscan_phase(&fc->scan) == RQ_FAILED)
		return;
	lim.max_body = proxy_conf.max_body_bytes;
	lim.max_head = proxy_conf.max_header_bytes;
	len = evbuffer_get_length(buf);
	left = info->n_added < len ? info->n_added : len;
	if (evbuffer_ptr_set(buf, &at, len - left, EVBUFFER_PTR_SET) != 0)
		return;
	while (left > 0) {
		if ((n = evbuffer_peek(buf, left, &at, v, 4)) <= 0)
			break;
		for (i = 0; i < n && i < 4 && left > 0; i++) {
			k = v[i].iov_len < left ? v[i].iov_len : left;
			if (!reqscan_feed(&fc->scan, v[i].iov_base, k, &lim)) {
				left = 0;
				break;
			}
			left -= k;
			evbuffer_ptr_set(buf, &at, k, EVBUFFER_PTR_ADD);
		}
	}
	if (reqscan_phase(&fc->scan) == RQ_FAILED) {
		front_conn_schedule(fc);
		return;
	}
	if (fc->scan.begun != begun) {
		/* A head began: its time limit starts now. */
		fc->head_ms = fc->read_ms;
		if (fc->pr == NULL) {
			front_idle_del(fc);
			front_conn_arm(fc);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Connections and accept. */

static void
front_accept_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	front_paused = false;
	front_accept_update();
}

/* Accept unless shutting down or backing off. */
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

/* A connection over the limits: 503 with Retry-After, and closed. */
static evhtp_res
front_refuse_accept(struct bufferevent *bev, struct peer *peer,
    const char *why, uint32_t limit)
{
	struct evbuffer	*body;
	char		 msg[256];
	int64_t		 now = clock_ms();

	snprintf(msg, sizeof(msg), "%s (%u); try again later", why, limit);
	preq_count_reject(REJ_TOO_MANY_CONNECTIONS);
	front_refused++;
	if (now - front_refused_warned >= FRONT_WARN_EVERY_MS) {
		log_warnx("refusing connections reason=\"%s\" refused=%llu "
		    "connections=%u", why, (unsigned long long)front_refused,
		    front_nconns);
		front_refused_warned = now;
	}
	body = evbuffer_new();
	preq_error_body(body, msg,
	    metrics_reject_name(REJ_TOO_MANY_CONNECTIONS));
	linger_reply(bev, 503, PROXY_RETRY_AFTER_SECS, body);
	evbuffer_free(body);
	peer_put(peer);
	return (EVHTP_RES_ERROR);
}

static evhtp_res	front_on_headers(evhtp_request_t *, evhtp_headers_t *,
			    void *);
static evhtp_res	front_on_conn_fini(evhtp_connection_t *, void *);

static evhtp_res
front_post_accept(evhtp_connection_t *conn, void *arg)
{
	struct fconn		*fc;
	struct bufferevent	*bev = evhtp_connection_get_bev(conn);
	struct peer		*peer;
	uint32_t		 limit;
	int			 one = 1;

	if (proxy_exiting)
		return (EVHTP_RES_ERROR);
	peer = peer_get(conn->saddr);
	if (!peer->loopback &&
	    peer->conns >= proxy_conf.max_connections_per_ip)
		return (front_refuse_accept(bev, peer, "too many connections "
		    "from this address", proxy_conf.max_connections_per_ip));
	limit = proxy_conf.max_connections;
	if (peer->loopback)
		limit += PROXY_LOOPBACK_RESERVE;
	if (front_nconns >= limit && !front_close_idle())
		return (front_refuse_accept(bev, peer, "the proxy has too "
		    "many connections", proxy_conf.max_connections));
	fc = xcalloc(1, sizeof(*fc));
	fc->conn = conn;
	fc->peer = peer;
	peer->conns++;
	fc->idle_ms = fc->head_ms = fc->read_ms = clock_ms();
	reqscan_init(&fc->scan);
	fc->timer = evtimer_new(proxy_base, front_conn_check, fc);
	TAILQ_INSERT_TAIL(&front_conns, fc, entry);
	front_nconns++;
	front_idle_add(fc);
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	/* Bound what a client can make us hold while a request is paused. */
	bufferevent_setwatermark(bev, EV_READ, 0, 128 * 1024);
	fc->scan_cb = evbuffer_add_cb(bufferevent_get_input(bev),
	    front_scan_input, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_headers,
	    (evhtp_hook)front_on_headers, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
	    (evhtp_hook)front_on_conn_fini, fc);
	front_conn_arm(fc);
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
		if (front_scan_refused(fc, fc->pr != NULL ? fc->pr->index :
		    fc->served)) {
			/* The framing checks say better what is wrong. */
			status = fc->scan.status;
			code = fc->scan.code;
			msg = fc->scan.error;
		} else if (perr == htparse_error_too_big) {
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
		preq_count_reject(code);
		body = evbuffer_new();
		preq_error_body(body, msg, metrics_reject_name(code));
		linger_reply(bev, status, fc->early_retry, body);
		evbuffer_free(body);
	}
	if (fc->pr != NULL)
		fc->pr->fc = NULL;
	if (bev != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(bev),
		    fc->scan_cb);
	event_free(fc->timer);
	front_idle_del(fc);
	fc->peer->conns--;
	peer_put(fc->peer);
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
		return (front_early(fc, status, code, 0, "%s", msg));
	pr->refuse_status = status;
	pr->refuse_code = code;
	pr->refuse_msg = xstrdup(msg);
	return (EVHTP_RES_OK);
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
	pr->peer = fc->peer;
	pr->phase = PR_READING;
	pr->index = fc->heads++;
	pr->t_start_us = clock_us();
	fc->pr = pr;
	front_idle_del(fc);
	evhtp_request_set_hook(req, evhtp_hook_on_read,
	    (evhtp_hook)front_on_body, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	    (evhtp_hook)front_on_request_fini, pr);
	evhtp_request_set_hook(req, evhtp_hook_on_error,
	    (evhtp_hook)(void (*)(void))front_on_error, pr);
	if (front_scan_refused(fc, pr->index))
		return (front_early(fc, fc->scan.status, fc->scan.code, 0, "%s",
		    fc->scan.error));

	path = req->uri != NULL && req->uri->path != NULL ?
	    req->uri->path->full : "/";
	method = evhtp_request_get_method(req);
	override = evhtp_header_find(hdrs, "model-override");

	if (strcmp(path, "/health") == 0)
		pr->route = ROUTE_HEALTH;
	else if (strncmp(path, "/v1/", 4) == 0) {
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
		if (!front_body_take(pr, clen))
			return (front_early(fc, 503, REJ_BUFFERS_FULL,
			    PROXY_RETRY_AFTER_SECS, "the proxy holds as many "
			    "request bodies as it may; try again later"));
		if (evbuffer_expand(req->buffer_in, clen) == 0)
			pr->body_room = clen;
	}

	if (pr->route == ROUTE_INFER) {
		if (override != NULL) {
			if (!model_name_valid(override, strlen(override)))
				return (front_early(fc, 400, REJ_BAD_REQUEST, 0,
				    "model-override is not a valid model "
				    "name"));
			strcpy(pr->model_name, override);
		} else
			pr->mp = model_parser_new();
	}
	front_conn_arm(fc);
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
	if (front_scan_refused(pr->fc, pr->index))
		return (front_early(pr->fc, pr->fc->scan.status,
		    pr->fc->scan.code, 0, "%s", pr->fc->scan.error));
	if (pr->body_bytes > pr->body_held &&
	    !front_body_take(pr, pr->body_bytes - pr->body_held))
		return (front_early(pr->fc, 503, REJ_BUFFERS_FULL,
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

	route_forget(pr);
	if (pr->us != NULL)
		upstream_abort(pr);
	if (pr->mp != NULL) {
		model_parser_free(pr->mp);
		pr->mp = NULL;
	}
	front_body_give_back(pr);
	if (pm != NULL && preq_uncount(pr)) {
		/* Its last byte is out (or the client is gone). */
		pm->in_flight--;
		link_demand(pm);
		registry_check_drained(pm);
	}
}

static evhtp_res
front_on_request_fini(evhtp_request_t *req, void *arg)
{
	struct preq		*pr = arg;
	struct fconn		*fc = pr->fc;
	struct bufferevent	*bev;

	front_release(pr);
	pr->phase = PR_DONE;
	if (fc != NULL) {
		fc->pr = NULL;
		fc->served++;
		fc->idle_ms = clock_ms();
		bev = evhtp_request_get_bev(req);
		if (reqscan_phase(&fc->scan) == RQ_IDLE && bev != NULL &&
		    evbuffer_get_length(bufferevent_get_input(bev)) == 0)
			front_idle_add(fc);
		front_conn_schedule(fc);
	}
	free(pr->refuse_msg);
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
	struct preq	*pr;

	if (req->hooks == NULL || (pr = req->hooks->on_error_arg) == NULL) {
		evhtp_send_reply(req, 500);
		return;
	}
	if (pr->fc != NULL && front_scan_refused(pr->fc, pr->index)) {
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
		pr->route_later = true;
		front_conn_schedule(pr->fc);
		return;
	}
	front_route(pr);
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
		if (r != MODEL_FOUND) {
			preq_error(pr, 400, REJ_BAD_REQUEST, 0, "%s",
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
	front_trim_timer = evtimer_new(proxy_base, front_trim_cb, NULL);
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
	if (front_trim_timer != NULL)
		event_free(front_trim_timer);
	front_accept_timer = front_trim_timer = NULL;
	linger_shutdown();
}

void
front_metrics_view(struct metrics_proxy_view *v)
{
	memset(v, 0, sizeof(*v));
	v->connections = front_nconns + linger_count();
	v->max_connections = proxy_conf.max_connections;
	v->accept_paused = front_paused;
	v->supervisor_connected = link_connected();
	memcpy(v->rejected, preq_reject_counts(), sizeof(v->rejected));
	v->waiting_for_config = route_pending_count();
	v->body_bytes = front_body_held;
	v->max_body_bytes = proxy_conf.max_buffered_body;
}
