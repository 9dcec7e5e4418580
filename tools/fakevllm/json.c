/*
 * json.c -- the little JSON the stand-in writes by hand (strings with
 * escapes), and a nesting check run before yajl builds a tree, so that a
 * hostile body cannot make the tree code recurse without bound.
 */
#include <string.h>

#include <event2/buffer.h>

#include "fakevllm.h"

/* Append s as a quoted JSON string. */
void
fv_json_string(struct evbuffer *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, start = 0;
	char			 esc[6];

	evbuffer_add(b, "\"", 1);
	for (i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
			continue;
		if (i > start)
			evbuffer_add(b, s + start, i - start);
		start = i + 1;
		switch (p[i]) {
		case '"':
			evbuffer_add(b, "\\\"", 2);
			break;
		case '\\':
			evbuffer_add(b, "\\\\", 2);
			break;
		case '\n':
			evbuffer_add(b, "\\n", 2);
			break;
		case '\r':
			evbuffer_add(b, "\\r", 2);
			break;
		case '\t':
			evbuffer_add(b, "\\t", 2);
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			evbuffer_add(b, esc, 6);
			break;
		}
	}
	if (len > start)
		evbuffer_add(b, s + start, len - start);
	evbuffer_add(b, "\"", 1);
}

void
fv_json_cstring(struct evbuffer *b, const char *s)
{
	fv_json_string(b, s, strlen(s));
}

/* Is the nesting of arrays and objects in this text at most max deep? */
int
fv_json_depth_ok(const char *s, size_t len, int max)
{
	size_t	i;
	int	depth = 0, instr = 0;

	for (i = 0; i < len; i++) {
		if (instr) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				instr = 0;
			continue;
		}
		switch (s[i]) {
		case '"':
			instr = 1;
			break;
		case '[':
		case '{':
			if (++depth > max)
				return (0);
			break;
		case ']':
		case '}':
			depth--;
			break;
		}
	}
	return (1);
}
