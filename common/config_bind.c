/*
 * config_bind.c -- the binder: walks the document tree (cfgtree.h) and
 * fills the structs of config.h through the key table (config_keys.c).
 * Every problem becomes a diagnostic naming the key and the place, and
 * binding goes on, so one run reports every error in the file. Defaults
 * are bound by the same code, from the table's text.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtree.h"
#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

static void	config_bind_section(struct config_loader *, enum config_section,
		    const struct cfgnode *, void *, const char *,
		    const struct cfgnode *);

/* The field of key k in the struct at base. */
static void *
config_bind_field(const struct config_key *k, void *base)
{
	return ((char *)base + k->off);
}

/* Free a NULL-terminated list of strings. */
static void
config_bind_free_list(char **list)
{
	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

static int
config_bind_strlist(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, void *base)
{
	char	***field = config_bind_field(k, base), **list, *s;
	char	 sub[CONFIG_PATH_MAX];
	size_t	 n = 0;
	int	 rc = 0;

	if (v->kind != CFGNODE_SEQ) {
		config_value_expected(ld, v, path, "a sequence of strings");
		return (-1);
	}
	if (v->n > k->max) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: too many entries (%zu; at most %" PRIu64 ")", path,
		    v->n, k->max);
		return (-1);
	}
	list = xcalloc(v->n + 1, sizeof(*list));
	for (size_t i = 0; i < v->n; i++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (config_value_text(ld, k, v->items[i], sub, &s) != 0) {
			rc = -1;
			continue;
		}
		list[n] = s;
		config_mark(ld, &list[n], v->items[i]);
		n++;
	}
	config_bind_free_list(*field);
	*field = list;
	*(size_t *)((char *)base + k->aux_off) = n;
	return (rc);
}

/* Record a repeated key: dup[] marks it, and it is an error. */
struct config_bind_dups {
	struct config_loader	*ld;
	bool			*dup;
	const char		*prefix;
};

static void
config_bind_dup(const struct cfgnode *map, size_t first, size_t again,
    void *arg)
{
	struct config_bind_dups	*d = arg;
	const struct cfgnode	*kn = cfgtree_key(map, again);
	char			 path[CONFIG_PATH_MAX];

	d->dup[again] = true;
	config_value_path(path, sizeof(path), d->prefix, kn);
	config_diag(d->ld, true, false, kn->line, kn->col,
	    "%s: duplicate key (first at line %u)", path,
	    cfgtree_key(map, first)->line);
}

/* Which keys of a mapping repeat an earlier one; freed by the caller. */
static bool *
config_bind_find_dups(struct config_loader *ld, const struct cfgnode *map,
    const char *prefix)
{
	struct config_bind_dups	d;

	d.ld = ld;
	d.dup = xcalloc(map->n + 1, sizeof(bool));
	d.prefix = prefix;
	cfgtree_map_dups(map, config_bind_dup, &d);
	return (d.dup);
}

static bool
config_bind_env_name(const char *s)
{
	if (*s == '\0' || (*s >= '0' && *s <= '9'))
		return (false);
	return (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_") == strlen(s));
}

static int
config_bind_env(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, void *base)
{
	char		***field = config_bind_field(k, base), **list, *s;
	char		 sub[CONFIG_PATH_MAX];
	const struct cfgnode *kn, *vn;
	bool		*dup;
	size_t		 n = 0;
	int		 rc = 0;

	if (v->kind != CFGNODE_MAP) {
		config_value_expected(ld, v, path,
		    "a mapping of variable names to values");
		return (-1);
	}
	if (v->n > k->max) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: too many entries (%zu; at most %" PRIu64 ")", path,
		    v->n, k->max);
		return (-1);
	}
	dup = config_bind_find_dups(ld, v, path);
	list = xcalloc(v->n + 1, sizeof(*list));
	for (size_t i = 0; i < v->n; i++) {
		kn = cfgtree_key(v, i);
		vn = cfgtree_value(v, i);
		config_value_path(sub, sizeof(sub), path, kn);
		if (dup[i]) {
			rc = -1;
			continue;
		}
		if (!config_bind_env_name(kn->str)) {
			config_diag(ld, true, false, kn->line, kn->col,
			    "%s: not a valid environment variable name", sub);
			rc = -1;
			continue;
		}
		if (config_value_text(ld, k, vn, sub, &s) != 0) {
			rc = -1;
			continue;
		}
		xasprintf(&list[n], "%s=%s", kn->str, s);
		free(s);
		config_mark(ld, &list[n], kn);
		n++;
	}
	free(dup);
	config_bind_free_list(*field);
	*field = list;
	*(size_t *)((char *)base + k->aux_off) = n;
	return (rc);
}

static int
config_bind_gpus(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, void *base)
{
	struct config_key	 idx = *k;
	const struct cfgnode	*one[1], *const *items;
	int			**field = config_bind_field(k, base), *gpus;
	char			 sub[CONFIG_PATH_MAX];
	uint64_t		 seen = 0, u;
	size_t			 n = 0, count;
	int			 rc = 0;

	if (v->kind == CFGNODE_SCALAR && v->tag == CFGTAG_INT) {
		one[0] = v;
		items = one;
		count = 1;
	} else if (v->kind == CFGNODE_SEQ) {
		items = (const struct cfgnode *const *)v->items;
		count = v->n;
	} else {
		config_value_expected(ld, v, path,
		    "a sequence of GPU indexes");
		return (-1);
	}
	if (count == 0) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: list at least one GPU, or leave the key out to use "
		    "them all", path);
		return (-1);
	}
	if (count > CONFIG_MAX_GPUS) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: too many entries (%zu; at most %d)", path, count,
		    CONFIG_MAX_GPUS);
		return (-1);
	}
	idx.min = 0;
	gpus = xcalloc(count, sizeof(*gpus));
	for (size_t i = 0; i < count; i++) {
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		if (config_value_uint(ld, &idx, items[i], sub, &u) != 0) {
			rc = -1;
			continue;
		}
		if (seen & (UINT64_C(1) << u)) {
			config_diag(ld, true, false, items[i]->line,
			    items[i]->col, "%s: GPU %" PRIu64 " is listed "
			    "twice", sub, u);
			rc = -1;
			continue;
		}
		seen |= UINT64_C(1) << u;
		gpus[n] = (int)u;
		config_mark(ld, &gpus[n], items[i]);
		n++;
	}
	free(*field);
	*field = gpus;
	*(size_t *)((char *)base + k->aux_off) = n;
	return (rc);
}

/* models: a mapping of model name to model. */
static int
config_bind_models(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path)
{
	struct config		*cfg = ld->cfg;
	struct model_config	*m;
	const struct cfgnode	*kn, *vn;
	const char		*why;
	char			 sub[CONFIG_PATH_MAX];
	bool			*dup;

	if (v->kind != CFGNODE_MAP) {
		config_value_expected(ld, v, path,
		    "a mapping of model names to models");
		return (-1);
	}
	dup = config_bind_find_dups(ld, v, path);
	cfg->models = xcalloc((v->n < k->max ? v->n : k->max) + 1,
	    sizeof(*cfg->models));
	for (size_t i = 0; i < v->n; i++) {
		kn = cfgtree_key(v, i);
		vn = cfgtree_value(v, i);
		config_value_path(sub, sizeof(sub), path, kn);
		if (dup[i])
			continue;
		if (cfg->n_models == k->max) {
			config_diag(ld, true, false, kn->line, kn->col,
			    "%s: too many models (at most %" PRIu64 ")", sub,
			    k->max);
			break;
		}
		if ((why = config_keys_check_name(kn->str)) != NULL)
			config_diag(ld, true, false, kn->line, kn->col,
			    "%s: bad model name: it %s", sub, why);
		m = &cfg->models[cfg->n_models++];
		m->name = xstrdup(kn->str);
		m->pos.line = kn->line;
		m->pos.col = kn->col;
		ld->defaults = true;
		config_bind_defaults(ld, CS_MODEL, m);
		ld->defaults = false;
		if (vn->kind != CFGNODE_MAP) {
			config_value_expected(ld, vn, sub, "a mapping");
			continue;
		}
		config_bind_section(ld, CS_MODEL, vn, m, sub, kn);
	}
	free(dup);
	return (0);
}

/* A null where k allows it: the unset value. */
static void
config_bind_null(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, void *base)
{
	void	*field = config_bind_field(k, base);

	switch (k->type) {
	case CT_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case CT_PORT:
		*(uint16_t *)field = 0;
		break;
	case CT_SECTION:
		if (v->len == 0)
			config_diag(ld, false, false, v->line, v->col,
			    "%s: an empty value leaves the section out; write "
			    "{} to use its defaults", path);
		*(bool *)((char *)base + k->set_off - 1) = false;
		return;
	default:
		break;
	}
	if (k->set_off != 0)
		*(bool *)((char *)base + k->set_off - 1) = true;
}

/* Bind value v to key k of the struct at base. */
static void
config_bind_value(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, void *base, const char *path,
    const struct cfgnode *kn)
{
	void		*field = config_bind_field(k, base);
	uint64_t	 u;
	int		 rc = -1;

	if ((k->flags & CK_NULLABLE) && v->kind == CFGNODE_SCALAR &&
	    v->tag == CFGTAG_NULL) {
		config_bind_null(ld, k, v, path, base);
		config_mark(ld, field, v);
		return;
	}
	switch (k->type) {
	case CT_STRING: {
		char *s;

		if ((rc = config_value_text(ld, k, v, path, &s)) == 0) {
			free(*(char **)field);
			*(char **)field = s;
		}
		break;
	}
	case CT_PORT:
		if ((rc = config_value_uint(ld, k, v, path, &u)) == 0)
			*(uint16_t *)field = (uint16_t)u;
		break;
	case CT_U32:
	case CT_BYTES32:
		if (k->type == CT_U32)
			rc = config_value_uint(ld, k, v, path, &u);
		else
			rc = config_value_bytes(ld, k, v, path, &u);
		if (rc == 0)
			*(uint32_t *)field = (uint32_t)u;
		break;
	case CT_BYTES:
		rc = config_value_bytes(ld, k, v, path, (uint64_t *)field);
		break;
	case CT_DOUBLE:
		rc = config_value_double(ld, k, v, path, (double *)field);
		break;
	case CT_BOOL:
		rc = config_value_bool(ld, v, path, (bool *)field);
		break;
	case CT_EVICTION:
		rc = config_value_eviction(ld, v, path, field);
		break;
	case CT_LEVEL:
		rc = config_value_level(ld, v, path, field);
		break;
	case CT_POLICY:
		rc = config_value_policy(ld, v, path, field);
		break;
	case CT_STRLIST:
		rc = config_bind_strlist(ld, k, v, path, base);
		break;
	case CT_ENV:
		rc = config_bind_env(ld, k, v, path, base);
		break;
	case CT_GPUS:
		rc = config_bind_gpus(ld, k, v, path, base);
		break;
	case CT_SECTION:
		if (v->kind != CFGNODE_MAP) {
			config_value_expected(ld, v, path, "a mapping");
			return;
		}
		if (k->set_off != 0)
			*(bool *)((char *)base + k->set_off - 1) = true;
		config_bind_section(ld, k->sub, v, field, path, kn);
		return;
	case CT_MODELS:
		rc = config_bind_models(ld, k, v, path);
		break;
	}
	if (rc != 0)
		return;
	if (k->set_off != 0)
		*(bool *)((char *)base + k->set_off - 1) = true;
	config_mark(ld, field, v);
}

/* An unknown key: a warning, with the nearest known key. */
static void
config_bind_unknown(struct config_loader *ld, enum config_section sec,
    const struct cfgnode *kn, const char *path)
{
	const char	*near;
	int		 s;

	if ((near = config_keys_suggest(sec, kn->str)) != NULL) {
		config_diag(ld, false, false, kn->line, kn->col,
		    "%s: unknown key, ignored (did you mean '%s'?)", path,
		    near);
		return;
	}
	for (s = 0; s < CS__COUNT; s++) {
		if (s != (int)sec &&
		    config_keys_find((enum config_section)s, kn->str) != NULL) {
			config_diag(ld, false, false, kn->line, kn->col,
			    "%s: unknown key here, ignored (it is a key of %s)",
			    path, config_keys_section_name(
			    (enum config_section)s));
			return;
		}
	}
	config_diag(ld, false, false, kn->line, kn->col,
	    "%s: unknown key, ignored", path);
}

/*
 * Bind a mapping to the struct of section sec at base. where is the key
 * that holds the mapping (NULL at the top), for missing keys.
 */
static void
config_bind_section(struct config_loader *ld, enum config_section sec,
    const struct cfgnode *map, void *base, const char *prefix,
    const struct cfgnode *where)
{
	const struct cfgnode	**seen, *kn, *vn;
	const struct config_key	 *k, *o;
	char			  path[CONFIG_PATH_MAX];
	bool			 *dup;
	size_t			  i, j;

	if (where == NULL)
		where = map;
	seen = xcalloc(config_nkeys, sizeof(*seen));
	dup = config_bind_find_dups(ld, map, prefix);
	for (i = 0; i < map->n; i++) {
		kn = cfgtree_key(map, i);
		vn = cfgtree_value(map, i);
		if (dup[i])
			continue;
		config_value_path(path, sizeof(path), prefix, kn);
		if ((k = config_keys_find(sec, kn->str)) == NULL) {
			config_bind_unknown(ld, sec, kn, path);
			continue;
		}
		for (j = 0; j < config_nkeys; j++) {
			o = &config_keys[j];
			if (seen[j] == NULL || o == k || o->section != sec ||
			    o->off != k->off)
				continue;
			config_diag(ld, true, false, kn->line, kn->col,
			    "%s: '%s' and '%s' (line %u) set the same thing; "
			    "keep one", path, k->name, o->name, seen[j]->line);
		}
		seen[k - config_keys] = kn;
		config_bind_value(ld, k, vn, base, path, kn);
	}
	for (j = 0; j < config_nkeys; j++) {
		k = &config_keys[j];
		if (k->section != sec || !(k->flags & CK_REQUIRED) ||
		    seen[j] != NULL)
			continue;
		if (*prefix != '\0')
			config_diag(ld, true, false, where->line, where->col,
			    "%s: missing required key '%s'", prefix, k->name);
		else
			config_diag(ld, true, false, where->line, where->col,
			    "missing required key '%s'", k->name);
	}
	free(dup);
	free(seen);
}

void
config_bind_root(struct config_loader *ld, const struct cfgnode *root)
{
	config_bind_section(ld, CS_TOP, root, ld->cfg, "", NULL);
}

void
config_bind_defaults(struct config_loader *ld, enum config_section sec,
    void *base)
{
	const struct config_key	*k;
	struct cfgnode		 n;

	for (size_t i = 0; i < config_nkeys; i++) {
		k = &config_keys[i];
		if (k->section != sec)
			continue;
		if (k->type == CT_SECTION)
			config_bind_defaults(ld, k->sub,
			    config_bind_field(k, base));
		else if (k->type == CT_STRLIST || k->type == CT_ENV) {
			*(char ***)config_bind_field(k, base) =
			    xcalloc(1, sizeof(char *));
		}
		if (k->def == NULL)
			continue;
		memset(&n, 0, sizeof(n));
		n.kind = CFGNODE_SCALAR;
		n.str = (char *)k->def;
		n.len = strlen(k->def);
		cfgtree_resolve_plain(&n);
		config_bind_value(ld, k, &n, base, k->name, NULL);
		if (k->set_off != 0)
			*(bool *)((char *)base + k->set_off - 1) = false;
	}
}

void
config_bind_free(enum config_section sec, void *base)
{
	const struct config_key	*k;
	struct config		*cfg = base;
	void			*field;

	for (size_t i = 0; i < config_nkeys; i++) {
		k = &config_keys[i];
		if (k->section != sec)
			continue;
		field = config_bind_field(k, base);
		switch (k->type) {
		case CT_STRING:
			free(*(char **)field);
			*(char **)field = NULL;
			break;
		case CT_STRLIST:
		case CT_ENV:
			config_bind_free_list(*(char ***)field);
			*(char ***)field = NULL;
			break;
		case CT_GPUS:
			free(*(int **)field);
			*(int **)field = NULL;
			break;
		case CT_SECTION:
			config_bind_free(k->sub, field);
			break;
		case CT_MODELS:
			for (size_t m = 0; m < cfg->n_models; m++) {
				free(cfg->models[m].name);
				config_bind_free(CS_MODEL, &cfg->models[m]);
			}
			free(cfg->models);
			cfg->models = NULL;
			cfg->n_models = 0;
			break;
		default:
			break;
		}
	}
}
