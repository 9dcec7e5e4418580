/*
 * registry.c -- the models the proxy knows: names, aliases and ports from
 * the supervisor's config push; readiness, port and generation from its
 * state pushes and ready/failed/drain messages, and whether its server
 * could be reached. The queues hang off these entries; route.c dispatches
 * or fails them once the news is applied here.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

static bool	 registry_is_manual;
static char	*registry_pin;

struct pmodel *
registry_find(const char *name)
{
	struct pmodel	*pm;

	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (strcmp(pm->name, name) == 0)
			return (pm);
	}
	return (NULL);
}

struct pmodel *
registry_resolve(const char *name)
{
	struct pmodel	*pm;
	size_t		 i;

	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured)
			continue;
		if (strcmp(pm->name, name) == 0)
			return (pm);
	}
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured)
			continue;
		for (i = 0; i < pm->n_aliases; i++) {
			if (strcmp(pm->aliases[i], name) == 0)
				return (pm);
		}
	}
	return (NULL);
}

static void
registry_free_aliases(struct pmodel *pm)
{
	size_t	i;

	for (i = 0; i < pm->n_aliases; i++)
		free(pm->aliases[i]);
	free(pm->aliases);
	pm->aliases = NULL;
	pm->n_aliases = 0;
}

static void
registry_strv_free(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char *
registry_strdup_or_null(const char *s)
{
	return (s != NULL ? xstrdup(s) : NULL);
}

/* The limits and keys of a config push. */
static void
registry_apply_limits(const struct proto_config *c)
{
	struct pconf	*pc = &proxy_conf;
	size_t		 i;

	pc->generation = c->generation;
	pc->port = c->port;
	pc->admin_port = c->admin_port;
	pc->metrics_port = c->metrics_port;
	free(pc->listen_address);
	pc->listen_address = registry_strdup_or_null(c->listen_address);
	free(pc->admin_address);
	pc->admin_address = registry_strdup_or_null(c->admin_address);
	pc->request_timeout_secs = c->request_timeout_secs != 0 ?
	    c->request_timeout_secs : PROXY_DEFAULT_TIMEOUT_SECS;
	pc->max_queue_per_model = c->max_queue_per_model != 0 ?
	    c->max_queue_per_model : PROXY_DEFAULT_MAX_QUEUE;
	pc->max_body_bytes = c->max_body_bytes != 0 ? c->max_body_bytes :
	    PROXY_DEFAULT_MAX_BODY;
	pc->max_header_bytes = c->max_header_bytes != 0 ?
	    c->max_header_bytes : PROXY_DEFAULT_MAX_HEADER;
	pc->max_connections = c->max_connections != 0 ? c->max_connections :
	    PROXY_DEFAULT_MAX_CONNS;
	pc->max_connections_per_ip = c->max_connections_per_ip != 0 ?
	    c->max_connections_per_ip : PROXY_DEFAULT_MAX_CONNS_PER_IP;
	pc->max_buffered_body = (uint64_t)(c->max_buffered_body_mb != 0 ?
	    c->max_buffered_body_mb : PROXY_DEFAULT_MAX_BUFFERED_MB) << 20;
	pc->header_timeout_ms = c->header_timeout_ms != 0 ?
	    c->header_timeout_ms : PROXY_DEFAULT_HEADER_TIMEOUT_MS;
	pc->body_timeout_ms = c->body_timeout_ms != 0 ? c->body_timeout_ms :
	    PROXY_DEFAULT_BODY_TIMEOUT_MS;
	pc->keepalive_timeout_ms = (uint64_t)(c->keepalive_timeout_secs != 0 ?
	    c->keepalive_timeout_secs : PROXY_DEFAULT_KEEPALIVE_SECS) * 1000;
	pc->upstream_timeout_secs = c->upstream_timeout_secs;
	free(pc->ui_dir);
	pc->ui_dir = xstrdup(c->ui_dir != NULL ? c->ui_dir :
	    PROXY_DEFAULT_UI_DIR);
	free(pc->javascript_dir);
	pc->javascript_dir = xstrdup(c->javascript_dir != NULL ?
	    c->javascript_dir : PROXY_DEFAULT_JAVASCRIPT_DIR);
	registry_strv_free(pc->api_keys, pc->n_api_keys);
	pc->api_keys = xcalloc(c->api_keys.n + 1, sizeof(char *));
	for (i = 0; i < c->api_keys.n; i++)
		pc->api_keys[i] = xstrdup(c->api_keys.v[i]);
	pc->n_api_keys = c->api_keys.n;
	free(pc->admin_token);
	pc->admin_token = c->admin_token != NULL && *c->admin_token != '\0' ?
	    xstrdup(c->admin_token) : NULL;
	pc->allow_unauthenticated = c->allow_unauthenticated;
}

void
registry_init(void)
{
	struct proto_config	none;

	memset(&none, 0, sizeof(none));
	registry_apply_limits(&none);
}

void
registry_apply_config(const struct proto_config *c)
{
	struct pmodel			*pm;
	const struct proto_model_info	*mi;
	size_t				 i, j;

	registry_apply_limits(c);
	TAILQ_FOREACH(pm, &proxy_models, entry)
		pm->configured = false;
	for (i = 0; i < c->n_models; i++) {
		mi = &c->models[i];
		if ((pm = registry_find(mi->name)) == NULL) {
			pm = xcalloc(1, sizeof(*pm));
			pm->name = xstrdup(mi->name);
			queue_init(&pm->queue);
			TAILQ_INSERT_TAIL(&proxy_models, pm, entry);
		}
		pm->configured = true;
		pm->cfg_port = mi->port;
		free(pm->served);
		pm->served = registry_strdup_or_null(mi->served);
		pm->max_upstreams = mi->max_concurrency != 0 &&
		    mi->max_concurrency < PROXY_MAX_UPSTREAM_PER_MODEL ?
		    mi->max_concurrency : PROXY_MAX_UPSTREAM_PER_MODEL;
		registry_free_aliases(pm);
		pm->aliases = xcalloc(mi->aliases.n + 1, sizeof(char *));
		for (j = 0; j < mi->aliases.n; j++)
			pm->aliases[j] = xstrdup(mi->aliases.v[j]);
		pm->n_aliases = mi->aliases.n;
	}
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured)
			pm->ready = false;
	}
	proxy_conf.have = true;
	log_info("configuration received generation=%llu models=%zu",
	    (unsigned long long)c->generation, c->n_models);
}

/*
 * The model can be sent requests at port (generation). Found unreachable
 * there, it stays so until a ready message, or a state push that moves it.
 */
static void
registry_set_ready(struct pmodel *pm, uint16_t port, uint64_t generation,
    bool ready_msg)
{
	bool	changed = !pm->ready || pm->port != port ||
		    pm->generation != generation;

	if (ready_msg || pm->port != port || pm->generation != generation) {
		changed = changed || pm->unreachable;
		pm->unreachable = false;
	}
	pm->known = true;
	pm->state = PROTO_MS_READY;
	pm->ready = port != 0;
	pm->port = port;
	pm->generation = generation;
	pm->draining = false;
	pm->drain_pending = false;
	if (changed)
		log_info("model ready model=%s port=%u generation=%llu "
		    "queued=%u", pm->name, port, (unsigned long long)generation,
		    queue_len(&pm->queue));
}

/* In manual mode, is this model's queue refused? */
bool
registry_refused(const struct pmodel *pm)
{
	if (!registry_is_manual)
		return (false);
	return (registry_pin != NULL ? strcmp(registry_pin, pm->name) != 0 :
	    !pm->ready);
}

void
registry_apply_state(const struct proto_state *st)
{
	const struct proto_model_status	*ms;
	struct pmodel			*pm;
	size_t				 i;

	registry_is_manual = st->manual;
	free(registry_pin);
	registry_pin = registry_strdup_or_null(st->pinned);
	for (i = 0; i < st->n_models; i++) {
		ms = &st->models[i];
		if ((pm = registry_find(ms->name)) == NULL)
			continue;
		free(pm->reason);
		pm->reason = registry_strdup_or_null(ms->reason);
		switch (ms->state) {
		case PROTO_MS_READY:
			registry_set_ready(pm, ms->port, ms->generation, false);
			break;
		case PROTO_MS_DRAINING:
			pm->known = true;
			pm->state = ms->state;
			pm->draining = true;
			break;
		default:
			pm->known = true;
			pm->state = ms->state;
			pm->ready = false;
			pm->draining = false;
			pm->unreachable = false;
			break;
		}
	}
}

struct pmodel *
registry_ready(const char *name, uint16_t port, uint64_t generation)
{
	struct pmodel	*pm;

	if ((pm = registry_find(name)) == NULL) {
		log_warnx("ready for an unknown model model=%s", name);
		return (NULL);
	}
	registry_set_ready(pm, port, generation, true);
	return (pm);
}

struct pmodel *
registry_failed(const char *name, const char *reason)
{
	struct pmodel	*pm;

	if ((pm = registry_find(name)) == NULL)
		return (NULL);
	pm->known = true;
	pm->ready = false;
	pm->draining = false;
	pm->unreachable = false;
	pm->state = PROTO_MS_FAILED;
	free(pm->reason);
	pm->reason = xstrdup(reason != NULL ? reason : "unknown");
	log_warnx("model failed model=%s queued=%u reason=\"%s\"", pm->name,
	    queue_len(&pm->queue), pm->reason);
	return (pm);
}

void
registry_drain(const char *name, uint32_t drain_id)
{
	struct pmodel	*pm;

	if ((pm = registry_find(name)) == NULL) {
		log_warnx("drain for an unknown model model=%s", name);
		return;
	}
	pm->draining = true;
	pm->drain_pending = true;
	pm->drain_id = drain_id;
	log_info("draining model=%s in_flight=%u", pm->name, pm->in_flight);
	registry_check_drained(pm);
}

void
registry_unreachable(struct pmodel *pm, uint16_t port, uint64_t generation)
{
	if (!pm->ready || pm->port != port || pm->generation != generation ||
	    pm->unreachable)
		return;
	pm->unreachable = true;
	log_warnx("model unreachable, holding its requests until it is ready "
	    "model=%s port=%u generation=%llu", pm->name, port,
	    (unsigned long long)generation);
	link_send_unreachable(pm);
}

void
registry_check_drained(struct pmodel *pm)
{
	if (pm->drain_pending && pm->in_flight == 0) {
		pm->drain_pending = false;
		link_send_drained(pm);
	}
}

/* The supervisor is gone: stop draining, forget pending drains. */
void
registry_supervisor_lost(void)
{
	struct pmodel	*pm;

	TAILQ_FOREACH(pm, &proxy_models, entry) {
		pm->drain_pending = false;
		pm->draining = false;
	}
}

bool
registry_manual(void)
{
	return (registry_is_manual);
}

const char *
registry_pinned(void)
{
	return (registry_pin);
}

void
registry_free_all(void)
{
	struct pmodel	*pm;

	while ((pm = TAILQ_FIRST(&proxy_models)) != NULL) {
		TAILQ_REMOVE(&proxy_models, pm, entry);
		if (pm->timer != NULL)
			event_free(pm->timer);
		registry_free_aliases(pm);
		free(pm->served);
		free(pm->reason);
		free(pm->name);
		free(pm);
	}
	free(registry_pin);
	registry_pin = NULL;
	registry_strv_free(proxy_conf.api_keys, proxy_conf.n_api_keys);
	free(proxy_conf.listen_address);
	free(proxy_conf.admin_address);
	free(proxy_conf.ui_dir);
	free(proxy_conf.javascript_dir);
	free(proxy_conf.admin_token);
	memset(&proxy_conf, 0, sizeof(proxy_conf));
}
