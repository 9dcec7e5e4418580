/*
 * metrics.c -- the supervisor's own metrics in Prometheus text format, for
 * the metrics call (the proxy serves them on /metrics beside its own):
 * the switches (llmux 0.7's llmux_switch_* names: each phase and the total
 * as histograms per target, switches per direction, failures, the active
 * models:
 * switching/stats.c records them), model states, starts, restarts,
 * crashes, escalations, the time of every eviction and wake phase, peers,
 * journal writes and reloads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "prom.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"
#include "supervisord/control/control.h"

/* The phases of a switch, as labels (enum stats_phase). */
static const char *metrics_phases[STATS__PHASES] = {
	"cooldown", "drain", "sleep", "wake"
};

static void	metrics_switches(struct strbuf *, struct supervisor *);

static void
metrics_head(struct strbuf *b, const char *name, const char *type,
    const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
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
metrics_per_model(struct strbuf *b, struct supervisor *sup, const char *name,
    const char *type, const char *help, enum metrics_field f)
{
	struct model	*m;
	char		 l[512];

	metrics_head(b, name, type, help);
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		strbuf_printf(b, "%s{model=\"%s\"} %llu\n", name,
		    prom_label(m->name, l, sizeof(l)),
		    (unsigned long long)metrics_value(m, f));
	}
}

char *
metrics_text(struct supervisor *sup)
{
	struct strbuf	 b;
	struct model	*m;
	char		 l[512], *gpu;
	enum proto_model_state st;

	memset(&b, 0, sizeof(b));

	metrics_switches(&b, sup);

	metrics_head(&b, "llmux_supervisor_model_state", "gauge",
	    "1 for the state each model is in, 0 for the others.");
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		st = model_published_state(m);
		prom_label(m->name, l, sizeof(l));
		for (int s = 0; s < PROTO_MS__COUNT; s++)
			strbuf_printf(&b, "llmux_supervisor_model_state{model="
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
		prom_label(m->name, l, sizeof(l));
		for (int s = 0; s < STEP__COUNT; s++) {
			const struct phase_stat *ps = &m->phases[s];

			if (ps->count == 0)
				continue;
			strbuf_printf(&b, "llmux_supervisor_phase_seconds_sum"
			    "{model=\"%s\",phase=\"%s\"} %.3f\n", l,
			    evict_step_name((enum evict_step)s),
			    (double)ps->total_ms / 1000.0);
			strbuf_printf(&b, "llmux_supervisor_phase_seconds_count"
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
		prom_label(m->name, l, sizeof(l));
		for (int s = 0; s < STEP__COUNT; s++)
			if (m->phases[s].count > 0)
				strbuf_printf(&b, "llmux_supervisor_phase_last_"
				    "seconds{model=\"%s\",phase=\"%s\"} %.3f\n",
				    l, evict_step_name((enum evict_step)s),
				    (double)m->phases[s].last_ms / 1000.0);
	}

	metrics_head(&b, "llmux_supervisor_peers", "gauge",
	    "Connected peers by role.");
	strbuf_printf(&b, "llmux_supervisor_peers{role=\"proxy\"} %zu\n",
	    server_count_role(sup, PROTO_ROLE_PROXY));
	strbuf_printf(&b, "llmux_supervisor_peers{role=\"admin\"} %zu\n",
	    server_count_role(sup, PROTO_ROLE_ADMIN));
	metrics_head(&b, "llmux_supervisor_journal_writes_total", "counter",
	    "State journal writes.");
	strbuf_printf(&b, "llmux_supervisor_journal_writes_total %llu\n",
	    (unsigned long long)sup->journal_writes);
	metrics_head(&b, "llmux_supervisor_journal_failures", "gauge",
	    "State journal writes failed in a row.");
	strbuf_printf(&b, "llmux_supervisor_journal_failures %llu\n",
	    (unsigned long long)sup->journal_failures);
	metrics_head(&b, "llmux_supervisor_reloads_total", "counter",
	    "Configuration reloads, by result.");
	strbuf_printf(&b, "llmux_supervisor_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)sup->reloads);
	strbuf_printf(&b, "llmux_supervisor_reloads_total{result=\"invalid\"} "
	    "%llu\n", (unsigned long long)sup->reload_failures);
	metrics_head(&b, "llmux_supervisor_config_generation", "gauge",
	    "Bumps on every reload.");
	strbuf_printf(&b, "llmux_supervisor_config_generation %llu\n",
	    (unsigned long long)sup->config_generation);
	metrics_head(&b, "llmux_supervisor_uptime_seconds", "gauge",
	    "Seconds since the supervisor started.");
	strbuf_printf(&b, "llmux_supervisor_uptime_seconds %lld\n",
	    (long long)((clock_ms() - sup->started_ms) / 1000));
	gpu = gpu_metrics_text(sup);
	strbuf_printf(&b, "%s", gpu);
	free(gpu);
	return (b.p != NULL ? b.p : xstrdup(""));
}

/* ---- switches ------------------------------------------------------------ */

static void
metrics_hist_print(struct strbuf *b, const char *name, const char *labels,
    const struct stats_hist *h)
{
	uint64_t	cum = 0;

	for (size_t i = 0; i < STATS_NBUCKETS; i++) {
		cum += h->le[i];
		strbuf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
		    stats_buckets[i], (unsigned long long)cum);
	}
	strbuf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
	    (unsigned long long)h->count);
	strbuf_printf(b, "%s_sum{%s} %.3f\n", name, labels,
	    (double)h->sum_ms / 1000.0);
	strbuf_printf(b, "%s_count{%s} %llu\n", name, labels,
	    (unsigned long long)h->count);
}

/* Is dirs[i] the first direction into its target? */
static bool
metrics_first_to(const struct switch_stats *st, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(st->dirs[j].to, st->dirs[i].to) == 0)
			return (false);
	return (true);
}

/* The histograms of every direction into dirs[i]'s target, summed. */
static void
metrics_sum_to(const struct switch_stats *st, size_t i,
    struct stats_hist phase[STATS__PHASES], struct stats_hist *total)
{
	const struct switch_dir	*d;

	memset(phase, 0, sizeof(*phase) * STATS__PHASES);
	memset(total, 0, sizeof(*total));
	for (size_t j = i; j < st->n_dirs; j++) {
		d = &st->dirs[j];
		if (strcmp(d->to, st->dirs[i].to) != 0)
			continue;
		for (int p = 0; p <= STATS__PHASES; p++) {
			const struct stats_hist *from = p < STATS__PHASES ?
			    &d->phase[p] : &d->total;
			struct stats_hist *into = p < STATS__PHASES ?
			    &phase[p] : total;

			for (size_t k = 0; k < STATS_NBUCKETS; k++)
				into->le[k] += from->le[k];
			into->count += from->count;
			into->sum_ms += from->sum_ms;
		}
	}
}

/*
 * The histograms are labelled by the target alone: from x to would grow
 * with the square of the models. llmux_switches_total keeps from and to.
 */
static void
metrics_switches(struct strbuf *b, struct supervisor *sup)
{
	struct switch_stats	*st = sup->switch_stats;
	struct switch_dir	*d;
	struct stats_hist	 phase[STATS__PHASES], total;
	struct model		*m;
	char			 lf[512], lt[512], labels[1200];
	uint64_t		 active;

	metrics_head(b, "llmux_switch_phase_seconds", "histogram",
	    "Time of each phase of the switches that succeeded, by target.");
	for (size_t i = 0; st != NULL && i < st->n_dirs; i++) {
		if (!metrics_first_to(st, i))
			continue;
		metrics_sum_to(st, i, phase, &total);
		prom_label(st->dirs[i].to, lt, sizeof(lt));
		for (int p = 0; p < STATS__PHASES; p++) {
			snprintf(labels, sizeof(labels), "phase=\"%s\",to="
			    "\"%s\"", metrics_phases[p], lt);
			metrics_hist_print(b, "llmux_switch_phase_seconds",
			    labels, &phase[p]);
		}
	}
	metrics_head(b, "llmux_switch_total_seconds", "histogram",
	    "Total time of the switches that succeeded, by target.");
	for (size_t i = 0; st != NULL && i < st->n_dirs; i++) {
		if (!metrics_first_to(st, i))
			continue;
		metrics_sum_to(st, i, phase, &total);
		snprintf(labels, sizeof(labels), "to=\"%s\"",
		    prom_label(st->dirs[i].to, lt, sizeof(lt)));
		metrics_hist_print(b, "llmux_switch_total_seconds", labels,
		    &total);
	}
	metrics_head(b, "llmux_switches_total", "counter",
	    "Switches that succeeded (from \"\": a start from idle; to "
	    "\"\": a model put to sleep).");
	for (size_t i = 0; st != NULL && i < st->n_dirs; i++) {
		d = &st->dirs[i];
		strbuf_printf(b, "llmux_switches_total{from=\"%s\",to=\"%s\"} "
		    "%llu\n", prom_label(d->from, lf, sizeof(lf)),
		    prom_label(d->to, lt, sizeof(lt)),
		    (unsigned long long)d->switches);
	}
	metrics_head(b, "llmux_switch_failures_total", "counter",
	    "Switches that failed, by target.");
	for (size_t i = 0; st != NULL && i < st->n_fails; i++)
		strbuf_printf(b, "llmux_switch_failures_total{to=\"%s\"} %llu\n",
		    prom_label(st->fails[i].to, lt, sizeof(lt)),
		    (unsigned long long)st->fails[i].n);
	metrics_head(b, "llmux_active_model_info", "gauge",
	    "1 for each model that is active (ready to serve).");
	active = sup->switcher != NULL ? switcher_active(sup->switcher) : 0;
	TAILQ_FOREACH(m, &sup->models, entry) {
		int i = switching_index(sup, m);

		if (i >= 0 && (active & ((uint64_t)1 << i)))
			strbuf_printf(b, "llmux_active_model_info{model=\"%s\"} "
			    "1\n", prom_label(m->name, lt, sizeof(lt)));
	}
}
