/*
 * server.c -- the supervisor's Unix socket: listening (refusing to start
 * when another supervisor answers on the path, removing a stale socket),
 * its mode and group, knowing each peer by SO_PEERCRED and granting it a
 * role, the hello exchange, and what the supervisor pushes to its peers
 * (config, state, ready, failed).
 *
 * Roles: root and members of admin_group may be admin; proxy_user may be
 * the proxy; when the supervisor runs unprivileged its own user may be
 * either. Anyone else is told "forbidden" and disconnected. A peer's
 * mistakes cost that peer only: proto/conn.c answers malformed frames and
 * drops peers that keep sending them. Until its hello a peer may send a
 * frame of SERVER_HELLO_MAX_FRAME bytes at most, for
 * SERVER_HELLO_TIMEOUT_SECS at most; a uid holds SERVER_MAX_PEERS_PER_UID
 * connections at most, everyone SERVER_MAX_PEERS (server.h).
 *
 * What the peers say goes up through the struct server_ops given to
 * server_listen: a dispatch per role (as relayd's procs[]), the comings
 * and goings of the proxy, and the end of each control call (call.c).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"
#include "supervisord/switcher/switcher.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/server/server.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS	59
#endif

#define SERVER_MAX_GROUPS	1024

static void	server_client_msg(struct proto_conn *, struct proto_msg *,
		    void *);
static void	server_client_close(struct proto_conn *, const char *,
		    void *);

int
server_peer_roles(const struct peer_cred *c, const struct role_policy *rp)
{
	int	roles = 0;

	if (c->uid == 0)
		roles |= ROLE_BIT(PROTO_ROLE_ADMIN) | ROLE_BIT(PROTO_ROLE_PROXY);
	if (!rp->privileged && c->uid == rp->self_uid)
		roles |= ROLE_BIT(PROTO_ROLE_ADMIN) | ROLE_BIT(PROTO_ROLE_PROXY);
	if (rp->has_proxy_uid && c->uid == rp->proxy_uid)
		roles |= ROLE_BIT(PROTO_ROLE_PROXY);
	if (rp->has_admin_gid) {
		bool	member = c->gid == rp->admin_gid;

		for (size_t i = 0; i < c->ngroups && !member; i++)
			member = c->groups[i] == rp->admin_gid;
		if (member)
			roles |= ROLE_BIT(PROTO_ROLE_ADMIN);
	}
	return (roles);
}

/* Look up proxy_user and admin_group (again after a reload). */
void
server_update_roles(struct supervisor *sup)
{
	struct role_policy	*rp = &sup->roles;
	struct passwd		*pw;
	struct group		*gr;

	memset(rp, 0, sizeof(*rp));
	rp->privileged = sup->privileged;
	rp->self_uid = sup->uid;
	if (sup->conf->proxy_user != NULL &&
	    (pw = getpwnam(sup->conf->proxy_user)) != NULL) {
		rp->has_proxy_uid = true;
		rp->proxy_uid = pw->pw_uid;
		sup->proxy_gid = pw->pw_gid;
		sup->has_proxy_gid = true;
	} else
		sup->has_proxy_gid = false;
	if (sup->conf->admin_group != NULL &&
	    (gr = getgrnam(sup->conf->admin_group)) != NULL) {
		rp->has_admin_gid = true;
		rp->admin_gid = gr->gr_gid;
	}
}

/* Is something already answering on the socket path? */
static int
server_check_path(const char *path, char *err, size_t errlen)
{
	struct stat	sb;
	int		fd;

	if (lstat(path, &sb) == -1) {
		if (errno == ENOENT)
			return (0);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return (-1);
	}
	if ((fd = proto_connect_unix(path)) != -1) {
		close(fd);
		snprintf(err, errlen, "another supervisor is running on %s",
		    path);
		return (-1);
	}
	if (errno != ECONNREFUSED) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	log_info("removing a stale socket path=%s", path);
	if (unlink(path) == -1) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s",
		    path, strerror(errno));
		return (-1);
	}
	return (0);
}

static void
server_accept_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct supervisor	*sup = arg;

	event_add(sup->ev_listen, NULL);
}

static gid_t *
server_peer_groups(int fd, size_t *n)
{
	gid_t		*g;
	socklen_t	 len = SERVER_MAX_GROUPS * sizeof(gid_t);

	*n = 0;
	g = xcalloc(SERVER_MAX_GROUPS, sizeof(gid_t));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == -1) {
		free(g);
		return (NULL);
	}
	*n = len / sizeof(gid_t);
	/* Kept as long as the peer: only what it has. */
	return (xreallocarray(g, *n > 0 ? *n : 1, sizeof(gid_t)));
}

/* Would one more peer of uid be over a limit? Which, for the message. */
static const char *
server_over_limit(struct supervisor *sup, uid_t uid)
{
	struct client	*c;
	size_t		 all = 0, mine = 0;

	TAILQ_FOREACH(c, &sup->clients, entry) {
		all++;
		if (c->cred.uid == uid)
			mine++;
	}
	if (mine >= SERVER_MAX_PEERS_PER_UID)
		return ("connections of this uid");
	if (all >= SERVER_MAX_PEERS)
		return ("connections");
	return (NULL);
}

static void
server_hello_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct client	*c = arg;
	char		 text[128];

	log_warnx("dropping a peer that sent no hello peer=%s", c->name);
	snprintf(text, sizeof(text), "no hello within %d seconds",
	    SERVER_HELLO_TIMEOUT_SECS);
	server_client_drop(c, "hello_timeout", text);
}

static void
server_accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct supervisor	*sup = arg;
	struct client		*c;
	struct ucred		 uc;
	socklen_t		 len = sizeof(uc);
	struct passwd		*pw;
	struct timeval		 tv = { 1, 0 };
	struct timeval		 hello_tv = { SERVER_HELLO_TIMEOUT_SECS, 0 };
	const char		*over;
	char			 text[PROTO_MAX_TEXT];
	int			 fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) ==
	    -1) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: back off instead of spinning. */
			log_warn("accept, pausing for a second");
			event_del(sup->ev_listen);
			evtimer_add(sup->ev_accept_retry, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == -1) {
		log_warn("SO_PEERCRED");
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->sup = sup;
	c->cred.uid = uc.uid;
	c->cred.gid = uc.gid;
	c->cred.pid = uc.pid;
	c->groups = server_peer_groups(fd, &c->cred.ngroups);
	c->cred.groups = c->groups;
	c->roles = server_peer_roles(&c->cred, &sup->roles);
	snprintf(c->name, sizeof(c->name), "uid=%u pid=%d", (unsigned)uc.uid,
	    (int)uc.pid);
	over = server_over_limit(sup, uc.uid);
	c->conn = proto_conn_new(sup->base, fd, c->name, server_client_msg,
	    server_client_close, c);
	proto_conn_set_max_frame(c->conn, SERVER_HELLO_MAX_FRAME);
	TAILQ_INSERT_TAIL(&sup->clients, c, entry);
	log_debug("peer connected peer=%s roles=%d", c->name, c->roles);
	if (over != NULL) {
		log_warnx("refusing a peer over the limit of %s peer=%s",
		    over, c->name);
		snprintf(text, sizeof(text), "too many %s: at most %d per uid "
		    "and %d in all", over, SERVER_MAX_PEERS_PER_UID,
		    SERVER_MAX_PEERS);
		server_client_drop(c, "too_many_connections", text);
		return;
	}
	c->ev_hello = evtimer_new(sup->base, server_hello_timeout_cb, c);
	evtimer_add(c->ev_hello, &hello_tv);
	if (c->roles == 0) {
		pw = getpwuid(uc.uid);
		log_warnx("refusing a peer without rights uid=%u user=%s pid=%d",
		    (unsigned)uc.uid, pw != NULL ? pw->pw_name : "?",
		    (int)uc.pid);
		server_client_drop(c, "forbidden", NULL);
	}
}

/* The level above's news of a proxy that came or went. */
static void
server_proxy_changed(struct supervisor *sup)
{
	if (sup->server_ops != NULL && sup->server_ops->proxy_changed != NULL)
		sup->server_ops->proxy_changed(sup);
}

int
server_listen(struct supervisor *sup, const struct server_ops *ops,
    char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	const char		*path = sup->socket_path;
	char			*dir, *slash;
	mode_t			 old;
	int			 fd;

	sup->server_ops = ops;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path is too long: %s", path);
		return (-1);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	server_update_roles(sup);
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			log_warn("cannot create socket directory path=%s", dir);
	}
	free(dir);
	if (server_check_path(path, err, errlen) != 0)
		return (-1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return (-1);
	}
	/* Created 0660 from the start, not opened up then closed down. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	umask(old);
	if (chmod(path, 0660) == -1)
		log_warn("chmod socket path=%s", path);
	if (sup->privileged) {
		if (!sup->has_proxy_gid)
			log_warnx("proxy user not found, the socket keeps "
			    "root's group user=%s", sup->conf->proxy_user);
		else if (chown(path, 0, sup->proxy_gid) == -1)
			log_warn("chown socket path=%s", path);
	}
	if (listen(fd, 128) == -1) {
		snprintf(err, errlen, "listen: %s", strerror(errno));
		close(fd);
		unlink(path);
		return (-1);
	}
	sup->listen_fd = fd;
	sup->ev_listen = event_new(sup->base, fd, EV_READ | EV_PERSIST,
	    server_accept_cb, sup);
	sup->ev_accept_retry = evtimer_new(sup->base, server_accept_retry_cb,
	    sup);
	event_add(sup->ev_listen, NULL);
	log_info("listening path=%s", path);
	return (0);
}

/* Stop listening and remove the socket; peers stay until exit. */
void
server_close(struct supervisor *sup)
{
	if (sup->listen_fd == -1)
		return;
	event_free(sup->ev_listen);
	event_free(sup->ev_accept_retry);
	sup->ev_listen = sup->ev_accept_retry = NULL;
	close(sup->listen_fd);
	sup->listen_fd = -1;
	(void)unlink(sup->socket_path);
}

/* ---- peers ------------------------------------------------------------------- */

void
server_client_drop(struct client *c, const char *code, const char *message)
{
	struct passwd	*pw;
	char		 text[PROTO_MAX_TEXT];

	if (message == NULL) {
		pw = getpwuid(c->cred.uid);
		snprintf(text, sizeof(text), "uid %u (%s) may not use this "
		    "socket: only root, members of group '%s'%s and user '%s' "
		    "(as the proxy) may", (unsigned)c->cred.uid,
		    pw != NULL ? pw->pw_name : "?",
		    c->sup->conf->admin_group != NULL ?
		    c->sup->conf->admin_group : "-",
		    c->sup->privileged ? "" : ", the supervisor's own user",
		    c->sup->conf->proxy_user != NULL ?
		    c->sup->conf->proxy_user : "-");
		message = text;
	}
	proto_conn_send_error(c->conn, 0, code, "%s", message);
	proto_conn_close_after_flush(c->conn, code);
}

static void
server_client_close(struct proto_conn *conn, const char *reason, void *arg)
{
	struct client		*c = arg;
	struct supervisor	*sup = c->sup;
	bool			 proxy = c->hello && c->role == PROTO_ROLE_PROXY;

	log_debug("peer gone peer=%s role=%s reason=\"%s\"", c->name,
	    proto_role_name(c->role), reason);
	if (proxy)
		log_info("proxy disconnected peer=%s", c->name);
	call_client_gone(c);
	TAILQ_REMOVE(&sup->clients, c, entry);
	/* Its demand and the drains it owes go with it (switching/). */
	if (proxy && sup->server_ops != NULL &&
	    sup->server_ops->proxy_gone != NULL)
		sup->server_ops->proxy_gone(c);
	server_client_free(c);
	if (proxy)
		server_proxy_changed(sup);
}

/* What the server holds for a peer; its connection is closed apart. */
void
server_client_free(struct client *c)
{
	if (c->ev_hello != NULL)
		event_free(c->ev_hello);
	if (c->books_free != NULL)
		c->books_free(c->books);
	free(c->groups);
	free(c);
}

size_t
server_count_role(struct supervisor *sup, enum proto_role role)
{
	struct client	*c;
	size_t		 n = 0;

	TAILQ_FOREACH(c, &sup->clients, entry)
		if (c->hello && c->role == role)
			n++;
	return (n);
}

static void
server_hello(struct client *c, struct proto_msg *msg)
{
	struct supervisor	*sup = c->sup;
	struct proto_msg	 out;
	enum proto_role		 want = msg->u.hello.role;
	char			 text[256];

	if (msg->u.hello.version != PROTO_VERSION) {
		snprintf(text, sizeof(text), "protocol version %u is not "
		    "supported: this supervisor speaks version %d",
		    msg->u.hello.version, PROTO_VERSION);
		server_client_drop(c, "version", text);
		return;
	}
	if (want != PROTO_ROLE_PROXY && want != PROTO_ROLE_ADMIN) {
		server_client_drop(c, "forbidden", "hello must ask for the "
		    "proxy or the admin role");
		return;
	}
	if (!(c->roles & ROLE_BIT(want))) {
		snprintf(text, sizeof(text), "uid %u may not connect as %s",
		    (unsigned)c->cred.uid, proto_role_name(want));
		log_warnx("refusing a role peer=%s role=%s", c->name,
		    proto_role_name(want));
		server_client_drop(c, "forbidden", text);
		return;
	}
	c->hello = true;
	c->role = want;
	event_free(c->ev_hello);
	c->ev_hello = NULL;
	proto_conn_set_max_frame(c->conn, PROTO_MAX_FRAME);
	snprintf(c->name, sizeof(c->name), "%s uid=%u pid=%d",
	    msg->u.hello.program != NULL ? msg->u.hello.program : "?",
	    (unsigned)c->cred.uid, (int)c->cred.pid);
	memset(&out, 0, sizeof(out));
	out.type = PROTO_HELLO;
	out.u.hello.version = PROTO_VERSION;
	out.u.hello.role = want;
	out.u.hello.pid = (uint32_t)getpid();
	out.u.hello.program = "llmux-supervisord";
	out.u.hello.unprivileged = !sup->privileged;
	proto_conn_send(c->conn, &out);
	if (want == PROTO_ROLE_PROXY) {
		log_info("proxy connected peer=%s", c->name);
		server_send_config(sup, c);
		server_send_state(sup, c);
		server_proxy_changed(sup);
	}
}

static void
server_client_msg(struct proto_conn *conn, struct proto_msg *msg, void *arg)
{
	struct client		*c = arg;
	const struct server_ops	*ops = c->sup->server_ops;

	if (!c->hello) {
		if (msg->type != PROTO_HELLO) {
			server_client_drop(c, "hello_required", "the first "
			    "message must be hello");
			return;
		}
		server_hello(c, msg);
		return;
	}
	if (msg->type == PROTO_HELLO) {
		proto_conn_send_error(c->conn, 0, "bad_message",
		    "hello was already exchanged");
		return;
	}
	/* hello granted the proxy or the admin role. */
	ops->dispatch[c->role](c, msg);
}

/* ---- sending ------------------------------------------------------------------ */

void
server_reply(struct client *c, uint32_t id, int status, const uint8_t *body,
    size_t len)
{
	struct proto_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_REPLY;
	m.id = id;
	m.u.reply.status = (uint16_t)status;
	m.u.reply.body = (uint8_t *)body;
	m.u.reply.body_len = len;
	if (proto_conn_send(c->conn, &m) != 0)
		proto_conn_send_error(c->conn, id, "internal",
		    "the reply could not be encoded");
}

void
server_progress(struct client *c, uint32_t id, const char *model,
    const char *phase, int64_t elapsed_ms, const char *detail)
{
	struct proto_msg	m;
	char			d[PROTO_MAX_TEXT];

	memset(&m, 0, sizeof(m));
	m.type = PROTO_PROGRESS;
	m.id = id;
	m.u.progress.model = (char *)model;
	m.u.progress.phase = (char *)phase;
	m.u.progress.elapsed_ms = (uint64_t)(elapsed_ms < 0 ? 0 : elapsed_ms);
	if (detail != NULL) {
		snprintf(d, sizeof(d), "%s", detail);
		body_text_clean(d);
		m.u.progress.detail = d;
	}
	proto_conn_send(c->conn, &m);
}

void
server_log_data(struct client *c, uint32_t id, const uint8_t *data,
    size_t len)
{
	struct proto_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_LOG_DATA;
	m.id = id;
	m.u.log.data = (uint8_t *)data;
	m.u.log.len = len;
	proto_conn_send(c->conn, &m);
}

/* The state message of every model; strings borrowed, arrays owned. */
static void
server_state_msg(struct supervisor *sup, struct proto_msg *msg)
{
	struct proto_state		*st = &msg->u.state;
	struct proto_model_status	*ms;
	struct model			*m;
	size_t				 n = 0;
	char				 buf[1024];

	memset(msg, 0, sizeof(*msg));
	msg->type = PROTO_STATE;
	/* Read from the switcher itself ("idle" before it is made). */
	if (sup->switcher != NULL) {
		st->manual = switcher_mode(sup->switcher) == SWITCHER_MANUAL;
		st->pinned = (char *)switcher_model_name(sup->switcher,
		    switcher_pinned(sup->switcher));
		st->switcher = xstrdup(switcher_state_string(sup->switcher, buf,
		    sizeof(buf)));
	} else
		st->switcher = xstrdup("idle");
	TAILQ_FOREACH(m, &sup->models, entry)
		n++;
	st->models = xcalloc(n == 0 ? 1 : n, sizeof(*st->models));
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed || st->n_models == PROTO_MAX_MODELS)
			continue;
		ms = &st->models[st->n_models++];
		ms->name = m->name;
		ms->state = model_published_state(m);
		ms->port = m->proc != NULL ? m->proc->port :
		    (m->cfg != NULL ? m->cfg->port : 0);
		ms->generation = m->generation;
		ms->eviction = (m->pstate == MODEL_SLEEPING ||
		    m->pstate == MODEL_CHECKPOINTED) ? m->sleeping :
		    model_eviction(m);
		if (m->pstate == MODEL_FAILED && m->reason != NULL)
			ms->reason = body_text_dup(m->reason);
	}
}

static void
server_state_msg_free(struct proto_msg *msg)
{
	for (size_t i = 0; i < msg->u.state.n_models; i++)
		free(msg->u.state.models[i].reason);
	free(msg->u.state.models);
	free(msg->u.state.switcher);
}

void
server_send_state(struct supervisor *sup, struct client *only)
{
	struct proto_msg	 msg;
	struct client		*c;

	/* What every peer is told is also what the event stream says. */
	if (only == NULL)
		events_sync(sup);
	server_state_msg(sup, &msg);
	TAILQ_FOREACH(c, &sup->clients, entry) {
		if (only != NULL && c != only)
			continue;
		if (c->hello && (c->role == PROTO_ROLE_PROXY || c->subscribed))
			proto_conn_send(c->conn, &msg);
	}
	server_state_msg_free(&msg);
	if (only == NULL && sup->server_ops != NULL &&
	    sup->server_ops->state_sent != NULL)
		sup->server_ops->state_sent(sup);
}

static void
server_state_cb(evutil_socket_t fd, short ev, void *arg)
{
	server_send_state(arg, NULL);
}

void
server_schedule_state(struct supervisor *sup)
{
	if (sup->ev_state == NULL)
		sup->ev_state = event_new(sup->base, -1, 0, server_state_cb,
		    sup);
	event_active(sup->ev_state, EV_TIMEOUT, 0);
}

void
server_send_config(struct supervisor *sup, struct client *only)
{
	struct config		*conf = sup->conf;
	struct proto_msg	 msg;
	struct proto_config	*pc = &msg.u.config;
	struct client		*c;
	size_t			 n = conf->n_models;
	const char		*served;

	memset(&msg, 0, sizeof(msg));
	msg.type = PROTO_CONFIG;
	pc->generation = sup->config_generation;
	if (n > PROTO_MAX_MODELS)
		n = PROTO_MAX_MODELS;
	pc->models = xcalloc(n == 0 ? 1 : n, sizeof(*pc->models));
	for (size_t i = 0; i < n; i++) {
		struct model_config	*mc = &conf->models[i];

		pc->models[i].name = mc->name;
		pc->models[i].port = mc->port;
		pc->models[i].aliases.v = mc->aliases;
		pc->models[i].aliases.n = mc->n_aliases;
		pc->models[i].max_concurrency = mc->max_concurrency;
		/* What a model-override rewrites the body's model to. */
		served = spawn_served_name(mc);
		if (strcmp(served, mc->name) != 0 &&
		    strlen(served) <= PROTO_MAX_NAME)
			pc->models[i].served = (char *)served;
	}
	pc->n_models = n;
	pc->port = conf->port;
	pc->admin_port = conf->admin_port;
	pc->metrics_port = conf->metrics_port;
	pc->listen_address = conf->proxy.listen_address;
	pc->admin_address = conf->proxy.admin_address;
	pc->request_timeout_secs = conf->policy.request_timeout_secs;
	pc->max_queue_per_model = conf->proxy.max_queue_per_model;
	pc->max_body_bytes = conf->proxy.max_body_bytes;
	pc->max_header_bytes = conf->proxy.max_header_bytes;
	pc->max_connections = conf->proxy.max_connections;
	pc->max_connections_per_ip = conf->proxy.max_connections_per_ip;
	pc->max_buffered_body_mb = conf->proxy.max_buffered_body_mb;
	pc->header_timeout_ms = conf->proxy.header_timeout_ms;
	pc->body_timeout_ms = conf->proxy.body_timeout_ms;
	pc->keepalive_timeout_secs = conf->proxy.keepalive_timeout_secs;
	pc->upstream_timeout_secs = conf->proxy.upstream_timeout_secs;
	pc->ui_dir = conf->proxy.ui_dir;
	pc->javascript_dir = conf->proxy.javascript_dir;
	pc->api_keys.v = conf->proxy.api_keys;
	pc->api_keys.n = conf->proxy.n_api_keys;
	pc->admin_token = conf->proxy.admin_token;
	pc->allow_unauthenticated = conf->proxy.allow_unauthenticated;
	TAILQ_FOREACH(c, &sup->clients, entry) {
		if (only != NULL && c != only)
			continue;
		if (c->hello && c->role == PROTO_ROLE_PROXY &&
		    proto_conn_send(c->conn, &msg) != 0)
			log_warnx("config does not fit the protocol's limits, "
			    "not sent to the proxy peer=%s", c->name);
	}
	free(pc->models);
}

void
server_send_ready(struct supervisor *sup, struct model *m)
{
	struct proto_msg	 msg;
	struct client		*c;

	if (m->proc == NULL)
		return;
	memset(&msg, 0, sizeof(msg));
	msg.type = PROTO_READY;
	msg.u.ready.model = m->name;
	msg.u.ready.port = m->proc->port;
	msg.u.ready.generation = m->generation;
	TAILQ_FOREACH(c, &sup->clients, entry)
		if (c->hello && c->role == PROTO_ROLE_PROXY)
			proto_conn_send(c->conn, &msg);
}

void
server_send_failed(struct supervisor *sup, struct model *m,
    const char *reason)
{
	struct proto_msg	 msg;
	struct client		*c;

	memset(&msg, 0, sizeof(msg));
	msg.type = PROTO_FAILED;
	msg.u.failed.model = m->name;
	msg.u.failed.reason = body_text_dup(reason);
	TAILQ_FOREACH(c, &sup->clients, entry)
		if (c->hello && c->role == PROTO_ROLE_PROXY)
			proto_conn_send(c->conn, &msg);
	free(msg.u.failed.reason);
}
