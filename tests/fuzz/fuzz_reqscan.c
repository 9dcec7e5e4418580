/*
 * fuzz_reqscan.c -- libFuzzer target for the request reader's framing
 * checks (proxyd/reqscan.c): the input (after a first byte that chooses
 * the sizes of the reads) is what a client sends on one connection.
 *
 * Fed whole and fed in pieces, the scanner must give the same answer.
 * And libevhtp's parser, fed the same bytes, must frame every request the
 * scanner let through exactly as the scanner did (the same end, the same
 * body length), and must not finish a request the scanner still waits
 * for: otherwise the proxy and the server behind it could disagree on
 * where a request ends, which is how requests are smuggled. libevhtp may
 * refuse more than the scanner (the connection is then closed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <evhtp/parser.h>

#include "proxyd/reqscan.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_MAX_MSGS	64

static const struct reqscan_limits fuzz_limits = {
	.max_body = 4096,
	.max_head = 2048,
};

struct fuzz_msgs {
	size_t		n;
	size_t		end[FUZZ_MAX_MSGS];	/* offset after its last byte */
	uint64_t	body[FUZZ_MAX_MSGS];
};

/* The scanner, one piece at a time; a byte at a time records the ends. */
static void
fuzz_scan(const uint8_t *buf, size_t len, size_t step, struct reqscan *rs,
    struct fuzz_msgs *m)
{
	size_t	off = 0, n;

	reqscan_init(rs);
	if (m != NULL)
		memset(m, 0, sizeof(*m));
	while (off < len) {
		n = step == 0 ? len - off : step;
		if (n > len - off)
			n = len - off;
		if (m != NULL)
			n = 1;
		if (!reqscan_feed(rs, buf + off, n, &fuzz_limits))
			break;
		off += n;
		if (m != NULL && rs->done > m->n && m->n < FUZZ_MAX_MSGS) {
			m->end[m->n] = off;
			m->body[m->n] = rs->has_te ? rs->body : rs->cl;
			m->n++;
		}
		if (step != 0)
			step = step % 11 + 1;
	}
}

struct fuzz_evhtp {
	uint64_t	body;
	int		complete;
};

static int
fuzz_evhtp_body(htparser *p, const char *data, size_t len)
{
	struct fuzz_evhtp	*e = htparser_get_userdata(p);

	e->body += len;
	return (0);
}

static int
fuzz_evhtp_complete(htparser *p)
{
	struct fuzz_evhtp	*e = htparser_get_userdata(p);

	e->complete = 1;
	return (0);
}

static htparse_hooks fuzz_evhtp_hooks = {
	.body = fuzz_evhtp_body,
	.on_msg_complete = fuzz_evhtp_complete,
};

/* libevhtp's parser over the whole stream, as its server runs it. */
static void
fuzz_evhtp(const uint8_t *buf, size_t len, struct fuzz_msgs *m, int *error)
{
	htparser		*p = htparser_new();
	struct fuzz_evhtp	 e;
	size_t			 off = 0, n;

	memset(m, 0, sizeof(*m));
	memset(&e, 0, sizeof(e));
	htparser_init(p, htp_type_request);
	htparser_set_userdata(p, &e);
	*error = 0;
	while (off < len && m->n < FUZZ_MAX_MSGS) {
		n = htparser_run(p, &fuzz_evhtp_hooks, (const char *)buf + off,
		    len - off);
		off += n;
		if (htparser_get_error(p) != htparse_error_none) {
			*error = 1;
			break;
		}
		if (e.complete) {
			m->end[m->n] = off;
			m->body[m->n] = e.body;
			m->n++;
			e.complete = 0;
			e.body = 0;
		}
		if (n == 0)
			break;
	}
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reqscan		whole, split, bytes;
	struct fuzz_msgs	ms, me;
	size_t			i;
	int			error;

	if (size < 1)
		return (0);
	data++;
	size--;
	fuzz_scan(data, size, 0, &whole, NULL);
	fuzz_scan(data, size, (size_t)data[-1] % 17 + 1, &split, NULL);
	fuzz_scan(data, size, 0, &bytes, &ms);
	if (whole.state != split.state || whole.begun != split.begun ||
	    whole.done != split.done || whole.status != split.status ||
	    whole.state != bytes.state || whole.done != bytes.done)
		abort();
	if (reqscan_phase(&whole) == RQ_FAILED && (whole.status == 0 ||
	    whole.error[0] == '\0' || whole.failed_request != whole.done))
		abort();
	if (whole.done > FUZZ_MAX_MSGS)
		return (0);

	fuzz_evhtp(data, size, &me, &error);
	/* Every request both finished: framed alike. */
	for (i = 0; i < ms.n && i < me.n; i++) {
		if (ms.end[i] != me.end[i] || ms.body[i] != me.body[i])
			abort();
	}
	/* The scanner let a request through that libevhtp did not finish. */
	if (ms.n > me.n && !error)
		abort();
	/*
	 * libevhtp finished a request the scanner had not: fine only if the
	 * scanner refused it (the proxy answers the refusal instead).
	 */
	if (me.n > ms.n && reqscan_phase(&whole) != RQ_FAILED)
		abort();
	return (0);
}
