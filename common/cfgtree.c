/*
 * cfgtree.c -- the configuration document tree: checks the raw bytes,
 * picks the syntax by content, and builds nodes for the YAML and JSON
 * front ends (cfgtree_yaml.c, cfgtree_json.c) under fixed caps.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtree.h"
#include "cfgtree_int.h"
#include "xmalloc.h"

/* The length of the UTF-8 sequence at p (of avail bytes), or 0. */
static size_t
cfgtree_utf8(const unsigned char *p, size_t avail)
{
	unsigned	cp, min;
	size_t		n, k;

	if (p[0] < 0x80)
		return (1);
	if ((p[0] & 0xe0) == 0xc0) {
		n = 1;
		cp = p[0] & 0x1f;
		min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 2;
		cp = p[0] & 0x0f;
		min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 3;
		cp = p[0] & 0x07;
		min = 0x10000;
	} else
		return (0);
	if (avail <= n)
		return (0);
	for (k = 1; k <= n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return (0);
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return (0);
	return (n + 1);
}

/* Is s valid UTF-8 without NUL bytes? */
static bool
cfgtree_valid_text(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;

	while (i < len) {
		if (p[i] == '\0' || (n = cfgtree_utf8(p + i, len - i)) == 0)
			return (false);
		i += n;
	}
	return (true);
}

/* Find the first NUL byte or invalid UTF-8 sequence; 0 when clean. */
static int
cfgtree_check_bytes(const char *buf, size_t len, struct cfgtree_error *err)
{
	const unsigned char	*p = (const unsigned char *)buf;
	unsigned		 line = 1, col = 1;
	size_t			 i = 0, n;

	while (i < len) {
		if (p[i] == '\0') {
			err->line = line;
			err->col = col;
			snprintf(err->msg, sizeof(err->msg),
			    "the file contains a NUL byte (binary data?)");
			return (-1);
		}
		if ((n = cfgtree_utf8(p + i, len - i)) == 0) {
			err->line = line;
			err->col = col;
			snprintf(err->msg, sizeof(err->msg), "invalid UTF-8 "
			    "(byte 0x%02x); the file must be UTF-8 text", p[i]);
			return (-1);
		}
		if (p[i] == '\n') {
			line++;
			col = 1;
		} else
			col++;
		i += n;
	}
	return (0);
}

struct cfgnode *
cfgtree_parse(const char *buf, size_t len, enum cfgtree_syntax *syntax,
    struct cfgtree_error *err)
{
	size_t	i = 0;

	memset(err, 0, sizeof(*err));
	if (len > CONFIG_MAX_FILE_BYTES) {
		snprintf(err->msg, sizeof(err->msg),
		    "file is too large (%zu bytes; the limit is %u)", len,
		    CONFIG_MAX_FILE_BYTES);
		return (NULL);
	}
	if (cfgtree_check_bytes(buf, len, err) != 0)
		return (NULL);
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && strchr(" \t\r\n", buf[i]) != NULL)
		i++;
	if (i == len) {
		snprintf(err->msg, sizeof(err->msg),
		    "the file is empty: it holds no configuration");
		return (NULL);
	}
	if (buf[i] == '{') {
		if (syntax != NULL)
			*syntax = CFGTREE_JSON;
		return (cfgtree_parse_json(buf, len, err));
	}
	if (syntax != NULL)
		*syntax = CFGTREE_YAML;
	return (cfgtree_parse_yaml(buf, len, err));
}

void
cfgtree_free(struct cfgnode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nitems; i++)
		cfgtree_free(n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
}

struct cfgnode *
cfgtree_key(const struct cfgnode *map, size_t i)
{
	return (map->items[2 * i]);
}

struct cfgnode *
cfgtree_value(const struct cfgnode *map, size_t i)
{
	return (map->items[2 * i + 1]);
}

const char *
cfgtree_describe(const struct cfgnode *n)
{
	switch (n->kind) {
	case CFGNODE_MAP:
		return ("a mapping");
	case CFGNODE_SEQ:
		return ("a sequence");
	case CFGNODE_SCALAR:
		break;
	}
	switch (n->tag) {
	case CFGTAG_STR:
		return ("a string");
	case CFGTAG_INT:
		return ("an integer");
	case CFGTAG_FLOAT:
		return ("a number");
	case CFGTAG_BOOL:
		return ("a boolean");
	case CFGTAG_NULL:
		return ("null");
	}
	return ("a value");
}

struct cfgtree_dup {
	const struct cfgnode	*key;
	size_t			 i;
};

static int
cfgtree_dup_cmp(const void *a, const void *b)
{
	const struct cfgtree_dup	*x = a, *y = b;
	size_t				 n;
	int				 c;

	n = x->key->len < y->key->len ? x->key->len : y->key->len;
	if ((c = memcmp(x->key->str, y->key->str, n)) != 0)
		return (c);
	if (x->key->len != y->key->len)
		return (x->key->len < y->key->len ? -1 : 1);
	return (x->i < y->i ? -1 : x->i > y->i);
}

void
cfgtree_map_dups(const struct cfgnode *map,
    void (*fn)(const struct cfgnode *, size_t, size_t, void *), void *arg)
{
	struct cfgtree_dup	*v;
	size_t			 i, first;

	if (map->kind != CFGNODE_MAP || map->n < 2)
		return;
	v = xreallocarray(NULL, map->n, sizeof(*v));
	for (i = 0; i < map->n; i++) {
		v[i].key = cfgtree_key(map, i);
		v[i].i = i;
	}
	qsort(v, map->n, sizeof(*v), cfgtree_dup_cmp);
	for (i = 1, first = 0; i < map->n; i++) {
		if (v[i].key->len == v[first].key->len &&
		    memcmp(v[i].key->str, v[first].key->str,
		    v[i].key->len) == 0)
			fn(map, v[first].i, v[i].i, arg);
		else
			first = i;
	}
	free(v);
}

void
cfgtree_builder_init(struct cfgtree_builder *b, struct cfgtree_error *err)
{
	memset(b, 0, sizeof(*b));
	b->err = err;
}

int
cfgtree_builder_fail(struct cfgtree_builder *b, unsigned line, unsigned col,
    const char *fmt, ...)
{
	va_list	ap;

	if (b->failed)
		return (-1);
	b->failed = true;
	b->err->line = line;
	b->err->col = col;
	va_start(ap, fmt);
	vsnprintf(b->err->msg, sizeof(b->err->msg), fmt, ap);
	va_end(ap);
	return (-1);
}

struct cfgnode *
cfgtree_builder_node(struct cfgtree_builder *b, enum cfgnode_kind kind,
    unsigned line, unsigned col)
{
	struct cfgnode	*n;

	if (++b->nodes > CONFIG_MAX_NODES) {
		cfgtree_builder_fail(b, line, col,
		    "too many values in the file (the limit is %u)",
		    CONFIG_MAX_NODES);
		return (NULL);
	}
	n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->tag = CFGTAG_STR;
	n->line = line;
	n->col = col;
	return (n);
}

int
cfgtree_builder_text(struct cfgtree_builder *b, struct cfgnode *n,
    const char *s, size_t len)
{
	if (len > CONFIG_MAX_SCALAR)
		return (cfgtree_builder_fail(b, n->line, n->col,
		    "value is too long (%zu bytes; the limit is %u)", len,
		    CONFIG_MAX_SCALAR));
	if (memchr(s, '\0', len) != NULL)
		return (cfgtree_builder_fail(b, n->line, n->col,
		    "value contains a NUL character"));
	/* JSON escapes can spell what the file's bytes could not. */
	if (!cfgtree_valid_text(s, len))
		return (cfgtree_builder_fail(b, n->line, n->col,
		    "value is not valid UTF-8 (a lone \\u surrogate?)"));
	n->str = xmalloc(len + 1);
	memcpy(n->str, s, len);
	n->str[len] = '\0';
	n->len = len;
	return (0);
}

int
cfgtree_builder_add(struct cfgtree_builder *b, struct cfgnode *n)
{
	struct cfgnode	*parent;

	if (b->depth == 0) {
		if (b->root != NULL) {
			cfgtree_builder_fail(b, n->line, n->col,
			    "more than one document in the file");
			cfgtree_free(n);
			return (-1);
		}
		b->root = n;
	} else {
		parent = b->stack[b->depth - 1];
		if (parent->kind == CFGNODE_MAP && parent->nitems % 2 == 0 &&
		    n->kind != CFGNODE_SCALAR) {
			cfgtree_builder_fail(b, n->line, n->col,
			    "a mapping key must be a plain value, not %s",
			    cfgtree_describe(n));
			cfgtree_free(n);
			return (-1);
		}
		if (parent->nitems == parent->cap) {
			parent->cap = parent->cap ? parent->cap * 2 : 4;
			parent->items = xreallocarray(parent->items,
			    parent->cap, sizeof(*parent->items));
		}
		parent->items[parent->nitems++] = n;
		parent->n = parent->kind == CFGNODE_MAP ?
		    parent->nitems / 2 : parent->nitems;
	}
	if (n->kind == CFGNODE_SCALAR)
		return (0);
	if (b->depth == CONFIG_MAX_DEPTH)
		return (cfgtree_builder_fail(b, n->line, n->col,
		    "nesting is deeper than %d levels", CONFIG_MAX_DEPTH));
	b->stack[b->depth++] = n;
	return (0);
}

int
cfgtree_builder_close(struct cfgtree_builder *b)
{
	if (b->depth == 0)
		return (-1);
	b->depth--;
	return (0);
}

struct cfgnode *
cfgtree_builder_finish(struct cfgtree_builder *b)
{
	struct cfgnode	*root = b->root;

	b->root = NULL;
	if (b->failed || b->depth != 0) {
		if (!b->failed)
			cfgtree_builder_fail(b, 0, 0, "unexpected end of file");
		cfgtree_free(root);
		return (NULL);
	}
	if (root == NULL)
		cfgtree_builder_fail(b, 0, 0,
		    "the file is empty: it holds no configuration");
	return (root);
}

/* [-+]?[0-9]+ */
bool
cfgtree_is_integer(const char *s, size_t len)
{
	size_t	i = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i == len)
		return (false);
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return (false);
	return (true);
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool
cfgtree_is_float(const char *s, size_t len)
{
	size_t	i = 0, digits = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return (false);
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		if (i == len)
			return (false);
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	}
	return (i == len);
}

void
cfgtree_resolve_plain(struct cfgnode *n)
{
	static const char *nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *bools[] = {
		"true", "True", "TRUE", "false", "False", "FALSE"
	};
	static const char *floats[] = {
		".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf",
		"+.Inf", "+.INF", ".nan", ".NaN", ".NAN"
	};
	size_t	i;

	n->tag = CFGTAG_STR;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->str, nulls[i]) == 0)
			n->tag = CFGTAG_NULL;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(n->str, bools[i]) == 0)
			n->tag = CFGTAG_BOOL;
	for (i = 0; i < sizeof(floats) / sizeof(floats[0]); i++)
		if (strcmp(n->str, floats[i]) == 0)
			n->tag = CFGTAG_FLOAT;
	if (cfgtree_is_integer(n->str, n->len))
		n->tag = CFGTAG_INT;
	else if (cfgtree_is_float(n->str, n->len))
		n->tag = CFGTAG_FLOAT;
}
