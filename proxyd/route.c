/*
 * route.c -- where a complete request goes: /health and /v1/models answered
 * here; a model request forwarded at once when its model is ready (and
 * under its max_concurrency), else queued (bounded, timed) until the
 * supervisor says ready or failed, or a slot frees; a request its model's
 * server could not be reached for, queued again; and requests held while
 * the proxy has no config yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <evhtp/evhtp.h>
#include <yajl/yajl_gen.h>

#include "clock.h"
#include "log.h"
#include "proxy.h"
#include "xmalloc.h"

static struct queue	 route_pending;		/* before config */
static struct event	*route_pending_timer;

/* The request a queue entry belongs to. */
static struct preq *
route_preq(struct qentry *e)
{
	return ((struct preq *)((char *)e - offsetof(struct preq, qe)));
}

static void
route_gen_model(yajl_gen g, const char *id, struct pmodel *pm)
{
	const char	*state;

	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"id", 2);
	yajl_gen_string(g, (const unsigned char *)id, strlen(id));
	yajl_gen_string(g, (const unsigned char *)"object", 6);
	yajl_gen_string(g, (const unsigned char *)"model", 5);
	yajl_gen_string(g, (const unsigned char *)"created", 7);
	yajl_gen_integer(g, 0);
	yajl_gen_string(g, (const unsigned char *)"owned_by", 8);
	yajl_gen_string(g, (const unsigned char *)"llmux", 5);
	if (strcmp(id, pm->name) != 0) {
		yajl_gen_string(g, (const unsigned char *)"alias_of", 8);
		yajl_gen_string(g, (const unsigned char *)pm->name,
		    strlen(pm->name));
	}
	state = pm->known ? proto_model_state_name(pm->state) : "unknown";
	yajl_gen_string(g, (const unsigned char *)"state", 5);
	yajl_gen_string(g, (const unsigned char *)state, strlen(state));
	yajl_gen_map_close(g);
}

/* GET /v1/models: every configured model (and alias) with its state. */
void
route_models(struct preq *pr)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 len, i;
	struct pmodel		*pm;

	g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"object", 6);
	yajl_gen_string(g, (const unsigned char *)"list", 4);
	yajl_gen_string(g, (const unsigned char *)"data", 4);
	yajl_gen_array_open(g);
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured)
			continue;
		route_gen_model(g, pm->name, pm);
		for (i = 0; i < pm->n_aliases; i++)
			route_gen_model(g, pm->aliases[i], pm);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &out, &len);
	preq_reply_json(pr, 200, out, len);
	yajl_gen_free(g);
}

void
route_model_one(struct preq *pr)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 len;
	const char		*id = pr->req->uri->path->full + 11;
	struct pmodel		*pm;

	if (!proxy_conf.have) {
		preq_error(pr, 503, REJ_UNAVAILABLE, PROXY_RETRY_AFTER_SECS,
		    "the proxy has no configuration yet");
		return;
	}
	if ((pm = registry_resolve(id)) == NULL) {
		preq_error(pr, 404, REJ_MODEL_NOT_FOUND,
		    0, "The model `%s` does not exist.", id);
		return;
	}
	g = yajl_gen_alloc(NULL);
	route_gen_model(g, id, pm);
	yajl_gen_get_buf(g, &out, &len);
	preq_reply_json(pr, 200, out, len);
	yajl_gen_free(g);
}

void
route_health(struct preq *pr)
{
	char	buf[256];
	int	len;

	len = snprintf(buf, sizeof(buf), "{\"status\":\"ok\",\"configured\":%s,"
	    "\"supervisor\":%s,\"waiting_for_config\":%u}\n",
	    proxy_conf.have ? "true" : "false",
	    link_connected() ? "true" : "false",
	    queue_len(&route_pending));
	preq_reply_json(pr, 200, (const unsigned char *)buf, (size_t)len);
}

/* May requests for this model be sent to it now? */
static bool
route_dispatchable(struct pmodel *pm)
{
	return (pm->ready && !pm->draining && !pm->unreachable &&
	    pm->upstreams < pm->max_upstreams);
}

/* Forward a request whose model is ready. */
static void
route_forward(struct preq *pr)
{
	struct pmodel	*pm = pr->model;
	int64_t		 now = clock_ms();

	if (!pr->waited)
		pr->qe.t_enq_ms = now;	/* its place, if it comes back */
	preq_mark_upstream(pr);
	pm->in_flight++;
	/* Counted once, when first sent: not again when sent once more. */
	if (!pr->resent) {
		pm->metrics.requests[pr->waited ? 1 : 0]++;
		if (pr->waited)
			metrics_observe_wait(&pm->metrics,
			    (double)(now - pr->qe.t_enq_ms) / 1000.0);
	}
	upstream_start(pr);
	link_demand(pm);
}

/*
 * The model's server could not be reached for a forwarded request (the
 * connection refused, or closed before a byte of it was written): nothing
 * reached the model, so the request is safe to send again. It goes back
 * to its place in the queue (it counts in max_queue_per_model, but is
 * never refused by it), and the model is dispatched no more requests
 * until the supervisor says it is ready again.
 */
static void
route_undelivered(struct preq *pr, uint16_t port, uint64_t generation)
{
	struct pmodel	*pm = pr->model;

	if (preq_uncount(pr))
		pm->in_flight--;
	pr->resent = true;
	registry_unreachable(pm, port, generation);
	if (!pm->configured || proxy_exiting) {
		preq_error(pr, 503, REJ_UNAVAILABLE, PROXY_RETRY_AFTER_SECS,
		    "model `%s` is not reachable and the proxy %s", pm->name,
		    proxy_exiting ? "is shutting down" : "no longer serves it");
		registry_check_drained(pm);
		link_demand(pm);
		return;
	}
	pr->phase = PR_QUEUED;
	pr->waited = true;
	queue_put_back(&pm->queue, &pr->qe);
	route_arm_timer(pm);
	link_demand(pm);
	registry_check_drained(pm);
}

/*
 * A model-override names the model: the body's own model (an alias, or
 * another model altogether) becomes the name the target's server answers
 * to, as llmux 0.7 did; only those bytes of the body change.
 */
static void
route_rewrite(struct preq *pr, struct pmodel *pm)
{
	const char	*name = pm->served != NULL ? pm->served : pm->name;

	if (!pr->override || !pr->has_span)
		return;
	pr->has_span = false;
	if (model_rewrite(pr->req->buffer_in, &pr->span, name) != 0)
		log_warnx("cannot rewrite the model of a request model=%s",
		    pm->name);
}

void
route_request(struct preq *pr)
{
	struct pmodel	*pm;
	const char	*allowed;

	if (pr->gone || pr->phase == PR_DONE)
		return;
	if (!proxy_conf.have) {
		if (proxy_exiting || queue_push(&route_pending, &pr->qe, clock_ms(),
		    PROXY_PRECONFIG_MAX) != 0) {
			preq_error(pr, 503, REJ_UNAVAILABLE,
			    PROXY_RETRY_AFTER_SECS,
			    "the proxy has no configuration yet");
			return;
		}
		pr->phase = PR_WAIT_CONFIG;
		preq_pause(pr);
		if (!evtimer_pending(route_pending_timer, NULL)) {
			struct timeval tv = { PROXY_PRECONFIG_WAIT_MS / 1000,
			    (PROXY_PRECONFIG_WAIT_MS % 1000) * 1000 };
			evtimer_add(route_pending_timer, &tv);
		}
		return;
	}
	if ((pm = registry_resolve(pr->model_name)) == NULL) {
		preq_error(pr, 404, REJ_MODEL_NOT_FOUND, 0,
		    "The model `%s` does not exist.", pr->model_name);
		return;
	}
	pr->model = pm;
	route_rewrite(pr, pm);
	if (registry_manual()) {
		allowed = registry_pinned();
		if ((allowed != NULL && strcmp(allowed, pm->name) != 0) ||
		    (allowed == NULL && !pm->ready)) {
			preq_error(pr, 503, REJ_MANUAL_MODE, 0,
			    "llmux is in manual mode and model `%s` is not the "
			    "%s model", pm->name, allowed != NULL ? "pinned" :
			    "active");
			return;
		}
	}
	if (route_dispatchable(pm) && queue_len(&pm->queue) == 0) {
		route_forward(pr);
		return;
	}
	/* Shutting down: what was accepted and can be served is; not more. */
	if (proxy_exiting) {
		preq_error(pr, 503, REJ_UNAVAILABLE, PROXY_RETRY_AFTER_SECS,
		    "the proxy is shutting down");
		return;
	}
	if (queue_push(&pm->queue, &pr->qe, clock_ms(),
	    proxy_conf.max_queue_per_model) != 0) {
		if (link_connected())
			preq_error(pr, 429, REJ_QUEUE_FULL,
			    PROXY_RETRY_AFTER_SECS, "the queue of model `%s` is "
			    "full (%u requests)", pm->name,
			    proxy_conf.max_queue_per_model);
		else
			preq_error(pr, 503, REJ_UNAVAILABLE,
			    PROXY_RETRY_AFTER_SECS, "model `%s` is not ready "
			    "and the supervisor is unreachable", pm->name);
		return;
	}
	pr->phase = PR_QUEUED;
	pr->waited = true;
	preq_pause(pr);
	route_arm_timer(pm);
	link_demand(pm);
}

void
route_dispatch_queue(struct pmodel *pm)
{
	struct qentry	*e;
	struct preq	*pr;
	bool		 any = false;

	while (route_dispatchable(pm) && (e = queue_pop(&pm->queue)) != NULL) {
		pr = route_preq(e);
		route_forward(pr);
		any = true;
	}
	if (any) {
		route_arm_timer(pm);
		link_demand(pm);
	}
}

void
route_fail_queue(struct pmodel *pm, int status, enum reject_code code,
    int retry_after, const char *msg)
{
	struct qentry	*e;
	struct preq	*pr;

	while ((e = queue_pop(&pm->queue)) != NULL) {
		pr = route_preq(e);
		preq_error(pr, status, code, retry_after, "%s", msg);
	}
	route_arm_timer(pm);
	link_demand(pm);
}

/* The head of a model's queue waited request_timeout_secs: 504 (503). */
static void
route_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct pmodel	*pm = arg;
	struct qentry	*e;
	struct preq	*pr;
	int64_t		 timeout = (int64_t)proxy_conf.request_timeout_secs *
			    1000;

	while ((e = queue_expired(&pm->queue, clock_ms(), timeout)) != NULL) {
		pr = route_preq(e);
		if (link_connected())
			preq_error(pr, 504, REJ_TIMEOUT, 0, "timed out after "
			    "%us waiting for model `%s`",
			    proxy_conf.request_timeout_secs, pm->name);
		else
			preq_error(pr, 503, REJ_UNAVAILABLE,
			    PROXY_RETRY_AFTER_SECS, "model `%s` is not ready "
			    "and the supervisor is unreachable", pm->name);
	}
	route_arm_timer(pm);
	link_demand(pm);
}

void
route_arm_timer(struct pmodel *pm)
{
	if (pm->timer == NULL)
		pm->timer = evtimer_new(proxy_base, route_timer_cb, pm);
	proxy_timer_at(pm->timer, queue_next_deadline(&pm->queue,
	    (int64_t)proxy_conf.request_timeout_secs * 1000));
}

static void
route_pending_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct qentry	*e;
	struct preq	*pr;

	while ((e = queue_expired(&route_pending, clock_ms(),
	    PROXY_PRECONFIG_WAIT_MS)) != NULL) {
		pr = route_preq(e);
		preq_error(pr, 503, REJ_UNAVAILABLE, PROXY_RETRY_AFTER_SECS,
		    "the proxy has no configuration from the supervisor yet");
	}
	proxy_timer_at(route_pending_timer, queue_next_deadline(&route_pending,
	    PROXY_PRECONFIG_WAIT_MS));
}

/* Route requests held since before the first config. */
static void
route_config_arrived(void)
{
	struct qentry	*e;
	struct preq	*pr;

	evtimer_del(route_pending_timer);
	while ((e = queue_pop(&route_pending)) != NULL) {
		pr = route_preq(e);
		pr->phase = PR_READING;
		route_request(pr);
	}
}

void
route_apply_config(bool first)
{
	struct pmodel	*pm;

	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured && queue_len(&pm->queue) > 0)
			route_fail_queue(pm, 404, REJ_MODEL_NOT_FOUND, 0,
			    "the model was removed from the configuration");
	}
	if (first)
		route_config_arrived();
}

void
route_model_ready(struct pmodel *pm)
{
	upstream_pool_sync(pm);
	route_dispatch_queue(pm);
}

void
route_model_failed(struct pmodel *pm)
{
	char	msg[PROTO_MAX_TEXT + 256];

	snprintf(msg, sizeof(msg), "model `%s` failed to start: %s", pm->name,
	    pm->reason != NULL ? pm->reason : "unknown");
	route_fail_queue(pm, 503, REJ_MODEL_FAILED, 0, msg);
}

/*
 * After a state push (or the supervisor's loss): forward the queues of the
 * models that can be served, and in manual mode fail those of the others.
 */
void
route_apply_state(void)
{
	struct pmodel	*pm;

	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (pm->ready)
			route_model_ready(pm);
		if (queue_len(&pm->queue) > 0 && registry_refused(pm))
			route_fail_queue(pm, 503, REJ_MANUAL_MODE, 0,
			    "llmux is in manual mode and this model is not "
			    "the pinned one");
	}
}

/* Take a request out of whatever queue holds it. */
void
route_forget(struct preq *pr)
{
	if (!pr->qe.queued)
		return;
	if (pr->phase == PR_WAIT_CONFIG)
		queue_remove(&route_pending, &pr->qe);
	else if (pr->model != NULL) {
		queue_remove(&pr->model->queue, &pr->qe);
		link_demand(pr->model);
	}
}

/* Shutting down: every waiting request gets 503. */
void
route_fail_all(const char *msg)
{
	struct pmodel	*pm;
	struct qentry	*e;
	struct preq	*pr;

	TAILQ_FOREACH(pm, &proxy_models, entry)
		route_fail_queue(pm, 503, REJ_UNAVAILABLE,
		    PROXY_RETRY_AFTER_SECS, msg);
	while ((e = queue_pop(&route_pending)) != NULL) {
		pr = route_preq(e);
		preq_error(pr, 503, REJ_UNAVAILABLE, PROXY_RETRY_AFTER_SECS,
		    "%s", msg);
	}
}

uint32_t
route_pending_count(void)
{
	return (queue_len(&route_pending));
}

void
route_init(void)
{
	upstream_init(route_dispatch_queue, route_undelivered);
	queue_init(&route_pending);
	route_pending_timer = evtimer_new(proxy_base, route_pending_timer_cb,
	    NULL);
}

void
route_shutdown(void)
{
	if (route_pending_timer != NULL)
		event_free(route_pending_timer);
	route_pending_timer = NULL;
}
