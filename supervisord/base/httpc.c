/*
 * httpc.c -- calls to a model server's HTTP API on 127.0.0.1 with
 * libevent's HTTP client: one connection per call, a total deadline of
 * our own (libevent's timeouts are per read or write), the duration
 * measured, and a result handed to one callback, exactly once, unless the
 * caller cancelled the call first.
 *
 * libevent must not see its connection freed inside its own callback, so
 * a finished call's connection is freed from the loop just after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"

struct httpc_call {
	struct evhttp_connection *evcon;
	struct event		 *ev_deadline;
	struct event		 *ev_free;
	httpc_cb		  cb;
	void			 *arg;
	int64_t			  start_us;
	int64_t			  timeout_ms;
	bool			  done;
	bool			  make_failed;
	bool			  has_error;
	enum evhttp_request_error error;
	int			  error_errno;
};

static void
httpc_free_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct httpc_call	*c = arg;

	if (c->evcon != NULL)
		evhttp_connection_free(c->evcon);
	event_free(c->ev_deadline);
	event_free(c->ev_free);
	free(c);
}

static void
httpc_finish(struct httpc_call *c, const struct httpc_result *r)
{
	httpc_cb	cb = c->cb;

	c->done = true;
	evtimer_del(c->ev_deadline);
	c->cb = NULL;
	if (cb != NULL)
		cb(r, c->arg);
	event_active(c->ev_free, EV_TIMEOUT, 0);
}

static const char *
httpc_error_text(struct httpc_call *c, char *buf, size_t len)
{
	const char	*what;

	if (!c->has_error)
		return ("connection failed");
	switch (c->error) {
	case EVREQ_HTTP_TIMEOUT:
		what = "timed out";
		break;
	case EVREQ_HTTP_EOF:
		what = "connection closed";
		break;
	case EVREQ_HTTP_INVALID_HEADER:
		what = "invalid response";
		break;
	case EVREQ_HTTP_BUFFER_ERROR:
		what = "connection failed";
		break;
	case EVREQ_HTTP_DATA_TOO_LONG:
		what = "response too long";
		break;
	default:
		what = "request failed";
		break;
	}
	if (c->error_errno != 0)
		snprintf(buf, len, "%s: %s", what, strerror(c->error_errno));
	else
		snprintf(buf, len, "%s", what);
	return (buf);
}

static void
httpc_error_cb(enum evhttp_request_error err, void *arg)
{
	struct httpc_call	*c = arg;

	c->has_error = true;
	c->error = err;
	c->error_errno = EVUTIL_SOCKET_ERROR();
}

static void
httpc_done_cb(struct evhttp_request *req, void *arg)
{
	struct httpc_call	*c = arg;
	struct httpc_result	 r;
	struct evbuffer		*in;
	char			*body = NULL, errbuf[256];
	size_t			 len;

	if (c->done)
		return;
	memset(&r, 0, sizeof(r));
	r.ms = (clock_us() - c->start_us) / 1000;
	if (req == NULL || evhttp_request_get_response_code(req) == 0) {
		r.error = httpc_error_text(c, errbuf, sizeof(errbuf));
		r.body = "";
	} else {
		r.status = evhttp_request_get_response_code(req);
		in = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(in);
		if (len > HTTPC_MAX_BODY)
			len = HTTPC_MAX_BODY;
		body = xmalloc(len + 1);
		evbuffer_copyout(in, body, len);
		body[len] = '\0';
		r.body = body;
		r.body_len = len;
	}
	httpc_finish(c, &r);
	free(body);
}

static void
httpc_deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct httpc_call	*c = arg;
	struct httpc_result	 r;
	char			 why[64];

	if (c->done)
		return;
	/* Freeing the connection drops the request without callbacks. */
	evhttp_connection_free(c->evcon);
	c->evcon = NULL;
	memset(&r, 0, sizeof(r));
	r.ms = (clock_us() - c->start_us) / 1000;
	if (c->make_failed)
		snprintf(why, sizeof(why), "cannot make the request");
	else
		snprintf(why, sizeof(why), "timed out after %lld ms",
		    (long long)c->timeout_ms);
	r.error = why;
	r.body = "";
	httpc_finish(c, &r);
}

struct httpc_call *
httpc_request(struct event_base *base, uint16_t port, const char *method,
    const char *path, const char *body, int64_t timeout_ms, httpc_cb cb,
    void *arg)
{
	struct httpc_call		*c;
	struct evhttp_request		*req;
	struct evkeyvalq		*h;
	enum evhttp_cmd_type		 type;
	struct timeval			 tv;
	char				 host[32];

	c = xcalloc(1, sizeof(*c));
	c->cb = cb;
	c->arg = arg;
	c->start_us = clock_us();
	c->timeout_ms = timeout_ms;
	c->ev_deadline = evtimer_new(base, httpc_deadline_cb, c);
	c->ev_free = event_new(base, -1, 0, httpc_free_cb, c);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->ev_deadline, &tv);

	c->evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1", port);
	if (c->evcon == NULL)
		fatalx("evhttp_connection_base_new failed");
	evhttp_connection_set_timeout_tv(c->evcon, &tv);
	evhttp_connection_set_retries(c->evcon, 0);
	evhttp_connection_set_max_body_size(c->evcon, 4 * HTTPC_MAX_BODY);

	req = evhttp_request_new(httpc_done_cb, c);
	evhttp_request_set_error_cb(req, httpc_error_cb);
	h = evhttp_request_get_output_headers(req);
	snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)port);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "User-Agent", "llmux-supervisord");
	if (body != NULL) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		    strlen(body));
	}
	type = strcmp(method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET;
	if (evhttp_make_request(c->evcon, req, type, path) != 0) {
		/* Report from the loop, never inside the caller. */
		c->make_failed = true;
		evtimer_del(c->ev_deadline);
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		evtimer_add(c->ev_deadline, &tv);
	}
	return (c);
}

void
httpc_cancel(struct httpc_call *c)
{
	if (c == NULL)
		return;
	c->cb = NULL;
	if (c->done)
		return;
	c->done = true;
	evtimer_del(c->ev_deadline);
	if (c->evcon != NULL) {
		evhttp_connection_free(c->evcon);
		c->evcon = NULL;
	}
	event_active(c->ev_free, EV_TIMEOUT, 0);
}
