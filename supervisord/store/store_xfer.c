/*
 * store_xfer.c -- what one transfer of checkpoint images to or from the
 * S3-compatible object store does, on its worker thread (store.c starts
 * it and follows it from the loop).
 *
 * Upload: the image files first, each signed with the SHA-256 its
 * manifest holds (the store refuses a body that does not match), then
 * the manifest, then MODEL/latest naming the new checkpoint; then the
 * older checkpoints of the model are deleted (listed with
 * ListObjectsV2). With keep_images false the local copy goes once all
 * of that has succeeded. Download: MODEL/latest, the manifest (checked
 * against the SHA-256 in its ID), every file (checked against the
 * manifest as it streams in) into DIR.download, renamed to DIR at the
 * end, so a failed download never leaves half an image.
 *
 * The bytes moved so far go into the job under its lock, for the loop's
 * progress events; the outcome into the job before the worker completes.
 * Nothing here touches the supervisor. The store's layout is in
 * store_int.h.
 *
 * The images directory and its parent are opened safely (base/fs.c), or
 * the transfer is refused with the path and why; every file is read and
 * written below their descriptors, never by path.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "store_int.h"

#define STORE_MAX_PAGES		1000	/* of a model's listing */

static void
store_xfer_cb(uint64_t bytes, void *arg)
{
	struct store_job	*job = arg;

	pthread_mutex_lock(&job->mu);
	job->current = bytes;
	pthread_mutex_unlock(&job->mu);
}

static void
store_moved(struct store_job *job, uint64_t bytes)
{
	pthread_mutex_lock(&job->mu);
	job->done += bytes;
	job->current = 0;
	pthread_mutex_unlock(&job->mu);
}

static void
store_fail(struct store_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
store_fail(struct store_job *job, const char *fmt, ...)
{
	va_list	ap;

	if (job->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(job->reason, sizeof(job->reason), fmt, ap);
	va_end(ap);
}

/* DIR/llmux-manifest as it is on disk (bounded), for its own hash. */
static char *
store_read_manifest(int dfd, const char *dir, size_t *len, char *err,
    size_t errlen)
{
	struct stat	 st;
	char		*path, *buf;
	size_t		 off = 0;
	ssize_t		 n;
	int		 fd;

	xasprintf(&path, "%s/%s", dir, MANIFEST_FILE);
	fd = openat(dfd, MANIFEST_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)MANIFEST_MAX_BYTES) {
		snprintf(err, errlen, "cannot read %s: %s", path, fd == -1 ?
		    strerror(errno) : "not a regular file of a manifest's "
		    "size");
		if (fd != -1)
			close(fd);
		free(path);
		return (NULL);
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, buf + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	free(path);
	buf[off] = '\0';
	*len = off;
	return (buf);
}

static void
store_hash_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN])
{
	struct sha256	h;
	uint8_t		d[SHA256_LEN];

	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final(&h, d);
	sha256_hex(d, hex);
}

/*
 * Delete the model's checkpoints that id supersedes (an interrupted
 * upload's objects included); a newer one (another writer's) is left
 * alone. Failures are warnings: the upload itself is done.
 */
static void
store_prune(struct store_job *job, struct s3 *s, const char *id)
{
	struct s3_list	 l;
	char		*prefix, *token = NULL, **doomed = NULL, err[512];
	char		 kid[STORE_ID_LEN + 1];
	size_t		 n = 0, pages = 0;
	bool		 more;

	xasprintf(&prefix, "%s/", job->model);
	do {
		if (s3_list(s, prefix, token, &l, err, sizeof(err)) != 0) {
			snprintf(job->warning, sizeof(job->warning), "cannot "
			    "remove older checkpoints: %.400s", err);
			break;
		}
		for (size_t i = 0; i < l.n; i++) {
			if (store_key_listed_id(l.keys[i], job->model,
			    kid) != 0 || !store_key_superseded(kid, id))
				continue;
			doomed = xreallocarray(doomed, n + 1,
			    sizeof(*doomed));
			doomed[n++] = xstrdup(l.keys[i]);
		}
		free(token);
		token = l.next != NULL ? xstrdup(l.next) : NULL;
		more = l.truncated;
		s3_list_free(&l);
	} while (more && ++pages < STORE_MAX_PAGES);
	for (size_t i = 0; i < n; i++) {
		if (job->warning[0] == '\0' && s3_delete(s, doomed[i], err,
		    sizeof(err)) != 0)
			snprintf(job->warning, sizeof(job->warning), "cannot "
			    "remove an older checkpoint: %.400s", err);
		free(doomed[i]);
	}
	free(doomed);
	free(token);
	free(prefix);
}

static int
store_upload_file(struct store_job *job, struct s3 *s, int dfd,
    const char *prefix, const struct manifest_file *f)
{
	struct stat	 st;
	char		*path, *key, err[768];
	int		 fd, rc = -1;

	xasprintf(&path, "%s/%s", job->dir, f->name);
	xasprintf(&key, "%s%s", prefix, f->name);
	if ((fd = openat(dfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1 || fstat(fd, &st) != 0) {
		store_fail(job, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->size) {
		store_fail(job, "image file %s has changed since the "
		    "checkpoint (%llu bytes, the manifest says %llu)", f->name,
		    (unsigned long long)st.st_size,
		    (unsigned long long)f->size);
		goto out;
	}
	if (s3_put_file(s, key, fd, f->size, f->sha256, err,
	    sizeof(err)) != 0) {
		store_fail(job, "%s", err);
		goto out;
	}
	store_moved(job, f->size);
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(path);
	free(key);
	return (rc);
}

void
store_xfer_upload(void *arg)
{
	struct store_job	*job = arg;
	struct manifest		 man;
	struct s3		*s;
	char			*text, *prefix = NULL, *key = NULL, *url;
	char			 hex[SHA256_HEX_LEN], id[STORE_ID_LEN + 1];
	char			 latest[STORE_ID_LEN + 2], err[1024];
	size_t			 len;
	int			 dfd, parent;

	memset(&man, 0, sizeof(man));
	if ((dfd = fs_open_loc(&job->loc, err, sizeof(err))) == -1) {
		store_fail(job, "upload refused: %s", err);
		return;
	}
	if ((text = store_read_manifest(dfd, job->dir, &len, err,
	    sizeof(err))) == NULL) {
		store_fail(job, "%s", err);
		close(dfd);
		return;
	}
	if (manifest_decode(text, len, &man, err, sizeof(err)) != 0) {
		store_fail(job, "the manifest of %s is unreadable: %s",
		    job->dir, err);
		free(text);
		close(dfd);
		return;
	}
	s = s3_open(&job->conf, &job->cancel);
	s3_set_progress(s, store_xfer_cb, job);
	store_hash_hex(text, len, hex);
	store_key_id(man.created, hex, id);
	xasprintf(&prefix, "%s/%s/", job->model, id);
	url = s3_url(s, prefix);
	pthread_mutex_lock(&job->mu);
	snprintf(job->url, sizeof(job->url), "%s", url);
	job->total = len;
	for (size_t i = 0; i < man.nfiles; i++)
		job->total += man.files[i].size;
	job->nfiles = man.nfiles + 1;
	job->started = true;
	pthread_mutex_unlock(&job->mu);
	free(url);

	for (size_t i = 0; i < man.nfiles; i++)
		if (store_upload_file(job, s, dfd, prefix, &man.files[i]) != 0)
			goto out;
	/* The manifest last: a checkpoint with one is complete. */
	xasprintf(&key, "%s%s", prefix, MANIFEST_FILE);
	if (s3_put_data(s, key, text, len, err, sizeof(err)) != 0) {
		store_fail(job, "%s", err);
		goto out;
	}
	store_moved(job, len);
	free(key);
	xasprintf(&key, "%s/%s", job->model, STORE_LATEST);
	snprintf(latest, sizeof(latest), "%s\n", id);
	if (s3_put_data(s, key, latest, strlen(latest), err,
	    sizeof(err)) != 0) {
		store_fail(job, "%s", err);
		goto out;
	}
	job->ok = true;
	store_prune(job, s, id);
	if (job->remove_after && (parent = fs_open_loc_parent(&job->loc, false,
	    err, sizeof(err))) != -1) {
		fs_rmtree_at(parent, job->loc.name);
		close(parent);
	}
out:
	close(dfd);
	s3_close(s);
	manifest_free(&man);
	free(text);
	free(prefix);
	free(key);
}

/* Write all of buf to DIR/name and fsync it. */
static int
store_write_file(int dfd, const char *dir, const char *name, const char *buf,
    size_t len, char *err, size_t errlen)
{
	char	*path;
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd, rc = -1;

	xasprintf(&path, "%s/%s", dir, name);
	if ((fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto fail;
	while (off < len) {
		if ((n = write(fd, buf + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	if (off == len && fsync(fd) == 0)
		rc = 0;
fail:
	if (rc != 0)
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
	if (fd != -1)
		close(fd);
	free(path);
	return (rc);
}

static int
store_download_file(struct store_job *job, struct s3 *s, int tfd,
    const char *tmp, const char *prefix, const struct manifest_file *f)
{
	char		*path, *key, hex[SHA256_HEX_LEN], err[768];
	uint64_t	 size = 0;
	int		 fd, rc = -1;

	xasprintf(&path, "%s/%s", tmp, f->name);
	xasprintf(&key, "%s%s", prefix, f->name);
	if ((fd = openat(tfd, f->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		store_fail(job, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	if (s3_get_file(s, key, fd, f->size, hex, &size, err,
	    sizeof(err)) != 0) {
		store_fail(job, "%s", err);
		goto out;
	}
	if (size != f->size || strcmp(hex, f->sha256) != 0) {
		store_fail(job, "downloaded image file %s fails its checksum: "
		    "the copy in the object store is damaged (%s%s%s)", f->name,
		    job->url, f->name, size != f->size ? ", of another size" :
		    "");
		goto out;
	}
	if (fsync(fd) != 0) {
		store_fail(job, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	store_moved(job, f->size);
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(path);
	free(key);
	return (rc);
}

/* MODEL/latest, then the manifest it names, checked against its ID. */
static char *
store_fetch_manifest(struct store_job *job, struct s3 *s, char **prefix,
    size_t *len, struct manifest *man)
{
	char	*key, *text = NULL, *url, hex[SHA256_HEX_LEN], err[768];
	char	 id[STORE_ID_LEN + 1];
	size_t	 n;
	int	 rc;

	xasprintf(&key, "%s/%s", job->model, STORE_LATEST);
	rc = s3_get_data(s, key, STORE_LATEST_MAX, &text, &n, err,
	    sizeof(err));
	if (rc == S3_NOT_FOUND)
		store_fail(job, "no checkpoint of this model in the object "
		    "store: %s", err);
	else if (rc != 0)
		store_fail(job, "%s", err);
	else if (store_key_parse_latest(text, n, id) != 0)
		store_fail(job, "%s/%s in bucket %s does not name a "
		    "checkpoint", job->model, STORE_LATEST, job->conf.bucket);
	free(key);
	free(text);
	text = NULL;
	if (job->reason[0] != '\0')
		return (NULL);

	xasprintf(prefix, "%s/%s/", job->model, id);
	url = s3_url(s, *prefix);
	pthread_mutex_lock(&job->mu);
	snprintf(job->url, sizeof(job->url), "%s", url);
	pthread_mutex_unlock(&job->mu);
	free(url);
	xasprintf(&key, "%s%s", *prefix, MANIFEST_FILE);
	rc = s3_get_data(s, key, MANIFEST_MAX_BYTES, &text, len, err,
	    sizeof(err));
	free(key);
	if (rc != 0) {
		store_fail(job, "%s%s", rc == S3_NOT_FOUND ? "the checkpoint "
		    "named by latest is incomplete: " : "", err);
		free(text);
		return (NULL);
	}
	store_hash_hex(text, *len, hex);
	if (strcmp(hex, id + STORE_TIME_LEN + 1) != 0) {
		store_fail(job, "the manifest %s%s fails its checksum: the "
		    "copy in the object store is damaged", job->url,
		    MANIFEST_FILE);
		free(text);
		return (NULL);
	}
	if (manifest_decode(text, *len, man, err, sizeof(err)) != 0) {
		store_fail(job, "the manifest %s%s is unreadable: %s",
		    job->url, MANIFEST_FILE, err);
		free(text);
		return (NULL);
	}
	return (text);
}

void
store_xfer_download(void *arg)
{
	struct store_job	*job = arg;
	struct manifest		 man;
	struct stat		 st;
	struct s3		*s;
	char			*text, *prefix = NULL, *tmp, *tmpname;
	char			 err[1024];
	size_t			 len;
	int			 parent, tfd = -1;

	memset(&man, 0, sizeof(man));
	if ((parent = fs_open_loc_parent(&job->loc, true, err,
	    sizeof(err))) == -1) {
		store_fail(job, "download refused: %s", err);
		return;
	}
	if (fstatat(parent, job->loc.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* Here already: the restore checks them as always. */
		job->skipped = true;
		job->ok = true;
		close(parent);
		return;
	}
	pthread_mutex_lock(&job->mu);
	job->started = true;
	pthread_mutex_unlock(&job->mu);
	s = s3_open(&job->conf, &job->cancel);
	s3_set_progress(s, store_xfer_cb, job);
	xasprintf(&tmpname, "%s.download", job->loc.name);
	xasprintf(&tmp, "%s.download", job->loc.path);
	if ((text = store_fetch_manifest(job, s, &prefix, &len,
	    &man)) == NULL)
		goto out;
	pthread_mutex_lock(&job->mu);
	job->total = len;
	for (size_t i = 0; i < man.nfiles; i++)
		job->total += man.files[i].size;
	job->nfiles = man.nfiles + 1;
	job->done = len;
	pthread_mutex_unlock(&job->mu);

	fs_rmtree_at(parent, tmpname);
	if ((tfd = fs_open_sub(parent, job->loc.parent, tmpname, true, err,
	    sizeof(err))) == -1) {
		store_fail(job, "%s", err);
		goto out;
	}
	for (size_t i = 0; i < man.nfiles; i++)
		if (store_download_file(job, s, tfd, tmp, prefix,
		    &man.files[i]) != 0)
			goto out;
	if (store_write_file(tfd, tmp, MANIFEST_FILE, text, len, err,
	    sizeof(err)) != 0) {
		store_fail(job, "%s", err);
		goto out;
	}
	fs_fsync_fd(tfd);
	if (renameat(parent, tmpname, parent, job->loc.name) != 0) {
		store_fail(job, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	fs_fsync_fd(parent);
	job->has_eviction = man.has_eviction;
	job->eviction = man.eviction;
	job->ok = true;
out:
	if (!job->ok)
		fs_rmtree_at(parent, tmpname);
	if (tfd != -1)
		close(tfd);
	close(parent);
	s3_close(s);
	manifest_free(&man);
	free(text);
	free(prefix);
	free(tmp);
	free(tmpname);
}
