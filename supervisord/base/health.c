/*
 * health.c -- waiting for a model server to be ready: GET /health until it
 * answers 2xx or a deadline passes. Polls start 10 ms apart and grow by
 * half up to HEALTH_MAX_INTERVAL_MS, so a server that becomes healthy is
 * noticed within about 50 ms however long it took to start, at a cost of
 * at most 25 loopback requests a second. A refused connection (the server
 * is not listening yet) answers at once, so polls never pile up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"

struct health {
	struct event_base	*base;
	uint16_t		 port;
	int64_t			 start_ms;
	int64_t			 deadline_ms;
	int64_t			 interval_ms;
	struct event		*ev_timer;
	struct httpc_call	*call;
	health_cb		 cb;
	void			*arg;
	uint64_t		 polls;
	bool			 clipped;	/* this poll's deadline was cut */
	char			 last[256];
};

static void	health_poll(struct health *);

int64_t
health_next_interval(int64_t cur)
{
	int64_t	next = cur + cur / 2;

	if (next <= cur)
		next = cur + 1;
	return (next > HEALTH_MAX_INTERVAL_MS ? HEALTH_MAX_INTERVAL_MS : next);
}

static void
health_end(struct health *h, int ok, const char *reason)
{
	health_cb	 cb = h->cb;
	void		*arg = h->arg;

	log_debug("health check done port=%u ok=%d polls=%llu ms=%lld",
	    (unsigned)h->port, ok, (unsigned long long)h->polls,
	    (long long)(clock_ms() - h->start_ms));
	event_free(h->ev_timer);
	free(h);
	cb(ok, reason, arg);
}

static void
health_result_cb(const struct httpc_result *r, void *arg)
{
	struct health	*h = arg;
	struct timeval	 tv;
	char		 why[400];
	int64_t		 now = clock_ms();

	h->call = NULL;
	h->polls++;
	if (r->status >= 200 && r->status < 300) {
		health_end(h, 1, NULL);
		return;
	}
	/* A poll cut short by the deadline says less than the one before. */
	if (r->status != 0)
		snprintf(h->last, sizeof(h->last), "GET /health answered %d",
		    r->status);
	else if (!h->clipped || h->polls == 1)
		snprintf(h->last, sizeof(h->last), "GET /health: %s",
		    r->error);
	if (now >= h->deadline_ms) {
		snprintf(why, sizeof(why), "not ready after %lld s (%s)",
		    (long long)((now - h->start_ms + 500) / 1000), h->last);
		health_end(h, 0, why);
		return;
	}
	tv.tv_sec = h->interval_ms / 1000;
	tv.tv_usec = (h->interval_ms % 1000) * 1000;
	h->interval_ms = health_next_interval(h->interval_ms);
	evtimer_add(h->ev_timer, &tv);
}

static void
health_poll(struct health *h)
{
	int64_t	left = h->deadline_ms - clock_ms();

	h->clipped = left < HEALTH_CALL_TIMEOUT_MS;
	if (left > HEALTH_CALL_TIMEOUT_MS)
		left = HEALTH_CALL_TIMEOUT_MS;
	if (left < 1)
		left = 1;
	h->call = httpc_request(h->base, h->port, "GET", "/health", NULL,
	    left, health_result_cb, h);
}

static void
health_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	health_poll(arg);
}

struct health *
health_wait(struct event_base *base, uint16_t port, int64_t timeout_ms,
    health_cb cb, void *arg)
{
	struct health	*h;

	h = xcalloc(1, sizeof(*h));
	h->base = base;
	h->port = port;
	h->start_ms = clock_ms();
	h->deadline_ms = h->start_ms + timeout_ms;
	h->interval_ms = HEALTH_FIRST_INTERVAL_MS;
	h->cb = cb;
	h->arg = arg;
	snprintf(h->last, sizeof(h->last), "no answer yet");
	h->ev_timer = evtimer_new(base, health_timer_cb, h);
	health_poll(h);
	return (h);
}

void
health_cancel(struct health *h)
{
	if (h == NULL)
		return;
	httpc_cancel(h->call);
	event_free(h->ev_timer);
	free(h);
}
