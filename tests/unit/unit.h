/*
 * unit.h -- what every Check test program shares: run its suite and turn
 * the result into the exit status tests/run-tests reads.
 */
#ifndef LLMUX_UNIT_H
#define LLMUX_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int
unit_run(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

#endif
