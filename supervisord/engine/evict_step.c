/*
 * evict_step.c -- the steps of evictions and wakes: each one an HTTP call
 * to the model, a call into the gpu or criu module, a start or a stop;
 * timing and reporting each, and what a failed step turns the rest of the
 * plan into (escalation to stop for a sleep, stop-then-fail for a wake).
 * Also what happens when the model's process dies during a step.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/criu/criu.h"
#include "evict_int.h"

static void
evict_http_cb(const struct httpc_result *r, void *arg)
{
	struct evict_op	*op = arg;
	struct process	*p = op->m->proc;
	char		 why[512];

	op->call = NULL;
	if (r->status >= 200 && r->status < 300) {
		evict_step_end(op, true, NULL);
		return;
	}
	if (p != NULL && p->kill_reason != NULL)	/* liveness.c killed it */
		snprintf(why, sizeof(why), "the model was %s", p->kill_reason);
	else if (r->status != 0)
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

/*
 * "is_sleeping": true or false in vLLM's answer; -1 when it is not there.
 * The body comes from the model process: read, never trusted further.
 */
int
evict_parse_is_sleeping(const char *body)
{
	const char	*p;

	if (body == NULL || (p = strstr(body, "\"is_sleeping\"")) == NULL)
		return (-1);
	p += strlen("\"is_sleeping\"");
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p++ != ':')
		return (-1);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (strncmp(p, "true", 4) == 0)
		return (1);
	if (strncmp(p, "false", 5) == 0)
		return (0);
	return (-1);
}

/* A process found on the model's port: awake, or asleep how? */
static void
evict_probe_cb(const struct httpc_result *r, void *arg)
{
	struct evict_op	*op = arg;
	struct model	*m = op->m;
	struct eviction	 ev = model_eviction(m);
	char		 why[512], full[700], buf[64];
	int		 sleeping;

	op->call = NULL;
	sleeping = r->status == 200 ? evict_parse_is_sleeping(r->body) : -1;
	if (sleeping == 0) {
		op->adopt_state = MODEL_RUNNING;
		evict_step_end(op, true, NULL);
		return;
	}
	if (sleeping == 1 && ev.process == PROCESS_KEEP_RUNNING &&
	    (ev.weights == WEIGHTS_OFFLOAD || ev.weights == WEIGHTS_DISCARD)) {
		m->sleeping = ev;
		op->adopt_state = MODEL_SLEEPING;
		evict_step_end(op, true, NULL);
		return;
	}
	if (sleeping == 1)
		snprintf(why, sizeof(why), "it is asleep, and asleep with %s "
		    "it would not be", eviction_format(&ev, buf, sizeof(buf)));
	else if (r->status != 0)
		snprintf(why, sizeof(why), "GET /is_sleeping answered %d",
		    r->status);
	else
		snprintf(why, sizeof(why), "GET /is_sleeping: %s", r->error);
	snprintf(full, sizeof(full), "found serving its port with no journal "
	    "to say its state, and %s", why);
	evict_step_end(op, false, full);
}

static void
evict_health_cb(int ok, const char *reason, void *arg)
{
	struct evict_op	*op = arg;
	struct model	*m = op->m;

	op->health = NULL;
	if (ok && op->adopt_probe && m->proc != NULL) {
		op->call = httpc_request(m->sup->base, m->proc->port, "GET",
		    "/is_sleeping", NULL, EVICT_HEALTH_TIMEOUT_MS,
		    evict_probe_cb, op);
		return;
	}
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
evict_gpu_cb(struct gpu_result *r, void *arg)
{
	struct evict_pending	*pp = arg;
	struct evict_op		*op = pp->op;
	struct model		*m;
	char			 detail[320];

	free(pp);
	if (op == NULL)
		return;
	op->pending = NULL;
	m = op->m;
	gpu_refresh(m->sup);
	if (op->plan.steps[op->idx] == STEP_CUDA_SUSPEND) {
		if (r->ok) {
			gpu_saved_free(m->gpu_saved);
			m->gpu_saved = r->saved;
			r->saved = NULL;
		}
	} else {
		gpu_saved_free(m->gpu_saved);
		m->gpu_saved = NULL;
		op->cuda_failed = r->failed_state;
		if (r->ok && r->moved) {
			m->gpus_moved = r->gpus;
			op->report.moved = true;
			op->report.gpus = r->gpus;
			snprintf(detail, sizeof(detail), "restored onto other "
			    "GPUs: %s", r->detail != NULL ? r->detail : "");
			evict_progress(op, "cuda_resume", detail);
		} else if (r->ok && r->gpus != 0)
			op->report.gpus = r->gpus;
	}
	evict_step_end(op, r->ok, r->reason);
}

static void
evict_criu_progress(const char *detail, void *arg)
{
	struct evict_pending	*pp = arg;

	if (pp->op != NULL)
		evict_progress(pp->op, evict_step_name(
		    pp->op->plan.steps[pp->op->idx]), detail);
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
		p->log_file_mode = true;
		m->proc = p;
		m->generation++;
	}
	/* CRIU killed the tree after dumping it: wait until all is gone. */
	if (ok && op->plan.steps[op->idx] == STEP_CRIU_DUMP &&
	    m->proc != NULL) {
		process_stop(m->proc, 0, evict_stopped_cb, op);
		return;
	}
	evict_step_end(op, ok != 0, reason);
}

static void
evict_store_progress(const char *detail, void *arg)
{
	struct evict_pending	*pp = arg;

	if (pp->op != NULL)
		evict_progress(pp->op, evict_step_name(
		    pp->op->plan.steps[pp->op->idx]), detail);
}

/* An upload or a download is over: the model remembers where, or why. */
static void
evict_store_cb(const struct store_result *r, void *arg)
{
	struct evict_pending	*pp = arg;
	struct evict_op		*op = pp->op;
	struct model		*m;

	free(pp);
	if (op == NULL)
		return;
	op->pending = NULL;
	m = op->m;
	if (r->ok && r->skipped) {
		evict_step_skip(op);
		return;
	}
	free(m->store_error);
	m->store_error = NULL;
	if (r->ok) {
		free(m->store_url);
		m->store_url = r->url != NULL ? xstrdup(r->url) : NULL;
		/* Downloaded: each file was hashed as it was written. */
		if (op->plan.steps[op->idx] == STEP_DOWNLOAD)
			op->images_checked = true;
		if (op->plan.steps[op->idx] == STEP_DOWNLOAD &&
		    r->has_eviction)
			evict_replan_restore(op, &r->eviction);
	} else
		m->store_error = body_text_dup(r->reason);
	evict_step_end(op, r->ok, r->reason);
}

static void
evict_step_store(struct evict_op *op, enum evict_step step)
{
	struct model		*m = op->m;
	struct evict_pending	*pp;
	char			*url;

	if (step == STEP_UPLOAD) {
		if (op->images == NULL) {
			evict_progress(op, evict_step_name(step), NULL);
			evict_step_end(op, false, "no images to upload");
			return;
		}
		url = store_model_url(m->sup->conf, m->name);
		evict_progress(op, evict_step_name(step), url);
		free(url);
		pp = evict_pending_new(op);
		pp->job = store_upload(m, op->images, evict_store_cb,
		    evict_store_progress, pp);
		return;
	}
	/* A download says so only when there is one to do. */
	if (m->images == NULL) {
		evict_step_skip(op);
		return;
	}
	pp = evict_pending_new(op);
	pp->job = store_download(m, m->images, evict_store_cb,
	    evict_store_progress, pp);
}

static void
evict_step_gpu(struct evict_op *op, bool suspend)
{
	struct model	*m = op->m;
	pid_t		 pids[GPU_MAX_PROCS];
	size_t		 n = 0;

	if (m->proc == NULL) {
		evict_step_end(op, false, "the model has no running process");
		return;
	}
	if (!m->proc->exited)
		n = process_members(m->proc, pids, GPU_MAX_PROCS);
	if (suspend)
		gpu_suspend(m, pids, n, evict_gpu_cb, evict_pending_new(op));
	else
		gpu_resume(m, pids, n, evict_gpu_cb, evict_pending_new(op));
}

void
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
	op->step_us = clock_us();
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
		free(op->images);
		op->images = model_path_images(m->sup->conf, m->name);
		criu_dump(m, &op->eviction, evict_criu_cb, evict_criu_progress,
		    evict_pending_new(op));
		return;
	case STEP_CRIU_RESTORE:
		evict_progress(op, evict_step_name(step), m->images);
		criu_restore(m, m->images != NULL ? m->images : "",
		    op->images_checked, evict_criu_cb, evict_criu_progress,
		    evict_pending_new(op));
		return;
	case STEP_UPLOAD:
	case STEP_DOWNLOAD:
		evict_step_store(op, step);
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
void
evict_replan(struct evict_op *op, enum evict_step step)
{
	op->plan.steps[0] = step;
	op->plan.n = 1;
	op->idx = 0;
}

/*
 * The checkpoint is made and the GPU freed: a failed upload does not undo
 * that. The images stay where they are; status and the log say why.
 */
static void
evict_upload_failed(struct evict_op *op, const char *why)
{
	struct model	*m = op->m;
	char		*msg;

	evict_set_reason(op, "%s failed, the images stay in place: %s",
	    evict_step_name(STEP_UPLOAD), why);
	xasprintf(&msg, "the upload of the checkpoint in %s to the object "
	    "store failed: %s", op->images != NULL ? op->images : "?", why);
	model_set_error(m, msg);
	log_warnx("upload failed, the images stay in place model=%s "
	    "images=%s reason=\"%s\"", m->name, op->images != NULL ?
	    op->images : "?", why);
	free(msg);
	op->idx++;
	evict_schedule(op);
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
		if (step == STEP_UPLOAD) {
			evict_upload_failed(op, why);
			return;
		}
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
		if (step == STEP_CUDA_RESUME && op->cuda_failed &&
		    m->cfg != NULL) {
			/* Never serve it: stop it and start it afresh. */
			op->result = EVICT_ESCALATED;
			evict_set_reason(op, "%s found a process in the CUDA "
			    "FAILED state, so the model was stopped and started "
			    "afresh: %s", phase, why);
			log_warnx("CUDA FAILED state, restarting the model "
			    "model=%s reason=\"%s\"", m->name, why);
			evict_progress(op, "restart", op->reason);
			op->plan.steps[0] = STEP_STOP;
			op->plan.steps[1] = STEP_START;
			op->plan.n = 2;
			op->idx = 0;
			break;
		}
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

void
evict_step_skip(struct evict_op *op)
{
	op->in_step = false;
	op->idx++;
	evict_schedule(op);
}

void
evict_step_end(struct evict_op *op, bool ok, const char *why)
{
	struct model	*m = op->m;
	enum evict_step	 step = op->plan.steps[op->idx];
	int64_t		 ms = clock_ms() - op->step_ms;
	struct evict_report *r = &op->report;

	op->in_step = false;
	m->step_us += (uint64_t)(clock_us() - op->step_us);
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
		httpc_cancel(op->call);		/* an adopt's /is_sleeping */
		op->call = NULL;
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
