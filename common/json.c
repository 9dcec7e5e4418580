/*
 * json.c -- the one JSON string escaper of llmux (see json.h).
 *
 * The escapes are those of llmux-fakevllm before it (and of Python's
 * json.dumps but for \b and \f, written \u0008 and \u000c): '"' and '\'
 * with a backslash; \n, \r, \t; every other byte under 0x20 as \u00XX in
 * lower-case hex; DEL and '/' as they are.
 *
 * Invalid UTF-8: JSON text is UTF-8 (RFC 8259), and a receiver may refuse
 * or mangle a string that is not, so it is never copied. The bytes are
 * read as RFC 3629 says (the shortest form only, no surrogates
 * U+D800-DFFF, nothing over U+10FFFF); each byte that does not begin a
 * complete, valid sequence is written \ufffd, the replacement character,
 * and reading goes on at the next byte (as Go's encoding/json does). So
 * "caf\xe9" becomes "caf\ufffd", and a sequence cut short at the end of
 * s gives one \ufffd per byte of it.
 */
#include <string.h>

#include "json.h"
#include "xmalloc.h"

/* Is c a continuation byte (10xxxxxx)? */
#define JSON_CONT(c)	(((c) & 0xc0) == 0x80)

/* The length of the valid UTF-8 sequence at p (n > 0 bytes), 0 if none. */
static size_t
json_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char	c = p[0];

	if (c < 0x80)
		return (1);
	if (c >= 0xc2 && c <= 0xdf)
		return (n >= 2 && JSON_CONT(p[1]) ? 2 : 0);
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || !JSON_CONT(p[1]) || !JSON_CONT(p[2]))
			return (0);
		if ((c == 0xe0 && p[1] < 0xa0) ||	/* overlong */
		    (c == 0xed && p[1] > 0x9f))		/* a surrogate */
			return (0);
		return (3);
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || !JSON_CONT(p[1]) || !JSON_CONT(p[2]) ||
		    !JSON_CONT(p[3]))
			return (0);
		if ((c == 0xf0 && p[1] < 0x90) ||	/* overlong */
		    (c == 0xf4 && p[1] > 0x8f))		/* over U+10FFFF */
			return (0);
		return (4);
	}
	return (0);	/* a continuation byte, 0xc0, 0xc1, 0xf5-0xff */
}

void
json_escape(const char *s, size_t len, json_out_cb out, void *arg)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, start = 0, n;
	char			 esc[6];

	while (i < len) {
		if (p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' &&
		    p[i] != '\\') {
			i++;
			continue;
		}
		if (p[i] >= 0x80 && (n = json_utf8_len(p + i, len - i)) > 0) {
			i += n;
			continue;
		}
		if (i > start)
			out(arg, s + start, i - start);
		switch (p[i]) {
		case '"':
			out(arg, "\\\"", 2);
			break;
		case '\\':
			out(arg, "\\\\", 2);
			break;
		case '\n':
			out(arg, "\\n", 2);
			break;
		case '\r':
			out(arg, "\\r", 2);
			break;
		case '\t':
			out(arg, "\\t", 2);
			break;
		default:
			if (p[i] >= 0x80) {
				out(arg, "\\ufffd", 6);
				break;
			}
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			out(arg, esc, 6);
			break;
		}
		start = ++i;
	}
	if (len > start)
		out(arg, s + start, len - start);
}

static void
json_strbuf_out(void *arg, const char *s, size_t n)
{
	strbuf_add(arg, s, n);
}

void
json_escape_strbuf(struct strbuf *b, const char *s, size_t len)
{
	json_escape(s, len, json_strbuf_out, b);
}

char *
json_quote(const char *s)
{
	struct strbuf	b = STRBUF_INIT;

	strbuf_add(&b, "\"", 1);
	json_escape_strbuf(&b, s, strlen(s));
	strbuf_add(&b, "\"", 1);
	return (b.p);
}
