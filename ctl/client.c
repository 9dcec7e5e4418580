/*
 * client.c -- llmuxctl's connection to the supervisor: connect to the
 * socket, exchange hello (asking for the admin role), then send calls and
 * read the frames that answer them, with blocking I/O and poll(2) for
 * timeouts. One process, one connection, one call at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "ctl.h"
#include "version.h"
#include "xmalloc.h"

#define CLIENT_HELLO_TIMEOUT_MS	10000

int
client_send(struct client *cl, const struct proto_msg *m)
{
	uint8_t	*frame;
	size_t	 len, off = 0;
	ssize_t	 n;

	if (proto_encode(m, &frame, &len) != 0)
		return (-1);
	while (off < len) {
		n = write(cl->fd, frame + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(frame);
			return (-1);
		}
		off += (size_t)n;
	}
	free(frame);
	return (0);
}

/* Take one whole frame out of the input buffer, if there is one. */
static int
client_frame(struct client *cl, struct proto_msg *m, char *err, size_t errlen)
{
	uint32_t	plen;
	int		r;

	if ((r = proto_frame_length(cl->in, cl->inlen, &plen)) == 0)
		return (0);
	if (r < 0) {
		snprintf(err, errlen, "the supervisor sent a bad frame");
		return (-1);
	}
	if (cl->inlen < 4 + (size_t)plen)
		return (0);
	r = proto_decode(cl->in + 4, plen, m, err, errlen);
	memmove(cl->in, cl->in + 4 + plen, cl->inlen - 4 - plen);
	cl->inlen -= 4 + plen;
	return (r == 0 ? 1 : -1);
}

int
client_recv(struct client *cl, struct proto_msg *m, int timeout_ms, char *err,
    size_t errlen)
{
	struct pollfd	pfd;
	ssize_t		n;
	int		r;

	for (;;) {
		if ((r = client_frame(cl, m, err, errlen)) != 0)
			return (r);
		pfd.fd = cl->fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, timeout_ms)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return (-1);
		}
		if (r == 0)
			return (0);
		if (cl->incap - cl->inlen < 65536) {
			if (cl->incap > PROTO_MAX_FRAME + 4 + 65536) {
				snprintf(err, errlen, "frame too large");
				return (-1);
			}
			cl->incap = cl->incap == 0 ? 65536 : cl->incap * 2;
			cl->in = xrealloc(cl->in, cl->incap);
		}
		n = read(cl->fd, cl->in + cl->inlen, cl->incap - cl->inlen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "the supervisor closed the "
			    "connection%s%s", n == -1 ? ": " : "",
			    n == -1 ? strerror(errno) : "");
			return (-1);
		}
		cl->inlen += (size_t)n;
	}
}

int
client_open(struct client *cl, const char *path, char *err, size_t errlen)
{
	struct proto_msg	 m;
	char			 why[512];
	int			 r;

	memset(cl, 0, sizeof(*cl));
	cl->path = path;
	cl->next_id = 1;
	if ((cl->fd = proto_connect_unix(path)) == -1) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			snprintf(err, errlen, "the supervisor is not running "
			    "(cannot connect to %s: %s)", path,
			    strerror(errno));
		else
			snprintf(err, errlen, "cannot connect to the "
			    "supervisor at %s: %s", path, strerror(errno));
		return (CTL_EXIT_UNREACHABLE);
	}
	memset(&m, 0, sizeof(m));
	m.type = PROTO_HELLO;
	m.u.hello.version = PROTO_VERSION;
	m.u.hello.role = PROTO_ROLE_ADMIN;
	m.u.hello.pid = (uint32_t)getpid();
	m.u.hello.program = "llmuxctl";
	/*
	 * A peer the supervisor refuses is told why and disconnected at
	 * once, perhaps before our hello is written: read what it said.
	 */
	if (client_send(cl, &m) != 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		snprintf(err, errlen, "cannot talk to the supervisor at %s: %s",
		    path, strerror(errno));
		client_close(cl);
		return (CTL_EXIT_UNREACHABLE);
	}
	r = client_recv(cl, &m, CLIENT_HELLO_TIMEOUT_MS, why, sizeof(why));
	if (r == 0) {
		snprintf(err, errlen, "the supervisor at %s did not answer",
		    path);
		client_close(cl);
		return (CTL_EXIT_UNREACHABLE);
	}
	if (r < 0) {
		snprintf(err, errlen, "%s", why);
		client_close(cl);
		return (CTL_EXIT_UNREACHABLE);
	}
	if (m.type == PROTO_ERROR) {
		snprintf(err, errlen, "%s", m.u.error.message);
		proto_msg_free(&m);
		client_close(cl);
		return (CTL_EXIT_FAILED);
	}
	if (m.type != PROTO_HELLO) {
		snprintf(err, errlen, "the supervisor did not say hello");
		proto_msg_free(&m);
		client_close(cl);
		return (CTL_EXIT_FAILED);
	}
	proto_msg_free(&m);
	return (CTL_EXIT_OK);
}

void
client_close(struct client *cl)
{
	if (cl->fd != -1)
		close(cl->fd);
	cl->fd = -1;
	free(cl->in);
	cl->in = NULL;
	cl->inlen = cl->incap = 0;
}
