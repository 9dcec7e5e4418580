/*
 * mpjson.c -- msgpack values to JSON text (see mpjson.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpjson.h"
#include "mpread.h"
#include "proto.h"
#include "xmalloc.h"

static int
mpjson_value(yajl_gen g, struct mpr *r, int depth)
{
	struct mpr_item	 it;
	const char	*why;

	if (depth > PROTO_MAX_DEPTH || mpr_next(r, &it, &why) != 0)
		return (-1);
	switch (it.kind) {
	case MPR_NIL:
		yajl_gen_null(g);
		return (0);
	case MPR_BOOL:
		yajl_gen_bool(g, it.b);
		return (0);
	case MPR_UINT: {
		char	buf[32];
		int	n = snprintf(buf, sizeof(buf), "%llu",
		    (unsigned long long)it.u);

		yajl_gen_number(g, buf, (size_t)n);
		return (0);
	}
	case MPR_INT:
		yajl_gen_integer(g, it.i);
		return (0);
	case MPR_FLOAT:
		if (!isfinite(it.f))
			yajl_gen_null(g);
		else
			yajl_gen_double(g, it.f);
		return (0);
	case MPR_STR:
	case MPR_BIN:
		/* yajl validates UTF-8 only when asked; bodies are ours. */
		yajl_gen_string(g, it.s, it.len);
		return (0);
	case MPR_EXT:
		yajl_gen_null(g);
		return (0);
	case MPR_ARRAY:
		yajl_gen_array_open(g);
		for (uint32_t i = 0; i < it.n; i++)
			if (mpjson_value(g, r, depth + 1) != 0)
				return (-1);
		yajl_gen_array_close(g);
		return (0);
	case MPR_MAP:
		yajl_gen_map_open(g);
		for (uint32_t i = 0; i < it.n; i++) {
			struct mpr_item	key;

			if (mpr_next(r, &key, &why) != 0 ||
			    key.kind != MPR_STR)
				return (-1);
			yajl_gen_string(g, key.s, key.len);
			if (mpjson_value(g, r, depth + 1) != 0)
				return (-1);
		}
		yajl_gen_map_close(g);
		return (0);
	}
	return (-1);
}

int
mpjson_write(yajl_gen g, const uint8_t *buf, size_t len)
{
	struct mpr	r;

	mpr_init(&r, buf, len);
	return (mpjson_value(g, &r, 0));
}

char *
mpjson_string(const uint8_t *buf, size_t len, int pretty)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 outlen;
	char			*s = NULL;

	g = yajl_gen_alloc(NULL);
	yajl_gen_config(g, yajl_gen_beautify, pretty);
	if (mpjson_write(g, buf, len) == 0 &&
	    yajl_gen_get_buf(g, &out, &outlen) == yajl_gen_status_ok)
		s = xstrndup((const char *)out, outlen);
	yajl_gen_free(g);
	return (s);
}

const uint8_t *
mpjson_find(const uint8_t *buf, size_t len, const char *path, size_t *left)
{
	struct mpr	 r;
	struct mpr_item	 it, key;
	const char	*why, *dot;
	size_t		 seglen;
	const uint8_t	*at;

	mpr_init(&r, buf, len);
	for (;;) {
		at = r.p;
		if (*path == '\0') {
			*left = mpr_left(&r);
			return (at);
		}
		dot = strchr(path, '.');
		seglen = dot != NULL ? (size_t)(dot - path) : strlen(path);
		if (mpr_next(&r, &it, &why) != 0 || it.kind != MPR_MAP)
			return (NULL);
		for (uint32_t i = 0;; i++) {
			if (i == it.n)
				return (NULL);
			if (mpr_next(&r, &key, &why) != 0)
				return (NULL);
			if (key.kind == MPR_STR && key.len == seglen &&
			    memcmp(key.s, path, seglen) == 0)
				break;
			{
				struct mpr_item	val;

				if (mpr_next(&r, &val, &why) != 0 ||
				    mpr_skip(&r, &val, PROTO_MAX_DEPTH,
				    &why) != 0)
					return (NULL);
			}
		}
		path += seglen;
		if (*path == '.')
			path++;
	}
}
