/*
 * call.c -- the life of a control call, below every family of calls (as
 * tmux's cmd-queue.c is below its commands): a call that waits for an
 * operation and outlives its peer (call_new, call_done, call_free), the
 * progress it is sent, the reply body of an operation on a model, and
 * the replies that wait for the journal, so that what an operator was
 * told survives a supervisor killed right after (call_reply).
 *
 * control/ and switching/ make calls and answer them here; when a call
 * ends, the level above hears of it through server_ops' call_done.
 */
#include <stdlib.h>

#include "clock.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"
#include "supervisord/server/server.h"

struct ctl_call *
call_new(struct client *c, struct proto_msg *msg, const char *name)
{
	struct supervisor	*sup = c->sup;
	struct ctl_call		*call;

	call = xcalloc(1, sizeof(*call));
	call->sup = sup;
	call->client = c;
	call->id = msg->id;
	call->type = msg->type;
	call->name = name != NULL ? xstrdup(name) : NULL;
	call->start_ms = clock_ms();
	call->phase = -1;
	TAILQ_INSERT_TAIL(&sup->calls, call, entry);
	return (call);
}

void
call_free(struct ctl_call *call)
{
	TAILQ_REMOVE(&call->sup->calls, call, entry);
	for (size_t i = 0; i < call->n_policies; i++)
		free(call->policies[i]);
	free(call->policies);
	free(call->name);
	free(call);
}

static void
call_reply_send(void *arg)
{
	struct ctl_reply	*r = arg;
	const uint8_t		*data;
	size_t			 len;

	if (r->client != NULL) {
		data = body_data(r->body, &len);
		server_reply(r->client, r->id, r->status, data, len);
	}
	TAILQ_REMOVE(&r->sup->replies, r, entry);
	body_free(r->body);
	free(r);
}

/*
 * The reply to a call that may have changed what the journal records:
 * sent once the journal on disk says so (persist_after).
 */
void
call_reply(struct client *c, uint32_t id, int status, struct body *b)
{
	struct ctl_reply	*r;

	r = xcalloc(1, sizeof(*r));
	r->sup = c->sup;
	r->client = c;
	r->id = id;
	r->status = status;
	r->body = b;
	TAILQ_INSERT_TAIL(&c->sup->replies, r, entry);
	/* What the call changed may not have asked for a write yet (the
	 * switcher tells of a mode change later): encode the journal now. */
	persist_schedule(c->sup);
	persist_after(c->sup, call_reply_send, r);
}

/*
 * Send the final reply (if the peer is still there), tell the level above
 * (server_ops' call_done), then free the call.
 */
void
call_done(struct ctl_call *call, int status, struct body *b)
{
	const struct server_ops	*ops = call->sup->server_ops;

	if (call->client != NULL)
		call_reply(call->client, call->id, status, b);
	else
		body_free(b);
	if (ops != NULL && ops->call_done != NULL)
		ops->call_done(call);
	call_free(call);
}

/* The peer is gone: its calls go on, their replies go nowhere. */
void
call_client_gone(struct client *c)
{
	struct ctl_call		*call;
	struct ctl_reply	*r;

	TAILQ_FOREACH(call, &c->sup->calls, entry)
		if (call->client == c)
			call->client = NULL;
	TAILQ_FOREACH(r, &c->sup->replies, entry)
		if (r->client == c)
			r->client = NULL;
	if (c->follow != NULL) {
		c->follow_free(c->follow);
		c->follow = NULL;
	}
}

/* An evict_progress_cb that sends progress on the call's id. */
void
call_progress_cb(struct model *m, const char *phase, int64_t elapsed,
    const char *detail, void *arg)
{
	struct ctl_call	*call = arg;

	if (call->client != NULL)
		server_progress(call->client, call->id, m->name, phase,
		    clock_ms() - call->start_ms, detail);
}

/*
 * The reply body of an operation on a model: {key: text, model,
 * process_state, elapsed_ms, escalated, reason, log, moved, gpus, phases}
 */
struct body *
call_op_body(struct model *m, const char *key, const char *text,
    const struct evict_report *r)
{
	struct body	*b = body_new();
	char		*s;

	body_map(b, 10);
	body_kstr(b, key, text);
	body_kstr(b, "model", m->name);
	s = model_process_state(m);
	body_kstr(b, "process_state", s);
	free(s);
	body_kuint(b, "elapsed_ms", (uint64_t)(r->total_ms < 0 ? 0 :
	    r->total_ms));
	body_kbool(b, "escalated", r->result == EVICT_ESCALATED);
	s = r->reason != NULL ? body_text_dup(r->reason) : NULL;
	body_kstr(b, "reason", s);
	free(s);
	body_kstr(b, "log", r->log);
	body_kbool(b, "moved", r->moved);
	body_str(b, "gpus");
	body_array(b, (size_t)__builtin_popcountll(r->gpus));
	for (int g = 0; g < 64; g++)
		if (r->gpus & ((uint64_t)1 << g))
			body_uint(b, (uint64_t)g);
	body_str(b, "phases");
	body_array(b, r->n_phases);
	for (size_t i = 0; i < r->n_phases; i++) {
		body_map(b, 3);
		body_kstr(b, "phase", evict_step_name(r->phases[i].step));
		body_kuint(b, "ms", (uint64_t)r->phases[i].ms);
		body_kbool(b, "ok", r->phases[i].ok);
	}
	return (b);
}
