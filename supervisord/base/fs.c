/*
 * fs.c -- the directories the supervisor writes checkpoint images into
 * and restores processes from (criu/, store/), opened so that no other
 * user can have put them there or swap them meanwhile, and the chores
 * done through them (rm -rf, fsync).
 *
 * A directory is walked from "/" one component at a time with
 * openat(O_NOFOLLOW | O_DIRECTORY), so no symbolic link is followed on
 * the way, and each component is checked on its descriptor (OpenSSH's
 * safe_path, by descriptors): a directory owned by root or by the
 * supervisor's own user, not writable by group or others. On the way to
 * the configured directory a sticky one (/tmp) may be writable by
 * others: they cannot rename or remove what is not theirs, and what
 * they create is refused by its owner. What is then read or written is
 * opened below those descriptors, never by path again. Anything else
 * fails with the path and why.
 *
 * Blocking: run on a worker thread where a tree can be large.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "supervisord/base/base.h"

#define FS_MAX_DEPTH	32	/* of a tree fs_rmtree_at removes */

/* Is st a directory we may trust (strict: no sticky exception)? */
static int
fs_check(const struct stat *st, const char *path, bool strict, char *err,
    size_t errlen)
{
	uid_t	me = geteuid();

	if (!S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "%.900s is not a directory", path);
		return (-1);
	}
	if (st->st_uid != 0 && st->st_uid != me) {
		snprintf(err, errlen, "%.900s is owned by uid %u, not by root%s",
		    path, (unsigned)st->st_uid, me != 0 ? " or the supervisor's "
		    "user" : "");
		return (-1);
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	    (strict || !(st->st_mode & S_ISVTX))) {
		snprintf(err, errlen, "%.900s is writable by %s (mode %04o)",
		    path, (st->st_mode & S_IWOTH) ? "others" : "its group",
		    (unsigned)(st->st_mode & 07777));
		return (-1);
	}
	return (0);
}

/*
 * Open name below dirfd (shown as path), a directory, created first
 * (mode) when missing and create; checked. The caller's dirfd is kept.
 */
static int
fs_step(int dirfd, const char *name, const char *path, bool create,
    mode_t mode, bool strict, char *err, size_t errlen)
{
	struct stat	st;
	int		fd;

	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && create) {
		if (mkdirat(dirfd, name, mode) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %.900s: %s", path,
			    strerror(errno));
			return (-1);
		}
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	}
	if (fd == -1) {
		if (errno == ELOOP || errno == ENOTDIR) {
			struct stat	lst;

			if (fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) ==
			    0 && S_ISLNK(lst.st_mode))
				snprintf(err, errlen, "%.900s is a symbolic "
				    "link", path);
			else
				snprintf(err, errlen, "%.900s is not a "
				    "directory", path);
		} else
			snprintf(err, errlen, "cannot open %.900s: %s", path,
			    strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot open %.900s: %s", path,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	if (fs_check(&st, path, strict, err, errlen) != 0) {
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * Walk the components of rel below fd (consumed), appending each to shown.
 * Strict: all of them, or (the way to a configured directory) the last.
 */
static int
fs_walk(int fd, char *shown, size_t shownlen, const char *rel, bool create,
    bool strict_all, char *err, size_t errlen)
{
	char		 buf[PATH_MAX], *p, *next_p, *save = NULL;
	int		 next;
	bool		 strict;

	if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "path too long: %.900s", rel);
		close(fd);
		return (-1);
	}
	for (p = strtok_r(buf, "/", &save); p != NULL; p = next_p) {
		next_p = strtok_r(NULL, "/", &save);
		if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0 ||
		    strlen(shown) + strlen(p) + 2 > shownlen) {
			snprintf(err, errlen, "%.900s: not a plain path (no "
			    "'.' or '..', at most %d bytes)", rel, PATH_MAX);
			close(fd);
			return (-1);
		}
		if (strcmp(shown, "/") != 0)
			strcat(shown, "/");
		strcat(shown, p);
		strict = strict_all || next_p == NULL;
		next = fs_step(fd, p, shown, create, strict ? 0700 : 0755,
		    strict, err, errlen);
		close(fd);
		if (next == -1)
			return (-1);
		fd = next;
	}
	return (fd);
}

int
fs_open_dir(const char *top, const char *below, bool create, char *err,
    size_t errlen)
{
	char	shown[PATH_MAX] = "/", trimmed[PATH_MAX];
	size_t	len;
	int	fd;

	err[0] = '\0';
	if (top == NULL || top[0] != '/') {
		snprintf(err, errlen, "%.900s is not an absolute path",
		    top != NULL ? top : "(none)");
		return (-1);
	}
	/* The configured directory as it will be shown: no trailing '/'. */
	len = strlen(top);
	while (len > 1 && top[len - 1] == '/')
		len--;
	if (len >= sizeof(trimmed)) {
		snprintf(err, errlen, "path too long: %.900s", top);
		return (-1);
	}
	memcpy(trimmed, top, len);
	trimmed[len] = '\0';
	if ((fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open /: %s", strerror(errno));
		return (-1);
	}
	if (strcmp(trimmed, "/") == 0) {
		struct stat	st;

		if (fstat(fd, &st) != 0 || fs_check(&st, "/", true, err,
		    errlen) != 0) {
			if (err[0] == '\0')
				snprintf(err, errlen, "cannot open /");
			close(fd);
			return (-1);
		}
	} else if ((fd = fs_walk(fd, shown, sizeof(shown), trimmed + 1,
	    create, false, err, errlen)) == -1)
		return (-1);
	if (below == NULL || *below == '\0')
		return (fd);
	return (fs_walk(fd, shown, sizeof(shown), below, create, true, err,
	    errlen));
}

int
fs_open_sub(int dirfd, const char *path, const char *name, bool create,
    char *err, size_t errlen)
{
	char	shown[PATH_MAX];

	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || *name == '\0') {
		snprintf(err, errlen, "%.900s/%.100s: not one plain name", path,
		    name);
		return (-1);
	}
	snprintf(shown, sizeof(shown), "%s/%s", path, name);
	return (fs_step(dirfd, name, shown, create, 0700, true, err, errlen));
}

int
fs_open_file(int dirfd, const char *path, const char *name, char *err,
    size_t errlen)
{
	struct stat	st;
	uid_t		me = geteuid();
	int		fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "cannot open %.900s/%.100s: %s", path,
		    name, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != me)) {
		snprintf(err, errlen, "%.900s/%.100s is not a regular file "
		    "owned by root%s", path, name, me != 0 ? " or the "
		    "supervisor's user" : "");
		close(fd);
		return (-1);
	}
	return (fd);
}

int
fs_open_loc_parent(const struct images_loc *loc, bool create, char *err,
    size_t errlen)
{
	return (fs_open_dir(loc->top, loc->below, create, err, errlen));
}

int
fs_open_loc(const struct images_loc *loc, char *err, size_t errlen)
{
	int	parent, fd;

	if ((parent = fs_open_loc_parent(loc, false, err, errlen)) == -1)
		return (-1);
	fd = fs_open_sub(parent, loc->parent, loc->name, false, err, errlen);
	close(parent);
	return (fd);
}

static void
fs_rmtree_depth(int parent, const char *name, int depth)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
		return;
	if (depth >= FS_MAX_DEPTH || (fd = openat(parent, name, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fs_rmtree_depth(dirfd(d), de->d_name, depth + 1);
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		log_warn("cannot remove %s", name);
}

void
fs_rmtree_at(int dirfd, const char *name)
{
	fs_rmtree_depth(dirfd, name, 0);
}

void
fs_fsync_fd(int fd)
{
	(void)fsync(fd);
}
