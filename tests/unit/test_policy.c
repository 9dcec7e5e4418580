/*
 * test_policy.c -- each policy's decisions on constructed situations: the
 * views are built by hand, so every test says exactly what the switcher
 * would show the policy and what the policy must answer.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/switcher/policy.h"
#include "unit.h"

#define A	0
#define B	1
#define C	2

static struct policy_config	 pc;
static struct policy_model	 pm[3];
static struct policy_view	 view;
static struct policy		*pol;

/* A view where model a is active since `since` and b, c are asleep. */
static void
setup_view(int64_t since)
{
	memset(pm, 0, sizeof(pm));
	pm[A].state = POLICY_ACTIVE;
	pm[A].active_since_ms = since;
	pm[B].state = POLICY_ASLEEP;
	pm[C].state = POLICY_ASLEEP;
	view.n_models = 3;
	view.models = pm;
}

/* Model i waits: n requests, the oldest since `oldest`; victim a. */
static void
waiting(int i, uint32_t n, int64_t oldest)
{
	pm[i].queued = n;
	pm[i].oldest_ms = oldest;
	pm[i].candidate = n > 0;
	pm[i].victims = 1u << A;
	pm[i].victim = A;
	pm[i].victims_since_ms = pm[A].active_since_ms;
	pm[i].victims_queued = pm[A].queued;
	pm[i].victims_in_flight = pm[A].in_flight;
	pm[i].cost_ms = 10000;
	pm[i].cost_back_ms = 10000;
}

/* Model i waits for n requests, the oldest since `oldest`; victim v. */
static void
waiting_on(int i, uint32_t n, int64_t oldest, int v)
{
	waiting(i, n, oldest);
	pm[i].victims = 1u << v;
	pm[i].victim = v;
	pm[i].victims_since_ms = pm[v].active_since_ms;
	pm[i].victims_queued = pm[v].queued;
	pm[i].victims_in_flight = pm[v].in_flight;
}

/* Model a is serving. */
static void
busy(uint32_t in_flight)
{
	pm[A].in_flight = in_flight;
	for (int i = B; i <= C; i++)
		pm[i].victims_in_flight = in_flight;
}

static struct policy_decision
decide(int64_t now)
{
	struct policy_decision	d;

	view.now_ms = now;
	policy_decide(pol, &view, &d);
	return (d);
}

static void
make(enum policy_type t)
{
	policy_config_default(&pc);
	pc.type = t;
	pol = policy_new(&pc, 3);
	ck_assert_ptr_nonnull(pol);
}

static void
teardown(void)
{
	policy_free(pol);
	pol = NULL;
}

/* ---- registry ---------------------------------------------------------- */

START_TEST(test_names_and_defaults)
{
	enum policy_type t;

	ck_assert_str_eq(policy_type_name(POLICY_FIFO), "fifo");
	ck_assert_str_eq(policy_type_name(POLICY_COST_AWARE), "cost_aware");
	ck_assert_str_eq(policy_type_name(POLICY_TIME_SLICE), "time_slice");
	ck_assert_str_eq(policy_type_name(POLICY_BATCH_AWARE), "batch_aware");
	ck_assert_int_eq(policy_type_parse("time_slice", &t), 0);
	ck_assert_int_eq(t, POLICY_TIME_SLICE);
	ck_assert_int_eq(policy_type_parse("round_robin", &t), -1);
	ck_assert_int_eq(policy_type_parse("", &t), -1);

	policy_config_default(&pc);
	ck_assert_int_eq(pc.type, POLICY_FIFO);
	ck_assert_uint_eq(pc.request_timeout_secs, 300);
	ck_assert(pc.drain_before_switch);
	ck_assert_int_eq(pc.eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(pc.eviction.process, PROCESS_STOP);
	ck_assert_uint_eq(pc.min_active_secs, 5);
	ck_assert_uint_eq(pc.coalesce_window_ms, 2000);
	ck_assert(pc.amortization_factor == 0.5);
	ck_assert_uint_eq(pc.max_wait_secs, 15);
	ck_assert_uint_eq(pc.tick_interval_ms, 500);
	ck_assert_uint_eq(pc.min_quantum_ms, 2000);

	pc.type = POLICY__COUNT;
	ck_assert_ptr_null(policy_new(&pc, 3));
}
END_TEST

START_TEST(test_only_candidates_are_targets)
{
	struct policy_decision d;

	make(POLICY_FIFO);
	setup_view(0);
	waiting(B, 2, 100);
	pm[B].candidate = false;	/* e.g. its GPUs are busy */
	d = decide(1000);
	ck_assert_int_eq(d.target, -1);
	ck_assert(d.next_ms == POLICY_NEVER);
	teardown();
}
END_TEST

/* ---- fifo -------------------------------------------------------------- */

START_TEST(test_fifo)
{
	struct policy_decision d;

	make(POLICY_FIFO);
	setup_view(0);
	d = decide(100);
	ck_assert_int_eq(d.target, -1);
	ck_assert(d.next_ms == POLICY_NEVER);

	/* The first request for a model that is not active switches. */
	busy(3);
	waiting(B, 1, 100);
	d = decide(100);
	ck_assert_int_eq(d.target, B);

	/* Two waiting: the oldest request first. */
	waiting(C, 4, 50);
	d = decide(200);
	ck_assert_int_eq(d.target, C);
	teardown();
}
END_TEST

/* ---- cost_aware ---------------------------------------------------------- */

START_TEST(test_cost_aware_stale_and_idle)
{
	struct policy_decision d;

	make(POLICY_COST_AWARE);
	/* Stale: switch even inside the serving window. */
	setup_view(10000);
	waiting(B, 1, 0);
	d = decide(15000);
	ck_assert_int_eq(d.target, B);
	d = decide(14999);
	ck_assert_int_eq(d.target, -1);

	/* Nothing active (no victims): switch at once. */
	setup_view(0);
	pm[A].state = POLICY_ASLEEP;
	waiting(B, 1, 14000);
	pm[B].victims = 0;
	pm[B].victim = -1;
	d = decide(14000);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

START_TEST(test_cost_aware_serving_window)
{
	struct policy_decision d;

	make(POLICY_COST_AWARE);
	/* a became active at 20 s; the switch is estimated at 10 s. */
	setup_view(20000);
	waiting(B, 9, 21000);
	d = decide(22000);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 30000);	/* the window's end */
	/* The window holds even when the queue is past the threshold. */
	waiting(B, 20, 21000);
	d = decide(25000);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 30000);
	d = decide(30000);
	ck_assert_int_eq(d.target, B);

	/* Staleness comes first when it is earlier than the window. */
	teardown();
	make(POLICY_COST_AWARE);
	setup_view(20000);
	waiting(B, 1, 6000);
	d = decide(20500);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 21000);
	teardown();
}
END_TEST

START_TEST(test_cost_aware_threshold_and_coalescing)
{
	struct policy_decision d;

	make(POLICY_COST_AWARE);
	/* Past the window; 10 s cost needs ceil(0.5 * 10) = 5 requests. */
	setup_view(0);
	waiting(B, 5, 50000);
	d = decide(50000);
	ck_assert_int_eq(d.target, B);

	teardown();
	make(POLICY_COST_AWARE);
	setup_view(0);
	waiting(B, 4, 50000);
	d = decide(50000);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 52000);	/* one coalescing window */
	/* A later look does not restart the window. */
	d = decide(51000);
	ck_assert_int_eq(d.next_ms, 52000);
	d = decide(52000);
	ck_assert_int_eq(d.target, B);

	/* Reaching the threshold inside the window switches at once. */
	teardown();
	make(POLICY_COST_AWARE);
	setup_view(0);
	waiting(B, 2, 50000);
	d = decide(50000);
	ck_assert_int_eq(d.target, -1);
	waiting(B, 5, 50000);
	d = decide(50500);
	ck_assert_int_eq(d.target, B);

	/* The cost estimate sets the threshold: 3 s needs 2. */
	teardown();
	make(POLICY_COST_AWARE);
	setup_view(0);
	waiting(B, 2, 50000);
	pm[B].cost_ms = 3000;
	d = decide(50000);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

START_TEST(test_cost_aware_gives_up)
{
	struct policy_decision d;

	make(POLICY_COST_AWARE);
	setup_view(0);
	waiting(B, 1, 50000);
	d = decide(50000);
	ck_assert_int_eq(d.next_ms, 52000);
	/* The client gave up: nothing waits, the window is forgotten. */
	waiting(B, 0, 0);
	d = decide(51000);
	ck_assert_int_eq(d.target, -1);
	ck_assert(d.next_ms == POLICY_NEVER);
	/* A new request opens a new window. */
	waiting(B, 1, 60000);
	d = decide(60000);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 62000);
	d = decide(62000);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

/* ---- time_slice ---------------------------------------------------------- */

START_TEST(test_time_slice_no_reactive_switch)
{
	struct policy_decision d;

	make(POLICY_TIME_SLICE);
	setup_view(0);
	d = decide(10000);		/* the tick grid starts here */
	ck_assert_int_eq(d.target, -1);
	/* Between ticks nothing happens, even with a as idle as can be. */
	waiting(B, 3, 10100);
	d = decide(10100);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 10500);
	d = decide(10500);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

START_TEST(test_time_slice_tick_waits_for_idle)
{
	struct policy_decision d;

	make(POLICY_TIME_SLICE);
	setup_view(0);
	d = decide(10000);
	busy(1);
	waiting(B, 3, 10000);
	d = decide(10500);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 11000);
	busy(0);
	d = decide(10700);		/* idle, but no tick yet */
	ck_assert_int_eq(d.target, -1);
	d = decide(11000);
	ck_assert_int_eq(d.target, B);

	/* The active model keeps min_active_secs. */
	teardown();
	make(POLICY_TIME_SLICE);
	setup_view(10000);
	d = decide(10000);
	waiting(B, 3, 10000);
	d = decide(14500);
	ck_assert_int_eq(d.target, -1);
	d = decide(15000);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

START_TEST(test_time_slice_longest_queue)
{
	struct policy_decision d;

	make(POLICY_TIME_SLICE);
	setup_view(0);
	d = decide(10000);
	waiting(B, 2, 10000);
	waiting(C, 5, 10200);
	d = decide(10500);
	ck_assert_int_eq(d.target, C);
	teardown();
}
END_TEST

START_TEST(test_time_slice_stale_and_cold)
{
	struct policy_decision d;

	make(POLICY_TIME_SLICE);
	setup_view(0);
	d = decide(10000);
	busy(4);
	waiting(B, 1, 0);
	d = decide(15000);		/* not on a tick: staleness is reactive */
	ck_assert_int_eq(d.target, B);

	setup_view(0);
	pm[A].state = POLICY_ASLEEP;
	waiting(C, 1, 15100);
	pm[C].victims = 0;
	pm[C].victim = -1;
	d = decide(15100);
	ck_assert_int_eq(d.target, C);
	teardown();
}
END_TEST

START_TEST(test_time_slice_missed_ticks)
{
	struct policy_decision d;

	make(POLICY_TIME_SLICE);
	setup_view(0);
	d = decide(10000);
	/* Ticks passed while nothing waited did nothing; the next is on
	 * the grid after now. */
	waiting(B, 1, 12300);
	d = decide(12300);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 12500);
	d = decide(12500);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

/* ---- batch_aware ------------------------------------------------------- */

/*
 * Let batch_aware time one switch to model a: waking at `at`, ready `ms`
 * later, nothing evicted. Every model is then priced at ms (a model never
 * timed costs the mean of those that were).
 */
static void
teach(int64_t at, int64_t ms)
{
	struct policy_decision d;

	pm[A].state = POLICY_WAKING;
	d = decide(at);
	ck_assert_int_eq(d.target, -1);
	pm[A].state = POLICY_ACTIVE;
	pm[A].active_since_ms = at + ms;
	d = decide(at + ms);
	ck_assert_int_eq(d.target, -1);
}

START_TEST(test_batch_aware_dear_is_time_slice)
{
	struct policy_decision d;

	/* Nothing timed yet: nothing is cheap, time_slice decides. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	d = decide(10000);
	waiting(B, 3, 10100);
	d = decide(10100);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 10500);	/* its tick */
	d = decide(10500);
	ck_assert_int_eq(d.target, B);
	ck_assert(!d.no_cooldown);
	teardown();

	/* Timed at 3 s a switch: a round trip (6 s) is dearer than the
	 * 5 s hold. a keeps its min_active_secs, as under time_slice. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 3000);
	waiting(B, 3, 4000);
	d = decide(4000);
	ck_assert_int_eq(d.target, -1);
	d = decide(7999);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_eq(d.next_ms, 8000);
	d = decide(8000);
	ck_assert_int_eq(d.target, B);
	ck_assert(!d.no_cooldown);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_leaves_idle_at_once)
{
	struct policy_decision d;

	/* 2 s a switch: a round trip (4 s) is cheaper than the hold. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	busy(1);
	waiting(B, 2, 2300);
	d = decide(2300);
	ck_assert_int_eq(d.target, -1);		/* a is serving */
	/* a is idle, 0.7 s after it became active, off the tick: go now. */
	busy(0);
	waiting(B, 2, 2300);
	d = decide(2700);
	ck_assert_int_eq(d.target, B);
	ck_assert(d.no_cooldown);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_preempts_after_round_trip)
{
	struct policy_decision d;

	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	/* a busy since 2 s, one request left; b's oldest arrived at 10 s: a
	 * round trip (4 s) later, at 14 s, b has waited more than leaving
	 * costs a. */
	busy(1);
	waiting(B, 1, 10000);
	d = decide(12000);
	ck_assert_int_eq(d.target, -1);
	ck_assert_int_le(d.next_ms, 14000);	/* or time_slice's tick */
	d = decide(13999);
	ck_assert_int_eq(d.target, -1);
	d = decide(14000);
	ck_assert_int_eq(d.target, B);
	ck_assert(d.no_cooldown);

	/* A busy model keeps min_active_secs: a active since 12 s. */
	pm[A].active_since_ms = 12000;
	waiting(B, 1, 10000);
	d = decide(14000);
	ck_assert_int_eq(d.target, -1);
	d = decide(16999);
	ck_assert_int_eq(d.target, -1);
	d = decide(17000);
	ck_assert_int_eq(d.target, B);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_rides_along_a_backlog)
{
	struct policy_decision d;

	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	/* No drain seen yet: a busy model with more than one request in
	 * flight is not left after a round trip; its new requests ride
	 * along, and b waits for the backlog or its staleness. */
	busy(3);
	waiting(B, 1, 10000);
	d = decide(14000);
	ck_assert_int_eq(d.target, -1);
	busy(2);
	waiting(B, 1, 10000);
	d = decide(16000);
	ck_assert_int_eq(d.target, -1);
	busy(1);
	waiting(B, 1, 10000);
	d = decide(17000);
	ck_assert_int_eq(d.target, B);
	ck_assert(d.no_cooldown);
	/* Stale: time_slice's rule, whatever is in flight. */
	busy(30);
	waiting(B, 1, 10000);
	d = decide(25000);
	ck_assert_int_eq(d.target, B);
	ck_assert(!d.no_cooldown);
	teardown();

	/* a drained 8 requests in 2 s (250 ms each): a quarter of the 4 s
	 * round trip drains 4 of them. 5 in flight rides along, 4 is
	 * little. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	pm[A].in_flight = 8;
	d = decide(3000);
	pm[A].state = POLICY_LEAVING;
	d = decide(3000);
	pm[A].in_flight = 3;
	d = decide(4000);
	pm[A].in_flight = 0;
	d = decide(5000);
	pm[A].state = POLICY_ACTIVE;
	pm[A].active_since_ms = 5000;
	busy(5);
	waiting(B, 1, 10000);
	d = decide(14000);
	ck_assert_int_eq(d.target, -1);
	busy(4);
	waiting(B, 1, 10000);
	d = decide(14100);
	ck_assert_int_eq(d.target, B);
	ck_assert(d.no_cooldown);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_keeps_time_slice_rules)
{
	struct policy_decision d;

	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	/* b stale while a, active since 20 s, is busy: time_slice's
	 * staleness switch, left to the switcher's cooldown. */
	pm[A].active_since_ms = 20000;
	busy(4);
	waiting(B, 1, 6000);
	d = decide(21000);
	ck_assert_int_eq(d.target, B);
	ck_assert(!d.no_cooldown);

	/* A cold start (nothing to evict) goes at once, as time_slice. */
	setup_view(0);
	pm[A].state = POLICY_ASLEEP;
	waiting(C, 1, 22000);
	pm[C].victims = 0;
	pm[C].victim = -1;
	d = decide(22000);
	ck_assert_int_eq(d.target, C);
	ck_assert(!d.no_cooldown);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_choice)
{
	struct policy_decision d;

	make(POLICY_BATCH_AWARE);
	setup_view(0);
	teach(0, 2000);
	pm[A].active_since_ms = 0;
	/* Off the tick: b, 1 request waiting 12 s (13000) beats c, 3
	 * waiting 1 s (6000). */
	waiting(B, 1, 28100);
	waiting(C, 3, 39100);
	d = decide(40100);
	ck_assert_int_eq(d.target, B);
	ck_assert(d.no_cooldown);
	/* c: 5 waiting 1 s (10000) beats b: 1 waiting 2 s (3000). */
	waiting(B, 1, 38100);
	waiting(C, 5, 39100);
	d = decide(40100);
	ck_assert_int_eq(d.target, C);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_times_switches)
{
	struct policy_decision d;

	/* a -> b: a drained by 1 s (nothing in flight), b waking from 1.6 s,
	 * ready at 3.6 s: the switch cost 2.6 s from the drain, not the 2 s
	 * of the wake alone. A round trip is 5.2 s: dear. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	pm[A].state = POLICY_LEAVING;
	pm[A].in_flight = 2;
	d = decide(500);			/* still draining */
	pm[A].in_flight = 0;
	d = decide(1000);
	pm[A].state = POLICY_ASLEEP;
	pm[B].state = POLICY_WAKING;
	d = decide(1600);
	pm[B].state = POLICY_ACTIVE;
	pm[B].active_since_ms = 3600;
	d = decide(3600);
	ck_assert_int_eq(d.target, -1);
	/* b idle, a waits (off the tick): with 2.6 s a switch, b keeps its
	 * hold. */
	waiting_on(A, 1, 3700, B);
	d = decide(3700);
	ck_assert_int_eq(d.target, -1);
	teardown();

	/* The same with the drain done at 1.5 s: 2.1 s, 4.2 s a round trip. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	pm[A].state = POLICY_LEAVING;
	pm[A].in_flight = 2;
	d = decide(1000);
	pm[A].in_flight = 0;
	d = decide(1500);
	pm[A].state = POLICY_ASLEEP;
	pm[B].state = POLICY_WAKING;
	d = decide(1600);
	pm[B].state = POLICY_ACTIVE;
	pm[B].active_since_ms = 3600;
	d = decide(3600);
	waiting_on(A, 1, 3700, B);
	d = decide(3700);
	ck_assert_int_eq(d.target, A);
	ck_assert(d.no_cooldown);
	teardown();
}
END_TEST

START_TEST(test_batch_aware_average_and_failures)
{
	struct policy_decision d;

	/* A failed wake (waking, then asleep) teaches nothing. */
	make(POLICY_BATCH_AWARE);
	setup_view(0);
	pm[A].state = POLICY_WAKING;
	d = decide(0);
	pm[A].state = POLICY_ASLEEP;
	d = decide(1000);
	pm[A].state = POLICY_ACTIVE;	/* not from waking: no sample */
	pm[A].active_since_ms = 1500;
	d = decide(1500);
	waiting(B, 1, 2000);
	d = decide(2000);
	ck_assert_int_eq(d.target, -1);	/* nothing timed: dear */

	/* The first sample is taken raw (2 s: cheap). */
	setup_view(0);
	teach(10000, 2000);
	waiting(B, 1, 12500);
	d = decide(12500);
	ck_assert_int_eq(d.target, B);
	/* Then averaged: 3 s gives (3 x 3 + 7 x 2) / 10 = 2.3 s, still
	 * cheap (4.6 s a round trip) where 3 s alone would not be... */
	setup_view(0);
	teach(20000, 3000);
	waiting(B, 1, 23100);
	d = decide(23100);
	ck_assert_int_eq(d.target, B);
	/* ...and 6 s more gives (18 + 16.1) / 10 = 3.41 s: dear. */
	setup_view(0);
	teach(30000, 6000);
	waiting(B, 1, 36100);
	d = decide(36100);
	ck_assert_int_eq(d.target, -1);
	teardown();
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("policy");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_names_and_defaults);
	tcase_add_test(tc, test_only_candidates_are_targets);
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_cost_aware_stale_and_idle);
	tcase_add_test(tc, test_cost_aware_serving_window);
	tcase_add_test(tc, test_cost_aware_threshold_and_coalescing);
	tcase_add_test(tc, test_cost_aware_gives_up);
	tcase_add_test(tc, test_time_slice_no_reactive_switch);
	tcase_add_test(tc, test_time_slice_tick_waits_for_idle);
	tcase_add_test(tc, test_time_slice_longest_queue);
	tcase_add_test(tc, test_time_slice_stale_and_cold);
	tcase_add_test(tc, test_time_slice_missed_ticks);
	tcase_add_test(tc, test_batch_aware_dear_is_time_slice);
	tcase_add_test(tc, test_batch_aware_leaves_idle_at_once);
	tcase_add_test(tc, test_batch_aware_preempts_after_round_trip);
	tcase_add_test(tc, test_batch_aware_rides_along_a_backlog);
	tcase_add_test(tc, test_batch_aware_keeps_time_slice_rules);
	tcase_add_test(tc, test_batch_aware_choice);
	tcase_add_test(tc, test_batch_aware_times_switches);
	tcase_add_test(tc, test_batch_aware_average_and_failures);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
