/*
 * store.c -- checkpoint images in an S3-compatible object store
 * (checkpoint.object_store): the upload that follows a successful CRIU
 * dump, and the download that precedes a restore when the images are
 * not on this machine (a model's images_dir copy removed after its
 * upload with keep_images: false, or a checkpoint_path that exists only
 * in the store).
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
 * Each transfer is one job on a worker thread (s3.c blocks); the loop
 * reads its byte counts twice a second for progress events and gets
 * its outcome through the worker's completion. The store's layout is in
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

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "store_int.h"

#define STORE_TICK_MS		500
#define STORE_MAX_PAGES		1000	/* of a model's listing */
#define STORE_SIGV4_VERSION	0x074b00	/* libcurl 7.75.0 */

enum store_kind { STORE_UPLOAD, STORE_DOWNLOAD };

struct store_job {
	struct supervisor	*sup;
	enum store_kind		 kind;
	store_cb		 cb;
	store_progress_cb	 progress;
	void			*arg;
	TAILQ_ENTRY(store_job)	 entry;

	struct object_store_config conf;	/* copies: a reload may free */
	char			*model;		/* its key segment */
	char			*dir;
	struct images_loc	 loc;		/* where dir is */
	bool			 remove_after;	/* keep_images false */
	atomic_bool		 cancel;
	struct event		*ev_tick;

	/* What the thread has moved so far; mu guards them. */
	pthread_mutex_t		 mu;
	bool			 started;	/* DOWNLOAD: not skipped */
	uint64_t		 done;		/* of finished objects */
	uint64_t		 current;	/* of the one in flight */
	uint64_t		 total;
	size_t			 nfiles;
	uint64_t		 shown;		/* in the last event */
	char			 url[512];	/* s3://B/MODEL/ID/ */

	/* The outcome, written by the thread before it completes. */
	bool			 ok;
	bool			 skipped;
	bool			 has_eviction;
	struct eviction		 eviction;
	char			 reason[1024];
	char			 warning[512];
};

/* ---- on the worker thread ---------------------------------------------- */

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

static void
store_upload_work(void *arg)
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

static void
store_download_work(void *arg)
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

/* ---- on the event loop ------------------------------------------------- */

static void
store_job_free(struct store_job *job)
{
	if (job->ev_tick != NULL)
		event_free(job->ev_tick);
	pthread_mutex_destroy(&job->mu);
	free(job->conf.endpoint);
	free(job->conf.bucket);
	free(job->conf.access_key);
	if (job->conf.secret_key != NULL)
		explicit_bzero(job->conf.secret_key,
		    strlen(job->conf.secret_key));
	free(job->conf.secret_key);
	free(job->conf.region);
	free(job->model);
	free(job->dir);
	model_path_loc_free(&job->loc);
	free(job);
}

/* "uploading 1048576 of 4194304 bytes (25%), 4 files to s3://..." */
static void
store_progress_text(struct store_job *job, uint64_t moved, bool final,
    char *buf, size_t len)
{
	uint64_t	total = job->total > 0 ? job->total : 1;

	if (final)
		snprintf(buf, len, "%s %llu bytes in %zu files %s %s",
		    job->kind == STORE_UPLOAD ? "uploaded" : "downloaded",
		    (unsigned long long)moved, job->nfiles,
		    job->kind == STORE_UPLOAD ? "to" : "from", job->url);
	else
		snprintf(buf, len, "%s %llu of %llu bytes (%llu%%), %zu "
		    "files %s %s", job->kind == STORE_UPLOAD ? "uploading" :
		    "downloading", (unsigned long long)moved,
		    (unsigned long long)job->total,
		    (unsigned long long)(moved * 100 / total), job->nfiles,
		    job->kind == STORE_UPLOAD ? "to" : "from", job->url);
}

static void
store_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct store_job	*job = arg;
	uint64_t		 moved;
	bool			 started;
	char			 text[768];

	pthread_mutex_lock(&job->mu);
	started = job->started && job->url[0] != '\0';
	moved = job->done + job->current;
	if (started && moved != job->shown) {
		job->shown = moved;
		store_progress_text(job, moved, false, text, sizeof(text));
	} else
		started = false;
	pthread_mutex_unlock(&job->mu);
	if (started && job->progress != NULL)
		job->progress(text, job->arg);
}

static void
store_job_done(void *arg, bool cancelled)
{
	struct store_job	*job = arg;
	struct store_result	 r;
	char			 text[768];

	evtimer_del(job->ev_tick);
	TAILQ_REMOVE(&job->sup->store_jobs, job, entry);
	memset(&r, 0, sizeof(r));
	if (cancelled) {
		job->ok = false;
		snprintf(job->reason, sizeof(job->reason), "cancelled");
	}
	r.ok = job->ok;
	r.skipped = job->skipped;
	r.reason = job->ok ? NULL : job->reason[0] != '\0' ? job->reason :
	    "failed";
	r.url = job->url[0] != '\0' ? job->url : NULL;
	r.bytes = job->done;
	r.has_eviction = job->has_eviction;
	r.eviction = job->eviction;
	if (job->warning[0] != '\0')
		log_warnx("object store: %s", job->warning);
	if (job->ok && !job->skipped)
		log_info("%s done url=%s bytes=%llu files=%zu%s", job->kind ==
		    STORE_UPLOAD ? "upload" : "download", job->url,
		    (unsigned long long)job->done, job->nfiles,
		    job->remove_after ? " local_copy=removed" : "");
	if (job->ok && !job->skipped && job->progress != NULL) {
		store_progress_text(job, job->done, true, text, sizeof(text));
		job->progress(text, job->arg);
	}
	job->cb(&r, job->arg);
	store_job_free(job);
}

bool
store_configured(const struct config *conf)
{
	return (conf->checkpoint.set && conf->checkpoint.object_store.set);
}

/* "s3://BUCKET/MODEL/", for messages. */
char *
store_model_url(const struct config *conf, const char *model)
{
	char	*seg, *url;

	seg = store_key_model(model);
	xasprintf(&url, "s3://%s/%s/", conf->checkpoint.object_store.bucket,
	    seg);
	free(seg);
	return (url);
}

/* --check-config: can this libcurl sign for S3? */
int
store_check_config(const struct config *conf, char *why, size_t len)
{
	const curl_version_info_data	*v;

	v = curl_version_info(CURLVERSION_NOW);
	if (!store_configured(conf) || v->version_num >= STORE_SIGV4_VERSION)
		return (0);
	snprintf(why, len, "checkpoint.object_store: libcurl %s cannot sign "
	    "requests for S3 (AWS Signature V4 needs libcurl 7.75 or later); "
	    "uploads and downloads will fail", v->version);
	return (-1);
}

/* A job does nothing when libcurl cannot sign: its reason says why. */
static void
store_noop(void *arg)
{
}

static struct store_job *
store_job_start(struct model *m, enum store_kind kind, const char *dir,
    bool remove_after, store_cb cb, store_progress_cb progress, void *arg)
{
	struct supervisor		*sup = m->sup;
	const struct object_store_config *c;
	struct timeval			 tv = { 0, STORE_TICK_MS * 1000 };
	struct store_job		*job;
	const curl_version_info_data	*v;

	c = &sup->conf->checkpoint.object_store;
	job = xcalloc(1, sizeof(*job));
	job->sup = sup;
	job->kind = kind;
	job->cb = cb;
	job->progress = progress;
	job->arg = arg;
	job->conf.set = true;
	job->conf.endpoint = xstrdup(c->endpoint);
	job->conf.bucket = xstrdup(c->bucket);
	job->conf.access_key = xstrdup(c->access_key);
	job->conf.secret_key = xstrdup(c->secret_key);
	job->conf.region = xstrdup(c->region != NULL ? c->region :
	    "us-east-1");
	job->conf.timeout_secs = c->timeout_secs;
	job->conf.retries = c->retries;
	job->conf.part_size_mb = c->part_size_mb;
	job->conf.multipart_threshold_mb = c->multipart_threshold_mb;
	job->model = store_key_model(m->name);
	job->dir = xstrdup(dir);
	model_path_locate(m->sup->conf, dir, &job->loc);
	job->remove_after = remove_after;
	atomic_init(&job->cancel, false);
	pthread_mutex_init(&job->mu, NULL);
	job->ev_tick = event_new(sup->base, -1, EV_PERSIST, store_tick_cb,
	    job);
	TAILQ_INSERT_TAIL(&sup->store_jobs, job, entry);
	v = curl_version_info(CURLVERSION_NOW);
	if (v->version_num < STORE_SIGV4_VERSION) {
		snprintf(job->reason, sizeof(job->reason), "libcurl %s cannot "
		    "sign for S3 (AWS Signature V4 needs 7.75 or later)",
		    v->version);
		worker_run(sup, store_noop, store_job_done, job);
		return (job);
	}
	evtimer_add(job->ev_tick, &tv);
	worker_run(sup, kind == STORE_UPLOAD ? store_upload_work :
	    store_download_work, store_job_done, job);
	return (job);
}

struct store_job *
store_upload(struct model *m, const char *dir, store_cb cb,
    store_progress_cb progress, void *arg)
{
	char	*ours;
	bool	 remove_after;

	/* Only llmux's own copy goes, never a checkpoint_path. */
	ours = model_path_images(m->sup->conf, m->name);
	remove_after = !m->sup->conf->checkpoint.keep_images &&
	    strcmp(ours, dir) == 0;
	free(ours);
	return (store_job_start(m, STORE_UPLOAD, dir, remove_after, cb,
	    progress, arg));
}

struct store_job *
store_download(struct model *m, const char *dir, store_cb cb,
    store_progress_cb progress, void *arg)
{
	return (store_job_start(m, STORE_DOWNLOAD, dir, false, cb, progress,
	    arg));
}

void
store_cancel(struct store_job *job)
{
	if (job != NULL)
		atomic_store(&job->cancel, true);
}

void
store_init(struct supervisor *sup)
{
	TAILQ_INIT(&sup->store_jobs);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		log_warnx("libcurl could not be initialised: the object store "
		    "will fail");
}

/* At exit, before the workers are waited for: end every transfer. */
void
store_shutdown(struct supervisor *sup)
{
	struct store_job	*job;

	TAILQ_FOREACH(job, &sup->store_jobs, entry)
		atomic_store(&job->cancel, true);
}

void
store_free(struct supervisor *sup)
{
	if (TAILQ_EMPTY(&sup->store_jobs) && worker_count() == 0)
		curl_global_cleanup();
}
