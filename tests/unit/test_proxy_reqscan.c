/*
 * test_proxy_reqscan.c -- the framing checks of client requests: each
 * input that could frame a request two ways gets its status, plain ones
 * pass with their requests counted, and the answer is the same whatever
 * the sizes of the reads.
 */
#include <check.h>
#include <string.h>

#include "proxyd/reqscan.h"
#include "unit.h"

#define H	"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
#define G	"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

static const struct reqscan_limits limits = {
	.max_body = 4096,
	.max_head = 1024,
};

/* Scan s whole, then byte by byte: both must agree; returns the status. */
static int
scan(const char *s, uint64_t *done)
{
	struct reqscan	whole, bytes;
	size_t		i, len = strlen(s);

	reqscan_init(&whole);
	reqscan_feed(&whole, s, len, &limits);
	reqscan_init(&bytes);
	for (i = 0; i < len; i++)
		reqscan_feed(&bytes, s + i, 1, &limits);
	ck_assert_int_eq(whole.status, bytes.status);
	ck_assert_uint_eq(whole.done, bytes.done);
	ck_assert_int_eq(reqscan_phase(&whole), reqscan_phase(&bytes));
	if (done != NULL)
		*done = whole.done;
	if (whole.status != 0) {
		ck_assert_int_eq(reqscan_phase(&whole), RQ_FAILED);
		ck_assert(whole.error[0] != '\0');
	}
	return (whole.status);
}

static const struct {
	const char	*name;
	int		 status;
	const char	*input;
} cases[] = {
	{ "CL and TE", 400, H "Content-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" G },
	{ "TE and CL", 400, H "Transfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n0\r\n\r\n" G },
	{ "two CLs", 400, H "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x" },
	{ "a CL list", 400, H "Content-Length: 2, 2\r\n\r\n{}" },
	{ "a signed CL", 400, H "Content-Length: +2\r\n\r\n{}" },
	{ "an empty CL", 400, H "Content-Length: \r\n\r\n" },
	{ "a CL after a tab", 400, H "Content-Length:\t2\r\n\r\n{}" },
	{ "CL over the limit", 413, H "Content-Length: 4097\r\n\r\n" },
	{ "a CL of 25 digits", 413, H
	    "Content-Length: 9999999999999999999999999\r\n\r\n" },
	{ "xchunked", 501, H "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" },
	{ "gzip, chunked", 501, H "Transfer-Encoding: gzip, chunked\r\n\r\n" },
	{ "chunked twice", 400, H "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
	{ "chunked, chunked", 400, H "Transfer-Encoding: chunked, chunked\r\n"
	    "\r\n0\r\n\r\n" },
	{ "CHUNKED", 400, H "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n" },
	{ "chunked and a space", 400, H "Transfer-Encoding: chunked \r\n\r\n"
	    "0\r\n\r\n" },
	{ "TE in HTTP/1.0", 400, "POST / HTTP/1.0\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
	{ "a bad chunk size", 400, H "Transfer-Encoding: chunked\r\n\r\n"
	    "zz\r\n{}\r\n0\r\n\r\n" },
	{ "an empty chunk size", 400, H "Transfer-Encoding: chunked\r\n\r\n"
	    "\r\n" },
	{ "17 hex digits", 400, H "Transfer-Encoding: chunked\r\n\r\n"
	    "10000000000000000\r\n\r\n" G },
	{ "a chunk extension", 400, H "Transfer-Encoding: chunked\r\n\r\n"
	    "2;x=y\r\n{}\r\n0\r\n\r\n" },
	{ "chunks over the limit", 413, H "Transfer-Encoding: chunked\r\n\r\n"
	    "1001\r\n" },
	{ "a chunk longer than its size", 400, H
	    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}x\r\n0\r\n\r\n" },
	{ "a trailer field", 400, H "Transfer-Encoding: chunked\r\n\r\n"
	    "0\r\nX: y\r\n\r\n" },
	{ "a folded field", 400, H "X-A: b\r\n c\r\n\r\n" },
	{ "space before a colon", 400, H "Content-Length : 2\r\n\r\n{}" },
	{ "an empty field name", 400, H ": x\r\n\r\n" },
	{ "a bare LF", 400, H "Content-Length: 2\n\r\n{}" },
	{ "a bare CR", 400, H "X: y\rz\r\n\r\n" },
	{ "a control byte in a value", 400, H "X: a\001b\r\n\r\n" },
	{ "a head over the limit", 431, H "X-Big: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "\r\n\r\n" },
};

START_TEST(test_refused)
{
	size_t	i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(scan(cases[i].input, NULL) == cases[i].status,
		    "%s: not %d", cases[i].name, cases[i].status);
}
END_TEST

START_TEST(test_plain)
{
	uint64_t	done;

	ck_assert_int_eq(scan(G G G, &done), 0);
	ck_assert_uint_eq(done, 3);
	ck_assert_int_eq(scan("\r\n\r\n" G, &done), 0);
	ck_assert_uint_eq(done, 1);
	ck_assert_int_eq(scan(H "Content-Length: 13\r\n\r\n{\"model\":\"a\"}" G,
	    &done), 0);
	ck_assert_uint_eq(done, 2);
	/* The same Content-Length twice is one. */
	ck_assert_int_eq(scan(H "Content-Length: 2\r\nContent-Length: 2 \r\n"
	    "\r\n{}" G, &done), 0);
	ck_assert_uint_eq(done, 2);
	ck_assert_int_eq(scan(H "Transfer-Encoding: chunked\r\n\r\n"
	    "2\r\n{}\r\n000A\r\n0123456789\r\n0\r\n\r\n" G, &done), 0);
	ck_assert_uint_eq(done, 2);
	ck_assert_int_eq(scan(H "transfer-encoding: Chunked\r\n\r\n0\r\n\r\n",
	    &done), 0);
	ck_assert_uint_eq(done, 1);
}
END_TEST

/* Where the stream is, for the front's time limits. */
START_TEST(test_phases)
{
	struct reqscan	rs;

	reqscan_init(&rs);
	ck_assert_int_eq(reqscan_phase(&rs), RQ_IDLE);
	reqscan_feed(&rs, "PO", 2, &limits);
	ck_assert_int_eq(reqscan_phase(&rs), RQ_HEAD);
	ck_assert_uint_eq(rs.begun, 1);
	reqscan_feed(&rs, "ST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n", 36,
	    &limits);
	ck_assert_int_eq(reqscan_phase(&rs), RQ_BODY);
	reqscan_feed(&rs, "{}", 2, &limits);
	ck_assert_int_eq(reqscan_phase(&rs), RQ_IDLE);
	ck_assert_uint_eq(rs.done, 1);
	/* A refusal names the request it is for: the second here. */
	ck_assert(!reqscan_feed(&rs, "GET / HTTP/1.1\r\nX : y\r\n", 23,
	    &limits));
	ck_assert_int_eq(reqscan_phase(&rs), RQ_FAILED);
	ck_assert_uint_eq(rs.failed_request, 1);
	ck_assert(!reqscan_feed(&rs, G, strlen(G), &limits));
	ck_assert_uint_eq(rs.done, 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy_reqscan");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_phases);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
