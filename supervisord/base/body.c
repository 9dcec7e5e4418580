/*
 * body.c -- building reply bodies: one msgpack map each, shaped like the
 * JSON of llmux 0.7's control API, written with msgpack-c's packer. The
 * caller counts a map's pairs before writing them, as msgpack needs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "xmalloc.h"
#include "supervisord/base/base.h"

struct body {
	msgpack_sbuffer	sb;
	msgpack_packer	pk;
};

struct body *
body_new(void)
{
	struct body	*b;

	b = xcalloc(1, sizeof(*b));
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	return (b);
}

void
body_free(struct body *b)
{
	if (b == NULL)
		return;
	msgpack_sbuffer_destroy(&b->sb);
	free(b);
}

const uint8_t *
body_data(const struct body *b, size_t *len)
{
	*len = b->sb.size;
	return ((const uint8_t *)b->sb.data);
}

void
body_map(struct body *b, size_t n)
{
	msgpack_pack_map(&b->pk, n);
}

void
body_array(struct body *b, size_t n)
{
	msgpack_pack_array(&b->pk, n);
}

void
body_str(struct body *b, const char *s)
{
	if (s == NULL) {
		msgpack_pack_nil(&b->pk);
		return;
	}
	msgpack_pack_str_with_body(&b->pk, s, strlen(s));
}

void
body_uint(struct body *b, uint64_t v)
{
	msgpack_pack_uint64(&b->pk, v);
}

void
body_int(struct body *b, int64_t v)
{
	msgpack_pack_int64(&b->pk, v);
}

void
body_double(struct body *b, double v)
{
	msgpack_pack_double(&b->pk, v);
}

void
body_bool(struct body *b, bool v)
{
	if (v)
		msgpack_pack_true(&b->pk);
	else
		msgpack_pack_false(&b->pk);
}

void
body_nil(struct body *b)
{
	msgpack_pack_nil(&b->pk);
}

void
body_kstr(struct body *b, const char *k, const char *v)
{
	body_str(b, k);
	body_str(b, v);
}

void
body_kuint(struct body *b, const char *k, uint64_t v)
{
	body_str(b, k);
	body_uint(b, v);
}

void
body_kbool(struct body *b, const char *k, bool v)
{
	body_str(b, k);
	body_bool(b, v);
}

/* {"weights": "offload", "process": "keep_running"}, as llmux 0.7's serde. */
void
body_eviction(struct body *b, const struct eviction *e)
{
	body_map(b, 2);
	body_kstr(b, "weights", eviction_weights_name(e->weights));
	body_kstr(b, "process", eviction_process_name(e->process));
}

struct body *
body_message(const char *key, const char *fmt, ...)
{
	struct body	*b = body_new();
	char		*s;
	va_list		 ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	body_map(b, 1);
	body_kstr(b, key, s);
	free(s);
	return (b);
}

const char *
body_eviction_debug(const struct eviction *e, char *buf, size_t len)
{
	snprintf(buf, len, "EvictionPolicy { weights: %s, process: %s }",
	    eviction_weights_title(e->weights),
	    eviction_process_title(e->process));
	return (buf);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
body_utf8_len(const unsigned char *s, size_t n)
{
	size_t	len;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return (0);
	if (len > n)
		return (0);
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return (0);
	return (len);
}

/*
 * Make text from a model (its log, its answers) safe to send: valid
 * UTF-8, no control characters but newline and tab, and short enough for
 * a protocol text field (cut at a character boundary).
 */
void
body_text_clean(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 n = strlen(s), i = 0, l;

	while (i < n) {
		if (i >= PROTO_MAX_TEXT - 1) {
			p[i] = '\0';
			return;
		}
		if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') ||
		    p[i] == 0x7f) {
			p[i++] = '?';
			continue;
		}
		if ((l = body_utf8_len(p + i, n - i)) == 0) {
			p[i++] = '?';
			continue;
		}
		if (i + l > PROTO_MAX_TEXT - 1) {
			p[i] = '\0';
			return;
		}
		i += l;
	}
}

char *
body_text_dup(const char *s)
{
	char	*d = xstrdup(s != NULL ? s : "");

	body_text_clean(d);
	return (d);
}
