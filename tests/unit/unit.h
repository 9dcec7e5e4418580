/*
 * unit.h -- what every Check test program shares: run its suite and turn
 * the result into the exit status tests/run-tests reads; read a file of
 * the source tree.
 */
#ifndef LLMUX_UNIT_H
#define LLMUX_UNIT_H

#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
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

/* A whole file, NUL-terminated (its length in *lenp when asked); the
 * test fails when it cannot be read. Paths are from the source root. */
static inline char *
unit_read_file(const char *path, size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	FILE		*f;
	size_t		 n;

	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the source root)",
	    path);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (size_t)st.st_size, f);
	ck_assert_uint_eq(n, (size_t)st.st_size);
	buf[n] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = n;
	return (buf);
}

#endif
