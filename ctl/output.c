/*
 * output.c -- what llmuxctl prints: aligned tables, a progress line for
 * long operations (on stderr: redrawn in place on a terminal with the time
 * spent in the phase, one line per phase otherwise with the time at which
 * it began), reply bodies as JSON for --json, and errors: one
 * "llmuxctl: ..." line on stderr, or with --json one {"error": "..."}
 * document on stdout (the shape of the supervisor's own refusals).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "mpjson.h"
#include "xmalloc.h"

struct table {
	int	  cols;
	char	**cells;	/* rows * cols */
	size_t	  rows;
};

struct table *
table_new(int cols, ...)
{
	struct table	*t = xcalloc(1, sizeof(*t));
	va_list		 ap;

	t->cols = cols;
	t->cells = xcalloc((size_t)cols, sizeof(char *));
	va_start(ap, cols);
	for (int i = 0; i < cols; i++)
		t->cells[i] = xstrdup(va_arg(ap, const char *));
	va_end(ap);
	t->rows = 1;
	return (t);
}

/* One row of cols strings (NULL prints as "-"). */
void
table_add(struct table *t, ...)
{
	va_list		 ap;
	const char	*s;

	t->cells = xreallocarray(t->cells, (t->rows + 1) * (size_t)t->cols,
	    sizeof(char *));
	va_start(ap, t);
	for (int i = 0; i < t->cols; i++) {
		s = va_arg(ap, const char *);
		t->cells[t->rows * (size_t)t->cols + (size_t)i] =
		    xstrdup(s != NULL && *s != '\0' ? s : "-");
	}
	va_end(ap);
	t->rows++;
}

void
table_print(struct table *t)
{
	size_t	*w = xcalloc((size_t)t->cols, sizeof(*w)), len;

	for (size_t r = 0; r < t->rows; r++)
		for (int c = 0; c < t->cols; c++) {
			len = strlen(t->cells[r * (size_t)t->cols + (size_t)c]);
			if (len > w[c])
				w[c] = len;
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (int c = 0; c < t->cols; c++) {
			const char *s = t->cells[r * (size_t)t->cols +
			    (size_t)c];

			if (c == t->cols - 1)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
	}
	free(w);
}

void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->rows * (size_t)t->cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

const char *
output_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%llu ms", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, len, "%llum %02llus",
		    (unsigned long long)(ms / 60000),
		    (unsigned long long)(ms / 1000 % 60));
	else
		snprintf(buf, len, "%lluh %02llum",
		    (unsigned long long)(ms / 3600000),
		    (unsigned long long)(ms / 60000 % 60));
	return (buf);
}

const char *
output_ago(int64_t ms, char *buf, size_t len)
{
	int64_t	s = ms / 1000;

	if (ms < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
	return (buf);
}

const char *
output_left(int64_t ms, char *buf, size_t len)
{
	int64_t	s = (ms + 999) / 1000;

	if (ms < 0)
		snprintf(buf, len, "-");
	else if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)(s / 60),
		    (long long)(s % 60));
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600),
		    (long long)(s / 60 % 60));
	return (buf);
}

/* The last progress event and when it arrived, for redrawing. */
static struct {
	bool	 active;
	bool	 tty;
	char	 verb[32];
	char	 model[PROTO_MAX_NAME + 1];
	char	 phase[PROTO_MAX_NAME + 1];
	char	 detail[256];
	uint64_t elapsed_ms;
	int64_t	 at_ms;
} progress;

/*
 * A terminal shows how long the call has been in the phase (each event
 * begins one), so a phase is never shown with the time of the ones before
 * it; a log gets a line per phase, with the time of the call at which it
 * began ("at").
 */
static void
output_progress_draw(void)
{
	uint64_t	ms = progress.elapsed_ms;
	char		d[32], *nl;

	if (progress.tty)
		ms = (uint64_t)(clock_ms() - progress.at_ms);
	if ((nl = strchr(progress.detail, '\n')) != NULL)
		*nl = '\0';
	fprintf(stderr, "%s%s %s: %s %s%s%s%s%s", progress.tty ? "\r\033[K" : "",
	    progress.verb, progress.model, progress.phase,
	    progress.tty ? "" : "at ", output_duration(ms, d, sizeof(d)),
	    progress.detail[0] != '\0' ? " (" : "", progress.detail,
	    progress.detail[0] != '\0' ? ")" : "");
	if (!progress.tty)
		fputc('\n', stderr);
	fflush(stderr);
}

void
output_progress(const char *verb, const struct proto_progress *p)
{
	progress.active = true;
	progress.tty = isatty(STDERR_FILENO);
	snprintf(progress.verb, sizeof(progress.verb), "%s", verb);
	snprintf(progress.model, sizeof(progress.model), "%s",
	    p->model != NULL ? p->model : "");
	snprintf(progress.phase, sizeof(progress.phase), "%s", p->phase);
	snprintf(progress.detail, sizeof(progress.detail), "%s",
	    p->detail != NULL ? p->detail : "");
	progress.elapsed_ms = p->elapsed_ms;
	progress.at_ms = clock_ms();
	output_progress_draw();
}

void
output_progress_tick(void)
{
	if (progress.active && progress.tty)
		output_progress_draw();
}

void
output_progress_end(void)
{
	if (progress.active && progress.tty)
		fprintf(stderr, "\r\033[K");
	progress.active = false;
}

/* --json, and whether an error document was printed (at most one is). */
static bool	output_json_mode;
static bool	output_json_error;

void
output_set_json(bool json)
{
	output_json_mode = json;
}

void
output_json(const uint8_t *body, size_t len)
{
	char	*s = mpjson_string(body, len, 1);

	if (s == NULL) {
		output_error("the reply is not valid msgpack");
		return;
	}
	printf("%s\n", s);
	free(s);
}

/* {"KEY": "TEXT"} on stdout, through yajl's generator (it escapes). */
static void
output_json_text(const char *key, const char *text)
{
	const unsigned char	*buf;
	size_t			 len;
	yajl_gen		 g;

	if ((g = yajl_gen_alloc(NULL)) == NULL)
		return;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)key, strlen(key));
	yajl_gen_string(g, (const unsigned char *)text, strlen(text));
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		printf("%.*s%s", (int)len, (const char *)buf,
		    len > 0 && buf[len - 1] == '\n' ? "" : "\n");
	fflush(stdout);
	yajl_gen_free(g);
}

static void
output_verror(bool prefix, const char *fmt, va_list ap)
{
	char	*s;

	if (vasprintf(&s, fmt, ap) == -1)
		return;
	if (!output_json_mode)
		fprintf(stderr, "%s%s\n", prefix ? "llmuxctl: " : "", s);
	else if (!output_json_error) {
		output_json_error = true;
		output_json_text("error", s);
	}
	free(s);
}

void
output_error(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	output_verror(true, fmt, ap);
	va_end(ap);
}

void
output_usage(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	output_verror(false, fmt, ap);
	va_end(ap);
}

void
output_message(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1) {
		va_end(ap);
		return;
	}
	va_end(ap);
	if (output_json_mode)
		output_json_text("message", s);
	else
		printf("%s\n", s);
	free(s);
}
