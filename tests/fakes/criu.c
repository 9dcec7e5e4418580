/*
 * criu.c -- a fake `criu` for the tests of llmux's checkpoint path. It
 * takes CRIU's command line (the options llmux passes, and no others)
 * and imitates what llmux relies on:
 *
 *   criu --version            "Version: 4.1" ($LLMUX_FAKE_CRIU_VERSION)
 *   criu check                "Looks good."
 *   criu dump -t PID -D DIR -o LOG ...
 *       writes an image of the tree's root process (its command line,
 *       environment, working directory, output file and, for
 *       llmux-fakevllm, its sleep state from the fake GPU directory) as
 *       image files in DIR, then kills the whole tree, as CRIU does after
 *       a dump; on a failure the tree is left running, as CRIU leaves it.
 *   criu restore -D DIR --restore-detached --pidfile FILE ...
 *       starts the program again from the image, in its own session, on
 *       the same port and in the dumped sleep state
 *       (--fake-restore-state), writes its pid to FILE and exits. (Real
 *       CRIU gives the restored process its old pid; this one gets a new
 *       one, which llmux reads from the pidfile either way.)
 *
 * As CRIU does, it opens the images directory (-D) once, changes into
 * the work directory (-W, else the images directory), opens its log
 * (-o) and pidfile relative to it, and reads and writes images below
 * the images directory's descriptor: llmux passes both directories as
 * inherited descriptors (-D /proc/self/fd/3 -W /proc/self/fd/4). None
 * of its own descriptors reaches the restored process.
 *
 * Faults, from the fake GPU directory ($LLMUX_FAKE_GPU_DIR, fakegpu.h):
 *   criu_enospc        the dump runs out of disk: a partial image, exit 1
 *   criu_corrupt       the dump writes an image the restore cannot read
 *   criu_restore_fail  the restore fails
 * Each run's arguments are appended to criu.calls there, for the tests.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "fakegpu.h"

#define IMAGE		"fake-image.txt"
#define MAX_ITEMS	4096

static FILE	*logfp;
static int	 imgfd = -1;	/* the images directory (-D) */

/*
 * Built with the sanitizers in `make asan`: a fake that exits on an error
 * leaves its allocations to the kernel, which LeakSanitizer would turn
 * into another exit status than criu's.
 */
const char	*__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return ("detect_leaks=0");
}

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	if (logfp != NULL) {
		vfprintf(logfp, fmt, ap);
		fputc('\n', logfp);
		fflush(logfp);
	}
	va_end(ap);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list	ap;
	char	buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("Error (fake-criu): %s", buf);
	fprintf(stderr, "Error (fake-criu): %s\n", buf);
	exit(1);
}

/* A whole file, path relative to dirfd (AT_FDCWD: as it is). */
static char *
slurp_at(int dirfd, const char *path, size_t *len)
{
	char	*buf = NULL;
	size_t	 n = 0, cap = 0;
	ssize_t	 r;
	int	 fd;

	if ((fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC)) == -1)
		return (NULL);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				fail("out of memory");
		}
		if ((r = read(fd, buf + n, cap - n - 1)) <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf != NULL)
		buf[n] = '\0';
	*len = n;
	return (buf);
}

static char *
slurp(const char *path, size_t *len)
{
	return (slurp_at(AT_FDCWD, path, len));
}

/* A new image file below the images directory. */
static FILE *
image_create(const char *name)
{
	int	fd;

	if ((fd = openat(imgfd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
		return (NULL);
	return (fdopen(fd, "w"));
}

static void
put_enc(FILE *f, const char *key, const char *v)
{
	fprintf(f, "%s ", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '%')
			fprintf(f, "%%%02X", *p);
		else
			fputc(*p, f);
	}
	fputc('\n', f);
}

static char *
dec(const char *v)
{
	char		*s = malloc(strlen(v) + 1), *o = s;
	unsigned	 c;

	if (s == NULL)
		fail("out of memory");
	for (; *v != '\0' && *v != '\n'; v++) {
		if (*v == '%' && sscanf(v + 1, "%2x", &c) == 1) {
			*o++ = (char)c;
			v += 2;
		} else
			*o++ = *v;
	}
	*o = '\0';
	return (s);
}

/* The log: absolute, else in the work directory (the current one). */
static void
open_log(const char *log)
{
	if (log != NULL)
		logfp = fopen(log, "ae");
}

static void
record_call(int argc, char **argv)
{
	char	path[1024];
	FILE	*f;

	if (fg_dir() == NULL || fg_path(path, sizeof(path), "criu.calls") != 0 ||
	    (f = fopen(path, "a")) == NULL)
		return;
	for (int i = 1; i < argc; i++)
		fprintf(f, "%s%s", i > 1 ? " " : "", argv[i]);
	fputc('\n', f);
	fclose(f);
}

static int
locked_fault(const char *name)
{
	int	fd, rc;

	if (fg_dir() == NULL)
		return (0);
	fd = fg_lock();
	rc = fg_fault(name);
	fg_unlock(fd);
	return (rc);
}

/* Every process of the session led by pid (llmux's model trees). */
static int
session_members(int sid, int *out, int max)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[64], *text, *p;
	size_t		 len;
	int		 n = 0, pid, s;

	if ((d = opendir("/proc")) == NULL)
		return (0);
	while ((de = readdir(d)) != NULL && n < max) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if ((text = slurp(path, &len)) == NULL)
			continue;
		/* Field 6 is the session, after "(comm)". */
		if ((p = strrchr(text, ')')) != NULL &&
		    sscanf(p + 2, "%*c %*d %*d %d", &s) == 1 && s == sid)
			out[n++] = pid;
		free(text);
	}
	closedir(d);
	return (n);
}

static int
gone(int pid)
{
	char	path[64], *text, *p;
	size_t	len;
	int	rc;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((text = slurp(path, &len)) == NULL)
		return (1);
	rc = (p = strrchr(text, ')')) != NULL && p[2] == 'Z';
	free(text);
	return (rc);
}

static void
write_pages(int pid, size_t bytes)
{
	unsigned	 x = (unsigned)pid * 2654435761u;
	FILE		*f;

	if ((f = image_create("pages-1.img")) == NULL)
		fail("cannot write pages-1.img: %s", strerror(errno));
	for (size_t i = 0; i < bytes; i++) {
		x = x * 1103515245u + 12345u;
		fputc((int)(x >> 16) & 0xff, f);
	}
	if (fclose(f) != 0)
		fail("cannot write pages-1.img: %s", strerror(errno));
}

static int
dump(int pid)
{
	char	 path[PATH_MAX], link[PATH_MAX], *text, name[64], *state;
	size_t	 len, off;
	ssize_t	 n;
	FILE	*f;
	int	 members[MAX_ITEMS], nm;

	say("Dumping processes (pid: %d)", pid);
	if (kill(pid, 0) != 0)
		fail("Can't attach to %d: %s", pid, strerror(errno));
	if (locked_fault("criu_enospc")) {
		write_pages(pid, 4096);
		fail("Can't write pages: No space left on device");
	}
	if ((f = image_create(IMAGE)) == NULL)
		fail("cannot write %s: %s", IMAGE, strerror(errno));
	if (locked_fault("criu_corrupt"))
		fputs("\x01\x02 not an image\n", f);
	else
		fputs("fake-criu-image 1\n", f);
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	if ((n = readlink(path, link, sizeof(link) - 1)) < 0)
		fail("cannot read the cwd of %d", pid);
	link[n] = '\0';
	put_enc(f, "cwd", link);
	snprintf(path, sizeof(path), "/proc/%d/fd/1", pid);
	if ((n = readlink(path, link, sizeof(link) - 1)) < 0)
		fail("cannot read the output of %d", pid);
	link[n] = '\0';
	if (strncmp(link, "pipe:", 5) == 0)
		fail("task %d has a pipe on fd 1: external pipes cannot be "
		    "dumped", pid);
	put_enc(f, "out", link);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if ((text = slurp(path, &len)) == NULL)
		fail("cannot read the command line of %d", pid);
	for (off = 0; off < len; off += strlen(text + off) + 1)
		put_enc(f, "arg", text + off);
	free(text);
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	if ((text = slurp(path, &len)) != NULL) {
		for (off = 0; off < len; off += strlen(text + off) + 1)
			if (text[off] != '\0')
				put_enc(f, "env", text + off);
		free(text);
	}
	snprintf(name, sizeof(name), "vllm.%d", pid);
	if (fg_dir() != NULL && (state = fg_read(name)) != NULL) {
		state[strcspn(state, "\n")] = '\0';
		put_enc(f, "state", state);
		free(state);
	}
	if (fclose(f) != 0)
		fail("cannot write the image: %s", strerror(errno));
	write_pages(pid, 65536);
	if ((f = image_create("inventory.img")) == NULL ||
	    fputs("fake-criu inventory\n", f) < 0 || fclose(f) != 0)
		fail("cannot write the inventory");
	/* Dumped: the tree goes, as criu dump (without -R) does. */
	nm = session_members(pid, members, MAX_ITEMS);
	kill(-pid, SIGKILL);
	for (int i = 0; i < nm; i++)
		kill(members[i], SIGKILL);
	kill(pid, SIGKILL);
	for (int i = 0; i < 500 && !gone(pid); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	say("Dumping finished successfully");
	return (0);
}

static int
restore(const char *pidfile, int detached)
{
	char	*text, *line, *save = NULL, *cwd = NULL;
	char	*out = NULL, *state = NULL, *argv[MAX_ITEMS], *envp[MAX_ITEMS];
	size_t	 len;
	int	 na = 0, nd, ne = 0, fds[2], fd, err;
	pid_t	 pid;
	FILE	*f;

	if (!detached)
		fail("this fake only restores with --restore-detached");
	if (pidfile == NULL)
		fail("no --pidfile");
	if ((text = slurp_at(imgfd, IMAGE, &len)) == NULL)
		fail("Unable to open %s: %s", IMAGE, strerror(errno));
	if (strncmp(text, "fake-criu-image 1\n", 18) != 0)
		fail("%s: corrupted image (bad magic)", IMAGE);
	memset(argv, 0, sizeof(argv));
	memset(envp, 0, sizeof(envp));
	if (locked_fault("criu_restore_fail"))
		fail("Can't restore task: injected failure");
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "cwd ", 4) == 0)
			cwd = dec(line + 4);
		else if (strncmp(line, "out ", 4) == 0)
			out = dec(line + 4);
		else if (strncmp(line, "state ", 6) == 0)
			state = dec(line + 6);
		else if (strncmp(line, "arg ", 4) == 0 && na < MAX_ITEMS - 3)
			argv[na++] = dec(line + 4);
		else if (strncmp(line, "env ", 4) == 0 && ne < MAX_ITEMS - 1)
			envp[ne++] = dec(line + 4);
	}
	if (na == 0 || cwd == NULL || out == NULL)
		fail("%s: corrupted image (no task)", IMAGE);
	nd = na;
	if (state != NULL) {
		argv[na++] = "--fake-restore-state";
		argv[na++] = state;
	}
	argv[na] = NULL;
	envp[ne] = NULL;
	say("Restoring processes (%s)", argv[0]);
	if (pipe2(fds, O_CLOEXEC) != 0 || (pid = fork()) == -1)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		setsid();
		if (chdir(cwd) != 0)
			goto child_fail;
		if ((fd = open("/dev/null", O_RDONLY)) != -1 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
		if ((fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644)) ==
		    -1)
			goto child_fail;
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
		execve(argv[0], argv, envp);
child_fail:
		err = errno;
		(void)!write(fds[1], &err, sizeof(err));
		_exit(127);
	}
	close(fds[1]);
	if (read(fds[0], &err, sizeof(err)) == (ssize_t)sizeof(err))
		fail("cannot restore %s: %s", argv[0], strerror(err));
	close(fds[0]);
	/* As CRIU: relative to the work directory, never over a file. */
	if ((fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1 || (f = fdopen(fd, "w")) == NULL)
		fail("cannot write %s: %s", pidfile, strerror(errno));
	fprintf(f, "%d", (int)pid);
	fclose(f);
	say("Restore finished successfully. Tasks resumed.");
	for (int i = 0; i < nd; i++)
		free(argv[i]);
	for (int i = 0; i < ne; i++)
		free(envp[i]);
	free(state);
	free(cwd);
	free(out);
	free(text);
	return (0);
}

int
main(int argc, char **argv)
{
	const char	*cmd, *dir = NULL, *work = NULL, *log = NULL;
	const char	*pidfile = NULL, *v;
	int		 pid = 0, detached = 0;
	static const char *flags[] = { "--shell-job", "--ext-unix-sk",
			    "--tcp-established", "--link-remap",
			    "--enable-external-masters", "-v4", NULL };

	if (argc < 2) {
		fprintf(stderr, "usage: criu dump|restore|check ...\n");
		return (1);
	}
	cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		v = getenv("LLMUX_FAKE_CRIU_VERSION");
		printf("Version: %s\n", v != NULL ? v : "4.1");
		return (0);
	}
	record_call(argc, argv);
	if (strcmp(cmd, "check") == 0) {
		printf("Looks good.\n");
		return (0);
	}
	for (int i = 2; i < argc; i++) {
		const char	*a = argv[i];
		int		 known = 0;

		for (int k = 0; flags[k] != NULL; k++)
			known |= strcmp(a, flags[k]) == 0;
		if (known)
			continue;
		if (strcmp(a, "--restore-detached") == 0) {
			detached = 1;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(a, "-t") == 0)
			pid = atoi(argv[++i]);
		else if (strcmp(a, "-D") == 0)
			dir = argv[++i];
		else if (strcmp(a, "-W") == 0)
			work = argv[++i];
		else if (strcmp(a, "-o") == 0)
			log = argv[++i];
		else if (strcmp(a, "--pidfile") == 0)
			pidfile = argv[++i];
		else if (strcmp(a, "-L") == 0)
			i++;
		else
			goto usage;
	}
	if (dir == NULL)
		goto usage;
	/* What llmux handed down stays out of what runs next. */
	for (int fd = 3; fd < 1024; fd++)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	if ((imgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "Error (fake-criu): can't open images dir %s: "
		    "%s\n", dir, strerror(errno));
		return (1);
	}
	if (chdir(work != NULL ? work : dir) != 0) {
		fprintf(stderr, "Error (fake-criu): can't change directory to "
		    "%s: %s\n", work != NULL ? work : dir, strerror(errno));
		return (1);
	}
	open_log(log);
	if (strcmp(cmd, "dump") == 0 && pid > 0)
		return (dump(pid));
	if (strcmp(cmd, "restore") == 0)
		return (restore(pidfile, detached));
usage:
	fprintf(stderr, "Error (fake-criu): unknown or incomplete command line "
	    "for %s\n", cmd);
	return (1);
}
