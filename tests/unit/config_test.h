/*
 * config_test.h -- what the config loader's tests share (test_config.c,
 * test_config_errors.c): loading a text, the diagnostics as text, files
 * in a temp dir, comparing two structs section by section, and the
 * smallest valid configs (minimal, M).
 */
#ifndef LLMUX_CONFIG_TEST_H
#define LLMUX_CONFIG_TEST_H

#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

/* ---- helpers ------------------------------------------------------- */

static __attribute__((unused)) struct config *
load(const char *text, enum config_mode mode, struct config_diags *d)
{
	return (config_load_buffer("t.yaml", text, strlen(text), mode, d));
}

/* The diagnostics that depend on the file alone, one "L:C: kind: msg" a line. */
static __attribute__((unused)) char *
diags_text(const struct config_diags *d)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].machine)
			continue;
		if (d->v[i].line != 0)
			fprintf(f, "%u:%u: ", d->v[i].line, d->v[i].col);
		fprintf(f, "%s: %s\n", d->v[i].error ? "error" : "warning",
		    d->v[i].msg);
	}
	fclose(f);
	return (buf);
}

/* Load text; its file diagnostics must be exactly want. */
static __attribute__((unused)) void
expect_diags(const char *text, const char *want)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = load(text, CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(strcmp(got, want) == 0,
	    "config:\n%s\nwant:\n%s\ngot:\n%s", text, want, got);
	ck_assert_msg((cfg == NULL) == (d.n_errors != 0),
	    "a config must come back exactly when there are no errors");
	free(got);
	config_free(cfg);
	config_diags_free(&d);
}

/* Load text, which must succeed with no file diagnostics at all. */
static __attribute__((unused)) struct config *
load_ok(const char *text)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = load(text, CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(cfg != NULL && *got == '\0', "config:\n%s\ngot:\n%s",
	    text, got);
	free(got);
	config_diags_free(&d);
	return (cfg);
}

static __attribute__((unused)) char *
tmpdir(void)
{
	char	tmpl[] = "/tmp/llmux-test-config-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return (strdup(tmpl));
}

static __attribute__((unused)) void
write_file(const char *path, const char *text, mode_t mode)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Are the two structs of section sec equal, key by key (by the table)? */
static __attribute__((unused)) bool
same_section(enum config_section sec, const void *a, const void *b)
{
	const struct config_key	*k;
	const char		*fa, *fb;
	size_t			 na, nb;

	for (size_t i = 0; i < config_nkeys; i++) {
		k = &config_keys[i];
		if (k->section != sec)
			continue;
		fa = (const char *)a + k->off;
		fb = (const char *)b + k->off;
		if (k->set_off != 0 && *(const bool *)((const char *)a +
		    k->set_off - 1) != *(const bool *)((const char *)b +
		    k->set_off - 1))
			return (false);
		switch (k->type) {
		case CT_STRING: {
			const char *sa = *(char *const *)fa;
			const char *sb = *(char *const *)fb;

			if ((sa == NULL) != (sb == NULL) ||
			    (sa != NULL && strcmp(sa, sb) != 0))
				return (false);
			break;
		}
		case CT_PORT:
			if (*(const uint16_t *)fa != *(const uint16_t *)fb)
				return (false);
			break;
		case CT_U32:
		case CT_BYTES32:
			if (*(const uint32_t *)fa != *(const uint32_t *)fb)
				return (false);
			break;
		case CT_BYTES:
			if (*(const uint64_t *)fa != *(const uint64_t *)fb)
				return (false);
			break;
		case CT_DOUBLE:
			if (*(const double *)fa != *(const double *)fb)
				return (false);
			break;
		case CT_BOOL:
			if (*(const bool *)fa != *(const bool *)fb)
				return (false);
			break;
		case CT_EVICTION:
		case CT_LEVEL:
			if (memcmp(fa, fb, sizeof(struct eviction)) != 0)
				return (false);
			break;
		case CT_POLICY:
			if (*(const enum policy_type *)fa !=
			    *(const enum policy_type *)fb)
				return (false);
			break;
		case CT_STRLIST:
		case CT_ENV:
			na = *(const size_t *)((const char *)a + k->aux_off);
			nb = *(const size_t *)((const char *)b + k->aux_off);
			if (na != nb)
				return (false);
			for (size_t j = 0; j < na; j++)
				if (strcmp((*(char **const *)fa)[j],
				    (*(char **const *)fb)[j]) != 0)
					return (false);
			break;
		case CT_GPUS:
			na = *(const size_t *)((const char *)a + k->aux_off);
			nb = *(const size_t *)((const char *)b + k->aux_off);
			if (na != nb || (na != 0 && memcmp(*(int *const *)fa,
			    *(int *const *)fb, na * sizeof(int)) != 0))
				return (false);
			break;
		case CT_SECTION:
			if (!same_section(k->sub, fa, fb))
				return (false);
			break;
		case CT_MODELS: {
			const struct config *ca = a, *cb = b;

			if (ca->n_models != cb->n_models)
				return (false);
			for (size_t j = 0; j < ca->n_models; j++) {
				if (strcmp(ca->models[j].name,
				    cb->models[j].name) != 0 ||
				    ca->models[j].tensor_parallel_size !=
				    cb->models[j].tensor_parallel_size ||
				    !same_section(CS_MODEL, &ca->models[j],
				    &cb->models[j]))
					return (false);
			}
			break;
		}
		}
	}
	return (true);
}

/* ---- defaults and keys ---------------------------------------------- */

static __attribute__((unused)) const char *minimal =
    "models:\n"
    "  a:\n"
    "    model_path: org/a\n"
    "    port: 8001\n";

#define M	"models:\n  a:\n    model_path: p\n    port: 8001\n"

#endif
