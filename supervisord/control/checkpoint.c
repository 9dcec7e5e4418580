/*
 * checkpoint.c -- the checkpoint call, llmux 0.7's --checkpoint: the model
 * is started if it has no process, warmed up with one deterministic
 * inference (unless no_warmup: CUDA graphs and caches are then captured
 * in the image, so the restored model answers at full speed at once),
 * then put to sleep with W+checkpoint: a CRIU dump of its whole tree to
 * images_dir/NAME/images (criu.c). The eviction is the call's, else the
 * model's with its process part made checkpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/control/control.h"

#define CHECKPOINT_WARMUP_TOKENS	8
#define CHECKPOINT_WARMUP_TIMEOUT_MS	120000

struct checkpoint {
	struct ctl_call		*call;
	char			*model;
	bool			 warmup;
	struct infer_call	*http;
};

static void
checkpoint_free(struct checkpoint *ck)
{
	free(ck->model);
	free(ck);
}

/* At exit, for a call whose operation never ended. */
static void
checkpoint_state_free(void *arg)
{
	checkpoint_free(arg);
}

static void
checkpoint_fail(struct checkpoint *ck, int status, const char *fmt,
    const char *why)
{
	call_done(ck->call, status, body_message("error", fmt, why));
	checkpoint_free(ck);
}

static void
checkpoint_progress(struct model *m, const char *phase, int64_t elapsed,
    const char *detail, void *arg)
{
	struct checkpoint	*ck = arg;

	call_progress_cb(m, phase, elapsed, detail, ck->call);
}

/* Did the sleep upload the images it made? */
static bool
checkpoint_uploaded(const struct evict_report *r)
{
	for (size_t i = 0; i < r->n_phases; i++)
		if (r->phases[i].step == STEP_UPLOAD)
			return (r->phases[i].ok);
	return (false);
}

static void
checkpoint_slept(struct model *m, const struct evict_report *r, void *arg)
{
	struct checkpoint	*ck = arg;
	char			*text;

	if (r->result == EVICT_OK) {
		xasprintf(&text, "Model %s checkpointed to %s%s%s%s%s",
		    m->name, m->images != NULL ? m->images : "?",
		    checkpoint_uploaded(r) && m->store_url != NULL ?
		    " and uploaded to " : "", checkpoint_uploaded(r) &&
		    m->store_url != NULL ? m->store_url : "",
		    r->reason != NULL ? "; " : "", r->reason != NULL ?
		    r->reason : "");
		call_done(ck->call, 200, call_op_body(m, "message",
		    text, r));
	} else {
		xasprintf(&text, "Checkpoint failed: %s%s", r->reason,
		    r->result == EVICT_ESCALATED ? " (the model was stopped)" :
		    "");
		call_done(ck->call, 500, call_op_body(m, "error",
		    text, r));
	}
	free(text);
	checkpoint_free(ck);
}

static void
checkpoint_dump(struct checkpoint *ck, struct model *m)
{
	char	err[512];

	if (evict_sleep(m, &ck->call->eviction, checkpoint_slept,
	    checkpoint_progress, ck, err, sizeof(err)) != 0)
		checkpoint_fail(ck, 409, "%s", err);
}

static struct model *
checkpoint_model(struct checkpoint *ck)
{
	struct model	*m = model_find(ck->call->sup, ck->model);

	if (m == NULL)
		checkpoint_fail(ck, 500, "Checkpoint failed: %s",
		    "the model was removed");
	return (m);
}

static void
checkpoint_warmed(const struct httpc_result *res, void *arg)
{
	struct checkpoint	*ck = arg;
	struct model		*m;
	char			 why[256];

	ck->http = NULL;
	if ((m = checkpoint_model(ck)) == NULL)
		return;
	if (res->status != 200) {
		if (res->status != 0)
			snprintf(why, sizeof(why), "the model answered %d",
			    res->status);
		else
			snprintf(why, sizeof(why), "%s", res->error);
		checkpoint_fail(ck, 500, "Checkpoint failed: the warm-up "
		    "request failed: %s", why);
		return;
	}
	log_info("checkpoint warm-up done model=%s ms=%lld", m->name,
	    (long long)res->ms);
	checkpoint_dump(ck, m);
}

/* One inference, so what is lazily set up is in the image. */
static void
checkpoint_warmup(struct checkpoint *ck, struct model *m)
{
	if (!ck->warmup || m->proc == NULL) {
		checkpoint_dump(ck, m);
		return;
	}
	call_progress_cb(m, "warmup", 0, "POST /v1/completions", ck->call);
	ck->http = infer_request(m->sup->base, m->proc->port,
	    m->cfg != NULL ? spawn_served_name(m->cfg) : m->name,
	    VALIDATE_PROMPT, CHECKPOINT_WARMUP_TOKENS,
	    CHECKPOINT_WARMUP_TIMEOUT_MS, checkpoint_warmed, ck);
}

static void
checkpoint_started(struct model *m, const struct evict_report *r, void *arg)
{
	struct checkpoint	*ck = arg;

	if (r->result == EVICT_FAILED) {
		checkpoint_fail(ck, 500, "Checkpoint failed: the model did not "
		    "start: %s", r->reason);
		return;
	}
	checkpoint_warmup(ck, m);
}

void
checkpoint_call(struct ctl_call *call, struct model *m,
    const struct proto_msg *msg)
{
	struct checkpoint	*ck;
	struct eviction		 ev = model_eviction(m);
	char			 err[512];

	if (msg->u.call.has_eviction)
		ev = msg->u.call.eviction;
	if (ev.process != PROCESS_CHECKPOINT) {
		if (msg->u.call.has_eviction) {
			call_done(call, 400, body_message("error",
			    "checkpoint needs an eviction whose process is "
			    "checkpoint"));
			return;
		}
		ev.process = PROCESS_CHECKPOINT;
	}
	call->eviction = ev;
	/* CRIU cannot dump a pipe: the log must be a file (a CRIU-safe start). */
	if (m->proc != NULL && !m->proc->exited && !m->proc->log_file_mode &&
	    m->pstate != MODEL_CHECKPOINTED) {
		call_done(call, 409, body_message("error", "Model %s "
		    "cannot be checkpointed: it was started for an eviction "
		    "without checkpoint, so its output is a pipe CRIU cannot "
		    "dump; stop it (llmuxctl stop %s) and checkpoint it again",
		    m->name, m->name));
		return;
	}
	ck = xcalloc(1, sizeof(*ck));
	ck->call = call;
	ck->model = xstrdup(m->name);
	ck->warmup = !msg->u.call.no_warmup;
	call->state = ck;
	call->state_free = checkpoint_state_free;
	log_info("checkpoint begins model=%s warmup=%d", m->name, ck->warmup);
	switch (m->pstate) {
	case MODEL_RUNNING:
		if (m->op == NULL) {
			checkpoint_warmup(ck, m);
			return;
		}
		break;
	case MODEL_SLEEPING:
	case MODEL_CHECKPOINTED:
		/* evict_sleep says whether there is anything to do. */
		checkpoint_dump(ck, m);
		return;
	default:
		break;
	}
	model_clear_crash_loop(m);
	m->start_for_criu = true;
	if (evict_wake(m, checkpoint_started, checkpoint_progress, ck, err,
	    sizeof(err)) != 0)
		checkpoint_fail(ck, 409, "%s", err);
}
