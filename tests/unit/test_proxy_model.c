/*
 * test_proxy_model.c -- finding the top-level "model" of a JSON body fed in
 * chunks: every chunk boundary, escapes, nested keys, bad values, and a
 * huge body whose parsing stops at the model.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
