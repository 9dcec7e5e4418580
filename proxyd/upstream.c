/*
 * upstream.c -- forwarding a request to its model's port on 127.0.0.1 and
 * relaying the response back as it arrives.
 *
 * Each model has a small pool of kept-alive connections for its current
 * port and generation. The request head is rebuilt (hop-by-hop headers
 * dropped, Content-Length set) and the body is handed to the socket by
 * reference, byte for byte. The response is parsed with libevhtp's
 * htparser and relayed chunk by chunk: a chunked response (SSE) stays
 * chunked, a sized one keeps its Content-Length. While the client's output
 * is above PROXY_CLIENT_HIGH_WATER the upstream socket is not read (so the
 * model's socket fills and it stops sending), and reading resumes when the
 * client has drained below PROXY_CLIENT_LOW_WATER: memory stays bounded
 * whatever the client does.
 *
 * A request that never reached the model's server (the connection was
 * refused, or closed before one byte of it was written) is handed back
 * to the level above, which holds it until the model is ready again; one
 * whose bytes may have reached the server is never sent again, but for a
 * kept-alive connection the server had closed before any answer.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <evhtp/evhtp.h>
#include <evhtp/parser.h>

#include "clock.h"
#include "linger.h"
#include "log.h"
#include "proxy.h"
#include "strbuf.h"
#include "xmalloc.h"

#define UPSTREAM_MAX_IDLE	256		/* idle connections per pool */
#define UPSTREAM_IDLE_SECS	30
#define UPSTREAM_MAX_HEAD	(64u << 10)	/* response head */
#define UPSTREAM_READ_HIGH	(256u << 10)

struct upconn;

struct upool {
	struct pmodel		*pm;
	uint16_t		 port;
	uint64_t		 generation;
	TAILQ_HEAD(, upconn)	 idle;
	uint32_t		 n_idle;
};

struct upconn {
	struct bufferevent	*bev;
	struct upool		*pool;		/* while idle */
	htparser		*parser;
	struct ustream		*us;		/* current exchange */
	bool			 reused;
	bool			 connected;
	TAILQ_ENTRY(upconn)	 entry;
};

struct ustream {
	struct preq		*pr;
	struct pmodel		*pm;
	uint16_t		 port;		/* where it was sent */
	uint64_t		 generation;
	size_t			 queued;	/* request bytes given to uc */
	struct upconn		*uc;
	struct evbuffer		*head;		/* response head being built */
	char			*key;		/* header name being read */
	bool			 skip;		/* current header is dropped */
	bool			 has_cl;
	bool			 te_chunked;
	bool			 head_sent;
	bool			 chunked_out;
	bool			 sse;
	bool			 until_close;	/* body ends at EOF */
	bool			 complete;
	bool			 failed;
	bool			 up_paused;
	bool			 retried;
	bool			 got_bytes;
	struct evbuffer_cb_entry *drain_cb;
	struct usage_scan	*scan;		/* a 200's tail, for usage */
};

/*
 * Bytes for the client are gathered here during one read callback and
 * written at its end, straight to the socket when nothing is queued before
 * them: a bufferevent write costs two epoll_ctl calls and a loop turn.
 */
static struct evbuffer	*upstream_scratch;
/* And requests being written to a model server. */
static struct evbuffer	*upstream_reqbuf;
/* An exchange ended: the level above may start another (upstream_init). */
static void		(*upstream_freed)(struct pmodel *);
/* A request that did not reach its model goes back up (upstream_init). */
static void		(*upstream_undelivered)(struct preq *, uint16_t,
			    uint64_t);

static void	upstream_read_cb(struct bufferevent *, void *);
static void	upstream_event_cb(struct bufferevent *, short, void *);
static void	upstream_send(struct ustream *);
static void	upstream_end(struct ustream *, bool reuse);
static void	upstream_detach(struct ustream *, bool reuse);

static void
upstream_conn_free(struct upconn *uc)
{
	if (uc->pool != NULL) {
		TAILQ_REMOVE(&uc->pool->idle, uc, entry);
		uc->pool->n_idle--;
	}
	bufferevent_free(uc->bev);
	free(uc->parser);
	free(uc);
}

static struct upconn *
upstream_connect(uint16_t port)
{
	struct upconn		*uc;
	struct sockaddr_in	 sin;

	uc = xcalloc(1, sizeof(*uc));
	uc->parser = htparser_new();
	uc->bev = bufferevent_socket_new(proxy_base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (uc->bev == NULL || uc->parser == NULL)
		fatalx("cannot allocate an upstream connection");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bufferevent_setwatermark(uc->bev, EV_READ, 0, UPSTREAM_READ_HIGH);
	if (bufferevent_socket_connect(uc->bev, (struct sockaddr *)&sin,
	    sizeof(sin)) != 0) {
		/* Reported through the event callback like any failure. */
		log_debug("upstream connect failed at once port=%u", port);
	} else {
		int one = 1;

		setsockopt(bufferevent_getfd(uc->bev), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof(one));
	}
	return (uc);
}

/* The model's pool for its current port and generation. */
static struct upool *
upstream_pool(struct pmodel *pm)
{
	struct upool	*pool = pm->pool;

	if (pool != NULL && (pool->port != pm->port ||
	    pool->generation != pm->generation)) {
		upstream_pool_reset(pm);
		pool = NULL;
	}
	if (pool == NULL) {
		pool = xcalloc(1, sizeof(*pool));
		pool->pm = pm;
		pool->port = pm->port;
		pool->generation = pm->generation;
		TAILQ_INIT(&pool->idle);
		pm->pool = pool;
	}
	return (pool);
}

void
upstream_pool_reset(struct pmodel *pm)
{
	struct upool	*pool = pm->pool;
	struct upconn	*uc;

	if (pool == NULL)
		return;
	while ((uc = TAILQ_FIRST(&pool->idle)) != NULL)
		upstream_conn_free(uc);
	free(pool);
	pm->pool = NULL;
}

void
upstream_pool_sync(struct pmodel *pm)
{
	struct upool	*pool = pm->pool;

	if (pool != NULL && (pool->port != pm->port ||
	    pool->generation != pm->generation))
		upstream_pool_reset(pm);
}

/* An idle pooled connection: the server closed it, or spoke out of turn. */
static void
upstream_idle_read_cb(struct bufferevent *bev, void *arg)
{
	upstream_conn_free(arg);
}

static void
upstream_idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	upstream_conn_free(arg);
}

static void
upstream_pool_put(struct upool *pool, struct upconn *uc)
{
	struct timeval	tv = { UPSTREAM_IDLE_SECS, 0 };

	if (pool->n_idle >= UPSTREAM_MAX_IDLE) {
		upstream_conn_free(uc);
		return;
	}
	uc->us = NULL;
	uc->pool = pool;
	uc->reused = true;
	uc->connected = true;
	htparser_init(uc->parser, htp_type_response);
	TAILQ_INSERT_HEAD(&pool->idle, uc, entry);
	pool->n_idle++;
	bufferevent_setcb(uc->bev, upstream_idle_read_cb, NULL,
	    upstream_idle_event_cb, uc);
	bufferevent_set_timeouts(uc->bev, &tv, NULL);
	bufferevent_enable(uc->bev, EV_READ);
}

static struct upconn *
upstream_pool_get(struct upool *pool)
{
	struct upconn	*uc;

	if ((uc = TAILQ_FIRST(&pool->idle)) == NULL)
		return (upstream_connect(pool->port));
	TAILQ_REMOVE(&pool->idle, uc, entry);
	pool->n_idle--;
	uc->pool = NULL;
	bufferevent_set_timeouts(uc->bev, NULL, NULL);
	return (uc);
}

/* Headers that belong to one hop and are not forwarded either way. */
static bool
upstream_hop_header(const char *k)
{
	static const char *hop[] = {
		"connection", "keep-alive", "proxy-connection",
		"transfer-encoding", "te", "trailer", "upgrade",
		"content-length", "host", "expect", "proxy-authorization",
		"proxy-authenticate",
	};
	size_t	i;

	for (i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
		if (strcasecmp(k, hop[i]) == 0)
			return (true);
	}
	return (false);
}

/*
 * While an exchange is open the model server must send something at least
 * every upstream_timeout_secs (a read timeout: it does not run while the
 * client's backpressure has reading stopped).
 */
static void
upstream_arm_timeout(struct upconn *uc)
{
	struct timeval	tv;

	if (proxy_conf.upstream_timeout_secs == 0) {
		bufferevent_set_timeouts(uc->bev, NULL, NULL);
		return;
	}
	tv.tv_sec = (time_t)proxy_conf.upstream_timeout_secs;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(uc->bev, &tv, NULL);
}

/*
 * Write the request head and body to the upstream connection: straight to
 * its socket when it is connected and idle, the rest through its
 * bufferevent.
 */
static void
upstream_send(struct ustream *us)
{
	evhtp_request_t		*req = us->pr->req;
	struct upconn		*uc = us->uc;
	struct evbuffer		*out = bufferevent_get_output(uc->bev);
	struct evbuffer		*buf = upstream_reqbuf;
	struct evhtp_kv		*kv;
	const char		*path = req->uri->path->full;
	const unsigned char	*query = req->uri->query_raw;
	size_t			 blen = evbuffer_get_length(req->buffer_in);

	evbuffer_add_printf(buf, "%s %s%s%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n",
	    htparser_get_methodstr_m(req->method), path,
	    query != NULL && *query != '\0' ? "?" : "",
	    query != NULL ? (const char *)query : "", us->port);
	TAILQ_FOREACH(kv, req->headers_in, next) {
		if (upstream_hop_header(kv->key))
			continue;
		evbuffer_add(buf, kv->key, kv->klen);
		evbuffer_add(buf, ": ", 2);
		evbuffer_add(buf, kv->val, kv->vlen);
		evbuffer_add(buf, "\r\n", 2);
	}
	evbuffer_add_printf(buf, "Content-Length: %zu\r\n\r\n", blen);
	if (blen > 0 && evbuffer_add_buffer_reference(buf, req->buffer_in) != 0)
		evbuffer_add(buf, evbuffer_pullup(req->buffer_in, -1), blen);
	/* What a new connection holds until it is connected. */
	if (!uc->connected)
		us->queued = evbuffer_get_length(buf) +
		    evbuffer_get_length(out);
	if (uc->connected && evbuffer_get_length(out) == 0)
		evbuffer_write(buf, bufferevent_getfd(uc->bev));
	if (evbuffer_get_length(buf) > 0)
		evbuffer_add_buffer(out, buf);
	bufferevent_setcb(uc->bev, upstream_read_cb, NULL,
	    upstream_event_cb, uc);
	upstream_arm_timeout(uc);
	bufferevent_enable(uc->bev, EV_READ);
}

/* The client's output drained: read the model again. */
static void
upstream_client_drained(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg)
{
	struct ustream	*us = arg;

	if (!us->up_paused || info->n_deleted == 0 ||
	    evbuffer_get_length(buf) > PROXY_CLIENT_LOW_WATER)
		return;
	us->up_paused = false;
	if (us->uc != NULL)
		bufferevent_enable(us->uc->bev, EV_READ);
}

void
upstream_start(struct preq *pr)
{
	struct ustream	*us;
	struct pmodel	*pm = pr->model;

	if (upstream_scratch == NULL) {
		upstream_scratch = evbuffer_new();
		upstream_reqbuf = evbuffer_new();
	}
	us = xcalloc(1, sizeof(*us));
	us->pr = pr;
	us->pm = pm;
	us->port = pm->port;
	us->generation = pm->generation;
	us->head = evbuffer_new();
	pr->us = us;
	pm->upstreams++;
	us->uc = upstream_pool_get(upstream_pool(pm));
	us->uc->us = us;
	htparser_init(us->uc->parser, htp_type_response);
	htparser_set_userdata(us->uc->parser, us);
	upstream_send(us);
}

/* Bytes for the client (sent by upstream_flush). */
static void
upstream_to_client(struct ustream *us, const void *data, size_t len)
{
	struct evbuffer	*out = upstream_scratch;
	char		 hex[24];
	int		 n;

	if (len == 0)
		return;
	if (us->pr->t_first_us == 0)
		us->pr->t_first_us = clock_us();
	if (us->scan != NULL)
		usage_feed(us->scan, data, len);
	if (us->chunked_out) {
		n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
		evbuffer_add(out, hex, (size_t)n);
	}
	evbuffer_add(out, data, len);
	if (us->chunked_out)
		evbuffer_add(out, "\r\n", 2);
}

/*
 * Send what was gathered for the client: to its socket directly when its
 * bufferevent holds nothing, else behind what it holds. Then backpressure:
 * past the high-water mark, stop reading the model's socket.
 */
static void
upstream_flush(struct ustream *us)
{
	struct bufferevent	*cbev = evhtp_request_get_bev(us->pr->req);
	struct evbuffer		*out = bufferevent_get_output(cbev);

	if (evbuffer_get_length(upstream_scratch) == 0)
		return;
	if (evbuffer_get_length(out) == 0)
		evbuffer_write(upstream_scratch, bufferevent_getfd(cbev));
	if (evbuffer_get_length(upstream_scratch) > 0)
		evbuffer_add_buffer(out, upstream_scratch);
	if (!us->up_paused && evbuffer_get_length(out) >=
	    PROXY_CLIENT_HIGH_WATER && us->uc != NULL) {
		us->up_paused = true;
		bufferevent_disable(us->uc->bev, EV_READ);
		if (us->drain_cb == NULL)
			us->drain_cb = evbuffer_add_cb(out,
			    upstream_client_drained, us);
	}
}

/* The answer is over: send what is gathered, whatever the watermarks. */
static void
upstream_flush_final(struct preq *pr)
{
	struct bufferevent	*cbev = evhtp_request_get_bev(pr->req);
	struct evbuffer		*out = bufferevent_get_output(cbev);

	if (evbuffer_get_length(upstream_scratch) == 0)
		return;
	if (evbuffer_get_length(out) == 0)
		evbuffer_write(upstream_scratch, bufferevent_getfd(cbev));
	if (evbuffer_get_length(upstream_scratch) > 0)
		evbuffer_add_buffer(out, upstream_scratch);
}

/* htparser callbacks for the response. */

static int
upstream_hdr_key(htparser *p, const char *data, size_t len)
{
	struct ustream	*us = htparser_get_userdata(p);

	free(us->key);
	us->key = xstrndup(data, len);
	return (0);
}

static int
upstream_hdr_val(htparser *p, const char *data, size_t len)
{
	struct ustream	*us = htparser_get_userdata(p);
	const char	*k = us->key != NULL ? us->key : "";

	us->got_bytes = true;
	if (strcasecmp(k, "content-length") == 0)
		us->has_cl = true;
	else if (strcasecmp(k, "transfer-encoding") == 0 &&
	    len >= 7 && strncasecmp(data + len - 7, "chunked", 7) == 0)
		us->te_chunked = true;
	else if (strcasecmp(k, "content-type") == 0 && len >= 17 &&
	    strncasecmp(data, "text/event-stream", 17) == 0)
		us->sse = true;
	if (upstream_hop_header(k))
		return (0);
	if (evbuffer_get_length(us->head) + strlen(k) + len >
	    UPSTREAM_MAX_HEAD)
		return (-1);
	evbuffer_add(us->head, k, strlen(k));
	evbuffer_add(us->head, ": ", 2);
	evbuffer_add(us->head, data, len);
	evbuffer_add(us->head, "\r\n", 2);
	return (0);
}

static int
upstream_hdrs_complete(htparser *p)
{
	struct ustream		*us = htparser_get_userdata(p);
	evhtp_request_t		*req = us->pr->req;
	struct evbuffer		*out = upstream_scratch;
	unsigned int		 status = htparser_get_status(p);
	bool			 keepalive, no_body, http10;

	us->got_bytes = true;
	if (status < 200)
		return (-1);	/* no Expect was sent: 1xx is a bad answer */
	http10 = req->proto == EVHTP_PROTO_10;
	keepalive = (req->flags & EVHTP_REQ_FLAG_KEEPALIVE) != 0 &&
	    !proxy_exiting;
	no_body = status == 204 || status == 304 ||
	    req->method == htp_method_HEAD;
	evbuffer_add_printf(out, "HTTP/1.1 %u %s\r\n", status,
	    linger_status_text((int)status));
	evbuffer_add_buffer(out, us->head);
	if (no_body)
		;
	else if (us->has_cl && !us->te_chunked)
		evbuffer_add_printf(out, "Content-Length: %llu\r\n",
		    (unsigned long long)htparser_get_content_length(p));
	else if (!http10) {
		us->chunked_out = true;
		evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
	} else
		keepalive = false;	/* the body ends when we close */
	if (!us->te_chunked && !us->has_cl && !no_body)
		us->until_close = true;
	if (!keepalive) {
		preq_close_after(req);
		evbuffer_add(out, "Connection: close\r\n", 19);
	} else if (http10)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	evbuffer_add(out, "\r\n", 2);
	us->head_sent = true;
	us->pr->status = (int)status;
	/* The token counts of a success: its usage, at its end. */
	if (status == 200 && !no_body)
		us->scan = xmalloc(sizeof(*us->scan));
	if (us->scan != NULL)
		us->scan->fed = 0;
	/* htparser would take a body without length as empty: read it raw. */
	return (us->until_close ? -1 : 0);
}

static int
upstream_body(htparser *p, const char *data, size_t len)
{
	upstream_to_client(htparser_get_userdata(p), data, len);
	return (0);
}

static int
upstream_msg_complete(htparser *p)
{
	struct ustream	*us = htparser_get_userdata(p);

	us->complete = true;
	return (0);
}

static htparse_hooks upstream_hooks = {
	.hdr_key = upstream_hdr_key,
	.hdr_val = upstream_hdr_val,
	.on_hdrs_complete = upstream_hdrs_complete,
	.body = upstream_body,
	.on_msg_complete = upstream_msg_complete,
};

/*
 * The exchange failed. Before the response head reached the client the
 * client gets a 502 (504 when the model server was silent too long);
 * after it, an SSE stream gets an error event and its terminating chunk,
 * anything else is cut (the client sees a short body).
 */
static void
upstream_fail(struct ustream *us, enum upstream_error kind, const char *why)
{
	struct preq	*pr = us->pr;
	struct pmodel	*pm = us->pm;
	struct evbuffer	*out, *ev;
	struct strbuf	 msg = STRBUF_INIT;
	bool		 timeout = kind == UPERR_TIMEOUT;

	pm->metrics.upstream_errors[kind]++;
	log_warnx("upstream failed model=%s port=%u kind=%s reason=\"%s\"",
	    pm->name, pm->port, metrics_upstream_error_name(kind), why);
	upstream_end(us, false);
	if (!us->head_sent) {
		if (timeout)
			preq_error(pr, 504, REJ_UPSTREAM_TIMEOUT, 0,
			    "model `%s` timed out: %s", pm->name, why);
		else
			preq_error(pr, 502, REJ_BAD_GATEWAY, 0,
			    "model `%s` failed: %s", pm->name, why);
		free(us);
		return;
	}
	out = upstream_scratch;
	if (us->chunked_out && us->sse) {
		/*
		 * An error event the OpenAI clients raise (the one error
		 * object, escaped by common/json.c), then the end.
		 */
		strbuf_printf(&msg, "model backend %s: %s", timeout ?
		    "stopped sending" : "closed the stream", why);
		ev = evbuffer_new();
		evbuffer_add(ev, "data: ", 6);
		preq_error_object(ev, strbuf_str(&msg), "server_error", NULL,
		    timeout ? "upstream_timeout" : "upstream_closed");
		evbuffer_add(ev, "\n\n", 2);
		evbuffer_add_printf(out, "%zx\r\n", evbuffer_get_length(ev));
		evbuffer_add_buffer(out, ev);
		evbuffer_add(out, "\r\n0\r\n\r\n", 7);
		evbuffer_free(ev);
		strbuf_free(&msg);
	} else
		preq_close_after(pr->req);
	upstream_flush_final(pr);
	preq_finish(pr);
	free(us);
}

/*
 * Nothing of the request reached the model's server: hand it back to be
 * held until the model is ready again (the level above marks the model
 * unreachable first, so the slot this frees dispatches nothing to it).
 */
static void
upstream_undeliver(struct ustream *us, enum upstream_error kind,
    const char *why)
{
	struct preq	*pr = us->pr;
	struct pmodel	*pm = us->pm;

	pm->metrics.upstream_errors[kind]++;
	log_warnx("upstream not reached, request held model=%s port=%u "
	    "kind=%s reason=\"%s\"", pm->name, us->port,
	    metrics_upstream_error_name(kind), why);
	upstream_detach(us, false);
	upstream_undelivered(pr, us->port, us->generation);
	free(us);
	if (upstream_freed != NULL)
		upstream_freed(pm);
}

/* The exchange is over: detach it from the request and its connection. */
static void
upstream_end(struct ustream *us, bool reuse)
{
	struct pmodel	*pm = us->pm;

	upstream_detach(us, reuse);
	if (upstream_freed != NULL)
		upstream_freed(pm);
}

static void
upstream_detach(struct ustream *us, bool reuse)
{
	struct pmodel		*pm = us->pm;
	struct preq		*pr = us->pr;
	struct upconn		*uc = us->uc;

	if (us->drain_cb != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(
		    evhtp_request_get_bev(pr->req)), us->drain_cb);
		us->drain_cb = NULL;
	}
	if (uc != NULL) {
		uc->us = NULL;
		us->uc = NULL;
		if (reuse && pm->pool != NULL && pm->pool->port == pm->port &&
		    pm->pool->generation == pm->generation &&
		    evbuffer_get_length(bufferevent_get_input(uc->bev)) == 0)
			upstream_pool_put(pm->pool, uc);
		else
			upstream_conn_free(uc);
	}
	evbuffer_free(us->head);
	us->head = NULL;
	free(us->key);
	us->key = NULL;
	free(us->scan);
	us->scan = NULL;
	pr->us = NULL;
	pm->upstreams--;
}

static void
upstream_complete(struct ustream *us, bool reuse)
{
	struct preq		*pr = us->pr;
	struct usage_counts	 c;

	if (us->scan != NULL && usage_result(us->scan, &c)) {
		us->pm->metrics.prompt_tokens += c.prompt_tokens;
		us->pm->metrics.completion_tokens += c.completion_tokens;
	}
	if (us->chunked_out)
		evbuffer_add(upstream_scratch, "0\r\n\r\n", 5);
	/* The client's bytes first: ending the exchange may start others. */
	upstream_flush_final(pr);
	upstream_end(us, reuse);
	preq_finish(pr);
	free(us);
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upconn	*uc = arg;
	struct ustream	*us = uc->us;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len, n;
	const char	*data;
	htpparse_error	 err;

	if (us == NULL)
		return;
	while ((len = evbuffer_get_length(in)) > 0) {
		if (us->until_close && us->head_sent) {
			struct evbuffer_iovec v[4];
			int i, k = evbuffer_peek(in, -1, NULL, v, 4);

			for (i = 0; i < k && i < 4; i++)
				upstream_to_client(us, v[i].iov_base,
				    v[i].iov_len);
			evbuffer_drain(in, len);
			upstream_flush(us);
			return;
		}
		data = (const char *)evbuffer_pullup(in, -1);
		n = htparser_run(uc->parser, &upstream_hooks, data, len);
		evbuffer_drain(in, n);
		err = htparser_get_error(uc->parser);
		if (us->complete) {
			upstream_complete(us, htparser_should_keep_alive(
			    uc->parser) != 0);
			return;
		}
		if (us->until_close && us->head_sent)
			continue;
		if (err != htparse_error_none) {
			upstream_fail(us, UPERR_BAD_RESPONSE,
			    htparser_get_strerror(uc->parser));
			return;
		}
		if (n == 0)
			break;
	}
	upstream_flush(us);
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upconn	*uc = arg;
	struct ustream	*us = uc->us;
	char		 why[256];

	if (what & BEV_EVENT_CONNECTED) {
		uc->connected = true;
		return;
	}
	if (us == NULL) {
		upstream_conn_free(uc);
		return;
	}
	if ((what & BEV_EVENT_EOF) && us->until_close && us->head_sent) {
		upstream_complete(us, false);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(why, sizeof(why), "the model server sent nothing for "
		    "%u s", proxy_conf.upstream_timeout_secs);
		upstream_fail(us, UPERR_TIMEOUT, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the model "
		    "server");
	else
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	/*
	 * A new connection refused, or closed with the whole request still
	 * in its output: not one byte reached the model's server.
	 */
	if (!uc->reused && !us->got_bytes && upstream_undelivered != NULL &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == us->queued) {
		upstream_undeliver(us, uc->connected ? UPERR_CLOSED :
		    UPERR_CONNECT, why);
		return;
	}
	/* A kept-alive connection the server had closed: try a new one. */
	if (uc->reused && !us->got_bytes && !us->retried) {
		us->retried = true;
		us->uc = NULL;
		uc->us = NULL;
		upstream_conn_free(uc);
		us->uc = upstream_connect(us->port);
		us->uc->us = us;
		htparser_init(us->uc->parser, htp_type_response);
		htparser_set_userdata(us->uc->parser, us);
		upstream_send(us);
		return;
	}
	upstream_fail(us, us->got_bytes || (what & BEV_EVENT_EOF) ?
	    UPERR_CLOSED : UPERR_CONNECT, why);
}

void
upstream_abort(struct preq *pr)
{
	struct ustream	*us = pr->us;

	if (us == NULL)
		return;
	log_debug("dropping upstream exchange model=%s", us->pm->name);
	upstream_end(us, false);
	free(us);
}

void
upstream_init(void (*freed)(struct pmodel *),
    void (*undelivered)(struct preq *, uint16_t, uint64_t))
{
	upstream_freed = freed;
	upstream_undelivered = undelivered;
}

void
upstream_shutdown(void)
{
	struct pmodel	*pm;

	TAILQ_FOREACH(pm, &proxy_models, entry)
		upstream_pool_reset(pm);
	if (upstream_scratch != NULL) {
		evbuffer_free(upstream_scratch);
		evbuffer_free(upstream_reqbuf);
	}
	upstream_scratch = upstream_reqbuf = NULL;
}
