/*
 * history.c -- the last hour as the web page charts it, kept by the
 * proxy and served as JSON at GET /control/history: 10 s buckets (360 of
 * them, a ring) of each model's requests completed, its deepest queue and
 * most requests in flight (sampled every second), and the most memory
 * used on each GPU (from a status call every 5 s, and from the
 * supervisor's gpu events, which tell at once when it moved); and the
 * switches that ended in the hour (from the supervisor's events: target,
 * origin, total time, success).
 *
 * Everything is bounded: 64 models (a model gone for an hour gives its
 * place up), 16 GPUs, 512 switches. Times are wall-clock unix ms, as the
 * page shows them; buckets start on a multiple of 10 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <yajl/yajl_gen.h>

#include "clock.h"
#include "log.h"
#include "mpjson.h"
#include "mpread.h"
#include "proxy.h"
#include "xmalloc.h"

#define HISTORY_BUCKET_MS	10000
#define HISTORY_BUCKETS		360		/* an hour */
#define HISTORY_SPAN_MS		((int64_t)HISTORY_BUCKET_MS * HISTORY_BUCKETS)
#define HISTORY_TICK_MS		1000
#define HISTORY_MAX_SERIES	64
#define HISTORY_MAX_GPUS	16
#define HISTORY_MAX_SWITCHES	512
#define HISTORY_STATUS_MS	5000
#define HISTORY_GPU_EVERY_MS	5000		/* GPU memory sampled */

struct hseries {
	char		 name[MODEL_NAME_MAX + 1];
	bool		 used;
	uint64_t	 done_seen;	/* the model's done at the last tick */
	int64_t		 last_ms;	/* last configured or with data */
};

struct hgpu {
	uint32_t	 index;
	uint64_t	 used;
	uint64_t	 total;
};

struct hbucket {
	int64_t		 t;		/* start; 0: unused */
	uint32_t	 requests[HISTORY_MAX_SERIES];
	uint32_t	 queue[HISTORY_MAX_SERIES];	/* deepest */
	uint32_t	 in_flight[HISTORY_MAX_SERIES];	/* most */
	uint32_t	 n_gpus;
	struct hgpu	 gpu[HISTORY_MAX_GPUS];
};

struct hswitch {
	int64_t		 t;		/* when it ended */
	char		 from[MODEL_NAME_MAX + 1];
	char		 to[MODEL_NAME_MAX + 1];
	uint64_t	 ms;
	bool		 ok;
};

static struct {
	struct hbucket	*b;		/* HISTORY_BUCKETS */
	size_t		 cur;
	struct hseries	 series[HISTORY_MAX_SERIES];
	struct hswitch	*sw;		/* HISTORY_MAX_SWITCHES, a ring */
	size_t		 sw_next;
	size_t		 sw_n;
	uint64_t	 ev_boot;	/* the last event recorded */
	uint64_t	 ev_seq;
	struct event	*tick;
	uint32_t	 call;		/* the status call under way */
	int64_t		 gpu_ms;	/* when it was made */
} hist;

static int64_t
history_now(void)
{
	return ((int64_t)(clock_wall() * 1000.0));
}

/* The series of a model name, made (or a stale one reused) if needed. */
static int
history_series(const char *name, int64_t now)
{
	int	i, free_i = -1;
	size_t	k;

	for (i = 0; i < HISTORY_MAX_SERIES; i++) {
		if (hist.series[i].used &&
		    strcmp(hist.series[i].name, name) == 0)
			return (i);
		if (free_i < 0 && (!hist.series[i].used ||
		    now - hist.series[i].last_ms > HISTORY_SPAN_MS))
			free_i = i;
	}
	if (free_i < 0)
		return (-1);
	/* A place given up: its old figures go with it. */
	for (k = 0; k < HISTORY_BUCKETS; k++) {
		hist.b[k].requests[free_i] = 0;
		hist.b[k].queue[free_i] = 0;
		hist.b[k].in_flight[free_i] = 0;
	}
	memset(&hist.series[free_i], 0, sizeof(hist.series[free_i]));
	hist.series[free_i].used = true;
	snprintf(hist.series[free_i].name, sizeof(hist.series[free_i].name),
	    "%s", name);
	return (free_i);
}

/*
 * A "gpus" list of status or of a gpu event (p: its msgpack, left bytes
 * to the end): the memory used on each GPU, the most kept in bucket b.
 */
static void
history_gpus(struct hbucket *b, const uint8_t *p, size_t left)
{
	struct mpr	 r;
	struct mpr_item	 arr, map, key, val;
	const char	*err;
	uint32_t	 i, j;

	mpr_init(&r, p, left);
	if (mpr_next(&r, &arr, &err) != 0 || arr.kind != MPR_ARRAY)
		return;		/* null: no telemetry */
	for (i = 0; i < arr.n; i++) {
		struct hgpu	 g = { 0, 0, 0 };
		uint32_t	 k;

		if (mpr_next(&r, &map, &err) != 0)
			return;
		if (map.kind != MPR_MAP) {
			if (mpr_skip(&r, &map, 8, &err) != 0)
				return;
			continue;
		}
		for (j = 0; j < map.n; j++) {
			if (mpr_next(&r, &key, &err) != 0 ||
			    mpr_next(&r, &val, &err) != 0)
				return;
			if (key.kind == MPR_STR && val.kind == MPR_UINT) {
				if (key.len == 5 && memcmp(key.s, "index", 5) == 0)
					g.index = (uint32_t)val.u;
				else if (key.len == 17 && memcmp(key.s,
				    "memory_used_bytes", 17) == 0)
					g.used = val.u;
				else if (key.len == 18 && memcmp(key.s,
				    "memory_total_bytes", 18) == 0)
					g.total = val.u;
			} else if (mpr_skip(&r, &val, 8, &err) != 0)
				return;
		}
		for (k = 0; k < b->n_gpus && b->gpu[k].index != g.index; k++)
			;
		if (k == b->n_gpus && b->n_gpus < HISTORY_MAX_GPUS)
			b->gpu[b->n_gpus++] = g;
		else if (k < b->n_gpus && g.used > b->gpu[k].used)
			b->gpu[k] = g;
	}
}

/* The status reply: the memory used on each GPU. */
static void
history_status_cb(int status, const uint8_t *body, size_t len, void *arg)
{
	const uint8_t	*p;
	size_t		 left;

	hist.call = 0;
	if (status != 200 || body == NULL ||
	    (p = mpjson_find(body, len, "gpus", &left)) == NULL)
		return;
	history_gpus(&hist.b[hist.cur], p, left);
}

/* Every second: a new bucket when one begins, and each model's figures. */
static void
history_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct hbucket	*b = &hist.b[hist.cur];
	struct pmodel	*pm;
	int64_t		 now = history_now();
	int64_t		 start = now - now % HISTORY_BUCKET_MS;
	uint32_t	 q;
	int		 i;

	if (b->t != start) {
		if (hist.call != 0)
			link_cancel(hist.call);
		hist.call = 0;
		hist.gpu_ms = 0;
		hist.cur = (hist.cur + 1) % HISTORY_BUCKETS;
		b = &hist.b[hist.cur];
		memset(b, 0, sizeof(*b));
		b->t = start;
	}
	if (hist.call == 0 && now - hist.gpu_ms >= HISTORY_GPU_EVERY_MS &&
	    link_connected()) {
		hist.gpu_ms = now;
		hist.call = link_call(PROTO_CTL_STATUS, NULL, HISTORY_STATUS_MS,
		    history_status_cb, NULL);
	}
	TAILQ_FOREACH(pm, &proxy_models, entry) {
		if (!pm->configured || (i = history_series(pm->name, now)) < 0)
			continue;
		hist.series[i].last_ms = now;
		if (pm->done < hist.series[i].done_seen)
			hist.series[i].done_seen = 0;	/* a new model */
		b->requests[i] += (uint32_t)(pm->done -
		    hist.series[i].done_seen);
		hist.series[i].done_seen = pm->done;
		q = queue_len(&pm->queue);
		if (q > b->queue[i])
			b->queue[i] = q;
		if (pm->in_flight > b->in_flight[i])
			b->in_flight[i] = pm->in_flight;
	}
}

/* A string field of an event's data, into buf ("" when absent). */
static void
history_event_str(const struct proto_event *e, const char *key, char *buf,
    size_t len)
{
	const uint8_t	*p;
	struct mpr	 r;
	struct mpr_item	 it;
	const char	*err;
	size_t		 left;

	buf[0] = '\0';
	if (e->data == NULL ||
	    (p = mpjson_find(e->data, e->data_len, key, &left)) == NULL)
		return;
	mpr_init(&r, p, left);
	if (mpr_next(&r, &it, &err) == 0 && it.kind == MPR_STR)
		snprintf(buf, len, "%.*s", (int)it.len, (const char *)it.s);
}

static uint64_t
history_event_uint(const struct proto_event *e, const char *key)
{
	const uint8_t	*p;
	struct mpr	 r;
	struct mpr_item	 it;
	const char	*err;
	size_t		 left;

	if (e->data == NULL ||
	    (p = mpjson_find(e->data, e->data_len, key, &left)) == NULL)
		return (0);
	mpr_init(&r, p, left);
	if (mpr_next(&r, &it, &err) == 0 && it.kind == MPR_UINT)
		return (it.u);
	return (0);
}

/* A gpu event of the bucket under way: its GPUs' memory, as status's. */
static void
history_gpu_event(const struct proto_event *e)
{
	struct hbucket	*b = &hist.b[hist.cur];
	const uint8_t	*p;
	size_t		 left;

	if (b->t == 0 || (int64_t)e->time_ms < b->t ||
	    (int64_t)e->time_ms >= b->t + HISTORY_BUCKET_MS || e->data == NULL ||
	    (p = mpjson_find(e->data, e->data_len, "gpus", &left)) == NULL)
		return;
	history_gpus(b, p, left);
}

void
history_event(const struct proto_event *e)
{
	struct hswitch	*s;
	char		 phase[16];

	if (e->kind == NULL || (strcmp(e->kind, "switch") != 0 &&
	    strcmp(e->kind, "gpu") != 0))
		return;
	/* After a reconnection the mirror may pass on what we have seen. */
	if (e->boot == hist.ev_boot && e->seq <= hist.ev_seq)
		return;
	hist.ev_boot = e->boot;
	hist.ev_seq = e->seq;
	if (strcmp(e->kind, "gpu") == 0) {
		history_gpu_event(e);
		return;
	}
	history_event_str(e, "phase", phase, sizeof(phase));
	if ((strcmp(phase, "done") != 0 && strcmp(phase, "failed") != 0) ||
	    history_now() - (int64_t)e->time_ms > HISTORY_SPAN_MS)
		return;
	s = &hist.sw[hist.sw_next];
	hist.sw_next = (hist.sw_next + 1) % HISTORY_MAX_SWITCHES;
	if (hist.sw_n < HISTORY_MAX_SWITCHES)
		hist.sw_n++;
	memset(s, 0, sizeof(*s));
	s->t = (int64_t)e->time_ms;
	s->ok = strcmp(phase, "done") == 0;
	history_event_str(e, "from", s->from, sizeof(s->from));
	history_event_str(e, "to", s->to, sizeof(s->to));
	s->ms = history_event_uint(e, s->ok ? "total_ms" : "elapsed_ms");
}

static void
history_gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void
history_gen_column(yajl_gen g, const char *key, const uint32_t *v,
    const int *cols, int ncols)
{
	history_gen_str(g, key);
	yajl_gen_array_open(g);
	for (int c = 0; c < ncols; c++)
		yajl_gen_integer(g, v[cols[c]]);
	yajl_gen_array_close(g);
}

void
history_json(struct evbuffer *out, int64_t since_ms)
{
	const struct hbucket	*b;
	const struct hswitch	*s;
	const unsigned char	*buf;
	yajl_gen		 g;
	int64_t			 now = history_now();
	int			 cols[HISTORY_MAX_SERIES], ncols = 0, i;
	size_t			 k, len;

	g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	history_gen_str(g, "bucket_ms");
	yajl_gen_integer(g, HISTORY_BUCKET_MS);
	history_gen_str(g, "now_ms");
	yajl_gen_integer(g, now);
	history_gen_str(g, "models");
	yajl_gen_array_open(g);
	for (i = 0; i < HISTORY_MAX_SERIES; i++) {
		if (!hist.series[i].used)
			continue;
		cols[ncols++] = i;
		history_gen_str(g, hist.series[i].name);
	}
	yajl_gen_array_close(g);
	history_gen_str(g, "buckets");
	yajl_gen_array_open(g);
	for (k = 1; k <= HISTORY_BUCKETS; k++) {
		b = &hist.b[(hist.cur + k) % HISTORY_BUCKETS];
		if (b->t == 0 || b->t < since_ms || now - b->t > HISTORY_SPAN_MS)
			continue;
		yajl_gen_map_open(g);
		history_gen_str(g, "t");
		yajl_gen_integer(g, b->t);
		history_gen_str(g, "span_ms");
		yajl_gen_integer(g, b == &hist.b[hist.cur] ? now - b->t + 1 :
		    HISTORY_BUCKET_MS);
		history_gen_column(g, "requests", b->requests, cols, ncols);
		history_gen_column(g, "queue", b->queue, cols, ncols);
		history_gen_column(g, "in_flight", b->in_flight, cols, ncols);
		history_gen_str(g, "gpus");
		yajl_gen_array_open(g);
		for (uint32_t j = 0; j < b->n_gpus; j++) {
			yajl_gen_map_open(g);
			history_gen_str(g, "index");
			yajl_gen_integer(g, b->gpu[j].index);
			history_gen_str(g, "used_bytes");
			yajl_gen_integer(g, (long long)b->gpu[j].used);
			history_gen_str(g, "total_bytes");
			yajl_gen_integer(g, (long long)b->gpu[j].total);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	history_gen_str(g, "switches");
	yajl_gen_array_open(g);
	for (k = 0; k < hist.sw_n; k++) {
		s = &hist.sw[(hist.sw_next + HISTORY_MAX_SWITCHES - hist.sw_n +
		    k) % HISTORY_MAX_SWITCHES];
		if (s->t < since_ms || now - s->t > HISTORY_SPAN_MS)
			continue;
		yajl_gen_map_open(g);
		history_gen_str(g, "t");
		yajl_gen_integer(g, s->t);
		history_gen_str(g, "from");
		history_gen_str(g, s->from);
		history_gen_str(g, "to");
		history_gen_str(g, s->to);
		history_gen_str(g, "ms");
		yajl_gen_integer(g, (long long)s->ms);
		history_gen_str(g, "ok");
		yajl_gen_bool(g, s->ok);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	evbuffer_add(out, buf, len);
	evbuffer_add(out, "\n", 1);
	yajl_gen_free(g);
}

void
history_init(void)
{
	struct timeval	tv = { HISTORY_TICK_MS / 1000, 0 };

	hist.b = xcalloc(HISTORY_BUCKETS, sizeof(*hist.b));
	hist.sw = xcalloc(HISTORY_MAX_SWITCHES, sizeof(*hist.sw));
	hist.tick = event_new(proxy_base, -1, EV_PERSIST, history_tick, NULL);
	event_add(hist.tick, &tv);
}

void
history_shutdown(void)
{
	if (hist.call != 0)
		link_cancel(hist.call);
	if (hist.tick != NULL)
		event_free(hist.tick);
	free(hist.b);
	free(hist.sw);
	memset(&hist, 0, sizeof(hist));
}
