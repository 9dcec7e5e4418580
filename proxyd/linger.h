/*
 * linger.h -- answering a request that is refused before its body is read
 * (401, 404, 408, 413, 431, 501, 503, a malformed request, a connection
 * over the limits): the answer goes out on a
 * duplicate of the client's socket, then the write side is shut and what
 * the client still sends is read and dropped for a while, so the client
 * sees the answer instead of a reset.
 */
#ifndef LLMUX_PROXY_LINGER_H
#define LLMUX_PROXY_LINGER_H

#include <stdint.h>

struct bufferevent;
struct evbuffer;

#define LINGER_SECS		5
#define LINGER_MAX_DISCARD	(64u << 20)
#define LINGER_MAX		4096	/* then answers are not lingered */

/*
 * Answer status with the JSON body on the connection of bev (which its
 * owner is about to free): what bev still had to send goes first; a
 * Retry-After header if retry_after > 0. With LINGER_MAX connections
 * lingering already, the answer is written if the socket takes it at
 * once, and the connection closed.
 */
void		linger_reply(struct bufferevent *bev, int status,
		    int retry_after, struct evbuffer *body);
uint32_t	linger_count(void);
const char	*linger_status_text(int);
void		linger_shutdown(void);

#endif
