/*
 * strbuf.h -- a growing, always NUL-terminated string buffer, for text
 * built a piece at a time (the journal, manifests, metrics).
 */
#ifndef LLMUX_STRBUF_H
#define LLMUX_STRBUF_H

#include <stddef.h>

struct strbuf {
	char	*p;		/* NULL until something is added */
	size_t	 len;
	size_t	 cap;
};

#define STRBUF_INIT	{ NULL, 0, 0 }

void	strbuf_add(struct strbuf *, const char *, size_t);
void	strbuf_printf(struct strbuf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* The text so far ("" when empty), still owned by the buffer. */
const char *strbuf_str(const struct strbuf *);
void	strbuf_free(struct strbuf *);

#endif
