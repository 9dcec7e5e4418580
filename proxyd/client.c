/*
 * client.c -- the client connections of the proxy port, and what holds
 * them against clients that are slow, idle, numerous or deceitful.
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
 * streamed) has none. The same timer answers a refusal of the framing
 * checks once the requests before it are answered, and lets libevhtp read
 * requests pipelined behind one that ended.
 *
 * Request bodies count against max_buffered_body_mb (a quarter of it per
 * address) while their request lives.
 *
 * front.c reads the requests; this file knows connections, not routes.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <evhtp/evhtp.h>

#include "clock.h"
#include "linger.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

#define CLIENT_TRIM_BYTES	(4u << 20)	/* freed bodies, then trim */
#define CLIENT_TRIM_DELAY_MS	200
#define CLIENT_WARN_EVERY_MS	10000		/* refusing connections */

/* Which time limit a connection is under. */
enum client_wait {
	CW_NONE,		/* a request is held: none */
	CW_HEAD,		/* header_timeout_ms */
	CW_BODY,		/* body_timeout_ms since the last bytes */
	CW_IDLE,		/* keepalive_timeout_secs */
};

static TAILQ_HEAD(, fconn)	 client_conns = TAILQ_HEAD_INITIALIZER(client_conns);
static TAILQ_HEAD(, fconn)	 client_idle = TAILQ_HEAD_INITIALIZER(client_idle);
static uint32_t			 client_n;
static uint64_t			 client_body_held;	/* max_buffered_body */
static uint64_t			 client_body_freed;	/* since the last trim */
static struct event		*client_trim_timer;
static uint64_t			 client_refused;	/* connections */
static int64_t			 client_refused_warned;
static evhtp_hook		 client_on_headers;	/* front.c's */

static void	client_idle_del(struct fconn *);
static evhtp_res	client_conn_fini(evhtp_connection_t *, void *);

/*
 * Shutting down, may the proxy exit now? Not while a request is forwarded,
 * nor while a connection has a request in progress (being read, queued,
 * or its answer being written: a 503 for a queued one included), nor
 * while one accepted before the signal has not sent its first request:
 * it came before the socket was handed over, so it is answered here. A
 * connection that has been answered and is idle is closed.
 */
bool
client_settled(void)
{
	struct fconn		*fc;
	struct bufferevent	*bev;

	if (preq_active() > 0)
		return (false);
	TAILQ_FOREACH(fc, &client_conns, entry) {
		bev = evhtp_connection_get_bev(fc->conn);
		if (fc->pr != NULL || fc->served == 0 || (bev != NULL &&
		    evbuffer_get_length(bufferevent_get_input(bev)) > 0))
			return (false);
	}
	return (true);
}

/* After a request or a connection ends: exit if that was the last. */
void
client_exit_check(void)
{
	if (proxy_exiting && client_settled())
		event_base_loopexit(proxy_base, NULL);
}

/* Remember an answer to give before the body is read; the hook fails. */
evhtp_res
client_early(struct fconn *fc, int status, enum reject_code code,
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
bool
client_body_take(struct preq *pr, uint64_t n)
{
	struct peer	*p = pr->peer;
	uint64_t	 max = proxy_conf.max_buffered_body;

	if (n == 0)
		return (true);
	if (client_body_held + n > max)
		return (false);
	/* An address holding nothing may always start one body. */
	if (!p->loopback && p->body > 0 && p->body + n > max / 4)
		return (false);
	client_body_held += n;
	p->body += n;
	pr->body_held += n;
	return (true);
}

/*
 * Bodies are freed to the allocator, which keeps small freed blocks for
 * itself: after a flood of bodies, give the memory back to the system.
 */
static void
client_trim_cb(evutil_socket_t fd, short ev, void *arg)
{
	client_body_freed = 0;
	malloc_trim(0);
}

/* pr's body is about to be freed (with its request). */
void
client_body_give_back(struct preq *pr)
{
	struct timeval	tv = { 0, CLIENT_TRIM_DELAY_MS * 1000 };

	if (pr->body_held == 0)
		return;
	client_body_held -= pr->body_held;
	pr->peer->body -= pr->body_held;
	client_body_freed += pr->body_held;
	pr->body_held = 0;
	peer_put(pr->peer);
	pr->peer = NULL;
	if (client_body_freed >= CLIENT_TRIM_BYTES &&
	    !evtimer_pending(client_trim_timer, NULL))
		evtimer_add(client_trim_timer, &tv);
}

/* ------------------------------------------------------------------ */
/* Idle connections, the oldest first. */

static void
client_idle_add(struct fconn *fc)
{
	if (!fc->idle) {
		fc->idle = true;
		TAILQ_INSERT_TAIL(&client_idle, fc, idle_entry);
	}
}

static void
client_idle_del(struct fconn *fc)
{
	if (fc->idle) {
		fc->idle = false;
		TAILQ_REMOVE(&client_idle, fc, idle_entry);
	}
}

/* At the connection limit: close the oldest idle connection, if any. */
static bool
client_close_idle(void)
{
	struct fconn	*fc;

	if ((fc = TAILQ_FIRST(&client_idle)) == NULL)
		return (false);
	log_debug("connection limit: closing the oldest idle connection");
	evhtp_connection_free(fc->conn);
	return (true);
}

/* ------------------------------------------------------------------ */
/* Time limits, and what the framing checks refused. */

/* The connection's next deadline (clock_ms), or -1: none. */
static int64_t
client_deadline(const struct fconn *fc, enum client_wait *what)
{
	int64_t	start;

	if (fc->pr != NULL) {
		if (fc->pr->phase == PR_READING && !fc->pr->paused) {
			*what = CW_BODY;
			return (fc->read_ms + proxy_conf.body_timeout_ms);
		}
		*what = CW_NONE;
		return (-1);
	}
	if (reqscan_phase(&fc->scan) == RQ_IDLE && fc->served > 0) {
		*what = CW_IDLE;
		return (fc->idle_ms + (int64_t)proxy_conf.keepalive_timeout_ms);
	}
	/* A head, or a new connection's first: timed from when it began. */
	*what = CW_HEAD;
	start = fc->head_ms > fc->idle_ms ? fc->head_ms : fc->idle_ms;
	return (start + proxy_conf.header_timeout_ms);
}

void
client_arm_timer(struct fconn *fc)
{
	enum client_wait	what;

	proxy_timer_at(fc->timer, client_deadline(fc, &what));
}

/* Look at the connection again, at once (not from within libevhtp). */
void
client_schedule(struct fconn *fc)
{
	event_active(fc->timer, EV_TIMEOUT, 1);
}

/* Answer the connection's current request with an error and close it. */
static void
client_refuse(struct fconn *fc, int status, enum reject_code code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
client_refuse(struct fconn *fc, int status, enum reject_code code,
    const char *fmt, ...)
{
	va_list	ap;
	char	msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	client_early(fc, status, code, 0, "%s", msg);
	evhtp_connection_free(fc->conn);
}

/*
 * Did the framing checks refuse the request the connection is at (not one
 * sent after a request still being answered)?
 */
bool
client_scan_refused(const struct fconn *fc, uint64_t index)
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
client_check(evutil_socket_t fd, short ev, void *arg)
{
	struct fconn		*fc = arg;
	struct bufferevent	*bev = evhtp_connection_get_bev(fc->conn);
	struct reqscan		*rs = &fc->scan;
	enum client_wait	 what;
	int64_t			 deadline;

	if ((fc->pr == NULL && client_scan_refused(fc, fc->served)) ||
	    (fc->pr != NULL && fc->pr->phase == PR_READING &&
	    client_scan_refused(fc, fc->pr->index))) {
		log_debug("request refused status=%d reason=\"%s\"",
		    rs->status, rs->error);
		client_refuse(fc, rs->status, rs->code, "%s", rs->error);
		return;
	}
	if (fc->pr == NULL && bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		/*
		 * Pipelined: libevhtp reads a connection's next request only
		 * when more bytes come, and none may; it reads it now.
		 */
		client_arm_timer(fc);
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	deadline = client_deadline(fc, &what);
	if (deadline < 0 || clock_ms() < deadline) {
		client_arm_timer(fc);
		return;
	}
	switch (what) {
	case CW_BODY:
		client_refuse(fc, 408, REJ_REQUEST_TIMEOUT, "the request body "
		    "sent nothing for %u ms", proxy_conf.body_timeout_ms);
		break;
	case CW_HEAD:
		if (reqscan_phase(rs) != RQ_IDLE) {
			client_refuse(fc, 408, REJ_REQUEST_TIMEOUT, "the request "
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
client_scan_input(struct evbuffer *buf, const struct evbuffer_cb_info *info,
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
		client_schedule(fc);
		return;
	}
	if (fc->scan.begun != begun) {
		/* A head began: its time limit starts now. */
		fc->head_ms = fc->read_ms;
		if (fc->pr == NULL) {
			client_idle_del(fc);
			client_arm_timer(fc);
		}
	}
}

/* A connection over the limits: 503 with Retry-After, and closed. */
static evhtp_res
client_refuse_accept(struct bufferevent *bev, struct peer *peer,
    const char *why, uint32_t limit)
{
	struct evbuffer	*body;
	char		 msg[256];
	int64_t		 now = clock_ms();

	snprintf(msg, sizeof(msg), "%s (%u); try again later", why, limit);
	preq_count_reject(REJ_TOO_MANY_CONNECTIONS);
	client_refused++;
	if (now - client_refused_warned >= CLIENT_WARN_EVERY_MS) {
		log_warnx("refusing connections reason=\"%s\" refused=%llu "
		    "connections=%u", why, (unsigned long long)client_refused,
		    client_n);
		client_refused_warned = now;
	}
	body = evbuffer_new();
	preq_error_body(body, msg, REJ_TOO_MANY_CONNECTIONS);
	linger_reply(bev, 503, PROXY_RETRY_AFTER_SECS, body);
	evbuffer_free(body);
	peer_put(peer);
	return (EVHTP_RES_ERROR);
}

static evhtp_res
client_post_accept(evhtp_connection_t *conn, void *arg)
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
		return (client_refuse_accept(bev, peer, "too many connections "
		    "from this address", proxy_conf.max_connections_per_ip));
	limit = proxy_conf.max_connections;
	if (peer->loopback)
		limit += PROXY_LOOPBACK_RESERVE;
	if (client_n >= limit && !client_close_idle())
		return (client_refuse_accept(bev, peer, "the proxy has too "
		    "many connections", proxy_conf.max_connections));
	fc = xcalloc(1, sizeof(*fc));
	fc->conn = conn;
	fc->peer = peer;
	peer->conns++;
	fc->idle_ms = fc->head_ms = fc->read_ms = clock_ms();
	reqscan_init(&fc->scan);
	fc->timer = evtimer_new(proxy_base, client_check, fc);
	TAILQ_INSERT_TAIL(&client_conns, fc, entry);
	client_n++;
	client_idle_add(fc);
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	/* Bound what a client can make us hold while a request is paused. */
	bufferevent_setwatermark(bev, EV_READ, 0, 128 * 1024);
	fc->scan_cb = evbuffer_add_cb(bufferevent_get_input(bev),
	    client_scan_input, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_headers,
	    client_on_headers, fc);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
	    (evhtp_hook)client_conn_fini, fc);
	client_arm_timer(fc);
	return (EVHTP_RES_OK);
}

/*
 * libevhtp is freeing the connection. If it does so because of a bad or
 * refused request, answer it first on a duplicate of the socket.
 */
static evhtp_res
client_conn_fini(evhtp_connection_t *conn, void *arg)
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
		if (client_scan_refused(fc, fc->pr != NULL ? fc->pr->index :
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
		preq_error_body(body, msg, code);
		linger_reply(bev, status, fc->early_retry, body);
		evbuffer_free(body);
	}
	if (fc->pr != NULL)
		fc->pr->fc = NULL;
	if (bev != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(bev),
		    fc->scan_cb);
	event_free(fc->timer);
	client_idle_del(fc);
	fc->peer->conns--;
	peer_put(fc->peer);
	TAILQ_REMOVE(&client_conns, fc, entry);
	client_n--;
	free(fc->early_msg);
	free(fc);
	client_exit_check();
	return (EVHTP_RES_OK);
}


/* ------------------------------------------------------------------ */

/* libevhtp read the head of the connection's next request. */
void
client_request_begins(struct fconn *fc, struct preq *pr)
{
	pr->fc = fc;
	pr->peer = fc->peer;
	pr->index = fc->heads++;
	fc->pr = pr;
	client_idle_del(fc);
}

/* Its request is freed: the connection waits for the next one. */
void
client_request_done(struct fconn *fc)
{
	struct bufferevent	*bev = evhtp_connection_get_bev(fc->conn);

	fc->pr = NULL;
	fc->served++;
	fc->idle_ms = clock_ms();
	if (reqscan_phase(&fc->scan) == RQ_IDLE && bev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(bev)) == 0)
		client_idle_add(fc);
	client_schedule(fc);
}

void
client_init(evhtp_t *htp, evhtp_hook on_headers)
{
	client_on_headers = on_headers;
	client_trim_timer = evtimer_new(proxy_base, client_trim_cb, NULL);
	evhtp_set_post_accept_cb(htp, client_post_accept, NULL);
}

/* Exiting: close every connection. */
void
client_shutdown(void)
{
	struct fconn	*fc;

	while ((fc = TAILQ_FIRST(&client_conns)) != NULL)
		evhtp_connection_free(fc->conn);
	if (client_trim_timer != NULL)
		event_free(client_trim_timer);
	client_trim_timer = NULL;
}

uint32_t
client_count(void)
{
	return (client_n);
}

uint64_t
client_body_bytes(void)
{
	return (client_body_held);
}
