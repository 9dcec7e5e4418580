/*
 * reload.c -- reading the config again (SIGHUP, `llmuxctl reload`). An
 * invalid file is rejected with all its errors and the running config is
 * kept. A valid one replaces it: added models appear (not started),
 * removed ones are stopped and forgotten, and a changed model keeps its
 * process: the change takes effect at its next start. The proxy is sent
 * the new config, and the switcher is rebuilt from it (switching.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"
#include "supervisord/control/control.h"

static void
reload_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static void
reload_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
reload_result_free(struct reload_result *r)
{
	reload_strv_free(r->errors, r->n_errors);
	reload_strv_free(r->added, r->n_added);
	reload_strv_free(r->removed, r->n_removed);
	reload_strv_free(r->changed, r->n_changed);
	memset(r, 0, sizeof(*r));
}

static bool
reload_strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return (false);
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return (false);
	return (true);
}

/* Would the model start differently, or sleep differently? */
bool
reload_model_changed(const struct config *ca, const struct model_config *a,
    const struct config *cb, const struct model_config *b)
{
	char		**va, **vb;
	bool		  same;
	struct eviction	  ea, eb;

	va = spawn_argv(ca, a);
	vb = spawn_argv(cb, b);
	same = reload_strv_equal(va, spawn_strv_len(va), vb,
	    spawn_strv_len(vb));
	spawn_strv_free(va);
	spawn_strv_free(vb);
	if (!same || !reload_strv_equal(a->env, a->n_env, b->env, b->n_env))
		return (true);
	if ((a->checkpoint_path == NULL) != (b->checkpoint_path == NULL) ||
	    (a->checkpoint_path != NULL &&
	    strcmp(a->checkpoint_path, b->checkpoint_path) != 0))
		return (true);
	ea = config_model_eviction(ca, a);
	eb = config_model_eviction(cb, b);
	if (ea.weights != eb.weights || ea.process != eb.process)
		return (true);
	if (config_model_startup_timeout(ca, a) !=
	    config_model_startup_timeout(cb, b))
		return (true);
	return (strcmp(ca->user, cb->user) != 0);
}

static void
reload_list(struct body *b, const char *key, char **v, size_t n)
{
	body_str(b, key);
	body_array(b, n);
	for (size_t i = 0; i < n; i++)
		body_str(b, v[i]);
}

/* The reload as an event of the stream. */
static void
reload_event(struct supervisor *sup, const struct reload_result *r)
{
	struct body	*b = body_new();

	body_map(b, 4);
	body_kuint(b, "generation", sup->config_generation);
	reload_list(b, "added", r->added, r->n_added);
	reload_list(b, "removed", r->removed, r->n_removed);
	reload_list(b, "changed", r->changed, r->n_changed);
	events_emit(sup, "reload", NULL, b);
}

static void
reload_removed_cb(struct model *m, const struct evict_report *r, void *arg)
{
	log_info("removed model stopped model=%s", m->name);
	model_free_later(m);
}

void
reload_run(struct supervisor *sup, struct reload_result *r)
{
	struct config		*nc, *old = sup->conf;
	struct config_diags	 diags;
	struct model		*m, *next;
	struct model_config	*mc;
	char			*line;

	memset(r, 0, sizeof(*r));
	memset(&diags, 0, sizeof(diags));
	log_info("reloading the configuration path=%s", sup->config_path);
	nc = config_load(sup->config_path, CONFIG_RUN, &diags);
	for (size_t i = 0; i < diags.n; i++) {
		const struct config_diag *d = &diags.v[i];

		if (d->line > 0)
			xasprintf(&line, "%s:%u:%u: %s: %s", sup->config_path,
			    d->line, d->col, d->error ? "error" : "warning",
			    d->msg);
		else
			xasprintf(&line, "%s: %s: %s", sup->config_path,
			    d->error ? "error" : "warning", d->msg);
		if (d->error)
			reload_add(&r->errors, &r->n_errors, line);
		log_warnx("config: %s", line);
		free(line);
	}
	config_diags_free(&diags);
	if (nc == NULL) {
		if (r->n_errors == 0)
			reload_add(&r->errors, &r->n_errors, "the config could "
			    "not be loaded");
		sup->reload_failures++;
		log_warnx("the new configuration is invalid, keeping the "
		    "running one errors=%zu", r->n_errors);
		return;
	}

	if (strcmp(old->supervisor_socket, nc->supervisor_socket) != 0)
		log_warnx("supervisor_socket changed; it takes effect at the "
		    "next start");
	/* Models of the new config, in its order. */
	for (size_t i = 0; i < nc->n_models; i++) {
		mc = &nc->models[i];
		if ((m = model_find(sup, mc->name)) == NULL) {
			m = model_new(sup, mc);
			reload_add(&r->added, &r->n_added, mc->name);
			continue;
		}
		if (reload_model_changed(old, m->cfg, nc, mc))
			reload_add(&r->changed, &r->n_changed, mc->name);
		m->cfg = mc;
		TAILQ_REMOVE(&sup->models, m, entry);
		TAILQ_INSERT_TAIL(&sup->models, m, entry);
	}
	/* What is left of the old config goes. */
	for (m = TAILQ_FIRST(&sup->models); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (m->removed || config_find_model(nc, m->name) != NULL)
			continue;
		reload_add(&r->removed, &r->n_removed, m->name);
		logfollow_model_gone(sup, m);
		m->cfg = NULL;
		m->removed = true;
		evict_stop(m, reload_removed_cb, NULL, NULL);
	}
	sup->conf = nc;
	/* The switcher keeps its config until it is rebuilt. */
	if (old != sup->switcher_conf)
		config_free(old);
	r->ok = true;
	sup->config_generation++;
	sup->reloads++;
	server_update_roles(sup);
	events_resize(sup);
	reload_event(sup, r);
	switching_reload(sup);
	server_send_config(sup, NULL);
	server_schedule_state(sup);
	persist_schedule(sup);
	log_info("configuration reloaded generation=%llu added=%zu removed=%zu "
	    "changed=%zu", (unsigned long long)sup->config_generation,
	    r->n_added, r->n_removed, r->n_changed);
}
