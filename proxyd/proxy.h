/*
 * proxy.h -- what the files of llmux-proxyd share: the models the proxy
 * knows (config and state pushed by the supervisor), the requests it holds,
 * and each file's entry points.
 *
 * One event loop runs everything. A request is read whole by libevhtp
 * (bounded), its model found while the body arrives, then it is either
 * forwarded at once to the model's port or paused in its model's queue
 * until the supervisor says the model is ready.
 *
 * The files call down only, in the order of the sections below (main.c
 * above them all): control, history, front, client, route, upstream,
 * preq, registry, link, webui, then listen, linger, metrics, model (and
 * formdata, which it uses), peer, queue, reqscan and usage, and proxy.c
 * (the shared state declared under "Globals"). News going up passes
 * through a function pointer set by the level above: what the supervisor
 * pushes (struct link_ops, applied in main.c), the end of an upstream
 * exchange and a request its model's server never received
 * (upstream_init) and a head read on a connection (client_init).
 */
#ifndef LLMUX_PROXY_H
#define LLMUX_PROXY_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include <evhtp/evhtp.h>

#include "metrics.h"
#include "model.h"
#include "peer.h"
#include "proto.h"
#include "queue.h"
#include "reqscan.h"
#include "usage.h"

struct event_base;
struct ustream;
struct upool;

/* Limits the proxy uses before the first config push, and hard limits. */
#define PROXY_DEFAULT_TIMEOUT_SECS	300
#define PROXY_DEFAULT_MAX_QUEUE		16384
#define PROXY_DEFAULT_MAX_BODY		(32ull << 20)
#define PROXY_DEFAULT_MAX_HEADER	(64u << 10)
#define PROXY_DEFAULT_MAX_CONNS		4096
#define PROXY_DEFAULT_MAX_CONNS_PER_IP	1024
#define PROXY_DEFAULT_MAX_BUFFERED_MB	128
#define PROXY_DEFAULT_HEADER_TIMEOUT_MS	10000
#define PROXY_DEFAULT_BODY_TIMEOUT_MS	30000
#define PROXY_DEFAULT_KEEPALIVE_SECS	75
#define PROXY_DEFAULT_UI_DIR		"/usr/share/llmux/ui"
#define PROXY_DEFAULT_JAVASCRIPT_DIR	"/usr/share/javascript"
#define PROXY_LOOPBACK_RESERVE		64	/* more for 127.0.0.1, ::1 */
#define PROXY_PRECONFIG_MAX		1024	/* requests held before config */
#define PROXY_PRECONFIG_WAIT_MS		30000
#define PROXY_RETRY_AFTER_SECS		5
#define PROXY_MAX_UPSTREAM_PER_MODEL	1024	/* concurrent exchanges */
#define PROXY_CLIENT_HIGH_WATER		(256u << 10)	/* stop reading upstream */
#define PROXY_CLIENT_LOW_WATER		(64u << 10)	/* resume */

/* What the proxy uses of the supervisor's config push. */
struct pconf {
	bool		 have;		/* a config has arrived */
	uint64_t	 generation;
	uint16_t	 port;
	uint16_t	 admin_port;
	uint16_t	 metrics_port;
	char		*listen_address;
	char		*admin_address;
	uint32_t	 request_timeout_secs;
	uint32_t	 max_queue_per_model;
	uint64_t	 max_body_bytes;
	uint32_t	 max_header_bytes;
	uint32_t	 max_connections;
	uint32_t	 max_connections_per_ip;
	uint64_t	 max_buffered_body;	/* bytes */
	uint32_t	 header_timeout_ms;
	uint32_t	 body_timeout_ms;
	uint64_t	 keepalive_timeout_ms;
	uint32_t	 upstream_timeout_secs;	/* 0: none */
	char		*ui_dir;		/* the web page */
	char		*javascript_dir;	/* Chart.js */
	char		**api_keys;
	size_t		 n_api_keys;
	char		*admin_token;	/* NULL: state changes refused */
	bool		 allow_unauthenticated;	/* public port, no keys */
};

/* One configured model and what the proxy knows of its state. */
struct pmodel {
	char			*name;
	char			**aliases;
	size_t			 n_aliases;
	char			*served;	/* its server's name, if not name */
	uint16_t		 cfg_port;
	uint32_t		 max_upstreams;	/* max_concurrency, else ours */
	bool			 configured;	/* in the latest config */

	enum proto_model_state	 state;
	bool			 known;		/* a state or ready arrived */
	bool			 ready;		/* dispatch to port */
	uint16_t		 port;
	uint64_t		 generation;
	bool			 draining;	/* queue, don't dispatch */
	bool			 unreachable;	/* queue until the next ready */
	bool			 drain_pending;	/* answer drained at 0 */
	uint32_t		 drain_id;
	char			*reason;	/* last failure */

	struct queue		 queue;
	struct event		*timer;		/* head of queue expires */
	uint32_t		 in_flight;	/* until the last byte is out */
	uint32_t		 upstreams;	/* exchanges open upstream */
	struct upool		*pool;

	/* Demand as last sent to the supervisor. */
	bool			 demand_dirty;
	uint32_t		 sent_queued;
	uint32_t		 sent_in_flight;
	int64_t			 sent_ms;
	uint64_t		 done;		/* requests completed */
	uint64_t		 sent_done;

	struct model_metrics	 metrics;
	TAILQ_ENTRY(pmodel)	 entry;
};
TAILQ_HEAD(pmodels, pmodel);

/* Where a request is in its life. */
enum preq_phase {
	PR_READING,		/* head or body arriving */
	PR_WAIT_CONFIG,		/* held until the first config push */
	PR_QUEUED,		/* paused in its model's queue */
	PR_UPSTREAM,		/* forwarded, response not finished */
	PR_DONE,		/* answered; waiting for libevhtp to free it */
};

enum preq_route {
	ROUTE_NONE,
	ROUTE_HEALTH,
	ROUTE_MODELS,		/* GET /v1/models */
	ROUTE_MODEL_ONE,	/* GET /v1/models/NAME */
	ROUTE_INFER,		/* POST /v1/... */
};

struct fconn;

/* One client request, from its head to libevhtp freeing it. */
struct preq {
	evhtp_request_t		*req;
	struct fconn		*fc;
	enum preq_phase		 phase;
	enum preq_route		 route;
	bool			 paused;	/* evhtp_request_pause'd */
	bool			 gone;		/* the client went away */
	bool			 waited;	/* was queued */
	bool			 counted;	/* in its model's in_flight */
	bool			 override;	/* model-override named it */
	bool			 resent;	/* was sent, not delivered */
	bool			 has_span;	/* where the body's model is */
	struct model_span	 span;
	struct event		*later;		/* routed next turn (pipelined) */
	uint64_t		 index;		/* on its connection, from 0 */
	uint64_t		 body_bytes;	/* read so far */
	uint64_t		 body_held;	/* counted in max_buffered_body */
	uint64_t		 body_room;	/* free in buffer_in's last chain */
	struct peer		*peer;		/* its address, while body_held */
	int			 refuse_status;	/* answer this once read */
	enum reject_code	 refuse_code;
	char			*refuse_msg;
	struct model_parser	*mp;		/* until the model is known */
	char			 model_name[MODEL_NAME_MAX + 1];
	struct pmodel		*model;
	struct qentry		 qe;		/* in model queue or pending */
	int64_t			 t_start_us;
	int64_t			 t_first_us;	/* first answer body byte */
	int			 status;	/* answered with, 0: not yet */
	bool			 observed;	/* in its model's metrics */
	struct ustream		*us;		/* the upstream exchange */
};

/* One client connection on the proxy port. */
struct fconn {
	evhtp_connection_t	*conn;
	struct preq		*pr;		/* current request */
	struct peer		*peer;		/* its address */
	uint64_t		 heads;		/* heads libevhtp has read */
	uint64_t		 served;	/* requests answered */
	struct reqscan		 scan;		/* the framing of its bytes */
	struct evbuffer_cb_entry *scan_cb;	/* on its input buffer */
	struct event		*timer;		/* its next time limit */
	int64_t			 idle_ms;	/* no request since */
	int64_t			 head_ms;	/* the next head began */
	int64_t			 read_ms;	/* last bytes came */
	bool			 idle;		/* in the idle list */
	int			 early_status;	/* answer then close */
	enum reject_code	 early_code;
	int			 early_retry;	/* Retry-After, 0: none */
	char			*early_msg;
	TAILQ_ENTRY(fconn)	 entry;
	TAILQ_ENTRY(fconn)	 idle_entry;	/* oldest idle first */
};

/* Globals (proxy.c). */
extern struct event_base	*proxy_base;
extern struct pconf		 proxy_conf;
extern struct pmodels		 proxy_models;
extern bool			 proxy_exiting;
/* Run ev at deadline (clock_ms), or not at all when deadline < 0. */
void		 proxy_timer_at(struct event *, int64_t deadline);

/* control.c: the admin port. */
void		 control_init(void);
int		 control_listen_fd(int fd);
void		 control_set_listen(const char *addr, uint16_t port);
int		 control_listen(const char *addr, uint16_t port);
void		 control_apply_config(void);
void		 control_shutdown(void);
/* /metrics text of the proxy itself. */
void		 control_metrics_text(struct evbuffer *);

/* history.c: the last hour, for the web page's charts. */
void		 history_init(void);
/* An event of the supervisor's: the switches that end are kept. */
void		 history_event(const struct proto_event *);
/* GET /control/history: the buckets and switches from since_ms on. */
void		 history_json(struct evbuffer *, int64_t since_ms);
void		 history_shutdown(void);

/* front.c: the proxy port. */
void		 front_init(void);
int		 front_listen_fd(int fd);
int		 front_listen(const char *addr, uint16_t port);
bool		 front_listening(void);
int		 front_apply_config(char *why, size_t len);
void		 front_stop_accepting(void);
uint32_t	 front_active_requests(void);
void		 front_shutdown(void);
void		 front_metrics_view(struct metrics_proxy_view *);

/* client.c: the connections of the proxy port. */
/* Accept on htp; on_headers is set on each connection (front.c's). */
void		 client_init(evhtp_t *, evhtp_hook on_headers);
/* Remember an answer to give before the body is read; the hook fails. */
evhtp_res	 client_early(struct fconn *, int status, enum reject_code,
		    int retry_after, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));
/* Did the framing checks refuse the connection's request index? */
bool		 client_scan_refused(const struct fconn *, uint64_t index);
void		 client_request_begins(struct fconn *, struct preq *);
void		 client_request_done(struct fconn *);
/* Count n more body bytes for the request, if they fit. */
bool		 client_body_take(struct preq *, uint64_t n);
/* Its body is about to be freed. */
void		 client_body_give_back(struct preq *);
/* The connection's time limit may have changed. */
void		 client_arm_timer(struct fconn *);
/* Look at the connection again, next loop turn. */
void		 client_schedule(struct fconn *);
/* Shutting down: nothing forwarded, no connection waiting for an answer. */
bool		 client_settled(void);
/* Exiting and settled: leave the loop. */
void		 client_exit_check(void);
void		 client_shutdown(void);
uint32_t	 client_count(void);
uint64_t	 client_body_bytes(void);

/* route.c: where a complete request goes. */
void		 route_init(void);
void		 route_shutdown(void);
void		 route_health(struct preq *);
void		 route_models(struct preq *);
void		 route_model_one(struct preq *);
/* Send, forward or queue a request whose model is known. */
void		 route_request(struct preq *);
/* Try to dispatch a model's queue (it became ready, or a slot freed). */
void		 route_dispatch_queue(struct pmodel *);
/* Fail every request queued for a model. */
void		 route_fail_queue(struct pmodel *, int status, enum reject_code,
		    int retry_after, const char *msg);
void		 route_fail_all(const char *msg);
void		 route_arm_timer(struct pmodel *);
/*
 * A config was applied (the first: route the requests held until then);
 * fail the queues of models it removed.
 */
void		 route_apply_config(bool first);
/* A state push was applied, or the supervisor went away. */
void		 route_apply_state(void);
void		 route_model_ready(struct pmodel *);
void		 route_model_failed(struct pmodel *);
/* Take a request out of whatever queue holds it. */
void		 route_forget(struct preq *);
uint32_t	 route_pending_count(void);

/* upstream.c: forwarding and relaying. */
/*
 * freed(pm): one of the model's exchanges ended (a slot is free);
 * undelivered(pr, port, generation): its model's server at port was not
 * reached (the connection refused, or closed before a byte of the request
 * was written), so the request, safe to send again, is handed back.
 */
void		 upstream_init(void (*freed)(struct pmodel *),
		    void (*undelivered)(struct preq *, uint16_t, uint64_t));
void		 upstream_start(struct preq *);
/* The client went away or the request is being freed: drop the exchange. */
void		 upstream_abort(struct preq *);
/* Close a model's idle connections. */
void		 upstream_pool_reset(struct pmodel *);
/* The same, if its port or generation changed since they were opened. */
void		 upstream_pool_sync(struct pmodel *);
void		 upstream_shutdown(void);

/* preq.c: answering a client request. */
/* Answer with an OpenAI-style error body and resume the connection. */
void		 preq_error(struct preq *, int status, enum reject_code,
		    int retry_after, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));
/* Answer with a JSON body made by the proxy. */
void		 preq_reply_json(struct preq *, int, const unsigned char *,
		    size_t);
/*
 * {"error":{"message","type","param","code"}}, an OpenAI error object, into
 * the buffer: every error object the proxy writes is made here (param and
 * code may be NULL: null).
 */
void		 preq_error_object(struct evbuffer *, const char *msg,
		    const char *type, const char *param, const char *code);
/* That of a refusal, and a newline: its type and param follow its code. */
void		 preq_error_body(struct evbuffer *, const char *msg,
		    enum reject_code);
/* Stop parsing the connection's next request while this one is held. */
void		 preq_pause(struct preq *);
void		 preq_resume(struct preq *);
/* Close the client's connection once the current answer is out. */
void		 preq_close_after(evhtp_request_t *);
/* The request is forwarded: it counts (active, in flight) until freed. */
void		 preq_mark_upstream(struct preq *);
/* It is freed: true if it was counted as forwarded. */
bool		 preq_uncount(struct preq *);
uint32_t	 preq_active(void);
/* The request's response is complete: let libevhtp finish it. */
void		 preq_finish(struct preq *);
void		 preq_count_reject(enum reject_code);
const uint64_t	*preq_reject_counts(void);

/* registry.c: the table of models. */
/* The limits before the first config: each one's default. */
void		 registry_init(void);
struct pmodel	*registry_find(const char *);
/* By name or alias, configured models only. */
struct pmodel	*registry_resolve(const char *);
void		 registry_apply_config(const struct proto_config *);
void		 registry_apply_state(const struct proto_state *);
/* The model named is ready (failed): it, or NULL if unknown. */
struct pmodel	*registry_ready(const char *, uint16_t, uint64_t);
struct pmodel	*registry_failed(const char *, const char *);
void		 registry_drain(const char *, uint32_t);
/*
 * The model's server at port, generation could not be reached: if that is
 * still where it serves, it is unreachable until the next ready (and the
 * supervisor is told).
 */
void		 registry_unreachable(struct pmodel *, uint16_t, uint64_t);
/* The supervisor went away: no drain goes on. */
void		 registry_supervisor_lost(void);
/* The model's in-flight count dropped: answer a pending drain at 0. */
void		 registry_check_drained(struct pmodel *);
bool		 registry_manual(void);
const char	*registry_pinned(void);
/* Manual mode serves only the pinned (else the active) model: not this? */
bool		 registry_refused(const struct pmodel *);
void		 registry_free_all(void);

/* link.c: the link to llmux-supervisord. */
/* What the supervisor pushes, handed up to the level that applies it. */
struct link_ops {
	void	(*config)(const struct proto_config *);
	void	(*state)(const struct proto_state *);
	void	(*ready)(const struct proto_ready *);
	void	(*failed)(const struct proto_failed *);
	void	(*drain)(const struct proto_drain *);
	void	(*lost)(void);		/* the link dropped */
	void	(*up)(void);		/* hello done: the link is usable */
	void	(*event)(const struct proto_event *);
};
void		 link_init(const char *path, const struct link_ops *);
bool		 link_connected(void);
void		 link_demand(struct pmodel *);
void		 link_send_drained(struct pmodel *);
/* Tell the supervisor the model's server could not be reached. */
void		 link_send_unreachable(struct pmodel *);
typedef void	(*link_reply_cb)(int status, const uint8_t *body,
		    size_t len, void *arg);
/*
 * Send a control call; cb gets the reply's status and body (or 503 and no
 * body if the supervisor is away or goes away). Returns a handle to cancel.
 */
uint32_t	 link_call(enum proto_type, const struct proto_call *,
		    uint32_t timeout_ms, link_reply_cb, void *);
/* The same, and each log_data chunk before the reply goes to data. */
typedef void	(*link_data_cb)(const uint8_t *, size_t, void *arg);
uint32_t	 link_call_data(enum proto_type, const struct proto_call *,
		    uint32_t timeout_ms, link_data_cb, link_reply_cb, void *);
void		 link_cancel(uint32_t);
void		 link_shutdown(void);

/* mirror.c: the proxy's copy of the supervisor's ring of events. */
/* The link is up (after hello): subscribe after what the mirror holds. */
void		 mirror_link_up(void);
void		 mirror_link_down(void);
/* Tell cb when the mirror synced or grew (the level above: sse.c). */
void		 mirror_on_change(void (*cb)(void));
void		 mirror_event(const struct proto_event *);
/* Does the mirror hold all the supervisor holds (and what comes)? */
bool		 mirror_synced(void);
uint64_t	 mirror_boot(void);
/* The seqs of the oldest and newest kept; 0 when none is. */
uint64_t	 mirror_first_seq(void);
uint64_t	 mirror_last_seq(void);
/* The SSE record of seq, or NULL if not kept. */
const char	*mirror_get(uint64_t seq, size_t *len);
void		 mirror_shutdown(void);

/* sse.c: GET /control/events. */
/*
 * Take the request's connection for an event stream: 0, or the HTTP
 * status to refuse it with (msg says why) and the request is untouched.
 */
int		 sse_open(evhtp_request_t *, char *msg, size_t msglen);
/* The mirror synced or grew: send each client what follows its cursor. */
void		 sse_mirror_changed(void);
void		 sse_metrics_text(struct evbuffer *);
void		 sse_shutdown(void);

/* webui.c: the web page's files on the admin port. */
/* Is the path one of the page's (/, /ui, /ui/..., /javascript/...)? */
bool		 webui_path(const char *);
/* Answer with the file: 0, or the status to refuse with (msg says why). */
int		 webui_serve(evhtp_request_t *, char *msg, size_t msglen);
/* Percent-decode a path: 0, or -1 (a bad escape, NUL, control, '\\'). */
int		 webui_decode(const char *, char *, size_t);
/* Open rel under dir, no link followed, no name with a leading dot. */
int		 webui_open(const char *dir, char *rel);

/* listen.c: sockets. */
int		 listen_parse(const char *, char **addr, uint16_t *port);
int		 listen_tcp(const char *addr, uint16_t port);
bool		 listen_fd_is_loopback(int fd);
const char	*listen_fd_name(int fd, char *buf, size_t len);
bool		 listen_addr_is_loopback(const char *);

#endif
