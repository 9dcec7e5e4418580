/*
 * events.c -- `llmuxctl events`: subscribe on the supervisor's socket and
 * print its events as they come, one line each
 *
 *     14:02:03.117 switch b from=a to=b phase=drain elapsed_ms=12 ...
 *
 * (local time, kind, model or "-", then the event's data as key=value
 * with values quoted as the logs quote them; a gpu event's figures in MiB,
 * "gpus=0:3000/81920MiB models=a:3000MiB@0"), or with --json one JSON
 * object per line, the same object GET /control/events sends. --since ID
 * first replays what the supervisor still holds after ID (0: all it
 * holds). Also the subscription and the line format `llmuxctl top` uses.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "evstream.h"
#include "log.h"
#include "mpread.h"
#include "strbuf.h"
#include "xmalloc.h"

/* One value of an event's data as text: scalars, a,b lists, k:v maps. */
static int
events_value(struct strbuf *b, struct mpr *r, int depth)
{
	struct mpr_item	 it, key;
	const char	*why;
	char		 num[64];

	if (depth > 4 || mpr_next(r, &it, &why) != 0)
		return (-1);
	switch (it.kind) {
	case MPR_NIL:
	case MPR_EXT:
		strbuf_add(b, "-", 1);
		return (0);
	case MPR_BOOL:
		strbuf_printf(b, "%s", it.b ? "true" : "false");
		return (0);
	case MPR_UINT:
		strbuf_printf(b, "%llu", (unsigned long long)it.u);
		return (0);
	case MPR_INT:
		strbuf_printf(b, "%lld", (long long)it.i);
		return (0);
	case MPR_FLOAT:
		snprintf(num, sizeof(num), "%g", it.f);
		strbuf_printf(b, "%s", num);
		return (0);
	case MPR_STR:
	case MPR_BIN:
		strbuf_add(b, (const char *)it.s, it.len);
		return (0);
	case MPR_ARRAY:
		for (uint32_t i = 0; i < it.n; i++) {
			if (i > 0)
				strbuf_add(b, ",", 1);
			if (events_value(b, r, depth + 1) != 0)
				return (-1);
		}
		return (0);
	case MPR_MAP:
		for (uint32_t i = 0; i < it.n; i++) {
			if (mpr_next(r, &key, &why) != 0 || key.kind != MPR_STR)
				return (-1);
			if (i > 0)
				strbuf_add(b, ",", 1);
			strbuf_add(b, (const char *)key.s, key.len);
			strbuf_add(b, ":", 1);
			if (events_value(b, r, depth + 1) != 0)
				return (-1);
		}
		return (0);
	}
	return (-1);
}

/*
 * A gpu event's data, in MiB: "gpus=0:3000/81920MiB,1:0/81920MiB
 * models=a:3000MiB@0,b:0MiB" (GPU: used/total; model: its memory @ its
 * GPUs, joined by +). No gpus: no telemetry.
 */
static void
events_gpu_fields(const struct value *d, struct strbuf *out)
{
	const struct value	*gpus = value_get(d, "gpus");
	const struct value	*models = value_get(d, "models");
	const struct value	*g, *m, *on;
	struct strbuf		 v = STRBUF_INIT;

	if (gpus != NULL && gpus->kind == VALUE_ARRAY) {
		for (size_t i = 0; i < gpus->n; i++) {
			g = value_at(gpus, i);
			strbuf_printf(&v, "%s%llu:%llu/%lluMiB", i > 0 ? "," : "",
			    (unsigned long long)value_uint(value_get(g, "index"),
			    0), (unsigned long long)(value_uint(value_get(g,
			    "memory_used_bytes"), 0) >> 20),
			    (unsigned long long)(value_uint(value_get(g,
			    "memory_total_bytes"), 0) >> 20));
		}
		strbuf_add(out, " gpus=", 6);
		log_quote(out, strbuf_str(&v), v.len);
	}
	if (models != NULL && models->kind == VALUE_MAP && models->n > 0) {
		v.len = 0;
		for (size_t i = 0; i < models->n; i++) {
			m = value_at(models, i);
			strbuf_printf(&v, "%s%s:%lluMiB", i > 0 ? "," : "",
			    value_key(models, i), (unsigned long long)(value_uint(
			    value_get(m, "gpu_memory_bytes"), 0) >> 20));
			on = value_get(m, "gpus");
			for (size_t k = 0; on != NULL && on->kind == VALUE_ARRAY &&
			    k < on->n; k++)
				strbuf_printf(&v, "%s%llu", k > 0 ? "+" : "@",
				    (unsigned long long)value_uint(value_at(on, k),
				    0));
		}
		strbuf_add(out, " models=", 8);
		log_quote(out, strbuf_str(&v), v.len);
	}
	strbuf_free(&v);
}

void
events_line(const struct proto_event *e, struct strbuf *out)
{
	struct mpr	 r;
	struct mpr_item	 map, key, val;
	struct strbuf	 v = STRBUF_INIT;
	const uint8_t	*at;
	const char	*why;
	time_t		 t = (time_t)(e->time_ms / 1000);
	struct tm	 tm;
	char		 ts[32];

	localtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	strbuf_printf(out, "%s.%03u %s %s", ts, (unsigned)(e->time_ms % 1000),
	    e->kind, e->model != NULL ? e->model : "-");
	if (e->data == NULL)
		return;
	if (strcmp(e->kind, "gpu") == 0) {
		struct value	*d = value_parse(e->data, e->data_len);

		events_gpu_fields(d, out);
		value_free(d);
		return;
	}
	mpr_init(&r, e->data, e->data_len);
	if (mpr_next(&r, &map, &why) != 0 || map.kind != MPR_MAP)
		return;
	for (uint32_t i = 0; i < map.n; i++) {
		if (mpr_next(&r, &key, &why) != 0 || key.kind != MPR_STR)
			break;
		at = r.p;
		if (mpr_next(&r, &val, &why) != 0)
			break;
		/* Absent values say nothing: left out. */
		if (val.kind == MPR_NIL)
			continue;
		r.p = at;
		v.len = 0;
		if (events_value(&v, &r, 0) != 0)
			break;
		strbuf_add(out, " ", 1);
		strbuf_add(out, (const char *)key.s, key.len);
		strbuf_add(out, "=", 1);
		log_quote(out, strbuf_str(&v), v.len);
	}
	strbuf_free(&v);
}

int
events_subscribe(struct ctl *ctl, const struct proto_event_id *since,
    struct ctl_reply *r)
{
	struct proto_call	call;
	int			rc;

	memset(&call, 0, sizeof(call));
	if (since != NULL) {
		call.has_since = true;
		call.since = *since;
	}
	if ((rc = call_run(ctl, "events", PROTO_CTL_SUBSCRIBE, &call, r)) != 0)
		return (rc);
	if (r->status != 200) {
		rc = call_result(ctl, r);
		call_reply_free(r);
		return (rc);
	}
	return (CTL_EXIT_OK);
}

/* One event on stdout; -1 once stdout is gone (a closed pipe). */
static int
events_print(const struct proto_event *e, bool json)
{
	struct strbuf	 line = STRBUF_INIT;
	char		*s;

	if (json) {
		if ((s = evstream_json(e)) != NULL) {
			printf("%s\n", s);
			free(s);
		}
	} else {
		events_line(e, &line);
		printf("%s\n", strbuf_str(&line));
		strbuf_free(&line);
	}
	return (fflush(stdout) == EOF || ferror(stdout) ? -1 : 0);
}

int
events_verb(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_verb	*v = verbs_find("events");
	struct proto_event_id	 since;
	struct proto_msg	 m;
	struct ctl_reply	 r;
	struct pollfd		 pfd[2];
	const char		*s;
	char			 err[1024];
	bool			 json = ctl->json, has_since = false;
	int			 i, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
			continue;
		}
		if ((s = call_option("--since", argc, argv, &i)) == NULL)
			return (verbs_usage_line(v));
		if (proto_event_id_parse(s, &since) != 0) {
			fprintf(stderr, "llmuxctl: bad event id '%s': expected "
			    "BOOT-SEQ (as events show them) or SEQ\n", s);
			return (CTL_EXIT_USAGE);
		}
		has_since = true;
	}
	if ((rc = events_subscribe(ctl, has_since ? &since : NULL, &r)) != 0)
		return (rc);
	call_reply_free(&r);
	for (;;) {
		while ((rc = client_recv(&ctl->cl, &m, 0, err, sizeof(err))) ==
		    1) {
			if (m.type == PROTO_ERROR) {
				fprintf(stderr, "llmuxctl: %s\n",
				    m.u.error.message);
				proto_msg_free(&m);
				return (CTL_EXIT_FAILED);
			}
			if (m.type == PROTO_EVENT &&
			    events_print(&m.u.event, json) != 0) {
				/* Whoever read us stopped: that is the end. */
				proto_msg_free(&m);
				return (CTL_EXIT_OK);
			}
			proto_msg_free(&m);
		}
		if (rc < 0) {
			fprintf(stderr, "llmuxctl: lost the connection to the "
			    "supervisor: %s\n", err);
			return (CTL_EXIT_UNREACHABLE);
		}
		/* Wait for the socket, and see a reader of stdout go. */
		pfd[0].fd = ctl->cl.fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = STDOUT_FILENO;
		pfd[1].events = 0;
		if (poll(pfd, 2, -1) == -1 && errno != EINTR) {
			fprintf(stderr, "llmuxctl: poll: %s\n", strerror(errno));
			return (CTL_EXIT_FAILED);
		}
		if (pfd[1].revents & (POLLERR | POLLHUP))
			return (CTL_EXIT_OK);
	}
}
