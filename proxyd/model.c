/*
 * model.c -- the top-level "model" of a JSON body, found with yajl's
 * streaming parser as the body's chunks arrive.
 *
 * Only a key of the outermost object counts ("model" inside "messages" or
 * "tools" does not). The first top-level "model" wins; parsing stops as soon
 * as its value is read, so a huge body costs only the bytes before it. yajl
 * decodes escapes in keys and strings ("mod\u0065l" is "model") and keeps a
 * token split across chunks, so chunk boundaries can fall anywhere.
 */
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "model.h"
#include "xmalloc.h"

struct model_parser {
	yajl_handle		 h;
	enum model_result	 result;
	int			 depth;		/* 1: inside the top object */
	int			 want_value;	/* the last top key was model */
	size_t			 consumed;
	const char		*error;
	char			 name[MODEL_NAME_MAX + 1];
};

static void
model_parser_set(struct model_parser *mp, enum model_result r,
    const char *error)
{
	if (mp->result == MODEL_MORE) {
		mp->result = r;
		mp->error = error;
	}
}

/* A value where the model's value is expected that is not a string. */
static int
model_parser_value(struct model_parser *mp)
{
	if (mp->depth == 0) {
		model_parser_set(mp, MODEL_INVALID,
		    "request body is not a JSON object");
		return (0);
	}
	if (mp->depth == 1 && mp->want_value) {
		model_parser_set(mp, MODEL_INVALID, "model must be a string");
		return (0);
	}
	return (1);
}

static int
model_cb_null(void *ctx)
{
	return (model_parser_value(ctx));
}

static int
model_cb_boolean(void *ctx, int b)
{
	return (model_parser_value(ctx));
}

static int
model_cb_number(void *ctx, const char *s, size_t len)
{
	return (model_parser_value(ctx));
}

static int
model_cb_string(void *ctx, const unsigned char *s, size_t len)
{
	struct model_parser	*mp = ctx;

	if (mp->depth != 1 || !mp->want_value)
		return (model_parser_value(mp));
	if (!model_name_valid((const char *)s, len)) {
		model_parser_set(mp, MODEL_INVALID, len == 0 ?
		    "model is empty" : len > MODEL_NAME_MAX ?
		    "model is longer than 128 bytes" :
		    "model contains control characters");
		return (0);
	}
	memcpy(mp->name, s, len);
	mp->name[len] = '\0';
	model_parser_set(mp, MODEL_FOUND, NULL);
	return (0);
}

static int
model_cb_start_map(void *ctx)
{
	struct model_parser	*mp = ctx;

	if (mp->depth == 1 && mp->want_value) {
		model_parser_set(mp, MODEL_INVALID, "model must be a string");
		return (0);
	}
	mp->depth++;
	return (1);
}

static int
model_cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct model_parser	*mp = ctx;

	if (mp->depth == 1)
		mp->want_value = (len == 5 && memcmp(key, "model", 5) == 0);
	return (1);
}

static int
model_cb_end_map(void *ctx)
{
	struct model_parser	*mp = ctx;

	if (--mp->depth == 0) {
		model_parser_set(mp, MODEL_ABSENT, "request body has no model");
		return (0);
	}
	return (1);
}

static int
model_cb_start_array(void *ctx)
{
	struct model_parser	*mp = ctx;

	if (!model_parser_value(mp))
		return (0);
	mp->depth++;
	return (1);
}

static int
model_cb_end_array(void *ctx)
{
	struct model_parser	*mp = ctx;

	mp->depth--;
	return (1);
}

static const yajl_callbacks model_callbacks = {
	.yajl_null = model_cb_null,
	.yajl_boolean = model_cb_boolean,
	.yajl_number = model_cb_number,
	.yajl_string = model_cb_string,
	.yajl_start_map = model_cb_start_map,
	.yajl_map_key = model_cb_map_key,
	.yajl_end_map = model_cb_end_map,
	.yajl_start_array = model_cb_start_array,
	.yajl_end_array = model_cb_end_array,
};

struct model_parser *
model_parser_new(void)
{
	struct model_parser	*mp;

	mp = xcalloc(1, sizeof(*mp));
	mp->result = MODEL_MORE;
	mp->h = yajl_alloc(&model_callbacks, NULL, mp);
	if (mp->h == NULL)
		abort();
	return (mp);
}

void
model_parser_free(struct model_parser *mp)
{
	if (mp == NULL)
		return;
	if (mp->h != NULL)
		yajl_free(mp->h);
	free(mp);
}

/* The answer is known: yajl's memory is not needed any more. */
static void
model_parser_done(struct model_parser *mp)
{
	if (mp->h != NULL) {
		yajl_free(mp->h);
		mp->h = NULL;
	}
}

enum model_result
model_parser_feed(struct model_parser *mp, const void *buf, size_t len)
{
	yajl_status	st;

	if (mp->result != MODEL_MORE || len == 0)
		return (mp->result);
	mp->consumed += len;
	st = yajl_parse(mp->h, buf, len);
	if (st == yajl_status_error)
		model_parser_set(mp, MODEL_INVALID,
		    "request body is not valid JSON");
	if (mp->result != MODEL_MORE)
		model_parser_done(mp);
	return (mp->result);
}

enum model_result
model_parser_finish(struct model_parser *mp)
{
	yajl_status	st;

	if (mp->result == MODEL_MORE) {
		st = yajl_complete_parse(mp->h);
		if (st == yajl_status_error || mp->consumed == 0)
			model_parser_set(mp, MODEL_INVALID, mp->consumed == 0 ?
			    "request body is empty" :
			    "request body is not valid JSON");
		/* A complete top-level scalar, or an unfinished object. */
		model_parser_set(mp, MODEL_INVALID, mp->depth == 0 ?
		    "request body is not a JSON object" :
		    "request body is not valid JSON");
	}
	model_parser_done(mp);
	return (mp->result);
}

const char *
model_parser_name(const struct model_parser *mp)
{
	return (mp->result == MODEL_FOUND ? mp->name : NULL);
}

const char *
model_parser_error(const struct model_parser *mp)
{
	return (mp->error);
}

size_t
model_parser_consumed(const struct model_parser *mp)
{
	return (mp->consumed);
}

int
model_name_valid(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > MODEL_NAME_MAX)
		return (0);
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return (0);
	}
	return (1);
}
