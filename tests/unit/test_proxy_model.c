/*
 * test_proxy_model.c -- finding the top-level "model" of a JSON body fed in
 * chunks: every chunk boundary, escapes, nested keys, bad values, and a
 * huge body whose parsing stops at the model; where the model lies and
 * its rewrite (model-override); the model field of multipart/form-data
 * bodies, split everywhere, and their refusals.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxyd/formdata.h"
#include "proxyd/model.h"
#include "unit.h"

/* Feed s split at every position (and byte by byte); all must agree. */
static enum model_result
feed_split(const char *s, size_t at, char *name, size_t namelen)
{
	struct model_parser	*mp;
	enum model_result	 r;
	size_t			 len = strlen(s);

	mp = model_parser_new();
	r = model_parser_feed(mp, s, at);
	if (r == MODEL_MORE)
		r = model_parser_feed(mp, s + at, len - at);
	if (r == MODEL_MORE)
		r = model_parser_finish(mp);
	name[0] = '\0';
	if (r == MODEL_FOUND)
		snprintf(name, namelen, "%s", model_parser_name(mp));
	model_parser_free(mp);
	return (r);
}

static enum model_result
feed_bytes(const char *s, char *name, size_t namelen)
{
	struct model_parser	*mp;
	enum model_result	 r = MODEL_MORE;
	size_t			 i, len = strlen(s);

	mp = model_parser_new();
	for (i = 0; i < len && r == MODEL_MORE; i++)
		r = model_parser_feed(mp, s + i, 1);
	if (r == MODEL_MORE)
		r = model_parser_finish(mp);
	name[0] = '\0';
	if (r == MODEL_FOUND)
		snprintf(name, namelen, "%s", model_parser_name(mp));
	model_parser_free(mp);
	return (r);
}

static void
expect(const char *body, enum model_result want, const char *want_name)
{
	char	name[256];
	size_t	at, len = strlen(body);

	for (at = 0; at <= len; at++) {
		ck_assert_msg(feed_split(body, at, name, sizeof(name)) == want,
		    "body %s split at %zu", body, at);
		if (want_name != NULL)
			ck_assert_str_eq(name, want_name);
	}
	ck_assert_int_eq(feed_bytes(body, name, sizeof(name)), want);
	if (want_name != NULL)
		ck_assert_str_eq(name, want_name);
}

START_TEST(test_simple)
{
	expect("{\"model\":\"llama\",\"messages\":[]}", MODEL_FOUND, "llama");
	expect("  {\n \"messages\" : [ {\"role\":\"user\"} ] ,\n"
	    " \"model\" : \"qwen-7b\" }  ", MODEL_FOUND, "qwen-7b");
	expect("{\"model\":\"a/b:c.d\"}", MODEL_FOUND, "a/b:c.d");
}
END_TEST

START_TEST(test_escapes)
{
	expect("{\"mod\\u0065l\":\"x\"}", MODEL_FOUND, "x");
	expect("{\"model\":\"caf\\u00e9\"}", MODEL_FOUND, "caf\xc3\xa9");
	expect("{\"model\":\"a\\/b\\\"c\"}", MODEL_FOUND, "a/b\"c");
	/* A control character in the name is refused. */
	expect("{\"model\":\"a\\nb\"}", MODEL_INVALID, NULL);
	expect("{\"model\":\"a\\u0000b\"}", MODEL_INVALID, NULL);
}
END_TEST

START_TEST(test_nested_keys_do_not_count)
{
	expect("{\"messages\":[{\"model\":\"inner\"}],\"model\":\"outer\"}",
	    MODEL_FOUND, "outer");
	expect("{\"tools\":{\"model\":\"inner\"}}", MODEL_ABSENT, NULL);
	expect("{\"x\":{\"y\":{\"model\":1}},\"model\":\"m\"}", MODEL_FOUND,
	    "m");
	/* A string value "model" is not a key. */
	expect("{\"a\":\"model\",\"b\":[\"model\"]}", MODEL_ABSENT, NULL);
}
END_TEST

START_TEST(test_first_model_wins)
{
	expect("{\"model\":\"first\",\"model\":\"second\"}", MODEL_FOUND,
	    "first");
}
END_TEST

START_TEST(test_bad_values)
{
	expect("{\"model\":42}", MODEL_INVALID, NULL);
	expect("{\"model\":null}", MODEL_INVALID, NULL);
	expect("{\"model\":true}", MODEL_INVALID, NULL);
	expect("{\"model\":[\"a\"]}", MODEL_INVALID, NULL);
	expect("{\"model\":{\"name\":\"a\"}}", MODEL_INVALID, NULL);
	expect("{\"model\":\"\"}", MODEL_INVALID, NULL);
}
END_TEST

START_TEST(test_not_json)
{
	expect("", MODEL_INVALID, NULL);
	expect("not json", MODEL_INVALID, NULL);
	expect("[1,2,3]", MODEL_INVALID, NULL);
	expect("\"model\"", MODEL_INVALID, NULL);
	expect("42", MODEL_INVALID, NULL);
	expect("{\"model\"", MODEL_INVALID, NULL);
	expect("{\"model\":\"unterminated", MODEL_INVALID, NULL);
	expect("{\"a\":1,}", MODEL_INVALID, NULL);
	expect("{}", MODEL_ABSENT, NULL);
	expect("{\"messages\":[]}", MODEL_ABSENT, NULL);
}
END_TEST

START_TEST(test_long_name)
{
	char	body[512], name[200];

	memset(name, 'n', 128);
	name[128] = '\0';
	snprintf(body, sizeof(body), "{\"model\":\"%s\"}", name);
	expect(body, MODEL_FOUND, name);
	memset(name, 'n', 129);
	name[129] = '\0';
	snprintf(body, sizeof(body), "{\"model\":\"%s\"}", name);
	expect(body, MODEL_INVALID, NULL);
}
END_TEST

START_TEST(test_grammar)
{
	expect("{\"a\":[0,-1,2.5e+3,1E-2,-0.0,1e5],\"b\":{\"c\":null,"
	    "\"d\":true,\"e\":false},\"model\":\"n\"}", MODEL_FOUND, "n");
	expect("{\v\f\"model\"\t:\r\n\"w\"}", MODEL_FOUND, "w");
	expect("{\"a\":\"caf\xc3\xa9\",\"model\":\"u\"}", MODEL_FOUND, "u");
	expect("{\"a\":01,\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":1.,\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":-,\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":1e,\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":tru,\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":[1,2},\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":{\"b\":1],\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":\"\xff\",\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":\"\x01\",\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":\"\\x\",\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\":\"\\u12g4\",\"model\":\"m\"}", MODEL_INVALID, NULL);
	expect("{\"a\" 1}", MODEL_INVALID, NULL);
	expect("{1:2}", MODEL_INVALID, NULL);
	/* A surrogate pair is one character; a lone half is U+FFFD. */
	expect("{\"model\":\"\\ud83d\\ude00\"}", MODEL_FOUND,
	    "\xf0\x9f\x98\x80");
	expect("{\"model\":\"a\\ud83db\"}", MODEL_FOUND, "a\xef\xbf\xbd" "b");
}
END_TEST

/* Nesting is bounded; what is deeper is refused, not parsed. */
START_TEST(test_depth)
{
	struct model_parser	*mp;
	char			*body;
	size_t			 n = MODEL_MAX_DEPTH, i, len = 0;

	body = malloc(2 * n + 64);
	len += (size_t)sprintf(body, "{\"a\":");
	for (i = 0; i < n - 1; i++)
		body[len++] = '[';
	for (i = 0; i < n - 1; i++)
		body[len++] = ']';
	len += (size_t)sprintf(body + len, ",\"model\":\"deep\"}");
	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, body, len), MODEL_FOUND);
	ck_assert_str_eq(model_parser_name(mp), "deep");
	model_parser_free(mp);

	len = (size_t)sprintf(body, "{\"a\":");
	for (i = 0; i < n; i++)
		body[len++] = '[';
	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, body, len), MODEL_INVALID);
	ck_assert_str_eq(model_parser_error(mp),
	    "request body is nested too deeply");
	model_parser_free(mp);
	free(body);
}
END_TEST

/* A 16 MiB body with the model first: parsing stops after a few bytes. */
START_TEST(test_huge_body_stops_early)
{
	struct model_parser	*mp;
	const char		*head = "{\"model\":\"big\",\"input\":\"";
	size_t			 chunk = 64 * 1024, i;
	char			*junk;

	junk = malloc(chunk);
	memset(junk, 'x', chunk);
	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, head, strlen(head)),
	    MODEL_FOUND);
	for (i = 0; i < 256; i++)
		ck_assert_int_eq(model_parser_feed(mp, junk, chunk),
		    MODEL_FOUND);
	ck_assert_uint_eq(model_parser_consumed(mp), strlen(head));
	ck_assert_int_eq(model_parser_finish(mp), MODEL_FOUND);
	ck_assert_str_eq(model_parser_name(mp), "big");
	model_parser_free(mp);

	/* The model after a long prefix: found when it arrives. */
	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, "{\"input\":\"", 10),
	    MODEL_MORE);
	for (i = 0; i < 64; i++)
		ck_assert_int_eq(model_parser_feed(mp, junk, chunk),
		    MODEL_MORE);
	ck_assert_int_eq(model_parser_feed(mp, "\",\"model\":\"late\"", 16),
	    MODEL_FOUND);
	ck_assert_str_eq(model_parser_name(mp), "late");
	model_parser_free(mp);
	free(junk);
}
END_TEST

START_TEST(test_error_messages)
{
	struct model_parser	*mp;

	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, "{\"model\":7}", 11),
	    MODEL_INVALID);
	ck_assert_str_eq(model_parser_error(mp), "model must be a string");
	ck_assert_ptr_null(model_parser_name(mp));
	model_parser_free(mp);

	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, "{}", 2), MODEL_ABSENT);
	ck_assert_str_eq(model_parser_error(mp), "request body has no model");
	model_parser_free(mp);

	/* Freed without finishing: no leak (checked under ASan). */
	mp = model_parser_new();
	ck_assert_int_eq(model_parser_feed(mp, "{\"a\":[", 6), MODEL_MORE);
	model_parser_free(mp);
}
END_TEST

/* The body with its model rewritten to name, NUL-terminated (free it). */
static char *
rewritten(const char *body, const char *ctype, const char *name)
{
	struct model_parser	*mp = ctype != NULL ?
				    model_parser_new_type(ctype) :
				    model_parser_new();
	struct model_span	 sp;
	struct evbuffer		*b = evbuffer_new();
	char			*out;
	size_t			 len;

	ck_assert_ptr_nonnull(mp);
	if (model_parser_feed(mp, body, strlen(body)) == MODEL_MORE)
		model_parser_finish(mp);
	ck_assert_msg(model_parser_span(mp, &sp), "a model in %s", body);
	evbuffer_add(b, body, strlen(body));
	ck_assert_int_eq(model_rewrite(b, &sp, name), 0);
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	model_parser_free(mp);
	return (out);
}

START_TEST(test_span_and_rewrite)
{
	struct model_parser	*mp;
	struct model_span	 sp;
	struct evbuffer		*b;
	char			*s;

	const char		*head = "{ \"x\":1, \"model\" :";
	const char		*rest = " \"a\\u0062\" ,\"y\":2}";

	mp = model_parser_new();
	ck_assert(!model_parser_span(mp, &sp));
	ck_assert_int_eq(model_parser_feed(mp, head, strlen(head)), MODEL_MORE);
	ck_assert_int_eq(model_parser_feed(mp, rest, strlen(rest)),
	    MODEL_FOUND);
	ck_assert_str_eq(model_parser_name(mp), "ab");
	ck_assert(model_parser_span(mp, &sp));
	ck_assert(!sp.form);
	ck_assert_uint_eq(sp.at, strlen(head) + 1);	/* the opening quote */
	ck_assert_uint_eq(sp.len, 9);		/* "a\u0062" as written */
	model_parser_free(mp);

	s = rewritten("{ \"x\":1, \"model\" : \"a\\u0062\" ,\"y\":2}", NULL,
	    "org/m");
	ck_assert_str_eq(s, "{ \"x\":1, \"model\" : \"org/m\" ,\"y\":2}");
	free(s);
	/* A name that needs escapes in JSON gets them. */
	s = rewritten("{\"model\":\"b\"}", NULL, "q\"u\\o");
	ck_assert_str_eq(s, "{\"model\":\"q\\\"u\\\\o\"}");
	free(s);
	/* A nested model is not the one rewritten. */
	s = rewritten("{\"m\":{\"model\":\"x\"},\"model\":\"y\",\"z\":[]}", NULL,
	    "long-name-here");
	ck_assert_str_eq(s, "{\"m\":{\"model\":\"x\"},\"model\":"
	    "\"long-name-here\",\"z\":[]}");
	free(s);

	/* Not a valid name, or a span outside the body: nothing changes. */
	b = evbuffer_new();
	evbuffer_add(b, "{\"model\":\"b\"}", 13);
	sp.at = 9;
	sp.len = 3;
	sp.form = false;
	ck_assert_int_eq(model_rewrite(b, &sp, "a\nb"), -1);
	ck_assert_int_eq(model_rewrite(b, &sp, ""), -1);
	sp.len = 5;
	ck_assert_int_eq(model_rewrite(b, &sp, "ok"), -1);
	ck_assert_uint_eq(evbuffer_get_length(b), 13);
	evbuffer_free(b);
}
END_TEST

#define FORM_CT	"multipart/form-data; boundary=XyZ"

/* A multipart body split at every position, and byte by byte. */
static void
expect_form(const char *ctype, const char *body, enum model_result want,
    const char *want_name)
{
	struct model_parser	*mp;
	enum model_result	 r;
	size_t			 at, i, len = strlen(body);

	for (at = 0; at <= len; at++) {
		mp = model_parser_new_type(ctype);
		ck_assert_ptr_nonnull(mp);
		r = model_parser_feed(mp, body, at);
		if (r == MODEL_MORE)
			r = model_parser_feed(mp, body + at, len - at);
		if (r == MODEL_MORE)
			r = model_parser_finish(mp);
		ck_assert_msg(r == want, "%s split at %zu: %d (%s)", body, at,
		    r, model_parser_error(mp) ? model_parser_error(mp) : "");
		if (want_name != NULL)
			ck_assert_str_eq(model_parser_name(mp), want_name);
		model_parser_free(mp);
	}
	mp = model_parser_new_type(ctype);
	for (i = 0, r = MODEL_MORE; i < len && r == MODEL_MORE; i++)
		r = model_parser_feed(mp, body + i, 1);
	if (r == MODEL_MORE)
		r = model_parser_finish(mp);
	ck_assert_int_eq(r, want);
	model_parser_free(mp);
}

START_TEST(test_form_model_field)
{
	struct model_parser	*mp;
	char			*s;

	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ--\r\n", MODEL_FOUND,
	    "whisper-1");
	/* After a file holding near-delimiters; a preamble; padding. */
	expect_form(FORM_CT, "preamble\r\n--XyZ\r\nContent-Disposition: "
	    "form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: "
	    "audio/wav\r\n\r\n\r\n--Xy\r\n--XyY\r\r\n-\r\n--XyZ \t\r\n"
	    "CONTENT-DISPOSITION: form-data; name=model\r\n\r\nm/1\r\n"
	    "--XyZ--", MODEL_FOUND, "m/1");
	/* The first model field wins; other names do not count. */
	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=\"models\"\r\n\r\nno\r\n--XyZ\r\nContent-Disposition: "
	    "form-data; filename=\"a;b\"; name=\"m\\odel\"\r\n\r\nyes\r\n"
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "later\r\n--XyZ--", MODEL_FOUND, "yes");
	expect_form("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"",
	    "--a b\r\nContent-Disposition: form-data; name=model\r\n\r\nq\r\n"
	    "--a b--", MODEL_FOUND, "q");

	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=\"file\"\r\n\r\nx\r\n--XyZ--\r\n", MODEL_ABSENT, NULL);
	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\r\n\r\n\r\n--XyZ--", MODEL_INVALID, NULL);
	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\r\n\r\nunfinished", MODEL_INVALID, NULL);
	expect_form(FORM_CT, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\n\r\nv\r\n--XyZ--", MODEL_INVALID, NULL);
	expect_form(FORM_CT, "--XyZx\r\n", MODEL_INVALID, NULL);
	expect_form(FORM_CT, "{\"model\":\"a\"}", MODEL_INVALID, NULL);
	expect_form(FORM_CT, "", MODEL_INVALID, NULL);

	/* Not multipart/form-data: JSON. Multipart without a boundary: none. */
	mp = model_parser_new_type(NULL);
	ck_assert_ptr_nonnull(mp);
	model_parser_free(mp);
	expect_form("application/json", "{\"model\":\"j\"}", MODEL_FOUND, "j");
	expect_form("multipart/form-datax; boundary=b", "{\"model\":\"j\"}",
	    MODEL_FOUND, "j");
	ck_assert_ptr_null(model_parser_new_type("multipart/form-data"));
	ck_assert_ptr_null(model_parser_new_type("multipart/form-data; "
	    "boundary="));
	ck_assert_ptr_null(model_parser_new_type("multipart/form-data; "
	    "boundary=0123456789012345678901234567890123456789012345678901234"
	    "5678901234567890"));

	s = rewritten("--XyZ\r\nContent-Disposition: form-data; name=model\r\n"
	    "\r\nb\r\n--XyZ--", FORM_CT, "org/c");
	ck_assert_str_eq(s, "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\r\n\r\norg/c\r\n--XyZ--");
	free(s);
}
END_TEST

START_TEST(test_form_limits)
{
	struct model_parser	*mp;
	char			 body[4096];

	/* A model of 129 bytes, a header line of 2049. */
	snprintf(body, sizeof(body), "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\r\n\r\n%0129d\r\n--XyZ--", 0);
	mp = model_parser_new_type(FORM_CT);
	ck_assert_int_eq(model_parser_feed(mp, body, strlen(body)),
	    MODEL_INVALID);
	ck_assert_str_eq(model_parser_error(mp), "model is longer than 128 "
	    "bytes");
	model_parser_free(mp);
	snprintf(body, sizeof(body), "--XyZ\r\nContent-Disposition: form-data; "
	    "name=model\r\n\r\n%0128d\r\n--XyZ--", 0);
	expect_form(FORM_CT, body, MODEL_FOUND, NULL);
	snprintf(body, sizeof(body), "--XyZ\r\nX: %02047d\r\n", 0);
	mp = model_parser_new_type(FORM_CT);
	ck_assert_int_eq(model_parser_feed(mp, body, strlen(body)),
	    MODEL_INVALID);
	ck_assert_str_eq(model_parser_error(mp), "a multipart header line is "
	    "longer than 2048 bytes");
	model_parser_free(mp);
}
END_TEST

START_TEST(test_name_valid)
{
	ck_assert(model_name_valid("a", 1));
	ck_assert(!model_name_valid("", 0));
	ck_assert(!model_name_valid("a\tb", 3));
	ck_assert(!model_name_valid("a\x7f", 2));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy_model");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_simple);
	tcase_add_test(tc, test_escapes);
	tcase_add_test(tc, test_nested_keys_do_not_count);
	tcase_add_test(tc, test_first_model_wins);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_not_json);
	tcase_add_test(tc, test_long_name);
	tcase_add_test(tc, test_grammar);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_huge_body_stops_early);
	tcase_add_test(tc, test_error_messages);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_span_and_rewrite);
	tcase_add_test(tc, test_form_model_field);
	tcase_add_test(tc, test_form_limits);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
