/*
 * proto.h -- the llmux wire protocol: every message the supervisor, the
 * proxy and llmuxctl exchange over the supervisor's Unix socket.
 *
 * A frame is a 4-byte big-endian length followed by one msgpack map of at
 * most PROTO_MAX_FRAME bytes. Every map has "t" (the message type below);
 * request/response pairs also have "id". Unknown keys are ignored so that
 * versions can grow; known keys are checked strictly (type, length,
 * range). Strings never contain NUL bytes.
 *
 * Bump PROTO_VERSION if the meaning of any message or key below changes.
 * Types are never renumbered: a retired type stays, marked unused.
 *
 * docs/protocol.md describes each message's keys and the flows.
 */
#ifndef LLMUX_PROTO_H
#define LLMUX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eviction.h"

#define PROTO_VERSION		1
#define PROTO_MAX_FRAME		(1u << 20)	/* bytes of one msgpack map */
#define PROTO_MAX_NAME		128		/* model names, roles, phases */
#define PROTO_MAX_TEXT		4096		/* reasons, messages */
#define PROTO_MAX_MODELS	64
#define PROTO_MAX_ALIASES	16
#define PROTO_MAX_KEYS		64		/* API keys in a config push */
#define PROTO_MAX_LIST		32		/* other string lists */
#define PROTO_MAX_DEPTH		16		/* nesting of reply bodies */
#define PROTO_MAX_LOG_CHUNK	(64u << 10)
#define PROTO_MAX_EVENT_DATA	(16u << 10)	/* an event's data map */

enum proto_type {
	/* 1-99: session. */
	PROTO_HELLO = 1,	/* both ways, first message: version, role */
	PROTO_ERROR = 2,	/* either way: id (0: none), code, message */
	PROTO_PING = 3,		/* either way: id; answered by PONG */
	PROTO_PONG = 4,

	/* 100-199: configuration, supervisor -> proxy. */
	PROTO_CONFIG = 100,	/* models, aliases, ports, limits, keys */

	/* 200-299: data plane. */
	PROTO_DEMAND = 200,	/* proxy -> sup: model queue and in-flight */
	PROTO_STATE = 201,	/* sup -> proxy, subscribers: every model */
	PROTO_DRAIN = 202,	/* sup -> proxy: stop dispatching to model */
	PROTO_DRAINED = 203,	/* proxy -> sup: model's in-flight reached 0 */
	PROTO_READY = 204,	/* sup -> proxy: model serves at port */
	PROTO_FAILED = 205,	/* sup -> proxy: waking model failed */
	PROTO_EVENT = 206,	/* sup -> subscribers: one event of the stream */
	PROTO_UNREACHABLE = 207, /* proxy -> sup: model's port refused it */

	/* 300-399: control calls, answered by REPLY on the same id. */
	PROTO_CTL_STATUS = 300,
	PROTO_CTL_MODELS = 301,
	PROTO_CTL_MODE = 302,		/* mode */
	PROTO_CTL_PIN = 303,		/* model */
	PROTO_CTL_UNPIN = 304,
	PROTO_CTL_SWITCH = 305,		/* model */
	PROTO_CTL_EVICTION_GET = 306,
	PROTO_CTL_EVICTION_SET = 307,	/* model, eviction */
	PROTO_CTL_SLEEP = 308,		/* model, [eviction] */
	PROTO_CTL_WAKE = 309,		/* model */
	PROTO_CTL_CHECKPOINT = 310,	/* model, [eviction], [no_warmup] */
	PROTO_CTL_RESTORE = 311,	/* model */
	PROTO_CTL_VALIDATE = 312,	/* model, [policies] */
	PROTO_CTL_RELOAD = 313,
	PROTO_CTL_LOGS = 314,		/* model, [lines], [follow] */
	PROTO_CTL_METRICS = 315,	/* supervisor metrics as text */
	PROTO_CTL_SUBSCRIBE = 316,	/* STATE pushes and events: [since] */

	/* 400-499: replies and events on a call's id. */
	PROTO_REPLY = 400,	/* final: status, body */
	PROTO_PROGRESS = 401,	/* before the reply: phase, elapsed */
	PROTO_LOG_DATA = 402,	/* before the reply: a chunk of a log */
};

/* What a peer may do; the supervisor grants it from SO_PEERCRED. */
enum proto_role {
	PROTO_ROLE_NONE = 0,
	PROTO_ROLE_PROXY = 1,	/* data plane and forwarded control calls */
	PROTO_ROLE_ADMIN = 2,	/* every control call (root, admin group) */
};

/*
 * Who may make a control call (the table is proto_call_access's, in
 * catalogue.c): every role, or the admin role and a proxy that says its
 * caller presented the admin token (`authorized`), the same for a read of
 * what may be private but never a follow (a model's log: the proxy's one
 * link is not held by a stream), or the admin role alone. A call missing
 * from the table is the admin role's alone.
 */
enum proto_access {
	PROTO_ACCESS_ADMIN = 0,	/* the admin role only: reload */
	PROTO_ACCESS_READ = 1,	/* any role: status, models, metrics, ... */
	PROTO_ACCESS_CHANGE = 2, /* admin, or proxy with authorized: true */
	PROTO_ACCESS_PRIVATE = 3, /* admin, or proxy with authorized: true
				     and no follow: logs */
};

/* A model's state as the supervisor publishes it. */
enum proto_model_state {
	PROTO_MS_STOPPED = 0,	/* no process */
	PROTO_MS_STARTING = 1,	/* process started, not healthy yet */
	PROTO_MS_READY = 2,	/* serving: dispatch to port */
	PROTO_MS_DRAINING = 3,	/* about to be evicted: queue, don't send */
	PROTO_MS_SLEEPING = 4,	/* evicted, process kept */
	PROTO_MS_WAKING = 5,	/* being woken */
	PROTO_MS_CHECKPOINTED = 6, /* CRIU images on disk, no process */
	PROTO_MS_FAILED = 7,	/* last start/wake failed: reason */
	PROTO_MS_EVICTING = 8,	/* being put to sleep */
	PROTO_MS__COUNT
};

/* A string as decoded: NUL-terminated, owned by the message. */
struct proto_strlist {
	char	**v;
	size_t	  n;
};

struct proto_hello {
	uint32_t	 version;
	enum proto_role	 role;		/* asked for / granted */
	uint32_t	 pid;
	char		*program;	/* "llmux-proxyd", "llmuxctl", ... */
	bool		 unprivileged;	/* supervisor: runs models as itself */
};

struct proto_error {
	char	*code;		/* "version", "forbidden", "bad_message", ... */
	char	*message;
};

struct proto_model_info {
	char			*name;
	uint16_t		 port;
	struct proto_strlist	 aliases;
	char			*served;	/* the name its server answers to */
	uint32_t		 max_concurrency; /* 0: no limit */
};

struct proto_config {
	uint64_t		 generation;	/* bumps on every reload */
	struct proto_model_info	*models;
	size_t			 n_models;
	uint16_t		 port;
	uint16_t		 admin_port;	/* 0: no control API */
	uint16_t		 metrics_port;	/* 0: none */
	char			*listen_address;
	char			*admin_address;
	uint32_t		 request_timeout_secs;
	uint32_t		 max_queue_per_model;
	uint64_t		 max_body_bytes;
	uint32_t		 max_header_bytes;
	uint32_t		 max_connections;
	uint32_t		 max_connections_per_ip;
	uint32_t		 max_buffered_body_mb;
	uint32_t		 header_timeout_ms;
	uint32_t		 body_timeout_ms;
	uint32_t		 keepalive_timeout_secs;
	uint32_t		 upstream_timeout_secs;	/* 0: none */
	char			*ui_dir;	/* the web page's files */
	char			*javascript_dir;
	struct proto_strlist	 api_keys;
	char			*admin_token;	/* NULL: none */
	bool			 allow_unauthenticated; /* public, no keys */
};

struct proto_demand {
	char		*model;
	uint32_t	 queued;
	uint32_t	 in_flight;
	uint32_t	 oldest_ms;	/* how long the oldest queued waited */
	uint64_t	 done;		/* requests completed since it started */
};

struct proto_model_status {
	char			*name;
	enum proto_model_state	 state;
	uint16_t		 port;
	uint64_t		 generation;	/* bumps on every start */
	struct eviction		 eviction;	/* in force, or configured */
	char			*reason;	/* FAILED: why; else NULL */
};

struct proto_state {
	bool				 manual;	/* mode */
	char				*pinned;	/* NULL: none */
	char				*switcher;	/* "idle", "active:a", ... */
	struct proto_model_status	*models;
	size_t				 n_models;
};

struct proto_drain {			/* DRAIN and DRAINED */
	char		*model;
	uint32_t	 drain_id;
};

struct proto_ready {			/* READY and UNREACHABLE */
	char		*model;
	uint16_t	 port;
	uint64_t	 generation;
};

struct proto_failed {
	char		*model;
	char		*reason;
};

/*
 * Where a stream of events stands: the supervisor's boot (its start, unix
 * ms) and a sequence number in that boot. boot 0: whatever boot the
 * supervisor has. On the wire "BOOT-SEQ" (a string), or SEQ alone (an
 * unsigned integer) when boot is 0; in SSE ids the same string.
 */
struct proto_event_id {
	uint64_t	 boot;
	uint64_t	 seq;
};

/* One event of the supervisor's stream (docs/protocol.md, "Events"). */
struct proto_event {
	uint64_t	 seq;		/* from 1, within one boot */
	uint64_t	 boot;
	uint64_t	 time_ms;	/* unix ms */
	char		*kind;		/* "state", "switch", "queue", ... */
	char		*model;		/* NULL when absent */
	uint8_t		*data;		/* one msgpack map, or NULL: {} */
	size_t		 data_len;
};

/*
 * Every control call has the same shape; which fields a call requires is
 * decided by proto_call_fields() and checked by the decoder.
 */
struct proto_call {
	char			*model;		/* NULL when absent */
	char			*mode;		/* CTL_MODE: "auto" | "manual" */
	bool			 has_eviction;
	struct eviction		 eviction;
	struct proto_strlist	 policies;	/* CTL_VALIDATE: "W+P" each */
	bool			 no_warmup;	/* CTL_CHECKPOINT */
	bool			 follow;	/* CTL_LOGS */
	uint32_t		 lines;		/* CTL_LOGS: 0 = default */
	bool			 authorized;	/* proxy: caller had the token */
	bool			 has_since;	/* CTL_SUBSCRIBE: replay after */
	struct proto_event_id	 since;
};

/*
 * A final answer. status follows HTTP (200, 400, 404, 409, 500, 503) so the
 * proxy can pass it through; body is one msgpack map, kept as bytes and
 * checked to be well-formed, which the proxy turns into JSON as it is.
 */
struct proto_reply {
	uint16_t	 status;
	uint8_t		*body;
	size_t		 body_len;
};

struct proto_progress {
	char		*model;
	char		*phase;		/* "drain", "sleep", "wake", ... */
	uint64_t	 elapsed_ms;
	char		*detail;	/* NULL when absent */
};

struct proto_log_data {
	uint8_t		*data;
	size_t		 len;
};

struct proto_msg {
	enum proto_type	type;
	uint32_t	id;
	union {
		struct proto_hello	hello;
		struct proto_error	error;
		struct proto_config	config;
		struct proto_demand	demand;
		struct proto_state	state;
		struct proto_drain	drain;
		struct proto_ready	ready;
		struct proto_failed	failed;
		struct proto_event	event;
		struct proto_call	call;
		struct proto_reply	reply;
		struct proto_progress	progress;
		struct proto_log_data	log;
	} u;
};

/* Fields a control call carries. */
#define PROTO_F_MODEL		0x01	/* required */
#define PROTO_F_MODE		0x02	/* required */
#define PROTO_F_EVICTION	0x04	/* required */
#define PROTO_F_EVICTION_OPT	0x08
#define PROTO_F_POLICIES_OPT	0x10
#define PROTO_F_NO_WARMUP_OPT	0x20
#define PROTO_F_LOGS_OPT	0x40

/* Names, for logs and docs: "hello", "ctl_status", ... NULL if unknown. */
const char	*proto_type_name(enum proto_type);
bool		 proto_type_is_call(enum proto_type);
/* The PROTO_F_* fields a call type takes; -1 if not a call. */
int		 proto_call_fields(enum proto_type);
/* The call for a control name ("status", "switch"); 0 if none. */
enum proto_type	 proto_call_by_name(const char *);
const char	*proto_role_name(enum proto_role);
/* Who may make the call; PROTO_ACCESS_ADMIN when it is not a call. */
enum proto_access proto_call_access(enum proto_type);
/*
 * May a peer of this role make the call, as its fields say (authorized,
 * follow; NULL: none set)?
 */
bool		 proto_call_allowed(enum proto_type, enum proto_role,
		    const struct proto_call *);
const char	*proto_model_state_name(enum proto_model_state);

/*
 * Encode one message as a whole frame (length prefix included) into a
 * buffer the caller frees with free(). Returns 0, or -1 when a field is
 * over its limit (the message is not sent; nothing partial is produced).
 */
int	proto_encode(const struct proto_msg *, uint8_t **frame, size_t *len);

/*
 * Decode one msgpack map (the frame's payload, without its length prefix).
 * Returns 0 and fills msg (free it with proto_msg_free), or -1 with a
 * one-line reason in err. Never allocates more than the payload's size in
 * any one allocation, and never from a count it has not checked against
 * the bytes that remain.
 */
int	proto_decode(const uint8_t *, size_t, struct proto_msg *,
	    char *err, size_t errlen);
void	proto_msg_free(struct proto_msg *);

/*
 * Framing. proto_frame_length looks at the first bytes of a stream: returns
 * 1 and the payload length when a whole header is there, 0 when more bytes
 * are needed, -1 when the length is 0 or over PROTO_MAX_FRAME.
 */
int	proto_frame_length(const uint8_t *, size_t, uint32_t *);

/* Is this exactly one well-formed msgpack map (a valid reply body)? */
bool	proto_body_is_map(const uint8_t *, size_t);

/*
 * An event id as text: "BOOT-SEQ", or "SEQ" (boot 0). Parsing takes both
 * and nothing else (digits only, no sign or space, each fits 64 bits):
 * 0, or -1.
 */
int	proto_event_id_parse(const char *, struct proto_event_id *);
void	proto_event_id_format(const struct proto_event_id *, char *, size_t);

#endif
