/*
 * xmalloc.h -- allocation that never returns NULL (it aborts instead), so
 * no caller checks, as in tmux and OpenBSD.
 */
#ifndef LLMUX_XMALLOC_H
#define LLMUX_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* The largest single allocation requested so far (reset it if asked). */
size_t	 xmalloc_largest(int reset);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
