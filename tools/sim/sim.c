/*
 * sim.c -- the discrete-event engine of llmux-sim.
 *
 * Time is integer milliseconds. Events (service done, eviction done, wake
 * done, the switcher's timer) sit in a binary heap ordered by time, then by
 * insertion; arrivals come from the sorted trace and go after any heap
 * event due at the same millisecond. The simulated proxy and engine answer
 * the switcher's ops, some of them synchronously (a drain with nothing in
 * flight), as a real engine may.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/switcher/policy.h"
#include "supervisord/switcher/switcher.h"
#include "xmalloc.h"

#include "sim.h"

enum sim_ev {
	SIM_SERVED,
	SIM_EVICTED,
	SIM_WOKEN,
	SIM_TIMER,
};

struct sim_event {
	int64_t		 at;
	uint64_t	 seq;
	enum sim_ev	 type;
	int		 model;
	uint64_t	 gen;
};

/*
 * A model's requests, in arrival order: [0, arrived) have arrived,
 * [0, dispatched) were sent to the model, [0, started) began service,
 * [0, done) finished.
 */
struct sim_model {
	size_t		*req;		/* indexes into the trace */
	size_t		 n;
	size_t		 arrived;
	size_t		 dispatched;
	size_t		 started;
	size_t		 done;
	bool		 ready;
	bool		 draining;
};

struct sim {
	const struct trace	*t;
	const struct sim_options *o;
	struct config		 cfg;
	struct model_config	*mc;
	struct switcher		*sw;
	struct sim_model	*m;

	struct sim_event	*heap;
	size_t			 heap_len, heap_cap;
	uint64_t		 seq;
	uint64_t		 timer_gen;

	int64_t			 now;
	int64_t			 evict_paid;	/* since the last wake */
	size_t			 next_arrival;
	size_t			 finished;
	double			 wait_sum;
	int64_t			 wait_max;
	char			*error;
	struct sim_result	*r;
};

void
sim_options_default(struct sim_options *o)
{
	memset(o, 0, sizeof(*o));
	o->policy = POLICY_FIFO;
	o->switch_cost_ms = 10000;
	o->service_ms = 500;
	o->max_wait_secs = 15;
	o->min_active_secs = 5;
	o->concurrency = 1;
	o->fraction = 0.9;
}

/* ---- the event heap ---------------------------------------------------- */

static bool
sim_before(const struct sim_event *a, const struct sim_event *b)
{
	if (a->at != b->at)
		return (a->at < b->at);
	return (a->seq < b->seq);
}

static void
sim_push(struct sim *s, enum sim_ev type, int64_t at, int model, uint64_t gen)
{
	size_t	i;

	if (s->heap_len == s->heap_cap) {
		s->heap_cap = s->heap_cap == 0 ? 64 : s->heap_cap * 2;
		s->heap = xreallocarray(s->heap, s->heap_cap, sizeof(*s->heap));
	}
	i = s->heap_len++;
	s->heap[i] = (struct sim_event){ at, s->seq++, type, model, gen };
	while (i > 0 && sim_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
		struct sim_event tmp = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static struct sim_event
sim_pop(struct sim *s)
{
	struct sim_event	top = s->heap[0];
	size_t			i = 0;

	s->heap[0] = s->heap[--s->heap_len];
	for (;;) {
		size_t	l = 2 * i + 1, r = l + 1, min = i;

		if (l < s->heap_len && sim_before(&s->heap[l], &s->heap[min]))
			min = l;
		if (r < s->heap_len && sim_before(&s->heap[r], &s->heap[min]))
			min = r;
		if (min == i)
			break;
		struct sim_event tmp = s->heap[i];
		s->heap[i] = s->heap[min];
		s->heap[min] = tmp;
		i = min;
	}
	return (top);
}

/* ---- the simulated proxy and model servers ------------------------------ */

static void
sim_fail(struct sim *s, const char *why)
{
	if (s->error == NULL)
		s->error = xstrdup(why);
}

/* Tell the switcher what the proxy would: queued, in flight, oldest wait. */
static void
sim_report(struct sim *s, int i)
{
	struct sim_model	*m = &s->m[i];
	uint32_t		 queued = (uint32_t)(m->arrived - m->dispatched);
	uint32_t		 in_flight = (uint32_t)(m->dispatched - m->done);
	int64_t			 wait = 0;

	if (queued > 0)
		wait = s->now - s->t->req[m->req[m->dispatched]].arrival_ms;
	switcher_demand(s->sw, i, queued, in_flight, wait, s->now);
}

/* Start service for as many dispatched requests as the model has slots. */
static void
sim_serve(struct sim *s, int i)
{
	struct sim_model	*m = &s->m[i];

	while (m->started < m->dispatched &&
	    m->started - m->done < s->o->concurrency) {
		int64_t wait = s->now - s->t->req[m->req[m->started]].arrival_ms;

		s->wait_sum += (double)wait;
		if (wait > s->wait_max)
			s->wait_max = wait;
		m->started++;
		sim_push(s, SIM_SERVED, s->now + s->o->service_ms, i, 0);
	}
}

/* A ready model is sent everything queued for it. */
static void
sim_dispatch(struct sim *s, int i)
{
	struct sim_model	*m = &s->m[i];

	if (!m->ready)
		return;
	m->dispatched = m->arrived;
	sim_serve(s, i);
}

static void
sim_op_drain(void *arg, int i)
{
	struct sim	*s = arg;

	s->m[i].ready = false;
	s->m[i].draining = true;
	if (s->m[i].dispatched == s->m[i].done)
		switcher_drained(s->sw, i, s->now);	/* synchronously */
}

static void
sim_op_evict(void *arg, int i, struct eviction e)
{
	struct sim	*s = arg;
	int64_t		 cost = llround((double)s->o->switch_cost_ms *
			    SIM_EVICT_SHARE);

	s->m[i].ready = false;
	s->evict_paid += cost;
	sim_push(s, SIM_EVICTED, s->now + cost, i, 0);
}

static void
sim_op_wake(void *arg, int i)
{
	struct sim	*s = arg;
	int64_t		 cost = s->o->switch_cost_ms - s->evict_paid;

	if (cost < 0)
		cost = 0;
	s->evict_paid = 0;
	sim_push(s, SIM_WOKEN, s->now + cost, i, 0);
}

static void
sim_op_ready(void *arg, int i)
{
	struct sim	*s = arg;

	s->m[i].ready = true;
	s->m[i].draining = false;
	sim_dispatch(s, i);
	sim_report(s, i);
}

static void
sim_op_failed(void *arg, int i, const char *reason)
{
	struct sim	*s = arg;
	char		*why;

	xasprintf(&why, "switch to %s failed: %s", s->t->models[i], reason);
	sim_fail(s, why);
	free(why);
}

static void
sim_op_record(void *arg, const struct switch_record *r)
{
	struct sim	*s = arg;

	if (r->ok && r->to >= 0)
		s->r->switches++;
}

static void
sim_op_set_timer(void *arg, int64_t at)
{
	struct sim	*s = arg;

	s->timer_gen++;
	if (at != SWITCHER_NEVER)
		sim_push(s, SIM_TIMER, at > s->now ? at : s->now, -1,
		    s->timer_gen);
}

static const struct switcher_ops sim_ops = {
	.drain = sim_op_drain,
	.evict = sim_op_evict,
	.wake = sim_op_wake,
	.ready = sim_op_ready,
	.failed = sim_op_failed,
	.record = sim_op_record,
	.set_timer = sim_op_set_timer,
};

/* ---- set-up, accounting and the loop ------------------------------------ */

static void
sim_config(struct sim *s)
{
	const struct sim_options *o = s->o;
	uint32_t	startup = 900;	/* the config default */

	if (o->switch_cost_ms / 1000 * 10 > startup)
		startup = (uint32_t)(o->switch_cost_ms / 1000 * 10);
	memset(&s->cfg, 0, sizeof(s->cfg));
	s->mc = xcalloc(s->t->n_models, sizeof(*s->mc));
	for (size_t i = 0; i < s->t->n_models; i++) {
		s->mc[i].name = s->t->models[i];
		s->mc[i].gpu_memory_utilization = o->fraction;
		s->mc[i].tensor_parallel_size = 1;
	}
	s->cfg.models = s->mc;
	s->cfg.n_models = s->t->n_models;
	policy_config_default(&s->cfg.policy);
	s->cfg.policy.type = o->policy;
	s->cfg.policy.max_wait_secs = o->max_wait_secs;
	s->cfg.policy.min_active_secs = o->min_active_secs;
	s->cfg.startup_timeout_secs = startup;
	s->cfg.gpu_count = 1;
}

/* Credit the time since the last event to what the GPU was doing. */
static void
sim_account(struct sim *s, int64_t to)
{
	int64_t	dt = to - s->now;
	bool	serving = false, waiting = false;

	if (dt <= 0)
		return;
	for (size_t i = 0; i < s->t->n_models; i++) {
		if (s->m[i].started > s->m[i].done)
			serving = true;
		if (s->m[i].arrived > s->m[i].dispatched)
			waiting = true;
	}
	if (serving)
		s->r->serving_ms += dt;
	else if (switcher_switches(s->sw, NULL, 0) > 0)
		s->r->switching_ms += dt;
	else if (waiting)
		s->r->held_ms += dt;
	else
		s->r->idle_ms += dt;
}

static void
sim_handle(struct sim *s, const struct sim_event *ev)
{
	struct sim_model	*m;

	switch (ev->type) {
	case SIM_SERVED:
		m = &s->m[ev->model];
		m->done++;
		s->finished++;
		sim_serve(s, ev->model);
		if (m->draining && m->dispatched == m->done)
			switcher_drained(s->sw, ev->model, s->now);
		sim_report(s, ev->model);
		break;
	case SIM_EVICTED:
		switcher_evicted(s->sw, ev->model, true, NULL, s->now);
		break;
	case SIM_WOKEN:
		switcher_woken(s->sw, ev->model, true, NULL, s->now);
		break;
	case SIM_TIMER:
		if (ev->gen == s->timer_gen)
			switcher_timer(s->sw, s->now);
		break;
	}
}

static void
sim_arrive(struct sim *s)
{
	const struct trace_request	*r = &s->t->req[s->next_arrival++];
	struct sim_model		*m = &s->m[r->model];

	m->arrived++;
	sim_dispatch(s, r->model);
	sim_report(s, r->model);
}

int
sim_run(const struct trace *t, const struct sim_options *o,
    struct sim_result *r, char **cause)
{
	struct sim		 s;
	struct switcher_params	 params;
	size_t			*fill;
	int64_t			 limit;
	int			 rc = 0;

	memset(&s, 0, sizeof(s));
	memset(r, 0, sizeof(*r));
	*cause = NULL;
	s.t = t;
	s.o = o;
	s.r = r;
	sim_config(&s);
	s.m = xcalloc(t->n_models, sizeof(*s.m));
	for (size_t i = 0; i < t->n; i++)
		s.m[t->req[i].model].n++;
	for (size_t i = 0; i < t->n_models; i++)
		s.m[i].req = xcalloc(s.m[i].n > 0 ? s.m[i].n : 1,
		    sizeof(*s.m[i].req));
	fill = xcalloc(t->n_models, sizeof(*fill));
	for (size_t i = 0; i < t->n; i++) {
		int mi = t->req[i].model;

		s.m[mi].req[fill[mi]++] = i;
	}
	free(fill);

	switcher_params_default(&params);
	params.quiet = true;
	params.n_gpus = 1;
	params.wake_timeout_ms = (int64_t)s.cfg.startup_timeout_secs * 1000;
	s.sw = switcher_new(&s.cfg, &sim_ops, &s, &params);
	if (s.sw == NULL) {
		xasprintf(cause, "cannot set up the switcher");
		rc = -1;
		goto out;
	}

	/* A run that goes on this long without finishing is stuck. */
	limit = t->req[t->n - 1].arrival_ms + 3600 * 1000 +
	    (int64_t)t->n * (o->service_ms + o->switch_cost_ms +
	    (int64_t)o->max_wait_secs * 1000 + 1000);

	s.now = 0;
	switcher_start(s.sw, s.now);
	while (s.error == NULL && (s.heap_len > 0 || s.next_arrival < t->n)) {
		bool arrival = s.next_arrival < t->n && (s.heap_len == 0 ||
		    t->req[s.next_arrival].arrival_ms < s.heap[0].at);
		int64_t at = arrival ? t->req[s.next_arrival].arrival_ms :
		    s.heap[0].at;

		if (s.finished == t->n && !arrival)
			break;
		if (at > limit) {
			xasprintf(cause, "simulation stalled: %zu of %zu "
			    "requests served", s.finished, t->n);
			rc = -1;
			goto out;
		}
		sim_account(&s, at);
		s.now = at;
		if (arrival)
			sim_arrive(&s);
		else {
			struct sim_event ev = sim_pop(&s);

			sim_handle(&s, &ev);
		}
	}
	if (s.error != NULL) {
		*cause = s.error;
		s.error = NULL;
		rc = -1;
		goto out;
	}
	if (s.finished != t->n) {
		xasprintf(cause, "simulation stalled: %zu of %zu requests "
		    "served", s.finished, t->n);
		rc = -1;
		goto out;
	}

	r->requests = t->n;
	r->switch_time = (double)(r->switching_ms + r->held_ms) / 1000.0;
	r->wall_time = (double)r->serving_ms / 1000.0 + r->switch_time;
	r->gpu_fraction = r->wall_time > 0.0 ?
	    1.0 - r->switch_time / r->wall_time : 1.0;
	r->mean_wait = s.wait_sum / (double)t->n / 1000.0;
	r->max_wait = (double)s.wait_max / 1000.0;
out:
	switcher_free(s.sw);
	for (size_t i = 0; i < t->n_models; i++)
		free(s.m[i].req);
	free(s.m);
	free(s.mc);
	free(s.heap);
	free(s.error);
	return (rc);
}
