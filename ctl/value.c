/*
 * value.c -- a reply body (one msgpack map) as a small tree, read with the
 * bounded reader of proto/mpread.c, so llmuxctl can print tables from it.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "mpread.h"
#include "xmalloc.h"

static int
value_read(struct mpr *r, struct value *v, int depth)
{
	struct mpr_item	 it;
	const char	*why;
	size_t		 n;

	memset(v, 0, sizeof(*v));
	if (depth > PROTO_MAX_DEPTH || mpr_next(r, &it, &why) != 0)
		return (-1);
	switch (it.kind) {
	case MPR_NIL:
	case MPR_EXT:
		v->kind = VALUE_NIL;
		return (0);
	case MPR_BOOL:
		v->kind = VALUE_BOOL;
		v->b = it.b;
		return (0);
	case MPR_UINT:
		v->kind = VALUE_UINT;
		v->u = it.u;
		return (0);
	case MPR_INT:
		v->kind = VALUE_INT;
		v->i = it.i;
		return (0);
	case MPR_FLOAT:
		v->kind = VALUE_FLOAT;
		v->f = it.f;
		return (0);
	case MPR_STR:
	case MPR_BIN:
		v->kind = VALUE_STR;
		v->s = xstrndup((const char *)it.s, it.len);
		return (0);
	case MPR_ARRAY:
	case MPR_MAP:
		/* Read as a flat array; a map becomes one when complete. */
		v->kind = VALUE_ARRAY;
		n = it.kind == MPR_ARRAY ? it.n : (size_t)it.n * 2;
		v->v = xcalloc(n == 0 ? 1 : n, sizeof(*v->v));
		for (size_t i = 0; i < n; i++) {
			v->n = i + 1;
			if (value_read(r, &v->v[i], depth + 1) != 0)
				return (-1);
		}
		v->n = n;
		if (it.kind == MPR_MAP) {
			v->kind = VALUE_MAP;
			v->n = n / 2;
		}
		return (0);
	}
	return (-1);
}

static void
value_clear(struct value *v)
{
	size_t	n = v->kind == VALUE_MAP ? v->n * 2 : v->n;

	if (v->kind == VALUE_ARRAY || v->kind == VALUE_MAP) {
		for (size_t i = 0; i < n; i++)
			value_clear(&v->v[i]);
		free(v->v);
	}
	free(v->s);
}

struct value *
value_parse(const uint8_t *buf, size_t len)
{
	struct value	*v = xcalloc(1, sizeof(*v));
	struct mpr	 r;

	mpr_init(&r, buf, len);
	if (value_read(&r, v, 0) != 0) {
		value_free(v);
		return (NULL);
	}
	return (v);
}

void
value_free(struct value *v)
{
	if (v == NULL)
		return;
	value_clear(v);
	free(v);
}

const struct value *
value_get(const struct value *v, const char *key)
{
	if (v == NULL || v->kind != VALUE_MAP)
		return (NULL);
	for (size_t i = 0; i < v->n; i++) {
		const struct value	*k = &v->v[2 * i];

		if (k->kind == VALUE_STR && strcmp(k->s, key) == 0)
			return (&v->v[2 * i + 1]);
	}
	return (NULL);
}

const char *
value_key(const struct value *v, size_t i)
{
	if (v == NULL || v->kind != VALUE_MAP || i >= v->n ||
	    v->v[2 * i].kind != VALUE_STR)
		return ("?");
	return (v->v[2 * i].s);
}

const struct value *
value_at(const struct value *v, size_t i)
{
	if (v == NULL || i >= v->n)
		return (NULL);
	if (v->kind == VALUE_MAP)
		return (&v->v[2 * i + 1]);
	if (v->kind == VALUE_ARRAY)
		return (&v->v[i]);
	return (NULL);
}

const char *
value_str(const struct value *v, const char *dflt)
{
	return (v != NULL && v->kind == VALUE_STR ? v->s : dflt);
}

uint64_t
value_uint(const struct value *v, uint64_t dflt)
{
	if (v == NULL)
		return (dflt);
	if (v->kind == VALUE_UINT)
		return (v->u);
	if (v->kind == VALUE_INT && v->i >= 0)
		return ((uint64_t)v->i);
	return (dflt);
}

bool
value_bool(const struct value *v)
{
	return (v != NULL && v->kind == VALUE_BOOL && v->b);
}
