/*
 * switching.c -- the switcher (switcher.h) driving the engine.
 *
 * The switcher is made from the config at start and told what the engine
 * already has (models re-adopted from the journal, the mode and pin, the
 * proxy); then it is fed the proxy's demand and drains, the engine's
 * completions, the deaths of model processes, crash restarts and what the
 * engine did outside it, each stamped with clock_ms(). Its operations
 * (drain, evict, wake, warm-up, ready, failed, records, the timer) are
 * carried out in switching_ops.c; what status, the journal and the proxy
 * read of it is here too.
 *
 * A reload replaces the config the switcher was made from (it keeps
 * pointers into it). The switcher is rebuilt from the new config as soon
 * as no switch is past its cooldown and no model is between two states (a
 * switch in its cooldown has done nothing yet: it is decided again), with
 * every model's state, its eviction override, the demand, the mode, the pin
 * and the cost estimates carried over; the old config lives until then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"
#include "switching_int.h"

static void	switching_rebuild_cb(evutil_socket_t, short, void *);

int64_t
switching_now(void)
{
	return (clock_ms());
}

int
switching_index(struct supervisor *sup, const struct model *m)
{
	if (sup->switcher == NULL || m->removed)
		return (-1);
	return (switcher_model_index(sup->switcher, m->name));
}

/*
 * For completions: a model removed by a reload is still in the switcher
 * until it is rebuilt, and the switch that involves it must end.
 */
int
switching_index_any(struct supervisor *sup, const struct model *m)
{
	if (sup->switcher == NULL)
		return (-1);
	return (switcher_model_index(sup->switcher, m->name));
}

static struct model *
switching_find_any(struct supervisor *sup, const char *name)
{
	struct model	*m, *removed = NULL;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if (strcmp(m->name, name) != 0)
			continue;
		if (!m->removed)
			return (m);
		removed = m;
	}
	return (removed);
}

struct model *
switching_model(struct supervisor *sup, int i)
{
	const char	*name;

	if (sup->switcher == NULL ||
	    (name = switcher_model_name(sup->switcher, i)) == NULL)
		return (NULL);
	return (model_find(sup, name));
}

void
switching_drained(struct client *c, const char *name, uint32_t drain_id)
{
	struct supervisor	*sup = c->sup;
	struct model		*m = switching_find_any(sup, name);
	int			 i;

	/* Only the answer a proxy owes counts, once. */
	if (!proxies_drain_answered(c, name, drain_id) || m == NULL ||
	    m->drain_waiting == 0 || drain_id != m->drain_id) {
		log_debug("stale drained model=%s drain_id=%u", name,
		    drain_id);
		return;
	}
	if (--m->drain_waiting > 0)
		return;
	log_debug("drained model=%s drain_id=%u", name, drain_id);
	if ((i = switching_index_any(sup, m)) >= 0)
		switcher_drained(sup->switcher, i, switching_now());
}

/* A reload is waiting: can the switcher be rebuilt now? */
static bool
switching_quiescent(struct supervisor *sup)
{
	struct switcher_switch_status	st[SWITCHING_MAX_SWITCHES];
	size_t				n;

	n = switcher_switches(sup->switcher, st, SWITCHING_MAX_SWITCHES);
	if (n > SWITCHING_MAX_SWITCHES)
		return (false);
	for (size_t j = 0; j < n; j++) {
		if (st[j].phase != SWP_COOLDOWN)
			return (false);
	}
	for (size_t i = 0; i < switcher_n_models(sup->switcher); i++) {
		switch (switcher_model_state(sup->switcher, (int)i)) {
		case SWM_STOPPED:
		case SWM_SLEEPING:
		case SWM_ACTIVE:
			break;
		default:
			return (false);
		}
	}
	return (true);
}

/* From the loop: the switcher may be the caller (state_changed). */
void
switching_schedule_rebuild(struct supervisor *sup)
{
	if (sup->ev_rebuild == NULL)
		sup->ev_rebuild = event_new(sup->base, -1, 0,
		    switching_rebuild_cb, sup);
	event_active(sup->ev_rebuild, EV_TIMEOUT, 0);
}
/* ---- inputs -------------------------------------------------------------- */

/* The one time the switcher asked for (switching_ops.c sets it). */
static void
switching_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;

	if (sup->switcher != NULL)
		switcher_timer(sup->switcher, switching_now());
}

/* Keep a sample of the completed count at most once a second. */
static void
switching_done_sample(struct model *m, uint64_t done, int64_t now)
{
	size_t	 cap = sizeof(m->done_samples) / sizeof(m->done_samples[0]);
	struct done_sample *last;

	/* A new proxy counts from 0 again. */
	if (done < m->done)
		m->n_done_samples = 0;
	m->done = done;
	last = m->n_done_samples > 0 ?
	    &m->done_samples[m->n_done_samples - 1] : NULL;
	if (last != NULL && now - last->ms < 1000)
		return;
	if (m->n_done_samples == cap) {
		memmove(&m->done_samples[0], &m->done_samples[1],
		    (cap - 1) * sizeof(m->done_samples[0]));
		m->n_done_samples--;
	}
	m->done_samples[m->n_done_samples].ms = now;
	m->done_samples[m->n_done_samples].done = done;
	m->n_done_samples++;
}

/*
 * Requests completed per second over the last SWITCHING_RATE_WINDOW_MS:
 * from the oldest sample in that window to now (0 when none is).
 */
double
switching_requests_per_s(const struct model *m, int64_t now)
{
	const struct done_sample *s = NULL;

	for (unsigned i = 0; i < m->n_done_samples; i++) {
		if (now - m->done_samples[i].ms <= SWITCHING_RATE_WINDOW_MS) {
			s = &m->done_samples[i];
			break;
		}
	}
	if (s == NULL || now - s->ms < 1000 || m->done < s->done)
		return (0);
	return ((double)(m->done - s->done) * 1000.0 / (double)(now - s->ms));
}

void
switching_demand(struct client *c, struct model *m, uint32_t queued,
    uint32_t in_flight, uint32_t oldest_ms, uint64_t done)
{
	struct supervisor	*sup = m->sup;
	int			 i;

	proxies_demand(c, m, queued, in_flight, oldest_ms);
	m->demand_ms = switching_now();
	switching_done_sample(m, done, m->demand_ms);
	events_queue(m);
	if ((i = switching_index(sup, m)) >= 0)
		switcher_demand(sup->switcher, i, m->queued, m->in_flight,
		    m->oldest_ms, switching_now());
}

/*
 * A proxy connection is gone (no longer among the peers): its counts
 * leave each model's demand, and each drain it owed is answered for it,
 * at once, whether or not another proxy remains.
 */
void
switching_proxy_gone(struct client *c)
{
	struct supervisor	*sup = c->sup;
	struct model		*m;
	uint32_t		 queued, in_flight;
	bool			 owed;
	int			 i;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if (!proxies_forget(c, m, &owed))
			continue;
		queued = m->queued;
		in_flight = m->in_flight;
		proxies_total(sup, m);
		if (m->queued != queued || m->in_flight != in_flight) {
			events_queue(m);
			if ((i = switching_index(sup, m)) >= 0)
				switcher_demand(sup->switcher, i, m->queued,
				    m->in_flight, m->oldest_ms,
				    switching_now());
		}
		if (!owed || m->drain_waiting == 0 || --m->drain_waiting > 0)
			continue;
		log_info("drained model=%s drain_id=%u: the proxy that had "
		    "not answered left", m->name, m->drain_id);
		if ((i = switching_index_any(sup, m)) >= 0)
			switcher_drained(sup->switcher, i, switching_now());
	}
}

/* A proxy came or went: the switcher only cares whether there is one. */
void
switching_proxy(struct supervisor *sup)
{
	struct model	*m;
	bool		 up = server_count_role(sup, PROTO_ROLE_PROXY) > 0;
	int		 i;

	if (sup->switcher == NULL)
		return;
	switcher_proxy(sup->switcher, up, switching_now());
	if (up)
		return;
	/* Its drains are answered: nothing of it is in flight any more. */
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->drain_waiting == 0)
			continue;
		m->drain_waiting = 0;
		if ((i = switching_index(sup, m)) >= 0)
			switcher_drained(sup->switcher, i, switching_now());
	}
}

void
switching_died(struct model *m, const char *reason)
{
	struct supervisor	*sup = m->sup;
	int			 i;

	m->draining = false;
	m->warming = false;
	infer_cancel(m->warm_call);
	m->warm_call = NULL;
	if ((i = switching_index_any(sup, m)) >= 0)
		switcher_died(sup->switcher, i, reason, switching_now());
}

void
switching_restart(struct model *m)
{
	int	i = switching_index(m->sup, m);

	if (i < 0) {
		m->restarting = false;
		return;
	}
	log_info("asking for a restart model=%s", m->name);
	switcher_restart(m->sup->switcher, i, switching_now());
}

void
switching_resync(struct model *m)
{
	struct supervisor	*sup = m->sup;
	struct eviction		 ev = m->sleeping;
	enum switcher_mstate	 st;
	int			 i;

	if ((i = switching_index(sup, m)) < 0)
		return;
	switch (m->pstate) {
	case MODEL_RUNNING:
	case MODEL_STARTING:
		st = m->proc != NULL ? SWM_ACTIVE : SWM_STOPPED;
		break;
	case MODEL_SLEEPING:
		st = m->proc != NULL ? SWM_SLEEPING : SWM_STOPPED;
		break;
	case MODEL_CHECKPOINTED:
		st = SWM_SLEEPING;
		ev.process = PROCESS_CHECKPOINT;
		break;
	default:
		st = SWM_STOPPED;
		break;
	}
	switcher_resync(sup->switcher, i, st, &ev, switching_now());
}

static void
switching_watch_cb(struct model *m, const struct evict_report *r, void *arg)
{
	switching_resync(m);
}

void
switching_watch(struct model *m)
{
	if (evict_wait(m, switching_watch_cb, NULL) != 0)
		switching_resync(m);
}

/* ---- making, rebuilding, freeing ------------------------------------------ */

/* An eviction set by the operator outlives restarts and rebuilds. */
static void
switching_override(struct switcher *sw, int i, const struct model *m)
{
	char	*cause = NULL;

	if (m->has_override &&
	    switcher_cmd_set_eviction(sw, i, m->override,
	    switching_now(), &cause) != 0) {
		log_warnx("eviction override refused model=%s reason=\"%s\"",
		    m->name, cause);
		free(cause);
	}
}

static struct switcher *
switching_new(struct supervisor *sup, bool resumed)
{
	struct switcher_params	 p;
	struct switcher		*sw;

	switcher_params_default(&p);
	p.resumed = resumed;
	/* evict.c's deadlines say more (the answer of /health): first. */
	p.wake_grace_ms = SWITCHING_WAKE_GRACE_MS;
	if ((sw = switcher_new(sup->conf, &switching_ops, sup, &p)) == NULL)
		fatalx("cannot make the switcher (policy %s, %zu models)",
		    config_policy_name(sup->conf->policy.type),
		    sup->conf->n_models);
	return (sw);
}

void
switching_init(struct supervisor *sup)
{
	struct model	*m;
	int		 i, pinned = -1;

	sup->ev_switcher = evtimer_new(sup->base, switching_timer_cb, sup);
	sup->switcher = switching_new(sup, false);
	sup->switcher_conf = sup->conf;
	/* What the engine has: re-adopted processes keep their state. */
	TAILQ_FOREACH(m, &sup->models, entry) {
		if ((i = switching_index(sup, m)) < 0)
			continue;
		switching_override(sup->switcher, i, m);
		switching_resync(m);
		if (evict_busy(m, NULL, NULL))
			switching_watch(m);
	}
	if (sup->journal_pinned != NULL &&
	    (m = model_find(sup, sup->journal_pinned)) != NULL)
		pinned = switching_index(sup, m);
	switcher_restore_mode(sup->switcher, sup->journal_manual ?
	    SWITCHER_MANUAL : SWITCHER_AUTO, pinned);
	free(sup->journal_pinned);
	sup->journal_pinned = NULL;
	switching_proxy(sup);
	log_info("switcher ready policy=%s gpus=%u models=%zu mode=%s",
	    switcher_policy_name(sup->switcher),
	    switcher_n_gpus(sup->switcher),
	    switcher_n_models(sup->switcher),
	    sup->journal_manual ? "manual" : "auto");
	switcher_start(sup->switcher, switching_now());
}

/* Carry the old switcher's knowledge into the new one, by model name. */
static void
switching_carry(struct supervisor *sup, struct switcher *old,
    struct switcher *sw)
{
	const struct cost_table		*ct = switcher_costs(old);
	struct switcher_model_status	 st;
	struct model			*m;
	size_t				 n_old = switcher_n_models(old);
	int				 i, j, jf, jt, pinned = -1;

	TAILQ_FOREACH(m, &sup->models, entry) {
		if ((j = switching_index(sup, m)) < 0)
			continue;
		switching_override(sw, j, m);
		if ((i = switcher_model_index(old, m->name)) < 0)
			switching_resync(m);	/* added by the reload */
		else {
			switcher_model_status(old, i, &st);
			if (st.state == SWM_ACTIVE || st.state == SWM_SLEEPING)
				switcher_resync(sw, j, st.state, &st.slept_with,
				    switching_now());
		}
		/*
		 * The demand, a model's that the old switcher did not know
		 * included (the proxy does not send it again while it stays
		 * the same), its oldest request as old as it is now.
		 */
		if (m->queued > 0 || m->in_flight > 0)
			switcher_demand(sw, j, m->queued, m->in_flight,
			    m->queued > 0 ? m->oldest_ms + (switching_now() -
			    m->demand_ms) : 0, switching_now());
	}
	for (int f = -1; f < (int)n_old; f++) {
		jf = f < 0 ? -1 : switcher_model_index(sw,
		    switcher_model_name(old, f));
		if (f >= 0 && jf < 0)
			continue;
		for (size_t t = 0; t < n_old; t++) {
			jt = switcher_model_index(sw, switcher_model_name(old,
			    (int)t));
			if (jt >= 0 && ct->v[(size_t)(f + 1) * ct->n + t].samples
			    > 0)
				switcher_restore_cost(sw, jf, jt,
				    &ct->v[(size_t)(f + 1) * ct->n + t]);
		}
	}
	if (switcher_pinned(old) >= 0)
		pinned = switcher_model_index(sw, switcher_model_name(old,
		    switcher_pinned(old)));
	switcher_restore_mode(sw, switcher_mode(old), pinned);
}

static void
switching_rebuild_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct switcher		*old = sup->switcher;
	struct config		*oldconf = sup->switcher_conf;

	if (!sup->switcher_stale || old == NULL)
		return;
	if (!switching_quiescent(sup)) {
		log_debug("switcher rebuild waits for the switch in progress");
		return;
	}
	sup->switcher = switching_new(sup, true);
	sup->switcher_conf = sup->conf;
	sup->switcher_stale = false;
	switching_carry(sup, old, sup->switcher);
	switching_proxy(sup);
	free(sup->watches);
	sup->watches = NULL;
	sup->n_watches = 0;
	switcher_free(old);
	if (oldconf != sup->conf)
		config_free(oldconf);
	log_info("switcher rebuilt for the new configuration models=%zu "
	    "policy=%s", switcher_n_models(sup->switcher),
	    switcher_policy_name(sup->switcher));
	switcher_start(sup->switcher, switching_now());
	order_rebuilt(sup);
	server_schedule_state(sup);
}

void
switching_reload(struct supervisor *sup)
{
	if (sup->switcher == NULL)
		return;
	sup->switcher_stale = true;
	if (!switching_quiescent(sup))
		log_info("the switcher takes the new configuration when the "
		    "switch in progress is done");
	switching_schedule_rebuild(sup);
}

void
switching_free(struct supervisor *sup)
{
	switcher_free(sup->switcher);
	sup->switcher = NULL;
	if (sup->switcher_conf != NULL && sup->switcher_conf != sup->conf)
		config_free(sup->switcher_conf);
	sup->switcher_conf = NULL;
	if (sup->ev_switcher != NULL)
		event_free(sup->ev_switcher);
	if (sup->ev_rebuild != NULL)
		event_free(sup->ev_rebuild);
	if (sup->ev_pending != NULL)
		event_free(sup->ev_pending);
	sup->ev_switcher = sup->ev_rebuild = sup->ev_pending = NULL;
	free(sup->watches);
	sup->watches = NULL;
	sup->n_watches = 0;
	free(sup->journal_pinned);
	sup->journal_pinned = NULL;
}

/* ---- what status, the journal and the proxy read --------------------------- */

const char *
switching_state_string(struct supervisor *sup, char *buf, size_t len)
{
	if (sup->switcher == NULL) {
		snprintf(buf, len, "idle");
		return (buf);
	}
	return (switcher_state_string(sup->switcher, buf, len));
}

bool
switching_manual(struct supervisor *sup)
{
	return (sup->switcher != NULL &&
	    switcher_mode(sup->switcher) == SWITCHER_MANUAL);
}

const char *
switching_pinned(struct supervisor *sup)
{
	if (sup->switcher == NULL)
		return (NULL);
	return (switcher_model_name(sup->switcher,
	    switcher_pinned(sup->switcher)));
}

/* The first active model (llmux 0.7's one active model), or NULL. */
struct model *
switching_active(struct supervisor *sup)
{
	uint64_t	mask;

	if (sup->switcher == NULL)
		return (NULL);
	mask = switcher_active(sup->switcher);
	for (int i = 0; i < 64 && mask != 0; i++) {
		if (mask & ((uint64_t)1 << i))
			return (switching_model(sup, i));
	}
	return (NULL);
}

bool
switching_admits(struct supervisor *sup, const struct model *m)
{
	int	i = switching_index(sup, m);

	return (i < 0 || switcher_admits(sup->switcher, i));
}
