/*
 * trace.h -- workload traces for llmux-sim: CSV lines
 * "arrival_seconds,model", read with limits and clear errors.
 */
#ifndef LLMUX_TRACE_H
#define LLMUX_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_MAX_REQUESTS	10000000
#define TRACE_MAX_MODELS	64
#define TRACE_MAX_LINE		4096
#define TRACE_MAX_SECONDS	1e9

struct trace_request {
	int64_t		 arrival_ms;
	int		 model;
	size_t		 seq;		/* line order */
};

struct trace {
	struct trace_request	*req;		/* sorted by arrival, stable */
	size_t			 n;
	char			*models[TRACE_MAX_MODELS]; /* first-seen order */
	size_t			 n_models;
};

/*
 * Read a trace. Blank lines, lines starting with '#' and a first line
 * starting with "arrival" (a header) are skipped. Returns 0, or -1 with
 * *cause ("LINE: message"; free it).
 */
int	trace_read(FILE *, struct trace *, char **cause);
int	trace_load(const char *path, struct trace *, char **cause);
void	trace_free(struct trace *);

#endif
