/*
 * switching_events.c -- the switches as events of the stream
 * (server/events.c): a `switch` event when each phase begins (the
 * switcher's phase op), then one that says how it ended, `done` with the
 * time of each phase or `failed` with the reason (from its record). The
 * start-up warm-up is not a switch and is not told.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisord/base/base.h"
#include "supervisord/server/server.h"
#include "switching_int.h"

/* The phases as the stream names them (the switcher says "sleep"). */
const char *
switching_events_phase_name(enum switcher_phase p)
{
	switch (p) {
	case SWP_COOLDOWN:
		return ("cooldown");
	case SWP_DRAIN:
		return ("drain");
	case SWP_EVICT:
		return ("evict");
	case SWP_WAKE:
		return ("wake");
	case SWP_WARMUP:
		return ("warmup");
	case SWP_ABORT:
		return ("abort");
	}
	return ("?");
}

/* A model of the switcher by index, "" for none. */
static const char *
switching_events_name(struct supervisor *sup, int i)
{
	const char	*s = i >= 0 ? switcher_model_name(sup->switcher, i) : NULL;

	return (s != NULL ? s : "");
}

/* The victims of a switch, its main one first. */
static void
switching_events_victims(struct supervisor *sup, int from, uint64_t victims,
    struct body *b)
{
	size_t	n = 0;

	for (int i = 0; i < 64; i++)
		if (victims & ((uint64_t)1 << i))
			n++;
	body_str(b, "victims");
	body_array(b, n);
	if (from >= 0 && (victims & ((uint64_t)1 << from)))
		body_str(b, switching_events_name(sup, from));
	for (int i = 0; i < 64; i++)
		if ((victims & ((uint64_t)1 << i)) && i != from)
			body_str(b, switching_events_name(sup, i));
}

void
switching_events_phase(void *arg, const struct switcher_switch_status *st,
    int64_t prev_ms)
{
	struct supervisor	*sup = arg;
	const char		*from, *to;
	struct body		*b;

	if (sup->switcher == NULL)
		return;
	from = switching_events_name(sup, st->from);
	to = switching_events_name(sup, st->target);
	b = body_new();
	body_map(b, 7);
	body_kstr(b, "from", from);
	body_kstr(b, "to", to);
	body_kstr(b, "phase", switching_events_phase_name(st->phase));
	body_kuint(b, "elapsed_ms", st->phase_start_ms > st->start_ms ?
	    (uint64_t)(st->phase_start_ms - st->start_ms) : 0);
	body_kuint(b, "phase_ms", prev_ms > 0 ? (uint64_t)prev_ms : 0);
	body_kbool(b, "by_operator", st->by_operator);
	switching_events_victims(sup, st->from, st->victims, b);
	log_info("switch phase from=%s to=%s phase=%s elapsed_ms=%lld",
	    *from != '\0' ? from : "none", *to != '\0' ? to : "none",
	    switching_events_phase_name(st->phase),
	    (long long)(st->phase_start_ms - st->start_ms));
	events_emit(sup, "switch", *to != '\0' ? to : from, b);
}

void
switching_events_record(struct supervisor *sup, const struct switch_record *r)
{
	const char	*from, *to;
	struct body	*b;

	if (sup->switcher == NULL)
		return;
	from = switching_events_name(sup, r->from);
	to = switching_events_name(sup, r->to);
	b = body_new();
	body_map(b, r->ok ? 8 : 9);
	body_kstr(b, "from", from);
	body_kstr(b, "to", to);
	body_kstr(b, "phase", r->ok ? "done" : "failed");
	body_kuint(b, "elapsed_ms", (uint64_t)(r->total_ms > 0 ?
	    r->total_ms : 0));
	body_kuint(b, "total_ms", (uint64_t)(r->total_ms > 0 ?
	    r->total_ms : 0));
	body_str(b, "phases");
	body_map(b, 4);
	body_kuint(b, "cooldown", (uint64_t)(r->cooldown_ms > 0 ?
	    r->cooldown_ms : 0));
	body_kuint(b, "drain", (uint64_t)(r->drain_ms > 0 ? r->drain_ms : 0));
	body_kuint(b, "evict", (uint64_t)(r->sleep_ms > 0 ? r->sleep_ms : 0));
	body_kuint(b, "wake", (uint64_t)(r->wake_ms > 0 ? r->wake_ms : 0));
	body_kbool(b, "by_operator", r->by_operator);
	switching_events_victims(sup, r->from, r->victims, b);
	if (!r->ok)
		body_kstr(b, "reason", r->reason != NULL ? r->reason :
		    "unknown");
	events_emit(sup, "switch", *to != '\0' ? to : from, b);
}
