/*
 * test_log.c -- the log line: the message and fields found in the format,
 * values quoted and escaped so that hostile ones (quotes, '=', spaces,
 * newlines, control bytes, in a value or in the message) read back as
 * they were given and make no field of their own (checked with a strict
 * key=value reader of the line); printf conversions as printf makes them;
 * the journal's structured fields of a record.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "unit.h"

/* The text form of one call, as a new string. */
static char * __attribute__((format(printf, 2, 3)))
text(int errnum, const char *fmt, ...)
{
	struct log_record	 r;
	struct strbuf		 b = STRBUF_INIT;
	va_list			 ap;
	char			*s;

	va_start(ap, fmt);
	log_record_parse(&r, LOG_LEVEL_INFO, errnum, fmt, ap);
	va_end(ap);
	log_record_text(&r, &b);
	s = xstrdup(strbuf_str(&b));
	strbuf_free(&b);
	log_record_free(&r);
	return (s);
}

/* A strict reader of the line: key=value pairs, values plain or quoted. */
struct kv {
	char	*k[16];
	char	*v[16];
	size_t	 n;
};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

static void
read_kv(const char *s, struct kv *kv)
{
	struct strbuf	 v;
	const char	*eq;

	memset(kv, 0, sizeof(*kv));
	while (*s != '\0') {
		ck_assert_msg(kv->n < 16, "too many pairs");
		eq = strchr(s, '=');
		ck_assert_msg(eq != NULL && eq > s, "no key=: %s", s);
		for (const char *p = s; p < eq; p++)
			ck_assert_msg((*p >= 'a' && *p <= 'z') || *p == '_' ||
			    (*p >= '0' && *p <= '9'), "bad key in %s", s);
		kv->k[kv->n] = xstrndup(s, (size_t)(eq - s));
		s = eq + 1;
		memset(&v, 0, sizeof(v));
		strbuf_add(&v, "", 0);
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				ck_assert_msg(*s != '\0' && *s != '\n',
				    "unterminated value");
				if (*s != '\\') {
					strbuf_add(&v, s, 1);
					continue;
				}
				s++;
				switch (*s) {
				case 'n':
					strbuf_add(&v, "\n", 1);
					break;
				case 'r':
					strbuf_add(&v, "\r", 1);
					break;
				case 't':
					strbuf_add(&v, "\t", 1);
					break;
				case '"':
				case '\\':
					strbuf_add(&v, s, 1);
					break;
				case 'x': {
					char	c;

					ck_assert(hexval(s[1]) >= 0 &&
					    hexval(s[2]) >= 0);
					c = (char)(hexval(s[1]) << 4 |
					    hexval(s[2]));
					strbuf_add(&v, &c, 1);
					s += 2;
					break;
				}
				default:
					ck_abort_msg("bad escape \\%c", *s);
				}
			}
			s++;
		} else {
			for (; *s != ' ' && *s != '\0'; s++) {
				ck_assert_msg(*s != '"' && *s != '=' &&
				    *s != '\\' && (unsigned char)*s > ' ',
				    "a plain value holds a special byte");
				strbuf_add(&v, s, 1);
			}
		}
		kv->v[kv->n++] = xstrdup(strbuf_str(&v));
		strbuf_free(&v);
		ck_assert_msg(*s == ' ' || *s == '\0', "junk after a value: %s",
		    s);
		if (*s == ' ')
			s++;
	}
}

static const char *
kv_get(const struct kv *kv, const char *k)
{
	for (size_t i = 0; i < kv->n; i++)
		if (strcmp(kv->k[i], k) == 0)
			return (kv->v[i]);
	return (NULL);
}

static void
kv_free(struct kv *kv)
{
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->k[i]);
		free(kv->v[i]);
	}
}

START_TEST(test_plain)
{
	char	*s;

	s = text(0, "model ready model=%s ms=%ld", "a", 412L);
	ck_assert_str_eq(s, "msg=\"model ready\" model=a ms=412");
	free(s);
	/* A value the format quotes keeps its quotes. */
	s = text(0, "unknown option option=\"%s\"", "--enforce-eager");
	ck_assert_str_eq(s, "msg=\"unknown option\" option=\"--enforce-eager\"");
	free(s);
	s = text(0, "key=%s", "v");
	ck_assert_str_eq(s, "key=v");
	free(s);
	s = text(0, "no fields at all: %d%%", 5);
	ck_assert_str_eq(s, "msg=\"no fields at all: 5%\"");
	free(s);
	/* Words after a value that are not key= belong to it. */
	s = text(0, "cannot listen path=%s: %s", "/run/x", "Permission denied");
	ck_assert_str_eq(s, "msg=\"cannot listen\" path=\"/run/x: Permission "
	    "denied\"");
	free(s);
	s = text(ENOENT, "cannot open path=%s", "/x");
	ck_assert_str_eq(s, "msg=\"cannot open\" error=\"No such file or "
	    "directory\" path=/x");
	free(s);
}
END_TEST

START_TEST(test_hostile_values)
{
	static const char	*hostile[] = {
		"boom\" injected=\"yes", "a b=c \"d\"", "line\nbreak\r\ttab",
		"back\\slash\\\"", "\x01\x1b[2J\x7f", "=", "\"", "", "ünïcödé",
	};
	struct kv		 kv;
	char			*s;

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const char *h = hostile[i];

		/* Quoted by the format, unquoted, and in the message. */
		s = text(0, "switch failed from=%s to=b reason=\"%s\" peer=%s",
		    h, h, h);
		ck_assert_msg(strchr(s, '\n') == NULL && strchr(s, '\r') ==
		    NULL && strchr(s, '\x1b') == NULL, "raw control byte: %s",
		    s);
		read_kv(s, &kv);
		ck_assert_uint_eq(kv.n, 5);
		ck_assert_str_eq(kv_get(&kv, "msg"), "switch failed");
		ck_assert_str_eq(kv_get(&kv, "from"), h);
		ck_assert_str_eq(kv_get(&kv, "to"), "b");
		ck_assert_str_eq(kv_get(&kv, "reason"), h);
		ck_assert_str_eq(kv_get(&kv, "peer"), h);
		kv_free(&kv);
		free(s);

		s = text(0, "model %s failed reason=%s", h, "x");
		read_kv(s, &kv);
		ck_assert_uint_eq(kv.n, 2);
		ck_assert_str_eq(kv_get(&kv, "reason"), "x");
		ck_assert_ptr_nonnull(strstr(kv_get(&kv, "msg"), h));
		kv_free(&kv);
		free(s);
	}
}
END_TEST

START_TEST(test_conversions)
{
	char	want[256], *s, *t;
	int	n;

	n = snprintf(want, sizeof(want), "n %5.2f|%*d|%.*s|%zu|%lld|%llu|%x|"
	    "%c|%-4s|%03d|%hhu|%p", 3.14159, 6, 42, 3, "abcdef",
	    (size_t)77, -5LL, 18446744073709551615ULL, 255u, 'z', "ab", 7,
	    (unsigned char)200, (void *)0x1234);
	ck_assert_int_gt(n, 0);
	s = text(0, "n %5.2f|%*d|%.*s|%zu|%lld|%llu|%x|%c|%-4s|%03d|%hhu|%p",
	    3.14159, 6, 42, 3, "abcdef", (size_t)77, -5LL,
	    18446744073709551615ULL, 255u, 'z', "ab", 7, (unsigned char)200,
	    (void *)0x1234);
	xasprintf(&t, "msg=\"%s\"", want);
	ck_assert_str_eq(s, t);
	free(s);
	free(t);
	/* Conversions in fields too, in order after the message's. */
	s = text(0, "took %d ms model=%s total_ms=%lld ok=%d", 3, "m", 99LL, 1);
	ck_assert_str_eq(s, "msg=\"took 3 ms\" model=m total_ms=99 ok=1");
	free(s);
}
END_TEST

/* The journal's fields of a record, as "NAME=value" strings. */
static size_t
journal(struct strbuf *out, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t
journal(struct strbuf *out, int errnum, const char *fmt, ...)
{
	struct log_record	r;
	va_list			ap;
	size_t			n;

	va_start(ap, fmt);
	log_record_parse(&r, LOG_LEVEL_WARN, errnum, fmt, ap);
	va_end(ap);
	n = log_record_journal(&r, "llmux-supervisord", out);
	log_record_free(&r);
	return (n);
}

static bool
has(const struct strbuf *b, size_t n, const char *field)
{
	const char	*p = b->p;

	for (size_t i = 0; i < n; i++, p += strlen(p) + 1)
		if (strcmp(p, field) == 0)
			return (true);
	return (false);
}

START_TEST(test_journal_fields)
{
	struct strbuf	b = STRBUF_INIT;
	size_t		n;

	n = journal(&b, 0, "switch done from=%s to=%s cooldown_ms=%lld "
	    "total_ms=%lld", "a", "b", 0LL, 412LL);
	ck_assert(has(&b, n, "MESSAGE=switch done from=a to=b cooldown_ms=0 "
	    "total_ms=412"));
	ck_assert(has(&b, n, "PRIORITY=4"));
	ck_assert(has(&b, n, "SYSLOG_IDENTIFIER=llmux-supervisord"));
	ck_assert(has(&b, n, "SWITCH_FROM=a"));
	ck_assert(has(&b, n, "SWITCH_TO=b"));
	ck_assert(has(&b, n, "DURATION_MS=412"));
	ck_assert(has(&b, n, "LLMUX_COOLDOWN_MS=0"));
	ck_assert(has(&b, n, "LLMUX_TOTAL_MS=412"));
	ck_assert_uint_eq(n, 8);
	strbuf_free(&b);

	/* Values go as they are (the journal takes any bytes); errno. */
	n = journal(&b, EPIPE, "step failed model=%s phase=%s ms=%d reason=\"%s\"",
	    "m", "wake", 7, "a \"b\"\nc");
	ck_assert(has(&b, n, "MODEL=m"));
	ck_assert(has(&b, n, "PHASE=wake"));
	ck_assert(has(&b, n, "DURATION_MS=7"));
	ck_assert(has(&b, n, "ERRNO=32"));
	ck_assert(has(&b, n, "LLMUX_REASON=a \"b\"\nc"));
	ck_assert(has(&b, n, "MESSAGE=step failed error=\"Broken pipe\" model=m "
	    "phase=wake ms=7 reason=\"a \\\"b\\\"\\nc\""));
	strbuf_free(&b);
}
END_TEST

START_TEST(test_quote)
{
	struct strbuf	b = STRBUF_INIT;

	log_quote(&b, "plain-value_1.2", 15);
	log_quote(&b, "", 0);
	log_quote(&b, "a=b", 3);
	log_quote(&b, "x\"y", 3);
	ck_assert_str_eq(strbuf_str(&b), "plain-value_1.2\"\"\"a=b\"\"x\\\"y\"");
	strbuf_free(&b);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_hostile_values);
	tcase_add_test(tc, test_conversions);
	tcase_add_test(tc, test_journal_fields);
	tcase_add_test(tc, test_quote);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
