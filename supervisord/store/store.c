/*
 * store.c -- checkpoint images in an S3-compatible object store
 * (checkpoint.object_store): the upload that follows a successful CRIU
 * dump, and the download that precedes a restore when the images are
 * not on this machine (a model's images_dir copy removed after its
 * upload with keep_images: false, or a checkpoint_path that exists only
 * in the store).
 *
 * Each transfer is one job on a worker thread (store_xfer.c: s3.c
 * blocks); the loop reads its byte counts twice a second for progress
 * events and gets its outcome through the worker's completion.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"
#include "store_int.h"

#define STORE_TICK_MS		500
#define STORE_SIGV4_VERSION	0x074b00	/* libcurl 7.75.0 */

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
	worker_run(sup, kind == STORE_UPLOAD ? store_xfer_upload :
	    store_xfer_download, store_job_done, job);
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
