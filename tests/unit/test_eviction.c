/*
 * test_eviction.c -- eviction names, levels and "W+P" parsing.
 */
#include <check.h>
#include <stdlib.h>

#include "eviction.h"
#include "unit.h"

START_TEST(test_levels)
{
	struct eviction e;

	ck_assert_int_eq(eviction_from_level(1, &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(e.process, PROCESS_KEEP_RUNNING);
	ck_assert_int_eq(eviction_from_level(2, &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(e.process, PROCESS_KEEP_RUNNING);
	ck_assert_int_eq(eviction_from_level(3, &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(e.process, PROCESS_CUDA_SUSPEND);
	ck_assert_int_eq(eviction_from_level(4, &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(e.process, PROCESS_CHECKPOINT);
	ck_assert_int_eq(eviction_from_level(5, &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(e.process, PROCESS_STOP);
	ck_assert_int_eq(eviction_from_level(0, &e), -1);
	ck_assert_int_eq(eviction_from_level(6, &e), -1);
}
END_TEST

START_TEST(test_parse_format)
{
	struct eviction e;
	char		buf[64];

	ck_assert_int_eq(eviction_parse("offload+cuda_suspend", &e), 0);
	ck_assert_str_eq(eviction_format(&e, buf, sizeof(buf)),
	    "offload+cuda_suspend");
	ck_assert_int_eq(eviction_parse("Discard+Checkpoint", &e), 0);
	ck_assert_int_eq(e.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(e.process, PROCESS_CHECKPOINT);
	ck_assert_int_eq(eviction_parse("4", &e), 0);
	ck_assert_int_eq(e.process, PROCESS_CHECKPOINT);
	ck_assert_int_eq(eviction_parse("retain+", &e), -1);
	ck_assert_int_eq(eviction_parse("melt+stop", &e), -1);
	ck_assert_int_eq(eviction_parse("", &e), -1);
	ck_assert_int_eq(eviction_parse("1x", &e), -1);
	ck_assert_int_eq(eviction_parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+stop", &e), -1);
}
END_TEST

START_TEST(test_properties)
{
	struct eviction e = { WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };

	ck_assert(eviction_keeps_gpu_context(&e));
	ck_assert(eviction_keeps_process(&e));
	e.process = PROCESS_CUDA_SUSPEND;
	ck_assert(!eviction_keeps_gpu_context(&e));
	ck_assert(eviction_keeps_process(&e));
	e.process = PROCESS_STOP;
	ck_assert(!eviction_keeps_process(&e));
	ck_assert_str_eq(eviction_process_title(PROCESS_CUDA_SUSPEND), "CudaSuspend");
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("eviction");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_parse_format);
	tcase_add_test(tc, test_properties);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
