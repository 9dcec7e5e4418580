/*
 * control.c -- the control calls (status, models, mode, pin, unpin,
 * switch, eviction get/set, sleep, wake, checkpoint, restore, validate,
 * reload, logs, metrics, subscribe), answered with bodies shaped like the
 * control API JSON of llmux 0.7 (Rust) (docs/supervisor.md, "Control
 * calls"), llmux's own fields beside its fields, never instead of them.
 * Long calls wait for an operation and send progress events on their id
 * until the reply.
 *
 * The orders that move models between states (switch, pin, unpin, mode,
 * sleep, wake, eviction set) go through the switcher: order.c. Checkpoint
 * and restore run on the engine directly, and the switcher is told what
 * they did when they end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"
#include "supervisord/control/control.h"

/*
 * What ran on the engine directly (checkpoint, restore, a validate that
 * the switcher did not order): the switcher is told when the call ends.
 */
void
control_call_ended(struct ctl_call *call)
{
	struct model	*m;

	if ((call->type == PROTO_CTL_CHECKPOINT ||
	    call->type == PROTO_CTL_RESTORE ||
	    call->type == PROTO_CTL_VALIDATE) && !call->ordered &&
	    call->name != NULL && (m = model_find(call->sup, call->name)) !=
	    NULL)
		switching_watch(m);
}

/* A reply that changes nothing: sent now. */
static void
ctl_answer(struct client *c, uint32_t id, int status, struct body *b)
{
	const uint8_t	*data;
	size_t		 len;

	data = body_data(b, &len);
	server_reply(c, id, status, data, len);
	body_free(b);
}

static void
ctl_not_found(struct client *c, uint32_t id, const char *name)
{
	ctl_answer(c, id, 404, body_message("error", "Model not found: %s",
	    name));
}

/* ---- bodies ------------------------------------------------------------------ */

static void
ctl_body_mode(struct supervisor *sup, struct body *b)
{
	if (switching_manual(sup)) {
		body_map(b, 2);
		body_kstr(b, "mode", "manual");
		body_kstr(b, "pinned", switching_pinned(sup));
	} else {
		body_map(b, 1);
		body_kstr(b, "mode", "auto");
	}
}

/* The eviction a model has in force: how it sleeps, else its policy. */
static struct eviction
ctl_eviction_in_force(const struct model *m)
{
	if (m->pstate == MODEL_SLEEPING || m->pstate == MODEL_CHECKPOINTED)
		return (m->sleeping);
	return (model_eviction(m));
}

static size_t
ctl_count_models(struct supervisor *sup)
{
	struct model	*m;
	size_t		 n = 0;

	TAILQ_FOREACH(m, &sup->models, entry)
		if (!m->removed)
			n++;
	return (n);
}

/* A model's "gpus" (where its processes hold memory) and its bytes. */
static void
ctl_body_gpus(struct supervisor *sup, const struct model *m, struct body *b)
{
	uint64_t	mask, bytes;
	size_t		n = 0;

	mask = gpu_model_gpus(sup, m, &bytes);
	if (mask == 0 && bytes == 0 && gpu_telemetry_error(sup) != NULL)
		mask = m->gpus_moved;
	for (int g = 0; g < 64; g++)
		if (mask & ((uint64_t)1 << g))
			n++;
	body_str(b, "gpus");
	body_array(b, n);
	for (int g = 0; g < 64; g++)
		if (mask & ((uint64_t)1 << g))
			body_uint(b, (uint64_t)g);
	body_kuint(b, "gpu_memory_bytes", bytes);
}

/* Where the model's images are in the object store (null: none is set). */
static void
ctl_body_store(struct supervisor *sup, const struct model *m, struct body *b)
{
	if (!store_configured(sup->conf)) {
		body_nil(b);
		return;
	}
	body_map(b, 2);
	body_kstr(b, "url", m->store_url);
	body_kstr(b, "error", m->store_error);
}

/*
 * What top and status show of a model's use: requests completed per
 * second lately, how long ago it was last used, and how long until the
 * idle TTL puts it to sleep (null where unknown or no countdown runs).
 */
static void
ctl_body_use(struct supervisor *sup, const struct model *m, struct body *b)
{
	struct switcher_model_status	st;
	int64_t				now = clock_ms(), left = -1;
	int				i = switching_index(sup, m);

	body_str(b, "requests_per_s");
	body_double(b, switching_requests_per_s(m, now));
	body_str(b, "last_used_ms_ago");
	if (i >= 0)
		switcher_model_status(sup->switcher, i, &st);
	if (i >= 0 && st.last_used_ms > 0 && now >= st.last_used_ms)
		body_uint(b, (uint64_t)(now - st.last_used_ms));
	else
		body_nil(b);
	body_str(b, "ttl_remaining_s");
	if (i >= 0)
		left = switcher_ttl_remaining_ms(sup->switcher, i, now);
	if (left >= 0)
		body_uint(b, (uint64_t)((left + 999) / 1000));
	else
		body_nil(b);
}

/* "process_state": what the model's process is doing, in words. */
static void
ctl_body_process_state(struct model *m, struct body *b)
{
	char	*s = model_process_state(m);

	body_kstr(b, "process_state", s);
	free(s);
}

/* "eviction": the model's configured (or set) eviction. */
static void
ctl_body_eviction(struct model *m, struct body *b)
{
	struct eviction	ev = model_eviction(m);

	body_str(b, "eviction");
	body_eviction(b, &ev);
}

static struct body *
ctl_status_body(struct supervisor *sup)
{
	struct body	*b = body_new();
	struct model	*m, *active;
	struct eviction	 ev;
	const char	*phase;
	char		 state[1024];

	body_map(b, 6);
	switching_state_string(sup, state, sizeof(state));
	body_kstr(b, "state", state);
	/* As llmux 0.7 (Rust): the active model, none while switching. */
	active = switching_active(sup);
	body_kstr(b, "active_model", active != NULL &&
	    strncmp(state, "active:", 7) == 0 ? active->name : NULL);
	body_str(b, "mode");
	ctl_body_mode(sup, b);
	body_str(b, "models");
	body_map(b, ctl_count_models(sup));
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		body_str(b, m->name);
		body_map(b, 21);
		body_kuint(b, "in_flight", m->in_flight);
		body_kuint(b, "queue_depth", m->queued);
		ctl_body_process_state(m, b);
		body_kstr(b, "state", proto_model_state_name(
		    model_published_state(m)));
		body_kuint(b, "port", m->proc != NULL ? m->proc->port :
		    m->cfg != NULL ? m->cfg->port : 0);
		body_str(b, "pid");
		if (m->proc != NULL && !m->proc->exited)
			body_uint(b, (uint64_t)m->proc->pid);
		else
			body_nil(b);
		body_kuint(b, "generation", m->generation);
		body_str(b, "eviction");
		ev = ctl_eviction_in_force(m);
		body_eviction(b, &ev);
		body_kuint(b, "starts", m->starts);
		body_kuint(b, "restarts", m->restarts);
		body_kuint(b, "crashes", m->crashes);
		body_kbool(b, "crash_loop", m->crash_loop);
		body_kuint(b, "escalations", m->escalations);
		body_str(b, "phase");
		body_str(b, evict_busy(m, NULL, &phase) ? phase : NULL);
		body_kstr(b, "last_error", m->last_error);
		ctl_body_gpus(sup, m, b);
		body_str(b, "object_store");
		ctl_body_store(sup, m, b);
		ctl_body_use(sup, m, b);
	}
	body_str(b, "gpus");
	gpu_status_body(sup, b);
	body_str(b, "supervisor");
	body_map(b, 5);
	body_kuint(b, "pid", (uint64_t)getpid());
	body_kstr(b, "version", LLMUX_VERSION);
	body_kbool(b, "unprivileged", !sup->privileged);
	body_kuint(b, "uptime_secs", (uint64_t)((clock_ms() -
	    sup->started_ms) / 1000));
	body_kuint(b, "config_generation", sup->config_generation);
	return (b);
}

static struct body *
ctl_models_body(struct supervisor *sup)
{
	struct body		*b = body_new();
	struct model		*m;
	struct model_config	*mc;

	body_map(b, 1);
	body_str(b, "models");
	body_array(b, ctl_count_models(sup));
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		mc = m->cfg;
		body_map(b, 9);
		body_kstr(b, "name", m->name);
		body_kstr(b, "model_path", mc != NULL ? mc->model_path : NULL);
		body_kuint(b, "port", mc != NULL ? mc->port : 0);
		body_str(b, "aliases");
		body_array(b, mc != NULL ? mc->n_aliases : 0);
		for (size_t i = 0; mc != NULL && i < mc->n_aliases; i++)
			body_str(b, mc->aliases[i]);
		ctl_body_eviction(m, b);
		ctl_body_process_state(m, b);
		body_kstr(b, "state", proto_model_state_name(
		    model_published_state(m)));
		body_kuint(b, "tensor_parallel_size", mc != NULL &&
		    mc->tensor_parallel_size > 0 ? mc->tensor_parallel_size : 1);
		body_kuint(b, "startup_timeout_secs", mc != NULL ?
		    config_model_startup_timeout(sup->conf, mc) : 0);
	}
	return (b);
}

static struct body *
ctl_eviction_body(struct supervisor *sup)
{
	struct body	*b = body_new();
	struct model	*m;

	body_map(b, 1);
	body_str(b, "models");
	body_map(b, ctl_count_models(sup));
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		body_str(b, m->name);
		body_map(b, 2);
		ctl_body_eviction(m, b);
		ctl_body_process_state(m, b);
	}
	return (b);
}

/* ---- sleep, wake, checkpoint, restore ----------------------------------------- */

static void
ctl_wake_done(struct model *m, const struct evict_report *r, void *arg)
{
	struct ctl_call	*call = arg;
	char		*text;

	if (call->type == PROTO_CTL_RESTORE && r->result != EVICT_OK) {
		xasprintf(&text, "Restore failed: %s", r->reason);
		call_done(call, 500, call_op_body(m, "error", text,
		    r));
	} else if (r->result == EVICT_FAILED) {
		xasprintf(&text, "Failed to wake model: %s", r->reason);
		call_done(call, 500, call_op_body(m, "error", text,
		    r));
	} else {
		xasprintf(&text, call->type == PROTO_CTL_RESTORE ?
		    "Model %s restored" : "Model %s woken", m->name);
		call_done(call, 200, call_op_body(m, "message",
		    text, r));
	}
	free(text);
}

static void
ctl_wake(struct client *c, struct proto_msg *msg, struct model *m)
{
	struct ctl_call	*call;
	char		 err[512];

	if (msg->type == PROTO_CTL_RESTORE && m->pstate != MODEL_CHECKPOINTED) {
		ctl_answer(c, msg->id, 409, body_message("error", "Model %s is "
		    "not checkpointed (%s)", m->name,
		    model_pstate_name(m->pstate)));
		return;
	}
	/* An operator's wake ends a crash loop. */
	model_clear_crash_loop(m);
	call = call_new(c, msg, m->name);
	if (evict_wake(m, ctl_wake_done, call_progress_cb, call, err,
	    sizeof(err)) != 0)
		call_done(call, 409, body_message("error", "%s", err));
}

/* ---- the calls ------------------------------------------------------------------ */

/*
 * State pushes and the event stream: the reply says where the ring
 * stands (so that a subscriber knows when a replay is complete), then the
 * events after since, then the state, then whatever comes.
 */
static void
ctl_subscribe(struct client *c, struct proto_msg *msg)
{
	struct events_info	 ei;
	struct body		*b = body_new();

	c->subscribed = true;
	events_info(c->sup, &ei);
	body_map(b, 5);
	body_kstr(b, "message", "Subscribed to state pushes and events");
	body_kuint(b, "boot", ei.boot);
	body_kuint(b, "first_seq", ei.first_seq);
	body_kuint(b, "last_seq", ei.last_seq);
	body_kuint(b, "ring_size", ei.ring_size);
	ctl_answer(c, msg->id, 200, b);
	events_subscribe(c, msg->u.call.has_since, &msg->u.call.since);
	server_send_state(c->sup, c);
}

/* A reload changes the journal (models added, removed): call_reply. */
static void
ctl_reload(struct client *c, struct proto_msg *msg)
{
	struct reload_result	 r;
	struct body		*b;

	reload_run(c->sup, &r);
	b = body_new();
	if (!r.ok) {
		body_map(b, 2);
		body_str(b, "error");
		body_str(b, "Invalid configuration, the running one is kept");
		body_str(b, "errors");
		body_array(b, r.n_errors);
		for (size_t i = 0; i < r.n_errors; i++)
			body_str(b, r.errors[i]);
		call_reply(c, msg->id, 400, b);
		reload_result_free(&r);
		return;
	}
	body_map(b, 5);
	body_kstr(b, "message", "Configuration reloaded");
	body_kuint(b, "generation", c->sup->config_generation);
	body_str(b, "added");
	body_array(b, r.n_added);
	for (size_t i = 0; i < r.n_added; i++)
		body_str(b, r.added[i]);
	body_str(b, "removed");
	body_array(b, r.n_removed);
	for (size_t i = 0; i < r.n_removed; i++)
		body_str(b, r.removed[i]);
	body_str(b, "changed");
	body_array(b, r.n_changed);
	for (size_t i = 0; i < r.n_changed; i++)
		body_str(b, r.changed[i]);
	call_reply(c, msg->id, 200, b);
	reload_result_free(&r);
}

void
control_call(struct client *c, struct proto_msg *msg)
{
	struct supervisor	*sup = c->sup;
	struct model		*m = NULL;
	struct body		*b;
	char			*text;
	enum proto_access	 access;

	/*
	 * The table of roles (proto_call_access): the proxy forwards for
	 * anyone who reached its admin port, and says whether that caller
	 * presented the admin token.
	 */
	if (!proto_call_allowed(msg->type, c->role, &msg->u.call)) {
		access = proto_call_access(msg->type);
		log_warnx("refusing a control call peer=%s role=%s call=%s "
		    "authorized=%d follow=%d", c->name,
		    proto_role_name(c->role), proto_type_name(msg->type) !=
		    NULL ? proto_type_name(msg->type) : "?",
		    msg->u.call.authorized, msg->u.call.follow);
		proto_conn_send_error(c->conn, msg->id, "forbidden", "%s: %s",
		    proto_type_name(msg->type) != NULL ?
		    proto_type_name(msg->type) : "?",
		    (access == PROTO_ACCESS_CHANGE ||
		    access == PROTO_ACCESS_PRIVATE) && !msg->u.call.authorized ?
		    "the proxy may forward it only for a caller who "
		    "presented the admin token" :
		    access == PROTO_ACCESS_PRIVATE ?
		    "the proxy role may not follow model logs (it would hold "
		    "the proxy's link): only the admin role (llmuxctl) may" :
		    "only the admin role (llmuxctl) may make this call");
		return;
	}
	if (proto_call_fields(msg->type) & PROTO_F_MODEL) {
		if ((m = model_find(sup, msg->u.call.model)) == NULL) {
			ctl_not_found(c, msg->id, msg->u.call.model);
			return;
		}
	}
	switch (msg->type) {
	case PROTO_CTL_STATUS:
		ctl_answer(c, msg->id, 200, ctl_status_body(sup));
		return;
	case PROTO_CTL_MODELS:
		ctl_answer(c, msg->id, 200, ctl_models_body(sup));
		return;
	case PROTO_CTL_MODE:
	case PROTO_CTL_PIN:
	case PROTO_CTL_UNPIN:
	case PROTO_CTL_SWITCH:
	case PROTO_CTL_EVICTION_SET:
	case PROTO_CTL_SLEEP:
	case PROTO_CTL_WAKE:
		order_call(c, msg, m);
		return;
	case PROTO_CTL_VALIDATE:
		validate_begin(c, msg, m);
		return;
	case PROTO_CTL_EVICTION_GET:
		ctl_answer(c, msg->id, 200, ctl_eviction_body(sup));
		return;
	case PROTO_CTL_CHECKPOINT:
		checkpoint_call(call_new(c, msg, m->name), m, msg);
		return;
	case PROTO_CTL_RESTORE:
		ctl_wake(c, msg, m);
		return;
	case PROTO_CTL_RELOAD:
		ctl_reload(c, msg);
		return;
	case PROTO_CTL_LOGS:
		logfollow_call(c, msg->id, m, msg->u.call.lines,
		    msg->u.call.follow);
		return;
	case PROTO_CTL_METRICS:
		text = metrics_text(sup);
		b = body_new();
		body_map(b, 1);
		body_kstr(b, "text", text);
		free(text);
		ctl_answer(c, msg->id, 200, b);
		return;
	case PROTO_CTL_SUBSCRIBE:
		ctl_subscribe(c, msg);
		return;
	default:
		proto_conn_send_error(c->conn, msg->id, "bad_message",
		    "%s is not a control call", proto_type_name(msg->type) ?
		    proto_type_name(msg->type) : "?");
		return;
	}
}
