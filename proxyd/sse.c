/*
 * sse.c -- GET /control/events on the admin port: the supervisor's events
 * as Server-Sent Events, from the proxy's mirror of its ring (mirror.c).
 *
 * The request's connection is taken from libevhtp and kept as a plain
 * bufferevent: the head is written once (text/event-stream, no length,
 * the stream ends when the connection closes), then one SSE record per
 * event. Each client has a cursor (boot, seq): it is sent what follows
 * its cursor in the mirror, a `gap` record first when the cursor is of
 * another boot or older than what the mirror holds. A client that names
 * no id gets the events from now on; `Last-Event-ID` (or ?since=ID, 0 for
 * everything kept) resumes. Until the mirror is synced with the
 * supervisor (just after a proxy restart) a client waits with its head
 * sent, so a resume never skips what the supervisor still holds.
 *
 * Output is bounded: a client catching up is sent records only while its
 * unsent output is under SSE_PACE bytes (more as it drains); one that is
 * caught up is sent each new record at once, and is closed (a slow
 * reader, counted in llmux_event_clients_dropped_total) when its unsent
 * output passes SSE_MAX_UNSENT (the socket's own buffer is fixed at
 * SSE_SNDBUF, so the kernel holds little more). At most SSE_MAX_CLIENTS at once (more:
 * 503). A comment line every SSE_KEEPALIVE_SECS keeps idle connections
 * open through proxies and tells a client the stream is alive.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <evhtp/evhtp.h>

#include "evstream.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

#define SSE_MAX_CLIENTS		64
#define SSE_MAX_UNSENT		(256u << 10)
#define SSE_PACE		(64u << 10)
#define SSE_KEEPALIVE_SECS	15
#define SSE_SNDBUF		(64 << 10)	/* the kernel's part, fixed */

struct sse_client {
	struct bufferevent	*bev;
	bool			 known;		/* cursor set */
	bool			 live;		/* no id given: from now on */
	uint64_t		 boot;		/* cursor: the last sent */
	uint64_t		 seq;
	char			 peer[64];
	TAILQ_ENTRY(sse_client)	 entry;
};

static TAILQ_HEAD(, sse_client) sse_clients =
    TAILQ_HEAD_INITIALIZER(sse_clients);
static size_t		 sse_count;
static uint64_t		 sse_dropped;
static struct event	*sse_keepalive_ev;

static void
sse_free(struct sse_client *c)
{
	TAILQ_REMOVE(&sse_clients, c, entry);
	sse_count--;
	bufferevent_free(c->bev);
	free(c);
}

static size_t
sse_unsent(const struct sse_client *c)
{
	return (evbuffer_get_length(bufferevent_get_output(c->bev)));
}

/* Close a client that does not read; true when it was closed. */
static bool
sse_check_slow(struct sse_client *c)
{
	if (sse_unsent(c) <= SSE_MAX_UNSENT)
		return (false);
	sse_dropped++;
	log_info("event client dropped, not reading peer=%s unsent=%zu",
	    c->peer, sse_unsent(c));
	sse_free(c);
	return (true);
}

/* The gap record: events before first are not kept; resume after it. */
static void
sse_send_gap(struct sse_client *c, uint64_t first)
{
	struct proto_event	 e;
	uint8_t			 data[32];
	size_t			 len, n = 0;
	char			*rec;
	struct timespec		 ts;

	/* {"first_seq": first} as msgpack: a map of one pair, a uint64. */
	data[n++] = 0x81;
	data[n++] = 0xa9;
	memcpy(data + n, "first_seq", 9);
	n += 9;
	data[n++] = 0xcf;
	for (int i = 7; i >= 0; i--)
		data[n++] = (uint8_t)(first >> (i * 8));
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&e, 0, sizeof(e));
	e.seq = first - 1;
	e.boot = mirror_boot();
	e.time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	e.kind = (char *)"gap";
	e.data = data;
	e.data_len = n;
	if ((rec = evstream_sse(&e, &len)) != NULL) {
		bufferevent_write(c->bev, rec, len);
		free(rec);
	}
	c->boot = e.boot;
	c->seq = e.seq;
}

/*
 * The mirror is synced: where the client starts. No id: after the last
 * event; 0: before the first kept; a bare SEQ: of the current boot.
 */
static void
sse_start(struct sse_client *c)
{
	uint64_t	first = mirror_first_seq(), last = mirror_last_seq();

	c->known = true;
	if (c->live) {
		c->boot = mirror_boot();
		c->seq = last;
	} else if (c->boot == 0) {
		c->boot = mirror_boot();
		if (c->seq == 0)
			c->seq = first > 0 ? first - 1 : last;
	}
}

/*
 * Send what follows the client's cursor, while its unsent output is under
 * SSE_PACE (all at once when force: a caught-up client's new record).
 * Nothing while the mirror is being synced: it may be about to change.
 */
static void
sse_pump(struct sse_client *c, bool force)
{
	uint64_t	 first = mirror_first_seq(), last = mirror_last_seq();
	const char	*rec;
	size_t		 len;

	if (!c->known || !mirror_synced())
		return;
	if (c->boot != mirror_boot() || c->seq > last ||
	    (last > 0 && c->seq + 1 < first))
		sse_send_gap(c, last > 0 ? first : 1);
	while (c->seq < last && (force || sse_unsent(c) < SSE_PACE)) {
		if ((rec = mirror_get(c->seq + 1, &len)) == NULL)
			break;
		bufferevent_write(c->bev, rec, len);
		c->seq++;
	}
}

/* The mirror synced, or holds a new event: send each client its part. */
void
sse_mirror_changed(void)
{
	struct sse_client	*c, *next;
	uint64_t		 last = mirror_last_seq();
	bool			 caught_up;

	if (!mirror_synced())
		return;
	for (c = TAILQ_FIRST(&sse_clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!c->known)
			sse_start(c);
		caught_up = c->boot == mirror_boot() && c->seq + 1 == last;
		sse_pump(c, caught_up);
		sse_check_slow(c);
	}
}

static void
sse_read_cb(struct bufferevent *bev, void *arg)
{
	/* A client has nothing to say: what it sends is dropped. */
	evbuffer_drain(bufferevent_get_input(bev),
	    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
sse_write_cb(struct bufferevent *bev, void *arg)
{
	/* Below the low-water mark: a client catching up gets more. */
	sse_pump(arg, false);
}

static void
sse_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sse_client	*c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("event client gone peer=%s", c->peer);
		sse_free(c);
	}
}

static void
sse_keepalive_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sse_client	*c, *next;

	for (c = TAILQ_FIRST(&sse_clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		bufferevent_write(c->bev, ": keep-alive\n\n", 14);
		sse_check_slow(c);
	}
}

/* The id to resume after: Last-Event-ID, else ?since=; -1 if malformed. */
static int
sse_cursor(evhtp_request_t *req, struct sse_client *c)
{
	struct proto_event_id	 id;
	const char		*s;

	s = evhtp_header_find(req->headers_in, "Last-Event-ID");
	if (s == NULL && req->uri != NULL && req->uri->query != NULL)
		s = evhtp_kv_find(req->uri->query, "since");
	if (s == NULL || *s == '\0') {
		c->live = true;
		return (0);
	}
	if (strlen(s) > 64 || proto_event_id_parse(s, &id) != 0)
		return (-1);
	/* Boot 0 ("0", or a bare SEQ): the supervisor's current boot. */
	c->boot = id.boot;
	c->seq = id.seq;
	return (0);
}

int
sse_open(evhtp_request_t *req, char *msg, size_t msglen)
{
	static const char	 head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\n"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "X-Accel-Buffering: no\r\n\r\n"
	    "retry: 1000\n\n";
	struct sse_client	 probe, *c;
	evhtp_connection_t	*conn = evhtp_request_get_connection(req);
	struct bufferevent	*bev;
	int			 sndbuf;

	if (sse_count >= SSE_MAX_CLIENTS) {
		snprintf(msg, msglen, "too many event stream clients (at most "
		    "%d)", SSE_MAX_CLIENTS);
		return (503);
	}
	memset(&probe, 0, sizeof(probe));
	if (sse_cursor(req, &probe) != 0) {
		snprintf(msg, msglen, "bad Last-Event-ID or since: expected "
		    "BOOT-SEQ or SEQ");
		return (400);
	}
	c = xcalloc(1, sizeof(*c));
	*c = probe;
	if (conn->saddr != NULL && conn->saddr->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)
		    conn->saddr)->sin_addr, c->peer, sizeof(c->peer));
	bev = evhtp_connection_take_ownership(conn);
	c->bev = bev;
	TAILQ_INSERT_TAIL(&sse_clients, c, entry);
	sse_count++;
	bufferevent_set_timeouts(bev, NULL, NULL);
	/* Events are few and small: no autotuned megabytes in the kernel
	 * for a client that does not read. */
	sndbuf = SSE_SNDBUF;
	(void)setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_SNDBUF,
	    &sndbuf, sizeof(sndbuf));
	bufferevent_setwatermark(bev, EV_WRITE, SSE_PACE / 2, 0);
	bufferevent_setcb(bev, sse_read_cb, sse_write_cb, sse_event_cb, c);
	bufferevent_write(bev, head, sizeof(head) - 1);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (sse_keepalive_ev == NULL) {
		struct timeval	tv = { SSE_KEEPALIVE_SECS, 0 };

		sse_keepalive_ev = event_new(proxy_base, -1, EV_PERSIST,
		    sse_keepalive_cb, NULL);
		event_add(sse_keepalive_ev, &tv);
	}
	log_debug("event client peer=%s live=%d", c->peer, c->live);
	if (mirror_synced()) {
		sse_start(c);
		sse_pump(c, false);
	}
	return (0);
}

void
sse_metrics_text(struct evbuffer *out)
{
	evbuffer_add_printf(out,
	    "# HELP llmux_event_clients Clients of GET /control/events now.\n"
	    "# TYPE llmux_event_clients gauge\n"
	    "llmux_event_clients %zu\n"
	    "# HELP llmux_event_clients_dropped_total Event stream clients "
	    "closed because they did not read.\n"
	    "# TYPE llmux_event_clients_dropped_total counter\n"
	    "llmux_event_clients_dropped_total %llu\n", sse_count,
	    (unsigned long long)sse_dropped);
}

void
sse_shutdown(void)
{
	struct sse_client	*c;

	while ((c = TAILQ_FIRST(&sse_clients)) != NULL)
		sse_free(c);
	if (sse_keepalive_ev != NULL)
		event_free(sse_keepalive_ev);
	sse_keepalive_ev = NULL;
}
