/*
 * supervisor.c -- llmux-supervisord's life: setting up (models, cgroup,
 * the socket, re-adoption from the journal), the event loop, signals,
 * systemd notification and watchdog, the one dispatch per kind of peer,
 * and the wiring: the tables through which the engine (engine_hooks), the
 * GPU module (gpu_hooks) and the server (server_ops) tell the levels
 * above what happened.
 *
 * SIGTERM and SIGINT stop listening, write the journal and exit, leaving
 * the model processes running: the next supervisor re-adopts them (this
 * matches systemd's KillMode=process). `llmuxctl stop --all` unloads them
 * first when that is wanted. SIGHUP reloads the config.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/criu/criu.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"
#include "supervisord/server/server.h"
#include "supervisord/switching/switching.h"
#include "supervisord/control/control.h"

#define SUPERVISOR_LOGCHECK_MS	1000

/* ---- what the engine tells the levels above ---------------------------- */

static void
supervisor_model_changed(struct model *m)
{
	server_schedule_state(m->sup);
	persist_schedule(m->sup);
}

static void
supervisor_model_gone(struct model *m)
{
	switching_result_free(m->last_sleep);
	switching_result_free(m->last_wake);
	logfollow_model_gone(m->sup, m);
}

/* A crash, as an event, then the switcher is told. */
static void
supervisor_model_died(struct model *m, const char *reason)
{
	struct body	*b = body_new();

	body_map(b, 4);
	body_kstr(b, "reason", reason);
	body_kuint(b, "restarts", m->restarts);
	body_str(b, "backoff_ms");
	if (m->restart_delay_ms >= 0)
		body_uint(b, (uint64_t)m->restart_delay_ms);
	else
		body_nil(b);
	body_kuint(b, "crashes", m->crashes);
	events_emit(m->sup, "crash", m->name, b);
	switching_died(m, reason);
}

static void
supervisor_model_restart(struct model *m)
{
	struct body	*b = body_new();

	body_map(b, 1);
	body_kuint(b, "attempt", m->crash_streak);
	events_emit(m->sup, "restart", m->name, b);
	switching_restart(m);
}

static const struct engine_hooks supervisor_engine_hooks = {
	.changed = supervisor_model_changed,
	.died = supervisor_model_died,
	.restart = supervisor_model_restart,
	.gone = supervisor_model_gone,
};

/* ---- what the GPU module tells the levels above -------------------------- */

/*
 * The telemetry changed in what viewers show: a `gpu` event with the
 * figures status gives, each model's GPUs left out where the whole would
 * not fit an event (64 models of long names, each on many GPUs).
 */
static void
supervisor_gpu_changed(struct supervisor *sup)
{
	struct body	*b = body_new();
	size_t		 len;

	gpu_news_body(sup, b, true);
	(void)body_data(b, &len);
	if (len > PROTO_MAX_EVENT_DATA) {
		body_free(b);
		b = body_new();
		gpu_news_body(sup, b, false);
	}
	events_emit(sup, "gpu", NULL, b);
}

static const struct gpu_hooks supervisor_gpu_hooks = {
	.changed = supervisor_gpu_changed,
};

/*
 * systemd's STATUS= line: what is active and what is switching, as
 * `systemctl status` shows it ("active: a; switching b (drain)"), sent
 * when it changes.
 */
static void
supervisor_status_notify(struct supervisor *sup)
{
	static char			 last[512];
	struct switcher_switch_status	 st[16];
	char				 text[512];
	const char			*name;
	size_t				 n, off = 0, len = sizeof(text);
	uint64_t			 active;
	bool				 any = false;

	if (sup->switcher == NULL)
		return;
	text[0] = '\0';
	active = switcher_active(sup->switcher);
	for (int i = 0; i < 64; i++) {
		if (!(active & ((uint64_t)1 << i)) ||
		    (name = switcher_model_name(sup->switcher, i)) == NULL)
			continue;
		off += (size_t)snprintf(text + (off < len ? off : len),
		    off < len ? len - off : 0, "%s%s", any ? ", " : "active: ",
		    name);
		any = true;
	}
	n = switcher_switches(sup->switcher, st, sizeof(st) / sizeof(st[0]));
	for (size_t j = 0; j < n && j < sizeof(st) / sizeof(st[0]); j++) {
		name = st[j].target >= 0 ? switcher_model_name(sup->switcher,
		    st[j].target) : switcher_model_name(sup->switcher,
		    st[j].from);
		off += (size_t)snprintf(text + (off < len ? off : len),
		    off < len ? len - off : 0, "%s%s %s (%s)",
		    any ? "; " : "", st[j].target >= 0 ? "switching" :
		    "sleeping", name != NULL ? name : "?",
		    switching_events_phase_name(st[j].phase));
		any = true;
	}
	if (!any)
		snprintf(text, sizeof(text), "idle");
	if (strcmp(text, last) == 0)
		return;
	snprintf(last, sizeof(last), "%s", text);
	sd_notifyf(0, "STATUS=%s", text);
}

static void
supervisor_state_sent(struct supervisor *sup)
{
	supervisor_status_notify(sup);
}

/* ---- what the server tells the levels above ---------------------------- */

static void	supervisor_dispatch_proxy(struct client *, struct proto_msg *);
static void	supervisor_dispatch_ctl(struct client *, struct proto_msg *);

static const struct server_ops supervisor_server_ops = {
	.dispatch = {
		[PROTO_ROLE_PROXY] = supervisor_dispatch_proxy,
		[PROTO_ROLE_ADMIN] = supervisor_dispatch_ctl,
	},
	.proxy_changed = switching_proxy,
	.proxy_gone = switching_proxy_gone,
	.call_done = control_call_ended,
	.state_sent = supervisor_state_sent,
};

static void
supervisor_shutdown(struct supervisor *sup, const char *why)
{
	struct model	*m;
	size_t		 running = 0;

	if (sup->exiting)
		return;
	sup->exiting = true;
	TAILQ_FOREACH(m, &sup->models, entry)
		if (m->proc != NULL && !m->proc->exited)
			running++;
	log_info("exiting, leaving model processes running for the next "
	    "supervisor reason=%s running=%zu", why, running);
	sd_notify(0, "STOPPING=1");
	server_close(sup);
	event_base_loopexit(sup->base, NULL);
}

static void
supervisor_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct reload_result	 r;

	switch (sig) {
	case SIGTERM:
		supervisor_shutdown(sup, "SIGTERM");
		break;
	case SIGINT:
		supervisor_shutdown(sup, "SIGINT");
		break;
	case SIGHUP:
		sd_notify(0, "RELOADING=1");
		reload_run(sup, &r);
		reload_result_free(&r);
		sd_notify(0, "READY=1");
		break;
	}
}

static void
supervisor_watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

static void
supervisor_logcheck_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct model		*m;

	TAILQ_FOREACH(m, &sup->models, entry)
		if (m->proc != NULL && m->proc->log_file_mode)
			modellog_check_file(sup, m->name);
}

/* Models of the config; a checkpoint_path starts checkpointed (llmux 0.7). */
static void
supervisor_add_models(struct supervisor *sup)
{
	struct model	*m;

	for (size_t i = 0; i < sup->conf->n_models; i++) {
		m = model_new(sup, &sup->conf->models[i]);
		if (m->cfg->checkpoint_path != NULL) {
			m->pstate = MODEL_CHECKPOINTED;
			m->images = xstrdup(m->cfg->checkpoint_path);
			/* How it was put to sleep decides the wake's steps. */
			if (criu_images_eviction(sup->conf, m->images,
			    &m->sleeping) != 0)
				m->sleeping = config_model_eviction(sup->conf,
				    m->cfg);
		}
	}
}

static void
supervisor_timers(struct supervisor *sup)
{
	struct timeval	tv;
	uint64_t	usec = 0;

	tv.tv_sec = SUPERVISOR_LOGCHECK_MS / 1000;
	tv.tv_usec = (SUPERVISOR_LOGCHECK_MS % 1000) * 1000;
	sup->ev_logcheck = event_new(sup->base, -1, EV_PERSIST,
	    supervisor_logcheck_cb, sup);
	event_add(sup->ev_logcheck, &tv);
	liveness_init(sup);
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		usec /= 2;
		tv.tv_sec = (time_t)(usec / 1000000);
		tv.tv_usec = (suseconds_t)(usec % 1000000);
		sup->ev_watchdog = event_new(sup->base, -1, EV_PERSIST,
		    supervisor_watchdog_cb, sup);
		event_add(sup->ev_watchdog, &tv);
		log_info("systemd watchdog enabled interval_ms=%llu",
		    (unsigned long long)(usec / 1000));
	}
}

static void
supervisor_free(struct supervisor *sup)
{
	struct model	*m;
	struct client	*c;
	struct ctl_call	*call;
	int		 i;

	switching_free(sup);
	persist_free(sup);
	/* Models are forgotten, not stopped. */
	while ((m = TAILQ_FIRST(&sup->models)) != NULL)
		model_free(m);
	store_shutdown(sup);
	worker_shutdown(sup);
	store_free(sup);
	gpu_free(sup);
	/* Calls still waiting for an operation get no reply. */
	while ((call = TAILQ_FIRST(&sup->calls)) != NULL) {
		if (call->state_free != NULL)
			call->state_free(call->state);
		call_free(call);
	}
	stats_free(sup);
	events_free(sup);
	while ((c = TAILQ_FIRST(&sup->clients)) != NULL) {
		call_client_gone(c);
		TAILQ_REMOVE(&sup->clients, c, entry);
		proto_conn_free(c->conn);
		server_client_free(c);
	}
	for (i = 0; i < (int)(sizeof(sup->ev_sigs) / sizeof(sup->ev_sigs[0]));
	    i++)
		if (sup->ev_sigs[i] != NULL)
			event_free(sup->ev_sigs[i]);
	if (sup->ev_watchdog != NULL)
		event_free(sup->ev_watchdog);
	if (sup->ev_logcheck != NULL)
		event_free(sup->ev_logcheck);
	liveness_free(sup);
	if (sup->ev_state != NULL)
		event_free(sup->ev_state);
	if (sup->ev_journal != NULL)
		event_free(sup->ev_journal);
	server_close(sup);
	event_base_free(sup->base);
	free(sup->cgroup_root);
	free(sup->config_path);
	free(sup->socket_path);
	free(sup);
}

int
supervisor_main(struct config *conf, const struct supervisor_opts *opts)
{
	struct supervisor	*sup;
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP };
	char			 err[1024];
	const char		*sock;
	int			 rc = 0;

	signal(SIGPIPE, SIG_IGN);
	sup = xcalloc(1, sizeof(*sup));
	if ((sup->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	sup->conf = conf;
	sup->engine_hooks = &supervisor_engine_hooks;
	sup->gpu_hooks = &supervisor_gpu_hooks;
	sup->config_path = xstrdup(opts->config_path != NULL ?
	    opts->config_path : conf->path);
	sock = opts->socket_path;
	if (sock == NULL || *sock == '\0')
		sock = getenv("LLMUX_SOCKET");
	if (sock == NULL || *sock == '\0')
		sock = conf->supervisor_socket;
	sup->socket_path = xstrdup(sock);
	sup->uid = geteuid();
	sup->gid = getegid();
	sup->privileged = sup->uid == 0;
	sup->listen_fd = -1;
	sup->started_ms = clock_ms();
	TAILQ_INIT(&sup->models);
	TAILQ_INIT(&sup->clients);
	TAILQ_INIT(&sup->calls);
	TAILQ_INIT(&sup->replies);

	log_info("starting version=%s pid=%d config=%s models=%zu%s",
	    LLMUX_VERSION, (int)getpid(), sup->config_path, conf->n_models,
	    sup->privileged ? "" : " unprivileged=1");
	if (!sup->privileged)
		log_info("running unprivileged: models run as uid %u, not as "
		    "user %s", (unsigned)sup->uid, conf->user);
	if (conf->proxy.admin_token == NULL)
		log_info("no admin token: the admin port refuses every call "
		    "that changes state (llmuxctl works over the socket) "
		    "admin_token_file=%s", conf->admin_token_file != NULL ?
		    conf->admin_token_file : "none");
	events_init(sup);
	cgroup_init(sup);
	worker_init(sup);
	store_init(sup);
	supervisor_add_models(sup);
	/* The socket first: if another supervisor runs, adopt nothing. */
	if (server_listen(sup, &supervisor_server_ops, err, sizeof(err)) != 0) {
		log_warnx("cannot listen: %s", err);
		fprintf(stderr, "llmux-supervisord: %s\n", err);
		supervisor_free(sup);
		config_free(conf);
		return (1);
	}
	adopt_from_journal(sup);
	/* Preload and warm-up are the switcher's. */
	switching_init(sup);

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sup->ev_sigs[i] = evsignal_new(sup->base, sigs[i],
		    supervisor_signal_cb, sup);
		event_add(sup->ev_sigs[i], NULL);
	}
	supervisor_timers(sup);
	gpu_init(sup);
	sd_notifyf(0, "READY=1\nMAINPID=%lu", (unsigned long)getpid());
	supervisor_status_notify(sup);
	log_info("ready path=%s", sup->socket_path);

	if (event_base_dispatch(sup->base) == -1) {
		log_warnx("event loop failed");
		rc = 1;
	}
	persist_flush(sup);
	conf = sup->conf;
	supervisor_free(sup);
	config_free(conf);
	return (rc);
}

/* ---- dispatch ---------------------------------------------------------- */

static void
supervisor_pong(struct client *c, struct proto_msg *msg)
{
	struct proto_msg	out;

	memset(&out, 0, sizeof(out));
	out.type = PROTO_PONG;
	out.id = msg->id;
	proto_conn_send(c->conn, &out);
}

static void
supervisor_unexpected(struct client *c, struct proto_msg *msg)
{
	const char	*name = proto_type_name(msg->type);

	proto_conn_send_error(c->conn, msg->id, "unexpected", "message %s is "
	    "not expected from a peer with the %s role", name != NULL ? name :
	    "?", proto_role_name(c->role));
}

/* A model the proxy could not reach answers its check: it may serve. */
static void
supervisor_model_answers(struct model *m)
{
	if (model_published_state(m) == PROTO_MS_READY)
		server_send_ready(m->sup, m);
}

/*
 * The proxy could not reach a model it was told is ready (the connection
 * refused, or closed before a byte was written): it holds the request
 * and sends no more until `ready`. Check the model now: dead, its exit is
 * handled as any death (restarted, then ready); alive but failing the
 * check, killed (the same); answering, `ready` again.
 */
static void
supervisor_unreachable(struct client *c, const struct proto_ready *u)
{
	struct model	*m;

	if ((m = model_find(c->sup, u->model)) == NULL)
		return;
	if (m->proc == NULL || m->generation != u->generation ||
	    m->proc->port != u->port) {
		log_info("the proxy reports a model unreachable, already "
		    "replaced model=%s generation=%llu", m->name,
		    (unsigned long long)u->generation);
		return;
	}
	log_warnx("the proxy reports a model unreachable, checking it "
	    "model=%s pid=%d port=%u", m->name, (int)m->proc->pid,
	    (unsigned)u->port);
	if (liveness_unreachable(m, supervisor_model_answers) != 0)
		log_info("model not checked: its state or an operation "
		    "decides model=%s state=%s", m->name,
		    model_pstate_name(m->pstate));
}

/* What the proxy sends: demand, drained, and the calls it forwards. */
static void
supervisor_dispatch_proxy(struct client *c, struct proto_msg *msg)
{
	struct model	*m;

	switch (msg->type) {
	case PROTO_PING:
		supervisor_pong(c, msg);
		return;
	case PROTO_DEMAND:
		if ((m = model_find(c->sup, msg->u.demand.model)) == NULL) {
			proto_conn_send_error(c->conn, 0, "unknown_model",
			    "demand for a model that is not configured: %s",
			    msg->u.demand.model);
			return;
		}
		switching_demand(c, m, msg->u.demand.queued,
		    msg->u.demand.in_flight, msg->u.demand.oldest_ms,
		    msg->u.demand.done);
		return;
	case PROTO_DRAINED:
		switching_drained(c, msg->u.drain.model,
		    msg->u.drain.drain_id);
		return;
	case PROTO_UNREACHABLE:
		supervisor_unreachable(c, &msg->u.ready);
		return;
	case PROTO_ERROR:
		log_warnx("error from the proxy code=%s message=\"%s\"",
		    msg->u.error.code, msg->u.error.message);
		return;
	default:
		if (proto_type_is_call(msg->type)) {
			control_call(c, msg);
			return;
		}
		supervisor_unexpected(c, msg);
		return;
	}
}

/* What llmuxctl (the admin role) sends: control calls. */
static void
supervisor_dispatch_ctl(struct client *c, struct proto_msg *msg)
{
	switch (msg->type) {
	case PROTO_PING:
		supervisor_pong(c, msg);
		return;
	case PROTO_ERROR:
		log_debug("error from a peer peer=%s code=%s", c->name,
		    msg->u.error.code);
		return;
	default:
		if (proto_type_is_call(msg->type)) {
			control_call(c, msg);
			return;
		}
		supervisor_unexpected(c, msg);
		return;
	}
}
