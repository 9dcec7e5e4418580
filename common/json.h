/*
 * json.h -- the one JSON string escaper of llmux (json.c), for the JSON
 * written by hand: the supervisor's requests to a model, llmux-fakevllm's
 * answers, the proxy's error events. Everything else is written by yajl's
 * generator.
 */
#ifndef LLMUX_JSON_H
#define LLMUX_JSON_H

#include <stddef.h>

#include "strbuf.h"

/* Where json_escape puts its output, a run of bytes at a time. */
typedef void	(*json_out_cb)(void *arg, const char *, size_t);

/*
 * The len bytes of s as the inside of a JSON string (no quotes around):
 * '"' and '\' get a backslash, \n \r \t their short escapes, the other
 * bytes under 0x20 (NUL included) \u00XX. Valid UTF-8 is copied as it is;
 * each byte that does not begin a complete, valid UTF-8 sequence becomes
 * \ufffd (U+FFFD), so the output is valid JSON whatever s holds.
 */
void	json_escape(const char *s, size_t len, json_out_cb, void *arg);
/* The same, appended to b. */
void	json_escape_strbuf(struct strbuf *b, const char *s, size_t len);
/* The C string s as a quoted JSON string, allocated. */
char	*json_quote(const char *s);

#endif
