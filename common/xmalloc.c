/*
 * xmalloc.c -- allocation wrappers that abort on failure (see xmalloc.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

/*
 * The largest single request so far, so tests can bound what a decoder
 * allocates. Relaxed atomics: worker threads allocate too.
 */
static size_t xmalloc_peak;

static void
xmalloc_note(size_t size)
{
	size_t	peak = __atomic_load_n(&xmalloc_peak, __ATOMIC_RELAXED);

	while (size > peak && !__atomic_compare_exchange_n(&xmalloc_peak,
	    &peak, size, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

size_t
xmalloc_largest(int reset)
{
	if (reset)
		return (__atomic_exchange_n(&xmalloc_peak, 0,
		    __ATOMIC_RELAXED));
	return (__atomic_load_n(&xmalloc_peak, __ATOMIC_RELAXED));
}

void *
xmalloc(size_t size)
{
	void	*p;

	xmalloc_note(size);
	if ((p = malloc(size == 0 ? 1 : size)) == NULL)
		fatalx("out of memory size=%zu", size);
	return (p);
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if (size != 0 && n > SIZE_MAX / size)
		fatalx("allocation overflow n=%zu size=%zu", n, size);
	xmalloc_note(n * size);
	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		fatalx("out of memory n=%zu size=%zu", n, size);
	return (p);
}

void *
xrealloc(void *ptr, size_t size)
{
	return (xreallocarray(ptr, 1, size));
}

void *
xreallocarray(void *ptr, size_t n, size_t size)
{
	void	*p;

	if (size != 0 && n > SIZE_MAX / size)
		fatalx("allocation overflow n=%zu size=%zu", n, size);
	xmalloc_note(n * size);
	if ((p = realloc(ptr, n * size == 0 ? 1 : n * size)) == NULL)
		fatalx("out of memory n=%zu size=%zu", n, size);
	return (p);
}

char *
xstrdup(const char *s)
{
	return (xstrndup(s, strlen(s)));
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;
	size_t	 len = strnlen(s, n);

	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return (p);
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("out of memory in xasprintf");
	return (n);
}
