/*
 * infer.c -- one small, deterministic inference on a model, for the
 * warm-ups (after a wake, before a checkpoint): POST /v1/completions and,
 * where the model serves no completions (vLLM answers 404 or 400 for a
 * pooling model, one started with --task embed or --runner pooling),
 * POST /v1/embeddings with the same text instead. The caller gets one
 * result with the time of both calls (one deadline covers both): the
 * embedding's, unless the model has no such route either, when the
 * completion's error says more (a generating model that refused it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"

struct infer_call {
	struct event_base	*base;
	struct httpc_call	*http;
	uint16_t		 port;
	char			*embed_body;	/* for the second call */
	int			 first_status;	/* the completion's answer */
	char			*first_body;
	int64_t			 deadline_ms;
	int64_t			 start_ms;
	httpc_cb		 cb;
	void			*arg;
};

static void
infer_free(struct infer_call *ic)
{
	free(ic->embed_body);
	free(ic->first_body);
	free(ic);
}

static void
infer_done(const struct httpc_result *res, void *arg)
{
	struct infer_call	*ic = arg;
	struct httpc_result	 r = *res;
	int64_t			 left;

	ic->http = NULL;
	left = ic->deadline_ms - clock_ms();
	if ((res->status == 404 || res->status == 400) &&
	    ic->embed_body != NULL && left > 0) {
		log_info("the model on port %u answered %d to %s: it serves "
		    "no completions, so %s", (unsigned)ic->port, res->status,
		    INFER_COMPLETE_ROUTE, INFER_EMBED_ROUTE);
		ic->first_status = res->status;
		ic->first_body = xstrndup(res->body, res->body_len);
		ic->http = httpc_request(ic->base, ic->port, "POST",
		    INFER_EMBED_ROUTE, ic->embed_body, left, infer_done, ic);
		free(ic->embed_body);
		ic->embed_body = NULL;
		return;
	}
	/* No embeddings either: the completion's error says more. */
	if (ic->first_body != NULL && (res->status == 404 ||
	    res->status == 405)) {
		r.status = ic->first_status;
		r.body = ic->first_body;
		r.body_len = strlen(ic->first_body);
	}
	r.ms = clock_ms() - ic->start_ms;
	ic->cb(&r, ic->arg);
	infer_free(ic);
}

struct infer_call *
infer_request(struct event_base *base, uint16_t port, const char *model,
    const char *prompt, int max_tokens, int64_t timeout_ms, httpc_cb cb,
    void *arg)
{
	struct infer_call	*ic;
	char			*q, *p, *body;

	ic = xcalloc(1, sizeof(*ic));
	ic->base = base;
	ic->port = port;
	ic->cb = cb;
	ic->arg = arg;
	ic->start_ms = clock_ms();
	ic->deadline_ms = ic->start_ms + timeout_ms;
	q = json_quote(model);
	p = json_quote(prompt);
	xasprintf(&body, "{\"model\":%s,\"prompt\":%s,\"max_tokens\":%d,"
	    "\"temperature\":0,\"seed\":0}", q, p, max_tokens);
	/* base64: a vector in a quarter of the bytes of its JSON numbers. */
	xasprintf(&ic->embed_body, "{\"model\":%s,\"input\":%s,"
	    "\"encoding_format\":\"base64\"}", q, p);
	free(q);
	free(p);
	ic->http = httpc_request(base, port, "POST", INFER_COMPLETE_ROUTE,
	    body, timeout_ms, infer_done, ic);
	free(body);
	return (ic);
}

void
infer_cancel(struct infer_call *ic)
{
	if (ic == NULL)
		return;
	httpc_cancel(ic->http);
	infer_free(ic);
}
