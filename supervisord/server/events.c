/*
 * events.c -- the supervisor's stream of events (docs/protocol.md,
 * "Events"): a bounded ring of the last events, each numbered within this
 * run (seq, from 1) and stamped with the run's boot (its start, unix ms);
 * subscribers (the proxy, llmuxctl) get the ring after the id they name
 * and then every new event as it is made.
 *
 * The levels above make events by calling down into events_emit with a
 * body (base/body.c) as the event's data: switch phases (switching/),
 * crashes and restarts (through the engine hooks, in supervisor.c),
 * reloads (control/). What the state pushes already say is found here:
 * each push to the proxy is compared with the last one told (events_sync)
 * and every model state change, eviction, mode and pin becomes an event;
 * the proxy's demand becomes queue events, at most one per model every
 * EVENTS_QUEUE_MS and always the last.
 *
 * Memory is bounded: the ring holds event_ring_size events and at most
 * EVENTS_MAX_BYTES of them, each encoded once as the frame every
 * subscriber is sent; an llmuxctl subscriber that stops reading is dropped
 * when its unsent output passes EVENTS_SUB_SLACK plus the ring's bytes
 * (a whole replay always fits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"

#define EVENTS_MAX_BYTES	(16u << 20)
#define EVENTS_SUB_SLACK	(1u << 20)
#define EVENTS_QUEUE_MS		250

struct events_rec {
	uint64_t	 seq;
	uint8_t		*frame;		/* the whole frame, length included */
	size_t		 len;
};

struct events {
	uint64_t		 boot;
	uint64_t		 next_seq;
	struct events_rec	*v;		/* a ring of cap, oldest at head */
	size_t			 cap, head, n;
	size_t			 bytes;
	struct event		*ev_queue;	/* coalesced queue events */
	bool			 told_mode;
	bool			 manual;
	char			*pinned;
};

static uint64_t
events_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static void	events_queue_cb(evutil_socket_t, short, void *);

void
events_init(struct supervisor *sup)
{
	struct events	*e = xcalloc(1, sizeof(*e));

	e->boot = events_wall_ms();
	e->next_seq = 1;
	e->cap = sup->conf->event_ring_size >= 1 ?
	    sup->conf->event_ring_size : 4096;
	e->v = xcalloc(e->cap, sizeof(*e->v));
	e->ev_queue = evtimer_new(sup->base, events_queue_cb, sup);
	sup->events = e;
}

void
events_free(struct supervisor *sup)
{
	struct events	*e = sup->events;

	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++)
		free(e->v[(e->head + i) % e->cap].frame);
	free(e->v);
	event_free(e->ev_queue);
	free(e->pinned);
	free(e);
	sup->events = NULL;
}

static void
events_drop_oldest(struct events *e)
{
	struct events_rec	*r = &e->v[e->head];

	e->bytes -= r->len;
	free(r->frame);
	r->frame = NULL;
	e->head = (e->head + 1) % e->cap;
	e->n--;
}

/* A reload may change event_ring_size: keep the newest that fit. */
void
events_resize(struct supervisor *sup)
{
	struct events		*e = sup->events;
	struct events_rec	*v;
	size_t			 cap = sup->conf->event_ring_size, n;

	if (e == NULL || cap < 1 || cap == e->cap)
		return;
	while (e->n > cap)
		events_drop_oldest(e);
	v = xcalloc(cap, sizeof(*v));
	for (n = 0; n < e->n; n++)
		v[n] = e->v[(e->head + n) % e->cap];
	free(e->v);
	e->v = v;
	e->cap = cap;
	e->head = 0;
	log_info("event ring resized events=%zu", cap);
}

void
events_info(struct supervisor *sup, struct events_info *out)
{
	struct events	*e = sup->events;

	memset(out, 0, sizeof(*out));
	if (e == NULL)
		return;
	out->boot = e->boot;
	out->last_seq = e->next_seq - 1;
	out->first_seq = e->n > 0 ? e->v[e->head].seq : e->next_seq;
	out->ring_size = e->cap;
}

/*
 * Encode an event as a frame, in an allocation of its own size (the
 * encoder's buffer is far larger than most events); NULL when it does not
 * fit the protocol.
 */
static uint8_t *
events_frame(struct events *e, uint64_t seq, const char *kind,
    const char *model, struct body *data, size_t *len)
{
	struct proto_msg	 m;
	uint8_t			*frame, *exact;
	size_t			 dlen = 0;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_EVENT;
	m.u.event.seq = seq;
	m.u.event.boot = e->boot;
	m.u.event.time_ms = events_wall_ms();
	m.u.event.kind = (char *)kind;
	m.u.event.model = (char *)model;
	if (data != NULL) {
		m.u.event.data = (uint8_t *)body_data(data, &dlen);
		m.u.event.data_len = dlen;
	}
	if (proto_encode(&m, &frame, len) != 0)
		return (NULL);
	exact = xmalloc(*len);
	memcpy(exact, frame, *len);
	free(frame);
	return (exact);
}

static bool
events_subscriber(const struct client *c)
{
	return (c->hello && c->subscribed);
}

void
events_emit(struct supervisor *sup, const char *kind, const char *model,
    struct body *data)
{
	struct events		*e = sup->events;
	struct events_rec	*r;
	struct client		*c;
	uint8_t			*frame;
	size_t			 len;

	if (e == NULL) {
		body_free(data);
		return;
	}
	if ((frame = events_frame(e, e->next_seq, kind, model, data, &len)) ==
	    NULL) {
		log_warnx("event does not fit the protocol, dropped kind=%s "
		    "model=%s", kind, model != NULL ? model : "-");
		body_free(data);
		return;
	}
	body_free(data);
	while (e->n > 0 && (e->n == e->cap ||
	    e->bytes + len > EVENTS_MAX_BYTES))
		events_drop_oldest(e);
	r = &e->v[(e->head + e->n) % e->cap];
	r->seq = e->next_seq++;
	r->frame = frame;
	r->len = len;
	e->n++;
	e->bytes += len;
	TAILQ_FOREACH(c, &sup->clients, entry)
		if (events_subscriber(c))
			proto_conn_send_frame(c->conn, frame, len);
}

/* The gap a subscriber is told of: events before first_seq are gone. */
static void
events_send_gap(struct supervisor *sup, struct client *c, uint64_t first)
{
	struct events	*e = sup->events;
	struct body	*b = body_new();
	uint8_t		*frame;
	size_t		 len;

	body_map(b, 1);
	body_kuint(b, "first_seq", first);
	/* Its id resumes from first_seq: what a client keeps is right. */
	if ((frame = events_frame(e, first - 1, "gap", NULL, b, &len)) !=
	    NULL) {
		proto_conn_send_frame(c->conn, frame, len);
		free(frame);
	}
	body_free(b);
}

void
events_subscribe(struct client *c, bool has_since,
    const struct proto_event_id *since)
{
	struct supervisor	*sup = c->sup;
	struct events		*e = sup->events;
	struct events_rec	*r;
	uint64_t		 first, after;

	if (e == NULL)
		return;
	if (c->role == PROTO_ROLE_ADMIN)
		proto_conn_set_max_output(c->conn, EVENTS_SUB_SLACK + e->bytes);
	if (!has_since)
		return;
	first = e->n > 0 ? e->v[e->head].seq : e->next_seq;
	after = since->seq;
	if ((since->boot != 0 && since->boot != e->boot) ||
	    after >= e->next_seq) {
		/* Another run's id, or one this run never gave. */
		events_send_gap(sup, c, first);
		after = 0;
	} else if (after != 0 && after + 1 < first) {
		events_send_gap(sup, c, first);
		after = 0;
	}
	for (size_t i = 0; i < e->n; i++) {
		r = &e->v[(e->head + i) % e->cap];
		if (r->seq > after)
			proto_conn_send_frame(c->conn, r->frame, r->len);
	}
}

/* ---- what the state pushes say ------------------------------------------- */

static bool
events_is_evicted(enum proto_model_state s)
{
	return (s == PROTO_MS_SLEEPING || s == PROTO_MS_CHECKPOINTED ||
	    s == PROTO_MS_STOPPED);
}

static bool
events_was_serving(enum proto_model_state s)
{
	return (s == PROTO_MS_READY || s == PROTO_MS_DRAINING ||
	    s == PROTO_MS_EVICTING);
}

/* The eviction a model that left the GPU did, as "weights+process". */
static void
events_eviction_of(const struct model *m, enum proto_model_state st,
    char *buf, size_t len)
{
	struct eviction	ev;

	if (st == PROTO_MS_STOPPED) {
		ev = model_eviction(m);
		ev.process = PROCESS_STOP;
	} else
		ev = m->sleeping;
	eviction_format(&ev, buf, len);
}

static void
events_model_state(struct supervisor *sup, struct model *m,
    enum proto_model_state st, int64_t now)
{
	struct body	*b;
	struct eviction	 ev;
	char		 evs[64];
	bool		 told = m->ev_told;
	enum proto_model_state from = (enum proto_model_state)m->ev_state;

	b = body_new();
	body_map(b, 7);
	body_kstr(b, "state", proto_model_state_name(st));
	body_kstr(b, "from", told ? proto_model_state_name(from) : NULL);
	body_kuint(b, "port", m->proc != NULL ? m->proc->port :
	    m->cfg != NULL ? m->cfg->port : 0);
	body_kuint(b, "generation", m->generation);
	ev = (m->pstate == MODEL_SLEEPING || m->pstate == MODEL_CHECKPOINTED) ?
	    m->sleeping : model_eviction(m);
	body_kstr(b, "eviction", eviction_format(&ev, evs, sizeof(evs)));
	body_kstr(b, "reason", st == PROTO_MS_FAILED ? m->reason : NULL);
	body_kstr(b, "process", model_pstate_name(m->pstate));
	events_emit(sup, "state", m->name, b);

	if (told && events_is_evicted(st) && events_was_serving(from)) {
		events_eviction_of(m, st, evs, sizeof(evs));
		b = body_new();
		body_map(b, 2);
		body_kstr(b, "eviction", evs);
		body_kuint(b, "ms", from == PROTO_MS_EVICTING &&
		    now >= m->ev_state_ms ? (uint64_t)(now - m->ev_state_ms) :
		    0);
		events_emit(sup, "eviction", m->name, b);
	}
	m->ev_told = true;
	m->ev_state = (int)st;
	m->ev_state_ms = now;
}

static void
events_mode(struct supervisor *sup)
{
	struct events	*e = sup->events;
	struct body	*b;
	const char	*pinned;
	bool		 manual;

	if (sup->switcher == NULL)
		return;
	manual = switcher_mode(sup->switcher) == SWITCHER_MANUAL;
	pinned = switcher_model_name(sup->switcher,
	    switcher_pinned(sup->switcher));
	if (e->told_mode && manual == e->manual &&
	    ((pinned == NULL && e->pinned == NULL) || (pinned != NULL &&
	    e->pinned != NULL && strcmp(pinned, e->pinned) == 0)))
		return;
	e->told_mode = true;
	e->manual = manual;
	free(e->pinned);
	e->pinned = pinned != NULL ? xstrdup(pinned) : NULL;
	b = body_new();
	body_map(b, 2);
	body_kstr(b, "mode", manual ? "manual" : "auto");
	body_kstr(b, "pinned", pinned);
	events_emit(sup, "mode", NULL, b);
}

void
events_sync(struct supervisor *sup)
{
	struct model		*m;
	enum proto_model_state	 st;
	int64_t			 now = clock_ms();

	if (sup->events == NULL)
		return;
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		st = model_published_state(m);
		if (!m->ev_told || (int)st != m->ev_state)
			events_model_state(sup, m, st, now);
	}
	events_mode(sup);
}

/* ---- queue events, coalesced --------------------------------------------- */

static void
events_queue_now(struct supervisor *sup, struct model *m, int64_t now)
{
	struct body	*b = body_new();

	body_map(b, 4);
	body_kuint(b, "queued", m->queued);
	body_kuint(b, "in_flight", m->in_flight);
	body_kuint(b, "oldest_ms", m->oldest_ms);
	body_kuint(b, "done", m->done);
	events_emit(sup, "queue", m->name, b);
	m->ev_queue_ms = now;
	m->ev_queue_pending = false;
}

/* Arm the one timer for the earliest model that waits. */
static void
events_queue_arm(struct supervisor *sup, int64_t now)
{
	struct model	*m;
	struct timeval	 tv;
	int64_t		 at = -1, delay;

	TAILQ_FOREACH(m, &sup->models, entry)
		if (m->ev_queue_pending && (at < 0 ||
		    m->ev_queue_ms + EVENTS_QUEUE_MS < at))
			at = m->ev_queue_ms + EVENTS_QUEUE_MS;
	if (at < 0)
		return;
	delay = at > now ? at - now : 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(sup->events->ev_queue, &tv);
}

static void
events_queue_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct model		*m;
	int64_t			 now = clock_ms();

	TAILQ_FOREACH(m, &sup->models, entry)
		if (m->ev_queue_pending && !m->removed &&
		    now - m->ev_queue_ms >= EVENTS_QUEUE_MS)
			events_queue_now(sup, m, now);
	events_queue_arm(sup, now);
}

void
events_queue(struct model *m)
{
	struct supervisor	*sup = m->sup;
	int64_t			 now = clock_ms();

	if (sup->events == NULL || m->removed)
		return;
	if (now - m->ev_queue_ms >= EVENTS_QUEUE_MS && !m->ev_queue_pending) {
		events_queue_now(sup, m, now);
		return;
	}
	m->ev_queue_pending = true;
	events_queue_arm(sup, now);
}
