/*
 * switching_int.h -- what switching.c (making the switcher, its inputs,
 * rebuilds after a reload), switching_ops.c (its operations carried out
 * on the engine and the proxy) and proxies.c (what each proxy connection
 * has said) share, and nothing else needs.
 */
#ifndef LLMUX_SWITCHING_INT_H
#define LLMUX_SWITCHING_INT_H

#include "supervisord/switcher/switcher.h"
#include "supervisord/switching/switching.h"

#define SWITCHING_MAX_SWITCHES		64
#define SWITCHING_WAKE_GRACE_MS		5000
#define SWITCHING_RATE_WINDOW_MS	10000	/* of requests_per_s */

/* A switch in progress, timed in microseconds for the switch log line. */
struct switch_watch {
	int		 target;
	uint64_t	 victims;
	int64_t		 start_ms;	/* the switcher's, to find it again */
	int64_t		 start_us;
	int64_t		 cooldown_end_us; /* 0: still in its cooldown */
	uint64_t	 step_us;	/* its models' engine time at start */
};

/* switching_events.c */
void	 switching_events_phase(void *, const struct switcher_switch_status *,
	    int64_t prev_ms);
void	 switching_events_record(struct supervisor *,
	    const struct switch_record *);

/* switching.c */
int64_t	 switching_now(void);
int	 switching_index_any(struct supervisor *, const struct model *);
void	 switching_schedule_rebuild(struct supervisor *);

/* switching_ops.c */
extern const struct switcher_ops switching_ops;

/* proxies.c: each proxy connection's demand and the drains it owes. */
void	 proxies_total(struct supervisor *, struct model *);
void	 proxies_demand(struct client *, struct model *, uint32_t queued,
	    uint32_t in_flight, uint32_t oldest_ms);
void	 proxies_drain_sent(struct client *, const struct model *, uint32_t);
bool	 proxies_drain_answered(struct client *, const char *, uint32_t);
bool	 proxies_forget(struct client *, const struct model *, bool *owed);

#endif
