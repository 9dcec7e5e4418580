/*
 * config_value.c -- the value types of the key table: each parser takes a
 * tree node, checks its type and bounds, and either fills the field or
 * reports one diagnostic naming the key ("port: expected an integer from
 * 1 to 65535, got a string").
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtree.h"
#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

/* prefix.name, with name made printable: "models.chat.port". */
void
config_value_path(char *buf, size_t size, const char *prefix,
    const struct cfgnode *name)
{
	char	tmp[CONFIG_TEXT_MAX];

	config_printable(name->str, name->len, tmp, sizeof(tmp));
	snprintf(buf, size, "%s%s%s", prefix, *prefix != '\0' ? "." : "", tmp);
}

/* "PATH: expected WHAT, got a string". */
void
config_value_expected(struct config_loader *ld, const struct cfgnode *v,
    const char *path, const char *what)
{
	const char	*hint = "";

	if (v->kind == CFGNODE_SCALAR && v->quoted &&
	    (cfgtree_is_integer(v->str, v->len) ||
	    strcmp(v->str, "true") == 0 || strcmp(v->str, "false") == 0))
		hint = " (remove the quotes)";
	config_diag(ld, true, false, v->line, v->col,
	    "%s: expected %s, got %s%s", path, what, cfgtree_describe(v),
	    hint);
}

static void
config_value_range(struct config_loader *ld, const struct cfgnode *v,
    const char *path, const char *range)
{
	char	tmp[CONFIG_TEXT_MAX];

	config_printable(v->str, v->len, tmp, sizeof(tmp));
	config_diag(ld, true, false, v->line, v->col,
	    "%s: %s is out of range (%s)", path, tmp, range);
}

/* An unsigned integer within k's bounds. */
int
config_value_uint(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, uint64_t *out)
{
	char		 what[96], range[64], *end;
	uint64_t	 u;

	if (v->kind != CFGNODE_SCALAR || v->tag != CFGTAG_INT) {
		snprintf(what, sizeof(what), "an integer from %" PRIu64
		    " to %" PRIu64, k->min, k->max);
		config_value_expected(ld, v, path, what);
		return (-1);
	}
	errno = 0;
	u = strtoumax(v->str, &end, 10);
	if (v->str[0] == '-' || errno == ERANGE || u < k->min || u > k->max) {
		snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64,
		    k->min, k->max);
		config_value_range(ld, v, path, range);
		return (-1);
	}
	*out = u;
	return (0);
}

/* A size: an integer, or a number with a unit ("64MiB", "32M", "1 GB"). */
int
config_value_bytes(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} units[] = {
		{ "", 1 }, { "B", 1 },
		{ "k", 1ULL << 10 }, { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
		{ "kB", 1000ULL }, { "KB", 1000ULL },
		{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
		{ "MB", 1000000ULL },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
		{ "GB", 1000000000ULL },
		{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
		{ "TB", 1000000000000ULL },
	};
	char		 range[64], *end;
	const char	*u;
	uint64_t	 n;
	size_t		 i;

	if (v->kind != CFGNODE_SCALAR ||
	    (v->tag != CFGTAG_STR && v->tag != CFGTAG_INT))
		goto bad;
	snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64 " bytes",
	    k->min, k->max);
	if (v->tag == CFGTAG_INT && (v->str[0] == '-' || v->str[0] == '+')) {
		config_value_range(ld, v, path, range);
		return (-1);
	}
	if (v->str[0] < '0' || v->str[0] > '9')
		goto bad;
	errno = 0;
	n = strtoumax(v->str, &end, 10);
	for (u = end; *u == ' '; u++)
		;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(u, units[i].unit) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	if (errno == ERANGE || n > UINT64_MAX / units[i].mult ||
	    n * units[i].mult < k->min || n * units[i].mult > k->max) {
		config_value_range(ld, v, path, range);
		return (-1);
	}
	*out = n * units[i].mult;
	return (0);
bad:
	config_value_expected(ld, v, path,
	    "a size such as 65536, \"64MiB\" or \"32M\"");
	return (-1);
}

int
config_value_double(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, double *out)
{
	char	range[96], *end;
	double	d;

	if (k->flags & CK_MIN_EXCL)
		snprintf(range, sizeof(range), "more than %g, at most %g",
		    k->dmin, k->dmax);
	else
		snprintf(range, sizeof(range), "%g..%g", k->dmin, k->dmax);
	if (v->kind != CFGNODE_SCALAR ||
	    (v->tag != CFGTAG_INT && v->tag != CFGTAG_FLOAT)) {
		config_value_expected(ld, v, path, "a number");
		return (-1);
	}
	/* YAML's .inf and .nan are not numbers strtod reads: refused. */
	d = strtod(v->str, &end);
	if (*end != '\0' || !isfinite(d) || d < k->dmin || d > k->dmax ||
	    ((k->flags & CK_MIN_EXCL) && d == k->dmin)) {
		config_value_range(ld, v, path, range);
		return (-1);
	}
	*out = d;
	return (0);
}

/* Any scalar but null, by its text; checked for length and validity. */
int
config_value_text(struct config_loader *ld, const struct config_key *k,
    const struct cfgnode *v, const char *path, char **out)
{
	const char	*why;
	char		 tmp[CONFIG_TEXT_MAX];

	if (v->kind != CFGNODE_SCALAR || v->tag == CFGTAG_NULL) {
		config_value_expected(ld, v, path, "a string");
		return (-1);
	}
	if (v->len == 0 && !(k->flags & CK_EMPTY_OK)) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: must not be empty", path);
		return (-1);
	}
	if (k->max != 0 && v->len > k->max) {
		config_diag(ld, true, false, v->line, v->col,
		    "%s: is too long (%zu bytes; at most %" PRIu64 ")", path,
		    v->len, k->max);
		return (-1);
	}
	if (k->check != NULL && (why = k->check(v->str)) != NULL) {
		if (k->flags & CK_SECRET) {
			config_diag(ld, true, false, v->line, v->col,
			    "%s: the value %s", path, why);
			return (-1);
		}
		config_printable(v->str, v->len, tmp, sizeof(tmp));
		config_diag(ld, true, false, v->line, v->col, "%s: '%s' %s",
		    path, tmp, why);
		return (-1);
	}
	*out = xstrdup(v->str);
	return (0);
}

int
config_value_bool(struct config_loader *ld, const struct cfgnode *v,
    const char *path, bool *out)
{
	if (v->kind != CFGNODE_SCALAR || v->tag != CFGTAG_BOOL) {
		config_value_expected(ld, v, path, "true or false");
		return (-1);
	}
	*out = v->str[0] == 't' || v->str[0] == 'T';
	return (0);
}

int
config_value_policy(struct config_loader *ld, const struct cfgnode *v,
    const char *path, enum policy_type *out)
{
	char	tmp[CONFIG_TEXT_MAX];

	if (v->kind != CFGNODE_SCALAR || v->tag == CFGTAG_NULL) {
		config_value_expected(ld, v, path, "a policy name");
		return (-1);
	}
	if (config_policy_parse(v->str, out) == 0)
		return (0);
	config_printable(v->str, v->len, tmp, sizeof(tmp));
	config_diag(ld, true, false, v->line, v->col,
	    "%s: unknown policy type '%s' (expected fifo, cost_aware, "
	    "time_slice or batch_aware)", path, tmp);
	return (-1);
}

/* One strategy name of an eviction; which is "weights" or "process". */
static int
config_value_strategy(struct config_loader *ld, const struct cfgnode *v,
    const char *path, const char *which, const char *text,
    struct eviction *e)
{
	char	tmp[CONFIG_TEXT_MAX];
	int	rc;

	if (strcmp(which, "weights") == 0)
		rc = eviction_weights_parse(text, &e->weights);
	else
		rc = eviction_process_parse(text, &e->process);
	if (rc == 0)
		return (0);
	config_printable(text, strlen(text), tmp, sizeof(tmp));
	config_diag(ld, true, false, v->line, v->col,
	    "%s: unknown %s strategy '%s' (expected %s)", path, which, tmp,
	    strcmp(which, "weights") == 0 ? "retain, offload or discard" :
	    "keep_running, cuda_suspend, checkpoint or stop");
	return (-1);
}

/* A level 1..5 (llmux 0.7's sleep levels). */
int
config_value_level(struct config_loader *ld, const struct cfgnode *v,
    const char *path, struct eviction *out)
{
	long	level;

	if (v->kind != CFGNODE_SCALAR || v->tag != CFGTAG_INT) {
		config_value_expected(ld, v, path, "a level from 1 to 5");
		return (-1);
	}
	level = v->len > 2 ? 0 : strtol(v->str, NULL, 10);
	if (eviction_from_level(level, out) != 0) {
		config_value_range(ld, v, path, "1..5");
		return (-1);
	}
	return (0);
}

/* {weights, process}, a level 1..5, or "weights+process". */
int
config_value_eviction(struct config_loader *ld, const struct cfgnode *v,
    const char *path, struct eviction *out)
{
	struct eviction	 e = *out;
	const struct cfgnode *kn, *vn, *seen[2] = { NULL, NULL };
	char		 sub[CONFIG_PATH_MAX], w[64];
	const char	*plus, *s;
	int		 bad = 0, which;

	if (v->kind == CFGNODE_SCALAR && v->tag == CFGTAG_INT)
		return (config_value_level(ld, v, path, out));
	if (v->kind == CFGNODE_SCALAR && v->tag == CFGTAG_STR) {
		if (eviction_parse(v->str, out) == 0)
			return (0);
		if ((plus = strchr(v->str, '+')) == NULL ||
		    (size_t)(plus - v->str) >= sizeof(w)) {
			config_value_expected(ld, v, path,
			    "\"weights+process\", a level 1..5 or "
			    "{weights, process}");
			return (-1);
		}
		memcpy(w, v->str, (size_t)(plus - v->str));
		w[plus - v->str] = '\0';
		if (config_value_strategy(ld, v, path, "weights", w, &e) != 0)
			return (-1);
		return (config_value_strategy(ld, v, path, "process", plus + 1,
		    &e));
	}
	if (v->kind != CFGNODE_MAP) {
		config_value_expected(ld, v, path,
		    "{weights, process}, a level 1..5 or \"weights+process\"");
		return (-1);
	}
	for (size_t i = 0; i < v->n; i++) {
		kn = cfgtree_key(v, i);
		vn = cfgtree_value(v, i);
		config_value_path(sub, sizeof(sub), path, kn);
		if (strcmp(kn->str, "weights") == 0)
			which = 0;
		else if (strcmp(kn->str, "process") == 0)
			which = 1;
		else {
			s = config_keys_distance(kn->str, "weights") <= 2 ?
			    "weights" : config_keys_distance(kn->str,
			    "process") <= 2 ? "process" : NULL;
			config_diag(ld, false, false, kn->line, kn->col,
			    "%s: unknown key, ignored%s%s%s", sub,
			    s != NULL ? " (did you mean '" : "",
			    s != NULL ? s : "", s != NULL ? "'?)" : "");
			continue;
		}
		if (seen[which] != NULL) {
			config_diag(ld, true, false, kn->line, kn->col,
			    "%s: duplicate key (first at line %u)", sub,
			    seen[which]->line);
			bad = -1;
			continue;
		}
		seen[which] = kn;
		if (vn->kind != CFGNODE_SCALAR || vn->tag != CFGTAG_STR) {
			config_value_expected(ld, vn, sub, "a strategy name");
			bad = -1;
		} else if (config_value_strategy(ld, vn, sub, which == 0 ?
		    "weights" : "process", vn->str, &e) != 0)
			bad = -1;
	}
	for (which = 0; which < 2; which++) {
		if (seen[which] != NULL)
			continue;
		config_diag(ld, true, false, v->line, v->col,
		    "%s: missing required key '%s'", path,
		    which == 0 ? "weights" : "process");
		bad = -1;
	}
	if (bad == 0)
		*out = e;
	return (bad);
}
