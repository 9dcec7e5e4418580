/*
 * log.h -- the one logging vocabulary of every llmux program.
 *
 * Messages are single lines of key=value fields on stderr:
 *     ts=2026-01-02T03:04:05.678Z level=info prog=llmux-supervisord msg="model ready" model=a ms=412
 * Callers pass the message text and then optional key=value fields in the
 * format string, e.g.
 *     log_info("model ready model=%s ms=%ld", name, ms);
 * Everything in the format up to the first " key=" is the message (found
 * in the format, so an argument can never start a field). Each field's
 * value is formatted from its arguments, then written as the text form
 * wants: a value the format quotes (reason=\"%s\") between quotes with
 * its quotes, backslashes and control bytes escaped; an unquoted one as
 * it is when plain, else quoted the same way (log_quote). A quote in a
 * reason cannot end its value early nor make a field of its own.
 *
 * Under systemd, when stderr is the journal (JOURNAL_STREAM names its
 * device and inode, as systemd.exec(5) documents), each record goes to
 * journald through sd_journal_sendv instead, with structured fields:
 * MESSAGE (the message and its fields as text), PRIORITY,
 * SYSLOG_IDENTIFIER, ERRNO (log_warn), MODEL, SWITCH_FROM, SWITCH_TO,
 * PHASE and DURATION_MS from the fields model, from, to, phase and
 * duration_ms (else total_ms, ms or elapsed_ms), and LLMUX_KEY for every
 * other field key. Should that fail, the line goes to stderr.
 */
#ifndef LLMUX_LOG_H
#define LLMUX_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(const char *prog, int verbose);
void	log_setverbose(int verbose);
int	log_getverbose(void);
void	log_vwrite(enum log_level, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A value as the key=value text form writes it: as it is when it is plain
 * (not empty; no space, '"', '=', backslash or control byte), else between
 * double quotes with backslash escapes (\" \\ \n \r \t \xHH).
 */
void	log_quote(struct strbuf *, const char *, size_t);

/* ---- one call taken apart, for the text line, the journal and tests ---- */

#define LOG_MAX_FIELDS	32
#define LOG_MAX_KEY	32

struct log_field {
	char	 key[LOG_MAX_KEY];
	size_t	 off, len;	/* the value in the record's buf */
	bool	 quoted;	/* the format quoted it */
};

struct log_record {
	enum log_level		 level;
	int			 errnum;	/* log_warn's errno, else 0 */
	struct strbuf		 buf;		/* the message, then values */
	size_t			 msg_len;	/* the message: buf[0, msg_len) */
	struct log_field	 f[LOG_MAX_FIELDS];
	size_t			 n;
};

/* Take a call apart: the message and each field's value, as given. */
void	log_record_parse(struct log_record *, enum log_level, int errnum,
	    const char *fmt, va_list) __attribute__((format(printf, 4, 0)));
void	log_record_free(struct log_record *);
/* msg="..." [error="..."] key=value ...: the text form of the record. */
void	log_record_text(const struct log_record *, struct strbuf *);
/*
 * The journal's fields of the record, "NAME=value" each, NUL-terminated
 * one after the other in out; returns how many.
 */
size_t	log_record_journal(const struct log_record *, const char *prog,
	    struct strbuf *out);

#endif
