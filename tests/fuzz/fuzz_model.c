/*
 * fuzz_model.c -- libFuzzer target for the model extraction of request
 * bodies: the input (after a first byte that chooses chunk sizes) is a
 * body; fed whole and fed in chunks it must give the same answer and the
 * same model, and a model found is always a valid name.
 *
 * It must also agree with yajl's parser fed the whole body at once (what
 * proxyd/model.c used before its own scanner): the same answer and the
 * same name, unless the body holds a \u escape of a UTF-16 surrogate,
 * which yajl decodes in its own way (a lone one becomes "?" and eats the
 * next byte), so that a name's length can differ. Bodies nested deeper
 * than MODEL_MAX_DEPTH are refused by the scanner alone.
 *
 * A model found is rewritten (model_rewrite, what a model-override does)
 * to a name that needs escapes: the body scanned again must give that
 * name at the same place, and every byte before and after the value must
 * be as it was.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <yajl/yajl_parse.h>

#include "proxyd/model.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The rewrite of a body whose model was found at sp. */
static void
fuzz_model_rewrite(const uint8_t *buf, size_t len, const struct model_span *sp)
{
	static const char	 name[] = "org/\"re\\written\"";
	struct evbuffer		*b = evbuffer_new();
	struct model_parser	*mp = model_parser_new();
	struct model_span	 sp2;
	const uint8_t		*out;
	size_t			 olen;

	if (sp->form || sp->at + sp->len > len || sp->len < 2 ||
	    buf[sp->at] != '"' || buf[sp->at + sp->len - 1] != '"')
		abort();
	evbuffer_add(b, buf, len);
	if (model_rewrite(b, sp, name) != 0)
		abort();
	olen = evbuffer_get_length(b);
	out = evbuffer_pullup(b, -1);
	if (olen < len - sp->len || memcmp(out, buf, sp->at) != 0 ||
	    memcmp(out + olen - (len - sp->at - sp->len), buf + sp->at + sp->len,
	    len - sp->at - sp->len) != 0)
		abort();
	if (model_parser_feed(mp, out, olen) != MODEL_FOUND ||
	    strcmp(model_parser_name(mp), name) != 0 ||
	    !model_parser_span(mp, &sp2) || sp2.at != sp->at ||
	    sp2.at + sp2.len != olen - (len - sp->at - sp->len))
		abort();
	model_parser_free(mp);
	evbuffer_free(b);
}

static enum model_result
fuzz_model_run(const uint8_t *buf, size_t len, size_t step, char *name,
    const char **error)
{
	struct model_parser	*mp;
	enum model_result	 r = MODEL_MORE;
	size_t			 off = 0, n;

	struct model_span	 sp;

	mp = model_parser_new();
	while (off < len && r == MODEL_MORE) {
		n = step == 0 ? len - off : step;
		if (n > len - off)
			n = len - off;
		r = model_parser_feed(mp, buf + off, n);
		off += n;
		/* Vary the chunk size as a client's writes would. */
		if (step != 0)
			step = step % 7 + 1;
	}
	if (r == MODEL_MORE)
		r = model_parser_finish(mp);
	name[0] = '\0';
	if (r == MODEL_FOUND) {
		const char *s = model_parser_name(mp);

		if (!model_name_valid(s, strlen(s)) ||
		    !model_parser_span(mp, &sp))
			abort();
		strcpy(name, s);
		if (step == 0)
			fuzz_model_rewrite(buf, len, &sp);
	} else if (model_parser_name(mp) != NULL ||
	    model_parser_error(mp) == NULL)
		abort();
	*error = model_parser_error(mp);
	model_parser_free(mp);
	return (r);
}

/* ---- the reference: yajl's callbacks, the whole body at once ---- */

struct fuzz_ref {
	enum model_result	 result;
	int			 depth;
	int			 want_value;
	char			 name[MODEL_NAME_MAX + 1];
};

static int
fuzz_ref_set(struct fuzz_ref *r, enum model_result v)
{
	if (r->result == MODEL_MORE)
		r->result = v;
	return (0);
}

static int
fuzz_ref_value(void *ctx)
{
	struct fuzz_ref	*r = ctx;

	if (r->depth == 0 || (r->depth == 1 && r->want_value))
		return (fuzz_ref_set(r, MODEL_INVALID));
	return (1);
}

static int
fuzz_ref_bool(void *ctx, int b)
{
	return (fuzz_ref_value(ctx));
}

static int
fuzz_ref_number(void *ctx, const char *s, size_t len)
{
	return (fuzz_ref_value(ctx));
}

static int
fuzz_ref_string(void *ctx, const unsigned char *s, size_t len)
{
	struct fuzz_ref	*r = ctx;

	if (r->depth != 1 || !r->want_value)
		return (fuzz_ref_value(r));
	if (!model_name_valid((const char *)s, len))
		return (fuzz_ref_set(r, MODEL_INVALID));
	memcpy(r->name, s, len);
	r->name[len] = '\0';
	return (fuzz_ref_set(r, MODEL_FOUND));
}

static int
fuzz_ref_start_map(void *ctx)
{
	struct fuzz_ref	*r = ctx;

	if (r->depth == 1 && r->want_value)
		return (fuzz_ref_set(r, MODEL_INVALID));
	r->depth++;
	return (1);
}

static int
fuzz_ref_key(void *ctx, const unsigned char *key, size_t len)
{
	struct fuzz_ref	*r = ctx;

	if (r->depth == 1)
		r->want_value = len == 5 && memcmp(key, "model", 5) == 0;
	return (1);
}

static int
fuzz_ref_end_map(void *ctx)
{
	struct fuzz_ref	*r = ctx;

	if (--r->depth == 0)
		return (fuzz_ref_set(r, MODEL_ABSENT));
	return (1);
}

static int
fuzz_ref_start_array(void *ctx)
{
	struct fuzz_ref	*r = ctx;

	if (!fuzz_ref_value(r))
		return (0);
	r->depth++;
	return (1);
}

static int
fuzz_ref_end_array(void *ctx)
{
	((struct fuzz_ref *)ctx)->depth--;
	return (1);
}

static const yajl_callbacks fuzz_ref_callbacks = {
	.yajl_null = fuzz_ref_value,
	.yajl_boolean = fuzz_ref_bool,
	.yajl_number = fuzz_ref_number,
	.yajl_string = fuzz_ref_string,
	.yajl_start_map = fuzz_ref_start_map,
	.yajl_map_key = fuzz_ref_key,
	.yajl_end_map = fuzz_ref_end_map,
	.yajl_start_array = fuzz_ref_start_array,
	.yajl_end_array = fuzz_ref_end_array,
};

static enum model_result
fuzz_ref_run(const uint8_t *buf, size_t len, char *name)
{
	struct fuzz_ref	 r;
	yajl_handle	 h;

	memset(&r, 0, sizeof(r));
	r.result = MODEL_MORE;
	h = yajl_alloc(&fuzz_ref_callbacks, NULL, &r);
	if (yajl_parse(h, buf, len) == yajl_status_error)
		fuzz_ref_set(&r, MODEL_INVALID);
	if (r.result == MODEL_MORE)
		yajl_complete_parse(h);
	fuzz_ref_set(&r, MODEL_INVALID);
	yajl_free(h);
	strcpy(name, r.result == MODEL_FOUND ? r.name : "");
	return (r.result);
}

/* Does the body hold a \u escape of a UTF-16 surrogate? */
static int
fuzz_has_surrogate(const uint8_t *buf, size_t len)
{
	size_t	i;

	for (i = 0; i + 3 < len; i++) {
		if (buf[i] == '\\' && buf[i + 1] == 'u' &&
		    (buf[i + 2] == 'd' || buf[i + 2] == 'D') &&
		    strchr("89abcdefABCDEF", buf[i + 3]) != NULL &&
		    buf[i + 3] != '\0')
			return (1);
	}
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char			whole[MODEL_NAME_MAX + 1];
	char			split[MODEL_NAME_MAX + 1];
	char			ref[MODEL_NAME_MAX + 1];
	const char		*error;
	enum model_result	a, b, c;

	if (size < 1)
		return (0);
	a = fuzz_model_run(data + 1, size - 1, 0, whole, &error);
	b = fuzz_model_run(data + 1, size - 1, (size_t)data[0] % 13 + 1,
	    split, &error);
	if (a != b || strcmp(whole, split) != 0)
		abort();
	if ((a == MODEL_INVALID && strstr(error, "nested") != NULL) ||
	    fuzz_has_surrogate(data + 1, size - 1))
		return (0);
	c = fuzz_ref_run(data + 1, size - 1, ref);
	if (a != c || strcmp(whole, ref) != 0)
		abort();
	return (0);
}
