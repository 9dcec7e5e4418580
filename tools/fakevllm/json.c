/*
 * json.c -- the little JSON the stand-in writes by hand (strings, through
 * the escaper of common/json.c), and a nesting check run before yajl
 * builds a tree, so that a hostile body cannot make the tree code recurse
 * without bound.
 */
#include <string.h>

#include <event2/buffer.h>

#include "json.h"
#include "fakevllm.h"

static void
fv_json_out(void *arg, const char *s, size_t n)
{
	evbuffer_add(arg, s, n);
}

/* Append s as a quoted JSON string. */
void
fv_json_string(struct evbuffer *b, const char *s, size_t len)
{
	evbuffer_add(b, "\"", 1);
	json_escape(s, len, fv_json_out, b);
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
