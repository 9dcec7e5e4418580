/*
 * linger.h -- answering a request that is refused before its body is read
 * (401, 404, 413, 431, a malformed request): the answer goes out on a
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

/*
 * Answer status with the JSON body on the connection of bev (which its
 * owner is about to free): what bev still had to send goes first.
 */
void		linger_reply(struct bufferevent *bev, int status,
		    struct evbuffer *body);
uint32_t	linger_count(void);
const char	*linger_status_text(int);
void		linger_shutdown(void);

#endif
