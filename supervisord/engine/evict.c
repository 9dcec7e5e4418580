/*
 * evict.c -- putting a model to sleep, waking it and stopping it, as
 * asynchronous sequences of steps (docs/reference-behaviour.md, "Eviction:
 * two axes"; docs/supervisor.md, "Eviction").
 *
 * An operation is a plan (a list of steps, computed by evict_plan_sleep
 * and evict_plan_wake, which are pure) and an executor that runs one step
 * at a time from the event loop: an HTTP call to the model, the gpu or
 * criu module, a start or a stop. Each step is timed and reported as a
 * progress phase. When a step fails:
 *  - during a sleep, the rest of the plan is replaced by a stop, so the
 *    GPU memory is always freed (the result is "escalated");
 *  - during a wake, the half-woken model is stopped and the wake fails,
 *    except that a failed CRIU restore falls back to a cold start, and a
 *    failed reset_prefix_cache is tolerated, as in llmux 0.7 (Rust);
 *  - a stop cannot fail: process.c ends with SIGKILL and cgroup.kill.
 * A stop interrupts any other operation. Callers wait as "waiters"; a
 * second caller asking for the same operation joins the running one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "evict_int.h"

/* ---- operations and their waiters ---------------------------------------- */

static void
evict_next_cb(evutil_socket_t fd, short ev, void *arg)
{
	evict_step_start(arg);
}

static struct evict_op *
evict_op_new(struct model *m, enum evict_kind kind)
{
	struct evict_op	*op;

	op = xcalloc(1, sizeof(*op));
	op->m = m;
	op->kind = kind;
	op->start_ms = clock_ms();
	op->result = EVICT_OK;
	op->report.kind = kind;
	op->ev_next = event_new(m->sup->base, -1, 0, evict_next_cb, op);
	m->op = op;
	return (op);
}

static void
evict_add_waiter(struct evict_op *op, evict_done_cb done,
    evict_progress_cb progress, void *arg)
{
	if (done == NULL && progress == NULL)
		return;
	op->w = xreallocarray(op->w, op->nw + 1, sizeof(*op->w));
	op->w[op->nw].done = done;
	op->w[op->nw].progress = progress;
	op->w[op->nw].arg = arg;
	op->nw++;
}

void
evict_progress(struct evict_op *op, const char *phase, const char *detail)
{
	int64_t	elapsed = clock_ms() - op->start_ms;

	for (size_t i = 0; i < op->nw; i++)
		if (op->w[i].progress != NULL)
			op->w[i].progress(op->m, phase, elapsed, detail,
			    op->w[i].arg);
}

void
evict_schedule(struct evict_op *op)
{
	event_active(op->ev_next, EV_TIMEOUT, 0);
}

/* Cancel whatever the current step waits for. */
static void
evict_cancel_step(struct evict_op *op)
{
	httpc_cancel(op->call);
	op->call = NULL;
	health_cancel(op->health);
	op->health = NULL;
	if (op->pending != NULL) {
		store_cancel(op->pending->job);
		op->pending->op = NULL;
		op->pending = NULL;
	}
	if (op->waiting_log && op->m->proc != NULL)
		process_wait_log_cancel(op->m->proc);
	op->waiting_log = false;
	if (op->m->proc != NULL && process_stopping(op->m->proc))
		process_stop(op->m->proc, 0, NULL, NULL);
	event_del(op->ev_next);
}

static void
evict_op_free(struct evict_op *op)
{
	event_free(op->ev_next);
	free(op->w);
	free(op->reason);
	free(op->images);
	free(op->log);
	free(op);
}

/* Hand the report to every waiter; the op is already detached. */
static void
evict_report(struct evict_op *op)
{
	struct evict_waiter	*w = op->w;
	size_t			 nw = op->nw;

	op->report.result = op->result;
	op->report.reason = op->reason;
	op->report.log = op->log;
	op->report.total_ms = clock_ms() - op->start_ms;
	op->w = NULL;
	op->nw = 0;
	for (size_t i = 0; i < nw; i++)
		if (w[i].done != NULL)
			w[i].done(op->m, &op->report, w[i].arg);
	free(w);
}

void
evict_set_reason(struct evict_op *op, const char *fmt, const char *phase,
    const char *why)
{
	free(op->reason);
	xasprintf(&op->reason, fmt, phase, why);
	/* It may quote the model: keep it fit for a message. */
	body_text_clean(op->reason);
}

/* The operation is over: set the model's state, then tell the waiters. */
void
evict_finish(struct evict_op *op)
{
	struct model		*m = op->m;
	char			 buf[64], *msg;

	m->op = NULL;
	switch (op->kind) {
	case EVICT_SLEEP:
		if (op->result == EVICT_ESCALATED) {
			m->escalations++;
			xasprintf(&msg, "sleep with %s escalated to stop: %s",
			    eviction_format(&op->eviction, buf, sizeof(buf)),
			    op->reason);
			model_set_error(m, msg);
			log_warnx("eviction escalated to stop model=%s "
			    "reason=\"%s\"", m->name, op->reason);
			free(msg);
			model_set_pstate(m, MODEL_NOT_STARTED);
		} else if (op->eviction.process == PROCESS_STOP)
			model_set_pstate(m, MODEL_NOT_STARTED);
		else if (op->eviction.process == PROCESS_CHECKPOINT) {
			model_set_pstate(m, MODEL_CHECKPOINTED);
			m->sleeping = op->eviction;
			/* None when it was checkpointed already. */
			if (op->images != NULL) {
				free(m->images);
				m->images = op->images;
				op->images = NULL;
			}
		} else {
			m->sleeping = op->eviction;
			model_set_pstate(m, MODEL_SLEEPING);
		}
		break;
	case EVICT_WAKE:
		if (op->failing) {
			/* The switcher tells the proxy (switching.c). */
			m->wake_failures++;
			model_set_failed(m, op->reason);
			log_warnx("wake failed model=%s reason=\"%s\"", m->name,
			    op->reason);
		} else if (op->adopting && op->adopt_state != MODEL_RUNNING) {
			model_set_pstate(m, op->adopt_state);
		} else {
			if (op->result == EVICT_ESCALATED)
				model_set_error(m, op->reason);
			model_set_pstate(m, MODEL_RUNNING);
		}
		break;
	case EVICT_STOP:
		if (m->proc == NULL && m->pstate != MODEL_CHECKPOINTED)
			model_set_pstate(m, MODEL_NOT_STARTED);
		break;
	}
	log_info("%s done model=%s result=%s ms=%lld", op->adopting ? "adopt" :
	    evict_kind_name(op->kind), m->name, op->result == EVICT_OK ? "ok" : op->result ==
	    EVICT_ESCALATED ? "escalated" : "failed",
	    (long long)(clock_ms() - op->start_ms));
	model_changed(m);
	/* What it holds on the GPUs now: read at once, not in up to 2 s. */
	gpu_refresh(m->sup);
	evict_report(op);
	evict_op_free(op);
}

/* ---- entry points ----------------------------------------------------------- */

static int
evict_begin(struct evict_op *op, evict_done_cb done,
    evict_progress_cb progress, void *arg)
{
	evict_add_waiter(op, done, progress, arg);
	log_info("%s begins model=%s steps=%zu", evict_kind_name(op->kind),
	    op->m->name, op->plan.n);
	model_changed(op->m);
	evict_schedule(op);
	return (0);
}

static unsigned
evict_tp(const struct model *m)
{
	if (m->proc != NULL && m->proc->tp > 0)
		return (m->proc->tp);
	if (m->cfg != NULL && m->cfg->tensor_parallel_size > 0)
		return (m->cfg->tensor_parallel_size);
	return (1);
}

/* Checkpointed by a dump of ours whose upload failed? */
static bool
evict_upload_again(const struct model *m, const struct eviction *ev)
{
	char	*ours;
	bool	 again;

	if (m->pstate != MODEL_CHECKPOINTED || m->store_error == NULL ||
	    m->images == NULL || ev->process != PROCESS_CHECKPOINT ||
	    !store_configured(m->sup->conf))
		return (false);
	ours = model_path_images(m->sup->conf, m->name);
	again = strcmp(ours, m->images) == 0;
	free(ours);
	return (again);
}

int
evict_sleep(struct model *m, const struct eviction *ev, evict_done_cb done,
    evict_progress_cb progress, void *arg, char *err, size_t errlen)
{
	struct evict_op	*op;
	char		 a[64], b[64];

	if (m->op != NULL) {
		if (m->op->kind == EVICT_SLEEP &&
		    m->op->eviction.weights == ev->weights &&
		    m->op->eviction.process == ev->process) {
			evict_add_waiter(m->op, done, progress, arg);
			return (0);
		}
		snprintf(err, errlen, "Model %s is busy: %s in progress",
		    m->name, evict_kind_name(m->op->kind));
		return (-1);
	}
	switch (m->pstate) {
	case MODEL_RUNNING:
		break;
	case MODEL_SLEEPING:
	case MODEL_CHECKPOINTED:
		if (m->sleeping.weights == ev->weights &&
		    m->sleeping.process == ev->process)
			break;		/* nothing to do */
		if (ev->process == PROCESS_STOP)
			break;
		snprintf(err, errlen, "Model %s is already sleeping with %s; "
		    "wake it first to sleep with %s", m->name,
		    eviction_format(&m->sleeping, a, sizeof(a)),
		    eviction_format(ev, b, sizeof(b)));
		return (-1);
	default:
		snprintf(err, errlen, "Model %s is not running (%s)", m->name,
		    model_pstate_name(m->pstate));
		return (-1);
	}
	op = evict_op_new(m, EVICT_SLEEP);
	op->eviction = *ev;
	if (m->pstate == MODEL_RUNNING)
		evict_plan_sleep(ev, evict_tp(m), &op->plan);
	else if (ev->process == PROCESS_STOP &&
	    !(m->sleeping.weights == ev->weights &&
	    m->sleeping.process == ev->process))
		evict_replan(op, STEP_STOP);
	else if (evict_upload_again(m, ev)) {
		/* Checkpointed, but its upload failed: try it again. */
		op->images = xstrdup(m->images);
		evict_replan(op, STEP_UPLOAD);
	}
	if (store_configured(m->sup->conf))
		evict_plan_store(&op->plan);
	return (evict_begin(op, done, progress, arg));
}

int
evict_wake(struct model *m, evict_done_cb done, evict_progress_cb progress,
    void *arg, char *err, size_t errlen)
{
	struct evict_op	*op;

	if (m->op != NULL) {
		if (m->op->kind == EVICT_WAKE) {
			evict_add_waiter(m->op, done, progress, arg);
			return (0);
		}
		snprintf(err, errlen, "Model %s is busy: %s in progress",
		    m->name, evict_kind_name(m->op->kind));
		return (-1);
	}
	if (m->cfg == NULL) {
		snprintf(err, errlen, "Model %s is being removed", m->name);
		return (-1);
	}
	op = evict_op_new(m, EVICT_WAKE);
	op->eviction = m->sleeping;
	evict_plan_wake(m->pstate, &m->sleeping, evict_tp(m),
	    m->images != NULL, &op->plan);
	if (store_configured(m->sup->conf))
		evict_plan_store(&op->plan);
	return (evict_begin(op, done, progress, arg));
}

/*
 * The images were downloaded: what follows the download is the restore
 * of the eviction they were made with (a checkpoint_path's manifest may
 * say another than the model's).
 */
void
evict_replan_restore(struct evict_op *op, const struct eviction *ev)
{
	struct evict_plan	rest;
	struct model		*m = op->m;

	op->eviction = *ev;
	m->sleeping = *ev;
	evict_plan_wake(MODEL_CHECKPOINTED, ev, evict_tp(m), true, &rest);
	op->plan.n = op->idx + 1;
	for (size_t i = 0; i < rest.n && op->plan.n <
	    sizeof(op->plan.steps) / sizeof(op->plan.steps[0]); i++)
		op->plan.steps[op->plan.n++] = rest.steps[i];
}

/* End a running operation now, failing its waiters. */
static void
evict_interrupt(struct model *m, const char *why)
{
	struct evict_op	*op = m->op;

	evict_cancel_step(op);
	m->op = NULL;
	op->result = EVICT_FAILED;
	free(op->reason);
	op->reason = xstrdup(why);
	log_info("%s interrupted model=%s reason=\"%s\"",
	    evict_kind_name(op->kind), m->name, why);
	evict_report(op);
	evict_op_free(op);
}

int
evict_stop(struct model *m, evict_done_cb done, evict_progress_cb progress,
    void *arg)
{
	struct evict_op	*op;

	if (m->op != NULL && m->op->kind == EVICT_STOP) {
		evict_add_waiter(m->op, done, progress, arg);
		return (0);
	}
	if (m->op != NULL)
		evict_interrupt(m, "interrupted: the model is being stopped");
	op = evict_op_new(m, EVICT_STOP);
	if (m->proc != NULL)
		evict_replan(op, STEP_STOP);
	return (evict_begin(op, done, progress, arg));
}

int
evict_adopt(struct model *m, enum model_pstate st, int64_t timeout_ms)
{
	struct evict_op	*op;

	if (m->op != NULL || m->proc == NULL)
		return (-1);
	op = evict_op_new(m, EVICT_WAKE);
	op->adopting = true;
	op->adopt_state = st;
	op->health_timeout_ms = timeout_ms;
	evict_replan(op, STEP_HEALTH);
	return (evict_begin(op, NULL, NULL, NULL));
}

int
evict_adopt_found(struct model *m, int64_t timeout_ms)
{
	struct evict_op	*op;

	if (m->op != NULL || m->proc == NULL)
		return (-1);
	op = evict_op_new(m, EVICT_WAKE);
	op->adopting = true;
	op->adopt_probe = true;
	op->adopt_state = MODEL_RUNNING;
	op->health_timeout_ms = timeout_ms;
	evict_replan(op, STEP_HEALTH);
	return (evict_begin(op, NULL, NULL, NULL));
}

bool
evict_adopting(const struct model *m)
{
	return (m->op != NULL && m->op->adopting);
}

bool
evict_busy(const struct model *m, enum evict_kind *kind, const char **phase)
{
	const struct evict_op	*op = m->op;

	if (op == NULL)
		return (false);
	if (kind != NULL)
		*kind = op->kind;
	if (phase != NULL)
		*phase = op->idx < op->plan.n ?
		    evict_step_name(op->plan.steps[op->idx]) : "done";
	return (true);
}

/*
 * Is the running operation waiting for one of the model server's own HTTP
 * calls (/sleep, /wake_up, /collective_rpc, /reset_prefix_cache)? A
 * server busy with those still answers /health; one that does not is
 * hung, and the call would only end at its deadline.
 */
bool
evict_in_http_step(const struct model *m)
{
	const struct evict_op	*op = m->op;

	if (op == NULL || op->adopting || op->call == NULL ||
	    op->idx >= op->plan.n)
		return (false);
	switch (op->plan.steps[op->idx]) {
	case STEP_SLEEP_OFFLOAD:
	case STEP_SLEEP_DISCARD:
	case STEP_NCCL_SUSPEND:
	case STEP_NCCL_RESUME:
	case STEP_WAKE_UP:
	case STEP_RELOAD_WEIGHTS:
	case STEP_RESET_PREFIX_CACHE:
		return (true);
	default:
		return (false);
	}
}

void
evict_forget(struct model *m, void *arg)
{
	struct evict_op	*op = m->op;

	if (op == NULL)
		return;
	for (size_t i = 0; i < op->nw; i++) {
		if (op->w[i].arg == arg) {
			op->w[i].done = NULL;
			op->w[i].progress = NULL;
		}
	}
}

int
evict_wait(struct model *m, evict_done_cb done, void *arg)
{
	if (m->op == NULL)
		return (-1);
	evict_add_waiter(m->op, done, NULL, arg);
	return (0);
}

void
evict_abandon(struct model *m)
{
	struct evict_op	*op = m->op;

	if (op == NULL)
		return;
	evict_cancel_step(op);
	m->op = NULL;
	evict_op_free(op);
}
