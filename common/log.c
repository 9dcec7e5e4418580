/*
 * log.c -- key=value logging to stderr, or to journald with structured
 * fields under systemd (see log.h).
 *
 * A call's format is read once: up to the first " key=" it is the message;
 * after it, each key's value is the part of the format up to the next
 * space (or between the quotes the format puts around it). The printf
 * conversions are formatted one at a time, in order, each with its own
 * argument, so a value is known whole before it is written, and written
 * escaped.
 */
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"
#include "strbuf.h"

static const char	*log_prog = "llmux";
static int		 log_verbose;
static bool		 log_journal;

/* Is stderr the stream JOURNAL_STREAM names ("DEV:INODE")? */
static bool
log_stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 sb;
	char			 end;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return (false);
	if (fstat(STDERR_FILENO, &sb) == -1)
		return (false);
	return ((unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino);
}

void
log_init(const char *prog, int verbose)
{
	log_prog = prog;
	log_verbose = verbose;
	log_journal = log_stderr_is_journal();
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

/* ---- escaping ------------------------------------------------------------ */

/* The bytes of v with \" \\ \n \r \t and \xHH escapes, no quotes. */
static void
log_escape(struct strbuf *b, const char *v, size_t len)
{
	static const char	hex[] = "0123456789abcdef";
	char			esc[4];
	size_t			run = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c >= ' ' && c != '"' && c != '\\' && c != 0x7f)
			continue;
		strbuf_add(b, v + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
		case '\\':
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
			esc[1] = 'x';
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 15];
			strbuf_add(b, esc, 4);
		}
	}
	strbuf_add(b, v + run, len - run);
}

void
log_quote(struct strbuf *b, const char *v, size_t len)
{
	bool	plain = len > 0;

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
	log_escape(b, v, len);
	strbuf_add(b, "\"", 1);
}

/* ---- formatting, one conversion at a time --------------------------------- */

/*
 * Format the conversion at *sp (just past its '%') with its argument; *sp
 * moves past it. Conversions llmux does not use are copied as they are.
 */
static void
log_conv(struct strbuf *out, const char **sp, va_list *ap)
{
	const char	*s = *sp, *start = s - 1;
	char		 spec[48], len[3] = "";
	size_t		 n = 0;
	int		 width = -1, prec = -1;

	spec[n++] = '%';
	while (*s != '\0' && strchr("-+ #0", *s) != NULL && n < 8)
		spec[n++] = *s++;
	if (*s == '*') {
		width = va_arg(*ap, int);
		s++;
	} else
		while (*s >= '0' && *s <= '9')
			width = (width < 0 ? 0 : width) * 10 + (*s++ - '0');
	if (*s == '.') {
		s++;
		prec = 0;
		if (*s == '*') {
			prec = va_arg(*ap, int);
			s++;
		} else
			while (*s >= '0' && *s <= '9')
				prec = prec * 10 + (*s++ - '0');
	}
	if ((s[0] == 'h' && s[1] == 'h') || (s[0] == 'l' && s[1] == 'l')) {
		len[0] = s[0];
		len[1] = s[1];
		s += 2;
	} else if (*s != '\0' && strchr("hlzjtL", *s) != NULL)
		len[0] = *s++;
	if (width >= 0)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, "%d", width);
	if (prec >= 0)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, ".%d", prec);
	n += (size_t)snprintf(spec + n, sizeof(spec) - n, "%s%c", len, *s);
	switch (*s) {
	case 'd':
	case 'i':
		if (strcmp(len, "ll") == 0)
			strbuf_printf(out, spec, va_arg(*ap, long long));
		else if (strcmp(len, "l") == 0)
			strbuf_printf(out, spec, va_arg(*ap, long));
		else if (strcmp(len, "z") == 0)
			strbuf_printf(out, spec, va_arg(*ap, ssize_t));
		else if (strcmp(len, "j") == 0)
			strbuf_printf(out, spec, va_arg(*ap, intmax_t));
		else if (strcmp(len, "t") == 0)
			strbuf_printf(out, spec, va_arg(*ap, ptrdiff_t));
		else
			strbuf_printf(out, spec, va_arg(*ap, int));
		break;
	case 'o':
	case 'u':
	case 'x':
	case 'X':
		if (strcmp(len, "ll") == 0)
			strbuf_printf(out, spec,
			    va_arg(*ap, unsigned long long));
		else if (strcmp(len, "l") == 0)
			strbuf_printf(out, spec, va_arg(*ap, unsigned long));
		else if (strcmp(len, "z") == 0)
			strbuf_printf(out, spec, va_arg(*ap, size_t));
		else if (strcmp(len, "j") == 0)
			strbuf_printf(out, spec, va_arg(*ap, uintmax_t));
		else if (strcmp(len, "t") == 0)
			strbuf_printf(out, spec, va_arg(*ap, ptrdiff_t));
		else
			strbuf_printf(out, spec, va_arg(*ap, unsigned int));
		break;
	case 'e':
	case 'E':
	case 'f':
	case 'F':
	case 'g':
	case 'G':
	case 'a':
	case 'A':
		if (strcmp(len, "L") == 0)
			strbuf_printf(out, spec, va_arg(*ap, long double));
		else
			strbuf_printf(out, spec, va_arg(*ap, double));
		break;
	case 'c':
		strbuf_printf(out, spec, va_arg(*ap, int));
		break;
	case 's': {
		const char *str = va_arg(*ap, const char *);

		strbuf_printf(out, spec, str != NULL ? str : "(null)");
		break;
	}
	case 'p':
		strbuf_printf(out, spec, va_arg(*ap, void *));
		break;
	case '%':
		strbuf_add(out, "%", 1);
		break;
	default:
		/* Not a conversion llmux writes: keep the text. */
		strbuf_add(out, start, (size_t)(s - start) + (*s != '\0'));
		break;
	}
	*sp = *s != '\0' ? s + 1 : s;
}

/* Format fmt[s, end) into out, consuming the arguments it converts. */
static void
log_vfmt(struct strbuf *out, const char *s, const char *end, va_list *ap)
{
	const char	*pct;

	while (s < end) {
		if (*s != '%') {
			pct = memchr(s, '%', (size_t)(end - s));
			if (pct == NULL)
				pct = end;
			strbuf_add(out, s, (size_t)(pct - s));
			s = pct;
			continue;
		}
		s++;
		log_conv(out, &s, ap);
	}
}

/* A field's key at s: [a-z][a-z0-9_]* then '='; its length, or 0. */
static size_t
log_key(const char *s)
{
	size_t	n = 0;

	if (*s < 'a' || *s > 'z')
		return (0);
	while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
	    s[n] == '_')
		n++;
	return (s[n] == '=' && n < LOG_MAX_KEY ? n : 0);
}

/* Where the fields of a format begin: the first key= at a word's start. */
static const char *
log_fields_start(const char *fmt)
{
	for (const char *p = fmt; *p != '\0'; p++)
		if ((p == fmt || p[-1] == ' ') && log_key(p) > 0)
			return (p);
	return (NULL);
}

void
log_record_parse(struct log_record *r, enum log_level level, int errnum,
    const char *fmt, va_list ap0)
{
	const char		*p, *fields, *end, *q;
	struct log_field	*f = NULL;
	size_t			 k;
	va_list			 ap;

	memset(r, 0, sizeof(*r));
	r->level = level;
	r->errnum = errnum;
	va_copy(ap, ap0);
	fields = log_fields_start(fmt);
	end = fields != NULL ? fields : fmt + strlen(fmt);
	while (end > fmt && end[-1] == ' ')
		end--;
	log_vfmt(&r->buf, fmt, end, &ap);
	r->msg_len = r->buf.len;
	strbuf_add(&r->buf, "", 0);
	for (p = fields; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		if ((k = log_key(p)) > 0 && r->n < LOG_MAX_FIELDS) {
			f = &r->f[r->n++];
			memcpy(f->key, p, k);
			f->key[k] = '\0';
			p += k + 1;
			f->off = r->buf.len;
			if (*p == '"' && (q = strchr(p + 1, '"')) != NULL) {
				f->quoted = true;
				log_vfmt(&r->buf, p + 1, q, &ap);
				p = q + 1;
			} else {
				q = strchr(p, ' ');
				q = q != NULL ? q : p + strlen(p);
				log_vfmt(&r->buf, p, q, &ap);
				p = q;
			}
			f->len = r->buf.len - f->off;
			continue;
		}
		/* A word that is not key=: it goes on the value before it. */
		q = strchr(p, ' ');
		q = q != NULL ? q : p + strlen(p);
		if (f == NULL || f != &r->f[r->n - 1] || r->buf.len !=
		    f->off + f->len) {
			/* Only the last value can grow; else drop the word. */
			struct strbuf	 skip = STRBUF_INIT;

			log_vfmt(&skip, p, q, &ap);
			strbuf_free(&skip);
		} else {
			strbuf_add(&r->buf, " ", 1);
			log_vfmt(&r->buf, p, q, &ap);
			f->len = r->buf.len - f->off;
		}
		p = q;
	}
	va_end(ap);
}

void
log_record_free(struct log_record *r)
{
	strbuf_free(&r->buf);
	memset(r, 0, sizeof(*r));
}

static const char *
log_value(const struct log_record *r, const struct log_field *f)
{
	return (strbuf_str(&r->buf) + f->off);
}

/* error="..." key=value ...: what follows the message (a space first
 * unless first). */
static void
log_record_fields(const struct log_record *r, struct strbuf *out, bool first)
{
	const char	*e;

	if (r->errnum != 0) {
		e = strerror(r->errnum);
		strbuf_printf(out, "%serror=\"", first ? "" : " ");
		first = false;
		log_escape(out, e, strlen(e));
		strbuf_add(out, "\"", 1);
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct log_field *f = &r->f[i];

		strbuf_printf(out, "%s%s=", first ? "" : " ", f->key);
		first = false;
		if (f->quoted) {
			strbuf_add(out, "\"", 1);
			log_escape(out, log_value(r, f), f->len);
			strbuf_add(out, "\"", 1);
		} else
			log_quote(out, log_value(r, f), f->len);
	}
}

void
log_record_text(const struct log_record *r, struct strbuf *out)
{
	if (r->msg_len > 0) {
		strbuf_add(out, "msg=\"", 5);
		log_escape(out, strbuf_str(&r->buf), r->msg_len);
		strbuf_add(out, "\"", 1);
	}
	log_record_fields(r, out, r->msg_len == 0);
}

/* ---- the journal ----------------------------------------------------------- */

static const int	log_priority[] = { 3, 4, 6, 7 };
static const char	*log_level_name[] = { "error", "warn", "info", "debug" };

/* The journal's name of a field key, or NULL: it maps to another. */
static const char *
log_journal_name(const char *key, char *buf, size_t len)
{
	static const char	*map[][2] = {
		{ "model", "MODEL" }, { "from", "SWITCH_FROM" },
		{ "to", "SWITCH_TO" }, { "phase", "PHASE" },
	};
	size_t			 i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(key, map[i][0]) == 0)
			return (map[i][1]);
	snprintf(buf, len, "LLMUX_%s", key);
	for (i = 6; buf[i] != '\0'; i++)
		if (buf[i] >= 'a' && buf[i] <= 'z')
			buf[i] = (char)(buf[i] - 'a' + 'A');
	return (buf);
}

size_t
log_record_journal(const struct log_record *r, const char *prog,
    struct strbuf *out)
{
	static const char	*dur[] = { "duration_ms", "total_ms", "ms",
				    "elapsed_ms" };
	struct strbuf		 text = STRBUF_INIT;
	char			 name[LOG_MAX_KEY + 8];
	size_t			 n = 0;

	/* The message as it is, then its fields as the text form has them. */
	strbuf_add(out, "MESSAGE=", 8);
	strbuf_add(out, strbuf_str(&r->buf), r->msg_len);
	log_record_fields(r, &text, r->msg_len == 0);
	strbuf_add(out, strbuf_str(&text), text.len);
	strbuf_add(out, "", 1);
	n++;
	strbuf_printf(out, "PRIORITY=%d", log_priority[r->level]);
	strbuf_add(out, "", 1);
	n++;
	strbuf_printf(out, "SYSLOG_IDENTIFIER=%s", prog);
	strbuf_add(out, "", 1);
	n++;
	if (r->errnum != 0) {
		strbuf_printf(out, "ERRNO=%d", r->errnum);
		strbuf_add(out, "", 1);
		n++;
	}
	for (size_t d = 0; d < sizeof(dur) / sizeof(dur[0]); d++) {
		const struct log_field *f = NULL;

		for (size_t i = 0; i < r->n && f == NULL; i++)
			if (strcmp(r->f[i].key, dur[d]) == 0)
				f = &r->f[i];
		if (f == NULL)
			continue;
		strbuf_add(out, "DURATION_MS=", 12);
		strbuf_add(out, log_value(r, f), f->len);
		strbuf_add(out, "", 1);
		n++;
		break;
	}
	for (size_t i = 0; i < r->n; i++) {
		strbuf_printf(out, "%s=", log_journal_name(r->f[i].key, name,
		    sizeof(name)));
		strbuf_add(out, log_value(r, &r->f[i]), r->f[i].len);
		strbuf_add(out, "", 1);
		n++;
	}
	strbuf_free(&text);
	return (n);
}

/* Send the record to journald; -1 if it could not be. */
static int
log_to_journal(const struct log_record *r)
{
	struct strbuf	 fields = STRBUF_INIT;
	struct iovec	*iov;
	const char	*p;
	size_t		 n, i;
	int		 rc;

	n = log_record_journal(r, log_prog, &fields);
	iov = calloc(n, sizeof(*iov));
	if (iov == NULL) {
		strbuf_free(&fields);
		return (-1);
	}
	p = strbuf_str(&fields);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(uintptr_t)p;
		iov[i].iov_len = strlen(p);
		p += iov[i].iov_len + 1;
	}
	rc = sd_journal_sendv(iov, (int)n);
	free(iov);
	strbuf_free(&fields);
	return (rc < 0 ? -1 : 0);
}

/* ---- writing --------------------------------------------------------------- */

static void
log_emit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	struct log_record	 r;
	struct strbuf		 line = STRBUF_INIT;
	struct timeval		 tv;
	struct tm		 tm;
	char			 ts[40];

	log_record_parse(&r, level, errnum, fmt, ap);
	if (log_journal && log_to_journal(&r) == 0) {
		log_record_free(&r);
		return;
	}
	if (log_journal)
		strbuf_printf(&line, "<%d>", log_priority[level]);
	else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		strbuf_printf(&line, "ts=%s.%03ldZ ", ts,
		    (long)(tv.tv_usec / 1000));
	}
	strbuf_printf(&line, "level=%s prog=%s ", log_level_name[level],
	    log_prog);
	log_record_text(&r, &line);
	strbuf_add(&line, "\n", 1);
	/* One write(2) per line so lines from several processes never mix. */
	(void)!write(STDERR_FILENO, strbuf_str(&line), line.len);
	strbuf_free(&line);
	log_record_free(&r);
}

void
log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	if (level == LOG_LEVEL_DEBUG && log_verbose < 1)
		return;
	log_emit(level, 0, fmt, ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, saved != 0 ? saved : EIO, fmt, ap);
	va_end(ap);
	errno = saved;
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
	int	saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, saved != 0 ? saved : EIO, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
