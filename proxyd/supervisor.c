/*
 * supervisor.c -- the proxy's link to llmux-supervisord over its Unix
 * socket: hello as the proxy, then config and state pushes, drain, ready
 * and failed; demand sent when a model's queue or in-flight count changes
 * (coalesced); control calls forwarded from the admin port and matched to
 * their replies by id; events, into the mirror (mirror.c) that subscribes
 * at each hello. When the link drops, the proxy keeps serving the models
 * it knows ready, reconnects with backoff, and takes the state the
 * supervisor pushes after hello as the truth.
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

#define SUP_BACKOFF_MIN_MS	100
#define SUP_BACKOFF_MAX_MS	5000
#define SUP_DEMAND_INTERVAL_MS	50	/* between two demands of a model */

struct supcall {
	uint32_t		 id;
	supervisor_reply_cb	 cb;
	void			*arg;
	struct event		*timer;
	TAILQ_ENTRY(supcall)	 entry;
};

static char			*sup_path;
static struct proto_conn	*sup_conn;
static bool			 sup_hello;	/* our hello was answered */
static struct event		*sup_retry;
static int64_t			 sup_backoff_ms = SUP_BACKOFF_MIN_MS;
static struct event		*sup_demand_ev;
static uint32_t			 sup_next_id = 1;
static TAILQ_HEAD(, supcall)	 sup_calls = TAILQ_HEAD_INITIALIZER(sup_calls);

static void	supervisor_connect(void);

bool
supervisor_connected(void)
{
	return (sup_conn != NULL && sup_hello);
}

static void
supervisor_send(const struct proto_msg *m)
{
	if (sup_conn != NULL)
		proto_conn_send(sup_conn, m);
}

/* Send the demand of every model whose figures changed. */
static void
supervisor_demand_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct pmodel	*pm;
	struct proto_msg m;
	int64_t		 now = clock_ms(), wait = -1, left;
	uint32_t	 q;
	struct timeval	 tv;

	if (!supervisor_connected())
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
		 * in-flight counts above all, wait until SUP_DEMAND_INTERVAL_MS
		 * after the model's last demand, so a busy model costs at most
		 * 20 demands a second.
		 */
		if ((q == 0) == (pm->sent_queued == 0) &&
		    now - pm->sent_ms < SUP_DEMAND_INTERVAL_MS) {
			left = SUP_DEMAND_INTERVAL_MS - (now - pm->sent_ms);
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
		supervisor_send(&m);
		pm->sent_done = pm->done;
		pm->sent_queued = q;
		pm->sent_in_flight = pm->in_flight;
		pm->sent_ms = now;
		pm->demand_dirty = false;
	}
	if (wait >= 0) {
		tv.tv_sec = wait / 1000;
		tv.tv_usec = (wait % 1000) * 1000;
		evtimer_add(sup_demand_ev, &tv);
	}
}

void
supervisor_demand(struct pmodel *pm)
{
	pm->demand_dirty = true;
	if (sup_demand_ev != NULL)
		event_active(sup_demand_ev, EV_TIMEOUT, 1);
}

void
supervisor_send_drained(struct pmodel *pm)
{
	struct proto_msg	m;

	log_info("drained model=%s drain_id=%u", pm->name, pm->drain_id);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_DRAINED;
	m.u.drain.model = pm->name;
	m.u.drain.drain_id = pm->drain_id;
	supervisor_send(&m);
}

static struct supcall *
supervisor_find_call(uint32_t id)
{
	struct supcall	*c;

	TAILQ_FOREACH(c, &sup_calls, entry) {
		if (c->id == id)
			return (c);
	}
	return (NULL);
}

static void
supervisor_call_done(struct supcall *c, int status, const uint8_t *body,
    size_t len)
{
	TAILQ_REMOVE(&sup_calls, c, entry);
	event_free(c->timer);
	c->cb(status, body, len, c->arg);
	free(c);
}

static void
supervisor_call_timeout(evutil_socket_t fd, short ev, void *arg)
{
	supervisor_call_done(arg, 504, NULL, 0);
}

uint32_t
supervisor_call(enum proto_type type, const struct proto_call *call,
    uint32_t timeout_ms, supervisor_reply_cb cb, void *arg)
{
	struct supcall		*c;
	struct proto_msg	 m;
	struct timeval		 tv;

	if (!supervisor_connected()) {
		cb(503, NULL, 0, arg);
		return (0);
	}
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.id = sup_next_id++;
	if (sup_next_id == 0)
		sup_next_id = 1;
	if (call != NULL)
		m.u.call = *call;
	if (proto_conn_send(sup_conn, &m) != 0) {
		cb(400, NULL, 0, arg);
		return (0);
	}
	c = xcalloc(1, sizeof(*c));
	c->id = m.id;
	c->cb = cb;
	c->arg = arg;
	c->timer = evtimer_new(proxy_base, supervisor_call_timeout, c);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	TAILQ_INSERT_TAIL(&sup_calls, c, entry);
	return (c->id);
}

void
supervisor_cancel(uint32_t id)
{
	struct supcall	*c;

	if (id == 0 || (c = supervisor_find_call(id)) == NULL)
		return;
	TAILQ_REMOVE(&sup_calls, c, entry);
	event_free(c->timer);
	free(c);
}

/* Every waiting call fails with 503: the supervisor is gone. */
static void
supervisor_fail_calls(void)
{
	struct supcall	*c;

	while ((c = TAILQ_FIRST(&sup_calls)) != NULL)
		supervisor_call_done(c, 503, NULL, 0);
}

static void
supervisor_hello_received(struct proto_hello *h)
{
	struct pmodel	*pm;

	if (h->version != PROTO_VERSION) {
		log_warnx("supervisor speaks another protocol version "
		    "ours=%u theirs=%u", PROTO_VERSION, h->version);
		proto_conn_close_after_flush(sup_conn, "version mismatch");
		return;
	}
	if (h->role != PROTO_ROLE_PROXY && h->role != PROTO_ROLE_ADMIN) {
		log_warnx("supervisor did not grant the proxy role role=%s",
		    proto_role_name(h->role));
		proto_conn_close_after_flush(sup_conn, "role refused");
		return;
	}
	sup_hello = true;
	sup_backoff_ms = SUP_BACKOFF_MIN_MS;
	log_info("connected to the supervisor path=%s unprivileged=%d",
	    sup_path, h->unprivileged);
	/* Tell it about every queue and in-flight count we hold. */
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		pm->sent_queued = 0;
		pm->sent_in_flight = 0;
		pm->sent_done = 0;
		pm->sent_ms = 0;
		if (queue_len(&pm->queue) > 0 || pm->in_flight > 0)
			supervisor_demand(pm);
	}
	mirror_link_up();
}

/* The one dispatch of what the supervisor sends the proxy. */
static void
proxy_dispatch_supervisor(struct proto_conn *c, struct proto_msg *m,
    void *arg)
{
	struct supcall		*call;
	struct proto_msg	 r;

	if (!sup_hello && m->type != PROTO_HELLO && m->type != PROTO_ERROR) {
		log_warnx("supervisor spoke before hello type=%s",
		    proto_type_name(m->type) ? proto_type_name(m->type) : "?");
		goto bad;
	}
	switch (m->type) {
	case PROTO_HELLO:
		if (sup_hello)
			goto bad;
		supervisor_hello_received(&m->u.hello);
		break;
	case PROTO_ERROR:
		log_warnx("supervisor error code=%s message=\"%s\"",
		    m->u.error.code, m->u.error.message);
		if (m->id != 0 && (call = supervisor_find_call(m->id)) != NULL)
			supervisor_call_done(call, 500, NULL, 0);
		else if (!sup_hello)
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
		registry_apply_config(&m->u.config);
		break;
	case PROTO_STATE:
		registry_apply_state(&m->u.state);
		break;
	case PROTO_DRAIN:
		registry_drain(m->u.drain.model, m->u.drain.drain_id);
		break;
	case PROTO_READY:
		registry_ready(m->u.ready.model, m->u.ready.port,
		    m->u.ready.generation);
		break;
	case PROTO_FAILED:
		registry_failed(m->u.failed.model, m->u.failed.reason);
		break;
	case PROTO_EVENT:
		mirror_event(&m->u.event);
		break;
	case PROTO_REPLY:
		if ((call = supervisor_find_call(m->id)) != NULL)
			supervisor_call_done(call, m->u.reply.status,
			    m->u.reply.body, m->u.reply.body_len);
		break;
	case PROTO_PROGRESS:
	case PROTO_LOG_DATA:
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
supervisor_schedule_retry(void)
{
	struct timeval	tv;

	tv.tv_sec = sup_backoff_ms / 1000;
	tv.tv_usec = (sup_backoff_ms % 1000) * 1000;
	evtimer_add(sup_retry, &tv);
	sup_backoff_ms *= 2;
	if (sup_backoff_ms > SUP_BACKOFF_MAX_MS)
		sup_backoff_ms = SUP_BACKOFF_MAX_MS;
}

static void
supervisor_closed(struct proto_conn *c, const char *reason, void *arg)
{
	bool	was = sup_hello;

	sup_conn = NULL;
	sup_hello = false;
	if (was)
		log_warnx("lost the supervisor reason=\"%s\"", reason);
	mirror_link_down();
	registry_supervisor_lost();
	supervisor_fail_calls();
	if (!proxy_exiting)
		supervisor_schedule_retry();
}

static void
supervisor_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	supervisor_connect();
}

static void
supervisor_connect(void)
{
	struct proto_msg	m;
	int			fd;
	static int		warned;

	if (sup_conn != NULL || proxy_exiting)
		return;
	if ((fd = proto_connect_unix(sup_path)) == -1) {
		if (!warned)
			log_warnx("cannot reach the supervisor, retrying "
			    "path=%s error=\"%s\"", sup_path, strerror(errno));
		warned = 1;
		supervisor_schedule_retry();
		return;
	}
	warned = 0;
	sup_conn = proto_conn_new(proxy_base, fd, "supervisor",
	    proxy_dispatch_supervisor, supervisor_closed, NULL);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_HELLO;
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.role = PROTO_ROLE_PROXY;
	m.u.hello.pid = (uint32_t)getpid();
	m.u.hello.program = (char *)"llmux-proxyd";
	proto_conn_send(sup_conn, &m);
}

void
supervisor_init(const char *path)
{
	sup_path = xstrdup(path);
	sup_retry = evtimer_new(proxy_base, supervisor_retry_cb, NULL);
	sup_demand_ev = evtimer_new(proxy_base, supervisor_demand_flush, NULL);
	supervisor_connect();
}

void
supervisor_shutdown(void)
{
	supervisor_fail_calls();
	if (sup_conn != NULL)
		proto_conn_free(sup_conn);
	sup_conn = NULL;
	sup_hello = false;
	if (sup_retry != NULL)
		event_free(sup_retry);
	if (sup_demand_ev != NULL)
		event_free(sup_demand_ev);
	sup_retry = sup_demand_ev = NULL;
	free(sup_path);
	sup_path = NULL;
}
