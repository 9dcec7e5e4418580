/*
 * queue.h -- per-model FIFO queues of waiting requests: pure bookkeeping
 * (an intrusive list with arrival times, a bound, expiry), no I/O, so it
 * is unit-tested on its own. The requests themselves stay paused in
 * libevhtp; an entry is embedded in each request, nothing is copied.
 */
#ifndef LLMUX_PROXY_QUEUE_H
#define LLMUX_PROXY_QUEUE_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

struct qentry {
	TAILQ_ENTRY(qentry)	 link;
	int64_t			 t_enq_ms;	/* when it was queued */
	bool			 queued;
};

struct queue {
	TAILQ_HEAD(, qentry)	 q;
	uint32_t		 n;
	uint64_t		 total;		/* ever queued */
};

void		 queue_init(struct queue *);
/* Append e; -1 (and nothing changes) when the queue holds max already. */
int		 queue_push(struct queue *, struct qentry *, int64_t now_ms,
		    uint32_t max);
/*
 * Put e (its t_enq_ms kept from before) back in its place by that time,
 * whatever the bound: a request that was already accepted.
 */
void		 queue_put_back(struct queue *, struct qentry *);
/* Take e out wherever it is; a no-op if it is not queued. */
void		 queue_remove(struct queue *, struct qentry *);
/* The oldest entry, taken out; NULL when empty. */
struct qentry	*queue_pop(struct queue *);
struct qentry	*queue_first(const struct queue *);
uint32_t	 queue_len(const struct queue *);
/* How long the oldest has waited, ms (0 when empty). */
int64_t		 queue_oldest_ms(const struct queue *, int64_t now_ms);
/*
 * The oldest entry if it has waited timeout_ms or more, taken out; NULL
 * when none has. Entries are in arrival order, so callers loop.
 */
struct qentry	*queue_expired(struct queue *, int64_t now_ms,
		    int64_t timeout_ms);
/* When the oldest entry expires (ms), or -1 when empty. */
int64_t		 queue_next_deadline(const struct queue *, int64_t timeout_ms);

#endif
