/*
 * evict_plan.c -- the plans of evictions and wakes: which steps, in which
 * order, for each weights x process combination and each state a model
 * can be woken from (the sequences of llmux 0.7 (Rust),
 * docs/reference-behaviour.md). Pure functions; evict.c and evict_step.c
 * run them.
 */
#include <string.h>

#include "supervisord/engine/engine.h"

static const char *evict_step_names[] = {
	"sleep", "discard", "nccl_suspend", "cuda_suspend", "criu_dump",
	"stop", "start", "criu_restore", "health", "cuda_resume",
	"nccl_resume", "wake_up", "reload_weights", "reset_prefix_cache",
	"upload", "download"
};


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
 * A kept process is health-checked last, as llmux 0.7's switcher does.
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

/*
 * With an object store: a sleep that dumps uploads the images after the
 * dump; a wake that restores first downloads them (when they are not
 * here, which the step finds out).
 */
void
evict_plan_store(struct evict_plan *p)
{
	if (p->n > 0 && p->steps[p->n - 1] == STEP_CRIU_DUMP) {
		evict_plan_add(p, STEP_UPLOAD);
		return;
	}
	if (p->n > 0 && p->steps[0] == STEP_CRIU_RESTORE &&
	    p->n < sizeof(p->steps) / sizeof(p->steps[0])) {
		memmove(p->steps + 1, p->steps, p->n * sizeof(p->steps[0]));
		p->steps[0] = STEP_DOWNLOAD;
		p->n++;
	}
}
