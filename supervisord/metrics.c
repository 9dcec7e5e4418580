/*
 * metrics.c -- the supervisor's own metrics in Prometheus text format, for
 * the metrics call (the proxy serves them on /metrics beside its own):
 * model states, starts, restarts, crashes, escalations, the time of every
 * eviction and wake phase, peers, journal writes and reloads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "supervisor.h"
#include "xmalloc.h"

struct mbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void __attribute__((format(printf, 2, 3)))
mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n;
		b->p = xrealloc(b->p, b->cap);
	}
}

/* A label value with \, " and newline escaped. */
static const char *
metrics_label(const char *s, char *buf, size_t len)
{
	size_t	o = 0;

	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			buf[o++] = '\\';
			buf[o++] = *s;
		} else if (*s == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return (buf);
}

static void
metrics_head(struct mbuf *b, const char *name, const char *type,
    const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum metrics_field {
	MF_STARTS, MF_RESTARTS, MF_CRASHES, MF_CRASH_LOOP, MF_ESCALATIONS,
	MF_WAKE_FAILURES, MF_IN_FLIGHT, MF_QUEUED
};

static uint64_t
metrics_value(const struct model *m, enum metrics_field f)
{
	switch (f) {
	case MF_STARTS:
		return (m->starts);
	case MF_RESTARTS:
		return (m->restarts);
	case MF_CRASHES:
		return (m->crashes);
	case MF_CRASH_LOOP:
		return (m->crash_loop ? 1 : 0);
	case MF_ESCALATIONS:
		return (m->escalations);
	case MF_WAKE_FAILURES:
		return (m->wake_failures);
	case MF_IN_FLIGHT:
		return (m->in_flight);
	case MF_QUEUED:
		return (m->queued);
	}
	return (0);
}

/* One line per model of a per-model value. */
static void
metrics_per_model(struct mbuf *b, struct supervisor *sup, const char *name,
    const char *type, const char *help, enum metrics_field f)
{
	struct model	*m;
	char		 l[512];

	metrics_head(b, name, type, help);
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		mbuf_printf(b, "%s{model=\"%s\"} %llu\n", name,
		    metrics_label(m->name, l, sizeof(l)),
		    (unsigned long long)metrics_value(m, f));
	}
}

char *
metrics_text(struct supervisor *sup)
{
	struct mbuf	 b;
	struct model	*m;
	char		 l[512], *gpu;
	enum proto_model_state st;

	b.cap = 8192;
	b.len = 0;
	b.p = xmalloc(b.cap);
	b.p[0] = '\0';

	metrics_head(&b, "llmux_supervisor_model_state", "gauge",
	    "1 for the state each model is in, 0 for the others.");
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		st = model_published_state(m);
		metrics_label(m->name, l, sizeof(l));
		for (int s = 0; s < PROTO_MS__COUNT; s++)
			mbuf_printf(&b, "llmux_supervisor_model_state{model="
			    "\"%s\",state=\"%s\"} %d\n", l,
			    proto_model_state_name((enum proto_model_state)s),
			    (int)st == s);
	}
	metrics_per_model(&b, sup, "llmux_supervisor_model_starts_total",
	    "counter", "Model processes started.", MF_STARTS);
	metrics_per_model(&b, sup, "llmux_supervisor_model_restarts_total",
	    "counter", "Automatic restarts after a crash.", MF_RESTARTS);
	metrics_per_model(&b, sup, "llmux_supervisor_model_crashes_total",
	    "counter", "Model processes that exited unasked.", MF_CRASHES);
	metrics_per_model(&b, sup, "llmux_supervisor_model_crash_loop",
	    "gauge", "1 when restarts stopped after repeated crashes.",
	    MF_CRASH_LOOP);
	metrics_per_model(&b, sup, "llmux_supervisor_model_escalations_total",
	    "counter", "Evictions that failed and escalated to stop.",
	    MF_ESCALATIONS);
	metrics_per_model(&b, sup,
	    "llmux_supervisor_model_wake_failures_total", "counter",
	    "Wakes that failed.", MF_WAKE_FAILURES);
	metrics_per_model(&b, sup, "llmux_supervisor_model_in_flight", "gauge",
	    "Requests in flight, as the proxy reports them.", MF_IN_FLIGHT);
	metrics_per_model(&b, sup, "llmux_supervisor_model_queue_depth",
	    "gauge", "Requests queued, as the proxy reports them.", MF_QUEUED);

	metrics_head(&b, "llmux_supervisor_phase_seconds", "summary",
	    "Time spent in each eviction and wake phase.");
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		metrics_label(m->name, l, sizeof(l));
		for (int s = 0; s < STEP__COUNT; s++) {
			const struct phase_stat *ps = &m->phases[s];

			if (ps->count == 0)
				continue;
			mbuf_printf(&b, "llmux_supervisor_phase_seconds_sum"
			    "{model=\"%s\",phase=\"%s\"} %.3f\n", l,
			    evict_step_name((enum evict_step)s),
			    (double)ps->total_ms / 1000.0);
			mbuf_printf(&b, "llmux_supervisor_phase_seconds_count"
			    "{model=\"%s\",phase=\"%s\"} %llu\n", l,
			    evict_step_name((enum evict_step)s),
			    (unsigned long long)ps->count);
		}
	}
	metrics_head(&b, "llmux_supervisor_phase_last_seconds", "gauge",
	    "Duration of the last run of each phase.");
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		metrics_label(m->name, l, sizeof(l));
		for (int s = 0; s < STEP__COUNT; s++)
			if (m->phases[s].count > 0)
				mbuf_printf(&b, "llmux_supervisor_phase_last_"
				    "seconds{model=\"%s\",phase=\"%s\"} %.3f\n",
				    l, evict_step_name((enum evict_step)s),
				    (double)m->phases[s].last_ms / 1000.0);
	}

	metrics_head(&b, "llmux_supervisor_peers", "gauge",
	    "Connected peers by role.");
	mbuf_printf(&b, "llmux_supervisor_peers{role=\"proxy\"} %zu\n",
	    server_count_role(sup, PROTO_ROLE_PROXY));
	mbuf_printf(&b, "llmux_supervisor_peers{role=\"admin\"} %zu\n",
	    server_count_role(sup, PROTO_ROLE_ADMIN));
	metrics_head(&b, "llmux_supervisor_journal_writes_total", "counter",
	    "State journal writes.");
	mbuf_printf(&b, "llmux_supervisor_journal_writes_total %llu\n",
	    (unsigned long long)sup->journal_writes);
	metrics_head(&b, "llmux_supervisor_journal_failures", "gauge",
	    "State journal writes failed in a row.");
	mbuf_printf(&b, "llmux_supervisor_journal_failures %llu\n",
	    (unsigned long long)sup->journal_failures);
	metrics_head(&b, "llmux_supervisor_reloads_total", "counter",
	    "Configuration reloads, by result.");
	mbuf_printf(&b, "llmux_supervisor_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)sup->reloads);
	mbuf_printf(&b, "llmux_supervisor_reloads_total{result=\"invalid\"} "
	    "%llu\n", (unsigned long long)sup->reload_failures);
	metrics_head(&b, "llmux_supervisor_config_generation", "gauge",
	    "Bumps on every reload.");
	mbuf_printf(&b, "llmux_supervisor_config_generation %llu\n",
	    (unsigned long long)sup->config_generation);
	metrics_head(&b, "llmux_supervisor_uptime_seconds", "gauge",
	    "Seconds since the supervisor started.");
	mbuf_printf(&b, "llmux_supervisor_uptime_seconds %lld\n",
	    (long long)((clock_ms() - sup->started_ms) / 1000));
	gpu = gpu_metrics_text(sup);
	mbuf_printf(&b, "%s", gpu);
	free(gpu);
	return (b.p);
}
