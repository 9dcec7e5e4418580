/*
 * s3.c -- a small client for one bucket of an S3-compatible object
 * store: PUT, GET, DELETE and ListObjectsV2, path-style
 * (ENDPOINT/BUCKET/KEY), signed with AWS Signature Version 4 by libcurl
 * (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3") rather than by hand. Every
 * request carries x-amz-content-sha256: the SHA-256 of the body, which
 * for an image file is the one its manifest already holds, so the store
 * refuses a body that does not match it.
 *
 * It blocks: it runs on worker threads only (store_xfer.c), one handle
 * per thread, reused so connections are kept alive. A request that fails to
 * connect, times out, is cut, or is answered 5xx (or 408, 429, S3's
 * RequestTimeout and SlowDown) is tried again after a growing delay;
 * the rest fail at once with the store's error code and message. A
 * request that moves no byte for timeout_secs is abandoned; a cancel
 * flag set by the event loop ends the request in flight within a
 * second. The secret key goes to libcurl and nowhere else. A file over
 * the part size is uploaded in parts by s3_multipart.c, whose requests
 * run here.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "strbuf.h"
#include "version.h"
#include "xmalloc.h"
#include "store_int.h"

#define S3_CONNECT_TIMEOUT_MS	10000
#define S3_LIST_MAX		(4u << 20)
#define S3_BACKOFF_FIRST_MS	250
#define S3_BACKOFF_MAX_MS	8000

/* ---- opening ----------------------------------------------------------- */

struct s3 *
s3_open(const struct object_store_config *c, atomic_bool *cancel)
{
	struct s3	*s = xcalloc(1, sizeof(*s));
	size_t		 len;

	s->curl = curl_easy_init();
	s->endpoint = xstrdup(c->endpoint != NULL ? c->endpoint : "");
	len = strlen(s->endpoint);
	while (len > 0 && s->endpoint[len - 1] == '/')
		s->endpoint[--len] = '\0';
	s->bucket = xstrdup(c->bucket != NULL ? c->bucket : "");
	s->access_key = xstrdup(c->access_key != NULL ? c->access_key : "");
	s->secret_key = xstrdup(c->secret_key != NULL ? c->secret_key : "");
	xasprintf(&s->sigv4, "aws:amz:%s:s3", c->region != NULL ? c->region :
	    "us-east-1");
	s->timeout_secs = c->timeout_secs > 0 ? (long)c->timeout_secs : 60;
	s->retries = c->retries;
	s->part_size = (uint64_t)(c->part_size_mb > 0 ? c->part_size_mb :
	    64) << 20;
	s->multipart_threshold = (uint64_t)(c->multipart_threshold_mb > 0 ?
	    c->multipart_threshold_mb : 5120) << 20;
	s->cancel = cancel;
	return (s);
}

void
s3_close(struct s3 *s)
{
	if (s == NULL)
		return;
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	free(s->endpoint);
	free(s->bucket);
	free(s->access_key);
	explicit_bzero(s->secret_key, strlen(s->secret_key));
	free(s->secret_key);
	free(s->sigv4);
	free(s);
}

void
s3_set_progress(struct s3 *s, s3_progress_fn fn, void *arg)
{
	s->progress = fn;
	s->progress_arg = arg;
}

char *
s3_url(const struct s3 *s, const char *key)
{
	char	*u;

	xasprintf(&u, "s3://%s/%s", s->bucket, key != NULL ? key : "");
	return (u);
}

int64_t
s3_backoff_ms(unsigned n)
{
	int64_t	ms = S3_BACKOFF_FIRST_MS;

	while (n-- > 1 && ms < S3_BACKOFF_MAX_MS)
		ms *= 2;
	return (ms < S3_BACKOFF_MAX_MS ? ms : S3_BACKOFF_MAX_MS);
}

bool
s3_retry_status(long status, const char *code)
{
	if (status >= 500 || status == 408 || status == 429)
		return (true);
	return (code != NULL && (strcmp(code, "RequestTimeout") == 0 ||
	    strcmp(code, "SlowDown") == 0 ||
	    strcmp(code, "InternalError") == 0 ||
	    strcmp(code, "ServiceUnavailable") == 0));
}

bool
s3_cancelled(const struct s3 *s)
{
	return (s->cancel != NULL && atomic_load(s->cancel));
}

/* Is this request to end now? (An abort after a cancel is not.) */
static bool
s3_req_cancelled(const struct s3_req *r)
{
	return (!r->uncancelled && s3_cancelled(r->s));
}

/* ---- libcurl's callbacks ----------------------------------------------- */

static size_t
s3_read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_req	*r = arg;
	size_t		 want = size * n;
	ssize_t		 got;

	if (r->in_off >= r->in_size)
		return (0);
	if (want > r->in_size - r->in_off)
		want = (size_t)(r->in_size - r->in_off);
	if (r->in_data != NULL) {
		memcpy(buf, r->in_data + r->in_off, want);
		got = (ssize_t)want;
	} else {
		do
			got = pread(r->in_fd, buf, want,
			    (off_t)(r->in_base + r->in_off));
		while (got == -1 && errno == EINTR);
		if (got <= 0) {
			/* The file shrank under us, or cannot be read. */
			r->local_errno = got == 0 ? EIO : errno;
			return (CURL_READFUNC_ABORT);
		}
	}
	r->in_off += (uint64_t)got;
	return ((size_t)got);
}

/* libcurl rewinds the body when it must send it again. */
static int
s3_seek_cb(void *arg, curl_off_t off, int origin)
{
	struct s3_req	*r = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->in_size)
		return (CURL_SEEKFUNC_CANTSEEK);
	r->in_off = (uint64_t)off;
	return (CURL_SEEKFUNC_OK);
}

static int
s3_write_out(struct s3_req *r, const char *buf, size_t n)
{
	ssize_t	w;
	size_t	off = 0;

	if (r->out_len + n > r->out_max) {
		r->too_large = true;
		return (-1);
	}
	if (r->out_fd == -1) {
		strbuf_add(&r->mem, buf, n);
	} else {
		while (off < n) {
			w = write(r->out_fd, buf + off, n - off);
			if (w == -1 && errno == EINTR)
				continue;
			if (w <= 0) {
				r->local_errno = w == 0 ? EIO : errno;
				return (-1);
			}
			off += (size_t)w;
		}
		sha256_update(&r->out_hash, buf, n);
	}
	r->out_len += n;
	return (0);
}

static size_t
s3_write_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_req	*r = arg;
	size_t		 len = size * n, keep;
	long		 status = 0;

	curl_easy_getinfo(r->s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return (s3_write_out(r, buf, len) == 0 ? len : 0);
	/* An error document: keep its beginning. */
	keep = len;
	if (r->elen + keep > S3_ERROR_BODY_MAX)
		keep = S3_ERROR_BODY_MAX - r->elen;
	if (keep > 0) {
		r->ebody = xrealloc(r->ebody, r->elen + keep + 1);
		memcpy(r->ebody + r->elen, buf, keep);
		r->elen += keep;
		r->ebody[r->elen] = '\0';
	}
	return (len);
}

static int
s3_xfer_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct s3_req	*r = arg;

	if (s3_req_cancelled(r))
		return (1);
	if (r->s->progress != NULL && !r->quiet)
		r->s->progress(r->s->progress_base +
		    (uint64_t)(ulnow > dlnow ? ulnow : dlnow),
		    r->s->progress_arg);
	return (0);
}

/* Keep the ETag of the last answer (a 100 Continue has its own lines). */
static size_t
s3_header_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct s3_req	*r = arg;
	size_t		 len = size * n, vlen;
	const char	*v, *end = buf + len;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0)
		r->etag[0] = '\0';
	else if (len >= 5 && strncasecmp(buf, "etag:", 5) == 0) {
		for (v = buf + 5; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
		    end[-1] == ' ' || end[-1] == '\t'))
			end--;
		vlen = (size_t)(end - v);
		r->etag[0] = '\0';
		if (vlen > 0 && vlen <= S3_ETAG_MAX) {
			memcpy(r->etag, v, vlen);
			r->etag[vlen] = '\0';
		}
	}
	return (len);
}

/* ---- one request ------------------------------------------------------- */

/* Forget what an earlier attempt received. */
static int
s3_req_reset(struct s3_req *r)
{
	r->in_off = 0;
	r->out_len = 0;
	r->too_large = false;
	r->status = 0;
	r->local_errno = 0;
	r->etag[0] = '\0';
	sha256_free(&r->out_hash);
	sha256_init(&r->out_hash);
	strbuf_free(&r->mem);
	free(r->ebody);
	r->ebody = NULL;
	r->elen = 0;
	if (r->out_fd != -1 && (ftruncate(r->out_fd, 0) != 0 ||
	    lseek(r->out_fd, 0, SEEK_SET) != 0)) {
		r->local_errno = errno;
		return (-1);
	}
	return (0);
}

static char *
s3_req_url(const struct s3_req *r)
{
	char	*bucket, *key = NULL, *url;

	bucket = store_key_escape(r->s->bucket, false);
	if (r->key != NULL)
		key = store_key_escape(r->key, true);
	xasprintf(&url, "%s/%s%s%s%s%s", r->s->endpoint, bucket,
	    key != NULL ? "/" : "", key != NULL ? key : "",
	    r->query != NULL ? "?" : "", r->query != NULL ? r->query : "");
	free(bucket);
	free(key);
	return (url);
}

static CURLcode
s3_req_perform(struct s3_req *r)
{
	struct s3		*s = r->s;
	CURL			*c = s->curl;
	struct curl_slist	*h = NULL;
	char			*url, line[128];
	CURLcode		 rc;

	curl_easy_reset(c);
	url = s3_req_url(r);
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", r->sha256);
	h = curl_slist_append(h, line);
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP |
	    CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "llmux/" LLMUX_VERSION);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(s->timeout_secs * 1000 < S3_CONNECT_TIMEOUT_MS ?
	    s->timeout_secs * 1000 : S3_CONNECT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->timeout_secs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, s3_xfer_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (r->limit_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->limit_ms);
	if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)r->in_size);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, s3_read_cb);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, s3_seek_cb);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->in_size);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->in_data != NULL ?
		    (const char *)r->in_data : "");
	} else if (strcmp(r->method, "DELETE") == 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	s->errbuf[0] = '\0';
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	free(url);
	return (rc);
}

/* Is a transfer that failed below HTTP worth another try? */
static bool
s3_retry_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return (true);
	default:
		return (false);
	}
}

/* Sleep ms, waking early when cancelled. */
static void
s3_pause(const struct s3 *s, int64_t ms)
{
	struct timespec	ts = { 0, 50 * 1000 * 1000 };
	int64_t		until = clock_ms() + ms;

	while (clock_ms() < until && !s3_cancelled(s))
		nanosleep(&ts, NULL);
}

static void
s3_req_error(struct s3_req *r, CURLcode rc, char *err, size_t errlen)
{
	struct s3		*s = r->s;
	struct s3_error_doc	 doc;
	char			 tries[48] = "", *url;
	const char		*what, *verb;

	verb = r->verb != NULL ? r->verb : r->method;
	what = r->key != NULL ? r->key : "the bucket";
	if (r->attempts > 1)
		snprintf(tries, sizeof(tries), " (after %u attempts)",
		    r->attempts);
	if (s3_req_cancelled(r)) {
		snprintf(err, errlen, "cancelled");
		return;
	}
	if (r->local_errno != 0) {
		snprintf(err, errlen, "%s %s: %s", verb, what,
		    strerror(r->local_errno));
		return;
	}
	if (r->too_large) {
		snprintf(err, errlen, "%s %s: the object is larger than "
		    "expected (more than %llu bytes)", verb, what,
		    (unsigned long long)r->out_max);
		return;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "cannot reach the object store at %s: "
		    "%s%s", s->endpoint, s->errbuf[0] != '\0' ? s->errbuf :
		    curl_easy_strerror(rc), tries);
		return;
	}
	if (s3_xml_error(r->ebody != NULL ? r->ebody : "", r->elen,
	    &doc) != 0) {
		snprintf(doc.code, sizeof(doc.code), "%s", r->status == 404 ?
		    "NotFound" : r->status == 403 ? "Forbidden" : "-");
		snprintf(doc.message, sizeof(doc.message), "%s",
		    r->ebody == NULL ? "no error document" :
		    "an error document that is not S3's XML");
	}
	if (strcmp(doc.code, "NoSuchBucket") == 0) {
		snprintf(err, errlen, "bucket %s does not exist at %s (%ld "
		    "%s: %s)", s->bucket, s->endpoint, r->status, doc.code,
		    doc.message);
		return;
	}
	url = s3_url(s, r->key);
	if (r->status == 403)
		snprintf(err, errlen, "access denied by the object store "
		    "at %s: %s %s: %ld %s: %s%s", s->endpoint, verb, url,
		    r->status, doc.code, doc.message,
		    strcmp(doc.code, "SignatureDoesNotMatch") == 0 ||
		    strcmp(doc.code, "InvalidAccessKeyId") == 0 ? " (check "
		    "checkpoint.object_store.access_key and secret_key)" : "");
	else
		snprintf(err, errlen, "%s %s: %ld %s: %s%s", verb, url,
		    r->status, doc.code, doc.message, tries);
	free(url);
}

/* A 2xx that is an Error document after all: keep it as one. */
static bool
s3_req_error_in_2xx(struct s3_req *r, struct s3_error_doc *doc)
{
	if (!r->error_in_2xx || s3_xml_error(strbuf_str(&r->mem),
	    r->mem.len, doc) != 0)
		return (false);
	free(r->ebody);
	r->elen = r->mem.len < S3_ERROR_BODY_MAX ? r->mem.len :
	    S3_ERROR_BODY_MAX;
	r->ebody = xmalloc(r->elen + 1);
	memcpy(r->ebody, strbuf_str(&r->mem), r->elen);
	r->ebody[r->elen] = '\0';
	return (true);
}

/* Run r with retries; 0, S3_NOT_FOUND or -1 with err. */
int
s3_run(struct s3_req *r, char *err, size_t errlen)
{
	struct s3_error_doc	doc;
	CURLcode		rc = CURLE_OK;
	bool			again;

	r->s->errbuf[0] = '\0';
	for (r->attempts = 1; ; r->attempts++) {
		if (s3_req_reset(r) != 0)
			break;
		rc = s3_req_perform(r);
		if (s3_req_cancelled(r) || r->local_errno != 0 ||
		    r->too_large)
			break;
		if (rc == CURLE_OK && r->status >= 200 && r->status < 300) {
			if (!s3_req_error_in_2xx(r, &doc))
				return (0);
			again = s3_retry_status(0, doc.code);
		} else if (rc == CURLE_OK) {
			if (s3_xml_error(r->ebody != NULL ? r->ebody : "",
			    r->elen, &doc) != 0)
				doc.code[0] = '\0';
			if (r->status == 404 && !r->plain_404 &&
			    strcmp(doc.code, "NoSuchBucket") != 0) {
				snprintf(err, errlen, "no object %s in bucket "
				    "%s", r->key != NULL ? r->key : "",
				    r->s->bucket);
				return (S3_NOT_FOUND);
			}
			again = s3_retry_status(r->status, doc.code);
		} else
			again = s3_retry_curl(rc);
		if (!again || r->attempts > r->s->retries || r->uncancelled)
			break;
		s3_pause(r->s, s3_backoff_ms(r->attempts));
		if (s3_cancelled(r->s))
			break;
	}
	s3_req_error(r, rc, err, errlen);
	return (-1);
}

void
s3_req_init(struct s3_req *r, struct s3 *s, const char *method,
    const char *key)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->method = method;
	r->key = key;
	r->sha256 = S3_EMPTY_SHA256;
	r->in_fd = -1;
	r->out_fd = -1;
	r->out_max = S3_ERROR_BODY_MAX;
}

void
s3_req_free(struct s3_req *r)
{
	sha256_free(&r->out_hash);
	strbuf_free(&r->mem);
	free(r->ebody);
}

/* ---- the operations ---------------------------------------------------- */

int
s3_put_file(struct s3 *s, const char *key, int fd, uint64_t size,
    const char *sha256hex, char *err, size_t errlen)
{
	struct s3_req	r;
	int		rc;

	if (size > s->multipart_threshold)
		return (s3_multipart_put(s, key, fd, size, sha256hex, err,
		    errlen));
	s3_req_init(&r, s, "PUT", key);
	r.in_fd = fd;
	r.in_size = size;
	r.sha256 = sha256hex;
	rc = s3_run(&r, err, errlen);
	s3_req_free(&r);
	return (rc == 0 ? 0 : -1);
}

int
s3_put_data(struct s3 *s, const char *key, const void *data, size_t len,
    char *err, size_t errlen)
{
	struct s3_req	r;
	struct sha256	h;
	uint8_t		d[SHA256_LEN];
	char		hex[SHA256_HEX_LEN];
	int		rc;

	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final(&h, d);
	sha256_hex(d, hex);
	s3_req_init(&r, s, "PUT", key);
	r.in_data = data;
	r.in_size = len;
	r.sha256 = hex;
	rc = s3_run(&r, err, errlen);
	s3_req_free(&r);
	return (rc == 0 ? 0 : -1);
}

int
s3_get_file(struct s3 *s, const char *key, int fd, uint64_t max,
    char sha256hex[65], uint64_t *size, char *err, size_t errlen)
{
	struct s3_req	r;
	uint8_t		d[SHA256_LEN];
	int		rc;

	s3_req_init(&r, s, "GET", key);
	r.out_fd = fd;
	r.out_max = max;
	if ((rc = s3_run(&r, err, errlen)) == 0) {
		sha256_final(&r.out_hash, d);
		sha256_hex(d, sha256hex);
		*size = r.out_len;
	}
	s3_req_free(&r);
	return (rc);
}

int
s3_get_data(struct s3 *s, const char *key, size_t max, char **out,
    size_t *len, char *err, size_t errlen)
{
	struct s3_req	r;
	int		rc;

	*out = NULL;
	*len = 0;
	s3_req_init(&r, s, "GET", key);
	r.out_max = max;
	if ((rc = s3_run(&r, err, errlen)) == 0) {
		*len = r.mem.len;
		*out = xmalloc(r.mem.len + 1);
		memcpy(*out, strbuf_str(&r.mem), r.mem.len);
		(*out)[r.mem.len] = '\0';
	}
	s3_req_free(&r);
	return (rc);
}

int
s3_delete(struct s3 *s, const char *key, char *err, size_t errlen)
{
	struct s3_req	r;
	int		rc;

	s3_req_init(&r, s, "DELETE", key);
	rc = s3_run(&r, err, errlen);
	s3_req_free(&r);
	return (rc == S3_NOT_FOUND ? 0 : rc);
}

/*
 * The query is written in canonical form (parameters sorted, values
 * encoded with SigV4's UriEncode) so that every libcurl signs what the
 * store checks.
 */
int
s3_list(struct s3 *s, const char *prefix, const char *token,
    struct s3_list *l, char *err, size_t errlen)
{
	struct s3_req	 r;
	char		*p, *t = NULL, *query, why[256];
	int		 rc;

	memset(l, 0, sizeof(*l));
	p = store_key_escape(prefix, false);
	if (token != NULL)
		t = store_key_escape(token, false);
	xasprintf(&query, "%s%s%slist-type=2&prefix=%s", t != NULL ?
	    "continuation-token=" : "", t != NULL ? t : "", t != NULL ? "&" :
	    "", p);
	s3_req_init(&r, s, "GET", NULL);
	r.query = query;
	r.out_max = S3_LIST_MAX;
	rc = s3_run(&r, err, errlen);
	if (rc == 0 && s3_xml_list(strbuf_str(&r.mem), r.mem.len, l, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "listing %s in bucket %s: %s", prefix,
		    s->bucket, why);
		rc = -1;
	}
	if (rc == S3_NOT_FOUND)
		rc = -1;
	s3_req_free(&r);
	free(query);
	free(p);
	free(t);
	return (rc);
}
