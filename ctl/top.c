/*
 * top.c -- `llmuxctl top`: a live view of llmux. It subscribes to the
 * supervisor's events (replaying its ring, so the last switches and the
 * one in progress are known at once) and asks for status once; then it
 * redraws on each event. A gpu event carries the models' GPU memory,
 * which the GPU column takes as it is; other events that change what
 * status says (states, queues, switches, reloads) are followed by one
 * status call, at most one a second, for the figures events do not carry
 * (requests/s, last use, the TTL); status is never polled on a timer. A
 * 1 s tick only moves the clocks: elapsed times and countdowns.
 *
 * On a terminal it is a full screen drawn with plain ANSI escapes (the
 * alternate screen, the cursor hidden, each line cleared to its end, cut
 * to the width), fitting 80 columns: no curses library is needed for one
 * screen redrawn whole. The terminal is put in non-canonical mode without
 * echo to read `q`; SIGINT, SIGTERM and SIGHUP end it as `q` does, and the
 * terminal is always given back as it was (settings, cursor, screen).
 * When stdout is not a terminal it prints the view as key=value lines
 * whenever it changes, at most once a second.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#define TOP_MAX_MODELS	PROTO_MAX_MODELS
#define TOP_SWITCHES	4	/* in progress at once, shown */
#define TOP_DONE	5	/* the last switches, shown */
#define TOP_STATUS_MS	1000	/* at most one status call a second */
#define TOP_TICK_MS	1000

struct top_model {
	char		 name[PROTO_MAX_NAME + 1];
	char		 state[32];
	char		 eviction[48];
	uint64_t	 pid;		/* 0: none */
	uint64_t	 gpu_bytes;
	uint64_t	 queued, in_flight;
	double		 rps;
	int64_t		 used_ms;	/* ago, at at_ms; -1: never */
	int64_t		 ttl_ms;	/* left, at at_ms; -1: no countdown */
	int64_t		 at_ms;
};

struct top_switch {
	bool		 used;
	char		 from[PROTO_MAX_NAME + 1];
	char		 to[PROTO_MAX_NAME + 1];
	char		 phase[16];
	uint64_t	 start_wall;	/* unix ms */
	uint64_t	 phase_wall;
};

struct top_done {
	uint64_t	 wall;
	char		 from[PROTO_MAX_NAME + 1];
	char		 to[PROTO_MAX_NAME + 1];
	bool		 ok;
	uint64_t	 total_ms;
	uint64_t	 phases[4];	/* cooldown, drain, evict, wake */
	char		 reason[160];
};

struct top {
	struct ctl		*ctl;
	bool			 tty;
	bool			 keys;		/* stdin is a terminal: read q */
	bool			 raw;		/* termios changed */
	struct termios		 saved;
	int			 cols, rows;
	char			 state[256];
	char			 mode[16];
	char			 pinned[PROTO_MAX_NAME + 1];
	uint64_t		 uptime_s;
	int64_t			 status_at;
	struct top_model	 m[TOP_MAX_MODELS];
	size_t			 n;
	struct top_switch	 sw[TOP_SWITCHES];
	struct top_done		 done[TOP_DONE];	/* newest first */
	size_t			 n_done;
	uint32_t		 status_id;	/* a status call in flight */
	bool			 status_wanted;
	int64_t			 status_sent;
	bool			 dirty;
	int64_t			 printed;	/* not a terminal: last block */
	bool			 have_status;
};

static int	top_sigpipe[2] = { -1, -1 };

static void
top_signal(int sig)
{
	unsigned char	c = (unsigned char)sig;
	int		saved = errno;

	(void)!write(top_sigpipe[1], &c, 1);
	errno = saved;
}

static uint64_t
top_wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* ---- what status and events say ------------------------------------------ */

static struct top_model *
top_model(struct top *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->m[i].name, name) == 0)
			return (&t->m[i]);
	return (NULL);
}

static int64_t
top_opt_uint(const struct value *v)
{
	return (v != NULL && v->kind == VALUE_UINT ? (int64_t)v->u : -1);
}

static void
top_status(struct top *t, const struct value *st)
{
	const struct value	*models, *mv, *mode, *ev;
	struct top_model	*m;
	int64_t			 now = clock_ms();

	snprintf(t->state, sizeof(t->state), "%s",
	    value_str(value_get(st, "state"), "?"));
	mode = value_get(st, "mode");
	snprintf(t->mode, sizeof(t->mode), "%s",
	    value_str(value_get(mode, "mode"), "?"));
	snprintf(t->pinned, sizeof(t->pinned), "%s",
	    value_str(value_get(mode, "pinned"), ""));
	t->uptime_s = value_uint(value_get(value_get(st, "supervisor"),
	    "uptime_secs"), 0);
	t->status_at = now;
	models = value_get(st, "models");
	t->n = 0;
	for (size_t i = 0; models != NULL && i < models->n &&
	    t->n < TOP_MAX_MODELS; i++) {
		mv = value_at(models, i);
		m = &t->m[t->n++];
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", value_key(models, i));
		snprintf(m->state, sizeof(m->state), "%s",
		    value_str(value_get(mv, "state"), "?"));
		ev = value_get(mv, "eviction");
		snprintf(m->eviction, sizeof(m->eviction), "%s+%s",
		    value_str(value_get(ev, "weights"), "?"),
		    value_str(value_get(ev, "process"), "?"));
		m->pid = top_opt_uint(value_get(mv, "pid")) > 0 ?
		    value_uint(value_get(mv, "pid"), 0) : 0;
		m->gpu_bytes = value_uint(value_get(mv, "gpu_memory_bytes"), 0);
		m->queued = value_uint(value_get(mv, "queue_depth"), 0);
		m->in_flight = value_uint(value_get(mv, "in_flight"), 0);
		ev = value_get(mv, "requests_per_s");
		m->rps = ev != NULL && ev->kind == VALUE_FLOAT ? ev->f :
		    (double)value_uint(ev, 0);
		m->used_ms = top_opt_uint(value_get(mv, "last_used_ms_ago"));
		m->ttl_ms = top_opt_uint(value_get(mv, "ttl_remaining_s"));
		if (m->ttl_ms >= 0)
			m->ttl_ms *= 1000;
		m->at_ms = now;
	}
	t->have_status = true;
	t->dirty = true;
}

static void
top_copy(char *dst, size_t len, const struct value *v)
{
	snprintf(dst, len, "%s", value_str(v, ""));
}

static void
top_switch_event(struct top *t, const struct proto_event *e,
    const struct value *d)
{
	const char		*phase = value_str(value_get(d, "phase"), "?");
	const struct value	*ph;
	struct top_switch	*s = NULL;
	struct top_done		*dn;
	char			 from[PROTO_MAX_NAME + 1], to[PROTO_MAX_NAME + 1];
	uint64_t		 elapsed = value_uint(value_get(d, "elapsed_ms"),
				    0);

	top_copy(from, sizeof(from), value_get(d, "from"));
	top_copy(to, sizeof(to), value_get(d, "to"));
	for (size_t i = 0; i < TOP_SWITCHES; i++)
		if (t->sw[i].used && strcmp(t->sw[i].from, from) == 0 &&
		    strcmp(t->sw[i].to, to) == 0)
			s = &t->sw[i];
	if (strcmp(phase, "done") == 0 || strcmp(phase, "failed") == 0) {
		if (s != NULL)
			s->used = false;
		memmove(&t->done[1], &t->done[0], (TOP_DONE - 1) *
		    sizeof(t->done[0]));
		if (t->n_done < TOP_DONE)
			t->n_done++;
		dn = &t->done[0];
		memset(dn, 0, sizeof(*dn));
		dn->wall = e->time_ms;
		snprintf(dn->from, sizeof(dn->from), "%s", from);
		snprintf(dn->to, sizeof(dn->to), "%s", to);
		dn->ok = strcmp(phase, "done") == 0;
		dn->total_ms = value_uint(value_get(d, "total_ms"), 0);
		ph = value_get(d, "phases");
		dn->phases[0] = value_uint(value_get(ph, "cooldown"), 0);
		dn->phases[1] = value_uint(value_get(ph, "drain"), 0);
		dn->phases[2] = value_uint(value_get(ph, "evict"), 0);
		dn->phases[3] = value_uint(value_get(ph, "wake"), 0);
		top_copy(dn->reason, sizeof(dn->reason), value_get(d,
		    "reason"));
		return;
	}
	for (size_t i = 0; i < TOP_SWITCHES && s == NULL; i++)
		if (!t->sw[i].used)
			s = &t->sw[i];
	if (s == NULL)
		s = &t->sw[TOP_SWITCHES - 1];
	s->used = true;
	snprintf(s->from, sizeof(s->from), "%s", from);
	snprintf(s->to, sizeof(s->to), "%s", to);
	snprintf(s->phase, sizeof(s->phase), "%s", phase);
	s->start_wall = e->time_ms >= elapsed ? e->time_ms - elapsed : 0;
	s->phase_wall = e->time_ms;
}

/* A gpu event: each model's GPU memory, as status would say it now. */
static void
top_gpu_event(struct top *t, const struct value *d)
{
	const struct value	*models = value_get(d, "models");
	struct top_model	*m;

	for (size_t i = 0; models != NULL && models->kind == VALUE_MAP &&
	    i < models->n; i++)
		if ((m = top_model(t, value_key(models, i))) != NULL)
			m->gpu_bytes = value_uint(value_get(value_at(models, i),
			    "gpu_memory_bytes"), 0);
}

static void
top_event(struct top *t, const struct proto_event *e)
{
	struct value		*d = e->data != NULL ?
				    value_parse(e->data, e->data_len) : NULL;
	struct top_model	*m = e->model != NULL ? top_model(t, e->model) :
				    NULL;

	if (strcmp(e->kind, "switch") == 0)
		top_switch_event(t, e, d);
	else if (strcmp(e->kind, "state") == 0 && m != NULL)
		top_copy(m->state, sizeof(m->state), value_get(d, "state"));
	else if (strcmp(e->kind, "queue") == 0 && m != NULL) {
		m->queued = value_uint(value_get(d, "queued"), 0);
		m->in_flight = value_uint(value_get(d, "in_flight"), 0);
	} else if (strcmp(e->kind, "mode") == 0) {
		top_copy(t->mode, sizeof(t->mode), value_get(d, "mode"));
		top_copy(t->pinned, sizeof(t->pinned), value_get(d, "pinned"));
	} else if (strcmp(e->kind, "gpu") == 0) {
		/* All it changes in status, it carries. */
		top_gpu_event(t, d);
		value_free(d);
		t->dirty = true;
		return;
	}
	value_free(d);
	/* What events do not carry comes with the next status. */
	t->status_wanted = true;
	t->dirty = true;
}

/* ---- drawing ------------------------------------------------------------- */

static const char *
top_bytes(uint64_t b, char *buf, size_t len)
{
	if (b == 0)
		snprintf(buf, len, "-");
	else if (b >= (1ull << 30))
		snprintf(buf, len, "%.1fG", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, len, "%lluM", (unsigned long long)(b >> 20));
	return (buf);
}

/* "off+run": an eviction in eight columns. */
static const char *
top_eviction(const char *ev, char *buf, size_t len)
{
	static const char	*w[][2] = { { "retain", "ret" },
				    { "offload", "off" }, { "discard", "dis" } };
	static const char	*p[][2] = { { "keep_running", "run" },
				    { "cuda_suspend", "cuda" },
				    { "checkpoint", "ckpt" }, { "stop", "stop" } };
	const char		*plus = strchr(ev, '+'), *ws = "?", *ps = "?";

	if (plus == NULL)
		return (snprintf(buf, len, "%s", ev), buf);
	for (size_t i = 0; i < 3; i++)
		if (strncmp(ev, w[i][0], (size_t)(plus - ev)) == 0 &&
		    strlen(w[i][0]) == (size_t)(plus - ev))
			ws = w[i][1];
	for (size_t i = 0; i < 4; i++)
		if (strcmp(plus + 1, p[i][0]) == 0)
			ps = p[i][1];
	snprintf(buf, len, "%s+%s", ws, ps);
	return (buf);
}

static int64_t
top_since(int64_t at, int64_t now)
{
	return (now > at ? now - at : 0);
}

/* A model's figures as text. */
struct top_cells {
	char	used[32], ttl[32], gpu[32], ev[64], pid[32], rps[32];
};

/* A model's figures at now: clocks moved on since status came. */
static void
top_model_cells(const struct top_model *m, int64_t now, struct top_cells *c)
{
	int64_t	d = top_since(m->at_ms, now);

	output_ago(m->used_ms >= 0 ? m->used_ms + d : -1, c->used,
	    sizeof(c->used));
	output_left(m->ttl_ms >= 0 ? (m->ttl_ms > d ? m->ttl_ms - d : 0) : -1,
	    c->ttl, sizeof(c->ttl));
	top_bytes(m->gpu_bytes, c->gpu, sizeof(c->gpu));
	top_eviction(m->eviction, c->ev, sizeof(c->ev));
	if (m->pid != 0)
		snprintf(c->pid, sizeof(c->pid), "%llu",
		    (unsigned long long)m->pid);
	else
		snprintf(c->pid, sizeof(c->pid), "-");
	snprintf(c->rps, sizeof(c->rps), "%.1f", m->rps);
}

/*
 * One screen line, cut to the width, cleared to its end; a heading is
 * drawn in reverse video across the whole width.
 */
static void
top_line(struct top *t, struct strbuf *b, int *row, bool heading,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
top_line(struct top *t, struct strbuf *b, int *row, bool heading,
    const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;

	if (*row >= t->rows)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if ((int)strlen(line) > t->cols)
		line[t->cols] = '\0';
	if (heading)
		strbuf_printf(b, "\033[%d;1H\033[7m%-*s\033[0m", *row + 1,
		    t->cols, line);
	else
		strbuf_printf(b, "\033[%d;1H%s\033[K", *row + 1, line);
	(*row)++;
}

/* A duration in few columns: "340ms", "2.5s", "1m05s". */
static const char *
top_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
	else
		snprintf(buf, len, "%llum%02llus",
		    (unsigned long long)(ms / 60000),
		    (unsigned long long)(ms / 1000 % 60));
	return (buf);
}

static void
top_draw(struct top *t)
{
	struct strbuf	 b = STRBUF_INIT;
	int64_t		 now = clock_ms();
	uint64_t	 wall = top_wall_ms();
	int		 row = 0, width, avail, pad;
	char		 left[512], clock[16], up[32];
	char		 d1[32], d2[32], d[4][32], when[16];
	struct top_cells c;
	time_t		 tt = (time_t)(wall / 1000);
	struct tm	 tm;
	bool		 any = false;

	localtime_r(&tt, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	output_left((int64_t)(t->uptime_s * 1000) + top_since(t->status_at, now),
	    up, sizeof(up));
	/* The model's column takes what 80 columns leave, and more. */
	width = t->cols - 66;
	if (width < 8)
		width = 8;
	strbuf_add(&b, "\033[H", 3);
	snprintf(left, sizeof(left), "llmux  %s  mode %s%s%s  up %s", t->state,
	    t->mode, t->pinned[0] != '\0' ? ", pinned to " : "", t->pinned, up);
	pad = t->cols - (int)strlen(left) - (int)strlen(clock);
	top_line(t, &b, &row, false, "%s%*s%s", left, pad > 1 ? pad : 1, "", clock);
	top_line(t, &b, &row, false, "%s", "");
	top_line(t, &b, &row, true, "%-*.*s %-12s %-7s %-8s %6s %5s %4s %5s "
	    "%4s %6s", width, width, "MODEL", "STATE", "PID", "EVICT", "GPU",
	    "QUEUE", "FLY", "REQ/S", "USED", "TTL");
	avail = t->rows - row - 4 - (int)t->n_done;
	for (size_t i = 0; i < t->n; i++) {
		if ((int)i >= avail - 1 && i + 1 < t->n) {
			top_line(t, &b, &row, false, "... and %zu more models",
			    t->n - i);
			break;
		}
		top_model_cells(&t->m[i], now, &c);
		top_line(t, &b, &row, false, "%-*.*s %-12s %-7s %-8s %6s %5llu %4llu "
		    "%5s %4s %6s", width, width, t->m[i].name, t->m[i].state,
		    c.pid, c.ev, c.gpu, (unsigned long long)t->m[i].queued,
		    (unsigned long long)t->m[i].in_flight, c.rps, c.used,
		    c.ttl);
	}
	top_line(t, &b, &row, false, "%s", "");
	for (size_t i = 0; i < TOP_SWITCHES; i++) {
		struct top_switch *s = &t->sw[i];

		if (!s->used)
			continue;
		any = true;
		top_line(t, &b, &row, false, "switching %s -> %s  %s  %s (this phase "
		    "%s)", s->from[0] != '\0' ? s->from : "(none)",
		    s->to[0] != '\0' ? s->to : "(sleep)", s->phase,
		    top_ms(wall > s->start_wall ? wall - s->start_wall : 0, d1,
		    sizeof(d1)), top_ms(wall > s->phase_wall ? wall -
		    s->phase_wall : 0, d2, sizeof(d2)));
	}
	if (!any)
		top_line(t, &b, &row, false, "no switch in progress");
	top_line(t, &b, &row, false, "%s", "");
	top_line(t, &b, &row, false, "last switches%s", t->n_done == 0 ? ": none" :
	    "");
	for (size_t i = 0; i < t->n_done; i++) {
		struct top_done	*dn = &t->done[i];

		tt = (time_t)(dn->wall / 1000);
		localtime_r(&tt, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		for (int k = 0; k < 4; k++)
			top_ms(dn->phases[k], d[k], sizeof(d[k]));
		if (dn->ok)
			top_line(t, &b, &row, false, " %s  %s -> %s  %s = drain %s "
			    "+ evict %s + wake %s", when, dn->from[0] != '\0' ?
			    dn->from : "-", dn->to[0] != '\0' ? dn->to : "-",
			    top_ms(dn->total_ms, d1, sizeof(d1)), d[1], d[2],
			    d[3]);
		else
			top_line(t, &b, &row, false, " %s  %s -> %s  failed after %s: "
			    "%s", when, dn->from[0] != '\0' ? dn->from : "-",
			    dn->to[0] != '\0' ? dn->to : "-", top_ms(dn->total_ms,
			    d1, sizeof(d1)), dn->reason);
	}
	/* The rest of the screen cleared; the key on the last line. */
	strbuf_printf(&b, "\033[%d;1H\033[J", row + 1);
	strbuf_printf(&b, "\033[%d;1H\033[7m q \033[0m quit", t->rows);
	(void)!write(STDOUT_FILENO, strbuf_str(&b), b.len);
	strbuf_free(&b);
	t->dirty = false;
}

/* Not a terminal: the view as key=value lines; -1 once stdout is gone. */
static int
top_print(struct top *t)
{
	struct strbuf	 b = STRBUF_INIT;
	int64_t		 now = clock_ms();
	uint64_t	 wall = top_wall_ms();
	char		 clock[16];
	struct top_cells c;
	time_t		 tt = (time_t)(wall / 1000);
	struct tm	 tm;

	localtime_r(&tt, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	strbuf_printf(&b, "%s state=", clock);
	log_quote(&b, t->state, strlen(t->state));
	strbuf_printf(&b, " mode=%s", t->mode);
	if (t->pinned[0] != '\0')
		strbuf_printf(&b, " pinned=%s", t->pinned);
	strbuf_add(&b, "\n", 1);
	for (size_t i = 0; i < t->n; i++) {
		top_model_cells(&t->m[i], now, &c);
		strbuf_printf(&b, "  model=%s state=%s pid=%s eviction=%s "
		    "gpu=%s queued=%llu in_flight=%llu requests_per_s=%s "
		    "last_used=%s ttl=%s\n", t->m[i].name, t->m[i].state, c.pid,
		    t->m[i].eviction, c.gpu, (unsigned long long)t->m[i].queued,
		    (unsigned long long)t->m[i].in_flight, c.rps, c.used,
		    c.ttl);
	}
	for (size_t i = 0; i < TOP_SWITCHES; i++)
		if (t->sw[i].used)
			strbuf_printf(&b, "  switch from=%s to=%s phase=%s "
			    "elapsed_ms=%llu\n", t->sw[i].from[0] != '\0' ?
			    t->sw[i].from : "-", t->sw[i].to[0] != '\0' ?
			    t->sw[i].to : "-", t->sw[i].phase,
			    (unsigned long long)(wall > t->sw[i].start_wall ?
			    wall - t->sw[i].start_wall : 0));
	if (t->n_done > 0)
		strbuf_printf(&b, "  last_switch from=%s to=%s ok=%s "
		    "total_ms=%llu\n", t->done[0].from[0] != '\0' ?
		    t->done[0].from : "-", t->done[0].to[0] != '\0' ?
		    t->done[0].to : "-", t->done[0].ok ? "true" : "false",
		    (unsigned long long)t->done[0].total_ms);
	fputs(strbuf_str(&b), stdout);
	strbuf_free(&b);
	t->dirty = false;
	t->printed = now;
	return (fflush(stdout) == EOF || ferror(stdout) ? -1 : 0);
}

/* ---- the terminal ------------------------------------------------------- */

static void
top_size(struct top *t)
{
	struct winsize	ws;

	t->cols = 80;
	t->rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		t->cols = ws.ws_col;
		t->rows = ws.ws_row;
	}
	if (t->cols > 1000)
		t->cols = 1000;
}

static void
top_enter(struct top *t)
{
	struct termios	raw;
	static const char on[] = "\033[?1049h\033[?25l\033[H\033[2J";

	if (t->keys && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			t->raw = true;
	}
	(void)!write(STDOUT_FILENO, on, sizeof(on) - 1);
}

/* The terminal as it was: settings, cursor, the main screen. */
static void
top_leave(struct top *t)
{
	static const char off[] = "\033[0m\033[?25h\033[?1049l";

	if (!t->tty)
		return;
	(void)!write(STDOUT_FILENO, off, sizeof(off) - 1);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->raw = false;
}

static void
top_signals(void)
{
	struct sigaction	sa;
	static const int	sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = top_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* ---- the loop --------------------------------------------------------------- */

static int
top_ask_status(struct top *t)
{
	struct proto_msg	m;

	if (t->status_id != 0)
		return (0);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_CTL_STATUS;
	m.id = t->status_id = t->ctl->cl.next_id++;
	t->status_wanted = false;
	t->status_sent = clock_ms();
	return (client_send(&t->ctl->cl, &m));
}

/* Every message already here; -1 when the supervisor is gone. */
static int
top_read(struct top *t, char *err, size_t errlen)
{
	struct proto_msg	 m;
	struct value		*v;
	int			 rc;

	while ((rc = client_recv(&t->ctl->cl, &m, 0, err, errlen)) == 1) {
		if (m.type == PROTO_EVENT)
			top_event(t, &m.u.event);
		else if (m.type == PROTO_REPLY && m.id == t->status_id) {
			t->status_id = 0;
			if ((v = value_parse(m.u.reply.body,
			    m.u.reply.body_len)) != NULL)
				top_status(t, v);
			value_free(v);
		} else if (m.type == PROTO_ERROR) {
			snprintf(err, errlen, "%s", m.u.error.message);
			proto_msg_free(&m);
			return (-1);
		}
		proto_msg_free(&m);
	}
	return (rc);
}

/* Until what is next: the tick, a status call that may go, a print. */
static int
top_timeout(struct top *t)
{
	int64_t	now = clock_ms(), at = -1, left;

	if (t->tty)
		at = now + TOP_TICK_MS - (int64_t)(top_wall_ms() % 1000);
	if (t->status_wanted && t->status_id == 0) {
		left = t->status_sent + TOP_STATUS_MS;
		if (at < 0 || left < at)
			at = left;
	}
	if (!t->tty && t->dirty && t->have_status) {
		left = t->printed + TOP_STATUS_MS;
		if (at < 0 || left < at)
			at = left;
	}
	if (at < 0)
		return (-1);
	return (at > now ? (int)(at - now) : 0);
}

static int
top_run(struct top *t)
{
	struct pollfd	 pfd[4];
	char		 err[1024], c;
	unsigned char	 sig;
	int		 n, rc;

	for (;;) {
		if (top_read(t, err, sizeof(err)) < 0) {
			top_leave(t);
			fprintf(stderr, "llmuxctl: lost the connection to the "
			    "supervisor: %s\n", err);
			return (CTL_EXIT_UNREACHABLE);
		}
		if (t->status_wanted && t->status_id == 0 &&
		    clock_ms() - t->status_sent >= TOP_STATUS_MS &&
		    top_ask_status(t) != 0) {
			top_leave(t);
			fprintf(stderr, "llmuxctl: lost the connection to the "
			    "supervisor\n");
			return (CTL_EXIT_UNREACHABLE);
		}
		if (t->tty && t->dirty && t->have_status)
			top_draw(t);
		else if (!t->tty && t->dirty && t->have_status &&
		    clock_ms() - t->printed >= TOP_STATUS_MS &&
		    top_print(t) != 0)
			return (CTL_EXIT_OK);	/* nobody reads us any more */
		pfd[0].fd = t->ctl->cl.fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = top_sigpipe[0];
		pfd[1].events = POLLIN;
		pfd[2].fd = t->keys ? STDIN_FILENO : -1;
		pfd[2].events = POLLIN;
		/* Lines into a pipe: see its reader go. */
		pfd[3].fd = t->tty ? -1 : STDOUT_FILENO;
		pfd[3].events = 0;
		n = poll(pfd, 4, top_timeout(t));
		if (n == -1 && errno != EINTR) {
			top_leave(t);
			fprintf(stderr, "llmuxctl: poll: %s\n", strerror(errno));
			return (CTL_EXIT_FAILED);
		}
		if (n <= 0) {
			/* The tick: clocks move. */
			t->dirty = true;
			continue;
		}
		if (pfd[3].revents & (POLLERR | POLLHUP))
			return (CTL_EXIT_OK);
		if (pfd[1].revents & POLLIN) {
			while ((rc = (int)read(top_sigpipe[0], &sig, 1)) == 1) {
				if (sig == SIGWINCH) {
					top_size(t);
					t->dirty = true;
					continue;
				}
				top_leave(t);
				return (CTL_EXIT_OK);
			}
		}
		if (pfd[2].revents & (POLLIN | POLLHUP)) {
			if (read(STDIN_FILENO, &c, 1) != 1 || c == 'q' ||
			    c == 'Q') {
				top_leave(t);
				return (CTL_EXIT_OK);
			}
		}
	}
}

int
top_verb(struct ctl *ctl, int argc, char **argv)
{
	struct proto_event_id	 all = { 0, 0 };
	struct ctl_reply	 r;
	struct top		*t;
	int			 rc;

	if (pipe2(top_sigpipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		fprintf(stderr, "llmuxctl: pipe: %s\n", strerror(errno));
		return (CTL_EXIT_FAILED);
	}
	/* The ring first: the last switches and the one going on. */
	if ((rc = events_subscribe(ctl, &all, &r)) != 0)
		return (rc);
	call_reply_free(&r);
	t = xcalloc(1, sizeof(*t));
	t->ctl = ctl;
	t->tty = isatty(STDOUT_FILENO);
	t->keys = t->tty && isatty(STDIN_FILENO);
	t->status_sent = clock_ms() - TOP_STATUS_MS;
	t->printed = clock_ms() - TOP_STATUS_MS;
	snprintf(t->state, sizeof(t->state), "?");
	if (top_ask_status(t) != 0) {
		free(t);
		fprintf(stderr, "llmuxctl: lost the connection to the "
		    "supervisor\n");
		return (CTL_EXIT_UNREACHABLE);
	}
	top_signals();
	if (t->tty) {
		top_size(t);
		top_enter(t);
	}
	rc = top_run(t);
	free(t);
	return (rc);
}
