/*
 * switcher_cmd.c -- the operator's commands: switch, pin, unpin, mode,
 * sleep, wake, eviction. Manual mode and pin follow llmux 0.7 (Rust):
 * manual mode stops automatic switching; pin enters manual mode and
 * switches to the pinned model; switch in manual mode moves the pin; unpin
 * and "mode auto" return to automatic switching.
 *
 * Arguments are checked at once (the answer is 0 or -1 with a cause); the
 * effect runs as a queued input like every other. An ordered switch waits
 * for its GPUs, takes precedence over what the policy wants, and cancels a
 * policy switch that has not yet gone past its cooldown.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#include "switcher_int.h"

/* Asleep: the same eviction again (no work) or deeper, to stop. */
static bool
switcher_sleep_deeper(const struct sw_model *m, const struct eviction *e)
{
	return (e->process == PROCESS_STOP || (e->weights ==
	    m->slept_with.weights && e->process == m->slept_with.process));
}

static int
switcher_cmd_check(struct switcher *sw, int model, char **cause)
{
	if (model < 0 || (size_t)model >= sw->n) {
		xasprintf(cause, "unknown model");
		return (-1);
	}
	return (0);
}

int
switcher_cmd_switch(struct switcher *sw, int model, int64_t now, char **cause)
{
	if (switcher_cmd_check(sw, model, cause) != 0)
		return (-1);
	switcher_post_simple(sw, SWE_CMD_SWITCH, model, now);
	return (0);
}

int
switcher_cmd_pin(struct switcher *sw, int model, int64_t now, char **cause)
{
	if (switcher_cmd_check(sw, model, cause) != 0)
		return (-1);
	switcher_post_simple(sw, SWE_CMD_PIN, model, now);
	return (0);
}

void
switcher_cmd_unpin(struct switcher *sw, int64_t now)
{
	switcher_post_simple(sw, SWE_CMD_UNPIN, -1, now);
}

void
switcher_cmd_mode(struct switcher *sw, enum switcher_mode mode, int64_t now)
{
	struct sw_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_CMD_MODE;
	ev.model = -1;
	ev.mode = mode;
	ev.now = now;
	switcher_post(sw, &ev);
}

int
switcher_cmd_sleep(struct switcher *sw, int model, const struct eviction *e,
    int64_t now, char **cause)
{
	struct sw_event	 ev;
	struct sw_model	*m;

	if (switcher_cmd_check(sw, model, cause) != 0)
		return (-1);
	m = &sw->m[model];
	if (model == sw->pinned) {
		xasprintf(cause, "model %s is pinned; unpin it first",
		    m->cfg->name);
		return (-1);
	}
	if (m->state == SWM_SLEEPING && m->sw < 0 && e != NULL &&
	    switcher_sleep_deeper(m, e))
		;
	else if (m->state != SWM_ACTIVE || m->sw >= 0) {
		xasprintf(cause, "model %s is not awake (%s)", m->cfg->name,
		    m->sw >= 0 ? "switching" : switcher_mstate_name(m->state));
		return (-1);
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_CMD_SLEEP;
	ev.model = model;
	ev.now = now;
	if (e != NULL) {
		ev.eviction = *e;
		ev.eviction_set = true;
	}
	switcher_post(sw, &ev);
	return (0);
}

int
switcher_cmd_wake(struct switcher *sw, int model, int64_t now, char **cause)
{
	if (switcher_cmd_check(sw, model, cause) != 0)
		return (-1);
	switcher_post_simple(sw, SWE_CMD_WAKE, model, now);
	return (0);
}

int
switcher_cmd_set_eviction(struct switcher *sw, int model, struct eviction e,
    int64_t now, char **cause)
{
	struct sw_event	ev;

	if (switcher_cmd_check(sw, model, cause) != 0)
		return (-1);
	if ((unsigned)e.weights >= WEIGHTS__COUNT ||
	    (unsigned)e.process >= PROCESS__COUNT) {
		xasprintf(cause, "invalid eviction");
		return (-1);
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = SWE_CMD_EVICTION;
	ev.model = model;
	ev.eviction = e;
	ev.now = now;
	switcher_post(sw, &ev);
	return (0);
}

/* Order a switch to model; a newer order replaces one not yet started. */
static void
switcher_order(struct switcher *sw, int model, enum sw_op_kind kind,
    enum switcher_mode prev_mode, int prev_pinned)
{
	if (sw->op.target >= 0 && sw->op.target != model) {
		char	*why;

		xasprintf(&why, "superseded by a switch to %s",
		    sw->m[model].cfg->name);
		sw->ops.failed(sw->arg, sw->op.target, why);
		free(why);
	}
	sw->op.target = model;
	sw->op.kind = kind;
	sw->op.prev_mode = prev_mode;
	sw->op.prev_pinned = prev_pinned;
}

void
switcher_apply_cmd(struct switcher *sw, struct sw_event *ev)
{
	enum switcher_mode	 prev_mode = sw->mode;
	int			 prev_pinned = sw->pinned;

	sw->dirty = true;
	switch (ev->type) {
	case SWE_CMD_SWITCH:
		if (sw->mode == SWITCHER_MANUAL)
			sw->pinned = ev->model;
		switcher_order(sw, ev->model, SW_OP_SWITCH, prev_mode,
		    prev_pinned);
		break;
	case SWE_CMD_PIN:
		sw->mode = SWITCHER_MANUAL;
		sw->pinned = ev->model;
		switcher_order(sw, ev->model, SW_OP_PIN, prev_mode,
		    prev_pinned);
		break;
	case SWE_CMD_UNPIN:
		sw->mode = SWITCHER_AUTO;
		sw->pinned = -1;
		break;
	case SWE_CMD_MODE:
		sw->mode = ev->mode;
		sw->pinned = -1;
		break;
	case SWE_CMD_SLEEP:
		sw->sleep_pending |= SW_BIT(ev->model);
		sw->sleep_with[ev->model] = ev->eviction_set ? ev->eviction :
		    sw->m[ev->model].eviction;
		break;
	case SWE_CMD_WAKE:
		switcher_order(sw, ev->model, SW_OP_WAKE, prev_mode,
		    prev_pinned);
		break;
	case SWE_CMD_EVICTION:
		sw->m[ev->model].eviction = ev->eviction;
		break;
	default:
		break;
	}
	if (!sw->params.quiet && ev->type != SWE_CMD_EVICTION)
		log_info("operator command mode=%s pinned=%s",
		    sw->mode == SWITCHER_AUTO ? "auto" : "manual",
		    sw->pinned >= 0 ? sw->m[sw->pinned].cfg->name : "none");
}

/* Cancel policy switches in their cooldown that hold any of gpus. */
static bool
switcher_preempt(struct switcher *sw, uint64_t gpus)
{
	bool	done = false;

	for (size_t i = 0; i < sw->n; i++) {
		struct sw_switch *s = &sw->sw[i];

		if (s->used && s->by_policy && s->phase == SWP_COOLDOWN &&
		    (s->gpus & gpus) != 0) {
			switcher_cancel(sw, s);
			done = true;
		}
	}
	return (done);
}

/* Start the operator's pending switch and sleeps when their GPUs allow. */
bool
switcher_run_ops(struct switcher *sw, int64_t now)
{
	struct sw_plan	 p;
	struct sw_model	*m;
	int		 t = sw->op.target, rc, idx;
	char		*why;

	/* Manual mode: demand for the pinned model wakes it. */
	if (t < 0 && sw->mode == SWITCHER_MANUAL && sw->pinned >= 0 &&
	    sw->proxy_up) {
		m = &sw->m[sw->pinned];
		if ((m->state == SWM_STOPPED || m->state == SWM_SLEEPING) &&
		    m->sw < 0 && m->queued > 0 && now >= m->backoff_until_ms) {
			sw->op.target = t = sw->pinned;
			sw->op.kind = SW_OP_SWITCH;
			sw->op.prev_mode = sw->mode;
			sw->op.prev_pinned = sw->pinned;
		}
	}

	if (t >= 0) {
		m = &sw->m[t];
		if (m->state == SWM_ACTIVE && m->sw < 0) {
			sw->op.target = -1;
			sw->ops.ready(sw->arg, t);
			return (true);
		}
		if (m->state == SWM_WAKING || m->state == SWM_WARMING) {
			/* It joins the switch under way. */
			sw->op.target = -1;
			return (true);
		}
		if (m->sw < 0 && (m->state == SWM_STOPPED ||
		    m->state == SWM_SLEEPING)) {
			rc = switcher_plan(sw, t, &p);
			if (rc == SW_PLAN_WAIT &&
			    switcher_preempt(sw, m->gpus | p.gpus))
				rc = switcher_plan(sw, t, &p);
			if (rc == SW_PLAN_OK) {
				idx = switcher_start_switch(sw, t, &p, true,
				    sw->op.kind, now);
				if (idx >= 0) {
					sw->sw[idx].prev_mode = sw->op.prev_mode;
					sw->sw[idx].prev_pinned =
					    sw->op.prev_pinned;
					sw->op.target = -1;
					return (true);
				}
			} else if (rc == SW_PLAN_NEVER) {
				xasprintf(&why, "no room for %s: the models "
				    "on its GPUs cannot be evicted (pinned?)",
				    m->cfg->name);
				log_warnx("operator switch refused model=%s "
				    "reason=\"%s\"", m->cfg->name, why);
				sw->op.target = -1;
				if (sw->op.kind == SW_OP_PIN) {
					sw->mode = sw->op.prev_mode;
					sw->pinned = sw->op.prev_pinned;
				}
				sw->ops.failed(sw->arg, t, why);
				free(why);
				return (true);
			}
		}
	}

	for (size_t i = 0; i < sw->n; i++) {
		if (!(sw->sleep_pending & SW_BIT(i)))
			continue;
		m = &sw->m[i];
		if ((m->state != SWM_ACTIVE && !(m->state == SWM_SLEEPING &&
		    switcher_sleep_deeper(m, &sw->sleep_with[i]))) ||
		    m->sw >= 0) {
			if (m->sw < 0) {
				sw->sleep_pending &= ~SW_BIT(i);
				if (!sw->params.quiet)
					log_info("operator sleep dropped, the "
					    "model is no longer awake model=%s "
					    "state=%s", m->cfg->name,
					    switcher_mstate_name(m->state));
			}
			continue;
		}
		if ((m->gpus & switcher_locked_gpus(sw)) != 0)
			continue;
		memset(&p, 0, sizeof(p));
		p.victims = SW_BIT(i);
		p.gpus = m->gpus;
		p.from = (int)i;
		idx = switcher_start_switch(sw, -1, &p, true, SW_OP_SWITCH,
		    now);
		if (idx < 0)
			continue;
		sw->sleep_pending &= ~SW_BIT(i);
		sw->sw[idx].sleep_eviction = sw->sleep_with[i];
		sw->sw[idx].sleep_eviction_set = true;
		return (true);
	}
	return (false);
}
