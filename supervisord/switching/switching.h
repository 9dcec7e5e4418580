/*
 * switching.h -- supervisord/switching/, the map of the switch path
 * outside the pure switcher (switcher/): making the switcher and feeding
 * it (switching.c), carrying out its operations on the engine and the
 * proxy (switching_ops.c; switching_int.h), the switches as events
 * (switching_events.c), the operator's orders that go through it
 * (order.c), what each proxy connection has said (proxies.c) and the
 * record of the switches that ended (stats.c).
 */
#ifndef LLMUX_SWITCHING_H
#define LLMUX_SWITCHING_H

#include "supervisord/core.h"
#include "supervisord/switcher/switcher.h"

struct switch_record;

/* ---- switching.c: the switcher driving the engine ---------------------- */

/*
 * Make the switcher from the config, tell it what the engine has (models
 * re-adopted, mode and pin from the journal, the proxy), and start it.
 */
void	 switching_init(struct supervisor *);
void	 switching_free(struct supervisor *);
/* The model's index in the switcher, -1 if it has none (yet). */
int	 switching_index(struct supervisor *, const struct model *);
struct model *switching_model(struct supervisor *, int);
/*
 * Inputs from a proxy connection: its demand for a model (the model's is
 * the sum over the proxies), its answer to a drain, its leaving (what it
 * said and the drains it owed are forgotten at once), and whether any
 * proxy is connected.
 */
void	 switching_demand(struct client *, struct model *, uint32_t queued,
	    uint32_t in_flight, uint32_t oldest_ms, uint64_t done);
void	 switching_drained(struct client *, const char *, uint32_t);
void	 switching_proxy_gone(struct client *);
/* Requests the proxy completed per second, lately (status, top). */
double	 switching_requests_per_s(const struct model *, int64_t now);
void	 switching_proxy(struct supervisor *);
/* Inputs from the engine. */
void	 switching_died(struct model *, const char *reason);
void	 switching_restart(struct model *);
/* The engine changed m outside the switcher: tell it, now or when the
 * running operation ends. */
void	 switching_resync(struct model *);
void	 switching_watch(struct model *);
/* A reload replaced sup->conf (old is still the switcher's, or freed). */
void	 switching_reload(struct supervisor *);
/* For status, the journal and the proxy. */
const char *switching_state_string(struct supervisor *, char *, size_t);
bool	 switching_manual(struct supervisor *);
const char *switching_pinned(struct supervisor *);
struct model *switching_active(struct supervisor *);
bool	 switching_admits(struct supervisor *, const struct model *);
void	 switching_result_free(struct op_result *);

/* ---- switching_events.c: the switches as events ------------------------ */

/* A phase as the event stream and STATUS= name it (evict, not sleep). */
const char *switching_events_phase_name(enum switcher_phase);

/* ---- order.c: the operator's orders through the switcher --------------- */

/* switch, pin, unpin, mode, sleep, wake, eviction set. */
void	 order_call(struct client *, struct proto_msg *, struct model *);
/* Ask the switcher for msg's order on m; call (NULL: a new one) waits. */
void	 order_begin(struct supervisor *, struct client *, struct proto_msg *,
	    struct model *, struct ctl_call *);
/* What the switcher says, for the calls waiting on it. */
void	 order_ready(struct supervisor *, struct model *);
void	 order_failed(struct supervisor *, struct model *, const char *);
void	 order_record(struct supervisor *, const struct switch_record *);
void	 order_check(struct supervisor *);
void	 order_progress(struct model *, const char *, int64_t,
	    const char *, void *);
/* The switcher was rebuilt: order again what waits. */
void	 order_rebuilt(struct supervisor *);

/* ---- stats.c: the switches that ended, for the llmux_switch_* metrics -- */

/* Histogram buckets of switch times, seconds. */
#define STATS_NBUCKETS	16
extern const double stats_buckets[STATS_NBUCKETS];

struct stats_hist {
	uint64_t	 le[STATS_NBUCKETS];	/* not cumulative */
	uint64_t	 count;
	int64_t		 sum_ms;
};

enum stats_phase {
	STATS_COOLDOWN, STATS_DRAIN, STATS_SLEEP, STATS_WAKE, STATS__PHASES
};

/* One direction of switches: from -> to ("none" for nothing). */
struct switch_dir {
	char			*from;
	char			*to;
	uint64_t		 switches;
	struct stats_hist	 phase[STATS__PHASES];
	struct stats_hist	 total;
};

struct switch_fail {
	char			*to;
	uint64_t		 n;
};

/* sup->switch_stats: NULL until the first switch ends. */
struct switch_stats {
	struct switch_dir	*dirs;
	size_t			 n_dirs;
	struct switch_fail	*fails;
	size_t			 n_fails;
};

/* A switch that ended (from, to: model names, or "none"). */
void	 stats_record(struct supervisor *, const char *from, const char *to,
	    const struct switch_record *);
void	 stats_free(struct supervisor *);

#endif
