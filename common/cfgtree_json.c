/*
 * cfgtree_json.c -- builds a cfgtree from JSON with yajl's callback
 * parser (llmux 0.7's config.json files). yajl reports no positions, but
 * during a callback it has consumed the input exactly up to the end of the
 * token it reports; between tokens JSON allows only blanks, ',' and ':',
 * so the token's start is the first other byte after the previous token.
 * A cursor walks forward once, counting lines and columns.
 */
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "cfgtree.h"
#include "cfgtree_int.h"

struct cfgtree_json {
	struct cfgtree_builder	 b;
	yajl_handle		 h;
	const char		*buf;
	size_t			 len;
	size_t			 base;	/* where yajl's input starts */
	size_t			 cur;	/* cursor: offset, line, column */
	unsigned		 line;
	unsigned		 col;
};

/* Move the cursor forward to offset to. */
static void
cfgtree_json_advance(struct cfgtree_json *j, size_t to)
{
	if (to > j->len)
		to = j->len;
	for (; j->cur < to; j->cur++) {
		if (j->buf[j->cur] == '\n') {
			j->line++;
			j->col = 1;
		} else if (((unsigned char)j->buf[j->cur] & 0xc0) != 0x80)
			j->col++;
	}
}

/* A node for the token yajl just reported, placed at its first byte. */
static struct cfgnode *
cfgtree_json_token(struct cfgtree_json *j, enum cfgnode_kind kind)
{
	struct cfgnode	*n;
	size_t		 end;

	end = j->base + yajl_get_bytes_consumed(j->h);
	while (j->cur < j->len && j->cur < end &&
	    strchr(" \t\r\n,:", j->buf[j->cur]) != NULL)
		cfgtree_json_advance(j, j->cur + 1);
	n = cfgtree_builder_node(&j->b, kind, j->line, j->col);
	cfgtree_json_advance(j, end);
	return (n);
}

/* Add a scalar token with its text; 1 to go on, 0 to stop yajl. */
static int
cfgtree_json_scalar(struct cfgtree_json *j, enum cfgnode_tag tag,
    bool quoted, const char *s, size_t len)
{
	struct cfgnode	*n;

	if ((n = cfgtree_json_token(j, CFGNODE_SCALAR)) == NULL)
		return (0);
	n->tag = tag;
	n->quoted = quoted;
	if (cfgtree_builder_text(&j->b, n, s, len) != 0) {
		cfgtree_free(n);
		return (0);
	}
	return (cfgtree_builder_add(&j->b, n) == 0);
}

static int
cfgtree_json_null(void *arg)
{
	return (cfgtree_json_scalar(arg, CFGTAG_NULL, false, "null", 4));
}

static int
cfgtree_json_bool(void *arg, int v)
{
	return (cfgtree_json_scalar(arg, CFGTAG_BOOL, false,
	    v ? "true" : "false", v ? 4 : 5));
}

static int
cfgtree_json_number(void *arg, const char *s, size_t len)
{
	return (cfgtree_json_scalar(arg, cfgtree_is_integer(s, len) ?
	    CFGTAG_INT : CFGTAG_FLOAT, false, s, len));
}

static int
cfgtree_json_string(void *arg, const unsigned char *s, size_t len)
{
	return (cfgtree_json_scalar(arg, CFGTAG_STR, true, (const char *)s,
	    len));
}

static int
cfgtree_json_open(void *arg, enum cfgnode_kind kind)
{
	struct cfgtree_json	*j = arg;
	struct cfgnode		*n;

	if ((n = cfgtree_json_token(j, kind)) == NULL)
		return (0);
	return (cfgtree_builder_add(&j->b, n) == 0);
}

static int
cfgtree_json_start_map(void *arg)
{
	return (cfgtree_json_open(arg, CFGNODE_MAP));
}

static int
cfgtree_json_start_array(void *arg)
{
	return (cfgtree_json_open(arg, CFGNODE_SEQ));
}

static int
cfgtree_json_close(void *arg)
{
	struct cfgtree_json	*j = arg;

	cfgtree_json_advance(j, j->base + yajl_get_bytes_consumed(j->h));
	return (cfgtree_builder_close(&j->b) == 0);
}

static const yajl_callbacks cfgtree_json_callbacks = {
	.yajl_null = cfgtree_json_null,
	.yajl_boolean = cfgtree_json_bool,
	.yajl_number = cfgtree_json_number,
	.yajl_string = cfgtree_json_string,
	.yajl_start_map = cfgtree_json_start_map,
	.yajl_map_key = cfgtree_json_string,
	.yajl_end_map = cfgtree_json_close,
	.yajl_start_array = cfgtree_json_start_array,
	.yajl_end_array = cfgtree_json_close,
};

/* Record yajl's own error at offset off. */
static void
cfgtree_json_error(struct cfgtree_json *j, size_t off)
{
	unsigned char	*msg;
	char		*m, *e;

	if (j->b.failed)
		return;
	cfgtree_json_advance(j, off);
	msg = yajl_get_error(j->h, 0, NULL, 0);
	m = (char *)msg;
	if (m != NULL && (e = strstr(m, "error: ")) != NULL)
		m = e + strlen("error: ");
	if (m != NULL)
		m[strcspn(m, "\r\n")] = '\0';
	cfgtree_builder_fail(&j->b, j->line, j->col, "JSON syntax error: %s",
	    m != NULL ? m : "unknown");
	if (msg != NULL)
		yajl_free_error(j->h, msg);
}

struct cfgnode *
cfgtree_parse_json(const char *buf, size_t len, struct cfgtree_error *err)
{
	struct cfgtree_json	j;
	yajl_status		st;

	memset(&j, 0, sizeof(j));
	cfgtree_builder_init(&j.b, err);
	j.buf = buf;
	j.len = len;
	j.line = 1;
	j.col = 1;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		j.base = j.cur = 3;
	if ((j.h = yajl_alloc(&cfgtree_json_callbacks, NULL, &j)) == NULL) {
		cfgtree_builder_fail(&j.b, 0, 0,
		    "cannot start the JSON parser");
		return (cfgtree_builder_finish(&j.b));
	}
	st = yajl_parse(j.h, (const unsigned char *)buf + j.base,
	    len - j.base);
	if (st == yajl_status_error)
		cfgtree_json_error(&j, j.base + yajl_get_bytes_consumed(j.h));
	else if (st == yajl_status_ok) {
		/* Offsets now refer to yajl's own padding: use the end. */
		if (yajl_complete_parse(j.h) == yajl_status_error)
			cfgtree_json_error(&j, len);
	}
	yajl_free(j.h);
	return (cfgtree_builder_finish(&j.b));
}
