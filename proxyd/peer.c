/*
 * peer.c -- the client addresses of the proxy port, with what each holds:
 * connections open and request body bytes buffered, so that one address
 * cannot take every connection slot or all the body memory
 * (max_connections_per_ip, and a quarter of max_buffered_body_mb).
 *
 * A hash table of entries that live while their address holds anything.
 * 127.0.0.1 and ::1 (also as ::ffff:127.0.0.1) are "loopback": the
 * machine's own clients, an operator or a local reverse proxy, which the
 * per-address limits leave alone.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "xmalloc.h"

#define PEER_BUCKETS	1024

static LIST_HEAD(peer_list, peer) peer_table[PEER_BUCKETS];

/* The address of sa as 16 bytes (IPv4 mapped into IPv6). */
static bool
peer_key(const struct sockaddr *sa, uint8_t key[16])
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	memset(key, 0, 16);
	if (sa == NULL)
		return (false);
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &sin->sin_addr, 4);
		return (true);
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(key, &sin6->sin6_addr, 16);
		return (true);
	}
	return (false);
}

static uint32_t
peer_hash(const uint8_t key[16])
{
	uint32_t	h = 2166136261u;
	int		i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return (h % PEER_BUCKETS);
}

static bool
peer_key_loopback(const uint8_t key[16])
{
	static const uint8_t	v4[16] = { [10] = 0xff, [11] = 0xff,
				    [12] = 127, [15] = 1 };
	static const uint8_t	v6[16] = { [15] = 1 };

	return (memcmp(key, v4, 16) == 0 || memcmp(key, v6, 16) == 0);
}

struct peer *
peer_get(const struct sockaddr *sa)
{
	struct peer	*p;
	uint8_t		 key[16];
	uint32_t	 h;

	peer_key(sa, key);
	h = peer_hash(key);
	LIST_FOREACH(p, &peer_table[h], entry) {
		if (memcmp(p->key, key, 16) == 0)
			return (p);
	}
	p = xcalloc(1, sizeof(*p));
	memcpy(p->key, key, 16);
	p->loopback = peer_key_loopback(key);
	LIST_INSERT_HEAD(&peer_table[h], p, entry);
	return (p);
}

void
peer_put(struct peer *p)
{
	if (p == NULL || p->conns > 0 || p->body > 0)
		return;
	LIST_REMOVE(p, entry);
	free(p);
}
