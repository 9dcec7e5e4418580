/*
 * logfollow.c -- the logs call: the last lines of a model's log, sent as
 * log_data chunks, and with follow, what is appended afterwards, like
 * `tail -f`: the file is polled a few times a second, a rotation (a new
 * inode at the path) is followed to the new file after the old one is
 * read to its end, and a truncation (copy-truncate) restarts at 0. A peer
 * that reads slowly is not sent more until its queue drains.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "supervisord/control/control.h"

#define LOGFOLLOW_DEFAULT_LINES	100
#define LOGFOLLOW_MAX_TAIL	(4u << 20)
#define LOGFOLLOW_TICK_MS	200
#define LOGFOLLOW_MAX_READ	(256u << 10)
#define LOGFOLLOW_MAX_QUEUED	(4u << 20)

struct logfollow {
	struct supervisor	*sup;
	struct client		*c;
	uint32_t		 id;
	char			*model;
	char			*path;
	int			 fd;
	ino_t			 ino;
	off_t			 off;
	struct event		*ev;
};

static void
logfollow_send(struct client *c, uint32_t id, const char *data, size_t len)
{
	size_t	n;

	while (len > 0) {
		n = len > PROTO_MAX_LOG_CHUNK ? PROTO_MAX_LOG_CHUNK : len;
		server_log_data(c, id, (const uint8_t *)data, n);
		data += n;
		len -= n;
	}
}

static void
logfollow_open(struct logfollow *lf, bool at_end)
{
	struct stat	sb;

	if ((lf->fd = open(lf->path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (fstat(lf->fd, &sb) == -1) {
		close(lf->fd);
		lf->fd = -1;
		return;
	}
	lf->ino = sb.st_ino;
	lf->off = at_end ? sb.st_size : 0;
}

/* Send what the open file has past our offset; false at its end. */
static bool
logfollow_read(struct logfollow *lf)
{
	char	*buf;
	ssize_t	 n;

	buf = xmalloc(LOGFOLLOW_MAX_READ);
	n = pread(lf->fd, buf, LOGFOLLOW_MAX_READ, lf->off);
	if (n > 0) {
		logfollow_send(lf->c, lf->id, buf, (size_t)n);
		lf->off += n;
	}
	free(buf);
	return (n > 0);
}

static void
logfollow_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct logfollow	*lf = arg;
	struct stat		 sb, now;

	if (proto_conn_queued(lf->c->conn) > LOGFOLLOW_MAX_QUEUED)
		return;
	if (lf->fd == -1) {
		logfollow_open(lf, false);
		if (lf->fd == -1)
			return;
	}
	if (fstat(lf->fd, &sb) == 0 && sb.st_size < lf->off)
		lf->off = 0;	/* truncated */
	if (logfollow_read(lf))
		return;
	/* At the end: has the path moved on to a new file? */
	if (stat(lf->path, &now) == 0 && now.st_ino != lf->ino) {
		close(lf->fd);
		logfollow_open(lf, false);
		if (lf->fd != -1)
			(void)logfollow_read(lf);
	}
}

void
logfollow_call(struct client *c, uint32_t id, struct model *m,
    uint32_t lines, bool follow)
{
	struct supervisor	*sup = c->sup;
	struct logfollow	*lf;
	struct body		*b;
	struct timeval		 tv = { 0, LOGFOLLOW_TICK_MS * 1000 };
	char			*text, *path;
	const uint8_t		*data;
	size_t			 len;

	if (follow && c->follow != NULL) {
		b = body_message("error", "this connection already follows a "
		    "log");
		data = body_data(b, &len);
		server_reply(c, id, 409, data, len);
		body_free(b);
		return;
	}
	path = modellog_path(sup, m->name, 0);
	text = modellog_tail(sup, m->name, lines == 0 ?
	    LOGFOLLOW_DEFAULT_LINES : (int)lines, LOGFOLLOW_MAX_TAIL);
	if (text != NULL && *text != '\0') {
		logfollow_send(c, id, text, strlen(text));
		logfollow_send(c, id, "\n", 1);
	}
	free(text);
	if (!follow) {
		b = body_new();
		body_map(b, 2);
		body_kstr(b, "message", "end of log");
		body_kstr(b, "path", path);
		data = body_data(b, &len);
		server_reply(c, id, 200, data, len);
		body_free(b);
		free(path);
		return;
	}
	lf = xcalloc(1, sizeof(*lf));
	lf->sup = sup;
	lf->c = c;
	lf->id = id;
	lf->model = xstrdup(m->name);
	lf->path = path;
	logfollow_open(lf, true);
	lf->ev = event_new(sup->base, -1, EV_PERSIST, logfollow_tick, lf);
	event_add(lf->ev, &tv);
	c->follow = lf;
	c->follow_free = logfollow_free;
}

void
logfollow_free(struct logfollow *lf)
{
	if (lf == NULL)
		return;
	event_free(lf->ev);
	if (lf->fd != -1)
		close(lf->fd);
	free(lf->model);
	free(lf->path);
	free(lf);
}

/* The model is gone: end its followers' calls. */
void
logfollow_model_gone(struct supervisor *sup, struct model *m)
{
	struct client	*c;
	struct body	*b;
	const uint8_t	*data;
	size_t		 len;

	TAILQ_FOREACH(c, &sup->clients, entry) {
		if (c->follow == NULL || strcmp(c->follow->model, m->name) != 0)
			continue;
		b = body_message("message", "the model was removed");
		data = body_data(b, &len);
		server_reply(c, c->follow->id, 200, data, len);
		body_free(b);
		logfollow_free(c->follow);
		c->follow = NULL;
	}
}
