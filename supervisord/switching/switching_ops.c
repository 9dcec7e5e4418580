/*
 * switching_ops.c -- the switcher's operations carried out on the engine
 * and the proxy (see switching.c): drain through the proxy (drained at once
 * when none is connected), evict and wake with evict.c, what is free on a
 * model's GPUs before its wake (a fresh NVML read, gpu/), the warm-up
 * inference over HTTP, ready and failed to the proxy and to the orders
 * waiting (order.c), state pushes and journal writes, switch records
 * (metrics, the timing log line, the answer to a sleep) and the one timer.
 *
 * An operation the engine cannot start because another one runs on the
 * model (an adopted process being checked, an operator's checkpoint or
 * validate) waits for that one to end; a stop does not wait for a wake (it
 * ends a wake that hangs). An eviction that cannot start at all is
 * escalated to a stop, so that what the switcher believes (the model holds
 * no memory) is what happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "json.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/persist/persist.h"
#include "supervisord/server/server.h"
#include "switching_int.h"

/* The warm-up inference: deterministic, short. */
#define SWITCHING_WARMUP_PROMPT		"llmux warm-up: say hello."
#define SWITCHING_WARMUP_TOKENS		8
#define SWITCHING_WARMUP_TIMEOUT_MS	120000

void
switching_result_free(struct op_result *o)
{
	if (o == NULL)
		return;
	free(o->reason);
	free(o->log);
	free(o);
}

/* Keep a copy of a report in *slot, replacing what was there. */
static void
switching_keep_report(struct op_result **slot, const struct evict_report *r)
{
	struct op_result	*o;

	switching_result_free(*slot);
	o = xcalloc(1, sizeof(*o));
	o->r = *r;
	o->reason = r->reason != NULL ? xstrdup(r->reason) : NULL;
	o->log = r->log != NULL ? xstrdup(r->log) : NULL;
	o->r.reason = o->reason;
	o->r.log = o->log;
	o->at_ms = clock_ms();
	*slot = o;
}

/* ---- the operations ---------------------------------------------------- */

static void
switching_op_drain(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);
	struct proto_msg	 msg;
	struct client		*c;

	if (m == NULL) {
		switcher_drained(sup->switcher, i, switching_now());
		return;
	}
	if (++sup->drain_seq == 0)
		sup->drain_seq = 1;
	m->drain_id = sup->drain_seq;
	m->drain_waiting = 0;
	m->draining = true;
	memset(&msg, 0, sizeof(msg));
	msg.type = PROTO_DRAIN;
	msg.u.drain.model = m->name;
	msg.u.drain.drain_id = m->drain_id;
	TAILQ_FOREACH(c, &sup->clients, entry) {
		if (c->hello && c->role == PROTO_ROLE_PROXY &&
		    proto_conn_send(c->conn, &msg) == 0) {
			proxies_drain_sent(c, m, m->drain_id);
			m->drain_waiting++;
		}
	}
	log_info("draining model=%s drain_id=%u proxies=%zu", m->name,
	    m->drain_id, m->drain_waiting);
	model_changed(m);
	/* Nobody to ask: nothing is in flight (docs/protocol.md, "Flows"). */
	if (m->drain_waiting == 0)
		switcher_drained(sup->switcher, i, switching_now());
}

static void	switching_engine_evict(struct model *);
static void	switching_engine_wake(struct model *);

static void
switching_evicted_cb(struct model *m, const struct evict_report *r, void *arg)
{
	struct supervisor	*sup = m->sup;
	bool			 ok;
	int			 i;

	switching_keep_report(&m->last_sleep, r);
	if ((i = switching_index_any(sup, m)) < 0)
		return;
	/* A stop that stood in for the eviction is an escalation. */
	ok = r->result == EVICT_OK && (r->kind == EVICT_SLEEP ||
	    m->evict_with.process == PROCESS_STOP);
	switcher_evicted(sup->switcher, i, ok, ok ? NULL : (r->reason != NULL ?
	    r->reason : m->last_error), switching_now());
}

/* From the loop: what waited for another operation to end, now. */
static void
switching_pending_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct model		*m;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->evict_pending) {
			m->evict_pending = false;
			switching_engine_evict(m);
		} else if (m->wake_pending) {
			m->wake_pending = false;
			switching_engine_wake(m);
		}
	}
}

/*
 * The running operation (not ours) ended. Not from inside its report: a
 * stop that interrupts it reports first and then takes the model.
 */
static void
switching_after_cb(struct model *m, const struct evict_report *r, void *arg)
{
	struct supervisor	*sup = m->sup;

	if (sup->ev_pending == NULL)
		sup->ev_pending = event_new(sup->base, -1, 0,
		    switching_pending_cb, sup);
	event_active(sup->ev_pending, EV_TIMEOUT, 0);
}

/* Whether another operation runs on m that ours must wait for. */
static bool
switching_busy(struct model *m, enum evict_kind ours)
{
	enum evict_kind	kind;

	if (!evict_busy(m, &kind, NULL))
		return (false);
	if (ours == EVICT_WAKE && kind == EVICT_WAKE)
		return (false);		/* evict_wake joins it */
	return (evict_wait(m, switching_after_cb, NULL) == 0);
}

static void
switching_engine_evict(struct model *m)
{
	enum evict_kind	 kind;
	char		 err[512], *why;

	/* A stop does not wait: it ends a wake that hangs, for one. */
	if (m->evict_with.process == PROCESS_STOP &&
	    evict_busy(m, &kind, NULL) && kind == EVICT_WAKE &&
	    !evict_adopting(m)) {
		log_info("stopping a model whose wake runs model=%s", m->name);
		evict_stop(m, switching_evicted_cb, order_progress, NULL);
		return;
	}
	if (switching_busy(m, EVICT_SLEEP)) {
		log_info("eviction waits for the running operation model=%s",
		    m->name);
		m->evict_pending = true;
		return;
	}
	if (evict_sleep(m, &m->evict_with, switching_evicted_cb,
	    order_progress, NULL, err, sizeof(err)) == 0)
		return;
	/* It cannot sleep as asked (not running, or asleep otherwise). */
	xasprintf(&why, "cannot evict, stopping instead: %s", err);
	log_warnx("eviction escalated to stop model=%s reason=\"%s\"", m->name,
	    err);
	model_set_error(m, why);
	free(why);
	evict_stop(m, switching_evicted_cb, order_progress, NULL);
}

static void
switching_op_evict(void *arg, int i, struct eviction ev)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);

	if (m == NULL) {
		switcher_evicted(sup->switcher, i, false, "the model was "
		    "removed", switching_now());
		return;
	}
	if (m->draining) {
		m->draining = false;
		m->drain_waiting = 0;
		model_changed(m);
	}
	m->evict_with = ev;
	switching_engine_evict(m);
}

static void
switching_woken_cb(struct model *m, const struct evict_report *r, void *arg)
{
	struct supervisor	*sup = m->sup;
	int			 i;

	switching_keep_report(&m->last_wake, r);
	if ((i = switching_index_any(sup, m)) < 0)
		return;
	/* Where the model now lives (a CUDA restore may have moved it). */
	if (r->result != EVICT_FAILED)
		switcher_model_placed(sup->switcher, i, m->gpus_moved);
	switcher_woken(sup->switcher, i, r->result != EVICT_FAILED,
	    r->reason, switching_now());
}

static void
switching_engine_wake(struct model *m)
{
	struct supervisor	*sup = m->sup;
	char			 err[512];
	int			 i;

	if (switching_busy(m, EVICT_WAKE)) {
		log_info("wake waits for the running operation model=%s",
		    m->name);
		m->wake_pending = true;
		return;
	}
	if (evict_wake(m, switching_woken_cb, order_progress, NULL, err,
	    sizeof(err)) == 0)
		return;
	if ((i = switching_index_any(sup, m)) >= 0)
		switcher_woken(sup->switcher, i, false, err, switching_now());
}

static void
switching_op_wake(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);

	if (m == NULL) {
		switcher_woken(sup->switcher, i, false, "the model was removed",
		    switching_now());
		return;
	}
	switching_engine_wake(m);
}

/* What NVML says is free on the model's GPUs, to the switcher. */
static void
switching_room_cb(struct supervisor *sup, const struct gpu_snapshot *snap,
    void *arg)
{
	char				*name = arg;
	struct switcher_gpu_room	 r[GPU_MAX];
	struct switcher_model_status	 st;
	struct model			*m;
	size_t				 n = 0;
	int				 i;

	if (sup->switcher != NULL && (m = model_find(sup, name)) != NULL &&
	    (i = switching_index(sup, m)) >= 0) {
		switcher_model_status(sup->switcher, i, &st);
		for (size_t k = 0; snap != NULL && k < snap->n && n < GPU_MAX;
		    k++) {
			const struct gpu_info *g = &snap->v[k];

			if (g->index >= 64 ||
			    !(st.gpus & ((uint64_t)1 << g->index)))
				continue;
			r[n].gpu = g->index;
			r[n].total_bytes = g->total;
			r[n].free_bytes = g->free;
			n++;
		}
		switcher_room(sup->switcher, i, r, n, switching_now());
	}
	free(name);
}

/* Before a wake: read NVML, where it is, and say what is free. */
static void
switching_op_check_room(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);
	char			*name;

	if (m == NULL) {
		switcher_room(sup->switcher, i, NULL, 0, switching_now());
		return;
	}
	name = xstrdup(m->name);
	if (gpu_read(sup, switching_room_cb, name) != 0) {
		free(name);
		switcher_room(sup->switcher, i, NULL, 0, switching_now());
	}
}

static void
switching_warmed_cb(const struct httpc_result *res, void *arg)
{
	struct model		*m = arg;
	struct supervisor	*sup = m->sup;
	char			 why[256];
	int			 i;

	m->warm_call = NULL;
	m->warming = false;
	model_changed(m);
	if (res->status != 200)
		snprintf(why, sizeof(why), "the warm-up request %s%s",
		    res->status != 0 ? "was answered " : "failed: ",
		    res->status != 0 ? "with an error" : res->error);
	log_info("warm-up inference model=%s status=%d ms=%lld", m->name,
	    res->status, (long long)res->ms);
	if ((i = switching_index_any(sup, m)) >= 0)
		switcher_warmed(sup->switcher, i, res->status == 200,
		    res->status == 200 ? NULL : why, switching_now());
}

/*
 * llmux 0.7's warm-up: one deterministic inference on the woken model
 * (an embedding where it serves no completions: base/infer.c).
 */
static void
switching_op_warmup(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);

	if (m == NULL || m->proc == NULL || m->cfg == NULL) {
		switcher_warmed(sup->switcher, i, false, "the model has no "
		    "process", switching_now());
		return;
	}
	m->warming = true;
	model_changed(m);
	log_info("warm-up inference begins model=%s", m->name);
	m->warm_call = infer_request(sup->base, m->proc->port,
	    spawn_served_name(m->cfg), SWITCHING_WARMUP_PROMPT,
	    SWITCHING_WARMUP_TOKENS, SWITCHING_WARMUP_TIMEOUT_MS,
	    switching_warmed_cb, m);
}

static void
switching_op_ready(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);

	if (m == NULL)
		return;
	/* Not healthy yet (an adopted start): the state push says when. */
	if (m->pstate == MODEL_RUNNING)
		server_send_ready(sup, m);
	model_restart_done(m, true, NULL);
	order_ready(sup, m);
}

static void
switching_op_failed(void *arg, int i, const char *reason)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);

	if (m == NULL)
		return;
	/* The engine may not know (a wake given up, an order refused). */
	model_set_error(m, reason);
	model_changed(m);
	server_send_failed(sup, m, reason);
	model_restart_done(m, false, reason);
	order_failed(sup, m, reason);
}

/* Time the switches in progress: note new ones and cooldowns ending. */
static void
switching_watch_switches(struct supervisor *sup)
{
	struct switcher_switch_status	 st[SWITCHING_MAX_SWITCHES];
	struct switch_watch		*w;
	struct model			*m;
	size_t				 n, i, j;
	int64_t				 now_us = clock_us();

	n = switcher_switches(sup->switcher, st, SWITCHING_MAX_SWITCHES);
	if (n > SWITCHING_MAX_SWITCHES)
		n = SWITCHING_MAX_SWITCHES;
	/* Forget what is no longer in progress (cancelled, warm-ups). */
	for (i = 0; i < sup->n_watches;) {
		w = &sup->watches[i];
		for (j = 0; j < n; j++) {
			if (st[j].target == w->target &&
			    st[j].start_ms == w->start_ms &&
			    st[j].victims == w->victims)
				break;
		}
		if (j == n)
			sup->watches[i] = sup->watches[--sup->n_watches];
		else
			i++;
	}
	for (j = 0; j < n; j++) {
		w = NULL;
		for (i = 0; i < sup->n_watches; i++) {
			if (st[j].target == sup->watches[i].target &&
			    st[j].start_ms == sup->watches[i].start_ms &&
			    st[j].victims == sup->watches[i].victims)
				w = &sup->watches[i];
		}
		if (w == NULL) {
			sup->watches = xreallocarray(sup->watches,
			    sup->n_watches + 1, sizeof(*sup->watches));
			w = &sup->watches[sup->n_watches++];
			memset(w, 0, sizeof(*w));
			w->target = st[j].target;
			w->victims = st[j].victims;
			w->start_ms = st[j].start_ms;
			w->start_us = now_us;
			for (i = 0; i < switcher_n_models(sup->switcher); i++) {
				if ((int)i != w->target &&
				    !(w->victims & ((uint64_t)1 << i)))
					continue;
				if ((m = switching_model(sup, (int)i)) != NULL)
					w->step_us += m->step_us;
			}
		}
		if (w->cooldown_end_us == 0 && st[j].phase != SWP_COOLDOWN)
			w->cooldown_end_us = now_us;
	}
}

static void
switching_op_state_changed(void *arg)
{
	struct supervisor	*sup = arg;

	server_schedule_state(sup);
	persist_schedule(sup);
	switching_watch_switches(sup);
	order_check(sup);
	if (sup->switcher_stale)
		switching_schedule_rebuild(sup);
}

static void
switching_op_record(void *arg, const struct switch_record *r)
{
	struct supervisor	*sup = arg;
	struct switch_watch	*w = NULL;
	struct model		*m;
	const char		*from, *to;
	uint64_t		 step_us = 0;
	int64_t			 now_us = clock_us(), total, cool, engine;
	size_t			 i;

	from = r->from >= 0 ? switcher_model_name(sup->switcher, r->from) :
	    NULL;
	to = r->to >= 0 ? switcher_model_name(sup->switcher, r->to) : NULL;
	/* The metrics label nothing "" (a start from idle, a sleep), as
	 * llmux 0.7 did; the log says none. */
	stats_record(sup, from != NULL ? from : "", to != NULL ? to : "", r);
	from = from != NULL ? from : "none";
	to = to != NULL ? to : "none";
	switching_events_record(sup, r);

	for (i = 0; i < sup->n_watches; i++) {
		if (sup->watches[i].target == r->to &&
		    sup->watches[i].start_ms == r->start_ms &&
		    sup->watches[i].victims == r->victims)
			w = &sup->watches[i];
	}
	if (w != NULL) {
		for (i = 0; i < switcher_n_models(sup->switcher); i++) {
			if ((int)i != r->to && !(r->victims & ((uint64_t)1 << i)))
				continue;
			if ((m = switching_model(sup, (int)i)) != NULL)
				step_us += m->step_us;
		}
		total = now_us - w->start_us;
		cool = (w->cooldown_end_us != 0 ? w->cooldown_end_us : now_us) -
		    w->start_us;
		engine = step_us >= w->step_us ? (int64_t)(step_us -
		    w->step_us) : 0;
		/* The time llmux adds: all but the cooldown and the engine. */
		log_info("switch timing from=%s to=%s ok=%d total_us=%lld "
		    "cooldown_us=%lld engine_us=%lld llmux_us=%lld", from, to,
		    r->ok, (long long)total, (long long)cool, (long long)engine,
		    (long long)(total - cool - engine));
		*w = sup->watches[--sup->n_watches];
	}
	order_record(sup, r);
}

static void
switching_op_set_timer(void *arg, int64_t at)
{
	struct supervisor	*sup = arg;
	struct timeval		 tv;
	int64_t			 delay;

	if (at == SWITCHER_NEVER) {
		evtimer_del(sup->ev_switcher);
		return;
	}
	delay = at - switching_now();
	if (delay < 0)
		delay = 0;
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(sup->ev_switcher, &tv);
}

const struct switcher_ops switching_ops = {
	.drain = switching_op_drain,
	.evict = switching_op_evict,
	.wake = switching_op_wake,
	.check_room = switching_op_check_room,
	.warmup = switching_op_warmup,
	.ready = switching_op_ready,
	.failed = switching_op_failed,
	.state_changed = switching_op_state_changed,
	.record = switching_op_record,
	.set_timer = switching_op_set_timer,
	.phase = switching_events_phase,
};
