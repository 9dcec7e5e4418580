/*
 * fuzz_usage.c -- libFuzzer target for the usage scan of model answers
 * (proxyd/usage.c): the input (after a first byte that chooses piece
 * sizes) is an answer body. Fed to the ring in pieces it must give what
 * usage_parse gives on the body's last USAGE_WINDOW bytes at once, and a
 * count found has at most 19 digits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/usage.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage_scan	*u;
	struct usage_counts	 a, b;
	size_t			 off = 0, n, step, tail;
	bool			 ra, rb;

	if (size < 1)
		return (0);
	step = (size_t)data[0] % 13 + 1;
	data++;
	size--;
	u = calloc(1, sizeof(*u));
	while (off < size) {
		n = step > size - off ? size - off : step;
		usage_feed(u, data + off, n);
		off += n;
		step = step * 7 % 3001 + 1;	/* pieces from 1 byte to 3 KiB */
	}
	ra = usage_result(u, &a);
	tail = size > USAGE_WINDOW ? size - USAGE_WINDOW : 0;
	rb = usage_parse(data + tail, size - tail, &b);
	if (ra != rb || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (ra && (a.prompt_tokens >= 10000000000000000000ull ||
	    a.completion_tokens >= 10000000000000000000ull))
		abort();
	if (!ra && (a.prompt_tokens != 0 || a.completion_tokens != 0))
		abort();
	free(u);
	return (0);
}
