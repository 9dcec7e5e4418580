/*
 * linger.c -- early answers and lingering close (see linger.h).
 *
 * Closing a socket whose receive queue still holds unread bytes makes the
 * kernel send a reset, and a client that is still sending its body may
 * then lose the answer. So the answer is written, the write side shut
 * down, and the rest of the request drained (up to LINGER_MAX_DISCARD
 * bytes or LINGER_SECS seconds), as web servers do.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "linger.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

struct lingerer {
	struct bufferevent	*bev;
	struct event		*timer;
	size_t			 discarded;
	int			 shut;
	TAILQ_ENTRY(lingerer)	 entry;
};

static TAILQ_HEAD(, lingerer)	linger_list = TAILQ_HEAD_INITIALIZER(linger_list);
static uint32_t			linger_n;

const char *
linger_status_text(int status)
{
	switch (status) {
	case 200: return ("OK");
	case 400: return ("Bad Request");
	case 401: return ("Unauthorized");
	case 403: return ("Forbidden");
	case 404: return ("Not Found");
	case 405: return ("Method Not Allowed");
	case 408: return ("Request Timeout");
	case 409: return ("Conflict");
	case 413: return ("Payload Too Large");
	case 414: return ("URI Too Long");
	case 415: return ("Unsupported Media Type");
	case 422: return ("Unprocessable Entity");
	case 429: return ("Too Many Requests");
	case 431: return ("Request Header Fields Too Large");
	case 500: return ("Internal Server Error");
	case 501: return ("Not Implemented");
	case 502: return ("Bad Gateway");
	case 503: return ("Service Unavailable");
	case 504: return ("Gateway Timeout");
	default: return ("Unknown");
	}
}

static void
linger_free(struct lingerer *l)
{
	TAILQ_REMOVE(&linger_list, l, entry);
	linger_n--;
	bufferevent_free(l->bev);
	event_free(l->timer);
	free(l);
}

static void
linger_read_cb(struct bufferevent *bev, void *arg)
{
	struct lingerer	*l = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	l->discarded += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (l->discarded > LINGER_MAX_DISCARD)
		linger_free(l);
}

static void
linger_write_cb(struct bufferevent *bev, void *arg)
{
	struct lingerer	*l = arg;

	if (!l->shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		l->shut = 1;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	}
}

static void
linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	linger_free(arg);
}

static void
linger_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	linger_free(arg);
}

void
linger_reply(struct bufferevent *old, int status, int retry_after,
    struct evbuffer *body)
{
	struct lingerer	*l;
	struct evbuffer	*out;
	struct timeval	 tv = { LINGER_SECS, 0 };
	int		 fd;
	char		 ra[32] = "";

	fd = fcntl(bufferevent_getfd(old), F_DUPFD_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("cannot answer a refused request: dup");
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (retry_after > 0)
		snprintf(ra, sizeof(ra), "Retry-After: %d\r\n", retry_after);
	out = evbuffer_new();
	evbuffer_add_buffer(out, bufferevent_get_output(old));
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n%sConnection: close"
	    "\r\n\r\n", status, linger_status_text(status),
	    evbuffer_get_length(body), ra);
	evbuffer_add_buffer(out, body);
	if (linger_n >= LINGER_MAX) {
		/* Too many already: what the socket takes now, then close. */
		evbuffer_write(out, fd);
		evbuffer_free(out);
		close(fd);
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->bev = bufferevent_socket_new(proxy_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (l->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	l->timer = evtimer_new(proxy_base, linger_timer_cb, l);
	evbuffer_add_buffer(bufferevent_get_output(l->bev), out);
	evbuffer_free(out);
	bufferevent_setcb(l->bev, linger_read_cb, linger_write_cb,
	    linger_event_cb, l);
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	evtimer_add(l->timer, &tv);
	TAILQ_INSERT_TAIL(&linger_list, l, entry);
	linger_n++;
}

uint32_t
linger_count(void)
{
	return (linger_n);
}

void
linger_shutdown(void)
{
	struct lingerer	*l;

	while ((l = TAILQ_FIRST(&linger_list)) != NULL)
		linger_free(l);
}
