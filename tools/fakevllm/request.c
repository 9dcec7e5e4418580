/*
 * request.c -- read the body of POST /v1/chat/completions,
 * /v1/completions and /v1/embeddings into a struct fv_genreq: what to
 * hash, how many prompt tokens, how many to generate, whether to stream
 * (for embeddings: each input's hash and tokens, and the output's form).
 * Bodies come from the network, so every field is checked for type and
 * range; a bad one is an error message naming the field, as vLLM's 400
 * answers do.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "fakevllm.h"
#include "xmalloc.h"

struct request_ctx {
	struct fv_genreq	*r;
	char			*err;
	size_t			 errlen;
	const char		**param;
};

static int __attribute__((format(printf, 3, 4)))
request_fail(struct request_ctx *c, const char *param, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	*c->param = param;
	return (-1);
}

static yajl_val
request_get(yajl_val obj, const char *key)
{
	size_t	i;

	for (i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return (obj->u.object.values[i]);
	return (NULL);
}

/* An optional boolean: absent and null leave *out alone. */
static int
request_bool(struct request_ctx *c, yajl_val obj, const char *key, int *out)
{
	yajl_val	v;

	if ((v = request_get(obj, key)) == NULL || YAJL_IS_NULL(v))
		return (0);
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return (request_fail(c, key, "'%s' must be a boolean", key));
	*out = YAJL_IS_TRUE(v);
	return (0);
}

/* An optional integer; returns 1 when present. */
static int
request_int(struct request_ctx *c, yajl_val obj, const char *key,
    int64_t *out)
{
	yajl_val	v;

	if ((v = request_get(obj, key)) == NULL || YAJL_IS_NULL(v))
		return (0);
	if (!YAJL_IS_INTEGER(v))
		return (request_fail(c, key, "'%s' must be an integer", key));
	*out = YAJL_GET_INTEGER(v);
	return (1);
}

/* Text of a message's content: a string, null, or a list of parts. */
static int
request_content(struct request_ctx *c, yajl_val content, uint64_t *h,
    uint32_t *tokens)
{
	yajl_val	part, type, text;
	size_t		i;

	if (content == NULL || YAJL_IS_NULL(content))
		return (0);
	if (YAJL_IS_STRING(content)) {
		const char *s = content->u.string;

		*h = fv_generate_hash(*h, s, strlen(s));
		*tokens += fv_generate_count(s, strlen(s));
		return (0);
	}
	if (!YAJL_IS_ARRAY(content))
		return (request_fail(c, "messages", "a message's 'content' "
		    "must be a string or a list of parts"));
	for (i = 0; i < content->u.array.len; i++) {
		part = content->u.array.values[i];
		if (!YAJL_IS_OBJECT(part))
			return (request_fail(c, "messages", "a content part "
			    "must be an object"));
		type = request_get(part, "type");
		if (type == NULL || !YAJL_IS_STRING(type))
			return (request_fail(c, "messages", "a content part "
			    "needs a 'type'"));
		if (strcmp(type->u.string, "text") != 0) {
			*tokens += 1;	/* an image or audio placeholder */
			continue;
		}
		text = request_get(part, "text");
		if (text == NULL || !YAJL_IS_STRING(text))
			return (request_fail(c, "messages", "a text part needs "
			    "a string 'text'"));
		*h = fv_generate_hash(*h, text->u.string,
		    strlen(text->u.string));
		*tokens += fv_generate_count(text->u.string,
		    strlen(text->u.string));
	}
	return (0);
}

/*
 * Chat messages. The prompt is counted as a Llama-3 style template would
 * render it: one token to begin, four around each message, three for the
 * assistant's header.
 */
static int
request_messages(struct request_ctx *c, yajl_val root)
{
	yajl_val	msgs, m, role;
	uint64_t	h = FV_HASH_INIT;
	uint32_t	tokens = 1 + 3;
	size_t		i;

	msgs = request_get(root, "messages");
	if (msgs == NULL || YAJL_IS_NULL(msgs))
		return (request_fail(c, "messages", "Field required: "
		    "'messages'"));
	if (!YAJL_IS_ARRAY(msgs))
		return (request_fail(c, "messages", "'messages' must be a "
		    "list"));
	if (msgs->u.array.len == 0)
		return (request_fail(c, "messages", "'messages' must not be "
		    "empty"));
	for (i = 0; i < msgs->u.array.len; i++) {
		m = msgs->u.array.values[i];
		if (!YAJL_IS_OBJECT(m))
			return (request_fail(c, "messages", "each message must "
			    "be an object"));
		role = request_get(m, "role");
		if (role == NULL || !YAJL_IS_STRING(role))
			return (request_fail(c, "messages", "each message needs "
			    "a string 'role'"));
		h = fv_generate_hash(h, role->u.string,
		    strlen(role->u.string) + 1);
		tokens += 4;
		if (request_content(c, request_get(m, "content"), &h,
		    &tokens) != 0)
			return (-1);
		h = fv_generate_hash(h, "", 1);
	}
	c->r->prompt_hash = h;
	c->r->prompt_tokens = tokens;
	return (0);
}

/* The hash of a list of token ids (of the field named param). */
static int
request_id_hash(struct request_ctx *c, yajl_val ids, const char *param,
    uint64_t *out)
{
	uint64_t	h = FV_HASH_INIT, id;
	size_t		i;

	for (i = 0; i < ids->u.array.len; i++) {
		if (!YAJL_IS_INTEGER(ids->u.array.values[i]) ||
		    YAJL_GET_INTEGER(ids->u.array.values[i]) < 0)
			return (request_fail(c, param, "token ids must be "
			    "non-negative integers"));
		id = (uint64_t)YAJL_GET_INTEGER(ids->u.array.values[i]);
		h = fv_generate_hash(h, &id, sizeof(id));
	}
	*out = h;
	return (0);
}

/* A list of token ids. */
static int
request_ids(struct request_ctx *c, yajl_val ids)
{
	if (request_id_hash(c, ids, "prompt", &c->r->prompt_hash) != 0)
		return (-1);
	c->r->prompt_tokens = (uint32_t)ids->u.array.len;
	return (0);
}

/* One input to embed: a string or a non-empty list of token ids. */
static int
request_input(struct request_ctx *c, yajl_val v, size_t i)
{
	struct fv_genreq	*r = c->r;
	const char		*s;

	if (YAJL_IS_STRING(v)) {
		s = v->u.string;
		r->input_hash[i] = fv_generate_hash(FV_HASH_INIT, s, strlen(s));
		r->input_tokens[i] = 1 + fv_generate_count(s, strlen(s));
		return (0);
	}
	if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0)
		return (request_fail(c, "input", "'input' must be a string, a "
		    "list of strings, a list of token ids or a list of them"));
	r->input_tokens[i] = (uint32_t)v->u.array.len;
	return (request_id_hash(c, v, "input", &r->input_hash[i]));
}

/* Embeddings: input, encoding_format, dimensions. */
static int
request_embed(struct request_ctx *c, yajl_val root)
{
	struct fv_genreq	*r = c->r;
	yajl_val		 in, v;
	size_t			 n, i;
	int			 rc, one;

	in = request_get(root, "input");
	if (in == NULL || YAJL_IS_NULL(in))
		return (request_fail(c, "input", "Field required: 'input'"));
	if (YAJL_IS_ARRAY(in) && in->u.array.len == 0)
		return (request_fail(c, "input", "'input' must not be empty"));
	/* One text, one list of token ids, or a list of either. */
	one = !YAJL_IS_ARRAY(in) || YAJL_IS_INTEGER(in->u.array.values[0]);
	n = one ? 1 : in->u.array.len;
	if (n > FV_EMBED_MAX_INPUTS)
		return (request_fail(c, "input", "at most %d inputs per request",
		    FV_EMBED_MAX_INPUTS));
	r->input_hash = xcalloc(n, sizeof(*r->input_hash));
	r->input_tokens = xcalloc(n, sizeof(*r->input_tokens));
	r->n_inputs = n;
	for (i = 0; i < n; i++) {
		if (request_input(c, one ? in : in->u.array.values[i], i) != 0)
			return (-1);
		r->prompt_tokens += r->input_tokens[i];
	}
	if ((v = request_get(root, "encoding_format")) != NULL &&
	    !YAJL_IS_NULL(v)) {
		if (YAJL_IS_STRING(v) && strcmp(v->u.string, "base64") == 0)
			r->base64 = 1;
		else if (!YAJL_IS_STRING(v) || strcmp(v->u.string, "float") != 0)
			return (request_fail(c, "encoding_format",
			    "'encoding_format' must be 'float' or 'base64'"));
	}
	r->dimensions = -1;
	if ((rc = request_int(c, root, "dimensions", &r->dimensions)) < 0)
		return (-1);
	if (rc == 1 && (r->dimensions < 1 || r->dimensions > FV_EMBED_DIM))
		return (request_fail(c, "dimensions", "dimensions must be 1 to "
		    "%d for this model, got %lld", FV_EMBED_DIM,
		    (long long)r->dimensions));
	if ((v = request_get(root, "model")) != NULL && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_STRING(v))
			return (request_fail(c, "model", "'model' must be a "
			    "string"));
		r->model = xstrdup(v->u.string);
	}
	return (0);
}

/* A completion prompt: text, [text], token ids, or [token ids]. */
static int
request_prompt(struct request_ctx *c, yajl_val root)
{
	yajl_val	p, first;
	const char	*s;

	p = request_get(root, "prompt");
	if (p == NULL || YAJL_IS_NULL(p))
		return (request_fail(c, "prompt", "Field required: 'prompt'"));
	if (YAJL_IS_ARRAY(p)) {
		if (p->u.array.len == 0)
			return (request_fail(c, "prompt", "'prompt' must not be "
			    "empty"));
		first = p->u.array.values[0];
		if (YAJL_IS_INTEGER(first))
			return (request_ids(c, p));
		if (p->u.array.len > 1)
			return (request_fail(c, "prompt", "llmux-fakevllm "
			    "serves one prompt per request"));
		if (YAJL_IS_ARRAY(first)) {
			if (first->u.array.len == 0)
				return (request_fail(c, "prompt", "'prompt' "
				    "must not be empty"));
			return (request_ids(c, first));
		}
		p = first;
	}
	if (!YAJL_IS_STRING(p))
		return (request_fail(c, "prompt", "'prompt' must be a string, "
		    "a list of strings or a list of token ids"));
	s = p->u.string;
	c->r->prompt_hash = fv_generate_hash(FV_HASH_INIT, s, strlen(s));
	c->r->prompt_tokens = 1 + fv_generate_count(s, strlen(s));
	return (0);
}

static int
request_sampling(struct request_ctx *c, yajl_val root)
{
	struct fv_genreq	*r = c->r;
	yajl_val		 v, opts;
	int64_t			 n;
	int			 rc;

	if ((v = request_get(root, "model")) != NULL && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_STRING(v))
			return (request_fail(c, "model", "'model' must be a "
			    "string"));
		r->model = xstrdup(v->u.string);
	}
	r->max_tokens = -1;
	if (r->kind == FV_CHAT &&
	    (rc = request_int(c, root, "max_completion_tokens",
	    &r->max_tokens)) != 0) {
		if (rc < 0)
			return (-1);
	} else if (request_int(c, root, "max_tokens", &r->max_tokens) < 0)
		return (-1);
	if (r->max_tokens != -1 && r->max_tokens < 1)
		return (request_fail(c, "max_tokens", "max_tokens must be at "
		    "least 1, got %lld.", (long long)r->max_tokens));
	if (request_bool(c, root, "stream", &r->stream) != 0)
		return (-1);
	opts = request_get(root, "stream_options");
	if (opts != NULL && !YAJL_IS_NULL(opts)) {
		if (!YAJL_IS_OBJECT(opts))
			return (request_fail(c, "stream_options",
			    "'stream_options' must be an object"));
		if (!r->stream)
			return (request_fail(c, "stream_options", "Stream "
			    "options can only be defined when `stream=True`."));
		if (request_bool(c, opts, "include_usage",
		    &r->include_usage) != 0 ||
		    request_bool(c, opts, "continuous_usage_stats",
		    &r->continuous_usage) != 0)
			return (-1);
	}
	if ((v = request_get(root, "temperature")) != NULL &&
	    !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_NUMBER(v))
			return (request_fail(c, "temperature", "'temperature' "
			    "must be a number"));
		r->temperature = YAJL_GET_DOUBLE(v);
		if (YAJL_IS_INTEGER(v))
			r->temperature = (double)YAJL_GET_INTEGER(v);
		if (r->temperature < 0)
			return (request_fail(c, "temperature", "temperature "
			    "must be non-negative, got %g.", r->temperature));
		r->has_temperature = 1;
	}
	if ((rc = request_int(c, root, "seed", &r->seed)) < 0)
		return (-1);
	r->has_seed = rc;
	if ((rc = request_int(c, root, "n", &n)) < 0)
		return (-1);
	if (rc == 1 && n < 1)
		return (request_fail(c, "n", "n must be at least 1, got %lld.",
		    (long long)n));
	if (rc == 1 && n > 1)
		return (request_fail(c, "n", "llmux-fakevllm generates one "
		    "choice per request (n=1)"));
	return (0);
}

/*
 * Parse one request body of the given kind. On error returns -1 with a
 * message in err and the offending field (or NULL) in *param.
 */
int
fv_request_parse(struct fv_genreq *r, int kind, const char *body, size_t len,
    char *err, size_t errlen, const char **param)
{
	struct request_ctx	 c = { r, err, errlen, param };
	yajl_val		 root;
	char			*text, yerr[256];
	int			 rc;

	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->max_tokens = -1;
	*param = NULL;
	if (len == 0)
		return (request_fail(&c, NULL, "the request body is empty"));
	if (memchr(body, '\0', len) != NULL)
		return (request_fail(&c, NULL, "the request body is not JSON"));
	if (!fv_json_depth_ok(body, len, FV_JSON_DEPTH))
		return (request_fail(&c, NULL, "the request body nests more "
		    "than %d deep", FV_JSON_DEPTH));
	text = xmalloc(len + 1);
	memcpy(text, body, len);
	text[len] = '\0';
	yerr[0] = '\0';
	root = yajl_tree_parse(text, yerr, sizeof(yerr));
	free(text);
	if (root == NULL) {
		yerr[strcspn(yerr, "\n")] = '\0';
		return (request_fail(&c, NULL, "JSON decode error: %s",
		    yerr[0] != '\0' ? yerr : "invalid JSON"));
	}
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return (request_fail(&c, NULL, "the request body must be a "
		    "JSON object"));
	}
	if (kind == FV_EMBED)
		rc = request_embed(&c, root);
	else if (kind == FV_CHAT)
		rc = request_messages(&c, root);
	else
		rc = request_prompt(&c, root);
	if (rc == 0 && kind != FV_EMBED)
		rc = request_sampling(&c, root);
	yajl_tree_free(root);
	if (rc != 0)
		fv_request_free(r);
	return (rc);
}

void
fv_request_free(struct fv_genreq *r)
{
	free(r->model);
	r->model = NULL;
	free(r->input_hash);
	r->input_hash = NULL;
	free(r->input_tokens);
	r->input_tokens = NULL;
	r->n_inputs = 0;
}
