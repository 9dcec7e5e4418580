/*
 * reqscan.h -- the framing of client requests, checked on the raw bytes
 * of a connection as they arrive, before libevhtp parses them: where each
 * request's head and body end (RFC 9112 sections 2 to 7), and the inputs
 * that could make two parsers disagree on it, refused.
 *
 * libevhtp takes the last Content-Length when there are several, ignores a
 * Transfer-Encoding other than exactly "chunked" (and falls back to the
 * Content-Length), lets chunked win over Content-Length, wraps a chunk
 * size of more than 16 hex digits around, and ends a chunked message after
 * its first trailer line. A proxy behind another one must not: so every
 * request whose framing is not plain is refused here, and what is accepted
 * is framed by libevhtp exactly as here (tests/fuzz/fuzz_reqscan.c).
 *
 * Pure: no I/O, no clock. The front feeds it every byte a client sends.
 */
#ifndef LLMUX_PROXY_REQSCAN_H
#define LLMUX_PROXY_REQSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

/* Where the connection's byte stream is. */
enum reqscan_phase {
	RQ_IDLE,		/* between requests: nothing of the next one */
	RQ_HEAD,		/* some bytes of a head */
	RQ_BODY,		/* a head is whole, its body is not */
	RQ_FAILED,		/* refused: the connection will be closed */
};

struct reqscan_limits {
	uint64_t	max_body;	/* 413 past it */
	uint32_t	max_head;	/* 431 past it */
};

struct reqscan {
	int			 state;
	uint64_t		 begun;		/* requests whose first byte came */
	uint64_t		 done;		/* requests whose last byte came */
	uint32_t		 head_bytes;
	uint64_t		 left;		/* of the body or the chunk */
	uint64_t		 body;		/* body bytes of this request */
	uint64_t		 cl;		/* Content-Length */
	bool			 has_cl;
	bool			 has_te;
	bool			 te_other;	/* a coding other than chunked */
	bool			 te_exact;	/* written as libevhtp reads it */
	uint32_t		 te_chunked;	/* how many times chunked */
	bool			 http10;
	uint8_t			 hex;		/* digits of the chunk size */
	uint8_t			 field;		/* which field is being read */
	uint16_t		 name_len;
	uint16_t		 value_len;
	char			 name[20];	/* lower case, cut */
	char			 value[72];	/* of a framing field, cut */
	char			 tail[9];	/* the request line's last bytes */

	/* Refused (RQ_FAILED): the answer, and which request it is for. */
	int			 status;
	enum reject_code	 code;
	uint64_t		 failed_request; /* 0 for the first */
	char			 error[128];
};

void			 reqscan_init(struct reqscan *);
/*
 * Scan the next bytes the client sent. Returns false once the stream is
 * refused (then every later call does nothing and returns false).
 */
bool			 reqscan_feed(struct reqscan *, const void *, size_t,
			    const struct reqscan_limits *);
enum reqscan_phase	 reqscan_phase(const struct reqscan *);

#endif
