/*
 * stats.c -- the switches that ended, kept for the llmux_switch_* metrics
 * (control/metrics.c prints them): per direction (from -> to, "" for
 * nothing), the switches and a histogram of each phase and of the total;
 * per target, the failures. switching_ops.c records each switch record
 * the switcher hands over.
 */
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/switching/switching.h"

const double stats_buckets[STATS_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
	120, 300, 600
};

static void
stats_hist_add(struct stats_hist *h, int64_t ms)
{
	double	sec = (double)(ms < 0 ? 0 : ms) / 1000.0;

	for (size_t i = 0; i < STATS_NBUCKETS; i++) {
		if (sec <= stats_buckets[i]) {
			h->le[i]++;
			break;
		}
	}
	h->count++;
	h->sum_ms += ms < 0 ? 0 : ms;
}

void
stats_record(struct supervisor *sup, const char *from, const char *to,
    const struct switch_record *r)
{
	struct switch_stats	*st;
	struct switch_dir	*d = NULL;
	struct switch_fail	*f = NULL;

	if (sup->switch_stats == NULL)
		sup->switch_stats = xcalloc(1, sizeof(*sup->switch_stats));
	st = sup->switch_stats;
	if (!r->ok) {
		for (size_t i = 0; i < st->n_fails; i++) {
			if (strcmp(st->fails[i].to, to) == 0)
				f = &st->fails[i];
		}
		if (f == NULL) {
			st->fails = xreallocarray(st->fails, st->n_fails + 1,
			    sizeof(*st->fails));
			f = &st->fails[st->n_fails++];
			f->to = xstrdup(to);
			f->n = 0;
		}
		f->n++;
		return;
	}
	for (size_t i = 0; i < st->n_dirs; i++) {
		if (strcmp(st->dirs[i].from, from) == 0 &&
		    strcmp(st->dirs[i].to, to) == 0)
			d = &st->dirs[i];
	}
	if (d == NULL) {
		st->dirs = xreallocarray(st->dirs, st->n_dirs + 1,
		    sizeof(*st->dirs));
		d = &st->dirs[st->n_dirs++];
		memset(d, 0, sizeof(*d));
		d->from = xstrdup(from);
		d->to = xstrdup(to);
	}
	d->switches++;
	stats_hist_add(&d->phase[STATS_COOLDOWN], r->cooldown_ms);
	stats_hist_add(&d->phase[STATS_DRAIN], r->drain_ms);
	stats_hist_add(&d->phase[STATS_SLEEP], r->sleep_ms);
	stats_hist_add(&d->phase[STATS_WAKE], r->wake_ms);
	stats_hist_add(&d->total, r->total_ms);
}

void
stats_free(struct supervisor *sup)
{
	struct switch_stats	*st = sup->switch_stats;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n_dirs; i++) {
		free(st->dirs[i].from);
		free(st->dirs[i].to);
	}
	for (size_t i = 0; i < st->n_fails; i++)
		free(st->fails[i].to);
	free(st->dirs);
	free(st->fails);
	free(st);
	sup->switch_stats = NULL;
}
