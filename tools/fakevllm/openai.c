/*
 * openai.c -- POST /v1/chat/completions and /v1/completions on the API
 * server's side: check the request as vLLM does (unknown model: 404,
 * context too long: 400), hand it to the engine, and turn the engine's
 * tokens into vLLM's JSON, or into server-sent events: a first chat chunk
 * with the role, one chunk per token, finish_reason on the last, a usage
 * chunk when stream_options.include_usage asks for it, then [DONE].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include "fv_evhtp.h"

#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

struct openai_req {
	struct fv_idnode	 node;		/* first: found by id */
	evhtp_request_t		*req;
	int64_t			 t0;
	int			 kind;
	int			 stream;
	int			 include_usage;
	int			 continuous;
	int			 started;	/* first chunk sent */
	uint32_t		 prompt_tokens;
	uint32_t		 ntokens;
	struct evbuffer		*text;		/* whole answer, not streamed */
	long long		 created;
	char			 rid[48];
};

static struct evbuffer	*openai_scratch;

static const char *
openai_finish_name(int finish)
{
	switch (finish) {
	case FV_FINISH_STOP:
		return ("stop");
	case FV_FINISH_ABORT:
		return ("abort");
	default:
		return ("length");
	}
}

static struct evbuffer *
openai_buf(void)
{
	if (openai_scratch == NULL)
		openai_scratch = evbuffer_new();
	evbuffer_drain(openai_scratch, evbuffer_get_length(openai_scratch));
	return (openai_scratch);
}

static void
openai_usage(struct evbuffer *b, const struct openai_req *o)
{
	evbuffer_add_printf(b, "\"usage\":{\"prompt_tokens\":%u,"
	    "\"total_tokens\":%u,\"completion_tokens\":%u}", o->prompt_tokens,
	    o->prompt_tokens + o->ntokens, o->ntokens);
}

/* The common head of every chunk: {"id":..,"object":..,"created":..,"model":... */
static void
openai_head(struct evbuffer *b, const struct openai_req *o, int chunk)
{
	const char	*object;

	if (o->kind == FV_CHAT)
		object = chunk ? "chat.completion.chunk" : "chat.completion";
	else
		object = "text_completion";
	evbuffer_add_printf(b, "{\"id\":\"%s\",\"object\":\"%s\","
	    "\"created\":%lld,\"model\":", o->rid, object, o->created);
	fv_json_cstring(b, fv_server.opts->names[0]);
}

static void
openai_free(struct openai_req *o)
{
	fv_idmap_remove(&fv_server.gens, &o->node);
	if (o->text != NULL)
		evbuffer_free(o->text);
	free(o);
}

/* Send one server-sent event: "data: <json>\n\n". */
static void
openai_event(struct openai_req *o, struct evbuffer *json)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add(b, "data: ", 6);
	evbuffer_add_buffer(b, json);
	evbuffer_add(b, "\n\n", 2);
	evhtp_send_reply_chunk(o->req, b);
	evbuffer_free(b);
}

/* One streamed chunk: a delta (chat) or text (completions). */
static void
openai_chunk(struct openai_req *o, const char *text, size_t len, int role,
    int finish)
{
	struct evbuffer	*b = openai_buf();

	openai_head(b, o, 1);
	evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,");
	if (o->kind == FV_CHAT) {
		evbuffer_add_printf(b, "\"delta\":{%s\"content\":",
		    role ? "\"role\":\"assistant\"," : "");
		fv_json_string(b, text, len);
		evbuffer_add_printf(b, "},\"logprobs\":null,");
	} else {
		evbuffer_add_printf(b, "\"text\":");
		fv_json_string(b, text, len);
		evbuffer_add_printf(b, ",\"logprobs\":null,");
	}
	if (finish != FV_FINISH_NONE)
		evbuffer_add_printf(b, "\"finish_reason\":\"%s\","
		    "\"stop_reason\":null}]", openai_finish_name(finish));
	else if (o->kind == FV_CHAT)
		evbuffer_add_printf(b, "\"finish_reason\":null}]");
	else
		evbuffer_add_printf(b, "\"finish_reason\":null,"
		    "\"stop_reason\":null}]");
	if (o->continuous) {
		evbuffer_add(b, ",", 1);
		openai_usage(b, o);
	}
	evbuffer_add(b, "}", 1);
	openai_event(o, b);
}

/* The chat stream's first chunk, sent with the engine's first output. */
static void
openai_start(struct openai_req *o)
{
	if (o->started)
		return;
	o->started = 1;
	if (o->kind == FV_CHAT)
		openai_chunk(o, "", 0, 1, FV_FINISH_NONE);
}

/* The usage chunk if asked for, [DONE], end of the reply. */
static void
openai_end_stream(struct openai_req *o)
{
	struct evbuffer	*b;

	if (o->include_usage) {
		b = openai_buf();
		openai_head(b, o, 1);
		evbuffer_add_printf(b, ",\"choices\":[],");
		openai_usage(b, o);
		evbuffer_add(b, "}", 1);
		openai_event(o, b);
	}
	b = evbuffer_new();
	evbuffer_add_printf(b, "data: [DONE]\n\n");
	evhtp_send_reply_chunk(o->req, b);
	evbuffer_free(b);
	fv_server_unwatch(o->req);
	evhtp_send_reply_chunk_end(o->req);
	fv_server_access(o->req, o->t0, 200);
	fv_server.served++;
	openai_free(o);
}

/* The whole (non-streamed) answer. */
static void
openai_reply(struct openai_req *o, int finish)
{
	struct evbuffer	*b = openai_buf();
	const char	*text;
	size_t		 len = evbuffer_get_length(o->text);

	text = len > 0 ? (const char *)evbuffer_pullup(o->text, -1) : "";
	openai_head(b, o, 0);
	evbuffer_add_printf(b, ",\"choices\":[{\"index\":0,");
	if (o->kind == FV_CHAT) {
		evbuffer_add_printf(b, "\"message\":{\"role\":\"assistant\","
		    "\"content\":");
		fv_json_string(b, text, len);
		evbuffer_add_printf(b, ",\"tool_calls\":[]},");
	} else {
		evbuffer_add_printf(b, "\"text\":");
		fv_json_string(b, text, len);
		evbuffer_add(b, ",", 1);
	}
	evbuffer_add_printf(b, "\"logprobs\":null,\"finish_reason\":\"%s\","
	    "\"stop_reason\":null}],", openai_finish_name(finish));
	openai_usage(b, o);
	evbuffer_add_printf(b, ",\"prompt_logprobs\":null}");
	fv_server_unwatch(o->req);
	fv_server_reply(o->req, o->t0, 200, "application/json", b);
	fv_server.served++;
	openai_free(o);
}

static const char *
openai_error_type(int status)
{
	switch (status) {
	case 400:
		return ("BadRequestError");
	case 404:
		return ("NotFoundError");
	case 503:
		return ("ServiceUnavailableError");
	default:
		return ("InternalServerError");
	}
}

/* Fail a request: an error body, or an error event then [DONE]. */
static void
openai_fail(struct openai_req *o, int status, const char *msg)
{
	struct evbuffer	*b;

	fv_server.failed++;
	fv_server_unwatch(o->req);
	if (!o->stream) {
		fv_server_error(o->req, o->t0, status,
		    openai_error_type(status), NULL, "%s", msg);
		openai_free(o);
		return;
	}
	log_warnx("request failed id=%s status=%d error=\"%s\"", o->rid,
	    status, msg);
	b = openai_buf();
	evbuffer_add_printf(b, "{\"error\":{\"message\":");
	fv_json_cstring(b, msg);
	evbuffer_add_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}",
	    openai_error_type(status), status);
	openai_event(o, b);
	b = evbuffer_new();
	evbuffer_add_printf(b, "data: [DONE]\n\n");
	evhtp_send_reply_chunk(o->req, b);
	evbuffer_free(b);
	evhtp_send_reply_chunk_end(o->req);
	fv_server_access(o->req, o->t0, 200);
	openai_free(o);
}

/* The client went away: forget the request and abort its generation. */
static void
openai_gone(void *arg)
{
	struct openai_req	*o = arg;
	struct fv_msg		 m;

	if (o->stream)
		fv_server_access(o->req, o->t0, 499);
	memset(&m, 0, sizeof(m));
	m.type = FV_MSG_ABORT;
	m.id = o->node.id;
	o->req = NULL;
	openai_free(o);
	fv_channel_to_engine(&m, NULL);
}

/* Tokens, ends and errors of generations, from the engine. */
void
fv_openai_dispatch(const struct fv_msg *m, const char *data)
{
	struct openai_req	*o;

	if ((o = (struct openai_req *)fv_idmap_find(&fv_server.gens,
	    m->id)) == NULL)
		return;		/* the client has gone */
	switch (m->type) {
	case FV_MSG_TOKEN:
		if (!o->stream) {
			o->ntokens++;
			evbuffer_add(o->text, data, m->len);
			if (m->op != FV_FINISH_NONE)
				openai_reply(o, m->op);
			break;
		}
		openai_start(o);
		o->ntokens++;
		openai_chunk(o, data, m->len, 0, m->op);
		if (m->op != FV_FINISH_NONE)
			openai_end_stream(o);
		break;
	case FV_MSG_DONE:
		if (!o->stream) {
			openai_reply(o, m->op);
			break;
		}
		openai_start(o);
		if (o->ntokens > 0)
			openai_chunk(o, "", 0, 0, m->op);
		openai_end_stream(o);
		break;
	case FV_MSG_GENERR:
		openai_fail(o, (int)m->a, data);
		break;
	}
}

/* Seed for the text: the prompt, the model, and sampling randomness. */
static uint64_t
openai_seed(const struct fv_genreq *r)
{
	uint64_t	seed;

	seed = fv_generate_mix(r->prompt_hash ^ fv_server.model_hash);
	if (r->has_temperature && r->temperature == 0)
		return (seed);
	if (r->has_seed)
		return (fv_generate_mix(seed ^ (uint64_t)r->seed));
	return (fv_generate_mix(seed ^ fv_server_random()));
}

int
fv_openai_request(evhtp_request_t *req, int64_t t0, int kind,
    struct fv_genreq *r)
{
	const char	*param, *body;
	char		 err[512];
	size_t		 len;

	body = fv_server_body(req, &len);
	if (fv_request_parse(r, kind, body, len, err, sizeof(err),
	    &param) != 0) {
		fv_server_error(req, t0, 400, "BadRequestError", param, "%s",
		    err);
		return (-1);
	}
	if (r->model != NULL && !fv_server_served(r->model)) {
		fv_server_error(req, t0, 404, "NotFoundError", "model",
		    "The model `%s` does not exist.", r->model);
		fv_request_free(r);
		return (-1);
	}
	return (0);
}

void
fv_openai_handle(evhtp_request_t *req, int64_t t0, int kind)
{
	struct fv_genreq	 r;
	struct openai_req	*o;
	struct fv_msg		 m;
	int64_t			 room, ntok;
	int			 flags = 0;

	if (fv_openai_request(req, t0, kind, &r) != 0)
		return;
	fv_request_free(&r);
	room = (int64_t)fv_server.opts->max_model_len - r.prompt_tokens;
	if (room <= 0) {
		fv_server_error(req, t0, 400, "BadRequestError", NULL,
		    "This model's maximum context length is %d tokens. "
		    "However, your request has %u input tokens. Please reduce "
		    "the length of the input messages.",
		    fv_server.opts->max_model_len, r.prompt_tokens);
		return;
	}
	if (r.max_tokens > room) {
		fv_server_error(req, t0, 400, "BadRequestError",
		    kind == FV_CHAT ? "max_completion_tokens" : "max_tokens",
		    "'max_tokens' or 'max_completion_tokens' is too large: "
		    "%lld. This model's maximum context length is %d tokens "
		    "and your request has %u input tokens (%lld > %d - %u).",
		    (long long)r.max_tokens, fv_server.opts->max_model_len,
		    r.prompt_tokens, (long long)r.max_tokens,
		    fv_server.opts->max_model_len, r.prompt_tokens);
		return;
	}
	if (fv_server.opts->asleep == FV_ASLEEP_FAIL &&
	    (fv_server.engine.paused || fv_server.engine.tags != 0)) {
		fv_server_error(req, t0, 503, "ServiceUnavailableError", NULL,
		    "The model is sleeping; call /wake_up first.");
		return;
	}

	o = xcalloc(1, sizeof(*o));
	o->req = req;
	o->t0 = t0;
	o->kind = kind;
	o->stream = r.stream;
	o->include_usage = r.include_usage || r.continuous_usage;
	o->continuous = r.continuous_usage;
	o->prompt_tokens = r.prompt_tokens;
	o->created = (long long)time(NULL);
	snprintf(o->rid, sizeof(o->rid), "%s-%016llx%016llx",
	    kind == FV_CHAT ? "chatcmpl" : "cmpl",
	    (unsigned long long)fv_server_random(),
	    (unsigned long long)fv_server_random());
	memset(&m, 0, sizeof(m));
	m.type = FV_MSG_ADD;
	m.seed = openai_seed(&r);
	if (r.max_tokens > 0)
		ntok = r.max_tokens;
	else {
		ntok = fv_generate_natural(m.seed);
		if (ntok > room)
			ntok = room;
		else
			flags |= FV_ADD_STOP;
	}
	if (r.stream)
		flags |= FV_ADD_STREAM;
	m.a = ntok;
	m.b = flags;
	m.id = ++fv_server.next_id;
	if (fv_server.opts->log_requests)
		log_info("Added request %s. prompt_tokens=%u max_tokens=%lld "
		    "stream=%d", o->rid, r.prompt_tokens, (long long)ntok,
		    r.stream);
	if (o->stream) {
		evhtp_headers_add_header(req->headers_out, evhtp_header_new(
		    "Content-Type", "text/event-stream; charset=utf-8", 0, 0));
		evhtp_send_reply_chunk_start(req, 200);
	} else
		o->text = evbuffer_new();
	fv_idmap_add(&fv_server.gens, &o->node, m.id);
	if (fv_server.gens.n > fv_server.peak)
		fv_server.peak = fv_server.gens.n;
	fv_server_watch(req, openai_gone, o);
	/* In one process the answer may be complete when this returns. */
	fv_channel_to_engine(&m, NULL);
}

/* The engine died: fail every request in flight and push it out. */
void
fv_openai_fail_all(const char *msg)
{
	struct openai_req	*o;
	evhtp_request_t		*req;

	while ((o = (struct openai_req *)fv_idmap_any(&fv_server.gens)) !=
	    NULL) {
		req = o->req;
		openai_fail(o, 500, msg);
		fv_server_flush_request(req);
	}
}

/* Write what streams have pending (the process is about to die). */
void
fv_openai_flush_all(void)
{
	struct fv_idnode	*n;
	size_t			 i;

	for (i = 0; i < FV_IDMAP_BUCKETS; i++) {
		LIST_FOREACH(n, &fv_server.gens.b[i], entry)
			fv_server_flush_request(((struct openai_req *)n)->req);
	}
}
