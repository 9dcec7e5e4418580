/*
 * test_proxy_queue.c -- the bookkeeping of the proxy's per-model queues:
 * FIFO order, the bound, removal from anywhere, ages and expiry, and a
 * request put back in its place (one its model's server never received).
 */
#include <check.h>
#include <stdlib.h>

#include "proxyd/queue.h"
#include "unit.h"

START_TEST(test_fifo_and_bound)
{
	struct queue	q;
	struct qentry	e[4] = { 0 };

	queue_init(&q);
	ck_assert_ptr_null(queue_pop(&q));
	ck_assert_int_eq(queue_push(&q, &e[0], 100, 3), 0);
	ck_assert_int_eq(queue_push(&q, &e[1], 110, 3), 0);
	ck_assert_int_eq(queue_push(&q, &e[2], 120, 3), 0);
	ck_assert_int_eq(queue_push(&q, &e[3], 130, 3), -1);	/* full */
	ck_assert(!e[3].queued);
	ck_assert_int_eq(queue_push(&q, &e[0], 140, 10), -1);	/* twice */
	ck_assert_uint_eq(queue_len(&q), 3);
	ck_assert_ptr_eq(queue_first(&q), &e[0]);
	ck_assert_ptr_eq(queue_pop(&q), &e[0]);
	ck_assert(!e[0].queued);
	ck_assert_ptr_eq(queue_pop(&q), &e[1]);
	ck_assert_ptr_eq(queue_pop(&q), &e[2]);
	ck_assert_ptr_null(queue_pop(&q));
	ck_assert_uint_eq(queue_len(&q), 0);
	ck_assert_uint_eq(q.total, 3);
}
END_TEST

START_TEST(test_put_back_in_place)
{
	struct queue	q;
	struct qentry	e[5] = { 0 };

	queue_init(&q);
	ck_assert_int_eq(queue_push(&q, &e[1], 110, 2), 0);
	ck_assert_int_eq(queue_push(&q, &e[3], 130, 2), 0);
	/* Older than all, newer than one, newest: each in its place. */
	e[0].t_enq_ms = 100;
	queue_put_back(&q, &e[0]);
	e[2].t_enq_ms = 120;
	queue_put_back(&q, &e[2]);
	e[4].t_enq_ms = 140;
	queue_put_back(&q, &e[4]);
	/* Over the bound, and once only. */
	ck_assert_uint_eq(queue_len(&q), 5);
	queue_put_back(&q, &e[2]);
	ck_assert_uint_eq(queue_len(&q), 5);
	/* Expiry still goes oldest first. */
	ck_assert_ptr_eq(queue_expired(&q, 1110, 1000), &e[0]);
	ck_assert_ptr_null(queue_expired(&q, 1109, 1000));
	ck_assert_ptr_eq(queue_pop(&q), &e[1]);
	ck_assert_ptr_eq(queue_pop(&q), &e[2]);
	ck_assert_ptr_eq(queue_pop(&q), &e[3]);
	ck_assert_ptr_eq(queue_pop(&q), &e[4]);
	ck_assert_ptr_null(queue_pop(&q));
}
END_TEST

START_TEST(test_remove_anywhere)
{
	struct queue	q;
	struct qentry	e[3] = { 0 };

	queue_init(&q);
	queue_push(&q, &e[0], 0, 10);
	queue_push(&q, &e[1], 1, 10);
	queue_push(&q, &e[2], 2, 10);
	queue_remove(&q, &e[1]);
	ck_assert_uint_eq(queue_len(&q), 2);
	queue_remove(&q, &e[1]);	/* not queued: nothing happens */
	ck_assert_uint_eq(queue_len(&q), 2);
	ck_assert_ptr_eq(queue_pop(&q), &e[0]);
	ck_assert_ptr_eq(queue_pop(&q), &e[2]);
	/* Removed entries can be queued again. */
	ck_assert_int_eq(queue_push(&q, &e[1], 5, 10), 0);
	ck_assert_ptr_eq(queue_pop(&q), &e[1]);
}
END_TEST

START_TEST(test_ages_and_expiry)
{
	struct queue	q;
	struct qentry	e[3] = { 0 };

	queue_init(&q);
	ck_assert_int_eq(queue_oldest_ms(&q, 1000), 0);
	ck_assert_int_eq(queue_next_deadline(&q, 500), -1);
	queue_push(&q, &e[0], 1000, 10);
	queue_push(&q, &e[1], 1200, 10);
	queue_push(&q, &e[2], 1900, 10);
	ck_assert_int_eq(queue_oldest_ms(&q, 1300), 300);
	ck_assert_int_eq(queue_oldest_ms(&q, 900), 0);	/* clock before */
	ck_assert_int_eq(queue_next_deadline(&q, 500), 1500);
	ck_assert_ptr_null(queue_expired(&q, 1499, 500));
	ck_assert_ptr_eq(queue_expired(&q, 1700, 500), &e[0]);
	ck_assert_ptr_eq(queue_expired(&q, 1700, 500), &e[1]);
	ck_assert_ptr_null(queue_expired(&q, 1700, 500));
	ck_assert_uint_eq(queue_len(&q), 1);
	ck_assert_int_eq(queue_next_deadline(&q, 500), 2400);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy_queue");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_fifo_and_bound);
	tcase_add_test(tc, test_remove_anywhere);
	tcase_add_test(tc, test_put_back_in_place);
	tcase_add_test(tc, test_ages_and_expiry);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
