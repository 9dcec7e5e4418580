/*
 * test_resource.c -- the GPU memory model (residues, fitting, victim
 * choice) and the per-direction switch cost EMA.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "supervisord/switcher/cost.h"
#include "supervisord/switcher/resource.h"
#include "unit.h"

static struct resource_holder
holder(int model, uint64_t gpus, double held, double after,
    enum resource_class class, int64_t last_used)
{
	struct resource_holder h;

	memset(&h, 0, sizeof(h));
	h.model = model;
	h.gpus = gpus;
	h.held = held;
	h.after = after;
	h.evictable = true;
	h.class = class;
	h.last_used_ms = last_used;
	return (h);
}

START_TEST(test_residue)
{
	struct eviction e;

	e = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.01);
	e.weights = WEIGHTS_DISCARD;
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.01);
	e.weights = WEIGHTS_RETAIN;	/* nothing was freed */
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.9);
	e.process = PROCESS_CUDA_SUSPEND;
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.0);
	e.process = PROCESS_CHECKPOINT;
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.0);
	e.process = PROCESS_STOP;
	ck_assert(resource_residue(&e, 0.9, 0.01) == 0.0);
	ck_assert_uint_eq(resource_all_gpus(1), 1);
	ck_assert_uint_eq(resource_all_gpus(3), 7);
	ck_assert(resource_all_gpus(64) == ~(uint64_t)0);
}
END_TEST

START_TEST(test_fits_as_is)
{
	struct resource_holder	h[2];
	uint64_t		v, stop;

	/* Fractions that fit together: nothing to evict. */
	h[0] = holder(0, 1, 0.4, 0.0, RESOURCE_BUSY, 0);
	ck_assert_int_eq(resource_choose_victims(h, 1, 1, 0.5, &v, &stop), 0);
	ck_assert_uint_eq(v, 0);
	/* Disjoint GPUs: nothing to evict either. */
	h[0] = holder(0, 1, 0.9, 0.0, RESOURCE_BUSY, 0);
	h[1] = holder(1, 2, 0.9, 0.0, RESOURCE_BUSY, 0);
	ck_assert_int_eq(resource_choose_victims(h, 2, 4, 0.9, &v, &stop), 0);
	ck_assert_uint_eq(v, 0);
	/* Exactly full is a fit. */
	h[0] = holder(0, 1, 0.1, 0.0, RESOURCE_ASLEEP, 0);
	ck_assert_int_eq(resource_choose_victims(h, 1, 1, 0.9, &v, &stop), 0);
	ck_assert_uint_eq(v, 0);
}
END_TEST

START_TEST(test_victim_preference)
{
	struct resource_holder	h[3];
	uint64_t		v, stop;

	/* Busy a (used long ago) and idle b: the idle one goes. */
	h[0] = holder(0, 1, 0.45, 0.0, RESOURCE_BUSY, 100);
	h[1] = holder(1, 1, 0.45, 0.0, RESOURCE_IDLE, 900);
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.5, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 1);
	ck_assert_uint_eq(stop, 0);
	/* Both idle: the least recently used. */
	h[0].class = RESOURCE_IDLE;
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.5, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 0);
	/* Not evictable (pinned, being woken): never chosen. */
	h[0].evictable = false;
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.5, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 1);
	h[1].evictable = false;
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.5, &v, &stop), -1);
}
END_TEST

START_TEST(test_victims_pruned)
{
	struct resource_holder	h[3];
	uint64_t		v, stop;

	/*
	 * The greedy order takes c (idle, 0.2) first, but making room for
	 * 0.6 needs a (0.6); c turns out unnecessary and is given back.
	 */
	h[0] = holder(0, 1, 0.6, 0.0, RESOURCE_BUSY, 10);
	h[1] = holder(2, 1, 0.2, 0.0, RESOURCE_IDLE, 50);
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.6, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 0);
	/* Sleeping residues are the last resort. */
	h[0] = holder(0, 1, 0.9, 0.01, RESOURCE_IDLE, 10);
	h[1] = holder(1, 1, 0.05, 0.0, RESOURCE_ASLEEP, 0);
	ck_assert_int_eq(resource_choose_victims(h, 2, 1, 0.9, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 0);
}
END_TEST

START_TEST(test_victims_escalate_to_stop)
{
	struct resource_holder	h[1];
	uint64_t		v, stop;

	/* retain+keep_running frees nothing its own way: stop it. */
	h[0] = holder(3, 1, 0.5, 0.5, RESOURCE_IDLE, 0);
	ck_assert_int_eq(resource_choose_victims(h, 1, 1, 0.9, &v, &stop), 0);
	ck_assert_uint_eq(v, 1u << 3);
	ck_assert_uint_eq(stop, 1u << 3);
	/* A claim above 1.0 never fits. */
	ck_assert_int_eq(resource_choose_victims(h, 1, 1, 1.5, &v, &stop), -1);
}
END_TEST

START_TEST(test_victims_multi_gpu)
{
	struct resource_holder	h[3];
	uint64_t		v, stop;

	/* A model on GPUs 0 and 1 needs both freed. */
	h[0] = holder(0, 1, 0.9, 0.0, RESOURCE_IDLE, 0);
	h[1] = holder(1, 2, 0.9, 0.0, RESOURCE_IDLE, 0);
	h[2] = holder(2, 4, 0.9, 0.0, RESOURCE_IDLE, 0);
	ck_assert_int_eq(resource_choose_victims(h, 3, 3, 0.8, &v, &stop), 0);
	ck_assert_uint_eq(v, (1u << 0) | (1u << 1));
}
END_TEST

START_TEST(test_cost_ema)
{
	struct cost_table t;

	cost_init(&t, 3);
	ck_assert_int_eq(cost_estimate(&t, 0, 1), COST_INITIAL_MS);
	ck_assert_uint_eq(cost_samples(&t, 0, 1), 0);
	/* First sample raw. */
	cost_record(&t, 0, 1, 4000);
	ck_assert_int_eq(cost_estimate(&t, 0, 1), 4000);
	/* Then 0.3 * sample + 0.7 * old, in integer ms. */
	cost_record(&t, 0, 1, 8000);
	ck_assert_int_eq(cost_estimate(&t, 0, 1), 5200);
	cost_record(&t, 0, 1, 1001);
	ck_assert_int_eq(cost_estimate(&t, 0, 1), (3 * 1001 + 7 * 5200) / 10);
	ck_assert_uint_eq(cost_samples(&t, 0, 1), 3);
	/* Per direction. */
	ck_assert_int_eq(cost_estimate(&t, 1, 0), COST_INITIAL_MS);
	/* Samples are capped at 60 s. */
	cost_record(&t, 1, 0, 250000);
	ck_assert_int_eq(cost_estimate(&t, 1, 0), 60000);
	/* From none (a start from idle) is a direction of its own. */
	cost_record(&t, -1, 2, 3000);
	ck_assert_int_eq(cost_estimate(&t, -1, 2), 3000);
	ck_assert_int_eq(cost_estimate(&t, 0, 2), COST_INITIAL_MS);
	/* Out of range: ignored, the initial estimate. */
	cost_record(&t, 5, 1, 1);
	cost_record(&t, 0, -1, 1);
	ck_assert_int_eq(cost_estimate(&t, 7, 1), COST_INITIAL_MS);
	cost_free(&t);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("resource");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_residue);
	tcase_add_test(tc, test_fits_as_is);
	tcase_add_test(tc, test_victim_preference);
	tcase_add_test(tc, test_victims_pruned);
	tcase_add_test(tc, test_victims_escalate_to_stop);
	tcase_add_test(tc, test_victims_multi_gpu);
	tcase_add_test(tc, test_cost_ema);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
