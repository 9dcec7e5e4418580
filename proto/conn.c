/*
 * conn.c -- protocol connections on libevent bufferevents (see conn.h).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "xmalloc.h"

struct proto_conn {
	struct bufferevent	*bev;
	char			*name;
	proto_msg_cb		 on_msg;
	proto_close_cb		 on_close;
	void			*arg;
	int			 bad;		/* bad messages so far */
	int			 busy;		/* inside a callback */
	int			 dead;		/* freed while busy */
	int			 closing;	/* close once flushed */
	char			*close_reason;
	uint32_t		 max_frame;	/* proto_conn_set_max_frame */
	size_t			 max_output;	/* queued past it: dropped */
};

static void	proto_conn_read_cb(struct bufferevent *, void *);
static void	proto_conn_write_cb(struct bufferevent *, void *);
static void	proto_conn_event_cb(struct bufferevent *, short, void *);

struct proto_conn *
proto_conn_new(struct event_base *base, int fd, const char *name,
    proto_msg_cb on_msg, proto_close_cb on_close, void *arg)
{
	struct proto_conn	*c;

	c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	c->max_frame = PROTO_MAX_FRAME;
	c->max_output = PROTO_CONN_MAX_OUTPUT;
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL)
		fatalx("bufferevent_socket_new failed");
	/* Never hold more than one whole frame plus a read's worth. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, PROTO_MAX_FRAME + 4);
	bufferevent_setcb(c->bev, proto_conn_read_cb, proto_conn_write_cb,
	    proto_conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return (c);
}

void
proto_conn_set_max_frame(struct proto_conn *c, uint32_t max)
{
	if (max == 0 || max > PROTO_MAX_FRAME)
		max = PROTO_MAX_FRAME;
	c->max_frame = max;
	bufferevent_setwatermark(c->bev, EV_READ, 0, max + 4);
}

static void
proto_conn_destroy(struct proto_conn *c)
{
	bufferevent_free(c->bev);
	free(c->close_reason);
	free(c->name);
	free(c);
}

void
proto_conn_free(struct proto_conn *c)
{
	if (c == NULL)
		return;
	if (c->busy) {
		c->dead = 1;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	proto_conn_destroy(c);
}

/* The peer is lost: tell the owner once, then free. */
static void
proto_conn_lost(struct proto_conn *c, const char *reason)
{
	if (c->dead)
		return;
	c->busy++;
	if (c->on_close != NULL)
		c->on_close(c, reason, c->arg);
	c->busy--;
	c->dead = 1;
	if (c->busy == 0)
		proto_conn_destroy(c);
	else
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}

int
proto_conn_send(struct proto_conn *c, const struct proto_msg *m)
{
	uint8_t	*frame;
	size_t	 len;

	if (c->dead || c->closing)
		return (0);
	if (proto_encode(m, &frame, &len) != 0) {
		log_warnx("cannot encode message peer=%s type=%s", c->name,
		    proto_type_name(m->type) ? proto_type_name(m->type) : "?");
		return (-1);
	}
	proto_conn_send_frame(c, frame, len);
	free(frame);
	return (0);
}

void
proto_conn_set_max_output(struct proto_conn *c, size_t max)
{
	c->max_output = max;
}

void
proto_conn_send_frame(struct proto_conn *c, const uint8_t *frame, size_t len)
{
	if (c->dead || c->closing)
		return;
	bufferevent_write(c->bev, frame, len);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    c->max_output) {
		log_warnx("peer is not reading, dropping it peer=%s", c->name);
		c->closing = 1;	/* nothing more is queued */
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		/* Report the loss from the loop, not inside the caller. */
		c->close_reason = xstrdup("peer is not reading");
		bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR,
		    BEV_TRIG_DEFER_CALLBACKS);
	}
}

void
proto_conn_send_error(struct proto_conn *c, uint32_t id, const char *code,
    const char *fmt, ...)
{
	struct proto_msg	m;
	char			text[PROTO_MAX_TEXT];
	va_list			ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_ERROR;
	m.id = id;
	m.u.error.code = (char *)code;
	m.u.error.message = text;
	proto_conn_send(c, &m);
}

void
proto_conn_close_after_flush(struct proto_conn *c, const char *reason)
{
	if (c->dead || c->closing)
		return;
	c->closing = 1;
	c->close_reason = xstrdup(reason);
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

/* Decode and deliver every whole frame in the input buffer. */
static void
proto_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct proto_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	uint8_t			 hdr[4];
	uint32_t		 plen;
	struct proto_msg	 msg;
	char			 err[256];
	int			 r;

	c->busy++;
	while (!c->dead && !c->closing) {
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) != sizeof(hdr))
			break;
		if ((r = proto_frame_length(hdr, sizeof(hdr), &plen)) < 0 ||
		    plen > c->max_frame) {
			proto_conn_send_error(c, 0, "bad_frame",
			    "frame length is 0 or over %u bytes", c->max_frame);
			proto_conn_close_after_flush(c, "bad frame length");
			break;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)plen)
			break;
		evbuffer_drain(in, 4);
		if (proto_decode(evbuffer_pullup(in, plen), plen, &msg, err,
		    sizeof(err)) != 0) {
			evbuffer_drain(in, plen);
			log_warnx("bad message peer=%s reason=\"%s\"", c->name,
			    err);
			proto_conn_send_error(c, msg.id, "bad_message", "%s",
			    err);
			if (++c->bad >= PROTO_CONN_MAX_BAD)
				proto_conn_close_after_flush(c,
				    "too many bad messages");
			continue;
		}
		evbuffer_drain(in, plen);
		c->on_msg(c, &msg, c->arg);
		proto_msg_free(&msg);
	}
	c->busy--;
	if (c->dead && c->busy == 0)
		proto_conn_destroy(c);
}

static void
proto_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct proto_conn	*c = arg;

	if (c->closing && !c->dead &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		proto_conn_lost(c, c->close_reason);
}

static void
proto_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proto_conn	*c = arg;
	char			 reason[128];

	if (c->close_reason != NULL)
		snprintf(reason, sizeof(reason), "%s", c->close_reason);
	else if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason), "peer closed the connection");
	else
		snprintf(reason, sizeof(reason), "connection error: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	proto_conn_lost(c, reason);
}

int
proto_conn_fd(const struct proto_conn *c)
{
	return ((int)bufferevent_getfd(c->bev));
}

const char *
proto_conn_name(const struct proto_conn *c)
{
	return (c->name);
}

size_t
proto_conn_queued(const struct proto_conn *c)
{
	return (evbuffer_get_length(bufferevent_get_output(c->bev)));
}

void
proto_conn_set_arg(struct proto_conn *c, void *arg)
{
	c->arg = arg;
}

void *
proto_conn_get_arg(const struct proto_conn *c)
{
	return (c->arg);
}

int
proto_connect_unix(const char *path)
{
	struct sockaddr_un	sun;
	int			fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	return (fd);
}
