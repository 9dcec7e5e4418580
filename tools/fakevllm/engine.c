/*
 * engine.c -- the engine core: a scheduler of generations, the sleep and
 * wake state machine, and the weights, driven by fv_msg messages from the
 * API server and answering with tokens, replies and state.
 *
 * It follows vLLM's EngineCore: messages are handled in order, and while
 * a command (sleep, wake_up, reload_weights, ...) runs, the next ones wait
 * behind it, so /is_sleeping waits for a slow sleep as vLLM's does; aborts
 * go first. A sleep first pauses the scheduler (mode abort: in-flight
 * requests end with finish_reason "abort"; wait: they finish first; keep:
 * they freeze until wake_up), then, for level 1 and 2, sleeps the
 * executor. Requests that arrive while the scheduler is paused wait for
 * wake_up. Every delay is a timer; nothing here blocks the event loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

enum gen_state { GEN_WAITING, GEN_RUNNING, GEN_PARKED, GEN_FROZEN,
	GEN_STALLED };

struct engine_gen {
	struct fv_idnode	 node;
	TAILQ_ENTRY(engine_gen)	 entry;
	int			 state;
	uint64_t		 seed;
	uint32_t		 max;
	uint32_t		 n;
	int			 flags;
	int32_t			 crash_after;
	int32_t			 stall_after;
	struct event		*tick;
};
TAILQ_HEAD(engine_gens, engine_gen);

struct engine_queued {
	TAILQ_ENTRY(engine_queued) entry;
	struct fv_msg		 m;
	char			*data;
};

enum cmd_phase { CMD_DRAIN, CMD_DELAY, CMD_HUNG };

static struct {
	struct event_base	*base;
	struct fv_opts		*opts;
	struct fv_state		 st;
	struct fv_faults	 faults;
	struct fv_idmap		 ids;
	struct engine_gens	 running;
	struct engine_gens	 waiting;
	TAILQ_HEAD(, engine_queued) inq;
	int			 ninq;
	int			 exec_busy;	/* token ticks park meanwhile */
	int			 dirty;		/* state not yet sent */
	int			 in_post;
	int			 starting;
	int			 pending;	/* timer and touch jobs left */
	struct event		*timer;
	struct event		*touch;
	struct event		*exit_ev;
	struct {
		int		 active;
		uint64_t	 cookie;
		int		 op;
		int64_t		 a;
		int64_t		 b;
		int		 phase;
	} cmd;
} eng;

static void	engine_post(void);
static void	engine_handle(const struct fv_msg *, const char *);
static void	engine_gen_tick(evutil_socket_t, short, void *);

static void
engine_emit(int type, int op, uint64_t id, int64_t a, int64_t b,
    const void *data, size_t len)
{
	struct fv_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)type;
	m.op = (uint16_t)op;
	m.id = id;
	m.a = a;
	m.b = b;
	m.len = (uint32_t)len;
	fv_channel_to_api(&m, data);
}

static void
engine_send_state(void)
{
	eng.st.pid = (int32_t)getpid();
	eng.st.mapped = fv_weights_mapped();
	eng.st.weights_bytes = (int64_t)fv_weights_bytes();
	eng.st.busy = eng.cmd.active;
	eng.st.queued = eng.ninq;
	eng.st.faults = eng.faults;
	fv_cudagpu_state(&eng.st);
	fv_fakegpu_note(&eng.st);
	engine_emit(FV_MSG_STATE, 0, 0, 0, 0, &eng.st, sizeof(eng.st));
	eng.dirty = 0;
}

/* ---- generations ------------------------------------------------------ */

static void
engine_gen_count(struct engine_gen *g, int delta)
{
	switch (g->state) {
	case GEN_WAITING:
		eng.st.waiting += delta;
		return;
	case GEN_FROZEN:
		eng.st.frozen += delta;
		break;
	case GEN_STALLED:
		eng.st.stalled += delta;
		break;
	}
	eng.st.running += delta;
}

static void
engine_gen_set(struct engine_gen *g, int state)
{
	engine_gen_count(g, -1);
	g->state = state;
	engine_gen_count(g, 1);
	eng.dirty = 1;
}

static void
engine_gen_free(struct engine_gen *g)
{
	engine_gen_count(g, -1);
	if (g->state == GEN_WAITING)
		TAILQ_REMOVE(&eng.waiting, g, entry);
	else
		TAILQ_REMOVE(&eng.running, g, entry);
	fv_idmap_remove(&eng.ids, &g->node);
	if (g->tick != NULL)
		event_free(g->tick);
	free(g);
	eng.dirty = 1;
}

static void
engine_gen_arm(struct engine_gen *g)
{
	struct timeval	tv;

	if (g->tick == NULL)
		g->tick = evtimer_new(eng.base, engine_gen_tick, g);
	tv.tv_sec = eng.opts->token_ms / 1000;
	tv.tv_usec = (eng.opts->token_ms % 1000) * 1000;
	evtimer_add(g->tick, &tv);
}

/* Why generation cannot run now, or NULL when it can. */
const char *
fv_engine_unloaded(const struct fv_state *s)
{
	if (s->tags & FV_TAG_WEIGHTS)
		return ("the model's weights are asleep; call /wake_up first");
	if (s->tags & FV_TAG_KV)
		return ("the KV cache is asleep; call /wake_up?tags=kv_cache "
		    "first");
	if (s->discarded)
		return ("the weights were discarded by sleep level 2 and not "
		    "reloaded; call /collective_rpc with method reload_weights "
		    "after /wake_up");
	if (s->nccl_suspended)
		return ("the NCCL communicators are suspended; call "
		    "/collective_rpc with method resume_nccl");
	return (NULL);
}

static const char *
engine_cannot_generate(void)
{
	const char	*why;

	if ((why = fv_fakegpu_blocked()) != NULL)
		return (why);
	if ((why = fv_cudagpu_error()) != NULL)
		return (why);
	return (fv_engine_unloaded(&eng.st));
}

enum { STEP_MORE, STEP_DONE, STEP_STALLED };

/* Emit the next token of g. */
static int
engine_gen_step(struct engine_gen *g)
{
	char		 tok[FV_TOKEN_MAX];
	const char	*why;
	size_t		 len;
	int		 last, finish;

	/* A model reads its weights for every request: check them first. */
	if ((why = engine_cannot_generate()) != NULL ||
	    (g->n == 0 && (why = fv_cudagpu_check()) != NULL)) {
		engine_emit(FV_MSG_GENERR, 0, g->node.id, 500, 0, why,
		    strlen(why));
		engine_gen_free(g);
		return (STEP_DONE);
	}
	if (g->crash_after >= 0 && g->n >= (uint32_t)g->crash_after) {
		log_warnx("injected fault: the engine crashes fault=crash_stream "
		    "tokens=%u", g->n);
		fv_channel_crash("crash_stream");
	}
	if (g->stall_after >= 0 && g->n >= (uint32_t)g->stall_after) {
		log_warnx("injected fault: a stream stalls fault=stall_stream "
		    "id=%llu tokens=%u", (unsigned long long)g->node.id, g->n);
		engine_gen_set(g, GEN_STALLED);
		return (STEP_STALLED);
	}
	len = fv_generate_token(g->seed, g->n, tok, sizeof(tok));
	last = (g->n + 1 >= g->max);
	finish = FV_FINISH_NONE;
	if (last)
		finish = (g->flags & FV_ADD_STOP) ? FV_FINISH_STOP :
		    FV_FINISH_LENGTH;
	engine_emit(FV_MSG_TOKEN, finish, g->node.id, g->n, 0, tok, len);
	g->n++;
	eng.st.tokens++;
	if (last) {
		eng.st.finished++;
		engine_gen_free(g);
		return (STEP_DONE);
	}
	return (STEP_MORE);
}

static void
engine_gen_tick(evutil_socket_t fd, short events, void *arg)
{
	struct engine_gen	*g = arg;
	int			 r;

	if (eng.exec_busy) {
		engine_gen_set(g, GEN_PARKED);
		return;
	}
	do
		r = engine_gen_step(g);
	while (r == STEP_MORE && eng.opts->token_ms == 0);
	if (r == STEP_MORE)
		engine_gen_arm(g);
	engine_post();
}

/* Move g from waiting to running and start it. */
static void
engine_gen_start(struct engine_gen *g)
{
	engine_gen_count(g, -1);
	TAILQ_REMOVE(&eng.waiting, g, entry);
	g->state = GEN_RUNNING;
	engine_gen_count(g, 1);
	TAILQ_INSERT_TAIL(&eng.running, g, entry);
	eng.dirty = 1;
	if (eng.opts->token_ms == 0) {
		while (engine_gen_step(g) == STEP_MORE)
			;
		return;
	}
	engine_gen_arm(g);
}

static void
engine_add(const struct fv_msg *m)
{
	struct engine_gen	*g;
	int32_t			 arg;

	if (fv_idmap_find(&eng.ids, m->id) != NULL)
		return;
	g = xcalloc(1, sizeof(*g));
	g->seed = m->seed;
	g->max = (uint32_t)m->a;
	g->flags = (int)m->b;
	g->crash_after = g->stall_after = -1;
	if (g->flags & FV_ADD_STREAM) {
		if (fv_faults_take(&eng.faults, FV_FAULT_CRASH_STREAM, &arg))
			g->crash_after = arg;
		if (fv_faults_take(&eng.faults, FV_FAULT_STALL_STREAM, &arg))
			g->stall_after = arg;
	}
	g->state = GEN_WAITING;
	fv_idmap_add(&eng.ids, &g->node, m->id);
	TAILQ_INSERT_TAIL(&eng.waiting, g, entry);
	engine_gen_count(g, 1);
	eng.dirty = 1;
}

/* Start waiting generations while the scheduler runs and seats are free. */
static void
engine_promote(void)
{
	struct engine_gen	*g;

	while (!eng.st.paused && eng.st.running < eng.opts->max_num_seqs &&
	    (g = TAILQ_FIRST(&eng.waiting)) != NULL)
		engine_gen_start(g);
}

/* End every generation with finish_reason "abort" (sleep, mode=abort). */
static void
engine_abort_all(void)
{
	struct engine_gen	*g;

	while ((g = TAILQ_FIRST(&eng.running)) != NULL ||
	    (g = TAILQ_FIRST(&eng.waiting)) != NULL) {
		engine_emit(FV_MSG_DONE, FV_FINISH_ABORT, g->node.id, g->n, 0,
		    NULL, 0);
		eng.st.aborted++;
		engine_gen_free(g);
	}
}

/* Hold running generations where they are (sleep, mode=keep). */
static void
engine_freeze_all(void)
{
	struct engine_gen	*g;

	TAILQ_FOREACH(g, &eng.running, entry) {
		if (g->state != GEN_RUNNING && g->state != GEN_PARKED)
			continue;
		if (g->tick != NULL)
			evtimer_del(g->tick);
		engine_gen_set(g, GEN_FROZEN);
	}
}

/* Restart generations that were frozen, or parked by a busy executor. */
static void
engine_thaw(int state)
{
	struct engine_gen	*g;

	TAILQ_FOREACH(g, &eng.running, entry) {
		if (g->state != state)
			continue;
		engine_gen_set(g, GEN_RUNNING);
		engine_gen_arm(g);
	}
}

/* ---- commands ---------------------------------------------------------- */

static void
engine_finish(int status, int64_t value, const char *msg)
{
	engine_emit(FV_MSG_REPLY, eng.cmd.op, eng.cmd.cookie, status, value,
	    msg, msg != NULL ? strlen(msg) : 0);
	eng.cmd.active = 0;
	eng.exec_busy = 0;
	eng.dirty = 1;
	engine_thaw(GEN_PARKED);
}

/* A delay, and optionally touching the weights, before the next step. */
static void
engine_wait(int64_t ms, int touch)
{
	struct timeval	tv;

	eng.cmd.phase = CMD_DELAY;
	eng.pending = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(eng.timer, &tv);
	if (touch) {
		eng.pending++;
		fv_weights_touch_reset();
		event_active(eng.touch, EV_TIMEOUT, 1);
	}
}

static void
engine_hang(const char *what)
{
	log_warnx("injected fault: the engine hangs fault=%s", what);
	eng.cmd.phase = CMD_HUNG;
	eng.exec_busy = 1;
	eng.dirty = 1;
}

/* Sleep the executor, once the scheduler is paused (and drained). */
static void
engine_sleep_exec(void)
{
	int	level = (int)eng.cmd.a;

	if (level == 0) {
		engine_finish(200, 0, NULL);
		return;
	}
	if (eng.st.tags != 0) {
		log_warnx("Executor is already sleeping.");
		engine_finish(200, 0, NULL);
		return;
	}
	eng.exec_busy = 1;
	engine_wait(level == 1 ? eng.opts->sleep1_ms : eng.opts->sleep2_ms, 0);
}

static void
engine_sleep_done(void)
{
	int	 level = (int)eng.cmd.a;
	char	*why;

	if (fv_cudagpu_sleep(level, &why) != 0) {
		engine_finish(500, 0, why);
		free(why);
		return;
	}
	eng.st.tags = FV_TAG_WEIGHTS | FV_TAG_KV;
	eng.st.level = level;
	if (level == 2) {
		fv_weights_unmap();
		eng.st.discarded = 1;
	}
	eng.st.sleeps++;
	log_info("It took %.6f seconds to fall asleep. level=%d",
	    (double)(level == 1 ? eng.opts->sleep1_ms : eng.opts->sleep2_ms) /
	    1000, level);
	engine_finish(200, 0, NULL);
}

static void
engine_sleep(void)
{
	if (fv_faults_take(&eng.faults, FV_FAULT_FAIL_SLEEP, NULL)) {
		log_warnx("injected fault: sleep fails fault=fail_sleep");
		engine_finish(500, 0, "injected fault: sleep failed");
		return;
	}
	if (fv_faults_take(&eng.faults, FV_FAULT_HANG_SLEEP, NULL)) {
		engine_hang("hang_sleep");
		return;
	}
	switch (eng.cmd.b) {
	case FV_MODE_ABORT:
		engine_abort_all();
		break;
	case FV_MODE_KEEP:
		engine_freeze_all();
		break;
	}
	eng.st.paused = 1;
	eng.dirty = 1;
	if (eng.cmd.b == FV_MODE_WAIT && eng.st.running - eng.st.frozen > 0) {
		eng.cmd.phase = CMD_DRAIN;	/* engine_post continues */
		return;
	}
	engine_sleep_exec();
}

/* Resume the scheduler: thaw frozen generations, start waiting ones. */
static void
engine_resume(void)
{
	eng.st.paused = 0;
	eng.dirty = 1;
	engine_thaw(GEN_FROZEN);
	engine_finish(200, 0, NULL);
}

static int
engine_wake_tags(void)
{
	if (eng.cmd.a & FV_TAG_ALL)
		return (FV_TAG_WEIGHTS | FV_TAG_KV);
	return ((int)eng.cmd.a & (FV_TAG_WEIGHTS | FV_TAG_KV));
}

static void
engine_wake(void)
{
	if (fv_faults_take(&eng.faults, FV_FAULT_FAIL_WAKE, NULL)) {
		log_warnx("injected fault: wake_up fails fault=fail_wake");
		engine_finish(500, 0, "injected fault: wake_up failed");
		return;
	}
	if (fv_faults_take(&eng.faults, FV_FAULT_HANG_WAKE, NULL)) {
		engine_hang("hang_wake");
		return;
	}
	if ((eng.st.tags & engine_wake_tags()) == 0) {
		if (eng.st.tags == 0 && !(eng.cmd.a & FV_TAG_SCHED))
			log_warnx("Executor is not sleeping.");
		engine_resume();
		return;
	}
	eng.exec_busy = 1;
	engine_wait(eng.opts->wake_ms, 0);
}

static void
engine_wake_done(void)
{
	int	 wake = engine_wake_tags() & eng.st.tags, rc;
	char	*why = NULL;

	if ((rc = fv_cudagpu_wake(wake, &why)) == -1) {
		/* No room on the GPU: still asleep. */
		engine_finish(500, 0, why);
		free(why);
		return;
	}
	if ((wake & FV_TAG_WEIGHTS) && eng.st.level == 2 &&
	    eng.opts->gpu_mode == FV_GPU_NONE && fv_weights_map((size_t)eng.opts->weights_mb * 1024 * 1024) != 0)
		log_warn("cannot map the weights again");
	eng.st.tags &= ~wake;
	if (eng.st.tags == 0)
		eng.st.level = 0;
	eng.st.wakes++;
	log_info("It took %.6f seconds to wake up tags %s.",
	    (double)eng.opts->wake_ms / 1000,
	    wake == (FV_TAG_WEIGHTS | FV_TAG_KV) ? "weights,kv_cache" :
	    (wake & FV_TAG_WEIGHTS) ? "weights" : "kv_cache");
	if (rc != 0) {
		/* Awake, with damaged weights: the wake says so. */
		eng.st.paused = 0;
		engine_thaw(GEN_FROZEN);
		engine_finish(500, 0, why);
		free(why);
		return;
	}
	engine_resume();
}

static void
engine_reload(void)
{
	if (fv_faults_take(&eng.faults, FV_FAULT_FAIL_RELOAD, NULL)) {
		log_warnx("injected fault: reload_weights fails "
		    "fault=fail_reload");
		engine_finish(500, 0, "injected fault: reload_weights failed");
		return;
	}
	if (eng.st.tags & FV_TAG_WEIGHTS) {
		engine_finish(500, 0, "cannot reload weights while they are "
		    "asleep; call /wake_up (tags=weights) first");
		return;
	}
	if (eng.opts->gpu_mode == FV_GPU_NONE &&
	    fv_weights_map((size_t)eng.opts->weights_mb * 1024 * 1024) != 0) {
		engine_finish(500, 0, "cannot allocate memory for the weights");
		return;
	}
	eng.exec_busy = 1;
	engine_wait(eng.opts->reload_ms, 1);
}

static void
engine_reload_done(void)
{
	char	*why;

	if (fv_cudagpu_reload(&why) != 0) {
		engine_finish(500, 0, why);
		free(why);
		return;
	}
	eng.st.discarded = 0;
	eng.st.reloads++;
	log_info("reloaded the weights ms=%lld", (long long)eng.opts->reload_ms);
	engine_finish(200, 0, NULL);
}

/* Come back in the sleep state a (fake) CRIU image was dumped in. */
static void
engine_restore_state(const struct fv_gpustate *rs)
{
	eng.st.level = rs->level;
	eng.st.tags = rs->tags;
	eng.st.discarded = rs->discarded;
	eng.st.nccl_suspended = rs->nccl;
	eng.st.paused = rs->paused;
	if (rs->discarded)
		fv_weights_unmap();
	log_info("restored from a checkpoint level=%d tags=%d discarded=%d "
	    "nccl_suspended=%d paused=%d", rs->level, rs->tags, rs->discarded,
	    rs->nccl, rs->paused);
}

/* One of the timer or the touching job is done. */
static void
engine_step_done(void)
{
	if (--eng.pending > 0)
		return;
	if (eng.starting) {
		eng.starting = 0;
		eng.st.ready = 1;
		eng.dirty = 1;
		if (eng.opts->has_restore)
			engine_restore_state(&eng.opts->restore);
		log_info("engine ready weights_mb=%lld",
		    (long long)eng.opts->weights_mb);
		engine_emit(FV_MSG_READY, 0, 0, 0, 0, NULL, 0);
		return;
	}
	switch (eng.cmd.op) {
	case FV_CALL_SLEEP:
		engine_sleep_done();
		break;
	case FV_CALL_WAKE:
		engine_wake_done();
		break;
	case FV_CALL_RELOAD:
		engine_reload_done();
		break;
	}
}

static void
engine_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	engine_step_done();
	engine_post();
}

static void
engine_touch_cb(evutil_socket_t fd, short events, void *arg)
{
	if (!fv_weights_touch_step()) {
		event_active(eng.touch, EV_TIMEOUT, 1);
		return;
	}
	engine_step_done();
	engine_post();
}

static void
engine_call(const struct fv_msg *m)
{
	int	ok;

	eng.cmd.active = 1;
	eng.cmd.cookie = m->id;
	eng.cmd.op = m->op;
	eng.cmd.a = m->a;
	eng.cmd.b = m->b;
	eng.dirty = 1;
	switch (m->op) {
	case FV_CALL_SLEEP:
		engine_sleep();
		break;
	case FV_CALL_WAKE:
		engine_wake();
		break;
	case FV_CALL_IS_SLEEPING:
		engine_finish(200, eng.st.paused || eng.st.tags != 0, NULL);
		break;
	case FV_CALL_RELOAD:
		engine_reload();
		break;
	case FV_CALL_SUSPEND_NCCL:
	case FV_CALL_RESUME_NCCL:
		eng.st.nccl_suspended = (m->op == FV_CALL_SUSPEND_NCCL);
		engine_finish(200, 0, NULL);
		break;
	case FV_CALL_RESET_PREFIX:
		ok = (m->a != 0 || eng.st.running == 0);
		if (ok)
			eng.st.prefix_resets++;
		engine_finish(200, ok, NULL);
		break;
	default:
		engine_finish(500, 0, "unknown engine call");
		break;
	}
}

/* Work left at the end of every entry point: drains, seats, state. */
static void
engine_post(void)
{
	struct engine_queued	*q;

	if (eng.in_post)
		return;
	eng.in_post = 1;
	for (;;) {
		if (eng.cmd.active && eng.cmd.phase == CMD_DRAIN &&
		    eng.st.running - eng.st.frozen == 0) {
			eng.cmd.phase = CMD_DELAY;
			engine_sleep_exec();
			continue;
		}
		if (!eng.cmd.active && (q = TAILQ_FIRST(&eng.inq)) != NULL) {
			TAILQ_REMOVE(&eng.inq, q, entry);
			eng.ninq--;
			eng.dirty = 1;
			engine_handle(&q->m, q->data);
			free(q->data);
			free(q);
			continue;
		}
		break;
	}
	engine_promote();
	if (eng.dirty)
		engine_send_state();
	eng.in_post = 0;
}

static void
engine_abort(uint64_t id)
{
	struct fv_idnode	*n;
	struct engine_queued	*q;

	if ((n = fv_idmap_find(&eng.ids, id)) != NULL) {
		engine_gen_free((struct engine_gen *)n);
		return;
	}
	TAILQ_FOREACH(q, &eng.inq, entry) {
		if (q->m.type == FV_MSG_ADD && q->m.id == id) {
			TAILQ_REMOVE(&eng.inq, q, entry);
			eng.ninq--;
			eng.dirty = 1;
			free(q->data);
			free(q);
			return;
		}
	}
}

/* Handle a message now (ADD and CALL only when no command runs). */
static void
engine_handle(const struct fv_msg *m, const char *data)
{
	switch (m->type) {
	case FV_MSG_ADD:
		engine_add(m);
		break;
	case FV_MSG_CALL:
		engine_call(m);
		break;
	}
}

void
fv_engine_dispatch(const struct fv_msg *m, const char *data)
{
	struct engine_queued	*q;

	switch (m->type) {
	case FV_MSG_ABORT:
		engine_abort(m->id);
		break;
	case FV_MSG_FAULT:
		if (m->op >= FV_FAULT_MAX)
			memset(&eng.faults, 0, sizeof(eng.faults));
		else
			fv_faults_set(&eng.faults, m->op, (int32_t)m->a,
			    (int32_t)m->b);
		eng.dirty = 1;
		break;
	case FV_MSG_ADD:
	case FV_MSG_CALL:
		if (!eng.cmd.active && TAILQ_EMPTY(&eng.inq)) {
			engine_handle(m, data);
			break;
		}
		if (eng.ninq >= FV_ENGINE_QUEUE_MAX) {
			if (m->type == FV_MSG_ADD)
				engine_emit(FV_MSG_GENERR, 0, m->id, 503, 0,
				    "the engine's queue is full", 26);
			else
				engine_emit(FV_MSG_REPLY, m->op, m->id, 503, 0,
				    "the engine's queue is full", 26);
			break;
		}
		q = xcalloc(1, sizeof(*q));
		q->m = *m;
		q->m.len = 0;
		TAILQ_INSERT_TAIL(&eng.inq, q, entry);
		eng.ninq++;
		eng.dirty = 1;
		break;
	default:
		log_warnx("engine: unexpected message type=%d", m->type);
		break;
	}
	engine_post();
}

static void
engine_exit_cb(evutil_socket_t fd, short events, void *arg)
{
	int	code = (int)(intptr_t)arg;

	log_warnx("injected fault: exiting during startup "
	    "fault=exit_startup code=%d", code);
	fv_channel_flush();
	_exit(code);
}

void
fv_engine_init(struct event_base *base, struct fv_opts *opts)
{
	memset(&eng, 0, sizeof(eng));
	eng.base = base;
	eng.opts = opts;
	eng.faults = opts->faults;
	fv_idmap_init(&eng.ids);
	TAILQ_INIT(&eng.running);
	TAILQ_INIT(&eng.waiting);
	TAILQ_INIT(&eng.inq);
	eng.timer = evtimer_new(base, engine_timer_cb, NULL);
	eng.touch = event_new(base, -1, 0, engine_touch_cb, NULL);
}

/* Load the "weights" and take the startup time, then say READY. */
void
fv_engine_start(void)
{
	struct timeval	 tv;
	int32_t		 code;
	size_t		 size = (size_t)eng.opts->weights_mb * 1024 * 1024;
	char		*why;

	log_info("loading weights model=%s weights_mb=%lld startup_ms=%lld",
	    eng.opts->model, (long long)eng.opts->weights_mb,
	    (long long)eng.opts->startup_ms);
	/* With --fake-gpu cuda the weights are device memory instead. */
	if (eng.opts->gpu_mode == FV_GPU_NONE && fv_weights_map(size) != 0)
		fatal("cannot allocate the weights weights_mb=%lld",
		    (long long)eng.opts->weights_mb);
	if (fv_fakegpu_start(eng.opts) != 0) {
		fv_channel_flush();
		_exit(1);
	}
	if (fv_cudagpu_start(eng.opts, &why) != 0) {
		log_warnx("%s", why);
		free(why);
		fv_channel_flush();
		_exit(1);
	}
	eng.starting = 1;
	engine_wait(eng.opts->startup_ms, 1);
	if (fv_faults_take(&eng.faults, FV_FAULT_EXIT_STARTUP, &code)) {
		/* Startup never completes: the exit comes first. */
		eng.pending++;
		eng.exit_ev = evtimer_new(eng.base, engine_exit_cb,
		    (void *)(intptr_t)code);
		tv.tv_sec = eng.opts->startup_ms / 2000;
		tv.tv_usec = (eng.opts->startup_ms / 2 % 1000) * 1000;
		evtimer_add(eng.exit_ev, &tv);
	}
}
