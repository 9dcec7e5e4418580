/*
 * conn.h -- one protocol connection on libevent: reads frames as they
 * arrive, decodes them, hands each message to the owner, queues writes, and
 * reports the loss of the peer once.
 *
 * A frame that decodes badly gets an ERROR reply ("bad_message") and the
 * connection goes on, since the framing is intact; a bad length prefix, a
 * peer that stops reading while PROTO_CONN_MAX_OUTPUT bytes (or the cap
 * set for it) are queued, or too many bad messages close it.
 */
#ifndef LLMUX_CONN_H
#define LLMUX_CONN_H

#include <stddef.h>

#include "proto.h"

struct event_base;
struct proto_conn;

#define PROTO_CONN_MAX_OUTPUT	(32u << 20)
#define PROTO_CONN_MAX_BAD	64

/* A decoded message; the callee may keep it by copying, it is freed after. */
typedef void	(*proto_msg_cb)(struct proto_conn *, struct proto_msg *, void *);
/*
 * The peer is gone (EOF, error, or a protocol violation: reason says which).
 * The connection is freed when this returns; do not free it here.
 */
typedef void	(*proto_close_cb)(struct proto_conn *, const char *, void *);

struct proto_conn *proto_conn_new(struct event_base *, int fd,
		    const char *name, proto_msg_cb, proto_close_cb, void *arg);
/*
 * The largest frame this connection reads (PROTO_MAX_FRAME at first, and
 * at most that); a longer one closes it as a bad length prefix does.
 * The input buffer never holds more than one such frame.
 */
void		 proto_conn_set_max_frame(struct proto_conn *, uint32_t);
/* Queue one message. -1 if it cannot be encoded (nothing is sent). */
int		 proto_conn_send(struct proto_conn *, const struct proto_msg *);
/*
 * Queue a frame made by proto_encode (length prefix included), as it is:
 * the same bytes for many peers are encoded once.
 */
void		 proto_conn_send_frame(struct proto_conn *, const uint8_t *,
		    size_t);
/* The most output queued before the peer is dropped as not reading
 * (PROTO_CONN_MAX_OUTPUT unless set). */
void		 proto_conn_set_max_output(struct proto_conn *, size_t);
/* Send an ERROR with this id (0: none), code and message. */
void		 proto_conn_send_error(struct proto_conn *, uint32_t id,
		    const char *code, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));
/* Stop reading, flush what is queued, then close (on_close is called). */
void		 proto_conn_close_after_flush(struct proto_conn *,
		    const char *reason);
/* Close now without calling on_close. Safe inside the callbacks. */
void		 proto_conn_free(struct proto_conn *);
int		 proto_conn_fd(const struct proto_conn *);
const char	*proto_conn_name(const struct proto_conn *);
size_t		 proto_conn_queued(const struct proto_conn *);
void		 proto_conn_set_arg(struct proto_conn *, void *);
void		*proto_conn_get_arg(const struct proto_conn *);

/* Connect to a Unix socket; returns a non-blocking fd or -1 (errno set). */
int		 proto_connect_unix(const char *path);

#endif
