/*
 * test_json.c -- the one JSON string escaper (common/json.c): hostile
 * strings (quotes, backslashes, every control byte, NUL, invalid UTF-8 of
 * every kind), valid UTF-8 copied as it is, every output read back by
 * yajl as one valid string, and the outputs the supervisor's and
 * llmux-fakevllm's own escapers gave before, unchanged for valid input;
 * and the hex digit reader the decoders share (common/hex.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "hex.h"
#include "json.h"
#include "strbuf.h"
#include "unit.h"

/* s (len bytes) escaped, NUL-terminated, in a static buffer. */
static const char *
esc(const char *s, size_t len)
{
	static struct strbuf	b;

	strbuf_free(&b);
	json_escape_strbuf(&b, s, len);
	return (strbuf_str(&b));
}

#define ESC(lit)	esc(lit, sizeof(lit) - 1)

START_TEST(test_json_escapes)
{
	char	in[2], want[8];

	ck_assert_str_eq(ESC(""), "");
	ck_assert_str_eq(ESC("model-a/7B v1.0"), "model-a/7B v1.0");
	ck_assert_str_eq(ESC("a\"b\\c"), "a\\\"b\\\\c");
	ck_assert_str_eq(ESC("\"\"\\\\"), "\\\"\\\"\\\\\\\\");
	ck_assert_str_eq(ESC("\\u0041"), "\\\\u0041");
	ck_assert_str_eq(ESC("l1\nl2\r\tx"), "l1\\nl2\\r\\tx");
	ck_assert_str_eq(ESC("\b\f\x7f"), "\\u0008\\u000c\x7f");
	ck_assert_str_eq(ESC("a\0b"), "a\\u0000b");
	/* Every byte under 0x20, alone. */
	for (int c = 0; c < 0x20; c++) {
		in[0] = (char)c;
		if (c == '\n' || c == '\r' || c == '\t')
			snprintf(want, sizeof(want), "\\%c", c == '\n' ? 'n' :
			    c == '\r' ? 'r' : 't');
		else
			snprintf(want, sizeof(want), "\\u%04x", c);
		ck_assert_str_eq(esc(in, 1), want);
	}
}
END_TEST

START_TEST(test_json_utf8)
{
	/* Valid: two, three and four bytes, the edges of each range. */
	ck_assert_str_eq(ESC("caf\xc3\xa9"), "caf\xc3\xa9");
	ck_assert_str_eq(ESC("\xc2\x80 \xdf\xbf"), "\xc2\x80 \xdf\xbf");
	ck_assert_str_eq(ESC("\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf"),
	    "\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf");
	ck_assert_str_eq(ESC("\xee\x80\x80 \xef\xbf\xbf"),
	    "\xee\x80\x80 \xef\xbf\xbf");
	ck_assert_str_eq(ESC("\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf"
	    "\xbf"), "\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	/* Invalid: each byte that begins no valid sequence is U+FFFD. */
	ck_assert_str_eq(ESC("caf\xe9"), "caf\\ufffd");
	ck_assert_str_eq(ESC("\x80"), "\\ufffd");
	ck_assert_str_eq(ESC("\xbf\x80x"), "\\ufffd\\ufffdx");
	ck_assert_str_eq(ESC("\xc0\x80"), "\\ufffd\\ufffd");	/* overlong NUL */
	ck_assert_str_eq(ESC("\xc1\xbf"), "\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xe0\x9f\xbf"), "\\ufffd\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xed\xbf\xbf"), "\\ufffd\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xf0\x8f\xbf\xbf"),
	    "\\ufffd\\ufffd\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xf4\x90\x80\x80"),
	    "\\ufffd\\ufffd\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xf5\xf8\xfe\xff"),
	    "\\ufffd\\ufffd\\ufffd\\ufffd");
	/* Cut short: at the end, before ASCII, before another lead byte. */
	ck_assert_str_eq(ESC("a\xe2\x82"), "a\\ufffd\\ufffd");
	ck_assert_str_eq(ESC("\xe2\x82" "A"), "\\ufffd\\ufffdA");
	ck_assert_str_eq(ESC("\xf0\x9f\x98\xc3\xa9"),
	    "\\ufffd\\ufffd\\ufffd\xc3\xa9");
	ck_assert_str_eq(ESC("\xc3\""), "\\ufffd\\\"");
}
END_TEST

START_TEST(test_json_quote)
{
	char	*q = json_quote("say \"hi\"\n");

	ck_assert_str_eq(q, "\"say \\\"hi\\\"\\n\"");
	free(q);
	q = json_quote("");
	ck_assert_str_eq(q, "\"\"");
	free(q);
}
END_TEST

/* ---- read back by yajl ----------------------------------------------------- */

struct readback {
	int		 strings;
	struct strbuf	 got;
};

static int
readback_string(void *ctx, const unsigned char *s, size_t len)
{
	struct readback	*r = ctx;

	r->strings++;
	strbuf_add(&r->got, (const char *)s, len);
	return (1);
}

static const yajl_callbacks readback_cb = { .yajl_string = readback_string };

/* "s" escaped, parsed by yajl (which checks UTF-8): its one string. */
static void
readback(const char *s, size_t len, struct strbuf *got)
{
	struct readback	 r = { 0, STRBUF_INIT };
	struct strbuf	 doc = STRBUF_INIT;
	yajl_handle	 h = yajl_alloc(&readback_cb, NULL, &r);

	strbuf_add(&doc, "\"", 1);
	json_escape_strbuf(&doc, s, len);
	strbuf_add(&doc, "\"", 1);
	ck_assert_msg(yajl_parse(h, (const unsigned char *)doc.p, doc.len) ==
	    yajl_status_ok && yajl_complete_parse(h) == yajl_status_ok,
	    "yajl refused %s", doc.p);
	ck_assert_int_eq(r.strings, 1);
	yajl_free(h);
	strbuf_free(&doc);
	*got = r.got;
}

static uint64_t	rng = 0x2545f4914f6cdd1dULL;

static uint32_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((uint32_t)(rng >> 16));
}

/* A valid UTF-8 string of code points of every length, in buf. */
static size_t
valid_utf8(char *buf, size_t max_points)
{
	size_t		n = 0, points = next() % max_points;
	uint32_t	cp;

	for (size_t i = 0; i < points; i++) {
		switch (next() % 5) {
		case 0:
			cp = next() % 0x80;
			break;
		case 1:
			cp = 0x80 + next() % (0x800 - 0x80);
			break;
		case 2:
			do
				cp = 0x800 + next() % (0x10000 - 0x800);
			while (cp >= 0xd800 && cp <= 0xdfff);
			break;
		case 3:
			cp = 0x10000 + next() % (0x110000 - 0x10000);
			break;
		default:
			cp = "\"\\\n\t/\x01"[next() % 6];
			break;
		}
		if (cp < 0x80)
			buf[n++] = (char)cp;
		else if (cp < 0x800) {
			buf[n++] = (char)(0xc0 | cp >> 6);
			buf[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			buf[n++] = (char)(0xe0 | cp >> 12);
			buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			buf[n++] = (char)(0xf0 | cp >> 18);
			buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	return (n);
}

START_TEST(test_json_readback)
{
	char		buf[64 * 4];
	struct strbuf	got;
	size_t		n, fffd;

	/* Valid UTF-8 comes back byte for byte, NULs and all. */
	for (int i = 0; i < 2000; i++) {
		n = valid_utf8(buf, 64);
		readback(buf, n, &got);
		ck_assert_uint_eq(got.len, n);
		ck_assert(n == 0 || memcmp(got.p, buf, n) == 0);
		strbuf_free(&got);
	}
	/* Any bytes at all: still one valid string. */
	for (int i = 0; i < 5000; i++) {
		n = next() % 32;
		for (size_t j = 0; j < n; j++)
			buf[j] = (char)(i < 256 && j == 0 ? i : (int)next());
		readback(buf, n, &got);
		strbuf_free(&got);
	}
	/* Each invalid byte is one U+FFFD (EF BF BD) when read back. */
	readback("a\xff\xc3(\xed\xa0\x80z", 8, &got);
	fffd = 0;
	for (size_t j = 0; j + 2 < got.len; j++)
		if (memcmp(got.p + j, "\xef\xbf\xbd", 3) == 0)
			fffd++;
	ck_assert_uint_eq(fffd, 5);
	ck_assert_uint_eq(got.len, 3 + 5 * 3);
	strbuf_free(&got);
}
END_TEST

/* ---- what the three escapers before it wrote ---------------------------- */

/* supervisord's (switching_ops.c, validate.c), as it was. */
static char *
old_supervisor(const char *s)
{
	char	*q = malloc(strlen(s) * 6 + 1);
	size_t	 o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			o += (size_t)sprintf(q + o, "\\%c", *p);
		else if (*p < 0x20)
			o += (size_t)sprintf(q + o, "\\u%04x", *p);
		else
			q[o++] = (char)*p;
	}
	q[o] = '\0';
	return (q);
}

/* llmux-fakevllm's (tools/fakevllm/json.c), as it was, without quotes. */
static void
old_fakevllm(struct strbuf *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i, start = 0;
	char			 e[6];

	for (i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
			continue;
		if (i > start)
			strbuf_add(b, s + start, i - start);
		start = i + 1;
		if (p[i] == '"' || p[i] == '\\') {
			e[0] = '\\';
			e[1] = (char)p[i];
			strbuf_add(b, e, 2);
		} else if (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
			e[0] = '\\';
			e[1] = p[i] == '\n' ? 'n' : p[i] == '\r' ? 'r' : 't';
			strbuf_add(b, e, 2);
		} else {
			memcpy(e, "\\u00", 4);
			e[4] = hex[p[i] >> 4];
			e[5] = hex[p[i] & 0xf];
			strbuf_add(b, e, 6);
		}
	}
	if (len > start)
		strbuf_add(b, s + start, len - start);
}

START_TEST(test_json_unchanged)
{
	char		buf[64 * 4 + 1], *old;
	struct strbuf	b;
	size_t		n, k;

	for (int i = 0; i < 2000; i++) {
		n = valid_utf8(buf, 64);
		/* llmux-fakevllm: the same bytes for any valid UTF-8. */
		memset(&b, 0, sizeof(b));
		old_fakevllm(&b, buf, n);
		ck_assert_str_eq(esc(buf, n), strbuf_str(&b));
		strbuf_free(&b);
		/*
		 * The supervisor (a C string): the same but for \n, \r and
		 * \t, which it wrote \u000a, \u000d, \u0009.
		 */
		for (k = 0; k < n; k++)
			if (buf[k] == '\0' || buf[k] == '\n' || buf[k] == '\r' ||
			    buf[k] == '\t')
				buf[k] = '_';
		buf[n] = '\0';
		old = old_supervisor(buf);
		ck_assert_str_eq(esc(buf, n), old);
		free(old);
	}
	old = old_supervisor("a\nb");
	ck_assert_str_eq(old, "a\\u000ab");
	ck_assert_str_eq(ESC("a\nb"), "a\\nb");
	free(old);
}
END_TEST

/* Every byte: the sixteen digits of either case, and -1 for the rest. */
START_TEST(test_hex_digit)
{
	const char	*lower = "0123456789abcdef", *upper = "0123456789ABCDEF";
	int		 want;

	for (int c = -1; c < 256; c++) {
		want = -1;
		for (int i = 0; i < 16; i++)
			if (c == lower[i] || c == upper[i])
				want = i;
		ck_assert_int_eq(hex_digit(c), want);
	}
	ck_assert_int_eq(hex_digit('g'), -1);
	ck_assert_int_eq(hex_digit('F'), 15);
	ck_assert_int_eq(hex_digit((char)0xe9), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("json");
	TCase	*tc = tcase_create("escape");

	tcase_add_test(tc, test_json_escapes);
	tcase_add_test(tc, test_json_utf8);
	tcase_add_test(tc, test_json_quote);
	tcase_add_test(tc, test_json_readback);
	tcase_add_test(tc, test_json_unchanged);
	tcase_add_test(tc, test_hex_digit);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
