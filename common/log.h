/*
 * log.h -- the one logging vocabulary of every llmux program.
 *
 * Messages are single lines of key=value fields on stderr:
 *     ts=2026-01-02T03:04:05.678Z level=info prog=llmux-supervisord msg="model ready" model=a ms=412
 * Callers pass the message text and then optional key=value fields in the
 * format string after a tab-free space, e.g.
 *     log_info("model ready model=%s ms=%ld", name, ms);
 * Everything up to the first " key=" is the message. When JOURNAL_STREAM is
 * set (stderr goes to journald) lines start with a <N> priority prefix and
 * carry no timestamp, since journald adds its own.
 */
#ifndef LLMUX_LOG_H
#define LLMUX_LOG_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf;

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
/*
 * A value as the key=value text form writes it: as it is when it is plain
 * (not empty; no space, '"', '=', backslash or control byte), else between
 * double quotes with backslash escapes (\" \\ \n \r \t \xHH), so that a
 * quote in a reason cannot end the value early.
 */
void	log_quote(struct strbuf *, const char *, size_t);

void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
