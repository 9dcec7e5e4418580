/*
 * codec.c -- encoder and strict decoder for every message of proto.h,
 * driven by the field tables of catalogue.c. Encoding uses msgpack-c's
 * packer; decoding uses the bounded reader of mpread.c (see there for why).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "catalogue.h"
#include "mpread.h"
#include "proto.h"
#include "xmalloc.h"

/* ---- encoding ---------------------------------------------------------- */

bool
proto_body_is_map(const uint8_t *b, size_t len)
{
	struct mpr	 r;
	struct mpr_item	 it;
	const char	*why;

	mpr_init(&r, b, len);
	if (mpr_next(&r, &it, &why) != 0 || it.kind != MPR_MAP)
		return (false);
	return (mpr_check_value(b, len, PROTO_MAX_DEPTH, &why) == 0);
}


static bool
encode_present(const struct field *f, const void *base)
{
	switch (f->kind) {
	case FK_STR:
		return (*CAT(base, f->off, char *) != NULL);
	case FK_EVICTION:
		return (f->off2 == NO_OFF || *CAT(base, f->off2, bool));
	case FK_EVENT_ID:
		return (*CAT(base, f->off2, bool));
	case FK_STRLIST:
		return (CAT(base, f->off, struct proto_strlist)->n > 0);
	case FK_BIN:
	case FK_BODY:
		return (*CAT(base, f->off, uint8_t *) != NULL);
	case FK_ARRAY:
		return (*CAT(base, f->off2, size_t) > 0 ||
		    (f->flags & FF_REQUIRED));
	case FK_BOOL:
		return (*CAT(base, f->off, bool));
	default:
		return (true);
	}
}

static int	encode_fields(msgpack_packer *, const struct fieldset *,
		    const void *, const uint32_t *);

static int
encode_str(msgpack_packer *pk, const char *s, uint64_t max)
{
	size_t	len = strlen(s);

	if (len > max)
		return (-1);
	msgpack_pack_str_with_body(pk, s, len);
	return (0);
}

static int
encode_field(msgpack_packer *pk, const struct field *f, const void *base)
{
	char	buf[64];

	msgpack_pack_str_with_body(pk, f->key, strlen(f->key));
	switch (f->kind) {
	case FK_STR:
		return (encode_str(pk, *CAT(base, f->off, char *), f->max));
	case FK_U16:
		msgpack_pack_uint16(pk, *CAT(base, f->off, uint16_t));
		return (0);
	case FK_U32:
		if (*CAT(base, f->off, uint32_t) > f->max)
			return (-1);
		msgpack_pack_uint32(pk, *CAT(base, f->off, uint32_t));
		return (0);
	case FK_U64:
		msgpack_pack_uint64(pk, *CAT(base, f->off, uint64_t));
		return (0);
	case FK_BOOL:
		if (*CAT(base, f->off, bool))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		return (0);
	case FK_ENUM: {
		int	v = *CAT(base, f->off, int);

		if (v < 0 || (uint64_t)v >= f->max)
			return (-1);
		msgpack_pack_int(pk, v);
		return (0);
	}
	case FK_EVICTION:
		eviction_format(CAT(base, f->off, struct eviction), buf,
		    sizeof(buf));
		msgpack_pack_str_with_body(pk, buf, strlen(buf));
		return (0);
	case FK_STRLIST: {
		const struct proto_strlist *l = CAT(base, f->off,
		    struct proto_strlist);

		if (l->n > f->max)
			return (-1);
		msgpack_pack_array(pk, l->n);
		for (size_t i = 0; i < l->n; i++)
			if (encode_str(pk, l->v[i], f->item_max) != 0)
				return (-1);
		return (0);
	}
	case FK_BIN: {
		size_t	len = *CAT(base, f->off2, size_t);

		if (len > f->max)
			return (-1);
		msgpack_pack_bin_with_body(pk, *CAT(base, f->off, uint8_t *),
		    len);
		return (0);
	}
	case FK_BODY: {
		const uint8_t	*b = *CAT(base, f->off, uint8_t *);
		size_t		 len = *CAT(base, f->off2, size_t);

		/* The body is written as it is: it must be one msgpack map. */
		if (b == NULL || len > f->max || !proto_body_is_map(b, len))
			return (-1);
		return (msgpack_pack_v4raw_body(pk, b, len) == 0 ? 0 : -1);
	}
	case FK_EVENT_ID: {
		const struct proto_event_id *id = CAT(base, f->off,
		    struct proto_event_id);

		if (id->boot == 0) {
			msgpack_pack_uint64(pk, id->seq);
			return (0);
		}
		proto_event_id_format(id, buf, sizeof(buf));
		msgpack_pack_str_with_body(pk, buf, strlen(buf));
		return (0);
	}
	case FK_ARRAY: {
		const char	*arr = *CAT(base, f->off, char *);
		size_t		 n = *CAT(base, f->off2, size_t);

		if (n > f->max)
			return (-1);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			if (encode_fields(pk, f->sub, arr + i * f->elem_size,
			    NULL) != 0)
				return (-1);
		return (0);
	}
	}
	return (-1);
}

/* One map: "t"/"id" (top level only) then the present fields. */
static int
encode_fields(msgpack_packer *pk, const struct fieldset *fs, const void *base,
    const uint32_t *top)
{
	size_t	n = 0;

	for (size_t i = 0; i < fs->n; i++)
		if (encode_present(&fs->f[i], base))
			n++;
	if (top != NULL)
		n += top[1] != 0 ? 2 : 1;
	msgpack_pack_map(pk, n);
	if (top != NULL) {
		msgpack_pack_str_with_body(pk, "t", 1);
		msgpack_pack_uint32(pk, top[0]);
		if (top[1] != 0) {
			msgpack_pack_str_with_body(pk, "id", 2);
			msgpack_pack_uint32(pk, top[1]);
		}
	}
	for (size_t i = 0; i < fs->n; i++)
		if (encode_present(&fs->f[i], base) &&
		    encode_field(pk, &fs->f[i], base) != 0)
			return (-1);
	return (0);
}

int
proto_encode(const struct proto_msg *m, uint8_t **frame, size_t *len)
{
	const struct msgdef	*d = proto_msgdef(m->type);
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	uint32_t		 top[2] = { (uint32_t)m->type, m->id };
	size_t			 plen;

	*frame = NULL;
	*len = 0;
	if (d == NULL || ((d->flags & ID_REQUIRED) && m->id == 0))
		return (-1);
	msgpack_sbuffer_init(&sb);
	msgpack_sbuffer_write(&sb, "\0\0\0\0", 4);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (encode_fields(&pk, &d->fields, &m->u, top) != 0 ||
	    sb.size - 4 > PROTO_MAX_FRAME) {
		msgpack_sbuffer_destroy(&sb);
		return (-1);
	}
	plen = sb.size - 4;
	sb.data[0] = (char)(plen >> 24);
	sb.data[1] = (char)(plen >> 16);
	sb.data[2] = (char)(plen >> 8);
	sb.data[3] = (char)plen;
	*len = sb.size;
	*frame = (uint8_t *)msgpack_sbuffer_release(&sb);
	return (0);
}

/* ---- decoding ---------------------------------------------------------- */

struct decoder {
	struct mpr	 r;
	char		*err;
	size_t		 errlen;
};

static int __attribute__((format(printf, 2, 3)))
dec_fail(struct decoder *d, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(d->err, d->errlen, fmt, ap);
	va_end(ap);
	return (-1);
}

static int
dec_next(struct decoder *d, struct mpr_item *it)
{
	const char	*why;

	if (mpr_next(&d->r, it, &why) != 0)
		return (dec_fail(d, "%s", why));
	return (0);
}

static int
dec_string(struct decoder *d, const struct mpr_item *it, const char *key,
    uint64_t max, char **out)
{
	if (it->kind != MPR_STR)
		return (dec_fail(d, "key '%s': expected a string, got %s", key,
		    mpr_kind_name(it->kind)));
	if (it->len > max)
		return (dec_fail(d, "key '%s': string of %u bytes is over the "
		    "limit of %llu", key, it->len, (unsigned long long)max));
	if (memchr(it->s, '\0', it->len) != NULL)
		return (dec_fail(d, "key '%s': string contains a NUL byte",
		    key));
	*out = xstrndup((const char *)it->s, it->len);
	return (0);
}

static int
dec_uint(struct decoder *d, const struct mpr_item *it, const char *key,
    uint64_t max, uint64_t *out)
{
	if (it->kind != MPR_UINT)
		return (dec_fail(d, "key '%s': expected an unsigned integer, "
		    "got %s", key, mpr_kind_name(it->kind)));
	if (it->u > max)
		return (dec_fail(d, "key '%s': %llu is out of range (max %llu)",
		    key, (unsigned long long)it->u, (unsigned long long)max));
	*out = it->u;
	return (0);
}

static int	dec_map(struct decoder *, const struct fieldset *, void *,
		    const struct mpr_item *, int);

static int
dec_field(struct decoder *d, const struct field *f, void *base,
    const struct mpr_item *it, const uint8_t *start, int depth)
{
	uint64_t	v;

	if (it->kind == MPR_NIL && !(f->flags & FF_REQUIRED))
		return (0);	/* nil means absent */

	switch (f->kind) {
	case FK_STR:
		return (dec_string(d, it, f->key, f->max,
		    AT(base, f->off, char *)));
	case FK_U16:
		if (dec_uint(d, it, f->key, f->max > UINT16_MAX ? UINT16_MAX :
		    f->max, &v) != 0)
			return (-1);
		*AT(base, f->off, uint16_t) = (uint16_t)v;
		return (0);
	case FK_U32:
		if (dec_uint(d, it, f->key, f->max, &v) != 0)
			return (-1);
		*AT(base, f->off, uint32_t) = (uint32_t)v;
		return (0);
	case FK_U64:
		if (dec_uint(d, it, f->key, f->max, &v) != 0)
			return (-1);
		*AT(base, f->off, uint64_t) = v;
		return (0);
	case FK_ENUM:
		if (dec_uint(d, it, f->key, f->max - 1, &v) != 0)
			return (-1);
		*AT(base, f->off, int) = (int)v;
		return (0);
	case FK_BOOL:
		if (it->kind != MPR_BOOL)
			return (dec_fail(d, "key '%s': expected a boolean, got "
			    "%s", f->key, mpr_kind_name(it->kind)));
		*AT(base, f->off, bool) = it->b;
		return (0);
	case FK_EVICTION: {
		char	buf[64];

		if (it->kind != MPR_STR || it->len >= sizeof(buf))
			return (dec_fail(d, "key '%s': expected a "
			    "\"weights+process\" string", f->key));
		memcpy(buf, it->s, it->len);
		buf[it->len] = '\0';
		if (memchr(it->s, '\0', it->len) != NULL ||
		    eviction_parse(buf, AT(base, f->off, struct eviction)) != 0)
			return (dec_fail(d, "key '%s': unknown eviction '%s'",
			    f->key, buf));
		if (f->off2 != NO_OFF)
			*AT(base, f->off2, bool) = true;
		return (0);
	}
	case FK_STRLIST: {
		struct proto_strlist	*l = AT(base, f->off,
		    struct proto_strlist);
		struct mpr_item		 sub;

		if (it->kind != MPR_ARRAY)
			return (dec_fail(d, "key '%s': expected an array, got "
			    "%s", f->key, mpr_kind_name(it->kind)));
		if (it->n > f->max)
			return (dec_fail(d, "key '%s': %u elements, the limit "
			    "is %llu", f->key, it->n,
			    (unsigned long long)f->max));
		l->v = xcalloc(it->n + 1, sizeof(char *));
		for (uint32_t i = 0; i < it->n; i++) {
			if (dec_next(d, &sub) != 0 || dec_string(d, &sub,
			    f->key, f->item_max, &l->v[i]) != 0)
				return (-1);
			l->n++;
		}
		return (0);
	}
	case FK_BIN:
		if (it->kind != MPR_BIN && it->kind != MPR_STR)
			return (dec_fail(d, "key '%s': expected binary data, "
			    "got %s", f->key, mpr_kind_name(it->kind)));
		if (it->len > f->max)
			return (dec_fail(d, "key '%s': %u bytes, the limit is "
			    "%llu", f->key, it->len, (unsigned long long)f->max));
		*AT(base, f->off, uint8_t *) = xmalloc(it->len);
		memcpy(*AT(base, f->off, uint8_t *), it->s, it->len);
		*AT(base, f->off2, size_t) = it->len;
		return (0);
	case FK_BODY: {
		const char	*why;
		size_t		 len;

		if (it->kind != MPR_MAP)
			return (dec_fail(d, "key '%s': expected a map, got %s",
			    f->key, mpr_kind_name(it->kind)));
		if (mpr_skip(&d->r, it, PROTO_MAX_DEPTH, &why) != 0)
			return (dec_fail(d, "key '%s': %s", f->key, why));
		len = (size_t)(d->r.p - start);
		if (len > f->max)
			return (dec_fail(d, "key '%s': %zu bytes, the limit is "
			    "%llu", f->key, len, (unsigned long long)f->max));
		*AT(base, f->off, uint8_t *) = xmalloc(len);
		memcpy(*AT(base, f->off, uint8_t *), start, len);
		*AT(base, f->off2, size_t) = len;
		return (0);
	}
	case FK_EVENT_ID: {
		struct proto_event_id	*id = AT(base, f->off,
		    struct proto_event_id);
		char			 buf[48];

		if (it->kind == MPR_UINT) {
			id->boot = 0;
			id->seq = it->u;
		} else if (it->kind == MPR_STR && it->len < sizeof(buf)) {
			memcpy(buf, it->s, it->len);
			buf[it->len] = '\0';
			if (memchr(it->s, '\0', it->len) != NULL ||
			    proto_event_id_parse(buf, id) != 0)
				return (dec_fail(d, "key '%s': expected an event "
				    "id, BOOT-SEQ or SEQ", f->key));
		} else
			return (dec_fail(d, "key '%s': expected an event id, "
			    "got %s", f->key, mpr_kind_name(it->kind)));
		*AT(base, f->off2, bool) = true;
		return (0);
	}
	case FK_ARRAY: {
		struct mpr_item	 sub;
		char		*arr;

		if (it->kind != MPR_ARRAY)
			return (dec_fail(d, "key '%s': expected an array, got "
			    "%s", f->key, mpr_kind_name(it->kind)));
		if (it->n > f->max)
			return (dec_fail(d, "key '%s': %u elements, the limit "
			    "is %llu", f->key, it->n,
			    (unsigned long long)f->max));
		arr = xcalloc(it->n == 0 ? 1 : it->n, f->elem_size);
		*AT(base, f->off, char *) = arr;
		for (uint32_t i = 0; i < it->n; i++) {
			if (dec_next(d, &sub) != 0)
				return (-1);
			*AT(base, f->off2, size_t) = i + 1;
			if (dec_map(d, f->sub, arr + i * f->elem_size, &sub,
			    depth + 1) != 0)
				return (-1);
		}
		return (0);
	}
	}
	return (dec_fail(d, "key '%s': unsupported field", f->key));
}

/*
 * Decode a map's pairs into base by the field set. Keys "t" and "id" at the
 * top level have been read already and are skipped here.
 */
static int
dec_map(struct decoder *d, const struct fieldset *fs, void *base,
    const struct mpr_item *map, int depth)
{
	struct mpr_item	 key, val;
	uint64_t	 seen = 0;
	const uint8_t	*start;
	const char	*why;
	char		 name[40];

	if (map->kind != MPR_MAP)
		return (dec_fail(d, "expected a map, got %s",
		    mpr_kind_name(map->kind)));
	if (depth > 4)
		return (dec_fail(d, "maps nested too deep"));
	for (uint32_t i = 0; i < map->n; i++) {
		const struct field	*f = NULL;
		size_t			 fi;

		if (dec_next(d, &key) != 0)
			return (-1);
		if (key.kind != MPR_STR || key.len >= sizeof(name) ||
		    memchr(key.s, '\0', key.len) != NULL)
			return (dec_fail(d, "map keys must be short strings"));
		memcpy(name, key.s, key.len);
		name[key.len] = '\0';
		start = d->r.p;
		if (dec_next(d, &val) != 0)
			return (-1);
		for (fi = 0; fi < fs->n; fi++) {
			if (strcmp(fs->f[fi].key, name) == 0) {
				f = &fs->f[fi];
				break;
			}
		}
		if (f == NULL) {
			/* Unknown keys (and "t"/"id") are skipped. */
			if (mpr_skip(&d->r, &val, PROTO_MAX_DEPTH, &why) != 0)
				return (dec_fail(d, "key '%s': %s", name, why));
			continue;
		}
		if (seen & ((uint64_t)1 << fi))
			return (dec_fail(d, "key '%s' appears twice", name));
		seen |= (uint64_t)1 << fi;
		if (dec_field(d, f, base, &val, start, depth) != 0)
			return (-1);
		if (val.kind == MPR_NIL)
			seen &= ~((uint64_t)1 << fi);
	}
	for (size_t fi = 0; fi < fs->n; fi++)
		if ((fs->f[fi].flags & FF_REQUIRED) &&
		    !(seen & ((uint64_t)1 << fi)))
			return (dec_fail(d, "missing key '%s'", fs->f[fi].key));
	return (0);
}

/* First pass over the top map: find "t" and "id". */
static int
dec_header(struct decoder *d, const struct mpr_item *map, uint64_t *type,
    uint64_t *id)
{
	struct mpr_item	 key, val;
	const char	*why;
	bool		 have_t = false, have_id = false;

	for (uint32_t i = 0; i < map->n; i++) {
		if (dec_next(d, &key) != 0 || dec_next(d, &val) != 0)
			return (-1);
		if (key.kind == MPR_STR && key.len == 1 && key.s[0] == 't') {
			if (have_t)
				return (dec_fail(d, "key 't' appears twice"));
			if (val.kind != MPR_UINT)
				return (dec_fail(d, "key 't': expected an "
				    "unsigned integer, got %s",
				    mpr_kind_name(val.kind)));
			*type = val.u;
			have_t = true;
		} else if (key.kind == MPR_STR && key.len == 2 &&
		    memcmp(key.s, "id", 2) == 0) {
			if (have_id)
				return (dec_fail(d, "key 'id' appears twice"));
			if (dec_uint(d, &val, "id", UINT32_MAX, id) != 0)
				return (-1);
			have_id = true;
		}
		if (mpr_skip(&d->r, &val, PROTO_MAX_DEPTH, &why) != 0)
			return (dec_fail(d, "%s", why));
	}
	if (!have_t)
		return (dec_fail(d, "missing message type 't'"));
	return (0);
}

static int
dec_call_check(struct decoder *d, const struct msgdef *def,
    const struct proto_call *c)
{
	int	want = def->call_fields;

	if ((want & PROTO_F_MODEL) && c->model == NULL)
		return (dec_fail(d, "%s: missing key 'model'", def->name));
	if ((want & PROTO_F_MODE) && c->mode == NULL)
		return (dec_fail(d, "%s: missing key 'mode'", def->name));
	if ((want & PROTO_F_EVICTION) && !c->has_eviction)
		return (dec_fail(d, "%s: missing key 'eviction'", def->name));
	for (size_t i = 0; i < c->policies.n; i++) {
		struct eviction	e;

		if (eviction_parse(c->policies.v[i], &e) != 0)
			return (dec_fail(d, "%s: unknown eviction '%s' in "
			    "policies", def->name, c->policies.v[i]));
	}
	return (0);
}

int
proto_decode(const uint8_t *buf, size_t len, struct proto_msg *msg,
    char *err, size_t errlen)
{
	struct decoder		 d;
	struct mpr_item		 map;
	const struct msgdef	*def;
	uint64_t		 type = 0, id = 0;

	memset(msg, 0, sizeof(*msg));
	d.err = err;
	d.errlen = errlen;
	if (len > PROTO_MAX_FRAME)
		return (dec_fail(&d, "frame of %zu bytes is over the limit",
		    len));
	mpr_init(&d.r, buf, len);
	if (dec_next(&d, &map) != 0)
		return (-1);
	if (map.kind != MPR_MAP)
		return (dec_fail(&d, "a message must be a map, got %s",
		    mpr_kind_name(map.kind)));
	if (dec_header(&d, &map, &type, &id) != 0)
		return (-1);
	if (mpr_left(&d.r) != 0)
		return (dec_fail(&d, "trailing bytes after the message"));
	if ((def = proto_msgdef(type)) == NULL)
		return (dec_fail(&d, "unknown message type %llu",
		    (unsigned long long)type));
	if ((def->flags & ID_REQUIRED) && id == 0)
		return (dec_fail(&d, "%s: missing or zero 'id'", def->name));

	msg->type = (enum proto_type)type;
	msg->id = (uint32_t)id;
	mpr_init(&d.r, buf, len);
	if (dec_next(&d, &map) != 0 ||
	    dec_map(&d, &def->fields, &msg->u, &map, 0) != 0 ||
	    (def->call_fields >= 0 &&
	    dec_call_check(&d, def, &msg->u.call) != 0)) {
		proto_msg_free(msg);
		msg->type = (enum proto_type)type;
		msg->id = (uint32_t)id;
		return (-1);
	}
	return (0);
}

/* ---- freeing ----------------------------------------------------------- */

static void
free_fields(const struct fieldset *fs, void *base)
{
	for (size_t i = 0; i < fs->n; i++) {
		const struct field	*f = &fs->f[i];

		switch (f->kind) {
		case FK_STR:
		case FK_BIN:
		case FK_BODY:
			free(*AT(base, f->off, void *));
			*AT(base, f->off, void *) = NULL;
			break;
		case FK_STRLIST: {
			struct proto_strlist *l = AT(base, f->off,
			    struct proto_strlist);

			for (size_t j = 0; j < l->n; j++)
				free(l->v[j]);
			free(l->v);
			l->v = NULL;
			l->n = 0;
			break;
		}
		case FK_ARRAY: {
			char	*arr = *AT(base, f->off, char *);
			size_t	 n = *AT(base, f->off2, size_t);

			for (size_t j = 0; j < n; j++)
				free_fields(f->sub, arr + j * f->elem_size);
			free(arr);
			*AT(base, f->off, char *) = NULL;
			*AT(base, f->off2, size_t) = 0;
			break;
		}
		default:
			break;
		}
	}
}

void
proto_msg_free(struct proto_msg *msg)
{
	const struct msgdef	*def = proto_msgdef(msg->type);

	if (def != NULL)
		free_fields(&def->fields, &msg->u);
	memset(msg, 0, sizeof(*msg));
}

/* ---- event ids --------------------------------------------------------- */

/* Digits only, at least one, fitting 64 bits; the end in *end. */
static int
proto_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t	v = 0;

	if (*s < '0' || *s > '9')
		return (-1);
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return (-1);
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	*end = s;
	return (0);
}

int
proto_event_id_parse(const char *s, struct proto_event_id *id)
{
	const char	*p;
	uint64_t	 a, b;

	if (proto_u64(s, &a, &p) != 0)
		return (-1);
	if (*p == '\0') {
		id->boot = 0;
		id->seq = a;
		return (0);
	}
	if (*p != '-' || proto_u64(p + 1, &b, &p) != 0 || *p != '\0' ||
	    a == 0)
		return (-1);
	id->boot = a;
	id->seq = b;
	return (0);
}

void
proto_event_id_format(const struct proto_event_id *id, char *buf, size_t len)
{
	if (id->boot == 0)
		snprintf(buf, len, "%llu", (unsigned long long)id->seq);
	else
		snprintf(buf, len, "%llu-%llu", (unsigned long long)id->boot,
		    (unsigned long long)id->seq);
}

/* ---- framing ----------------------------------------------------------- */

int
proto_frame_length(const uint8_t *buf, size_t len, uint32_t *plen)
{
	uint32_t	n;

	if (len < 4)
		return (0);
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (n == 0 || n > PROTO_MAX_FRAME)
		return (-1);
	*plen = n;
	return (1);
}
