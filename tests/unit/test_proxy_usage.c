/*
 * test_proxy_usage.c -- the token counts of model answers (proxyd/usage.c):
 * a JSON completion, a stream whose last event carries usage after chunks
 * with "usage": null, a stream without it, content that quotes "usage",
 * nested objects, an object cut off, too many digits, and the ring fed in
 * pieces of every size across its wrap.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "proxyd/usage.h"
#include "unit.h"

static bool
parse(const char *s, struct usage_counts *c)
{
	return (usage_parse((const uint8_t *)s, strlen(s), c));
}

START_TEST(test_completion)
{
	struct usage_counts	c;

	ck_assert(parse("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":"
	    "\"say \\\"usage\\\":{\\\"prompt_tokens\\\":1}\"}}],\"usage\":{"
	    "\"prompt_tokens\":12,\"total_tokens\":19,\"completion_tokens\":7,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":3}},\"x\":null}", &c));
	ck_assert_uint_eq(c.prompt_tokens, 12);
	ck_assert_uint_eq(c.completion_tokens, 7);
	/* Only its own keys: a nested completion_tokens is not it. */
	ck_assert(parse("{\"usage\" : { \"d\": {\"completion_tokens\": 5}, "
	    "\"prompt_tokens\" :\t4 }}", &c));
	ck_assert_uint_eq(c.prompt_tokens, 4);
	ck_assert_uint_eq(c.completion_tokens, 0);
}
END_TEST

START_TEST(test_stream)
{
	struct usage_counts	c;

	ck_assert(parse("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],"
	    "\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{"
	    "\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n"
	    "data: [DONE]\n\n", &c));
	ck_assert_uint_eq(c.prompt_tokens, 5);
	ck_assert_uint_eq(c.completion_tokens, 3);
	/* continuous_usage_stats: the last one counts. */
	ck_assert(parse("data: {\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":1}}\n\ndata: {\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2}}\n\ndata: [DONE]\n\n", &c));
	ck_assert_uint_eq(c.completion_tokens, 2);
	ck_assert(!parse("data: {\"choices\":[],\"usage\":null}\n\n"
	    "data: [DONE]\n\n", &c));
	ck_assert_uint_eq(c.prompt_tokens, 0);
}
END_TEST

START_TEST(test_refused)
{
	struct usage_counts	c;

	ck_assert(!parse("", &c));
	ck_assert(!parse("{\"usage\":{}}", &c));
	ck_assert(!parse("{\"usage\":{\"prompt_tokens\":4", &c));
	ck_assert(!parse("{\"usage\":{\"prompt_tokens\":\"4\"}}", &c));
	ck_assert(!parse("{\"usage\":{\"prompt_tokens\":"
	    "12345678901234567890}}", &c));
	ck_assert(!parse("{\"usage\":{\"prompt_\\u0074okens\":3}}", &c));
	ck_assert(!parse("{\"usage\":[{\"prompt_tokens\":3}]}", &c));
	/* The longest count there is. */
	ck_assert(parse("{\"usage\":{\"prompt_tokens\":1234567890123456789}}",
	    &c));
	ck_assert_uint_eq(c.prompt_tokens, 1234567890123456789ull);
}
END_TEST

START_TEST(test_ring)
{
	static struct usage_scan	u;
	struct usage_counts		c;
	char				body[9000], tail[100];
	size_t				len, off, step, n;

	memset(body, 'x', sizeof(body));
	n = (size_t)snprintf(tail, sizeof(tail), "{\"usage\":{\"prompt_tokens\":"
	    "31,\"completion_tokens\":17}}\n");
	for (step = 1; step < 4000; step = step * 3 + 1) {
		for (len = n; len < sizeof(body); len += 2111) {
			memcpy(body + len - n, tail, n);
			memset(&u, 0, sizeof(u));
			for (off = 0; off < len; off += step)
				usage_feed(&u, body + off, step < len - off ?
				    step : len - off);
			ck_assert_msg(usage_result(&u, &c), "step %zu len %zu",
			    step, len);
			ck_assert_uint_eq(c.prompt_tokens, 31);
			ck_assert_uint_eq(c.completion_tokens, 17);
			memset(body + len - n, 'x', n);
		}
	}
	/* Usage that has left the window is not found. */
	memset(&u, 0, sizeof(u));
	usage_feed(&u, tail, n);
	usage_feed(&u, body, USAGE_WINDOW);
	ck_assert(!usage_result(&u, &c));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy_usage");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_completion);
	tcase_add_test(tc, test_stream);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_ring);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
