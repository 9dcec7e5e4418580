/*
 * log.c -- key=value logging to stderr, journald-aware (see log.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include "log.h"
#include "strbuf.h"

static const char	*log_prog = "llmux";
static int		 log_verbose;
static int		 log_journal;

void
log_init(const char *prog, int verbose)
{
	const char	*js;

	log_prog = prog;
	log_verbose = verbose;
	js = getenv("JOURNAL_STREAM");
	log_journal = (js != NULL && *js != '\0');
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return (log_verbose);
}

/* Append to a line buffer, keeping one byte free for the newline. */
static void __attribute__((format(printf, 4, 5)))
log_append(char *line, size_t size, size_t *off, const char *fmt, ...)
{
	va_list	ap;
	size_t	room = size - 1 - *off;
	int	n;

	if (room <= 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *off, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n < room ? (size_t)n : room - 1;
}

/* Write msg="text" then the fields; text is what comes before " key=". */
static void
log_emit(enum log_level level, const char *text, const char *errstr)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	static const int   prio[] = { 3, 4, 6, 7 };
	char		 line[8192], ts[40];
	const char	*fields = NULL, *p;
	size_t		 msglen, off = 0;
	struct timeval	 tv;
	struct tm	 tm;

	/* Find the first " word=" which starts the structured fields. */
	for (p = strchr(text, ' '); p != NULL; p = strchr(p + 1, ' ')) {
		const char *q = p + 1;
		while ((*q >= 'a' && *q <= 'z') || *q == '_' ||
		    (*q >= '0' && *q <= '9'))
			q++;
		if (q > p + 1 && *q == '=') {
			fields = p + 1;
			break;
		}
	}
	msglen = fields != NULL ? (size_t)(fields - 1 - text) : strlen(text);
	if (fields == NULL && strchr(text, '=') != NULL &&
	    strchr(text, ' ') == NULL) {
		/* The whole text is one key=value field. */
		fields = text;
		msglen = 0;
	}



	if (log_journal)
		log_append(line, sizeof(line), &off, "<%d>", prio[level]);
	else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		log_append(line, sizeof(line), &off, "ts=%s.%03ldZ ", ts, (long)(tv.tv_usec / 1000));
	}
	log_append(line, sizeof(line), &off, "level=%s prog=%s", names[level], log_prog);
	if (msglen > 0)
		log_append(line, sizeof(line), &off, " msg=\"%.*s\"", (int)msglen, text);
	if (errstr != NULL)
		log_append(line, sizeof(line), &off, " error=\"%s\"", errstr);
	if (fields != NULL)
		log_append(line, sizeof(line), &off, " %s", fields);
	line[off++] = '\n';
	/* One write(2) per line so lines from several processes never mix. */
	(void)!write(STDERR_FILENO, line, off);
}

void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char	text[4096];

	if (level == LOG_LEVEL_DEBUG && log_verbose < 1)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	log_emit(level, text, NULL);
}

static void
log_verr(enum log_level level, const char *fmt, va_list ap)
{
	char	text[4096];
	int	saved = errno;

	vsnprintf(text, sizeof(text), fmt, ap);
	log_emit(level, text, strerror(saved));
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_verr(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_quote(struct strbuf *b, const char *v, size_t len)
{
	static const char	hex[] = "0123456789abcdef";
	bool			plain = len > 0;
	char			esc[4];

	for (size_t i = 0; i < len && plain; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			plain = false;
	}
	if (plain) {
		strbuf_add(b, v, len);
		return;
	}
	strbuf_add(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		switch (c) {
		case '"':
		case '\\':
			esc[0] = '\\';
			esc[1] = (char)c;
			strbuf_add(b, esc, 2);
			break;
		case '\n':
			strbuf_add(b, "\\n", 2);
			break;
		case '\r':
			strbuf_add(b, "\\r", 2);
			break;
		case '\t':
			strbuf_add(b, "\\t", 2);
			break;
		default:
			if (c < ' ' || c == 0x7f) {
				esc[0] = '\\';
				esc[1] = 'x';
				esc[2] = hex[c >> 4];
				esc[3] = hex[c & 15];
				strbuf_add(b, esc, 4);
			} else
				strbuf_add(b, (const char *)&v[i], 1);
		}
	}
	strbuf_add(b, "\"", 1);
}
