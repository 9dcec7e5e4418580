/*
 * evstream.h -- one event of the supervisor's stream as text: its JSON
 * object (the same for the data of GET /control/events and for
 * `llmuxctl events --json`), its Server-Sent Events record and its time
 * in RFC 3339 (docs/protocol.md, "Events").
 */
#ifndef LLMUX_EVSTREAM_H
#define LLMUX_EVSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

#include "proto.h"

/* A kind is 1-32 of [a-z_]: it goes on an SSE "event:" line as it is. */
bool	 evstream_kind_valid(const char *);
/* "2026-01-02T03:04:05.678Z" (UTC) for unix ms. */
void	 evstream_time(uint64_t ms, char *, size_t);
/*
 * {"seq":N,"boot":B,"time":"...","kind":"...","model":"..." (when there
 * is one), then the fields of the event's data}: data keys that repeat
 * the first five are left out. -1 when the data is not a map.
 */
int	 evstream_json_write(yajl_gen, const struct proto_event *);
/* The same as a NUL-terminated string (free()), or NULL. */
char	*evstream_json(const struct proto_event *);
/*
 * "id: BOOT-SEQ\nevent: KIND\ndata: JSON\n\n" (free()), or NULL when
 * the kind is not valid or the data not a map.
 */
char	*evstream_sse(const struct proto_event *, size_t *len);

#endif
