/*
 * mpread.c -- the bounded msgpack reader (see mpread.h).
 */
#include <string.h>

#include "mpread.h"

void
mpr_init(struct mpr *r, const uint8_t *buf, size_t len)
{
	r->p = buf;
	r->end = buf + len;
}

size_t
mpr_left(const struct mpr *r)
{
	return ((size_t)(r->end - r->p));
}

static int
mpr_need(struct mpr *r, size_t n, const char **err)
{
	if (mpr_left(r) < n) {
		*err = "truncated msgpack value";
		return (-1);
	}
	return (0);
}

static uint64_t
mpr_be(const uint8_t *p, int n)
{
	uint64_t	v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return (v);
}

/* Read an n-byte big-endian unsigned value. */
static int
mpr_uint(struct mpr *r, int n, uint64_t *v, const char **err)
{
	if (mpr_need(r, (size_t)n, err) != 0)
		return (-1);
	*v = mpr_be(r->p, n);
	r->p += n;
	return (0);
}

/* A string, binary or ext body of len bytes. */
static int
mpr_body(struct mpr *r, struct mpr_item *it, uint64_t len, const char **err)
{
	if (len > mpr_left(r)) {
		*err = "msgpack length runs past the end of the frame";
		return (-1);
	}
	it->s = r->p;
	it->len = (uint32_t)len;
	r->p += len;
	return (0);
}

/* A container of n elements, each at least one byte. */
static int
mpr_container(struct mpr *r, struct mpr_item *it, enum mpr_kind kind,
    uint64_t n, const char **err)
{
	uint64_t	min = kind == MPR_MAP ? n * 2 : n;

	if (min > mpr_left(r)) {
		*err = "msgpack count larger than the bytes that follow";
		return (-1);
	}
	it->kind = kind;
	it->n = (uint32_t)n;
	return (0);
}

int
mpr_next(struct mpr *r, struct mpr_item *it, const char **err)
{
	uint8_t		c;
	uint64_t	v;

	memset(it, 0, sizeof(*it));
	if (mpr_need(r, 1, err) != 0)
		return (-1);
	c = *r->p++;

	if (c <= 0x7f) {
		it->kind = MPR_UINT;
		it->u = c;
		return (0);
	}
	if (c >= 0xe0) {
		it->kind = MPR_INT;
		it->i = (int8_t)c;
		return (0);
	}
	if ((c & 0xf0) == 0x80)
		return (mpr_container(r, it, MPR_MAP, c & 0x0f, err));
	if ((c & 0xf0) == 0x90)
		return (mpr_container(r, it, MPR_ARRAY, c & 0x0f, err));
	if ((c & 0xe0) == 0xa0) {
		it->kind = MPR_STR;
		return (mpr_body(r, it, c & 0x1f, err));
	}

	switch (c) {
	case 0xc0:
		it->kind = MPR_NIL;
		return (0);
	case 0xc2:
	case 0xc3:
		it->kind = MPR_BOOL;
		it->b = (c == 0xc3);
		return (0);
	case 0xc4: case 0xc5: case 0xc6:	/* bin 8/16/32 */
		it->kind = MPR_BIN;
		if (mpr_uint(r, 1 << (c - 0xc4), &v, err) != 0)
			return (-1);
		return (mpr_body(r, it, v, err));
	case 0xc7: case 0xc8: case 0xc9:	/* ext 8/16/32 */
		it->kind = MPR_EXT;
		if (mpr_uint(r, 1 << (c - 0xc7), &v, err) != 0)
			return (-1);
		if (mpr_need(r, 1, err) != 0)
			return (-1);
		r->p++;				/* ext type */
		return (mpr_body(r, it, v, err));
	case 0xca: {				/* float 32 */
		uint32_t	bits;
		float		f;

		if (mpr_uint(r, 4, &v, err) != 0)
			return (-1);
		bits = (uint32_t)v;
		memcpy(&f, &bits, sizeof(f));
		it->kind = MPR_FLOAT;
		it->f = f;
		return (0);
	}
	case 0xcb:				/* float 64 */
		if (mpr_uint(r, 8, &v, err) != 0)
			return (-1);
		memcpy(&it->f, &v, sizeof(it->f));
		it->kind = MPR_FLOAT;
		return (0);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:	/* uint 8..64 */
		it->kind = MPR_UINT;
		return (mpr_uint(r, 1 << (c - 0xcc), &it->u, err));
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {	/* int 8..64 */
		int	n = 1 << (c - 0xd0);

		if (mpr_uint(r, n, &v, err) != 0)
			return (-1);
		/* Sign-extend from n bytes. */
		if (n < 8 && (v & ((uint64_t)1 << (n * 8 - 1))))
			v |= ~(uint64_t)0 << (n * 8);
		it->i = (int64_t)v;
		if (it->i >= 0) {
			it->kind = MPR_UINT;
			it->u = (uint64_t)it->i;
		} else
			it->kind = MPR_INT;
		return (0);
	}
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:	/* fixext */
		it->kind = MPR_EXT;
		if (mpr_need(r, 1, err) != 0)
			return (-1);
		r->p++;
		return (mpr_body(r, it, 1u << (c - 0xd4), err));
	case 0xd9: case 0xda: case 0xdb:	/* str 8/16/32 */
		it->kind = MPR_STR;
		if (mpr_uint(r, 1 << (c - 0xd9), &v, err) != 0)
			return (-1);
		return (mpr_body(r, it, v, err));
	case 0xdc: case 0xdd:			/* array 16/32 */
		if (mpr_uint(r, c == 0xdc ? 2 : 4, &v, err) != 0)
			return (-1);
		return (mpr_container(r, it, MPR_ARRAY, v, err));
	case 0xde: case 0xdf:			/* map 16/32 */
		if (mpr_uint(r, c == 0xde ? 2 : 4, &v, err) != 0)
			return (-1);
		return (mpr_container(r, it, MPR_MAP, v, err));
	default:
		*err = "reserved msgpack type byte 0xc1";
		return (-1);
	}
}

int
mpr_skip(struct mpr *r, const struct mpr_item *it, int depth_left,
    const char **err)
{
	struct mpr_item	sub;
	uint64_t	count;

	if (it->kind != MPR_ARRAY && it->kind != MPR_MAP)
		return (0);
	if (depth_left <= 0) {
		*err = "msgpack nesting too deep";
		return (-1);
	}
	count = it->kind == MPR_MAP ? (uint64_t)it->n * 2 : it->n;
	for (uint64_t i = 0; i < count; i++) {
		if (mpr_next(r, &sub, err) != 0)
			return (-1);
		if (mpr_skip(r, &sub, depth_left - 1, err) != 0)
			return (-1);
	}
	return (0);
}

int
mpr_check_value(const uint8_t *buf, size_t len, int max_depth,
    const char **err)
{
	struct mpr	r;
	struct mpr_item	it;

	mpr_init(&r, buf, len);
	if (mpr_next(&r, &it, err) != 0 ||
	    mpr_skip(&r, &it, max_depth, err) != 0)
		return (-1);
	if (mpr_left(&r) != 0) {
		*err = "trailing bytes after msgpack value";
		return (-1);
	}
	return (0);
}

const char *
mpr_kind_name(enum mpr_kind k)
{
	static const char *names[] = {
		"nil", "bool", "unsigned integer", "negative integer", "float",
		"string", "binary", "array", "map", "extension"
	};

	return ((unsigned)k < sizeof(names) / sizeof(names[0]) ?
	    names[k] : "?");
}
