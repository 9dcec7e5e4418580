/*
 * trace.c -- parse llmux-sim traces. Each line is an arrival time in
 * seconds (a finite number, at least 0) and a model name (1 to
 * CONFIG_NAME_MAX printable characters, no comma); models are numbered in
 * the order they first appear.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xmalloc.h"

#include "trace.h"

/* Trim spaces and a trailing CR/LF in place. */
static char *
trace_trim(char *s)
{
	size_t	len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' ||
	    s[len - 1] == ' ' || s[len - 1] == '\t'))
		s[--len] = '\0';
	return (s);
}

static int
trace_model(struct trace *t, const char *name)
{
	for (size_t i = 0; i < t->n_models; i++) {
		if (strcmp(t->models[i], name) == 0)
			return ((int)i);
	}
	if (t->n_models == TRACE_MAX_MODELS)
		return (-1);
	t->models[t->n_models] = xstrdup(name);
	return ((int)t->n_models++);
}

/* Parse one data line into r; NULL or an error message. */
static const char *
trace_line(struct trace *t, char *line, struct trace_request *r)
{
	char	*comma, *time_s, *name, *end;
	double	 secs;
	size_t	 len;

	if ((comma = strchr(line, ',')) == NULL)
		return ("expected \"arrival_seconds,model\"");
	*comma = '\0';
	time_s = trace_trim(line);
	name = trace_trim(comma + 1);
	if (*time_s == '\0')
		return ("missing arrival time");
	errno = 0;
	secs = strtod(time_s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(secs))
		return ("arrival time is not a number");
	if (secs < 0.0 || secs > TRACE_MAX_SECONDS)
		return ("arrival time out of range (0 to 1e9 seconds)");
	len = strlen(name);
	if (len == 0)
		return ("missing model name");
	if (len > CONFIG_NAME_MAX)
		return ("model name too long");
	for (size_t i = 0; i < len; i++) {
		if (!isprint((unsigned char)name[i]) || name[i] == ',')
			return ("model name has a character that is not "
			    "allowed");
	}
	r->arrival_ms = llround(secs * 1000.0);
	if ((r->model = trace_model(t, name)) < 0)
		return ("too many models (at most 64)");
	return (NULL);
}

/*
 * Read one line (without its newline) into buf: its length, -1 at the end
 * of the file, -2 when it is longer than buf can hold (the rest of the line
 * is skipped).
 */
static long
trace_getline(FILE *f, char *buf, size_t size)
{
	size_t	len = 0;
	int	c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (len + 1 >= size) {
			while ((c = getc(f)) != EOF && c != '\n')
				;
			return (-2);
		}
		buf[len++] = (char)c;
	}
	buf[len] = '\0';
	if (c == EOF && len == 0)
		return (-1);
	return ((long)len);
}

static int
trace_cmp(const void *a, const void *b)
{
	const struct trace_request *x = a, *y = b;

	/* Ties keep file order, so the sort is stable. */
	if (x->arrival_ms != y->arrival_ms)
		return (x->arrival_ms < y->arrival_ms ? -1 : 1);
	return (x->seq < y->seq ? -1 : x->seq > y->seq);
}

int
trace_read(FILE *f, struct trace *t, char **cause)
{
	char		 buf[TRACE_MAX_LINE + 2];
	size_t		 cap = 0, lineno = 0;
	const char	*err;
	long		 len;

	memset(t, 0, sizeof(*t));
	*cause = NULL;
	while ((len = trace_getline(f, buf, sizeof(buf))) != -1) {
		char	*line;

		lineno++;
		if (len == -2) {
			xasprintf(cause, "%zu: line too long", lineno);
			goto fail;
		}
		if (strlen(buf) != (size_t)len) {
			xasprintf(cause, "%zu: NUL byte", lineno);
			goto fail;
		}
		line = trace_trim(buf);
		if (*line == '\0' || *line == '#')
			continue;
		if (t->n == 0 && strncmp(line, "arrival", 7) == 0)
			continue;
		if (t->n == TRACE_MAX_REQUESTS) {
			xasprintf(cause, "%zu: too many requests (at most %d)",
			    lineno, TRACE_MAX_REQUESTS);
			goto fail;
		}
		if (t->n == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			t->req = xreallocarray(t->req, cap, sizeof(*t->req));
		}
		t->req[t->n].seq = t->n;
		if ((err = trace_line(t, line, &t->req[t->n])) != NULL) {
			xasprintf(cause, "%zu: %s", lineno, err);
			goto fail;
		}
		t->n++;
	}
	if (ferror(f)) {
		xasprintf(cause, "read error");
		goto fail;
	}
	if (t->n == 0) {
		xasprintf(cause, "%zu: no requests in the trace", lineno);
		goto fail;
	}
	qsort(t->req, t->n, sizeof(*t->req), trace_cmp);
	return (0);
fail:
	trace_free(t);
	return (-1);
}

int
trace_load(const char *path, struct trace *t, char **cause)
{
	FILE	*f;
	char	*why;
	int	 rc;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	rc = trace_read(f, t, &why);
	fclose(f);
	if (rc != 0) {
		xasprintf(cause, "%s:%s", path, why);
		free(why);
	}
	return (rc);
}

void
trace_free(struct trace *t)
{
	for (size_t i = 0; i < t->n_models; i++)
		free(t->models[i]);
	free(t->req);
	memset(t, 0, sizeof(*t));
}
