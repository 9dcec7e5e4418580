/*
 * config.c -- loading llmux.yaml (or llmux 0.7's config.json): read the
 * file with limits, build the document tree, bind it through the key
 * table, check it, and report every diagnostic in file order. Also the
 * lookups other parts use on a loaded config.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgtree.h"
#include "config.h"
#include "config_int.h"
#include "log.h"
#include "xmalloc.h"

static const char *config_policy_names[POLICY__COUNT] = {
	[POLICY_FIFO] = "fifo",
	[POLICY_COST_AWARE] = "cost_aware",
	[POLICY_TIME_SLICE] = "time_slice",
	[POLICY_BATCH_AWARE] = "batch_aware",
};

/* Append one diagnostic. */
static void
config_diags_add(struct config_diags *d, bool error, bool machine,
    unsigned line, unsigned col, char *msg)
{
	/* Grow at powers of two. */
	if ((d->n & (d->n - 1)) == 0)
		d->v = xreallocarray(d->v, d->n ? d->n * 2 : 1,
		    sizeof(*d->v));
	d->v[d->n].error = error;
	d->v[d->n].machine = machine;
	d->v[d->n].line = line;
	d->v[d->n].col = col;
	d->v[d->n].msg = msg;
	d->n++;
	if (error)
		d->n_errors++;
}

void
config_diag(struct config_loader *ld, bool error, bool machine,
    unsigned line, unsigned col, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	if (ld->defaults)
		fatalx("config: bad default in the key table: %s", msg);
	config_diags_add(ld->diags, error, machine, line, col, msg);
}

/* One error for the whole file (it could not be read or parsed). */
static void
config_diag_file(struct config_diags *d, unsigned line, unsigned col,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	config_diags_add(d, true, false, line, col, msg);
}

void
config_mark(struct config_loader *ld, const void *field,
    const struct cfgnode *n)
{
	if (ld->defaults || n == NULL)
		return;
	if (ld->nmarks == ld->capmarks) {
		ld->capmarks = ld->capmarks ? ld->capmarks * 2 : 64;
		ld->marks = xreallocarray(ld->marks, ld->capmarks,
		    sizeof(*ld->marks));
	}
	ld->marks[ld->nmarks].field = field;
	ld->marks[ld->nmarks].line = n->line;
	ld->marks[ld->nmarks].col = n->col;
	ld->nmarks++;
	ld->sorted = false;
}

static int
config_mark_cmp(const void *a, const void *b)
{
	const struct config_mark	*x = a, *y = b;

	if (x->field != y->field)
		return ((uintptr_t)x->field < (uintptr_t)y->field ? -1 : 1);
	return (0);
}

struct config_pos
config_marked(struct config_loader *ld, const void *field,
    struct config_pos fallback)
{
	struct config_mark	 key, *m;
	struct config_pos	 pos;

	if (!ld->sorted) {
		if (ld->nmarks != 0)
			qsort(ld->marks, ld->nmarks, sizeof(*ld->marks),
			    config_mark_cmp);
		ld->sorted = true;
	}
	key.field = field;
	if (ld->nmarks == 0 || (m = bsearch(&key, ld->marks, ld->nmarks,
	    sizeof(*ld->marks), config_mark_cmp)) == NULL)
		return (fallback);
	pos.line = m->line;
	pos.col = m->col;
	return (pos);
}

const char *
config_printable(const char *s, size_t len, char *buf, size_t size)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, o = 0, chars = 0, n;

	while (i < len && chars < 64 && o + 8 < size) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x",
			    p[i]);
			i++;
		} else if (p[i] < 0x80)
			buf[o++] = (char)p[i++];
		else {
			n = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
			if (i + n > len || o + n + 8 >= size)
				break;
			memcpy(buf + o, p + i, n);
			o += n;
			i += n;
		}
		chars++;
	}
	if (i < len && o + 4 <= size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return (buf);
}

struct config_diag_sort {
	struct config_diag	d;
	size_t			i;
};

static int
config_diag_cmp(const void *a, const void *b)
{
	const struct config_diag_sort	*x = a, *y = b;

	if (x->d.line != y->d.line)
		return (x->d.line < y->d.line ? -1 : 1);
	if (x->d.col != y->d.col)
		return (x->d.col < y->d.col ? -1 : 1);
	return (x->i < y->i ? -1 : x->i > y->i);
}

/* Sort into file order (stable); keep the first CONFIG_MAX_DIAGS. */
static void
config_diags_finish(struct config_diags *d)
{
	struct config_diag_sort	*v;
	size_t			 i, errors = 0, warnings = 0, n_errors;
	char			*msg;

	if (d->n < 2)
		return;
	v = xreallocarray(NULL, d->n, sizeof(*v));
	for (i = 0; i < d->n; i++) {
		v[i].d = d->v[i];
		v[i].i = i;
	}
	qsort(v, d->n, sizeof(*v), config_diag_cmp);
	for (i = 0; i < d->n; i++)
		d->v[i] = v[i].d;
	free(v);
	if (d->n <= CONFIG_MAX_DIAGS)
		return;
	for (i = CONFIG_MAX_DIAGS; i < d->n; i++) {
		if (d->v[i].error)
			errors++;
		else
			warnings++;
		free(d->v[i].msg);
	}
	n_errors = d->n_errors;
	d->n = CONFIG_MAX_DIAGS;
	xasprintf(&msg, "%zu more errors and %zu more warnings not shown",
	    errors, warnings);
	config_diags_add(d, errors != 0, false, 0, 0, msg);
	d->n_errors = n_errors;
}

struct config *
config_load_buffer(const char *name, const char *buf, size_t len,
    enum config_mode mode, struct config_diags *diags)
{
	struct config_loader	 ld;
	struct cfgtree_error	 err;
	struct cfgnode		*root;
	struct config		*cfg;

	memset(diags, 0, sizeof(*diags));
	if ((root = cfgtree_parse(buf, len, NULL, &err)) == NULL) {
		config_diag_file(diags, err.line, err.col, "%s", err.msg);
		return (NULL);
	}
	cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup(name);
	memset(&ld, 0, sizeof(ld));
	ld.name = name;
	ld.mode = mode;
	ld.cfg = cfg;
	ld.diags = diags;
	ld.root = root;
	ld.defaults = true;
	config_bind_defaults(&ld, CS_TOP, cfg);
	ld.defaults = false;
	if (root->kind != CFGNODE_MAP)
		config_diag(&ld, true, false, root->line, root->col,
		    "the top level must be a mapping of keys, not %s",
		    cfgtree_describe(root));
	else {
		config_bind_root(&ld, root);
		config_access(&ld);
		config_check(&ld);
	}
	free(ld.marks);
	cfgtree_free(root);
	config_diags_finish(diags);
	if (diags->n_errors != 0) {
		config_free(cfg);
		return (NULL);
	}
	return (cfg);
}

struct config *
config_load(const char *path, enum config_mode mode,
    struct config_diags *diags)
{
	struct config	*cfg;
	struct stat	 st;
	char		*buf;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	memset(diags, 0, sizeof(*diags));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		config_diag_file(diags, 0, 0, "cannot open: %s",
		    strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) == -1) {
		config_diag_file(diags, 0, 0, "cannot stat: %s",
		    strerror(errno));
		close(fd);
		return (NULL);
	}
	if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
		config_diag_file(diags, 0, 0, "%s, not a configuration file",
		    S_ISDIR(st.st_mode) ? "is a directory" :
		    "is not a regular file");
		close(fd);
		return (NULL);
	}
	if (st.st_size > (off_t)CONFIG_MAX_FILE_BYTES) {
		config_diag_file(diags, 0, 0, "file is too large (%jd bytes; "
		    "the limit is %u)", (intmax_t)st.st_size,
		    CONFIG_MAX_FILE_BYTES);
		close(fd);
		return (NULL);
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			config_diag_file(diags, 0, 0, "cannot read: %s",
			    strerror(errno));
			free(buf);
			close(fd);
			return (NULL);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	cfg = config_load_buffer(path, buf, got, mode, diags);
	free(buf);
	return (cfg);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	config_bind_free(CS_TOP, cfg);
	free(cfg->path);
	free(cfg);
}

void
config_diags_free(struct config_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void
config_diags_print(const struct config_diags *d, const char *path,
    void *file)
{
	FILE	*f = file;

	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].line != 0)
			fprintf(f, "%s:%u:%u: %s: %s\n", path, d->v[i].line,
			    d->v[i].col, d->v[i].error ? "error" : "warning",
			    d->v[i].msg);
		else
			fprintf(f, "%s: %s: %s\n", path,
			    d->v[i].error ? "error" : "warning", d->v[i].msg);
	}
}

struct model_config *
config_find_model(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_models; i++)
		if (strcmp(cfg->models[i].name, name) == 0)
			return (&cfg->models[i]);
	return (NULL);
}

struct model_config *
config_resolve_model(const struct config *cfg, const char *name)
{
	struct model_config	*m;

	if ((m = config_find_model(cfg, name)) != NULL)
		return (m);
	for (size_t i = 0; i < cfg->n_models; i++) {
		m = &cfg->models[i];
		for (size_t j = 0; j < m->n_aliases; j++)
			if (strcmp(m->aliases[j], name) == 0)
				return (m);
	}
	return (NULL);
}

const char *
config_policy_name(enum policy_type t)
{
	return ((unsigned)t < POLICY__COUNT ? config_policy_names[t] : "?");
}

int
config_policy_parse(const char *s, enum policy_type *out)
{
	for (int i = 0; i < POLICY__COUNT; i++) {
		if (strcmp(s, config_policy_names[i]) == 0) {
			*out = (enum policy_type)i;
			return (0);
		}
	}
	return (-1);
}

struct eviction
config_model_eviction(const struct config *cfg, const struct model_config *m)
{
	return (m->eviction_set ? m->eviction : cfg->policy.eviction);
}

uint32_t
config_model_startup_timeout(const struct config *cfg,
    const struct model_config *m)
{
	return (m->startup_timeout_secs != 0 ? m->startup_timeout_secs :
	    cfg->startup_timeout_secs);
}
