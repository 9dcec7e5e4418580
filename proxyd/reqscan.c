/*
 * reqscan.c -- the framing of client requests on the raw byte stream (see
 * reqscan.h): a state machine that looks at each byte of a head once,
 * skips bodies and chunks by their length, and refuses, with the answer
 * RFC 9112 asks for:
 *
 *   Content-Length and Transfer-Encoding together     400 (section 6.1)
 *   Content-Length values that differ, or not digits  400 (6.3)
 *   a transfer coding other than chunked              501 (6.1)
 *   chunked twice, or Transfer-Encoding in HTTP/1.0   400 (6.1)
 *   Transfer-Encoding not written "chunked"           400 (libevhtp)
 *   a Content-Length over max_body_bytes              413, at once
 *   chunks that pass max_body_bytes                   413, at the size
 *   a chunk size not 1 to 16 hex digits, extensions   400 (7.1)
 *   trailer fields                                    400 (7.1.2)
 *   a line not ended by CRLF, a bare CR, obs-fold,
 *   white space before a field's colon, a control
 *   byte in a field                                   400 (2.2, 5)
 *   a head over max_header_bytes                      431
 *
 * Between requests CR and LF are skipped, as libevhtp does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hex.h"
#include "reqscan.h"

enum {
	S_IDLE,			/* between requests */
	S_LINE,			/* the request line */
	S_LINE_LF,		/* its CR came */
	S_FIELD,		/* a field line starts (or the head ends) */
	S_NAME,			/* a field's name */
	S_VALUE,		/* its value */
	S_VALUE_LF,		/* its CR came */
	S_HEAD_LF,		/* the empty line's CR came */
	S_BODY,			/* left bytes of a sized body */
	S_CHUNK_SIZE,		/* a chunk's size line */
	S_CHUNK_SIZE_LF,	/* its CR came */
	S_CHUNK_DATA,		/* left bytes of a chunk */
	S_CHUNK_CR,		/* the CRLF after a chunk */
	S_CHUNK_LF,
	S_TRAILER,		/* after the last chunk: CRLF only */
	S_TRAILER_LF,
	S_FAILED,
};

/* The fields the framing depends on. */
enum {
	F_OTHER,
	F_CL,
	F_TE,
};

#define CR	'\r'
#define LF	'\n'

void
reqscan_init(struct reqscan *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->state = S_IDLE;
}

enum reqscan_phase
reqscan_phase(const struct reqscan *rs)
{
	switch (rs->state) {
	case S_IDLE:
		return (RQ_IDLE);
	case S_FAILED:
		return (RQ_FAILED);
	case S_BODY:
	case S_CHUNK_SIZE:
	case S_CHUNK_SIZE_LF:
	case S_CHUNK_DATA:
	case S_CHUNK_CR:
	case S_CHUNK_LF:
	case S_TRAILER:
	case S_TRAILER_LF:
		return (RQ_BODY);
	default:
		return (RQ_HEAD);
	}
}

static bool
reqscan_fail(struct reqscan *rs, int status, enum reject_code code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool
reqscan_fail(struct reqscan *rs, int status, enum reject_code code,
    const char *fmt, ...)
{
	va_list	ap;

	rs->state = S_FAILED;
	rs->status = status;
	rs->code = code;
	rs->failed_request = rs->begun - 1;
	va_start(ap, fmt);
	vsnprintf(rs->error, sizeof(rs->error), fmt, ap);
	va_end(ap);
	return (false);
}

static bool
reqscan_bad(struct reqscan *rs, const char *what)
{
	return (reqscan_fail(rs, 400, REJ_BAD_REQUEST, "%s", what));
}

/* A token character (RFC 9110 section 5.6.2). */
static bool
reqscan_tchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return (true);
	return (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A request ends: the next byte belongs to the next one. */
static void
reqscan_end(struct reqscan *rs)
{
	rs->done++;
	rs->state = S_IDLE;
}

/* Content-Length: SP* 1*DIGIT (SP / HTAB)*, as libevhtp reads it. */
static bool
reqscan_cl(struct reqscan *rs)
{
	const char	*v = rs->value, *end = v + rs->value_len;
	uint64_t	 n = 0;
	bool		 digits = false;

	if (rs->value_len >= sizeof(rs->value))
		return (reqscan_bad(rs, "Content-Length is not a number"));
	while (v < end && *v == ' ')
		v++;
	for (; v < end && *v >= '0' && *v <= '9'; v++) {
		digits = true;
		n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 +
		    (uint64_t)(*v - '0');
	}
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	if (!digits || v != end)
		return (reqscan_bad(rs, "Content-Length is not a number"));
	if (rs->has_cl && rs->cl != n)
		return (reqscan_bad(rs, "Content-Length values differ"));
	rs->has_cl = true;
	rs->cl = n;
	return (true);
}

/* Transfer-Encoding: a list of codings; only chunked, once, is taken. */
static bool
reqscan_te(struct reqscan *rs)
{
	const char	*v = rs->value, *end = v + rs->value_len, *s;
	size_t		 n;

	if (rs->value_len >= sizeof(rs->value)) {
		rs->te_other = true;
		return (true);
	}
	/* libevhtp skips the spaces before a value and nothing else. */
	s = v;
	while (s < end && *s == ' ')
		s++;
	rs->te_exact = !rs->has_te && end - s == 7 &&
	    (memcmp(s, "chunked", 7) == 0 || memcmp(s, "Chunked", 7) == 0);
	rs->has_te = true;
	while (v < end) {
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		s = v;
		while (v < end && *v != ',')
			v++;
		n = (size_t)(v - s);
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
			continue;
		if (n == 7 && strncasecmp(s, "chunked", 7) == 0)
			rs->te_chunked++;
		else
			rs->te_other = true;
	}
	return (true);
}

/* A field line is whole. */
static bool
reqscan_field(struct reqscan *rs)
{
	switch (rs->field) {
	case F_CL:
		return (reqscan_cl(rs));
	case F_TE:
		return (reqscan_te(rs));
	default:
		return (true);
	}
}

/* The head is whole: how long is the body? */
static bool
reqscan_head(struct reqscan *rs, const struct reqscan_limits *lim)
{
	if (rs->has_te && rs->has_cl)
		return (reqscan_bad(rs, "a request with both Content-Length "
		    "and Transfer-Encoding"));
	if (rs->has_te) {
		if (rs->http10)
			return (reqscan_bad(rs, "Transfer-Encoding in an "
			    "HTTP/1.0 request"));
		if (rs->te_other)
			return (reqscan_fail(rs, 501, REJ_NOT_IMPLEMENTED,
			    "the only transfer coding taken is chunked"));
		if (rs->te_chunked != 1)
			return (reqscan_bad(rs, "chunked must be the one "
			    "transfer coding, once"));
		if (!rs->te_exact)
			return (reqscan_bad(rs, "Transfer-Encoding must be "
			    "written `chunked`"));
		rs->state = S_CHUNK_SIZE;
		rs->hex = 0;
		rs->left = 0;
		return (true);
	}
	if (rs->has_cl && rs->cl > lim->max_body)
		return (reqscan_fail(rs, 413, REJ_TOO_LARGE,
		    "request body is larger than %llu bytes",
		    (unsigned long long)lim->max_body));
	if (rs->has_cl && rs->cl > 0) {
		rs->state = S_BODY;
		rs->left = rs->cl;
		return (true);
	}
	reqscan_end(rs);
	return (true);
}

/* A byte of the head. */
static bool
reqscan_head_byte(struct reqscan *rs, int c, const struct reqscan_limits *lim)
{
	if (++rs->head_bytes > lim->max_head)
		return (reqscan_fail(rs, 431, REJ_HEADERS_TOO_LARGE,
		    "request headers are larger than %u bytes",
		    lim->max_head));
	switch (rs->state) {
	case S_LINE:
		if (c == CR) {
			rs->http10 = strcmp(rs->tail, "HTTP/1.0") == 0;
			rs->state = S_LINE_LF;
		} else if (c == LF)
			return (reqscan_bad(rs, "a line not ended by CRLF"));
		else {
			memmove(rs->tail, rs->tail + 1, sizeof(rs->tail) - 2);
			rs->tail[sizeof(rs->tail) - 2] = (char)c;
		}
		return (true);
	case S_LINE_LF:
	case S_VALUE_LF:
		if (c != LF)
			return (reqscan_bad(rs, "a CR not followed by LF"));
		if (rs->state == S_VALUE_LF && !reqscan_field(rs))
			return (false);
		rs->state = S_FIELD;
		return (true);
	case S_FIELD:
		if (c == CR) {
			rs->state = S_HEAD_LF;
			return (true);
		}
		if (c == ' ' || c == '\t')
			return (reqscan_bad(rs, "a folded header field"));
		if (!reqscan_tchar(c))
			return (reqscan_bad(rs, "a bad header field name"));
		rs->state = S_NAME;
		rs->name_len = 0;
		/* FALLTHROUGH */
	case S_NAME:
		if (c == ':') {
			rs->field = F_OTHER;
			if (rs->name_len == 14 &&
			    memcmp(rs->name, "content-length", 14) == 0)
				rs->field = F_CL;
			else if (rs->name_len == 17 &&
			    memcmp(rs->name, "transfer-encoding", 17) == 0)
				rs->field = F_TE;
			rs->value_len = 0;
			rs->state = S_VALUE;
			return (true);
		}
		if (c == ' ' || c == '\t')
			return (reqscan_bad(rs, "white space before a header "
			    "field's colon"));
		if (!reqscan_tchar(c))
			return (reqscan_bad(rs, "a bad header field name"));
		if (rs->name_len < sizeof(rs->name))
			rs->name[rs->name_len] = (char)(c >= 'A' && c <= 'Z' ?
			    c + 32 : c);
		if (rs->name_len < UINT16_MAX)
			rs->name_len++;
		return (true);
	case S_VALUE:
		if (c == CR) {
			rs->state = S_VALUE_LF;
			return (true);
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return (reqscan_bad(rs, c == LF ? "a line not ended "
			    "by CRLF" : "a control byte in a header field"));
		if (rs->field != F_OTHER) {
			if (rs->value_len < sizeof(rs->value))
				rs->value[rs->value_len] = (char)c;
			if (rs->value_len < UINT16_MAX)
				rs->value_len++;
		}
		return (true);
	case S_HEAD_LF:
		if (c != LF)
			return (reqscan_bad(rs, "a CR not followed by LF"));
		return (reqscan_head(rs, lim));
	default:
		return (reqscan_bad(rs, "bad state"));
	}
}

/* A byte of a chunk's framing (not of its data). */
static bool
reqscan_chunk_byte(struct reqscan *rs, int c, const struct reqscan_limits *lim)
{
	int	d;

	switch (rs->state) {
	case S_CHUNK_SIZE:
		if (c == CR && rs->hex > 0) {
			if (rs->left > lim->max_body - rs->body)
				return (reqscan_fail(rs, 413, REJ_TOO_LARGE,
				    "request body is larger than %llu bytes",
				    (unsigned long long)lim->max_body));
			rs->state = S_CHUNK_SIZE_LF;
			return (true);
		}
		if ((d = hex_digit(c)) < 0)
			return (reqscan_bad(rs, c == ';' ? "chunk extensions "
			    "are not taken" : "a bad chunk size"));
		if (++rs->hex > 16)
			return (reqscan_bad(rs, "a chunk size of more than 16 "
			    "hex digits"));
		rs->left = rs->left * 16 + (uint64_t)d;
		return (true);
	case S_CHUNK_SIZE_LF:
		if (c != LF)
			return (reqscan_bad(rs, "a bad chunk size"));
		if (rs->left == 0)
			rs->state = S_TRAILER;
		else {
			rs->body += rs->left;
			rs->state = S_CHUNK_DATA;
		}
		return (true);
	case S_CHUNK_CR:
		if (c != CR)
			return (reqscan_bad(rs, "a chunk longer than its size"));
		rs->state = S_CHUNK_LF;
		return (true);
	case S_CHUNK_LF:
		if (c != LF)
			return (reqscan_bad(rs, "a chunk longer than its size"));
		rs->state = S_CHUNK_SIZE;
		rs->hex = 0;
		rs->left = 0;
		return (true);
	case S_TRAILER:
		if (c != CR)
			return (reqscan_bad(rs, "trailer fields are not taken"));
		rs->state = S_TRAILER_LF;
		return (true);
	case S_TRAILER_LF:
		if (c != LF)
			return (reqscan_bad(rs, "a CR not followed by LF"));
		reqscan_end(rs);
		return (true);
	default:
		return (reqscan_bad(rs, "bad state"));
	}
}

bool
reqscan_feed(struct reqscan *rs, const void *buf, size_t len,
    const struct reqscan_limits *lim)
{
	const unsigned char	*p = buf, *end = p + len;
	uint64_t		 n;
	int			 c;

	while (p < end) {
		switch (rs->state) {
		case S_FAILED:
			return (false);
		case S_BODY:
		case S_CHUNK_DATA:
			n = (uint64_t)(end - p);
			if (n > rs->left)
				n = rs->left;
			p += n;
			rs->left -= n;
			if (rs->left > 0)
				break;
			if (rs->state == S_BODY)
				reqscan_end(rs);
			else
				rs->state = S_CHUNK_CR;
			break;
		case S_IDLE:
			c = *p++;
			if (c == CR || c == LF)
				break;
			rs->begun++;
			rs->state = S_LINE;
			rs->head_bytes = 0;
			rs->has_cl = rs->has_te = rs->te_other = false;
			rs->te_exact = rs->http10 = false;
			rs->te_chunked = 0;
			rs->cl = rs->body = 0;
			memset(rs->tail, 0, sizeof(rs->tail));
			if (!reqscan_head_byte(rs, c, lim))
				return (false);
			break;
		case S_CHUNK_SIZE:
		case S_CHUNK_SIZE_LF:
		case S_CHUNK_CR:
		case S_CHUNK_LF:
		case S_TRAILER:
		case S_TRAILER_LF:
			if (!reqscan_chunk_byte(rs, *p++, lim))
				return (false);
			break;
		default:
			if (!reqscan_head_byte(rs, *p++, lim))
				return (false);
			break;
		}
	}
	return (rs->state != S_FAILED);
}
