/*
 * queue.c -- FIFO queues of waiting requests (see queue.h).
 */
#include <stddef.h>

#include "queue.h"

void
queue_init(struct queue *q)
{
	TAILQ_INIT(&q->q);
	q->n = 0;
	q->total = 0;
}

int
queue_push(struct queue *q, struct qentry *e, int64_t now_ms, uint32_t max)
{
	if (e->queued || q->n >= max)
		return (-1);
	e->t_enq_ms = now_ms;
	e->queued = true;
	TAILQ_INSERT_TAIL(&q->q, e, link);
	q->n++;
	q->total++;
	return (0);
}

void
queue_put_back(struct queue *q, struct qentry *e)
{
	struct qentry	*at;

	if (e->queued)
		return;
	/* It is older than nearly all: look from the head. */
	TAILQ_FOREACH(at, &q->q, link) {
		if (at->t_enq_ms > e->t_enq_ms)
			break;
	}
	if (at != NULL)
		TAILQ_INSERT_BEFORE(at, e, link);
	else
		TAILQ_INSERT_TAIL(&q->q, e, link);
	e->queued = true;
	q->n++;
}

void
queue_remove(struct queue *q, struct qentry *e)
{
	if (!e->queued)
		return;
	TAILQ_REMOVE(&q->q, e, link);
	e->queued = false;
	q->n--;
}

struct qentry *
queue_pop(struct queue *q)
{
	struct qentry	*e;

	if ((e = TAILQ_FIRST(&q->q)) != NULL)
		queue_remove(q, e);
	return (e);
}

struct qentry *
queue_first(const struct queue *q)
{
	return (TAILQ_FIRST(&q->q));
}

uint32_t
queue_len(const struct queue *q)
{
	return (q->n);
}

int64_t
queue_oldest_ms(const struct queue *q, int64_t now_ms)
{
	struct qentry	*e;

	if ((e = TAILQ_FIRST(&q->q)) == NULL || now_ms < e->t_enq_ms)
		return (0);
	return (now_ms - e->t_enq_ms);
}

struct qentry *
queue_expired(struct queue *q, int64_t now_ms, int64_t timeout_ms)
{
	struct qentry	*e;

	if ((e = TAILQ_FIRST(&q->q)) == NULL ||
	    now_ms - e->t_enq_ms < timeout_ms)
		return (NULL);
	queue_remove(q, e);
	return (e);
}

int64_t
queue_next_deadline(const struct queue *q, int64_t timeout_ms)
{
	struct qentry	*e;

	if ((e = TAILQ_FIRST(&q->q)) == NULL)
		return (-1);
	return (e->t_enq_ms + timeout_ms);
}
