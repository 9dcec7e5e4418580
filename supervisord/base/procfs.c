/*
 * procfs.c -- what the supervisor reads from /proc: a process's state,
 * parent, group, session and start time (/proc/PID/stat), the processes
 * that belong to a model, which of them map an NVIDIA device, where our
 * cgroup v2 lives, which processes listen on a TCP port; and how a
 * child's end (from waitid) reads.
 * Parsing is separate from reading, for tests.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmalloc.h"
#include "supervisord/base/base.h"

/* Read one unsigned decimal field; advances *p past it and one space. */
static int
procfs_field(const char **p, const char *end, uint64_t *out)
{
	uint64_t	v = 0;
	const char	*s = *p;
	int		neg = 0;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s >= end || !isdigit((unsigned char)*s))
		return (-1);
	while (s < end && isdigit((unsigned char)*s)) {
		if (v > (UINT64_MAX - 9) / 10)
			return (-1);
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (s < end && *s != ' ' && *s != '\n')
		return (-1);
	if (s < end)
		s++;
	*p = s;
	*out = neg ? 0 : v;
	return (0);
}

/*
 * Parse /proc/PID/stat. The command name (field 2) is in parentheses and
 * may itself hold spaces and parentheses, so fields are counted from the
 * last ')'.
 */
int
procfs_parse_stat(const char *buf, size_t len, struct procfs_stat *st)
{
	const char	*end = buf + len, *p, *rp = NULL;
	uint64_t	 v, pid;
	int		 field;

	memset(st, 0, sizeof(*st));
	p = buf;
	if (procfs_field(&p, end, &pid) != 0 || pid == 0 || pid > INT_MAX)
		return (-1);
	for (const char *q = p; q < end; q++)
		if (*q == ')')
			rp = q;
	if (p >= end || *p != '(' || rp == NULL || rp + 3 >= end ||
	    rp[1] != ' ')
		return (-1);
	st->pid = (pid_t)pid;
	st->state = rp[2];
	if (rp[3] != ' ')
		return (-1);
	p = rp + 4;
	/* Fields 4 (ppid) to 22 (starttime). */
	for (field = 4; field <= 22; field++) {
		if (procfs_field(&p, end, &v) != 0)
			return (-1);
		switch (field) {
		case 4:
			st->ppid = v > INT_MAX ? 0 : (pid_t)v;
			break;
		case 5:
			st->pgrp = v > INT_MAX ? 0 : (pid_t)v;
			break;
		case 6:
			st->session = v > INT_MAX ? 0 : (pid_t)v;
			break;
		case 22:
			st->starttime = v;
			break;
		}
	}
	return (0);
}

size_t
procfs_read_fd(int fd, char *buf, size_t max)
{
	size_t	len = 0;
	ssize_t	n;

	while (len < max) {
		n = read(fd, buf + len, max - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	return (len);
}

char *
procfs_read_file(const char *path, size_t max, size_t *lenp)
{
	char	*buf;
	size_t	 len;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (NULL);
	buf = xmalloc(max + 1);
	len = procfs_read_fd(fd, buf, max);
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return (buf);
}

int
procfs_read_stat(pid_t pid, struct procfs_stat *st)
{
	char	path[64], buf[1024];
	ssize_t	n;
	int	fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	return (procfs_parse_stat(buf, (size_t)n, st));
}

bool
procfs_alive(pid_t pid, uint64_t starttime)
{
	struct procfs_stat	st;

	if (pid <= 0 || procfs_read_stat(pid, &st) != 0)
		return (false);
	return (st.state != 'Z' && st.state != 'X' &&
	    st.starttime == starttime);
}

/*
 * Is descriptor fd of the process a regular file (not a pipe, socket or
 * terminal)? What a model's stdout is tells how its log is written
 * (modellog.c) when the supervisor adopts a process it did not start.
 */
bool
procfs_fd_is_file(pid_t pid, int fd)
{
	char		path[64];
	struct stat	st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	return (stat(path, &st) == 0 && S_ISREG(st.st_mode));
}

/* Every process on the system; the caller frees the array. */
static struct procfs_stat *
procfs_snapshot(size_t *np)
{
	struct procfs_stat	*v = NULL, st;
	size_t			 n = 0, cap = 0;
	DIR			*d;
	struct dirent		*de;
	char			*end;
	long			 pid;

	*np = 0;
	if ((d = opendir("/proc")) == NULL)
		return (NULL);
	while ((de = readdir(d)) != NULL) {
		pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 || pid > INT_MAX)
			continue;
		if (procfs_read_stat((pid_t)pid, &st) != 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = st;
	}
	closedir(d);
	*np = n;
	return (v);
}

static int
procfs_cmp_pid(const void *a, const void *b)
{
	const struct procfs_stat	*x = a, *y = b;

	return (x->pid < y->pid ? -1 : x->pid > y->pid);
}

size_t
procfs_members_of(pid_t leader, const struct procfs_stat *all, size_t n,
    struct procfs_stat *out, size_t max)
{
	struct procfs_stat	*v, key, *parent;
	size_t			 found = 0, added;
	bool			*in;

	if (n == 0)
		return (0);
	v = xreallocarray(NULL, n, sizeof(*v));
	memcpy(v, all, n * sizeof(*v));
	qsort(v, n, sizeof(*v), procfs_cmp_pid);
	in = xcalloc(n, sizeof(*in));
	/* The leader's session, then descendants until none is new. */
	for (size_t i = 0; i < n; i++)
		if (v[i].pid != leader && v[i].session == leader)
			in[i] = true;
	do {
		added = 0;
		for (size_t i = 0; i < n; i++) {
			if (in[i] || v[i].pid == leader)
				continue;
			if (v[i].ppid == leader) {
				in[i] = true;
				added++;
				continue;
			}
			key.pid = v[i].ppid;
			parent = bsearch(&key, v, n, sizeof(*v),
			    procfs_cmp_pid);
			if (parent != NULL && in[parent - v]) {
				in[i] = true;
				added++;
			}
		}
	} while (added > 0);
	for (size_t i = 0; i < n; i++)
		if (in[i] && found < max)
			out[found++] = v[i];
	free(in);
	free(v);
	return (found);
}

size_t
procfs_members(pid_t leader, struct procfs_stat *out, size_t max)
{
	struct procfs_stat	*all;
	size_t			 n, found;

	if ((all = procfs_snapshot(&n)) == NULL)
		return (0);
	found = procfs_members_of(leader, all, n, out, max);
	free(all);
	return (found);
}

bool
procfs_maps_nvidia(const char *buf, size_t len)
{
	const char	*p = buf, *end = buf + len, *nl, *path;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* The path is the sixth column; it starts with '/'. */
		path = memchr(p, '/', (size_t)(nl - p));
		if (path != NULL && (size_t)(nl - path) >= 11 &&
		    memcmp(path, "/dev/nvidia", 11) == 0)
			return (true);
		p = nl + 1;
	}
	return (false);
}

bool
procfs_pid_maps_nvidia(pid_t pid)
{
	char	 path[64], *buf;
	size_t	 len;
	bool	 yes;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((buf = procfs_read_file(path, 16u << 20, &len)) == NULL)
		return (false);
	yes = procfs_maps_nvidia(buf, len);
	free(buf);
	return (yes);
}

int
procfs_cgroup2_path(const char *buf, size_t len, char *out, size_t outlen)
{
	const char	*p = buf, *end = buf + len, *nl;
	size_t		 n;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (nl - p >= 3 && memcmp(p, "0::", 3) == 0) {
			n = (size_t)(nl - p) - 3;
			if (n == 0 || n >= outlen || p[3] != '/')
				return (-1);
			memcpy(out, p + 3, n);
			out[n] = '\0';
			return (0);
		}
		p = nl + 1;
	}
	return (-1);
}

int
procfs_cgroup2_mount(const char *buf, size_t len, char *out, size_t outlen)
{
	const char	*p = buf, *end = buf + len, *nl, *sep, *f;
	int		 col;

	/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - TYPE SRC */
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		sep = NULL;
		for (f = p; f + 3 <= nl; f++) {
			if (f[0] == ' ' && f[1] == '-' && f[2] == ' ') {
				sep = f + 3;
				break;
			}
		}
		if (sep != NULL && (size_t)(nl - sep) >= 8 &&
		    memcmp(sep, "cgroup2 ", 8) == 0) {
			/* The fifth column is the mount point. */
			f = p;
			for (col = 1; col < 5 && f < nl; col++) {
				f = memchr(f, ' ', (size_t)(nl - f));
				if (f == NULL)
					break;
				f++;
			}
			if (f != NULL && col == 5) {
				const char *e = memchr(f, ' ',
				    (size_t)(nl - f));
				size_t	    n = e != NULL ? (size_t)(e - f) : 0;

				if (n > 0 && n < outlen) {
					memcpy(out, f, n);
					out[n] = '\0';
					return (0);
				}
			}
		}
		p = nl + 1;
	}
	return (-1);
}

/* A child's end as waitid tells it: CLD_* code and status. */
void
procfs_exit_reason(int code, int status, char *buf, size_t len)
{
	switch (code) {
	case CLD_EXITED:
		snprintf(buf, len, "exited with status %d", status);
		break;
	case CLD_KILLED:
	case CLD_DUMPED:
		snprintf(buf, len, "killed by signal %d (%s)%s", status,
		    strsignal(status), code == CLD_DUMPED ? ", core dumped" :
		    "");
		break;
	default:
		snprintf(buf, len, "exited");
		break;
	}
}

/*
 * The inodes of the sockets listening on TCP port in a /proc/net/tcp (or
 * tcp6) text: lines "sl local rem st ... uid timeout inode", local as
 * ADDR:PORT in hex, st 0A for LISTEN.
 */
size_t
procfs_listen_inodes(const char *buf, size_t len, uint16_t port,
    uint64_t *out, size_t max)
{
	const char	*p = buf, *end = buf + len, *nl;
	char		 line[512], local[128], st[8];
	unsigned long	 inode;
	unsigned	 lport;
	size_t		 n = 0;
	char		*colon;

	while (p < end && n < max) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) < sizeof(line)) {
			memcpy(line, p, (size_t)(nl - p));
			line[nl - p] = '\0';
			if (sscanf(line, " %*s %127s %*s %7s %*s %*s %*s %*s %*s "
			    "%lu", local, st, &inode) == 3 &&
			    strcmp(st, "0A") == 0 &&
			    (colon = strrchr(local, ':')) != NULL &&
			    sscanf(colon + 1, "%x", &lport) == 1 &&
			    lport == port && inode != 0)
				out[n++] = inode;
		}
		p = nl + 1;
	}
	return (n);
}

/*
 * The processes holding a socket that listens on TCP port, on any
 * address (IPv4 or IPv6): their pids into out, at most max. Only the
 * processes whose descriptors this one may read are seen; *listening
 * says whether anything listens there at all.
 */
size_t
procfs_port_holders(uint16_t port, pid_t *out, size_t max, bool *listening)
{
	static const char *const tables[] = { "/proc/net/tcp",
			    "/proc/net/tcp6" };
	uint64_t	 inodes[64];
	size_t		 ni = 0, n = 0, len;
	char		*buf, path[PATH_MAX], link[64], want[64];
	DIR		*d, *fd;
	struct dirent	*de, *fe;
	ssize_t		 r;
	bool		 holds;

	for (size_t t = 0; t < 2; t++) {
		if ((buf = procfs_read_file(tables[t], 8u << 20, &len)) == NULL)
			continue;
		ni += procfs_listen_inodes(buf, len, port, inodes + ni,
		    sizeof(inodes) / sizeof(inodes[0]) - ni);
		free(buf);
	}
	*listening = ni > 0;
	if (ni == 0 || (d = opendir("/proc")) == NULL)
		return (0);
	while (n < max && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		if ((fd = opendir(path)) == NULL)
			continue;
		holds = false;
		while (!holds && (fe = readdir(fd)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fd/%s",
			    de->d_name, fe->d_name);
			if ((r = readlink(path, link, sizeof(link) - 1)) <= 0)
				continue;
			link[r] = '\0';
			for (size_t i = 0; i < ni && !holds; i++) {
				snprintf(want, sizeof(want), "socket:[%llu]",
				    (unsigned long long)inodes[i]);
				holds = strcmp(link, want) == 0;
			}
		}
		closedir(fd);
		if (holds)
			out[n++] = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return (n);
}
