/*
 * link.c -- the proxy's link to llmux-supervisord over its Unix socket:
 * hello as the proxy, then config and state pushes, drain, ready and
 * failed; demand sent when a model's queue or in-flight count changes
 * (coalesced), and a model's server found unreachable; control calls
 * forwarded from the admin port and matched to their replies by id;
 * events, handed up to the mirror (mirror.c), which subscribes at each
 * hello. When the link drops, the proxy keeps serving the models it knows
 * ready, reconnects with backoff, and takes the state the
 * supervisor pushes after hello as the truth.
 *
 * The link sits low: the files that send demand, drained and control calls
 * call it. What the supervisor pushes goes up through the struct link_ops
 * that main.c passes to link_init, which applies it to each module in turn.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

#define LINK_BACKOFF_MIN_MS	100
#define LINK_BACKOFF_MAX_MS	5000
#define LINK_DEMAND_INTERVAL_MS	50	/* between two demands of a model */

struct linkcall {
	uint32_t		 id;
	link_reply_cb		 cb;
	link_data_cb		 data;		/* log_data chunks, or NULL */
	void			*arg;
	struct event		*timer;
	TAILQ_ENTRY(linkcall)	 entry;
};

static const struct link_ops	*link_ops;
static char			*link_path;
static struct proto_conn	*link_conn;
static bool			 link_hello;	/* our hello was answered */
static struct event		*link_retry_ev;
static int64_t			 link_backoff_ms = LINK_BACKOFF_MIN_MS;
static struct event		*link_demand_ev;
static uint32_t			 link_next_id = 1;
static TAILQ_HEAD(, linkcall)	 link_calls = TAILQ_HEAD_INITIALIZER(link_calls);

static void	link_connect(void);

bool
link_connected(void)
{
	return (link_conn != NULL && link_hello);
}

static void
link_send(const struct proto_msg *m)
{
	if (link_conn != NULL)
		proto_conn_send(link_conn, m);
}

/* Send the demand of every model whose figures changed. */
static void
link_demand_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct pmodel	*pm;
	struct proto_msg m;
	int64_t		 now = clock_ms(), wait = -1, left;
	uint32_t	 q;
	struct timeval	 tv;

	if (!link_connected())
		return;
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->demand_dirty)
			continue;
		q = queue_len(&pm->queue);
		if (q == pm->sent_queued && pm->in_flight == pm->sent_in_flight &&
		    pm->done == pm->sent_done) {
			pm->demand_dirty = false;
			continue;
		}
		/*
		 * Requests starting to wait (or none waiting any more) go at
		 * once: that is what a switch decision needs. Other changes,
		 * in-flight counts above all, wait until LINK_DEMAND_INTERVAL_MS
		 * after the model's last demand, so a busy model costs at most
		 * 20 demands a second; so do requests starting to wait for a
		 * model being served, held back by its max_concurrency (their
		 * queue coming and going would otherwise cost two demands a
		 * request).
		 */
		if (((q == 0) == (pm->sent_queued == 0) || (q > 0 &&
		    pm->ready && !pm->draining && !pm->unreachable)) &&
		    now - pm->sent_ms < LINK_DEMAND_INTERVAL_MS) {
			left = LINK_DEMAND_INTERVAL_MS - (now - pm->sent_ms);
			if (wait < 0 || left < wait)
				wait = left;
			continue;
		}
		memset(&m, 0, sizeof(m));
		m.type = PROTO_DEMAND;
		m.u.demand.model = pm->name;
		m.u.demand.queued = q;
		m.u.demand.in_flight = pm->in_flight;
		m.u.demand.oldest_ms = (uint32_t)queue_oldest_ms(&pm->queue,
		    now);
		m.u.demand.done = pm->done;
		link_send(&m);
		pm->sent_done = pm->done;
		pm->sent_queued = q;
		pm->sent_in_flight = pm->in_flight;
		pm->sent_ms = now;
		pm->demand_dirty = false;
	}
	if (wait >= 0) {
		tv.tv_sec = wait / 1000;
		tv.tv_usec = (wait % 1000) * 1000;
		evtimer_add(link_demand_ev, &tv);
	}
}

void
link_demand(struct pmodel *pm)
{
	pm->demand_dirty = true;
	if (link_demand_ev != NULL)
		event_active(link_demand_ev, EV_TIMEOUT, 1);
}

void
link_send_drained(struct pmodel *pm)
{
	struct proto_msg	m;

	log_info("drained model=%s drain_id=%u", pm->name, pm->drain_id);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DRAINED;
	m.u.drain.model = pm->name;
	m.u.drain.drain_id = pm->drain_id;
	link_send(&m);
}

void
link_send_unreachable(struct pmodel *pm)
{
	struct proto_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_UNREACHABLE;
	m.u.ready.model = pm->name;
	m.u.ready.port = pm->port;
	m.u.ready.generation = pm->generation;
	link_send(&m);
}

static struct linkcall *
link_find_call(uint32_t id)
{
	struct linkcall	*c;

	TAILQ_FOREACH(c, &link_calls, entry) {
		if (c->id == id)
			return (c);
	}
	return (NULL);
}

static void
link_call_done(struct linkcall *c, int status, const uint8_t *body,
    size_t len)
{
	TAILQ_REMOVE(&link_calls, c, entry);
	event_free(c->timer);
	c->cb(status, body, len, c->arg);
	free(c);
}

static void
link_call_timeout(evutil_socket_t fd, short ev, void *arg)
{
	link_call_done(arg, 504, NULL, 0);
}

uint32_t
link_call(enum proto_type type, const struct proto_call *call,
    uint32_t timeout_ms, link_reply_cb cb, void *arg)
{
	return (link_call_data(type, call, timeout_ms, NULL, cb, arg));
}

uint32_t
link_call_data(enum proto_type type, const struct proto_call *call,
    uint32_t timeout_ms, link_data_cb data, link_reply_cb cb, void *arg)
{
	struct linkcall		*c;
	struct proto_msg	 m;
	struct timeval		 tv;

	if (!link_connected()) {
		cb(503, NULL, 0, arg);
		return (0);
	}
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.id = link_next_id++;
	if (link_next_id == 0)
		link_next_id = 1;
	if (call != NULL)
		m.u.call = *call;
	if (proto_conn_send(link_conn, &m) != 0) {
		cb(400, NULL, 0, arg);
		return (0);
	}
	c = xcalloc(1, sizeof(*c));
	c->id = m.id;
	c->cb = cb;
	c->data = data;
	c->arg = arg;
	c->timer = evtimer_new(proxy_base, link_call_timeout, c);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	TAILQ_INSERT_TAIL(&link_calls, c, entry);
	return (c->id);
}

void
link_cancel(uint32_t id)
{
	struct linkcall	*c;

	if (id == 0 || (c = link_find_call(id)) == NULL)
		return;
	TAILQ_REMOVE(&link_calls, c, entry);
	event_free(c->timer);
	free(c);
}

/* Every waiting call fails with 503: the supervisor is gone. */
static void
link_fail_calls(void)
{
	struct linkcall	*c;

	while ((c = TAILQ_FIRST(&link_calls)) != NULL)
		link_call_done(c, 503, NULL, 0);
}

static void
link_hello_received(struct proto_hello *h)
{
	struct pmodel	*pm;

	if (h->version != PROTO_VERSION) {
		log_warnx("supervisor speaks another protocol version "
		    "ours=%u theirs=%u", PROTO_VERSION, h->version);
		proto_conn_close_after_flush(link_conn, "version mismatch");
		return;
	}
	if (h->role != PROTO_ROLE_PROXY && h->role != PROTO_ROLE_ADMIN) {
		log_warnx("supervisor did not grant the proxy role role=%s",
		    proto_role_name(h->role));
		proto_conn_close_after_flush(link_conn, "role refused");
		return;
	}
	link_hello = true;
	link_backoff_ms = LINK_BACKOFF_MIN_MS;
	log_info("connected to the supervisor path=%s unprivileged=%d",
	    link_path, h->unprivileged);
	/*
	 * Tell it about every queue and in-flight count we hold, and every
	 * model still waiting for a ready since its server was unreachable.
	 */
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		pm->sent_queued = 0;
		pm->sent_in_flight = 0;
		pm->sent_done = 0;
		pm->sent_ms = 0;
		if (queue_len(&pm->queue) > 0 || pm->in_flight > 0)
			link_demand(pm);
		if (pm->unreachable)
			link_send_unreachable(pm);
	}
	link_ops->up();
}

/* The one dispatch of what the supervisor sends the proxy. */
static void
link_dispatch(struct proto_conn *c, struct proto_msg *m,
    void *arg)
{
	struct linkcall		*call;
	struct proto_msg	 r;

	if (!link_hello && m->type != PROTO_HELLO && m->type != PROTO_ERROR) {
		log_warnx("supervisor spoke before hello type=%s",
		    proto_type_name(m->type) ? proto_type_name(m->type) : "?");
		goto bad;
	}
	switch (m->type) {
	case PROTO_HELLO:
		if (link_hello)
			goto bad;
		link_hello_received(&m->u.hello);
		break;
	case PROTO_ERROR:
		log_warnx("supervisor error code=%s message=\"%s\"",
		    m->u.error.code, m->u.error.message);
		if (m->id != 0 && (call = link_find_call(m->id)) != NULL)
			link_call_done(call, strcmp(m->u.error.code,
			    "forbidden") == 0 ? 403 : 500, NULL, 0);
		else if (!link_hello)
			proto_conn_close_after_flush(c, m->u.error.code);
		break;
	case PROTO_PING:
		memset(&r, 0, sizeof(r));
		r.type = PROTO_PONG;
		r.id = m->id;
		proto_conn_send(c, &r);
		break;
	case PROTO_PONG:
		break;
	case PROTO_CONFIG:
		link_ops->config(&m->u.config);
		break;
	case PROTO_STATE:
		link_ops->state(&m->u.state);
		break;
	case PROTO_DRAIN:
		link_ops->drain(&m->u.drain);
		break;
	case PROTO_READY:
		link_ops->ready(&m->u.ready);
		break;
	case PROTO_FAILED:
		link_ops->failed(&m->u.failed);
		break;
	case PROTO_EVENT:
		link_ops->event(&m->u.event);
		break;
	case PROTO_REPLY:
		if ((call = link_find_call(m->id)) != NULL)
			link_call_done(call, m->u.reply.status,
			    m->u.reply.body, m->u.reply.body_len);
		break;
	case PROTO_LOG_DATA:
		if ((call = link_find_call(m->id)) != NULL &&
		    call->data != NULL)
			call->data(m->u.log.data, m->u.log.len, call->arg);
		break;
	case PROTO_PROGRESS:
		break;
	default:
		log_warnx("unexpected message from the supervisor type=%s",
		    proto_type_name(m->type) ? proto_type_name(m->type) : "?");
		proto_conn_send_error(c, m->id, "bad_message",
		    "the proxy does not take %s messages",
		    proto_type_name(m->type) ? proto_type_name(m->type) : "?");
		break;
	}
	return;
bad:
	proto_conn_send_error(c, m->id, "bad_message", "unexpected message");
	proto_conn_close_after_flush(c, "protocol violation");
}

static void
link_schedule_retry(void)
{
	struct timeval	tv;

	tv.tv_sec = link_backoff_ms / 1000;
	tv.tv_usec = (link_backoff_ms % 1000) * 1000;
	evtimer_add(link_retry_ev, &tv);
	link_backoff_ms *= 2;
	if (link_backoff_ms > LINK_BACKOFF_MAX_MS)
		link_backoff_ms = LINK_BACKOFF_MAX_MS;
}

static void
link_closed(struct proto_conn *c, const char *reason, void *arg)
{
	bool	was = link_hello;

	link_conn = NULL;
	link_hello = false;
	if (was)
		log_warnx("lost the supervisor reason=\"%s\"", reason);
	link_ops->lost();
	link_fail_calls();
	if (!proxy_exiting)
		link_schedule_retry();
}

static void
link_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	link_connect();
}

static void
link_connect(void)
{
	struct proto_msg	m;
	int			fd;
	static int		warned;

	if (link_conn != NULL || proxy_exiting)
		return;
	if ((fd = proto_connect_unix(link_path)) == -1) {
		if (!warned)
			log_warnx("cannot reach the supervisor, retrying "
			    "path=%s error=\"%s\"", link_path, strerror(errno));
		warned = 1;
		link_schedule_retry();
		return;
	}
	warned = 0;
	link_conn = proto_conn_new(proxy_base, fd, "supervisor",
	    link_dispatch, link_closed, NULL);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_HELLO;
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.role = PROTO_ROLE_PROXY;
	m.u.hello.pid = (uint32_t)getpid();
	m.u.hello.program = (char *)"llmux-proxyd";
	proto_conn_send(link_conn, &m);
}

void
link_init(const char *path, const struct link_ops *ops)
{
	link_ops = ops;
	link_path = xstrdup(path);
	link_retry_ev = evtimer_new(proxy_base, link_retry_cb, NULL);
	link_demand_ev = evtimer_new(proxy_base, link_demand_flush, NULL);
	link_connect();
}

void
link_shutdown(void)
{
	link_fail_calls();
	if (link_conn != NULL)
		proto_conn_free(link_conn);
	link_conn = NULL;
	link_hello = false;
	if (link_retry_ev != NULL)
		event_free(link_retry_ev);
	if (link_demand_ev != NULL)
		event_free(link_demand_ev);
	link_retry_ev = link_demand_ev = NULL;
	free(link_path);
	link_path = NULL;
}
