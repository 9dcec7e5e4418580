/*
 * peer.h -- what each client address of the proxy port holds: its
 * connections and its buffered request bodies (see peer.c).
 */
#ifndef LLMUX_PROXY_PEER_H
#define LLMUX_PROXY_PEER_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

struct sockaddr;

struct peer {
	uint8_t			 key[16];	/* the address, IPv6 form */
	bool			 loopback;	/* 127.0.0.1 or ::1 */
	uint32_t		 conns;		/* open connections */
	uint64_t		 body;		/* body bytes held */
	LIST_ENTRY(peer)	 entry;
};

/* The entry of sa's address, made if needed. */
struct peer	*peer_get(const struct sockaddr *);
/* Free it if it holds nothing any more. */
void		 peer_put(struct peer *);

#endif
