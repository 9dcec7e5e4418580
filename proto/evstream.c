/*
 * evstream.c -- events of the supervisor's stream as JSON and as SSE
 * records (see evstream.h). The JSON never holds a raw newline (yajl
 * escapes control characters in strings and nothing is beautified), so
 * it fits one "data:" line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evstream.h"
#include "mpjson.h"
#include "mpread.h"
#include "xmalloc.h"

#define EVSTREAM_MAX_KIND	32

bool
evstream_kind_valid(const char *k)
{
	size_t	n = 0;

	for (; k[n] != '\0'; n++)
		if ((k[n] < 'a' || k[n] > 'z') && k[n] != '_')
			return (false);
	return (n > 0 && n <= EVSTREAM_MAX_KIND);
}

void
evstream_time(uint64_t ms, char *buf, size_t len)
{
	time_t		t = (time_t)(ms / 1000);
	struct tm	tm;
	char		s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", s, (unsigned)(ms % 1000));
}

static void
evstream_key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

static void
evstream_uint(yajl_gen g, const char *k, uint64_t v)
{
	char	buf[32];
	int	n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);

	evstream_key(g, k);
	yajl_gen_number(g, buf, (size_t)n);
}

/* Is this data key one of the event's own? */
static bool
evstream_own_key(const uint8_t *k, size_t len)
{
	static const char	*own[] = { "seq", "boot", "time", "kind",
				    "model" };

	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strlen(own[i]) == len && memcmp(own[i], k, len) == 0)
			return (true);
	return (false);
}

int
evstream_json_write(yajl_gen g, const struct proto_event *e)
{
	struct mpr	 r;
	struct mpr_item	 map, key, val;
	const uint8_t	*at;
	const char	*why;
	char		 ts[40];

	yajl_gen_map_open(g);
	evstream_uint(g, "seq", e->seq);
	evstream_uint(g, "boot", e->boot);
	evstream_time(e->time_ms, ts, sizeof(ts));
	evstream_key(g, "time");
	evstream_key(g, ts);
	evstream_key(g, "kind");
	evstream_key(g, e->kind);
	if (e->model != NULL) {
		evstream_key(g, "model");
		evstream_key(g, e->model);
	}
	if (e->data != NULL) {
		mpr_init(&r, e->data, e->data_len);
		if (mpr_next(&r, &map, &why) != 0 || map.kind != MPR_MAP)
			return (-1);
		for (uint32_t i = 0; i < map.n; i++) {
			if (mpr_next(&r, &key, &why) != 0 ||
			    key.kind != MPR_STR)
				return (-1);
			at = r.p;
			if (evstream_own_key(key.s, key.len)) {
				if (mpr_next(&r, &val, &why) != 0 ||
				    mpr_skip(&r, &val, PROTO_MAX_DEPTH,
				    &why) != 0)
					return (-1);
				continue;
			}
			yajl_gen_string(g, key.s, key.len);
			if (mpjson_write(g, at, mpr_left(&r)) != 0 ||
			    mpr_next(&r, &val, &why) != 0 ||
			    mpr_skip(&r, &val, PROTO_MAX_DEPTH, &why) != 0)
				return (-1);
		}
	}
	yajl_gen_map_close(g);
	return (0);
}

char *
evstream_json(const struct proto_event *e)
{
	yajl_gen		 g;
	const unsigned char	*out;
	size_t			 len;
	char			*s = NULL;

	g = yajl_gen_alloc(NULL);
	if (evstream_json_write(g, e) == 0 &&
	    yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok)
		s = xstrndup((const char *)out, len);
	yajl_gen_free(g);
	return (s);
}

char *
evstream_sse(const struct proto_event *e, size_t *len)
{
	struct proto_event_id	 id = { e->boot, e->seq };
	char			 ids[48], *json, *s;
	int			 n;

	if (!evstream_kind_valid(e->kind) || (json = evstream_json(e)) ==
	    NULL)
		return (NULL);
	proto_event_id_format(&id, ids, sizeof(ids));
	n = xasprintf(&s, "id: %s\nevent: %s\ndata: %s\n\n", ids, e->kind,
	    json);
	free(json);
	*len = (size_t)n;
	return (s);
}
