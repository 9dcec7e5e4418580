/*
 * server.h -- supervisord/server/, the map of the supervisor's socket:
 * listening, knowing each peer and granting it a role, the hello
 * exchange, and what the supervisor sends (replies, progress, log data,
 * config, state, ready, failed).
 */
#ifndef LLMUX_SERVER_H
#define LLMUX_SERVER_H

#include "supervisord/core.h"

struct logfollow;

/* ---- server.c: the socket, its peers and pushes ------------------------ */

struct peer_cred {
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	const gid_t	*groups;
	size_t		 ngroups;
};

#define ROLE_BIT(r)	(1 << (r))

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
	struct logfollow	*follow;
	TAILQ_ENTRY(client)	 entry;
};

int	 server_peer_roles(const struct peer_cred *, const struct role_policy *);
void	 server_update_roles(struct supervisor *);
int	 server_listen(struct supervisor *, char *err, size_t errlen);
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
bool	 server_client_alive(struct supervisor *, struct client *);
size_t	 server_count_role(struct supervisor *, enum proto_role);

#endif
