/*
 * fuzz_json.c -- libFuzzer target for the JSON string escaper
 * (common/json.c), which is given bytes from anywhere (a served model
 * name, a reason from a socket error, a model's output): whatever the
 * input, the output quoted is one JSON string that yajl accepts (valid
 * UTF-8, no raw control byte), at most six bytes per input byte; read
 * back, it is the input itself when the input is valid UTF-8 (by a
 * decoder written here, another way), else the input with U+FFFD in
 * place of the bytes that were not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "json.h"
#include "strbuf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_back {
	int		 strings;
	struct strbuf	 got;
};

static int
fuzz_string(void *ctx, const unsigned char *s, size_t len)
{
	struct fuzz_back	*r = ctx;

	r->strings++;
	strbuf_add(&r->got, (const char *)s, len);
	return (1);
}

static const yajl_callbacks fuzz_cb = { .yajl_string = fuzz_string };

/* Is p valid UTF-8: each code point decoded, then its range checked. */
static int
fuzz_valid_utf8(const uint8_t *p, size_t len)
{
	size_t		i = 0, n, k;
	uint32_t	cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 2; cp = p[i] & 0x1f; min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 3; cp = p[i] & 0x0f; min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 4; cp = p[i] & 0x07; min = 0x10000;
		} else
			return (0);
		if (len - i < n)
			return (0);
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return (0);
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return (0);
		i += n;
	}
	return (1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_back	 r = { 0, STRBUF_INIT };
	struct strbuf		 doc = STRBUF_INIT;
	yajl_handle		 h;
	int			 valid = fuzz_valid_utf8(data, size);

	strbuf_add(&doc, "\"", 1);
	json_escape_strbuf(&doc, (const char *)data, size);
	strbuf_add(&doc, "\"", 1);
	if (doc.len > size * 6 + 2)
		abort();
	for (size_t i = 0; i < doc.len; i++)
		if ((unsigned char)doc.p[i] < 0x20)
			abort();	/* a raw control byte */
	h = yajl_alloc(&fuzz_cb, NULL, &r);
	if (yajl_parse(h, (const unsigned char *)doc.p, doc.len) !=
	    yajl_status_ok || yajl_complete_parse(h) != yajl_status_ok ||
	    r.strings != 1)
		abort();	/* not one valid JSON string */
	yajl_free(h);
	if (valid && (r.got.len != size ||
	    (size > 0 && memcmp(r.got.p, data, size) != 0)))
		abort();	/* valid UTF-8 did not come back as it was */
	if (!valid && (r.got.len == size || r.got.len > size * 3 ||
	    memmem(r.got.p, r.got.len, "\xef\xbf\xbd", 3) == NULL))
		abort();	/* invalid bytes not replaced by U+FFFD */
	strbuf_free(&r.got);
	strbuf_free(&doc);
	return (0);
}
