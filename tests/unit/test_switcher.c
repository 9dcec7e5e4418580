/*
 * test_switcher.c -- the switch state machine against a scripted fake
 * engine: its ops record every call, and each test completes them later
 * (or, in sync mode, at once from inside the call), at times the test
 * chooses. The races that bite real systems are here: a burst for b while
 * switching to a, requests for the victim during its drain, a client that
 * gives up, a failed wake, a wake that hangs, an operator's switch while
 * the policy wants another; and the resource model, pin, ttl, max_sleeping,
 * warm-up, preload and the cost estimates.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisord/switcher/policy.h"
#include "supervisord/switcher/switcher.h"
#include "unit.h"

#define A	0
#define B	1
#define C	2

enum call_type {
	CALL_DRAIN, CALL_EVICT, CALL_WAKE, CALL_WARMUP, CALL_READY,
	CALL_FAILED, CALL_RECORD, CALL_ROOM
};

struct call {
	enum call_type		 type;
	int			 model;
	struct eviction		 e;
	char			 reason[256];
	struct switch_record	 rec;
};

static struct fake {
	struct call		 calls[512];
	size_t			 n;
	int64_t			 timer;
	int			 state_changed;
	bool			 sync;		/* complete ops inside the call */
	bool			 room;		/* check_room before each wake */
	int64_t			 now;
	struct switcher		*sw;
} f;

static struct model_config	mc[4];
static struct config		cfg;
static int			gpu0[] = { 0 }, gpu1[] = { 1 };

static struct call *
add(enum call_type type, int model)
{
	struct call	*c;

	ck_assert_uint_lt(f.n, sizeof(f.calls) / sizeof(f.calls[0]));
	c = &f.calls[f.n++];
	memset(c, 0, sizeof(*c));
	c->type = type;
	c->model = model;
	return (c);
}

static void
op_drain(void *arg, int m)
{
	add(CALL_DRAIN, m);
	if (f.sync)
		switcher_drained(f.sw, m, f.now);
}

static void
op_evict(void *arg, int m, struct eviction e)
{
	add(CALL_EVICT, m)->e = e;
	if (f.sync)
		switcher_evicted(f.sw, m, true, NULL, f.now);
}

static void
op_wake(void *arg, int m)
{
	add(CALL_WAKE, m);
	if (f.sync)
		switcher_woken(f.sw, m, true, NULL, f.now);
}

static void
op_check_room(void *arg, int m)
{
	add(CALL_ROOM, m);
}

static void
op_warmup(void *arg, int m)
{
	add(CALL_WARMUP, m);
}

static void
op_ready(void *arg, int m)
{
	add(CALL_READY, m);
}

static void
op_failed(void *arg, int m, const char *reason)
{
	snprintf(add(CALL_FAILED, m)->reason, sizeof(f.calls[0].reason), "%s",
	    reason);
}

static void
op_state_changed(void *arg)
{
	f.state_changed++;
}

static void
op_record(void *arg, const struct switch_record *r)
{
	struct call *c = add(CALL_RECORD, r->to);

	c->rec = *r;
	if (r->reason != NULL)
		snprintf(c->reason, sizeof(c->reason), "%s", r->reason);
	c->rec.reason = NULL;
}

static void
op_set_timer(void *arg, int64_t at)
{
	f.timer = at;
}

static const struct switcher_ops ops = {
	.drain = op_drain,
	.evict = op_evict,
	.wake = op_wake,
	.warmup = op_warmup,
	.ready = op_ready,
	.failed = op_failed,
	.state_changed = op_state_changed,
	.record = op_record,
	.set_timer = op_set_timer,
};

/* The same with a room check before each wake. */
static const struct switcher_ops room_ops = {
	.drain = op_drain,
	.evict = op_evict,
	.wake = op_wake,
	.check_room = op_check_room,
	.warmup = op_warmup,
	.ready = op_ready,
	.failed = op_failed,
	.state_changed = op_state_changed,
	.record = op_record,
	.set_timer = op_set_timer,
};

/* n models a, b, c, d, each 0.9 of GPU 0, with llmux 0.7's defaults. */
static void
config(size_t n, enum policy_type type)
{
	static char *names[] = { "a", "b", "c", "d" };

	memset(&cfg, 0, sizeof(cfg));
	memset(mc, 0, sizeof(mc));
	for (size_t i = 0; i < n; i++) {
		mc[i].name = names[i];
		mc[i].model_path = names[i];
		mc[i].port = (uint16_t)(8001 + i);
		mc[i].gpu_memory_utilization = 0.9;
		mc[i].tensor_parallel_size = 1;
	}
	cfg.models = mc;
	cfg.n_models = n;
	policy_config_default(&cfg.policy);
	cfg.policy.type = type;
	cfg.startup_timeout_secs = 600;
	cfg.gpu_count = 1;
}

/* A switcher not started yet (resumed: as after a rebuild). */
static void
create(bool resumed)
{
	struct switcher_params	p;
	bool			room = f.room;

	memset(&f, 0, sizeof(f));
	f.room = room;
	f.timer = SWITCHER_NEVER;
	switcher_params_default(&p);
	p.quiet = true;
	p.wake_timeout_ms = 30000;
	p.resumed = resumed;
	f.sw = switcher_new(&cfg, room ? &room_ops : &ops, NULL, &p);
	ck_assert_ptr_nonnull(f.sw);
}

static void
start(int64_t now)
{
	create(false);
	f.now = now;
	switcher_start(f.sw, now);
}

static void
finish(void)
{
	switcher_free(f.sw);
	f.sw = NULL;
	f.room = false;
}

static size_t
count(enum call_type type, int model)
{
	size_t	n = 0;

	for (size_t i = 0; i < f.n; i++) {
		if (f.calls[i].type == type && (model < 0 ||
		    f.calls[i].model == model))
			n++;
	}
	return (n);
}

static struct call *
last(enum call_type type)
{
	for (size_t i = f.n; i-- > 0;) {
		if (f.calls[i].type == type)
			return (&f.calls[i]);
	}
	return (NULL);
}

/* Index of the first call of a type for a model at or after `from`. */
static size_t
find(enum call_type type, int model, size_t from)
{
	for (size_t i = from; i < f.n; i++) {
		if (f.calls[i].type == type && f.calls[i].model == model)
			return (i);
	}
	return (SIZE_MAX);
}

static void
demand(int m, uint32_t queued, uint32_t in_flight, int64_t wait, int64_t now)
{
	f.now = now;
	switcher_demand(f.sw, m, queued, in_flight, wait, now);
}

static void
timer(int64_t now)
{
	f.now = now;
	switcher_timer(f.sw, now);
}

static const char *
state(void)
{
	static char buf[128];

	return (switcher_state_string(f.sw, buf, sizeof(buf)));
}

/* Wake model m from idle and make it ready at `at`. */
static void
bring_up(int m, int64_t at)
{
	demand(m, 1, 0, 0, at);
	ck_assert_ptr_nonnull(last(CALL_WAKE));
	ck_assert_int_eq(last(CALL_WAKE)->model, m);
	f.now = at;
	switcher_woken(f.sw, m, true, NULL, at);
	ck_assert_int_eq(last(CALL_READY)->model, m);
	demand(m, 0, 0, 0, at);
}

/* ---- llmux 0.7's switch, phase by phase -------------------------------- */

START_TEST(test_seed_switch)
{
	struct call		*r;
	struct switcher_model_status st;

	config(2, POLICY_FIFO);
	start(0);
	ck_assert_str_eq(state(), "idle");

	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	ck_assert_str_eq(state(), "switching:none->a");
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_WAKING);
	switcher_woken(f.sw, A, true, NULL, 3000);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	ck_assert_str_eq(state(), "active:a");
	r = last(CALL_RECORD);
	ck_assert_int_eq(r->rec.from, -1);
	ck_assert_int_eq(r->rec.to, A);
	ck_assert_int_eq(r->rec.wake_ms, 2000);
	ck_assert_int_eq(r->rec.total_ms, 2000);
	ck_assert(r->rec.ok);

	/* b: a has been active 1 s of its 5: cooldown first. */
	demand(A, 0, 1, 0, 3000);
	demand(B, 1, 0, 0, 4000);
	ck_assert_str_eq(state(), "switching:a->b");
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	ck_assert_int_eq(f.timer, 8000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_ACTIVE);
	timer(8000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_DRAINING);
	ck_assert_uint_eq(count(CALL_EVICT, A), 0);
	switcher_drained(f.sw, A, 8500);
	ck_assert_uint_eq(count(CALL_EVICT, A), 1);
	ck_assert_int_eq(last(CALL_EVICT)->e.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	switcher_evicted(f.sw, A, true, NULL, 9000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 12000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	ck_assert_str_eq(state(), "active:b");

	r = last(CALL_RECORD);
	ck_assert_int_eq(r->rec.from, A);
	ck_assert_int_eq(r->rec.to, B);
	ck_assert_int_eq(r->rec.start_ms, 4000);
	ck_assert_int_eq(r->rec.cooldown_ms, 4000);
	ck_assert_int_eq(r->rec.drain_ms, 500);
	ck_assert_int_eq(r->rec.sleep_ms, 500);
	ck_assert_int_eq(r->rec.wake_ms, 3000);
	ck_assert_int_eq(r->rec.total_ms, 8000);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), A, B), 8000);

	switcher_model_status(f.sw, B, &st);
	ck_assert_str_eq(st.name, "b");
	ck_assert_int_eq(st.active_since_ms, 12000);
	ck_assert(st.held == 0.9);
	ck_assert(st.admitted);
	ck_assert_uint_eq(count(CALL_FAILED, -1), 0);
	finish();
}
END_TEST

/* ---- the races ------------------------------------------------------------ */

START_TEST(test_burst_while_switching)
{
	config(2, POLICY_FIFO);
	start(0);
	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	/* A burst for b while a is being woken: no second switch. */
	for (uint32_t q = 1; q <= 20; q++)
		demand(B, q, 0, 0, 1000 + q);
	ck_assert_uint_eq(count(CALL_WAKE, -1), 1);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 1);
	/* More for a join its switch. */
	demand(A, 7, 0, 500, 1500);
	ck_assert_uint_eq(count(CALL_WAKE, -1), 1);

	switcher_woken(f.sw, A, true, NULL, 5000);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	demand(A, 0, 7, 0, 5000);
	/* Then b, once a has had its min_active_secs and drained. */
	ck_assert_str_eq(state(), "switching:a->b");
	ck_assert_int_eq(f.timer, 10000);
	timer(10000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	demand(A, 0, 0, 0, 11000);
	switcher_drained(f.sw, A, 11000);
	switcher_evicted(f.sw, A, true, NULL, 11500);
	switcher_woken(f.sw, B, true, NULL, 14000);
	/* Nothing lost: every model that had requests got ready. */
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	ck_assert_uint_eq(count(CALL_FAILED, -1), 0);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	finish();
}
END_TEST

START_TEST(test_victim_requests_during_drain)
{
	size_t	i;

	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	demand(A, 0, 2, 0, 7000);
	demand(B, 1, 0, 0, 7000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);	/* cooldown was over */
	/* Requests for a while it drains wait: no new switch, no ready. */
	demand(A, 3, 2, 100, 7100);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 1);
	demand(A, 3, 0, 400, 7400);
	switcher_drained(f.sw, A, 7400);
	switcher_evicted(f.sw, A, true, NULL, 8000);
	switcher_woken(f.sw, B, true, NULL, 10000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	/* The next switch is theirs: back to a after b's cooldown. */
	ck_assert_str_eq(state(), "switching:b->a");
	timer(15000);
	i = find(CALL_DRAIN, B, 0);
	ck_assert_uint_ne(i, SIZE_MAX);
	switcher_drained(f.sw, B, 15000);
	switcher_evicted(f.sw, B, true, NULL, 15500);
	ck_assert_uint_ne(find(CALL_WAKE, A, i), SIZE_MAX);
	switcher_woken(f.sw, A, true, NULL, 18000);
	ck_assert_uint_eq(count(CALL_READY, A), 2);
	finish();
}
END_TEST

START_TEST(test_client_gives_up)
{
	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	/* Switch to b in its cooldown; b's client leaves: cancelled. */
	demand(B, 1, 0, 0, 2000);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 1);
	demand(B, 0, 0, 0, 3000);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	ck_assert_str_eq(state(), "active:a");
	timer(6000);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	finish();

	/* cost_aware's coalescing window: nothing when it ends. */
	config(2, POLICY_COST_AWARE);
	start(0);
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 30000);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	ck_assert_int_eq(f.timer, 32000);
	demand(B, 0, 0, 0, 31000);
	timer(32000);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	finish();
}
END_TEST

START_TEST(test_failed_wake_backoff)
{
	struct switcher_model_status	st;
	struct call			*r;

	config(2, POLICY_FIFO);
	start(0);
	demand(A, 2, 0, 0, 1000);
	switcher_woken(f.sw, A, false, "exited with status 1", 4000);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	ck_assert_str_eq(last(CALL_FAILED)->reason, "exited with status 1");
	ck_assert_uint_eq(count(CALL_READY, A), 0);
	r = last(CALL_RECORD);
	ck_assert(!r->rec.ok);
	ck_assert_str_eq(r->reason, "exited with status 1");
	ck_assert_str_eq(state(), "idle");
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.state, SWM_STOPPED);
	ck_assert_uint_eq(st.failures, 1);
	ck_assert_int_eq(st.backoff_until_ms, 6000);
	ck_assert_str_eq(st.last_error, "exited with status 1");

	/* New requests during the backoff wait for it. */
	demand(A, 1, 0, 0, 4100);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	ck_assert_int_eq(f.timer, 6000);
	timer(6000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	/* It grows for repeated failures. */
	switcher_woken(f.sw, A, false, "again", 7000);
	switcher_model_status(f.sw, A, &st);
	ck_assert_uint_eq(st.failures, 2);
	ck_assert_int_eq(st.backoff_until_ms, 11000);
	demand(A, 1, 0, 0, 7000);
	timer(11000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 3);
	switcher_woken(f.sw, A, true, NULL, 12000);
	switcher_model_status(f.sw, A, &st);
	ck_assert_uint_eq(st.failures, 0);
	ck_assert_uint_eq(st.failures_total, 2);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	finish();
}
END_TEST

START_TEST(test_wake_hangs)
{
	struct switcher_model_status st;

	config(2, POLICY_FIFO);
	start(0);
	/* A cold start is bounded by the startup timeout. */
	demand(A, 1, 0, 0, 1000);
	ck_assert_int_eq(f.timer, 601000);
	timer(601000);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	ck_assert_ptr_nonnull(strstr(last(CALL_FAILED)->reason, "timed out"));
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_EVICTING);
	/* The late answer to the wake is ignored. */
	switcher_woken(f.sw, A, true, NULL, 602000);
	ck_assert_uint_eq(count(CALL_READY, A), 0);
	switcher_evicted(f.sw, A, true, NULL, 602500);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	ck_assert(!last(CALL_RECORD)->rec.ok);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);	/* told once */
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.backoff_until_ms, 604500);
	finish();
}
END_TEST

/* A warm wake is bounded by wake_timeout_ms (30 s here) and by the
 * model's startup timeout. */
START_TEST(test_warm_wake_timeout)
{
	config(2, POLICY_FIFO);
	mc[A].eviction = (struct eviction){ WEIGHTS_OFFLOAD,
	    PROCESS_KEEP_RUNNING };
	mc[A].eviction_set = true;
	start(0);
	f.sync = true;
	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	demand(A, 0, 0, 0, 1000);
	demand(B, 1, 0, 0, 10000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	demand(B, 0, 0, 0, 10000);
	f.sync = false;
	demand(A, 1, 0, 0, 20000);
	switcher_drained(f.sw, B, 20000);
	switcher_evicted(f.sw, B, true, NULL, 20000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_WAKING);
	ck_assert_int_eq(f.timer, 50000);
	timer(50000);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	finish();

	/* Nor longer than the model's cold start (its startup timeout). */
	mc[A].startup_timeout_secs = 8;
	start(0);
	f.sync = true;
	demand(A, 1, 0, 0, 1000);
	demand(A, 0, 0, 0, 1000);
	demand(B, 1, 0, 0, 10000);
	demand(B, 0, 0, 0, 10000);
	f.sync = false;
	demand(A, 1, 0, 0, 20000);
	switcher_drained(f.sw, B, 20000);
	switcher_evicted(f.sw, B, true, NULL, 20000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_WAKING);
	ck_assert_int_eq(f.timer, 28000);
	finish();
}
END_TEST

START_TEST(test_operator_switch_over_policy)
{
	size_t	i;
	char	*cause = NULL;

	/* cost_aware wants b, later; the operator orders c now. */
	config(3, POLICY_COST_AWARE);
	start(0);
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 30000);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	i = f.n;
	ck_assert_int_eq(switcher_cmd_switch(f.sw, C, 30500, &cause), 0);
	ck_assert_uint_eq(find(CALL_DRAIN, A, i), i);
	switcher_drained(f.sw, A, 30600);
	switcher_evicted(f.sw, A, true, NULL, 31000);
	ck_assert_uint_ne(find(CALL_WAKE, C, i), SIZE_MAX);
	ck_assert_uint_eq(find(CALL_WAKE, B, i), SIZE_MAX);
	switcher_woken(f.sw, C, true, NULL, 33000);
	ck_assert_uint_eq(count(CALL_READY, C), 1);
	ck_assert(last(CALL_RECORD)->rec.by_operator);
	/* b is served later, after c's serving window. */
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	ck_assert_int_eq(switcher_cmd_switch(f.sw, 9, 33000, &cause), -1);
	ck_assert_str_eq(cause, "unknown model");
	free(cause);
	finish();

	/* fifo has a switch to b in its cooldown: the operator's c wins. */
	config(3, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 2000);
	ck_assert_str_eq(state(), "switching:a->b");
	ck_assert_int_eq(switcher_cmd_switch(f.sw, C, 2500, &cause), 0);
	ck_assert_str_eq(state(), "switching:a->c");
	timer(6000);
	switcher_drained(f.sw, A, 6000);
	switcher_evicted(f.sw, A, true, NULL, 6000);
	ck_assert_int_eq(last(CALL_WAKE)->model, C);
	switcher_woken(f.sw, C, true, NULL, 8000);
	ck_assert_uint_eq(count(CALL_READY, C), 1);
	/* And b still gets its turn. */
	ck_assert_str_eq(state(), "switching:c->b");
	finish();
}
END_TEST

START_TEST(test_pin_and_manual)
{
	char	*cause = NULL;

	config(3, POLICY_FIFO);
	start(0);
	ck_assert_int_eq(switcher_cmd_pin(f.sw, A, 1000, &cause), 0);
	ck_assert_int_eq(switcher_mode(f.sw), SWITCHER_MANUAL);
	ck_assert_int_eq(switcher_pinned(f.sw), A);
	switcher_woken(f.sw, A, true, NULL, 2000);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	ck_assert(switcher_admits(f.sw, A));
	ck_assert(!switcher_admits(f.sw, B));

	/* No automatic switching. */
	demand(B, 3, 0, 0, 10000);
	timer(30000);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	/* The pinned model is never a victim, even for the operator. */
	ck_assert_int_eq(switcher_cmd_wake(f.sw, C, 31000, &cause), 0);
	ck_assert_uint_eq(count(CALL_FAILED, C), 1);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, NULL, 31000, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "pinned"));
	free(cause);

	/* switch in manual mode moves the pin. */
	demand(B, 0, 0, 0, 31000);
	ck_assert_int_eq(switcher_cmd_switch(f.sw, B, 32000, &cause), 0);
	ck_assert_int_eq(switcher_pinned(f.sw), B);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	switcher_drained(f.sw, A, 32000);
	switcher_evicted(f.sw, A, true, NULL, 32000);
	switcher_woken(f.sw, B, true, NULL, 33000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	ck_assert(switcher_admits(f.sw, B));
	ck_assert(!switcher_admits(f.sw, A));

	switcher_cmd_unpin(f.sw, 34000);
	ck_assert_int_eq(switcher_mode(f.sw), SWITCHER_AUTO);
	ck_assert_int_eq(switcher_pinned(f.sw), -1);
	ck_assert(switcher_admits(f.sw, A));
	switcher_cmd_mode(f.sw, SWITCHER_MANUAL, 35000);
	ck_assert_int_eq(switcher_mode(f.sw), SWITCHER_MANUAL);
	ck_assert_int_eq(switcher_pinned(f.sw), -1);
	finish();
}
END_TEST

START_TEST(test_pin_rolls_back_on_failure)
{
	char	*cause = NULL;

	config(2, POLICY_FIFO);
	start(0);
	ck_assert_int_eq(switcher_cmd_pin(f.sw, A, 1000, &cause), 0);
	switcher_woken(f.sw, A, false, "no GPU", 2000);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	ck_assert_int_eq(switcher_mode(f.sw), SWITCHER_AUTO);
	ck_assert_int_eq(switcher_pinned(f.sw), -1);
	finish();
}
END_TEST

START_TEST(test_disjoint_gpus)
{
	config(2, POLICY_FIFO);
	cfg.gpu_count = 2;
	mc[A].gpus = gpu0;
	mc[A].n_gpus = 1;
	mc[B].gpus = gpu1;
	mc[B].n_gpus = 1;
	start(0);
	demand(A, 1, 0, 0, 1000);
	demand(B, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 2);
	switcher_woken(f.sw, B, true, NULL, 2000);
	switcher_woken(f.sw, A, true, NULL, 2500);
	ck_assert_str_eq(state(), "active:a,b");
	ck_assert_uint_eq(switcher_active(f.sw), 3);
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	finish();
}
END_TEST

/*
 * A model restored onto another GPU frees its own for the others: with
 * gpu_count 2 (_i 0), and without it (_i 1), where no `gpus:` list names
 * GPU 1 and the switcher counts it once a model is placed there.
 */
START_TEST(test_model_placed)
{
	struct switcher_model_status st;

	config(2, POLICY_FIFO);
	cfg.gpu_count = _i == 0 ? 2 : 0;
	mc[A].gpus = gpu0;
	mc[A].n_gpus = 1;
	mc[B].gpus = gpu0;
	mc[B].n_gpus = 1;
	start(0);
	ck_assert_uint_eq(switcher_n_gpus(f.sw), _i == 0 ? 2 : 1);
	bring_up(A, 1000);
	/* The engine moved a onto GPU 1 (while waking it, say). */
	switcher_model_placed(f.sw, A, 2);
	ck_assert_uint_eq(switcher_n_gpus(f.sw), 2);
	switcher_model_status(f.sw, A, &st);
	ck_assert_uint_eq(st.gpus, 2);
	/* b's GPU 0 is free: b wakes beside a, a is not drained. */
	demand(B, 1, 0, 0, 9000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	ck_assert_uint_eq(count(CALL_EVICT, A), 0);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 9500);
	ck_assert_str_eq(state(), "active:a,b");
	/* Back home (0), a and b share GPU 0 again: b is a's victim. */
	switcher_model_placed(f.sw, A, 0);
	switcher_model_status(f.sw, A, &st);
	ck_assert_uint_eq(st.gpus, 1);
	/* Out of range: ignored. */
	switcher_model_placed(f.sw, 7, 1);
	switcher_model_placed(f.sw, -1, 1);
	finish();
}
END_TEST

/* Answer a room check: GPU 0 of 80 GiB with `free` of it free. */
static void
room(int m, double free, int64_t now)
{
	struct switcher_gpu_room r = { 0, 80ULL << 30, 0 };

	r.free_bytes = (uint64_t)(free * (double)r.total_bytes);
	f.now = now;
	switcher_room(f.sw, m, &r, 1, now);
}

/*
 * Before each wake the embedder says what is free (NVML): a fraction that
 * fits goes on; one that does not evicts what the resource model believed
 * could stay (a neighbour using more than it claims), then checks again.
 */
START_TEST(test_room_evicts_first)
{
	struct call	*r;

	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.45;
	mc[B].gpu_memory_utilization = 0.45;
	f.room = true;
	start(0);
	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_ROOM, A), 1);
	ck_assert_uint_eq(count(CALL_WAKE, A), 0);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_WAKING);
	room(A, 1.0, 1100);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	switcher_woken(f.sw, A, true, NULL, 2000);
	demand(A, 0, 0, 0, 2000);
	/* b fits beside a as claimed: no victim, but a uses 0.8. */
	demand(B, 1, 0, 0, 9000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	ck_assert_uint_eq(count(CALL_ROOM, B), 1);
	room(B, 0.2, 9100);
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	ck_assert_int_eq(switcher_model_state(f.sw, B), SWM_STOPPED);
	ck_assert_str_eq(state(), "switching:a->b");
	switcher_drained(f.sw, A, 9200);
	ck_assert_uint_eq(count(CALL_EVICT, A), 1);
	switcher_evicted(f.sw, A, true, NULL, 9300);
	/* Checked again once a is evicted: room now. */
	ck_assert_uint_eq(count(CALL_ROOM, B), 2);
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	room(B, 0.99, 9400);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 9900);
	ck_assert_str_eq(state(), "active:b");
	r = last(CALL_RECORD);
	ck_assert(r->rec.ok);
	ck_assert_int_eq(r->rec.from, A);
	ck_assert_uint_eq(r->rec.victims, 1u << A);
	ck_assert_uint_eq(count(CALL_FAILED, -1), 0);
	/* A late or unasked answer changes nothing; no figures: go on. */
	room(B, 0.0, 9950);
	ck_assert_str_eq(state(), "active:b");
	demand(B, 0, 0, 0, 20000);
	demand(A, 1, 0, 0, 20000);	/* fits beside b as claimed */
	ck_assert_uint_eq(count(CALL_ROOM, A), 2);
	switcher_room(f.sw, A, NULL, 0, 20100);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	finish();
}
END_TEST

/* Nothing can be evicted to make room: the wake fails at once, saying why. */
START_TEST(test_room_refused)
{
	struct switcher_model_status st;

	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.5;
	f.room = true;
	start(0);
	demand(A, 2, 0, 0, 1000);
	/* Another program holds 0.7 of GPU 0. */
	room(A, 0.3, 1100);
	ck_assert_uint_eq(count(CALL_WAKE, A), 0);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	ck_assert_str_eq(last(CALL_FAILED)->reason,
	    "not enough free memory on GPU 0 for a: 25769803776 bytes free "
	    "(24.0 GiB), 42949672960 needed (40.0 GiB: gpu_memory_utilization "
	    "0.50 of 80.0 GiB)");
	ck_assert(!last(CALL_RECORD)->rec.ok);
	ck_assert_str_eq(state(), "idle");
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.state, SWM_STOPPED);
	ck_assert_int_gt(st.backoff_until_ms, 1100);
	ck_assert_str_eq(st.last_error, last(CALL_FAILED)->reason);
	/* A CUDA resume places itself: b, suspended, is woken unchecked. */
	{
		struct eviction cs = { WEIGHTS_RETAIN, PROCESS_CUDA_SUSPEND };

		switcher_resync(f.sw, B, SWM_SLEEPING, &cs, 1200);
	}
	demand(B, 1, 0, 0, 1300);
	ck_assert_uint_eq(count(CALL_ROOM, B), 0);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	finish();
}
END_TEST

START_TEST(test_fractions_fit)
{
	config(3, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.4;
	mc[B].gpu_memory_utilization = 0.4;
	mc[C].gpu_memory_utilization = 0.4;
	start(0);
	demand(A, 1, 0, 0, 1000);
	demand(B, 1, 0, 0, 1000);
	/* One switch per GPU at a time: b waits for a's. */
	ck_assert_uint_eq(count(CALL_WAKE, B), 0);
	switcher_woken(f.sw, A, true, NULL, 2000);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 3000);
	ck_assert_str_eq(state(), "active:a,b");
	ck_assert_uint_eq(count(CALL_DRAIN, -1), 0);
	/* c needs room: the idle one goes, though a was used earlier. */
	demand(A, 0, 2, 0, 9000);
	demand(B, 0, 0, 0, 9000);
	demand(C, 1, 0, 0, 9500);
	ck_assert_uint_eq(count(CALL_DRAIN, B), 1);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	finish();
}
END_TEST

START_TEST(test_residues)
{
	struct switcher_model_status st;

	/* Offloaded a keeps a CUDA context: 0.01 of the GPU. */
	config(3, POLICY_FIFO);
	for (int i = 0; i < 3; i++) {
		mc[i].eviction = (struct eviction){ WEIGHTS_OFFLOAD,
		    PROCESS_KEEP_RUNNING };
		mc[i].eviction_set = true;
	}
	start(0);
	f.sync = true;
	bring_up(A, 1000);
	bring_up(B, 10000);
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.state, SWM_SLEEPING);
	ck_assert(st.held == 0.01);
	ck_assert_int_eq(st.slept_with.weights, WEIGHTS_OFFLOAD);
	/* c fits beside a's residue once b sleeps: a is left alone. */
	bring_up(C, 20000);
	ck_assert_uint_eq(count(CALL_EVICT, A), 1);
	ck_assert_uint_eq(count(CALL_EVICT, B), 1);
	finish();

	/* retain+keep_running frees nothing: the victim is stopped. */
	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.6;
	mc[B].gpu_memory_utilization = 0.6;
	mc[A].eviction = (struct eviction){ WEIGHTS_RETAIN,
	    PROCESS_KEEP_RUNNING };
	mc[A].eviction_set = true;
	start(0);
	f.sync = true;
	bring_up(A, 1000);
	bring_up(B, 10000);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	finish();

	/* A sleeping residue that is in the way is stopped. */
	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.5;
	mc[A].eviction = (struct eviction){ WEIGHTS_RETAIN,
	    PROCESS_KEEP_RUNNING };
	mc[A].eviction_set = true;
	start(0);
	f.sync = true;
	bring_up(A, 1000);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, NULL, 2000, NULL), 0);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	switcher_model_status(f.sw, A, &st);
	ck_assert(st.held == 0.5);
	bring_up(B, 3000);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);	/* only the sleep's */
	finish();
}
END_TEST

START_TEST(test_max_sleeping)
{
	config(3, POLICY_FIFO);
	for (int i = 0; i < 3; i++) {
		mc[i].eviction = (struct eviction){ WEIGHTS_OFFLOAD,
		    PROCESS_KEEP_RUNNING };
		mc[i].eviction_set = true;
	}
	cfg.max_sleeping = 1;
	start(0);
	f.sync = true;
	bring_up(A, 1000);
	bring_up(B, 10000);
	ck_assert_uint_eq(count(CALL_EVICT, A), 1);	/* one asleep: fine */
	bring_up(C, 20000);
	/* Two asleep: a, the least recently used, is stopped. */
	ck_assert_uint_eq(count(CALL_EVICT, A), 2);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	ck_assert_int_eq(switcher_model_state(f.sw, B), SWM_SLEEPING);
	finish();
}
END_TEST

/* A report that a's last request is gone, coming after a was put away, is
 * not a use: a is still the least recently used. */
START_TEST(test_max_sleeping_late_demand)
{
	config(3, POLICY_FIFO);
	for (int i = 0; i < 3; i++) {
		mc[i].eviction = (struct eviction){ WEIGHTS_OFFLOAD,
		    PROCESS_KEEP_RUNNING };
		mc[i].eviction_set = true;
	}
	cfg.max_sleeping = 1;
	start(0);
	f.sync = true;
	bring_up(A, 1000);
	demand(A, 0, 1, 0, 1500);
	bring_up(B, 10000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	demand(A, 0, 0, 0, 15000);	/* late: a is asleep */
	bring_up(C, 20000);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	ck_assert_int_eq(switcher_model_state(f.sw, B), SWM_SLEEPING);
	finish();
}
END_TEST

START_TEST(test_ttl)
{
	struct call *r;

	config(2, POLICY_FIFO);
	mc[A].ttl_secs = 60;
	start(0);
	bring_up(A, 1000);
	demand(A, 0, 1, 0, 2000);
	demand(A, 0, 0, 0, 3000);
	ck_assert_int_eq(f.timer, 63000);
	/* Work pushes it back. */
	demand(A, 0, 1, 0, 10000);
	ck_assert(f.timer == SWITCHER_NEVER);
	demand(A, 0, 0, 0, 11000);
	ck_assert_int_eq(f.timer, 71000);
	timer(71000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	switcher_drained(f.sw, A, 71000);
	switcher_evicted(f.sw, A, true, NULL, 72000);
	r = last(CALL_RECORD);
	ck_assert_int_eq(r->rec.to, -1);
	ck_assert_int_eq(r->rec.from, A);
	ck_assert_str_eq(state(), "idle");
	finish();
}
END_TEST

START_TEST(test_timer_rearmed)
{
	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 2000);
	ck_assert_int_eq(f.timer, 6000);
	/* A timer that fires early is set again for the same time. */
	f.timer = 0;
	timer(5999);
	ck_assert_int_eq(f.timer, 6000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	timer(6000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	finish();
}
END_TEST

START_TEST(test_ttl_waits_for_gpu)
{
	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.4;
	mc[B].gpu_memory_utilization = 0.4;
	mc[A].ttl_secs = 10;
	start(0);
	bring_up(A, 1000);
	ck_assert_int_eq(f.timer, 11000);
	/* b fits beside a; its wake holds the GPU past a's ttl. */
	demand(B, 1, 0, 0, 5000);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	ck_assert_int_gt(f.timer, 5000);
	timer(11000);
	ck_assert_int_gt(f.timer, 11000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	switcher_woken(f.sw, B, true, NULL, 12000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	finish();
}
END_TEST

START_TEST(test_cost_from_records)
{
	config(2, POLICY_FIFO);
	start(0);
	f.sync = false;
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 10000);
	switcher_drained(f.sw, A, 10000);
	switcher_evicted(f.sw, A, true, NULL, 11000);
	switcher_woken(f.sw, B, true, NULL, 18000);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), A, B), 8000);
	demand(B, 0, 0, 0, 18000);
	demand(A, 1, 0, 0, 30000);
	switcher_drained(f.sw, B, 30000);
	switcher_evicted(f.sw, B, true, NULL, 30500);
	switcher_woken(f.sw, A, true, NULL, 32000);
	demand(A, 0, 0, 0, 32000);
	demand(B, 1, 0, 0, 40000);
	switcher_drained(f.sw, A, 40000);
	switcher_evicted(f.sw, A, true, NULL, 41000);
	switcher_woken(f.sw, B, true, NULL, 44000);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), A, B),
	    (3 * 4000 + 7 * 8000) / 10);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), B, A), 2000);
	ck_assert_uint_eq(cost_samples(switcher_costs(f.sw), A, B), 2);
	finish();
}
END_TEST

START_TEST(test_warmup_and_preload)
{
	config(2, POLICY_FIFO);
	cfg.warmup = true;
	mc[B].preload = true;
	start(0);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	/* Requests during the warm-up wait for it to end. */
	demand(A, 1, 0, 0, 500);
	switcher_woken(f.sw, A, true, NULL, 1000);
	ck_assert_uint_eq(count(CALL_WARMUP, A), 1);
	ck_assert_uint_eq(count(CALL_READY, A), 0);
	switcher_warmed(f.sw, A, true, NULL, 1500);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	switcher_evicted(f.sw, A, true, NULL, 2000);
	ck_assert_int_eq(last(CALL_WAKE)->model, B);
	switcher_woken(f.sw, B, true, NULL, 3000);
	switcher_warmed(f.sw, B, false, "bad answer", 3500);
	switcher_evicted(f.sw, B, true, NULL, 4000);
	ck_assert_uint_eq(count(CALL_RECORD, -1), 0);
	ck_assert_uint_eq(count(CALL_READY, -1), 0);
	/* Warm-up done: the preload model (b) and a's request compete;
	 * the preload goes first, a follows. */
	ck_assert_uint_eq(count(CALL_WAKE, B), 2);
	switcher_woken(f.sw, B, true, NULL, 5000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	ck_assert_str_eq(state(), "switching:b->a");
	finish();
}
END_TEST

START_TEST(test_sync_engine)
{
	size_t	i;

	config(2, POLICY_FIFO);
	start(0);
	f.sync = true;
	/* A whole switch inside one input. */
	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_READY, A), 1);
	demand(A, 0, 0, 0, 1000);
	i = f.n;
	demand(B, 1, 0, 0, 9000);
	ck_assert_uint_eq(find(CALL_DRAIN, A, i), i);
	ck_assert_uint_eq(find(CALL_EVICT, A, i), i + 1);
	ck_assert_uint_eq(find(CALL_WAKE, B, i), i + 2);
	ck_assert_uint_ne(find(CALL_READY, B, i), SIZE_MAX);
	ck_assert_str_eq(state(), "active:b");
	ck_assert_int_eq(last(CALL_RECORD)->rec.total_ms, 0);
	finish();
}
END_TEST

START_TEST(test_died)
{
	struct switcher_model_status st;

	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	switcher_died(f.sw, A, "signal 9", 2000);
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.state, SWM_STOPPED);
	ck_assert_ptr_nonnull(strstr(st.last_error, "signal 9"));
	ck_assert_str_eq(state(), "idle");
	demand(A, 1, 0, 0, 3000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	/* Dying while being woken is a failed wake. */
	switcher_died(f.sw, A, "signal 11", 3500);
	ck_assert_uint_eq(count(CALL_FAILED, A), 1);
	ck_assert_ptr_nonnull(strstr(last(CALL_FAILED)->reason, "signal 11"));
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.backoff_until_ms, 5500);
	finish();
}
END_TEST

START_TEST(test_proxy_gone)
{
	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	switcher_proxy(f.sw, false, 2000);
	demand(B, 4, 0, 0, 10000);		/* stale news: ignored */
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	switcher_proxy(f.sw, true, 11000);
	demand(B, 4, 0, 0, 11000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	finish();
}
END_TEST

START_TEST(test_sleep_command)
{
	struct eviction	 e = { WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	char		*cause = NULL;
	struct call	*r;

	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	/* No cooldown for the operator's sleep. */
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &e, 1500, &cause), 0);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	switcher_drained(f.sw, A, 1600);
	ck_assert_int_eq(last(CALL_EVICT)->e.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_KEEP_RUNNING);
	switcher_evicted(f.sw, A, true, NULL, 2000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	r = last(CALL_RECORD);
	ck_assert_int_eq(r->rec.to, -1);
	ck_assert(r->rec.by_operator);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, NULL, 2500, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "not awake"));
	free(cause);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, -1, NULL, 2500, &cause), -1);
	free(cause);

	/* set eviction: the next sleep uses it. */
	ck_assert_int_eq(switcher_cmd_set_eviction(f.sw, A,
	    (struct eviction){ WEIGHTS_DISCARD, PROCESS_CUDA_SUSPEND }, 2500,
	    &cause), 0);
	ck_assert_int_eq(switcher_cmd_set_eviction(f.sw, A,
	    (struct eviction){ WEIGHTS__COUNT, PROCESS_STOP }, 2500, &cause),
	    -1);
	free(cause);
	ck_assert_int_eq(switcher_cmd_wake(f.sw, A, 3000, &cause), 0);
	switcher_woken(f.sw, A, true, NULL, 3500);
	ck_assert_uint_eq(count(CALL_READY, A), 2);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, NULL, 4000, &cause), 0);
	switcher_drained(f.sw, A, 4000);
	ck_assert_int_eq(last(CALL_EVICT)->e.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_CUDA_SUSPEND);
	finish();
}
END_TEST

START_TEST(test_eviction_fixed_when_planned)
{
	struct eviction	 e = { WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	char		*cause = NULL;

	/* The room for b was planned with a stopped (retain+stop, no
	 * residue); a change made during the drain is for a's next sleep. */
	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	demand(B, 1, 0, 0, 9000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	ck_assert_int_eq(switcher_cmd_set_eviction(f.sw, A, e, 9050, &cause),
	    0);
	switcher_drained(f.sw, A, 9100);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	switcher_evicted(f.sw, A, true, NULL, 9200);
	switcher_woken(f.sw, B, true, NULL, 9300);
	demand(B, 0, 0, 0, 9300);
	demand(A, 1, 0, 0, 20000);
	ck_assert_int_eq(last(CALL_DRAIN)->model, B);
	switcher_drained(f.sw, B, 20000);
	switcher_evicted(f.sw, B, true, NULL, 20000);
	switcher_woken(f.sw, A, true, NULL, 21000);
	demand(A, 0, 0, 0, 21000);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, NULL, 22000, &cause), 0);
	switcher_drained(f.sw, A, 22000);
	ck_assert_int_eq(last(CALL_EVICT)->e.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_KEEP_RUNNING);
	finish();
}
END_TEST

START_TEST(test_drain_timeout_and_evict_failure)
{
	struct call *r;

	config(2, POLICY_FIFO);
	cfg.policy.drain_timeout_secs = 30;
	start(0);
	bring_up(A, 1000);
	demand(A, 0, 5, 0, 9000);
	demand(B, 1, 0, 0, 9000);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	ck_assert_int_eq(f.timer, 39000);
	timer(39000);			/* in-flight never finished */
	ck_assert_uint_eq(count(CALL_EVICT, A), 1);
	switcher_evicted(f.sw, A, false, "sleep: HTTP 500", 40000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 42000);
	r = last(CALL_RECORD);
	ck_assert(r->rec.ok);
	ck_assert_uint_eq(r->rec.evict_failures, 1);
	ck_assert_int_eq(r->rec.drain_ms, 30000);
	finish();
}
END_TEST

START_TEST(test_time_slice_in_switcher)
{
	config(2, POLICY_TIME_SLICE);
	start(0);
	bring_up(A, 1000);
	demand(A, 0, 1, 0, 7000);
	demand(B, 1, 0, 0, 7100);
	/* Never reactively: a is busy, b waits for a tick with a idle. */
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	demand(A, 0, 0, 0, 7200);
	ck_assert_uint_eq(switcher_switches(f.sw, NULL, 0), 0);
	ck_assert_int_eq(f.timer, 7500);
	timer(7500);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	finish();
}
END_TEST

/* A decision with no_cooldown drains the victim at once. */
START_TEST(test_policy_without_cooldown)
{
	struct call	*r;

	config(2, POLICY_BATCH_AWARE);
	start(0);
	/* a takes 2 s to wake: batch_aware times it, 4 s a round trip. */
	demand(A, 1, 0, 0, 1000);
	ck_assert_uint_eq(count(CALL_WAKE, A), 1);
	f.now = 3000;
	switcher_woken(f.sw, A, true, NULL, 3000);
	demand(A, 0, 1, 0, 3000);
	demand(A, 0, 0, 0, 3500);
	/* a, active 1 s of its 5 and idle: no cooldown, drained now. */
	demand(B, 1, 0, 0, 4000);
	ck_assert_str_eq(state(), "switching:a->b");
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	switcher_drained(f.sw, A, 4000);
	switcher_evicted(f.sw, A, true, NULL, 4200);
	ck_assert_uint_eq(count(CALL_WAKE, B), 1);
	switcher_woken(f.sw, B, true, NULL, 6000);
	ck_assert_uint_eq(count(CALL_READY, B), 1);
	r = last(CALL_RECORD);
	ck_assert_int_eq(r->rec.from, A);
	ck_assert_int_eq(r->rec.to, B);
	ck_assert_int_eq(r->rec.cooldown_ms, 0);
	ck_assert_int_eq(r->rec.total_ms, 2000);

	/* A busy victim is not drained before the policy wants it. */
	demand(B, 0, 3, 0, 6000);
	demand(A, 1, 0, 0, 6100);
	ck_assert_uint_eq(count(CALL_DRAIN, B), 0);
	finish();
}
END_TEST

START_TEST(test_checkpointed_start)
{
	config(2, POLICY_FIFO);
	mc[A].checkpoint_path = "/var/lib/llmux/a";
	start(0);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	demand(A, 1, 0, 0, 1000);
	/* A CRIU restore is bounded like a cold start. */
	ck_assert_int_eq(f.timer, 601000);
	ck_assert_int_eq(switcher_model_index(f.sw, "b"), B);
	ck_assert_int_eq(switcher_model_index(f.sw, "z"), -1);
	ck_assert_str_eq(switcher_model_name(f.sw, A), "a");
	ck_assert_ptr_null(switcher_model_name(f.sw, 7));
	ck_assert_str_eq(switcher_policy_name(f.sw), "fifo");
	ck_assert_uint_eq(switcher_n_gpus(f.sw), 1);
	finish();
}
END_TEST


/* ---- what the daemon tells the switcher about the engine ------------------ */

START_TEST(test_restore_and_resync)
{
	struct eviction		 off = { WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	struct cost_ema		 e = { 3000, 1 };
	struct switcher_model_status st;

	config(3, POLICY_FIFO);
	cfg.warmup = true;
	mc[C].preload = true;
	create(true);
	/* Before the start: what a restarted supervisor re-adopted. */
	switcher_resync(f.sw, A, SWM_ACTIVE, NULL, 100);
	switcher_resync(f.sw, C, SWM_SLEEPING, &off, 100);
	switcher_resync(f.sw, B, SWM_SLEEPING, NULL, 100);	/* refused */
	switcher_resync(f.sw, B, SWM_WAKING, NULL, 100);	/* refused */
	switcher_restore_mode(f.sw, SWITCHER_MANUAL, B);
	switcher_restore_cost(f.sw, A, B, &e);
	switcher_restore_cost(f.sw, -1, C, &e);
	f.now = 200;
	switcher_start(f.sw, 200);
	/* Resumed: no warm-up, no preload. */
	ck_assert_uint_eq(count(CALL_WAKE, -1), 0);
	ck_assert_str_eq(state(), "active:a");
	ck_assert_int_eq(switcher_model_state(f.sw, B), SWM_STOPPED);
	switcher_model_status(f.sw, C, &st);
	ck_assert_int_eq(st.state, SWM_SLEEPING);
	ck_assert_int_eq(st.slept_with.weights, WEIGHTS_OFFLOAD);
	ck_assert(st.held > 0.0 && st.held < 0.1);
	switcher_model_status(f.sw, A, &st);
	ck_assert_int_eq(st.active_since_ms, 100);
	ck_assert_int_eq(switcher_mode(f.sw), SWITCHER_MANUAL);
	ck_assert_int_eq(switcher_pinned(f.sw), B);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), A, B), 3000);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), -1, C), 3000);
	ck_assert_int_eq(cost_estimate(switcher_costs(f.sw), B, A),
	    COST_INITIAL_MS);

	/* The pinned model's demand wakes it; a resync of a victim in the
	 * switch is ignored, its own completions say how it ends. */
	demand(B, 1, 0, 0, 1000);
	ck_assert_str_eq(state(), "switching:a->b");
	switcher_resync(f.sw, A, SWM_STOPPED, NULL, 1100);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_ACTIVE);
	timer(5100);
	switcher_drained(f.sw, A, 5100);
	switcher_evicted(f.sw, A, true, NULL, 5200);
	switcher_woken(f.sw, B, true, NULL, 5300);
	ck_assert_str_eq(state(), "active:b");
	/* Outside a switch it takes: a validate left a awake. */
	switcher_resync(f.sw, A, SWM_ACTIVE, NULL, 6000);
	ck_assert_str_eq(state(), "active:a,b");
	switcher_resync(f.sw, A, SWM_STOPPED, NULL, 6100);
	ck_assert_str_eq(state(), "active:b");
	/* Out of range: nothing. */
	switcher_resync(f.sw, 9, SWM_ACTIVE, NULL, 6200);
	switcher_restore_cost(f.sw, 9, A, &e);
	switcher_restore_mode(f.sw, SWITCHER_MANUAL, 9);
	ck_assert_int_eq(switcher_pinned(f.sw), -1);
	finish();
}
END_TEST

START_TEST(test_restart)
{
	config(2, POLICY_FIFO);
	start(0);
	bring_up(A, 1000);
	switcher_died(f.sw, A, "killed by signal 9", 2000);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);
	/* It fits as things are: woken without a request. */
	switcher_restart(f.sw, A, 2500);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	switcher_woken(f.sw, A, true, NULL, 3000);
	ck_assert_uint_eq(count(CALL_READY, A), 2);
	/* Awake already: nothing. */
	switcher_restart(f.sw, A, 3100);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	/* b took the GPU: a's restart would need an eviction; dropped. */
	demand(B, 1, 0, 0, 9000);
	switcher_drained(f.sw, A, 9000);
	switcher_evicted(f.sw, A, true, NULL, 9100);
	switcher_woken(f.sw, B, true, NULL, 9200);
	switcher_restart(f.sw, A, 9300);
	ck_assert_uint_eq(count(CALL_WAKE, A), 2);
	ck_assert_str_eq(state(), "active:b");
	finish();
}
END_TEST

START_TEST(test_sleep_sleeping_and_pending)
{
	struct eviction	 off = { WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	struct eviction	 dis = { WEIGHTS_DISCARD, PROCESS_KEEP_RUNNING };
	struct eviction	 stop = { WEIGHTS_RETAIN, PROCESS_STOP };
	char		*cause = NULL;

	config(2, POLICY_FIFO);
	mc[A].gpu_memory_utilization = 0.4;
	mc[B].gpu_memory_utilization = 0.4;
	start(0);
	bring_up(A, 1000);
	/* b fits beside a: a's sleep waits for b's switch to free the GPU. */
	demand(B, 1, 0, 0, 2000);
	ck_assert_str_eq(state(), "switching:none->b");
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &off, 2100, &cause), 0);
	ck_assert(switcher_sleep_pending(f.sw, A));
	ck_assert(!switcher_sleep_pending(f.sw, B));
	ck_assert(!switcher_sleep_pending(f.sw, 9));
	ck_assert_uint_eq(count(CALL_DRAIN, A), 0);
	switcher_woken(f.sw, B, true, NULL, 2500);
	ck_assert(!switcher_sleep_pending(f.sw, A));
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	switcher_drained(f.sw, A, 2600);
	switcher_evicted(f.sw, A, true, NULL, 2700);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);

	/* Asleep: the same eviction (no work) or a stop; not another. */
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &dis, 3000, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "not awake"));
	free(cause);
	cause = NULL;
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &off, 3000, &cause), 0);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	ck_assert_int_eq(last(CALL_EVICT)->model, A);
	ck_assert_int_eq(last(CALL_EVICT)->e.weights, WEIGHTS_OFFLOAD);
	switcher_evicted(f.sw, A, true, NULL, 3100);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_SLEEPING);
	ck_assert_int_eq(last(CALL_RECORD)->rec.to, -1);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &stop, 3200, &cause), 0);
	ck_assert_int_eq(last(CALL_EVICT)->e.process, PROCESS_STOP);
	switcher_evicted(f.sw, A, true, NULL, 3300);
	ck_assert_int_eq(switcher_model_state(f.sw, A), SWM_STOPPED);

	/* A pending sleep whose model died is dropped, with no record. */
	bring_up(A, 4000);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, B, &off, 4200, &cause), 0);
	ck_assert_uint_eq(count(CALL_DRAIN, B), 1);
	ck_assert_int_eq(switcher_cmd_sleep(f.sw, A, &off, 4300, &cause), 0);
	ck_assert(switcher_sleep_pending(f.sw, A));
	switcher_died(f.sw, A, "killed by signal 9", 4400);
	switcher_drained(f.sw, B, 4500);
	switcher_evicted(f.sw, B, true, NULL, 4600);
	ck_assert(!switcher_sleep_pending(f.sw, A));
	ck_assert_int_eq(last(CALL_RECORD)->rec.from, B);
	ck_assert_uint_eq(count(CALL_DRAIN, A), 1);
	finish();
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("switcher");
	TCase	*tc = tcase_create("core");

	log_init("test_switcher", 0);
	tcase_add_test(tc, test_seed_switch);
	tcase_add_loop_test(tc, test_model_placed, 0, 2);
	tcase_add_test(tc, test_burst_while_switching);
	tcase_add_test(tc, test_victim_requests_during_drain);
	tcase_add_test(tc, test_client_gives_up);
	tcase_add_test(tc, test_failed_wake_backoff);
	tcase_add_test(tc, test_wake_hangs);
	tcase_add_test(tc, test_warm_wake_timeout);
	tcase_add_test(tc, test_operator_switch_over_policy);
	tcase_add_test(tc, test_pin_and_manual);
	tcase_add_test(tc, test_pin_rolls_back_on_failure);
	tcase_add_test(tc, test_disjoint_gpus);
	tcase_add_test(tc, test_fractions_fit);
	tcase_add_test(tc, test_residues);
	tcase_add_test(tc, test_max_sleeping);
	tcase_add_test(tc, test_max_sleeping_late_demand);
	tcase_add_test(tc, test_ttl);
	tcase_add_test(tc, test_timer_rearmed);
	tcase_add_test(tc, test_ttl_waits_for_gpu);
	tcase_add_test(tc, test_cost_from_records);
	tcase_add_test(tc, test_warmup_and_preload);
	tcase_add_test(tc, test_sync_engine);
	tcase_add_test(tc, test_died);
	tcase_add_test(tc, test_proxy_gone);
	tcase_add_test(tc, test_sleep_command);
	tcase_add_test(tc, test_eviction_fixed_when_planned);
	tcase_add_test(tc, test_drain_timeout_and_evict_failure);
	tcase_add_test(tc, test_time_slice_in_switcher);
	tcase_add_test(tc, test_policy_without_cooldown);
	tcase_add_test(tc, test_checkpointed_start);
	tcase_add_test(tc, test_restore_and_resync);
	tcase_add_test(tc, test_restart);
	tcase_add_test(tc, test_sleep_sleeping_and_pending);
	tcase_add_test(tc, test_room_evicts_first);
	tcase_add_test(tc, test_room_refused);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
