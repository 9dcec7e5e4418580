/*
 * switching.c -- the switcher (switcher.h) driving the engine.
 *
 * The switcher is made from the config at start and told what the engine
 * already has (models re-adopted from the journal, the mode and pin, the
 * proxy); then it is fed the proxy's demand and drains, the engine's
 * completions and the deaths of model processes, each stamped with
 * clock_ms(). Its operations are carried out here: drain through the proxy
 * (drained at once when no proxy is connected), evict and wake with
 * evict.c, the warm-up inference over HTTP, ready and failed to the proxy,
 * state pushes and journal writes, switch records (metrics, logs, the
 * operator's replies in order.c) and its one timer on the event loop.
 *
 * An operation the engine cannot start because another one runs on the
 * model (an adopted process being checked, an operator's checkpoint or
 * validate) waits for that one to end. One that cannot start at all is
 * escalated to a stop, so what the switcher believes (the model holds no
 * memory) is what happened.
 *
 * A reload replaces the config the switcher was made from (it keeps
 * pointers into it). The switcher is rebuilt from the new config as soon
 * as no switch is past its cooldown and no model is between two states (a
 * switch in its cooldown has done nothing yet: it is decided again), with
 * every model's state, its eviction override, the demand, the mode, the pin
 * and the cost estimates carried over; the old config lives until then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "supervisor.h"
#include "supervisord/switcher.h"
#include "xmalloc.h"

/* The warm-up inference: deterministic, short. */
#define SWITCHING_WARMUP_PROMPT		"llmux warm-up: say hello."
#define SWITCHING_WARMUP_TIMEOUT_MS	120000
#define SWITCHING_MAX_SWITCHES		64
#define SWITCHING_WAKE_GRACE_MS		5000

/* A switch in progress, timed in microseconds for the switch log line. */
struct switch_watch {
	int		 target;
	uint64_t	 victims;
	int64_t		 start_ms;	/* the switcher's, to find it again */
	int64_t		 start_us;
	int64_t		 cooldown_end_us; /* 0: still in its cooldown */
	uint64_t	 step_us;	/* its models' engine time at start */
};

static void	switching_rebuild_cb(evutil_socket_t, short, void *);

static int64_t
switching_now(void)
{
	return (clock_ms());
}

int
switching_index(struct supervisor *sup, const struct model *m)
{
	if (sup->switcher == NULL || m->removed)
		return (-1);
	return (switcher_model_index(sup->switcher, m->name));
}

/*
 * For completions: a model removed by a reload is still in the switcher
 * until it is rebuilt, and the switch that involves it must end.
 */
static int
switching_index_any(struct supervisor *sup, const struct model *m)
{
	if (sup->switcher == NULL)
		return (-1);
	return (switcher_model_index(sup->switcher, m->name));
}

static struct model *
switching_find_any(struct supervisor *sup, const char *name)
{
	struct model	*m, *removed = NULL;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if (strcmp(m->name, name) != 0)
			continue;
		if (!m->removed)
			return (m);
		removed = m;
	}
	return (removed);
}

struct model *
switching_model(struct supervisor *sup, int i)
{
	const char	*name;

	if (sup->switcher == NULL ||
	    (name = switcher_model_name(sup->switcher, i)) == NULL)
		return (NULL);
	return (model_find(sup, name));
}

void
op_result_free(struct op_result *o)
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

	op_result_free(*slot);
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
		    proto_conn_send(c->conn, &msg) == 0)
			m->drain_waiting++;
	}
	log_info("draining model=%s drain_id=%u proxies=%zu", m->name,
	    m->drain_id, m->drain_waiting);
	model_changed(m);
	/* Nobody to ask: nothing is in flight (DESIGN.md §3). */
	if (m->drain_waiting == 0)
		switcher_drained(sup->switcher, i, switching_now());
}

void
switching_drained(struct supervisor *sup, const char *name, uint32_t drain_id)
{
	struct model	*m = switching_find_any(sup, name);
	int		 i;

	if (m == NULL || m->drain_waiting == 0 || drain_id != m->drain_id) {
		log_debug("stale drained model=%s drain_id=%u", name,
		    drain_id);
		return;
	}
	if (--m->drain_waiting > 0)
		return;
	log_debug("drained model=%s drain_id=%u", name, drain_id);
	if ((i = switching_index_any(sup, m)) >= 0)
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

/* The running operation (not ours) ended: now do what waited for it. */
static void
switching_after_cb(struct model *m, const struct evict_report *r, void *arg)
{
	if (m->evict_pending) {
		m->evict_pending = false;
		switching_engine_evict(m);
	} else if (m->wake_pending) {
		m->wake_pending = false;
		switching_engine_wake(m);
	}
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

/* A JSON string's contents: the name escaped. */
static char *
switching_json_escape(const char *s)
{
	char	*q = xmalloc(strlen(s) * 6 + 1);
	size_t	 o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			o += (size_t)sprintf(q + o, "\\%c", *p);
		else if (*p < 0x20)
			o += (size_t)sprintf(q + o, "\\u%04x", *p);
		else
			q[o++] = (char)*p;
	}
	q[o] = '\0';
	return (q);
}

/* The seed's warm-up: one deterministic inference on the woken model. */
static void
switching_op_warmup(void *arg, int i)
{
	struct supervisor	*sup = arg;
	struct model		*m = switching_model(sup, i);
	char			*name, *body;

	if (m == NULL || m->proc == NULL || m->cfg == NULL) {
		switcher_warmed(sup->switcher, i, false, "the model has no "
		    "process", switching_now());
		return;
	}
	name = switching_json_escape(spawn_served_name(m->cfg));
	xasprintf(&body, "{\"model\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":"
	    "8,\"temperature\":0,\"seed\":0}", name, SWITCHING_WARMUP_PROMPT);
	free(name);
	m->warming = true;
	model_changed(m);
	log_info("warm-up inference begins model=%s", m->name);
	m->warm_call = httpc_request(sup->base, m->proc->port, "POST",
	    "/v1/completions", body, SWITCHING_WARMUP_TIMEOUT_MS,
	    switching_warmed_cb, m);
	free(body);
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

/* A reload is waiting: can the switcher be rebuilt now? */
static bool
switching_quiescent(struct supervisor *sup)
{
	struct switcher_switch_status	st[SWITCHING_MAX_SWITCHES];
	size_t				n;

	n = switcher_switches(sup->switcher, st, SWITCHING_MAX_SWITCHES);
	if (n > SWITCHING_MAX_SWITCHES)
		return (false);
	for (size_t j = 0; j < n; j++) {
		if (st[j].phase != SWP_COOLDOWN)
			return (false);
	}
	for (size_t i = 0; i < switcher_n_models(sup->switcher); i++) {
		switch (switcher_model_state(sup->switcher, (int)i)) {
		case SWM_STOPPED:
		case SWM_SLEEPING:
		case SWM_ACTIVE:
			break;
		default:
			return (false);
		}
	}
	return (true);
}

/* From the loop: the switcher may be the caller (state_changed). */
static void
switching_schedule_rebuild(struct supervisor *sup)
{
	if (sup->ev_rebuild == NULL)
		sup->ev_rebuild = event_new(sup->base, -1, 0,
		    switching_rebuild_cb, sup);
	event_active(sup->ev_rebuild, EV_TIMEOUT, 0);
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
	from = from != NULL ? from : "none";
	to = to != NULL ? to : "none";
	metrics_switch_record(sup, from, to, r);

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
switching_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;

	if (sup->switcher != NULL)
		switcher_timer(sup->switcher, switching_now());
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

static const struct switcher_ops switching_ops = {
	.drain = switching_op_drain,
	.evict = switching_op_evict,
	.wake = switching_op_wake,
	.warmup = switching_op_warmup,
	.ready = switching_op_ready,
	.failed = switching_op_failed,
	.state_changed = switching_op_state_changed,
	.record = switching_op_record,
	.set_timer = switching_op_set_timer,
};

/* ---- inputs -------------------------------------------------------------- */

void
switching_demand(struct model *m, uint32_t queued, uint32_t in_flight,
    uint32_t oldest_ms)
{
	struct supervisor	*sup = m->sup;
	int			 i;

	m->queued = queued;
	m->in_flight = in_flight;
	m->oldest_ms = oldest_ms;
	if ((i = switching_index(sup, m)) >= 0)
		switcher_demand(sup->switcher, i, queued, in_flight,
		    oldest_ms, switching_now());
}

/* A proxy came or went: the switcher only cares whether there is one. */
void
switching_proxy(struct supervisor *sup)
{
	struct model	*m;
	bool		 up = server_count_role(sup, PROTO_ROLE_PROXY) > 0;
	int		 i;

	if (sup->switcher == NULL)
		return;
	switcher_proxy(sup->switcher, up, switching_now());
	if (up)
		return;
	/* Its drains are answered: nothing of it is in flight any more. */
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->drain_waiting == 0)
			continue;
		m->drain_waiting = 0;
		if ((i = switching_index(sup, m)) >= 0)
			switcher_drained(sup->switcher, i, switching_now());
	}
}

void
switching_died(struct model *m, const char *reason)
{
	struct supervisor	*sup = m->sup;
	int			 i;

	m->draining = false;
	m->warming = false;
	httpc_cancel(m->warm_call);
	m->warm_call = NULL;
	if ((i = switching_index_any(sup, m)) >= 0)
		switcher_died(sup->switcher, i, reason, switching_now());
}

void
switching_restart(struct model *m)
{
	int	i = switching_index(m->sup, m);

	if (i < 0) {
		m->restarting = false;
		return;
	}
	log_info("asking for a restart model=%s", m->name);
	switcher_restart(m->sup->switcher, i, switching_now());
}

void
switching_resync(struct model *m)
{
	struct supervisor	*sup = m->sup;
	struct eviction		 ev = m->sleeping;
	enum switcher_mstate	 st;
	int			 i;

	if ((i = switching_index(sup, m)) < 0)
		return;
	switch (m->pstate) {
	case MODEL_RUNNING:
	case MODEL_STARTING:
		st = m->proc != NULL ? SWM_ACTIVE : SWM_STOPPED;
		break;
	case MODEL_SLEEPING:
		st = m->proc != NULL ? SWM_SLEEPING : SWM_STOPPED;
		break;
	case MODEL_CHECKPOINTED:
		st = SWM_SLEEPING;
		ev.process = PROCESS_CHECKPOINT;
		break;
	default:
		st = SWM_STOPPED;
		break;
	}
	switcher_resync(sup->switcher, i, st, &ev, switching_now());
}

static void
switching_watch_cb(struct model *m, const struct evict_report *r, void *arg)
{
	switching_resync(m);
}

void
switching_watch(struct model *m)
{
	if (evict_wait(m, switching_watch_cb, NULL) != 0)
		switching_resync(m);
}

/* ---- making, rebuilding, freeing ------------------------------------------ */

/* An eviction set by the operator outlives restarts and rebuilds. */
static void
switching_override(struct switcher *sw, int i, const struct model *m)
{
	char	*cause = NULL;

	if (m->has_override &&
	    switcher_cmd_set_eviction(sw, i, m->override, &cause) != 0) {
		log_warnx("eviction override refused model=%s reason=\"%s\"",
		    m->name, cause);
		free(cause);
	}
}

static struct switcher *
switching_new(struct supervisor *sup, bool resumed)
{
	struct switcher_params	 p;
	struct switcher		*sw;

	switcher_params_default(&p);
	p.resumed = resumed;
	/* evict.c's deadlines say more (the answer of /health): first. */
	p.wake_grace_ms = SWITCHING_WAKE_GRACE_MS;
	if ((sw = switcher_new(sup->conf, &switching_ops, sup, &p)) == NULL)
		fatalx("cannot make the switcher (policy %s, %zu models)",
		    config_policy_name(sup->conf->policy.type),
		    sup->conf->n_models);
	return (sw);
}

void
switching_init(struct supervisor *sup)
{
	struct model	*m;
	int		 i, pinned = -1;

	sup->ev_switcher = evtimer_new(sup->base, switching_timer_cb, sup);
	sup->switcher = switching_new(sup, false);
	sup->switcher_conf = sup->conf;
	/* What the engine has: re-adopted processes keep their state. */
	TAILQ_FOREACH(m, &sup->models, entry) {
		if ((i = switching_index(sup, m)) < 0)
			continue;
		switching_override(sup->switcher, i, m);
		switching_resync(m);
		if (evict_busy(m, NULL, NULL))
			switching_watch(m);
	}
	if (sup->journal_pinned != NULL &&
	    (m = model_find(sup, sup->journal_pinned)) != NULL)
		pinned = switching_index(sup, m);
	switcher_restore_mode(sup->switcher, sup->journal_manual ?
	    SWITCHER_MANUAL : SWITCHER_AUTO, pinned);
	free(sup->journal_pinned);
	sup->journal_pinned = NULL;
	switching_proxy(sup);
	log_info("switcher ready policy=%s gpus=%u models=%zu mode=%s",
	    switcher_policy_name(sup->switcher),
	    switcher_n_gpus(sup->switcher),
	    switcher_n_models(sup->switcher),
	    sup->journal_manual ? "manual" : "auto");
	switcher_start(sup->switcher, switching_now());
}

/* Carry the old switcher's knowledge into the new one, by model name. */
static void
switching_carry(struct supervisor *sup, struct switcher *old,
    struct switcher *sw)
{
	const struct cost_table		*ct = switcher_costs(old);
	struct switcher_model_status	 st;
	struct model			*m;
	size_t				 n_old = switcher_n_models(old);
	int				 i, j, jf, jt, pinned = -1;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if ((j = switching_index(sup, m)) < 0)
			continue;
		switching_override(sw, j, m);
		if ((i = switcher_model_index(old, m->name)) < 0) {
			switching_resync(m);	/* added by the reload */
			continue;
		}
		switcher_model_status(old, i, &st);
		if (st.state == SWM_ACTIVE || st.state == SWM_SLEEPING)
			switcher_resync(sw, j, st.state, &st.slept_with,
			    switching_now());
		if (m->queued > 0 || m->in_flight > 0)
			switcher_demand(sw, j, m->queued, m->in_flight,
			    m->oldest_ms, switching_now());
	}
	for (int f = -1; f < (int)n_old; f++) {
		jf = f < 0 ? -1 : switcher_model_index(sw,
		    switcher_model_name(old, f));
		if (f >= 0 && jf < 0)
			continue;
		for (size_t t = 0; t < n_old; t++) {
			jt = switcher_model_index(sw, switcher_model_name(old,
			    (int)t));
			if (jt >= 0 && ct->v[(size_t)(f + 1) * ct->n + t].samples
			    > 0)
				switcher_restore_cost(sw, jf, jt,
				    &ct->v[(size_t)(f + 1) * ct->n + t]);
		}
	}
	if (switcher_pinned(old) >= 0)
		pinned = switcher_model_index(sw, switcher_model_name(old,
		    switcher_pinned(old)));
	switcher_restore_mode(sw, switcher_mode(old), pinned);
}

static void
switching_rebuild_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct switcher		*old = sup->switcher;
	struct config		*oldconf = sup->switcher_conf;

	if (!sup->switcher_stale || old == NULL)
		return;
	if (!switching_quiescent(sup)) {
		log_debug("switcher rebuild waits for the switch in progress");
		return;
	}
	sup->switcher = switching_new(sup, true);
	sup->switcher_conf = sup->conf;
	sup->switcher_stale = false;
	switching_carry(sup, old, sup->switcher);
	switching_proxy(sup);
	free(sup->watches);
	sup->watches = NULL;
	sup->n_watches = 0;
	switcher_free(old);
	if (oldconf != sup->conf)
		config_free(oldconf);
	log_info("switcher rebuilt for the new configuration models=%zu "
	    "policy=%s", switcher_n_models(sup->switcher),
	    switcher_policy_name(sup->switcher));
	switcher_start(sup->switcher, switching_now());
	order_rebuilt(sup);
	server_schedule_state(sup);
}

void
switching_reload(struct supervisor *sup)
{
	if (sup->switcher == NULL)
		return;
	sup->switcher_stale = true;
	if (!switching_quiescent(sup))
		log_info("the switcher takes the new configuration when the "
		    "switch in progress is done");
	switching_schedule_rebuild(sup);
}

void
switching_free(struct supervisor *sup)
{
	switcher_free(sup->switcher);
	sup->switcher = NULL;
	if (sup->switcher_conf != NULL && sup->switcher_conf != sup->conf)
		config_free(sup->switcher_conf);
	sup->switcher_conf = NULL;
	if (sup->ev_switcher != NULL)
		event_free(sup->ev_switcher);
	if (sup->ev_rebuild != NULL)
		event_free(sup->ev_rebuild);
	sup->ev_switcher = sup->ev_rebuild = NULL;
	free(sup->watches);
	sup->watches = NULL;
	sup->n_watches = 0;
	free(sup->journal_pinned);
	sup->journal_pinned = NULL;
}

/* ---- what status, the journal and the proxy read --------------------------- */

const char *
switching_state_string(struct supervisor *sup, char *buf, size_t len)
{
	if (sup->switcher == NULL) {
		snprintf(buf, len, "idle");
		return (buf);
	}
	return (switcher_state_string(sup->switcher, buf, len));
}

bool
switching_manual(struct supervisor *sup)
{
	return (sup->switcher != NULL &&
	    switcher_mode(sup->switcher) == SWITCHER_MANUAL);
}

const char *
switching_pinned(struct supervisor *sup)
{
	if (sup->switcher == NULL)
		return (NULL);
	return (switcher_model_name(sup->switcher,
	    switcher_pinned(sup->switcher)));
}

/* The first active model (the seed's one active model), or NULL. */
struct model *
switching_active(struct supervisor *sup)
{
	uint64_t	mask;

	if (sup->switcher == NULL)
		return (NULL);
	mask = switcher_active(sup->switcher);
	for (int i = 0; i < 64 && mask != 0; i++) {
		if (mask & ((uint64_t)1 << i))
			return (switching_model(sup, i));
	}
	return (NULL);
}

bool
switching_admits(struct supervisor *sup, const struct model *m)
{
	int	i = switching_index(sup, m);

	return (i < 0 || switcher_admits(sup->switcher, i));
}
