/*
 * fuzz_frame.c -- libFuzzer target for the supervisor socket's decoder: the
 * input is a byte stream cut into frames as a connection would cut it; each
 * frame is decoded, and what decodes is encoded again and must decode to
 * the same encoding (the encoder and decoder agree), and reply bodies and
 * events are turned into JSON (events into SSE records too).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evstream.h"
#include "mpjson.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_frame_one(const uint8_t *buf, size_t len)
{
	struct proto_msg	 m, again;
	char			 err[256];
	uint8_t			*f1, *f2;
	size_t			 l1, l2;

	if (proto_decode(buf, len, &m, err, sizeof(err)) != 0)
		return;
	if (m.type == PROTO_REPLY)
		free(mpjson_string(m.u.reply.body, m.u.reply.body_len, 1));
	if (m.type == PROTO_EVENT) {
		size_t	n;

		free(evstream_json(&m.u.event));
		free(evstream_sse(&m.u.event, &n));
	}
	if (proto_encode(&m, &f1, &l1) == 0) {
		if (proto_decode(f1 + 4, l1 - 4, &again, err, sizeof(err)) != 0)
			abort();	/* we produced something we refuse */
		if (proto_encode(&again, &f2, &l2) != 0 || l1 != l2 ||
		    memcmp(f1, f2, l1) != 0)
			abort();	/* not a fixed point */
		free(f2);
		proto_msg_free(&again);
		free(f1);
	}
	proto_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t	plen;

	/* As a stream of length-prefixed frames. */
	while (size > 0) {
		if (proto_frame_length(data, size, &plen) != 1 ||
		    size - 4 < plen) {
			/* Not a whole frame: decode the rest as one payload. */
			fuzz_frame_one(data, size);
			break;
		}
		fuzz_frame_one(data + 4, plen);
		data += 4 + plen;
		size -= 4 + plen;
	}
	return (0);
}
