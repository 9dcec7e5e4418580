/*
 * switcher_status.c -- what the switcher tells status, metrics and the
 * proxy: each model's state, the switches in progress, the mode and pin,
 * llmux 0.7's state string and the cost estimates.
 */
#include <stdio.h>
#include <string.h>

#include "switcher_int.h"

size_t
switcher_n_models(const struct switcher *sw)
{
	return (sw->n);
}

int
switcher_model_index(const struct switcher *sw, const char *name)
{
	for (size_t i = 0; i < sw->n; i++) {
		if (strcmp(sw->m[i].cfg->name, name) == 0)
			return ((int)i);
	}
	return (-1);
}

const char *
switcher_model_name(const struct switcher *sw, int i)
{
	if (i < 0 || (size_t)i >= sw->n)
		return (NULL);
	return (sw->m[i].cfg->name);
}

enum switcher_mstate
switcher_model_state(const struct switcher *sw, int i)
{
	return (sw->m[i].state);
}

bool
switcher_admits(const struct switcher *sw, int i)
{
	const struct sw_model	*m;

	if (i < 0 || (size_t)i >= sw->n)
		return (false);
	if (sw->mode == SWITCHER_AUTO || i == sw->pinned)
		return (true);
	m = &sw->m[i];
	return (m->state == SWM_ACTIVE || m->state == SWM_WAKING);
}

void
switcher_model_status(const struct switcher *sw, int i,
    struct switcher_model_status *st)
{
	const struct sw_model	*m = &sw->m[i];

	memset(st, 0, sizeof(*st));
	st->name = m->cfg->name;
	st->state = m->state;
	st->eviction = m->eviction;
	st->slept_with = m->slept_with;
	st->gpus = m->gpus;
	st->fraction = m->fraction;
	st->held = switcher_held(sw, i);
	st->queued = m->queued;
	st->in_flight = m->in_flight;
	st->active_since_ms = m->active_since_ms;
	st->last_used_ms = m->last_used_ms;
	st->backoff_until_ms = m->backoff_until_ms;
	st->failures = m->failures;
	st->failures_total = m->failures_total;
	st->last_error = m->last_error;
	st->pinned = i == sw->pinned;
	st->admitted = switcher_admits(sw, i);
}

void
switcher_switch_fill(const struct sw_switch *s,
    struct switcher_switch_status *out)
{
	memset(out, 0, sizeof(*out));
	out->target = s->target;
	out->from = s->from;
	out->victims = s->victims;
	out->gpus = s->gpus;
	out->phase = s->phase;
	out->start_ms = s->start_ms;
	out->phase_start_ms = s->phase_ms;
	out->by_operator = s->by_operator;
	out->warmup = s->warmup;
}

size_t
switcher_switches(const struct switcher *sw, struct switcher_switch_status *out,
    size_t max)
{
	size_t	n = 0;

	for (size_t i = 0; i < sw->n; i++) {
		const struct sw_switch *s = &sw->sw[i];

		if (!s->used)
			continue;
		if (n < max)
			switcher_switch_fill(s, &out[n]);
		n++;
	}
	return (n);
}

enum switcher_mode
switcher_mode(const struct switcher *sw)
{
	return (sw->mode);
}

int
switcher_pinned(const struct switcher *sw)
{
	return (sw->pinned);
}

bool
switcher_sleep_pending(const struct switcher *sw, int i)
{
	return (i >= 0 && (size_t)i < sw->n &&
	    (sw->sleep_pending & SW_BIT(i)) != 0);
}

/* The rule of switcher_run_ttl (switcher_step.c), read without acting. */
int64_t
switcher_ttl_remaining_ms(const struct switcher *sw, int i, int64_t now)
{
	const struct sw_model	*m;
	int64_t			 idle, left;

	if (i < 0 || (size_t)i >= sw->n)
		return (-1);
	m = &sw->m[i];
	if (m->ttl_secs == 0 || m->state != SWM_ACTIVE || m->sw >= 0 ||
	    i == sw->pinned || m->queued > 0 || m->in_flight > 0 ||
	    !sw->proxy_up)
		return (-1);
	idle = m->last_used_ms >= m->active_since_ms ? m->last_used_ms :
	    m->active_since_ms;
	left = idle + (int64_t)m->ttl_secs * 1000 - now;
	return (left > 0 ? left : 0);
}

uint64_t
switcher_active(const struct switcher *sw)
{
	uint64_t	mask = 0;

	for (size_t i = 0; i < sw->n; i++) {
		if (sw->m[i].state == SWM_ACTIVE)
			mask |= SW_BIT(i);
	}
	return (mask);
}

/*
 * llmux 0.7's state string. With one switch or one active model (always so
 * when every model fills the same GPU) it is exactly llmux 0.7's; with
 * several, the names are joined by commas.
 */
const char *
switcher_state_string(const struct switcher *sw, char *buf, size_t len)
{
	size_t	off = 0;
	bool	first = true;

	if (len == 0)
		return (buf);
	buf[0] = '\0';
	for (size_t i = 0; i < sw->n; i++) {
		const struct sw_switch *s = &sw->sw[i];

		if (!s->used || s->target < 0 || s->warmup)
			continue;
		off += (size_t)snprintf(buf + (off < len ? off : len),
		    off < len ? len - off : 0, "%sswitching:%s->%s",
		    first ? "" : ",", s->from >= 0 ?
		    sw->m[s->from].cfg->name : "none",
		    sw->m[s->target].cfg->name);
		first = false;
	}
	if (!first)
		return (buf);
	for (size_t i = 0; i < sw->n; i++) {
		if (sw->m[i].state != SWM_ACTIVE)
			continue;
		off += (size_t)snprintf(buf + (off < len ? off : len),
		    off < len ? len - off : 0, "%s%s", first ? "active:" : ",",
		    sw->m[i].cfg->name);
		first = false;
	}
	if (first)
		snprintf(buf, len, "idle");
	return (buf);
}

const struct cost_table *
switcher_costs(const struct switcher *sw)
{
	return (&sw->costs);
}

const char *
switcher_policy_name(const struct switcher *sw)
{
	return (policy_name(sw->policy));
}

unsigned
switcher_n_gpus(const struct switcher *sw)
{
	return (sw->n_gpus);
}
