/*
 * order.c -- the operator's orders that go through the switcher: switch,
 * pin, unpin, mode, sleep, wake and eviction set, and the wake that comes
 * before a validate of a model that is not awake (validate.c orders it
 * with order_begin, and the call's then runs when the model is ready).
 * They keep the semantics and reply shapes of llmux 0.7 (Rust)
 * (docs/supervisor.md, "Control calls"; docs/reference-behaviour.md).
 *
 * A switch, pin, wake or sleep is a call marked "ordered" that waits for
 * what the switcher says: ready or failed for its model (switch, pin,
 * wake), or the record of its sleep. Meanwhile it is sent progress events:
 * the phases of its switch (cooldown, drain, sleep, wake) and the steps of
 * every engine operation of that switch. A sleep the switcher drops (the
 * model stopped being awake before its GPUs were free) is answered when
 * that is seen. After a rebuild of the switcher (a reload) what still
 * waits is ordered again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"

#define ORDER_MAX_SWITCHES	64

static bool
order_is_wake(const struct ctl_call *call)
{
	return (call->type == PROTO_CTL_SWITCH || call->type == PROTO_CTL_PIN ||
	    call->type == PROTO_CTL_WAKE || call->type == PROTO_CTL_VALIDATE);
}

/* The switch the call waits on, if one is in progress. */
static bool
order_switch_of(struct supervisor *sup, const struct ctl_call *call,
    struct switcher_switch_status *out)
{
	struct switcher_switch_status	 st[ORDER_MAX_SWITCHES];
	struct model			*m;
	size_t				 n;
	int				 i;

	if ((m = model_find(sup, call->name)) == NULL ||
	    (i = switching_index(sup, m)) < 0)
		return (false);
	n = switcher_switches(sup->switcher, st, ORDER_MAX_SWITCHES);
	for (size_t j = 0; j < n && j < ORDER_MAX_SWITCHES; j++) {
		if ((order_is_wake(call) && st[j].target == i) ||
		    (call->type == PROTO_CTL_SLEEP && st[j].target < 0 &&
		    (st[j].victims & ((uint64_t)1 << i)))) {
			*out = st[j];
			return (true);
		}
	}
	return (false);
}

/* The model's last report if this call's order produced it, else none. */
static struct evict_report
order_report(const struct ctl_call *call, const struct op_result *o,
    enum evict_kind kind, bool failed)
{
	struct evict_report	r;

	if (o != NULL && o->at_ms >= call->start_ms)
		r = o->r;
	else {
		memset(&r, 0, sizeof(r));
		r.kind = kind;
		r.result = failed ? EVICT_FAILED : EVICT_OK;
	}
	/* The operator waited for the whole switch, not only this step. */
	r.total_ms = clock_ms() - call->start_ms;
	return (r);
}

/* ---- the switcher's answers ------------------------------------------------- */

void
order_ready(struct supervisor *sup, struct model *m)
{
	struct ctl_call		*call, *next;
	struct evict_report	 r;
	char			*text;

	for (call = TAILQ_FIRST(&sup->calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (!call->ordered || !order_is_wake(call) ||
		    strcmp(call->name, m->name) != 0)
			continue;
		call->ordered = false;
		switch (call->type) {
		case PROTO_CTL_SWITCH:
			call_done(call, 200, body_message("message",
			    "Switched to model: %s", m->name));
			break;
		case PROTO_CTL_PIN:
			call_done(call, 200, body_message("message",
			    "Pinned to model: %s", m->name));
			break;
		case PROTO_CTL_WAKE:
			r = order_report(call, m->last_wake, EVICT_WAKE, false);
			xasprintf(&text, "Model %s woken", m->name);
			call_done(call, 200, call_op_body(m,
			    "message", text, &r));
			free(text);
			break;
		case PROTO_CTL_VALIDATE:
			if (call->then != NULL)
				call->then(call, m);
			break;
		default:
			break;
		}
	}
}

void
order_failed(struct supervisor *sup, struct model *m, const char *reason)
{
	struct ctl_call		*call, *next;
	struct evict_report	 r;
	char			*text;

	for (call = TAILQ_FIRST(&sup->calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (!call->ordered || !order_is_wake(call) ||
		    strcmp(call->name, m->name) != 0)
			continue;
		call->ordered = false;
		switch (call->type) {
		case PROTO_CTL_SWITCH:
			call_done(call, 500, body_message("error",
			    "Switch failed: %s", reason));
			break;
		case PROTO_CTL_PIN:
			call_done(call, 500, body_message("error",
			    "Failed to switch to pinned model: %s", reason));
			break;
		case PROTO_CTL_WAKE:
			r = order_report(call, m->last_wake, EVICT_WAKE, true);
			xasprintf(&text, "Failed to wake model: %s", reason);
			call_done(call, 500, call_op_body(m, "error",
			    text, &r));
			free(text);
			break;
		default:
			call_done(call, 500, body_message("error",
			    "Failed to wake model: %s", reason));
			break;
		}
	}
}

/* The sleep's reply, from the engine's report of it. */
static void
order_sleep_done(struct ctl_call *call, struct model *m)
{
	struct evict_report	 r;
	char			 dbg[128], *text;

	r = order_report(call, m->last_sleep, EVICT_SLEEP, false);
	if (r.result == EVICT_FAILED) {
		xasprintf(&text, "Failed to sleep model: %s", r.reason != NULL ?
		    r.reason : "unknown error");
		call_done(call, 500, call_op_body(m, "error", text,
		    &r));
	} else {
		xasprintf(&text, "Model %s sleeping with policy %s%s%s",
		    m->name, body_eviction_debug(&call->eviction, dbg,
		    sizeof(dbg)), r.result == EVICT_ESCALATED ?
		    "; escalated to stop: " : "", r.result == EVICT_ESCALATED &&
		    r.reason != NULL ? r.reason : "");
		call_done(call, 200, call_op_body(m, "message",
		    text, &r));
	}
	free(text);
}

void
order_record(struct supervisor *sup, const struct switch_record *rec)
{
	struct ctl_call	*call, *next;
	struct model	*m;
	int		 i;

	if (rec->to >= 0 || !rec->by_operator)
		return;
	for (call = TAILQ_FIRST(&sup->calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (!call->ordered || call->type != PROTO_CTL_SLEEP ||
		    (m = model_find(sup, call->name)) == NULL ||
		    (i = switching_index(sup, m)) < 0 ||
		    !(rec->victims & ((uint64_t)1 << i)))
			continue;
		call->ordered = false;
		order_sleep_done(call, m);
	}
}

/* Progress of the phases; sleeps the switcher dropped. */
void
order_check(struct supervisor *sup)
{
	struct switcher_switch_status	 st;
	struct ctl_call			*call, *next;
	struct model			*m;
	char				 detail[300];
	int				 i;

	for (call = TAILQ_FIRST(&sup->calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (!call->ordered)
			continue;
		if (order_switch_of(sup, call, &st)) {
			if ((int)st.phase == call->phase)
				continue;
			call->phase = (int)st.phase;
			if (call->client == NULL)
				continue;
			snprintf(detail, sizeof(detail), "%s -> %s%s",
			    st.from >= 0 ? switcher_model_name(sup->switcher,
			    st.from) : "none", st.target >= 0 ?
			    switcher_model_name(sup->switcher, st.target) :
			    "sleep", st.phase == SWP_COOLDOWN ?
			    ", waiting out min_active_secs" : "");
			server_progress(call->client, call->id, call->name,
			    switcher_phase_name(st.phase),
			    clock_ms() - call->start_ms, detail);
			continue;
		}
		if (call->type != PROTO_CTL_SLEEP)
			continue;
		m = model_find(sup, call->name);
		if (m != NULL && (i = switching_index(sup, m)) >= 0 &&
		    switcher_sleep_pending(sup->switcher, i))
			continue;
		/* Neither waiting nor under way: it was dropped. */
		call->ordered = false;
		if (m == NULL)
			call_done(call, 500, body_message("error",
			    "Failed to sleep model: the model was removed"));
		else
			call_done(call, 409, body_message("error",
			    "Model %s is no longer awake (%s): nothing to put "
			    "to sleep", m->name, model_pstate_name(m->pstate)));
	}
}

/* An evict_progress_cb for the switcher's engine operations. */
void
order_progress(struct model *m, const char *phase, int64_t elapsed,
    const char *detail, void *arg)
{
	struct supervisor		*sup = m->sup;
	struct switcher_switch_status	 st;
	struct ctl_call			*call;
	int				 i = switching_index(sup, m);

	if (i < 0)
		return;
	TAILQ_FOREACH(call, &sup->calls, entry) {
		if (!call->ordered || call->client == NULL)
			continue;
		if (strcmp(call->name, m->name) != 0 &&
		    (!order_switch_of(sup, call, &st) ||
		    !(st.victims & ((uint64_t)1 << i))))
			continue;
		server_progress(call->client, call->id, m->name, phase,
		    clock_ms() - call->start_ms, detail);
	}
}

/* ---- the calls ------------------------------------------------------------------ */

/* Ask the switcher; the call waits for its answer (maybe already given). */
void
order_begin(struct supervisor *sup, struct client *c, struct proto_msg *msg,
    struct model *m, struct ctl_call *call)
{
	char			*cause = NULL;
	int			 i, rc = -1;
	int64_t			 now = clock_ms();

	if (call == NULL)
		call = call_new(c, msg, m->name);
	if ((i = switching_index(sup, m)) < 0) {
		call_done(call, 409, body_message("error", "Model %s "
		    "is not known to the switcher yet: a reload is being "
		    "applied", m->name));
		return;
	}
	call->ordered = true;
	call->phase = -1;
	switch (msg->type) {
	case PROTO_CTL_SWITCH:
		rc = switcher_cmd_switch(sup->switcher, i, now, &cause);
		break;
	case PROTO_CTL_PIN:
		rc = switcher_cmd_pin(sup->switcher, i, now, &cause);
		break;
	case PROTO_CTL_WAKE:
	case PROTO_CTL_VALIDATE:
		rc = switcher_cmd_wake(sup->switcher, i, now, &cause);
		break;
	case PROTO_CTL_SLEEP:
		rc = switcher_cmd_sleep(sup->switcher, i, &call->eviction, now,
		    &cause);
		break;
	default:
		xasprintf(&cause, "not an order");
		break;
	}
	/* On success the call may be answered (and freed) already. */
	if (rc != 0) {
		call->ordered = false;
		call_done(call, 409, body_message("error", "%s",
		    cause != NULL ? cause : "refused"));
		free(cause);
	}
}

/* The engine's rules first, with its messages (evict_sleep's). */
static void
order_sleep(struct client *c, struct proto_msg *msg, struct model *m)
{
	struct ctl_call	*call;
	struct eviction	 ev;
	enum evict_kind	 kind;
	char		 a[64], b[64];

	ev = msg->u.call.has_eviction ? msg->u.call.eviction :
	    model_eviction(m);
	if (evict_busy(m, &kind, NULL)) {
		call_reply(c, msg->id, 409, body_message("error", "Model %s is "
		    "busy: %s in progress", m->name, evict_kind_name(kind)));
		return;
	}
	switch (m->pstate) {
	case MODEL_RUNNING:
		break;
	case MODEL_SLEEPING:
	case MODEL_CHECKPOINTED:
		if ((m->sleeping.weights == ev.weights &&
		    m->sleeping.process == ev.process) ||
		    ev.process == PROCESS_STOP)
			break;
		call_reply(c, msg->id, 409, body_message("error", "Model %s is "
		    "already sleeping with %s; wake it first to sleep with %s",
		    m->name, eviction_format(&m->sleeping, a, sizeof(a)),
		    eviction_format(&ev, b, sizeof(b))));
		return;
	default:
		call_reply(c, msg->id, 409, body_message("error", "Model %s is "
		    "not running (%s)", m->name, model_pstate_name(m->pstate)));
		return;
	}
	call = call_new(c, msg, m->name);
	call->eviction = ev;
	order_begin(c->sup, c, msg, m, call);
}

static void
order_mode(struct client *c, struct proto_msg *msg)
{
	struct supervisor	*sup = c->sup;
	const char		*mode = msg->u.call.mode;

	if (strcmp(mode, "auto") == 0) {
		switcher_cmd_mode(sup->switcher, SWITCHER_AUTO, clock_ms());
		call_reply(c, msg->id, 200, body_message("message",
		    "Switched to auto mode"));
	} else if (strcmp(mode, "manual") == 0) {
		switcher_cmd_mode(sup->switcher, SWITCHER_MANUAL, clock_ms());
		call_reply(c, msg->id, 200, body_message("message",
		    "Switched to manual mode"));
	} else
		call_reply(c, msg->id, 400, body_message("message",
		    "Unknown mode: %s. Use 'auto' or 'manual'.", mode));
}

static void
order_eviction(struct client *c, struct proto_msg *msg, struct model *m)
{
	struct supervisor	*sup = c->sup;
	char			 dbg[128], *cause = NULL;
	int			 i;

	m->has_override = true;
	m->override = msg->u.call.eviction;
	model_changed(m);
	if ((i = switching_index(sup, m)) >= 0 &&
	    switcher_cmd_set_eviction(sup->switcher, i, m->override,
	    clock_ms(), &cause) != 0) {
		call_reply(c, msg->id, 400, body_message("error", "%s",
		    cause));
		free(cause);
		return;
	}
	call_reply(c, msg->id, 200, body_message("message", "Eviction policy "
	    "for %s set to %s", m->name, body_eviction_debug(&m->override, dbg,
	    sizeof(dbg))));
}

void
order_call(struct client *c, struct proto_msg *msg, struct model *m)
{
	struct supervisor	*sup = c->sup;

	switch (msg->type) {
	case PROTO_CTL_MODE:
		order_mode(c, msg);
		break;
	case PROTO_CTL_UNPIN:
		switcher_cmd_unpin(sup->switcher, clock_ms());
		call_reply(c, msg->id, 200, body_message("message",
		    "Unpinned. Switched to auto mode."));
		break;
	case PROTO_CTL_EVICTION_SET:
		order_eviction(c, msg, m);
		break;
	case PROTO_CTL_SLEEP:
		order_sleep(c, msg, m);
		break;
	case PROTO_CTL_WAKE:
		/* An operator's wake ends a crash loop. */
		model_clear_crash_loop(m);
		order_begin(sup, c, msg, m, NULL);
		break;
	default:
		order_begin(sup, c, msg, m, NULL);
		break;
	}
}

/* Order again, on the rebuilt switcher, what still waits. */
void
order_rebuilt(struct supervisor *sup)
{
	struct ctl_call		*call;
	struct model		*m;
	struct proto_msg	 msg;
	bool			 again;

	TAILQ_FOREACH(call, &sup->calls, entry)
		call->phase = call->ordered ? -2 : call->phase;
	/* One at a time: ordering one may answer (and free) others. */
	do {
		again = false;
		TAILQ_FOREACH(call, &sup->calls, entry) {
			if (call->ordered && call->phase == -2)
				break;
		}
		if (call == NULL)
			break;
		again = true;
		call->ordered = false;
		call->phase = -1;
		if ((m = model_find(sup, call->name)) == NULL) {
			call_done(call, 500, body_message("error",
			    "the model was removed by a reload"));
			continue;
		}
		memset(&msg, 0, sizeof(msg));
		msg.type = call->type;
		msg.id = call->id;
		order_begin(sup, NULL, &msg, m, call);
	} while (again);
}
