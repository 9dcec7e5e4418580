/*
 * evict.c -- putting a model to sleep, waking it and stopping it, as
 * asynchronous sequences of steps (DESIGN.md §5, SEED-BEHAVIOUR.md
 * "Eviction sequences").
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
 *    failed reset_prefix_cache is tolerated, as in the seed;
 *  - a stop cannot fail: process.c ends with SIGKILL and cgroup.kill.
 * A stop interrupts any other operation. Callers wait as "waiters"; a
 * second caller asking for the same operation joins the running one.
 */
#include <sys/types.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "supervisor.h"
#include "xmalloc.h"

#define EVICT_MAX_PIDS	1024

struct evict_waiter {
	evict_done_cb		 done;
	evict_progress_cb	 progress;
	void			*arg;
};

/* An asynchronous gpu or criu call; op is cleared if the op goes away. */
struct evict_pending {
	struct evict_op		*op;
};

struct evict_op {
	struct model		*m;
	enum evict_kind		 kind;
	struct eviction		 eviction;	/* SLEEP: applied; WAKE: from */
	struct evict_plan	 plan;
	size_t			 idx;
	bool			 in_step;
	int64_t			 start_ms;
	int64_t			 step_ms;
	struct evict_waiter	*w;
	size_t			 nw;
	struct httpc_call	*call;
	struct health		*health;
	struct evict_pending	*pending;
	bool			 waiting_log;
	struct event		*ev_next;
	enum evict_result	 result;
	char			*reason;
	bool			 failing;	/* WAKE: stop, then fail */
	bool			 adopting;
	enum model_pstate	 adopt_state;
	int64_t			 health_timeout_ms;
	char			*images;	/* CHECKPOINT: where */
	char			*log;		/* last lines of a failed start */
	struct evict_report	 report;
};

static const char *evict_step_names[] = {
	"sleep", "discard", "nccl_suspend", "cuda_suspend", "criu_dump",
	"stop", "start", "criu_restore", "health", "cuda_resume",
	"nccl_resume", "wake_up", "reload_weights", "reset_prefix_cache"
};

static void	evict_step_start(struct evict_op *);
static void	evict_step_end(struct evict_op *, bool, const char *);

const char *
evict_step_name(enum evict_step s)
{
	return ((unsigned)s < STEP__COUNT ? evict_step_names[s] : "?");
}

const char *
evict_kind_name(enum evict_kind k)
{
	switch (k) {
	case EVICT_SLEEP:
		return ("sleep");
	case EVICT_WAKE:
		return ("wake");
	case EVICT_STOP:
		return ("stop");
	}
	return ("?");
}

static void
evict_plan_add(struct evict_plan *p, enum evict_step s)
{
	if (p->n < sizeof(p->steps) / sizeof(p->steps[0]))
		p->steps[p->n++] = s;
}

/* Weights first, then the process; TP>1 tears NCCL down first. */
void
evict_plan_sleep(const struct eviction *ev, unsigned tp,
    struct evict_plan *p)
{
	p->n = 0;
	switch (ev->weights) {
	case WEIGHTS_OFFLOAD:
		evict_plan_add(p, STEP_SLEEP_OFFLOAD);
		break;
	case WEIGHTS_DISCARD:
		evict_plan_add(p, STEP_SLEEP_DISCARD);
		break;
	default:
		break;
	}
	switch (ev->process) {
	case PROCESS_CUDA_SUSPEND:
		if (tp > 1)
			evict_plan_add(p, STEP_NCCL_SUSPEND);
		evict_plan_add(p, STEP_CUDA_SUSPEND);
		break;
	case PROCESS_CHECKPOINT:
		if (tp > 1)
			evict_plan_add(p, STEP_NCCL_SUSPEND);
		evict_plan_add(p, STEP_CRIU_DUMP);
		break;
	case PROCESS_STOP:
		evict_plan_add(p, STEP_STOP);
		break;
	default:
		break;
	}
}

static void
evict_plan_weights(const struct eviction *ev, struct evict_plan *p)
{
	switch (ev->weights) {
	case WEIGHTS_OFFLOAD:
		evict_plan_add(p, STEP_WAKE_UP);
		break;
	case WEIGHTS_DISCARD:
		evict_plan_add(p, STEP_WAKE_UP);
		evict_plan_add(p, STEP_RELOAD_WEIGHTS);
		evict_plan_add(p, STEP_RESET_PREFIX_CACHE);
		break;
	default:
		break;
	}
}

/*
 * From the state the model is in: a cold start; CUDA resume (then NCCL)
 * and the weight steps; CRIU restore, health, NCCL and the weight steps.
 * A kept process is health-checked last, as the seed's switcher does.
 */
void
evict_plan_wake(enum model_pstate st, const struct eviction *ev, unsigned tp,
    bool has_images, struct evict_plan *p)
{
	p->n = 0;
	switch (st) {
	case MODEL_RUNNING:
		return;
	case MODEL_SLEEPING:
		if (ev->process == PROCESS_CUDA_SUSPEND) {
			evict_plan_add(p, STEP_CUDA_RESUME);
			if (tp > 1)
				evict_plan_add(p, STEP_NCCL_RESUME);
		}
		evict_plan_weights(ev, p);
		evict_plan_add(p, STEP_HEALTH);
		return;
	case MODEL_CHECKPOINTED:
		if (has_images) {
			evict_plan_add(p, STEP_CRIU_RESTORE);
			evict_plan_add(p, STEP_HEALTH);
			if (tp > 1)
				evict_plan_add(p, STEP_NCCL_RESUME);
			evict_plan_weights(ev, p);
			return;
		}
		/* FALLTHROUGH */
	default:
		evict_plan_add(p, STEP_START);
		return;
	}
}

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

static void
evict_progress(struct evict_op *op, const char *phase, const char *detail)
{
	int64_t	elapsed = clock_ms() - op->start_ms;

	for (size_t i = 0; i < op->nw; i++)
		if (op->w[i].progress != NULL)
			op->w[i].progress(op->m, phase, elapsed, detail,
			    op->w[i].arg);
}

static void
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

static void
evict_set_reason(struct evict_op *op, const char *fmt, const char *phase,
    const char *why)
{
	free(op->reason);
	xasprintf(&op->reason, fmt, phase, why);
}

/* The operation is over: set the model's state, then tell the waiters. */
static void
evict_finish(struct evict_op *op)
{
	struct model		*m = op->m;
	struct supervisor	*sup = m->sup;
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
			m->images = op->images;
			op->images = NULL;
		} else {
			m->sleeping = op->eviction;
			model_set_pstate(m, MODEL_SLEEPING);
		}
		break;
	case EVICT_WAKE:
		if (op->failing) {
			m->wake_failures++;
			model_set_failed(m, op->reason);
			server_send_failed(sup, m, op->reason);
			log_warnx("wake failed model=%s reason=\"%s\"", m->name,
			    op->reason);
		} else if (op->adopting && op->adopt_state != MODEL_RUNNING) {
			model_set_pstate(m, op->adopt_state);
		} else {
			if (op->result == EVICT_ESCALATED)
				model_set_error(m, op->reason);
			model_set_pstate(m, MODEL_RUNNING);
			sup->active = m;
			server_send_ready(sup, m);
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
	evict_report(op);
	evict_op_free(op);
}

/* ---- steps ----------------------------------------------------------------- */

static void
evict_http_cb(const struct httpc_result *r, void *arg)
{
	struct evict_op	*op = arg;
	char		 why[512];

	op->call = NULL;
	if (r->status >= 200 && r->status < 300) {
		evict_step_end(op, true, NULL);
		return;
	}
	if (r->status != 0)
		snprintf(why, sizeof(why), "the model answered %d: %.300s",
		    r->status, r->body);
	else
		snprintf(why, sizeof(why), "%s", r->error);
	evict_step_end(op, false, why);
}

static void
evict_http(struct evict_op *op, const char *path, const char *body,
    int64_t timeout_ms)
{
	struct model	*m = op->m;

	if (m->proc == NULL || m->proc->exited) {
		evict_step_end(op, false, "the model has no running process");
		return;
	}
	op->call = httpc_request(m->sup->base, m->proc->port, "POST", path,
	    body, timeout_ms, evict_http_cb, op);
}

static void
evict_health_cb(int ok, const char *reason, void *arg)
{
	struct evict_op	*op = arg;

	op->health = NULL;
	evict_step_end(op, ok != 0, reason);
}

static void
evict_stopped_cb(struct process *p, void *arg)
{
	struct evict_op	*op = arg;
	struct model	*m = op->m;

	if (m->proc == p) {
		m->proc = NULL;
		process_free(p);
	}
	evict_step_end(op, true, NULL);
}

static struct evict_pending *
evict_pending_new(struct evict_op *op)
{
	op->pending = xcalloc(1, sizeof(*op->pending));
	op->pending->op = op;
	return (op->pending);
}

static void
evict_gpu_cb(int ok, const char *reason, void *arg)
{
	struct evict_pending	*pp = arg;
	struct evict_op		*op = pp->op;

	free(pp);
	if (op == NULL)
		return;
	op->pending = NULL;
	evict_step_end(op, ok != 0, reason);
}

static void
evict_criu_cb(int ok, const char *reason, pid_t restored, void *arg)
{
	struct evict_pending	*pp = arg;
	struct evict_op		*op = pp->op;
	struct model		*m;
	struct process		*p;
	struct procfs_stat	 st;
	char			 err[256];

	free(pp);
	if (op == NULL)
		return;
	op->pending = NULL;
	m = op->m;
	if (ok && op->plan.steps[op->idx] == STEP_CRIU_RESTORE) {
		if (procfs_read_stat(restored, &st) != 0 ||
		    (p = process_adopt(m, restored, st.starttime, NULL,
		    m->cfg != NULL ? m->cfg->port : 0, err,
		    sizeof(err))) == NULL) {
			evict_step_end(op, false, "restored process is gone");
			return;
		}
		m->proc = p;
		m->generation++;
	}
	evict_step_end(op, ok != 0, reason);
}

static void
evict_step_gpu(struct evict_op *op, bool suspend)
{
	struct model	*m = op->m;
	pid_t		*pids, *gpu;
	size_t		 n, ng;

	if (m->proc == NULL) {
		evict_step_end(op, false, "the model has no running process");
		return;
	}
	pids = xcalloc(EVICT_MAX_PIDS, sizeof(*pids));
	gpu = xcalloc(EVICT_MAX_PIDS, sizeof(*gpu));
	n = process_members(m->proc, pids, EVICT_MAX_PIDS);
	ng = gpu_processes(m->sup->conf, pids, n, gpu, EVICT_MAX_PIDS);
	if (suspend)
		gpu_suspend(m->sup, gpu, ng, evict_gpu_cb,
		    evict_pending_new(op));
	else
		gpu_resume(m->sup, gpu, ng, evict_gpu_cb,
		    evict_pending_new(op));
	free(pids);
	free(gpu);
}

/* CRIU leaves these behind when a dump fails; a later dump trips on them. */
static void
evict_remove_link_remap(void)
{
	glob_t	g;

	if (glob("/dev/shm/link_remap.*", 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++)
		(void)unlink(g.gl_pathv[i]);
	globfree(&g);
}

static void
evict_step_start(struct evict_op *op)
{
	struct model	*m = op->m;
	struct process	*p;
	enum evict_step	 step;
	char		 err[1024], detail[256];
	int64_t		 timeout;

	if (op->idx >= op->plan.n) {
		evict_finish(op);
		return;
	}
	step = op->plan.steps[op->idx];
	op->in_step = true;
	op->step_ms = clock_ms();
	detail[0] = '\0';
	/* A process that died between two steps fails the next at once. */
	if (m->proc != NULL && m->proc->exited && step != STEP_STOP) {
		evict_progress(op, evict_step_name(step), NULL);
		snprintf(err, sizeof(err), "the model process %s",
		    m->proc->exit_reason != NULL ? m->proc->exit_reason :
		    "exited");
		evict_step_end(op, false, err);
		return;
	}
	if (m->proc != NULL)
		snprintf(detail, sizeof(detail), "pid %d", (int)m->proc->pid);
	log_debug("phase start model=%s op=%s phase=%s", m->name,
	    evict_kind_name(op->kind), evict_step_name(step));

	switch (step) {
	case STEP_SLEEP_OFFLOAD:
		evict_progress(op, evict_step_name(step), "POST /sleep?level=1");
		evict_http(op, "/sleep?level=1", NULL, EVICT_SLEEP_TIMEOUT_MS);
		return;
	case STEP_SLEEP_DISCARD:
		evict_progress(op, evict_step_name(step), "POST /sleep?level=2");
		evict_http(op, "/sleep?level=2", NULL, EVICT_SLEEP_TIMEOUT_MS);
		return;
	case STEP_NCCL_SUSPEND:
		evict_progress(op, evict_step_name(step), NULL);
		evict_http(op, "/collective_rpc", "{\"method\":\"suspend_nccl\"}",
		    EVICT_NCCL_TIMEOUT_MS);
		return;
	case STEP_NCCL_RESUME:
		evict_progress(op, evict_step_name(step), NULL);
		evict_http(op, "/collective_rpc", "{\"method\":\"resume_nccl\"}",
		    EVICT_NCCL_TIMEOUT_MS);
		return;
	case STEP_WAKE_UP:
		evict_progress(op, evict_step_name(step), "POST /wake_up");
		evict_http(op, "/wake_up", NULL, EVICT_WAKE_TIMEOUT_MS);
		return;
	case STEP_RELOAD_WEIGHTS:
		evict_progress(op, evict_step_name(step), NULL);
		timeout = m->cfg != NULL ? (int64_t)config_model_startup_timeout(
		    m->sup->conf, m->cfg) * 1000 : EVICT_WAKE_TIMEOUT_MS;
		evict_http(op, "/collective_rpc",
		    "{\"method\":\"reload_weights\"}", timeout);
		return;
	case STEP_RESET_PREFIX_CACHE:
		evict_progress(op, evict_step_name(step), NULL);
		evict_http(op, "/reset_prefix_cache", NULL,
		    EVICT_RESET_CACHE_TIMEOUT_MS);
		return;
	case STEP_CUDA_SUSPEND:
	case STEP_CUDA_RESUME:
		evict_progress(op, evict_step_name(step), detail);
		evict_step_gpu(op, step == STEP_CUDA_SUSPEND);
		return;
	case STEP_CRIU_DUMP:
		evict_progress(op, evict_step_name(step), detail);
		if (m->proc == NULL) {
			evict_step_end(op, false, "the model has no process");
			return;
		}
		evict_remove_link_remap();
		free(op->images);
		op->images = criu_images_dir(m->sup->conf, m->name);
		criu_dump(m->sup, m->proc->pid, op->images, evict_criu_cb,
		    evict_pending_new(op));
		return;
	case STEP_CRIU_RESTORE:
		evict_progress(op, evict_step_name(step), m->images);
		criu_restore(m->sup, m->images != NULL ? m->images : "",
		    evict_criu_cb, evict_pending_new(op));
		return;
	case STEP_STOP:
		evict_progress(op, evict_step_name(step), detail);
		if (m->proc == NULL) {
			evict_step_end(op, true, NULL);
			return;
		}
		process_stop(m->proc, PROCESS_STOP_GRACE_MS, evict_stopped_cb,
		    op);
		return;
	case STEP_START:
		if (m->proc != NULL) {
			/* A wake from a state without a process never has one. */
			evict_progress(op, evict_step_name(step), detail);
			evict_step_end(op, false, "a process of the model is "
			    "still running");
			return;
		}
		if ((p = process_start(m, err, sizeof(err))) == NULL) {
			evict_progress(op, evict_step_name(step), NULL);
			evict_step_end(op, false, err);
			return;
		}
		m->proc = p;
		m->generation++;
		m->starts++;
		model_set_pstate(m, MODEL_STARTING);
		snprintf(detail, sizeof(detail), "pid %d", (int)p->pid);
		evict_progress(op, evict_step_name(step), detail);
		timeout = (int64_t)config_model_startup_timeout(m->sup->conf,
		    m->cfg) * 1000;
		op->health = health_wait(m->sup->base, p->port, timeout,
		    evict_health_cb, op);
		return;
	case STEP_HEALTH:
		evict_progress(op, evict_step_name(step), detail);
		if (m->proc == NULL) {
			evict_step_end(op, false, "the model has no process");
			return;
		}
		op->health = health_wait(m->sup->base, m->proc->port,
		    op->health_timeout_ms > 0 ? op->health_timeout_ms :
		    EVICT_HEALTH_TIMEOUT_MS, evict_health_cb, op);
		return;
	case STEP__COUNT:
		break;
	}
	evict_step_end(op, false, "unknown step");
}

/* Replace what is left of the plan by one step. */
static void
evict_replan(struct evict_op *op, enum evict_step step)
{
	op->plan.steps[0] = step;
	op->plan.n = 1;
	op->idx = 0;
}

static void
evict_step_failed(struct evict_op *op, enum evict_step step,
    const char *why)
{
	struct model	*m = op->m;
	const char	*phase = evict_step_name(step);

	if (step == STEP_RESET_PREFIX_CACHE) {
		log_warnx("reset_prefix_cache failed, going on model=%s "
		    "reason=\"%s\"", m->name, why);
		op->idx++;
		evict_schedule(op);
		return;
	}
	switch (op->kind) {
	case EVICT_SLEEP:
		if (op->result != EVICT_ESCALATED) {
			op->result = EVICT_ESCALATED;
			evict_set_reason(op, "%s failed: %s", phase, why);
			log_warnx("eviction step failed, escalating to stop "
			    "model=%s phase=%s reason=\"%s\"", m->name, phase,
			    why);
			evict_progress(op, "escalate", op->reason);
		}
		evict_replan(op, STEP_STOP);
		break;
	case EVICT_WAKE:
		if (step == STEP_CRIU_RESTORE) {
			op->result = EVICT_ESCALATED;
			evict_set_reason(op, "%s failed, cold start instead: %s",
			    phase, why);
			log_warnx("restore failed, starting the model afresh "
			    "model=%s reason=\"%s\"", m->name, why);
			free(m->images);
			m->images = NULL;
			evict_replan(op, STEP_START);
			break;
		}
		op->failing = true;
		op->result = EVICT_FAILED;
		if (op->reason == NULL)
			evict_set_reason(op, "%s failed: %s", phase, why);
		if (m->proc != NULL)
			evict_replan(op, STEP_STOP);
		else
			op->idx = op->plan.n;
		break;
	case EVICT_STOP:
		op->idx++;
		break;
	}
	evict_schedule(op);
}

static void
evict_step_end(struct evict_op *op, bool ok, const char *why)
{
	struct model	*m = op->m;
	enum evict_step	 step = op->plan.steps[op->idx];
	int64_t		 ms = clock_ms() - op->step_ms;
	struct evict_report *r = &op->report;

	op->in_step = false;
	model_phase_record(m, step, ms);
	if (r->n_phases < EVICT_MAX_PHASES) {
		r->phases[r->n_phases].step = step;
		r->phases[r->n_phases].ms = ms;
		r->phases[r->n_phases].ok = ok;
		r->n_phases++;
	}
	log_info("phase done model=%s op=%s phase=%s ok=%d ms=%lld%s%s%s",
	    m->name, evict_kind_name(op->kind), evict_step_name(step), ok,
	    (long long)ms, ok ? "" : " reason=\"", ok ? "" : why,
	    ok ? "" : "\"");
	if (!ok) {
		evict_step_failed(op, step, why != NULL ? why : "failed");
		return;
	}
	op->idx++;
	evict_schedule(op);
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
	return (evict_begin(op, done, progress, arg));
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

static void
evict_start_logged_cb(struct process *p, void *arg)
{
	struct evict_op	*op = arg;
	char		*why;

	op->waiting_log = false;
	free(op->log);
	op->log = modellog_tail(op->m->sup, op->m->name, 10, 2048);
	if (op->log != NULL)
		body_text_clean(op->log);
	xasprintf(&why, "the model process %s%s",
	    p->exit_reason != NULL ? p->exit_reason : "exited",
	    op->plan.steps[op->idx] == STEP_START ? " while starting" : "");
	evict_step_end(op, false, why);
	free(why);
}

void
evict_process_exited(struct model *m)
{
	struct evict_op	*op = m->op;
	enum evict_step	 step;
	char		 why[300];

	if (op == NULL || !op->in_step || op->waiting_log)
		return;
	step = op->plan.steps[op->idx];
	switch (step) {
	case STEP_START:
	case STEP_HEALTH:
		health_cancel(op->health);
		op->health = NULL;
		op->waiting_log = true;
		process_wait_log(m->proc, evict_start_logged_cb, op);
		return;
	case STEP_CRIU_DUMP:
	case STEP_STOP:
		return;		/* expected */
	default:
		httpc_cancel(op->call);
		op->call = NULL;
		if (op->pending != NULL) {
			op->pending->op = NULL;
			op->pending = NULL;
		}
		snprintf(why, sizeof(why), "the model process %s",
		    m->proc->exit_reason != NULL ? m->proc->exit_reason :
		    "exited");
		evict_step_end(op, false, why);
		return;
	}
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
