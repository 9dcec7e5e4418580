/*
 * test_journal.c -- the state journal (encode, decode, the strict
 * decoder's refusals, atomic files) and the log keeper's cap and rotation.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"
#include "xmalloc.h"
#include "unit.h"

static void
fill(struct journal *j)
{
	memset(j, 0, sizeof(*j));
	j->manual = true;
	j->pinned = xstrdup("meta/llama 3");
	j->active = xstrdup("meta/llama 3");
	j->n = 2;
	j->v = xcalloc(2, sizeof(*j->v));
	j->v[0].name = xstrdup("meta/llama 3");
	j->v[0].pid = 4242;
	j->v[0].start_time = 1234567890123ULL;
	j->v[0].pstate = MODEL_SLEEPING;
	j->v[0].has_sleeping = true;
	j->v[0].sleeping = (struct eviction){ WEIGHTS_DISCARD,
	    PROCESS_CUDA_SUSPEND };
	j->v[0].has_override = true;
	j->v[0].override = (struct eviction){ WEIGHTS_OFFLOAD,
	    PROCESS_KEEP_RUNNING };
	j->v[0].generation = 7;
	j->v[0].port = 8001;
	j->v[0].tp = 2;
	j->v[0].cgroup = xstrdup("/sys/fs/cgroup/llmux/model.x");
	j->v[0].reason = xstrdup("a = b % c\nnext line");
	j->v[1].name = xstrdup("b");
	j->v[1].pstate = MODEL_CHECKPOINTED;
	j->v[1].images = xstrdup("/tmp/images/b");
	j->v[1].store_url = xstrdup("s3://bucket/b/20261127T022057Z-00ff/");
	j->v[1].store_error = xstrdup("upload failed: 403 AccessDenied");
	j->v[1].busy = xstrdup("sleep");
	j->v[1].tp = 1;
}

START_TEST(test_roundtrip)
{
	struct journal	 j, k;
	char		*buf, *buf2, err[256];
	size_t		 len, len2;

	fill(&j);
	ck_assert_int_eq(journal_encode(&j, &buf, &len), 0);
	if (journal_decode(buf, len, &k, err, sizeof(err)) != 0)
		ck_abort_msg("decode: %s", err);
	ck_assert(k.manual);
	ck_assert_str_eq(k.pinned, "meta/llama 3");
	ck_assert_str_eq(k.active, "meta/llama 3");
	ck_assert_uint_eq(k.n, 2);
	ck_assert_str_eq(k.v[0].name, "meta/llama 3");
	ck_assert_int_eq(k.v[0].pid, 4242);
	ck_assert_uint_eq(k.v[0].start_time, 1234567890123ULL);
	ck_assert_int_eq(k.v[0].pstate, MODEL_SLEEPING);
	ck_assert(k.v[0].has_sleeping);
	ck_assert_int_eq(k.v[0].sleeping.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(k.v[0].sleeping.process, PROCESS_CUDA_SUSPEND);
	ck_assert(k.v[0].has_override);
	ck_assert_int_eq(k.v[0].override.weights, WEIGHTS_OFFLOAD);
	ck_assert_uint_eq(k.v[0].generation, 7);
	ck_assert_uint_eq(k.v[0].port, 8001);
	ck_assert_uint_eq(k.v[0].tp, 2);
	ck_assert_str_eq(k.v[0].cgroup, "/sys/fs/cgroup/llmux/model.x");
	ck_assert_str_eq(k.v[0].reason, "a = b % c\nnext line");
	ck_assert_ptr_null(k.v[0].images);
	ck_assert_str_eq(k.v[1].images, "/tmp/images/b");
	ck_assert_str_eq(k.v[1].store_url,
	    "s3://bucket/b/20261127T022057Z-00ff/");
	ck_assert_str_eq(k.v[1].store_error,
	    "upload failed: 403 AccessDenied");
	ck_assert_ptr_null(k.v[0].store_url);
	ck_assert_str_eq(k.v[1].busy, "sleep");
	ck_assert_int_eq(k.v[1].pid, 0);
	ck_assert(!k.v[1].has_sleeping);
	/* Encoding what was decoded gives the same bytes. */
	ck_assert_int_eq(journal_encode(&k, &buf2, &len2), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert_mem_eq(buf, buf2, len);
	free(buf);
	free(buf2);
	journal_free(&j);
	journal_free(&k);
}
END_TEST

static void
refused(const char *text, const char *why)
{
	struct journal	j;
	char		err[256];

	if (journal_decode(text, strlen(text), &j, err, sizeof(err)) == 0) {
		journal_free(&j);
		ck_abort_msg("accepted: %s", text);
	}
	if (strstr(err, why) == NULL)
		ck_abort_msg("for %s: error '%s' lacks '%s'", text, err, why);
}

START_TEST(test_refusals)
{
	refused("", "empty state journal");
	refused("# only a comment\n", "empty state journal");
	refused("not-llmux 1\n", "not an llmux state journal");
	refused("llmux-state 2\n", "state journal version 2");
	refused("llmux-state x\n", "expected a number");
	refused("llmux-state 1\nmodel pid=1\n", "without a name");
	refused("llmux-state 1\nmodel name=a\nmodel name=a\n", "twice");
	refused("llmux-state 1\nmodel name=a name=b\n", "appears twice");
	refused("llmux-state 1\nmodel name=a pid=99999999999\n",
	    "out of range");
	refused("llmux-state 1\nmodel name=a pid=-1\n", "expected a number");
	refused("llmux-state 1\nmodel name=a port=65536\n", "out of range");
	refused("llmux-state 1\nmodel name=a state=sleepy\n", "unknown state");
	refused("llmux-state 1\nmodel name=a sleeping=offload\n",
	    "bad eviction");
	refused("llmux-state 1\nmodel name=a sleeping=1\n", "bad eviction");
	refused("llmux-state 1\nmodel name=a%\n", "bad escape");
	refused("llmux-state 1\nmodel name=a%4\n", "bad escape");
	refused("llmux-state 1\nmodel name=a%00b\n", "bad escape");
	refused("llmux-state 1\nmodel name=a%zz\n", "bad escape");
	refused("llmux-state 1\nmodel name=a start=184467440737095516160\n",
	    "expected a number");
	refused("llmux-state 1\nmodel name=a junk\n", "expected key=value");
	refused("llmux-state 1\nmodel name=a =x\n", "expected key=value");
	refused("llmux-state 1\nswitcher manual=2\n", "out of range");
}
END_TEST

START_TEST(test_limits)
{
	struct journal	 j;
	char		*big, err[256];
	size_t		 n;

	/* A name over the limit, a line over the limit, a NUL byte. */
	big = xmalloc(JOURNAL_MAX_LINE * 2);
	n = (size_t)snprintf(big, JOURNAL_MAX_LINE * 2,
	    "llmux-state 1\nmodel name=");
	memset(big + n, 'a', CONFIG_NAME_MAX + 1);
	big[n + CONFIG_NAME_MAX + 1] = '\0';
	refused(big, "over the limit");
	memset(big + n, 'a', JOURNAL_MAX_LINE + 10);
	big[n + JOURNAL_MAX_LINE + 10] = '\0';
	refused(big, "line too long");
	free(big);
	ck_assert_int_eq(journal_decode("llmux-state 1\nmodel name=a\0b\n",
	    28, &j, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
	ck_assert_int_eq(journal_decode("x", JOURNAL_MAX_BYTES + 1, &j, err,
	    sizeof(err)), -1);

	/* Unknown lines and keys are skipped; a missing newline is fine. */
	ck_assert_int_eq(journal_decode("llmux-state 1\nfuture x=1\n"
	    "model name=a colour=red", 46, &j, err, sizeof(err)), 0);
	ck_assert_uint_eq(j.n, 1);
	ck_assert_str_eq(j.v[0].name, "a");
	ck_assert_uint_eq(j.v[0].tp, 1);
	journal_free(&j);
}
END_TEST

START_TEST(test_files)
{
	char		 dir[64] = "/tmp/llmux-journal-XXXXXX", err[256];
	char		*path, tmp[128];
	struct journal	 j, k;
	struct stat	 sb;
	FILE		*f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(journal_read_file(dir, &k, err, sizeof(err)), 0);
	fill(&j);
	ck_assert_int_eq(journal_write_file(dir, &j, true, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_read_file(dir, &k, err, sizeof(err)), 1);
	ck_assert_uint_eq(k.n, 2);
	journal_free(&k);
	/* No temp file is left behind. */
	path = journal_path(dir);
	snprintf(tmp, sizeof(tmp), "%s/state.tmp", dir);
	ck_assert_int_eq(stat(tmp, &sb), -1);
	/* Without fsync (the event loop's writes): the same file. */
	j.manual = !j.manual;
	ck_assert_int_eq(journal_write_file(dir, &j, false, err, sizeof(err)),
	    0);
	ck_assert_int_eq(journal_read_file(dir, &k, err, sizeof(err)), 1);
	ck_assert(k.manual == j.manual);
	ck_assert_uint_eq(k.n, 2);
	journal_free(&k);
	ck_assert_int_eq(stat(tmp, &sb), -1);
	/* A damaged file is reported, not trusted. */
	f = fopen(path, "w");
	fputs("llmux-state 1\nmodel name=a pid=zzz\n", f);
	fclose(f);
	ck_assert_int_eq(journal_read_file(dir, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "line 2"));
	unlink(path);
	free(path);
	/* A directory that cannot be made. */
	ck_assert_int_eq(journal_write_file("/proc/llmux/x", &j, true, err,
	    sizeof(err)), -1);
	journal_free(&j);
	rmdir(dir);
}
END_TEST

static size_t
file_size(const char *dir, const char *name)
{
	char		path[512];
	struct stat	sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &sb) == -1)
		return ((size_t)-1);
	return ((size_t)sb.st_size);
}

/* Run the keeper over text written to a pipe, in a child. */
static void
keep(const char *dir, const char *text, size_t len, uint64_t max,
    uint32_t keepn)
{
	int	p[2], dirfd;
	pid_t	pid;

	ck_assert_int_eq(pipe(p), 0);
	dirfd = open(dir, O_DIRECTORY | O_RDONLY);
	ck_assert_int_ge(dirfd, 0);
	if ((pid = fork()) == 0) {
		close(p[1]);
		modellog_keeper_run(p[0], dirfd, "m.log", max, keepn);
		_exit(0);
	}
	close(p[0]);
	ck_assert_int_eq(write(p[1], text, len), (ssize_t)len);
	close(p[1]);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	close(dirfd);
}

/*
 * Run the keeper over pieces sent as SOCK_SEQPACKET messages, so that each
 * is one read of the keeper's: where its reads end is then known.
 */
static void
keep_pieces(const char *dir, const char **pieces, size_t n, uint64_t max)
{
	int	sp[2], dirfd;
	pid_t	pid;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	dirfd = open(dir, O_DIRECTORY | O_RDONLY);
	ck_assert_int_ge(dirfd, 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(write(sp[1], pieces[i], strlen(pieces[i])),
		    (ssize_t)strlen(pieces[i]));
	close(sp[1]);
	if ((pid = fork()) == 0) {
		modellog_keeper_run(sp[0], dirfd, "m.log", max, 2);
		_exit(0);
	}
	close(sp[0]);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	close(dirfd);
}

static char *
file_text(const char *dir, const char *name)
{
	char	path[512], *buf;
	FILE	*f;
	size_t	n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	buf = xcalloc(1, 4096);
	n = fread(buf, 1, 4095, f);
	buf[n] = '\0';
	fclose(f);
	return (buf);
}

/*
 * A read that ends inside a line does not leave half of it at the end of
 * a rotated file: lines of 30 bytes, files capped at 100 bytes.
 */
START_TEST(test_keeper_read_boundaries)
{
	char		 dir[] = "/tmp/llmux-keeper-XXXXXX", path[512], *t;
	/* 3 lines and 5 bytes of the 4th, then the rest of it and one more. */
	const char	*split[] = {
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "ccccccccccccccccccccccccccccc\nddddd",
	    "dddddddddddddddddddddddd\neeeeeeeeeeeeeeeeeeeeeeeeeeeee\n" };
	/* Exactly the cap, ending inside a line. */
	const char	*exact[] = {
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
	    "ccccccccccccccccccccccccccccc\ndddddddddd",
	    "ddddddddddddddddddd\n" };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	keep_pieces(dir, split, 2, 100);
	t = file_text(dir, "m.log.1");
	ck_assert_str_eq(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nccccccccccccccccccccccccccccc\n");
	free(t);
	t = file_text(dir, "m.log");
	ck_assert_str_eq(t, "ddddddddddddddddddddddddddddd\n"
	    "eeeeeeeeeeeeeeeeeeeeeeeeeeeee\n");
	free(t);
	for (int i = 0; i <= 2; i++) {
		snprintf(path, sizeof(path), i ? "%s/m.log.%d" : "%s/m.log",
		    dir, i);
		unlink(path);
	}
	keep_pieces(dir, exact, 2, 100);
	t = file_text(dir, "m.log.1");
	ck_assert_str_eq(t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbb\nccccccccccccccccccccccccccccc\n");
	free(t);
	t = file_text(dir, "m.log");
	ck_assert_str_eq(t, "ddddddddddddddddddddddddddddd\n");
	free(t);
	for (int i = 0; i <= 2; i++) {
		snprintf(path, sizeof(path), i ? "%s/m.log.%d" : "%s/m.log",
		    dir, i);
		unlink(path);
	}
	rmdir(dir);
}
END_TEST

START_TEST(test_keeper)
{
	char	 dir[] = "/tmp/llmux-keeper-XXXXXX", *text, path[512];
	size_t	 n = 0, total = 0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* 1000 lines of 19 bytes into files capped at 1000 bytes, 2 kept. */
	text = xmalloc(20 * 1000 + 1);
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(text + n, 21, "line %013d\n", i);
	keep(dir, text, n, 1000, 2);
	ck_assert_uint_le(file_size(dir, "m.log"), 1000);
	/* Rotated at a line boundary: as many whole lines as fit. */
	ck_assert_uint_eq(file_size(dir, "m.log.1"), 19 * (1000 / 19));
	ck_assert_uint_eq(file_size(dir, "m.log.2"), 19 * (1000 / 19));
	ck_assert_uint_eq(file_size(dir, "m.log.3"), (size_t)-1);
	/* The newest file ends with the last line, whole. */
	snprintf(path, sizeof(path), "%s/m.log", dir);
	{
		FILE	*f = fopen(path, "r");
		char	 last[64] = "", line[64];

		while (fgets(line, sizeof(line), f) != NULL)
			snprintf(last, sizeof(last), "%s", line);
		fclose(f);
		ck_assert_str_eq(last, "line 0000000000999\n");
		total = file_size(dir, "m.log");
	}
	ck_assert_uint_gt(total, 0);

	/* One line longer than the cap is split, never over it. */
	memset(text, 'x', 2500);
	text[2500] = '\n';
	keep(dir, text, 2501, 1000, 2);
	ck_assert_uint_le(file_size(dir, "m.log"), 1000);
	ck_assert_uint_le(file_size(dir, "m.log.1"), 1000);

	/* keep 0: the file is truncated in place. */
	keep(dir, text, 2501, 1000, 0);
	ck_assert_uint_le(file_size(dir, "m.log"), 1000);
	free(text);
	for (int i = 0; i <= 3; i++) {
		snprintf(path, sizeof(path), i ? "%s/m.log.%d" : "%s/m.log",
		    dir, i);
		unlink(path);
	}
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("journal");
	TCase	*tc = tcase_create("journal");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_keeper);
	tcase_add_test(tc, test_keeper_read_boundaries);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
