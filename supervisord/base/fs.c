/*
 * fs.c -- file chores shared by the checkpoint (criu/) and the object
 * store (store/): rm -rf, mkdir -p, and the fsync of a directory that
 * makes a rename durable. Blocking: run them on a worker thread where a
 * tree can be large.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "supervisord/base/base.h"

static int
fs_rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		log_warn("cannot remove %s", path);
	return (0);
}

/* rm -rf (on a worker thread: images can be large). */
void
fs_rmtree(const char *path)
{
	struct stat	st;

	if (lstat(path, &st) != 0)
		return;
	nftw(path, fs_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p; the last directory is made 0700. */
int
fs_mkdirs(const char *path, char *err, size_t errlen)
{
	char	buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "path too long: %s", path);
		return (-1);
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %.512s: %s", buf,
			    strerror(errno));
			return (-1);
		}
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %.512s: %s", buf,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/* So that a rename in path survives a crash of the machine. */
void
fs_fsync_dir(const char *path)
{
	int	fd;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	(void)fsync(fd);
	close(fd);
}
