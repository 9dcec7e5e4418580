/*
 * preq.c -- the answer to one client request of the proxy port: an
 * OpenAI error object (every one the proxy writes is built here, by
 * preq_error_object), a JSON body made by the proxy, or the end of a
 * response relayed from a model server; pausing the connection's parser
 * while the request is held (queued or forwarded) and resuming it once
 * answered; and the counts the metrics show (refusals by code, requests
 * forwarded and not yet freed).
 *
 * front.c, route.c and upstream.c all answer requests, so this sits below
 * them: it knows libevhtp's request, not where the request goes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <evhtp/evhtp.h>

#include "json.h"
#include "log.h"
#include "proxy.h"

static uint64_t		 preq_rejected[REJ__COUNT];
static uint32_t		 preq_forwarded;	/* forwarded, not freed */

void
preq_count_reject(enum reject_code code)
{
	if ((unsigned)code < REJ__COUNT)
		preq_rejected[code]++;
}

const uint64_t *
preq_reject_counts(void)
{
	return (preq_rejected);
}

/*
 * The type and param of each refusal, as the OpenAI API writes them:
 * invalid_request_error for what the client must change (also a wrong API
 * key, as OpenAI answers 401 invalid_api_key), rate_limit_error for a full
 * queue, server_error for what is on this side; param names the field at
 * fault where one is.
 */
static const struct {
	const char	*type;
	const char	*param;
} preq_error_kinds[REJ__COUNT] = {
	[REJ_BAD_REQUEST] = { "invalid_request_error", NULL },
	[REJ_UNAUTHORIZED] = { "invalid_request_error", NULL },
	[REJ_NOT_FOUND] = { "invalid_request_error", NULL },
	[REJ_MODEL_NOT_FOUND] = { "invalid_request_error", "model" },
	[REJ_TOO_LARGE] = { "invalid_request_error", NULL },
	[REJ_HEADERS_TOO_LARGE] = { "invalid_request_error", NULL },
	[REJ_QUEUE_FULL] = { "rate_limit_error", NULL },
	[REJ_TIMEOUT] = { "server_error", NULL },
	[REJ_UNAVAILABLE] = { "server_error", NULL },
	[REJ_MODEL_FAILED] = { "server_error", NULL },
	[REJ_MANUAL_MODE] = { "server_error", NULL },
	[REJ_BAD_GATEWAY] = { "server_error", NULL },
	[REJ_UPSTREAM_TIMEOUT] = { "server_error", NULL },
	[REJ_REQUEST_TIMEOUT] = { "invalid_request_error", NULL },
	[REJ_NOT_IMPLEMENTED] = { "invalid_request_error", NULL },
	[REJ_TOO_MANY_CONNECTIONS] = { "server_error", NULL },
	[REJ_BUFFERS_FULL] = { "server_error", NULL },
};

/* json_escape's output, into the evbuffer. */
static void
preq_json_out(void *arg, const char *s, size_t len)
{
	evbuffer_add(arg, s, len);
}

/* "key": followed by s as a JSON string, or null. */
static void
preq_json_field(struct evbuffer *buf, const char *key, const char *s,
    bool last)
{
	evbuffer_add_printf(buf, "\"%s\":", key);
	if (s == NULL)
		evbuffer_add(buf, "null", 4);
	else {
		evbuffer_add(buf, "\"", 1);
		json_escape(s, strlen(s), preq_json_out, buf);
		evbuffer_add(buf, "\"", 1);
	}
	if (!last)
		evbuffer_add(buf, ",", 1);
}

/*
 * {"error":{"message","type","param","code"}}, the strings escaped by the
 * one JSON escaper (common/json.c): whatever bytes a reason holds, the
 * object is valid JSON.
 */
void
preq_error_object(struct evbuffer *buf, const char *msg, const char *type,
    const char *param, const char *code)
{
	evbuffer_add(buf, "{\"error\":{", 10);
	preq_json_field(buf, "message", msg, false);
	preq_json_field(buf, "type", type, false);
	preq_json_field(buf, "param", param, false);
	preq_json_field(buf, "code", code, true);
	evbuffer_add(buf, "}}", 2);
}

void
preq_error_body(struct evbuffer *buf, const char *msg, enum reject_code code)
{
	unsigned	i = (unsigned)code < REJ__COUNT ? (unsigned)code :
			    REJ_BAD_GATEWAY;

	preq_error_object(buf, msg, preq_error_kinds[i].type,
	    preq_error_kinds[i].param, metrics_reject_name(code));
	evbuffer_add(buf, "\n", 1);
}

/*
 * Stop parsing more requests on this connection, but keep reading it.
 * evhtp_request_pause would also stop reading, which hides a client that
 * goes away (and costs two epoll_ctl calls when reading is turned back
 * on), so this sets the same flags libevhtp's pause sets and leaves the
 * socket read: libevhtp's read callback ignores the bytes while paused,
 * and the connection's read watermark bounds them, so EOF is seen at once.
 */
void
preq_pause(struct preq *pr)
{
	evhtp_connection_t	*conn = evhtp_request_get_connection(pr->req);

	if (pr->paused)
		return;
	pr->paused = true;
	pr->req->status = EVHTP_RES_PAUSE;
	conn->flags |= EVHTP_CONN_FLAG_PAUSED;
	bufferevent_set_timeouts(conn->bev, NULL, NULL);
	if (!(bufferevent_get_enabled(conn->bev) & EV_READ))
		bufferevent_enable(conn->bev, EV_READ);
}

void
preq_resume(struct preq *pr)
{
	if (pr->paused) {
		pr->paused = false;
		evhtp_request_resume(pr->req);
	}
}

/*
 * Close the connection once this answer is out. evhtp_request_set_keepalive
 * can only turn keep-alive on (with 0 it does nothing), so clear the flag
 * libevhtp reads when the answer is finished: a Connection: close header
 * follows from it, and the connection is closed instead of kept.
 */
void
preq_close_after(evhtp_request_t *req)
{
	req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
}

/* Send the answer in the request's output; when exiting, close after it. */
static void
preq_send(struct preq *pr, int status)
{
	if (proxy_exiting)
		preq_close_after(pr->req);
	pr->phase = PR_DONE;
	pr->status = status;
	evhtp_send_reply(pr->req, status);
	preq_resume(pr);
}

void
preq_error(struct preq *pr, int status, enum reject_code code,
    int retry_after, const char *fmt, ...)
{
	evhtp_request_t	*req = pr->req;
	char		 msg[1024], ra[16];
	va_list		 ap;

	if (pr->phase == PR_DONE || pr->gone)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	preq_count_reject(code);
	log_debug("request refused status=%d code=%s model=%s msg=\"%s\"",
	    status, metrics_reject_name(code), pr->model_name, msg);

	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	if (retry_after > 0) {
		snprintf(ra, sizeof(ra), "%d", retry_after);
		evhtp_headers_add_header(req->headers_out,
		    evhtp_header_new("Retry-After", ra, 0, 1));
	}
	preq_error_body(req->buffer_out, msg, code);
	preq_send(pr, status);
}

void
preq_reply_json(struct preq *pr, int status, const unsigned char *json,
    size_t len)
{
	evhtp_request_t	*req = pr->req;

	evhtp_headers_add_header(req->headers_out,
	    evhtp_header_new("Content-Type", "application/json", 0, 0));
	evbuffer_add(req->buffer_out, json, len);
	preq_send(pr, status);
}

void
preq_finish(struct preq *pr)
{
	struct bufferevent	*bev;

	if (pr->phase == PR_DONE)
		return;
	pr->phase = PR_DONE;
	evhtp_send_reply_end(pr->req);
	preq_resume(pr);
	/*
	 * libevhtp finishes a request in its write callback, which runs when
	 * the output drains; if the answer went straight to the socket there
	 * is nothing to drain, so run it once.
	 */
	bev = evhtp_request_get_bev(pr->req);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
}

void
preq_mark_upstream(struct preq *pr)
{
	preq_pause(pr);
	pr->phase = PR_UPSTREAM;
	pr->counted = true;
	preq_forwarded++;
}

bool
preq_uncount(struct preq *pr)
{
	if (!pr->counted)
		return (false);
	pr->counted = false;
	preq_forwarded--;
	return (true);
}

uint32_t
preq_active(void)
{
	return (preq_forwarded);
}
