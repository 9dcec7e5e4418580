/*
 * server.h -- supervisord/server/, the map of the supervisor's socket:
 * listening, knowing each peer and granting it a role, the hello
 * exchange, and what the supervisor sends (replies, progress, log data,
 * config, state, ready, failed) (server.c); the stream of events and its
 * ring (events.c); and the life of a control call, from its creation to
 * its reply (call.c). What comes in goes up
 * through the struct server_ops that supervisor.c passes to server_listen.
 */
#ifndef LLMUX_SERVER_H
#define LLMUX_SERVER_H

#include "supervisord/core.h"

struct body;
struct evict_report;
struct logfollow;
struct proxy_books;

/* ---- server.c: the socket, its peers and pushes ------------------------ */

struct peer_cred {
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	const gid_t	*groups;
	size_t		 ngroups;
};

#define ROLE_BIT(r)	(1 << (r))

/*
 * What a peer may cost before it has a role: a hello is a few dozen
 * bytes, so a longer frame is dropped, as is a peer that says nothing
 * for SERVER_HELLO_TIMEOUT_SECS. Peers at once, per uid and in all:
 * one more is told so and dropped.
 */
#define SERVER_HELLO_MAX_FRAME		4096
#define SERVER_HELLO_TIMEOUT_SECS	10
#define SERVER_MAX_PEERS_PER_UID	64
#define SERVER_MAX_PEERS		512

struct client {
	struct supervisor	*sup;
	struct proto_conn	*conn;
	struct peer_cred	 cred;
	gid_t			*groups;
	int			 roles;		/* ROLE_BIT()s allowed */
	enum proto_role		 role;		/* granted by hello */
	bool			 hello;
	bool			 subscribed;
	char			 name[96];
	struct event		*ev_hello;	/* until hello: its deadline */
	struct logfollow	*follow;		/* its logs call, or NULL */
	void			(*follow_free)(struct logfollow *);
	/* A proxy's demand and the drains it owes (switching/proxies.c). */
	struct proxy_books	*books;
	void			(*books_free)(struct proxy_books *);
	TAILQ_ENTRY(client)	 entry;
};

/*
 * What the server tells the level above, through the table passed to
 * server_listen (supervisor.c's): each message of a peer past hello, by
 * the role it holds; a proxy that came or went; a call that ended.
 */
struct server_ops {
	void	(*dispatch[PROTO_ROLE_ADMIN + 1])(struct client *,
		    struct proto_msg *);
	void	(*proxy_changed)(struct supervisor *);
	/* A proxy left, no longer among the peers, before proxy_changed. */
	void	(*proxy_gone)(struct client *);
	/* After the call's reply, before it is freed (call_done). */
	void	(*call_done)(struct ctl_call *);
	/* State was pushed to every peer (something changed); may be NULL. */
	void	(*state_sent)(struct supervisor *);
};

int	 server_peer_roles(const struct peer_cred *, const struct role_policy *);
void	 server_update_roles(struct supervisor *);
int	 server_listen(struct supervisor *, const struct server_ops *,
	    char *err, size_t errlen);
void	 server_close(struct supervisor *);
void	 server_reply(struct client *, uint32_t id, int status,
	    const uint8_t *body, size_t len);
void	 server_progress(struct client *, uint32_t id, const char *model,
	    const char *phase, int64_t elapsed_ms, const char *detail);
void	 server_log_data(struct client *, uint32_t id, const uint8_t *,
	    size_t);
/* Push state (soon, coalesced) to the proxy and subscribers. */
void	 server_schedule_state(struct supervisor *);
/* Send now to one peer, or (NULL) to every proxy / subscriber. */
void	 server_send_state(struct supervisor *, struct client *);
void	 server_send_config(struct supervisor *, struct client *);
void	 server_send_ready(struct supervisor *, struct model *);
void	 server_send_failed(struct supervisor *, struct model *,
	    const char *reason);
void	 server_client_drop(struct client *, const char *code,
	    const char *message);
/* Free what the server holds for a peer (not its connection). */
void	 server_client_free(struct client *);
size_t	 server_count_role(struct supervisor *, enum proto_role);

/* ---- events.c: the stream of events and its ring ----------------------- */

struct events_info {
	uint64_t	 boot;
	uint64_t	 first_seq;	/* the oldest kept (last_seq + 1: none) */
	uint64_t	 last_seq;	/* 0: none yet */
	size_t		 ring_size;
};

void	 events_init(struct supervisor *);
void	 events_free(struct supervisor *);
/* After a reload: event_ring_size may have changed. */
void	 events_resize(struct supervisor *);
void	 events_info(struct supervisor *, struct events_info *);
/*
 * Add an event to the ring and send it to every subscriber. data (one
 * map, or NULL) is taken and freed; model may be NULL.
 */
void	 events_emit(struct supervisor *, const char *kind, const char *model,
	    struct body *data);
/*
 * A peer subscribed: it is sent the events after since (0: all kept; of
 * another boot or older than the ring: a gap event first), then every
 * new one. Without since, only the new ones.
 */
void	 events_subscribe(struct client *, bool has_since,
	    const struct proto_event_id *since);
/* State is being pushed: what changed since the last push, as events. */
void	 events_sync(struct supervisor *);
/* The model's demand changed (coalesced to one event per 250 ms). */
void	 events_queue(struct model *);

/* ---- call.c: the life of a control call -------------------------------- */

/* A call waiting for an operation; it outlives its peer. */
struct ctl_call {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	enum proto_type		 type;
	char			*name;
	struct eviction		 eviction;
	int64_t			 start_ms;
	bool			 ordered;	/* waits for the switcher */
	int			 phase;		/* last switch phase told, -1 */
	char			**policies;	/* VALIDATE: its evictions */
	size_t			 n_policies;
	/* Ordered: what runs when the switcher has the model ready. */
	void			(*then)(struct ctl_call *, struct model *);
	/* What the call's handler holds, freed at exit if still unreplied. */
	void			*state;
	void			(*state_free)(void *);
	TAILQ_ENTRY(ctl_call)	 entry;
};

/* A reply that waits for the journal (call_reply). */
struct ctl_reply {
	struct supervisor	*sup;
	struct client		*client;	/* NULL once the peer left */
	uint32_t		 id;
	int			 status;
	struct body		*body;
	TAILQ_ENTRY(ctl_reply)	 entry;
};

struct ctl_call *call_new(struct client *, struct proto_msg *, const char *);
/* Send the final reply (if the peer is still there), free the call. */
void	 call_done(struct ctl_call *, int, struct body *);
void	 call_free(struct ctl_call *);
/*
 * The reply to a call that may have changed what the journal records:
 * sent once the journal on disk says so, so that what an operator was
 * told survives a supervisor killed right after (persist_after).
 */
void	 call_reply(struct client *, uint32_t, int, struct body *);
/* An evict_progress_cb that sends progress on the call's id. */
void	 call_progress_cb(struct model *, const char *, int64_t,
	    const char *, void *);
/* The peer is gone: its calls go on, their replies go nowhere. */
void	 call_client_gone(struct client *);
/* The reply body of sleep, wake, checkpoint and restore: {key: text,
 * model, process_state, elapsed_ms, escalated, reason, log, phases} from
 * an operation's report. */
struct body *call_op_body(struct model *, const char *key,
	    const char *text, const struct evict_report *);

#endif
