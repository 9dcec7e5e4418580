/*
 * proxy.c -- the state every file of llmux-proxyd shares, declared in
 * proxy.h: the event loop and whether the proxy is exiting (set by
 * main.c), the config the supervisor pushed and the models it names
 * (kept by registry.c). It is defined here, below every file that reads
 * it, so that reading it ties no file to main.c. And the one way the
 * files set a timer for a deadline.
 */
#include <event2/event.h>

#include "clock.h"
#include "proxy.h"

struct event_base	*proxy_base;
struct pconf		 proxy_conf;
struct pmodels		 proxy_models = TAILQ_HEAD_INITIALIZER(proxy_models);
bool			 proxy_exiting;

void
proxy_timer_at(struct event *ev, int64_t deadline)
{
	struct timeval	tv;
	int64_t		left;

	if (deadline < 0) {
		evtimer_del(ev);
		return;
	}
	left = deadline - clock_ms();
	if (left < 0)
		left = 0;
	/* A millisecond late rather than early: clock_ms rounds down. */
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000 + 1000;
	evtimer_add(ev, &tv);
}
