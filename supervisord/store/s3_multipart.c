/*
 * s3_multipart.c -- an image file larger than the part size
 * (object_store.part_size_mb) goes to the store as an S3 multipart
 * upload, since one PUT may carry at most 5 GiB:
 *
 *	POST KEY?uploads=			CreateMultipartUpload: UploadId
 *	PUT KEY?partNumber=N&uploadId=ID	UploadPart, for N = 1.., an ETag each
 *	POST KEY?uploadId=ID			CompleteMultipartUpload
 *	DELETE KEY?uploadId=ID			AbortMultipartUpload, on failure
 *
 * Each part is read twice with pread: once to hash it (its own
 * x-amz-content-sha256, and the whole file's SHA-256, which must be the
 * manifest's before the upload is completed), once to send it. Every
 * request is one of s3.c's, with its retries, timeout and cancel, so a
 * failed part is tried again alone. Complete may answer 200 with an
 * Error document: that is a failure, tried again when its code says so.
 * A failed or cancelled upload is aborted, best effort (once, within
 * ten seconds, even after a cancel), so no part is left in the bucket.
 * The query strings are written canonical (sorted, encoded), as SigV4
 * wants them.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"
#include "xmalloc.h"
#include "store_int.h"

#define S3_MP_MIB		(UINT64_C(1) << 20)
#define S3_MP_CHUNK		(1u << 20)	/* read to hash at a time */
#define S3_MP_ABORT_MS		10000

/* One multipart upload in progress. */
struct s3_mp {
	struct s3	*s;
	const char	*key;
	char		 id[S3_UPLOAD_ID_MAX + 1];
	char		*eid;		/* id, URI-encoded */
	struct strbuf	 body;		/* of CompleteMultipartUpload */
};

uint64_t
s3_part_size(uint64_t size, uint64_t part)
{
	uint64_t	need;

	if (size > S3_MAX_OBJECT)
		return (0);
	if (part == 0)
		part = S3_PART_MIN;
	need = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
	if (need > part)
		part = (need + S3_MP_MIB - 1) / S3_MP_MIB * S3_MP_MIB;
	return (part);
}

/* CreateMultipartUpload: the UploadId into mp. */
static int
s3_mp_create(struct s3_mp *mp, char *err, size_t errlen)
{
	struct s3_req	r;
	char		why[256], *url;
	int		rc;

	s3_req_init(&r, mp->s, "POST", mp->key);
	r.verb = "CreateMultipartUpload";
	r.query = "uploads=";
	r.quiet = true;
	r.plain_404 = true;
	rc = s3_run(&r, err, errlen);
	if (rc == 0 && s3_xml_initiate(strbuf_str(&r.mem), r.mem.len, mp->id,
	    sizeof(mp->id), why, sizeof(why)) != 0) {
		url = s3_url(mp->s, mp->key);
		snprintf(err, errlen, "CreateMultipartUpload %s: %s", url,
		    why);
		free(url);
		rc = -1;
	}
	s3_req_free(&r);
	if (rc != 0)
		return (-1);
	mp->eid = store_key_escape(mp->id, false);
	return (0);
}

/*
 * Hash len bytes of fd at off into hex, and into whole; buf holds
 * S3_MP_CHUNK bytes.
 */
static int
s3_mp_hash(struct s3_mp *mp, int fd, uint64_t off, uint64_t len,
    struct sha256 *whole, uint8_t *buf, char hex[SHA256_HEX_LEN],
    char *err, size_t errlen)
{
	struct sha256	h;
	uint8_t		d[SHA256_LEN];
	uint64_t	done = 0;
	size_t		want;
	ssize_t		n;

	sha256_init(&h);
	while (done < len) {
		if (s3_cancelled(mp->s)) {
			snprintf(err, errlen, "cancelled");
			sha256_free(&h);
			return (-1);
		}
		want = len - done < S3_MP_CHUNK ? (size_t)(len - done) :
		    S3_MP_CHUNK;
		n = pread(fd, buf, want, (off_t)(off + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot read the file for %s: %s",
			    mp->key, n == 0 ? "it is shorter than it was" :
			    strerror(errno));
			sha256_free(&h);
			return (-1);
		}
		sha256_update(&h, buf, (size_t)n);
		sha256_update(whole, buf, (size_t)n);
		done += (uint64_t)n;
	}
	sha256_final(&h, d);
	sha256_hex(d, hex);
	return (0);
}

/* Is this ETag one we can send back (printable ASCII)? */
static bool
s3_mp_etag_valid(const char *etag)
{
	if (*etag == '\0')
		return (false);
	for (; *etag != '\0'; etag++)
		if (*etag < 0x20 || *etag > 0x7e)
			return (false);
	return (true);
}

/* UploadPart n of total: len bytes of fd at off; its ETag into body. */
static int
s3_mp_part(struct s3_mp *mp, unsigned n, unsigned total, int fd,
    uint64_t off, uint64_t len, const char *hex, char *err, size_t errlen)
{
	struct s3_req	 r;
	char		*query, verb[64], *url;
	int		 rc;

	xasprintf(&query, "partNumber=%u&uploadId=%s", n, mp->eid);
	snprintf(verb, sizeof(verb), "UploadPart %u/%u", n, total);
	s3_req_init(&r, mp->s, "PUT", mp->key);
	r.verb = verb;
	r.query = query;
	r.plain_404 = true;
	r.in_fd = fd;
	r.in_base = off;
	r.in_size = len;
	r.sha256 = hex;
	mp->s->progress_base = off;
	rc = s3_run(&r, err, errlen);
	if (rc == 0 && !s3_mp_etag_valid(r.etag)) {
		url = s3_url(mp->s, mp->key);
		snprintf(err, errlen, "%s %s: the store's answer has no "
		    "usable ETag", verb, url);
		free(url);
		rc = -1;
	}
	if (rc == 0) {
		strbuf_printf(&mp->body, "<Part><PartNumber>%u</PartNumber>"
		    "<ETag>", n);
		for (const char *p = r.etag; *p != '\0'; p++) {
			if (*p == '&')
				strbuf_add(&mp->body, "&amp;", 5);
			else if (*p == '<')
				strbuf_add(&mp->body, "&lt;", 4);
			else if (*p == '>')
				strbuf_add(&mp->body, "&gt;", 4);
			else
				strbuf_add(&mp->body, p, 1);
		}
		strbuf_printf(&mp->body, "</ETag></Part>");
	}
	s3_req_free(&r);
	free(query);
	return (rc == 0 ? 0 : -1);
}

/* CompleteMultipartUpload with the parts in body. */
static int
s3_mp_complete(struct s3_mp *mp, char *err, size_t errlen)
{
	struct s3_req		 r;
	struct s3_error_doc	 doc;
	struct sha256		 h;
	uint8_t			 d[SHA256_LEN];
	char			*query, hex[SHA256_HEX_LEN], why[256], *url;
	int			 rc;

	strbuf_printf(&mp->body, "</CompleteMultipartUpload>\n");
	sha256_init(&h);
	sha256_update(&h, strbuf_str(&mp->body), mp->body.len);
	sha256_final(&h, d);
	sha256_hex(d, hex);
	xasprintf(&query, "uploadId=%s", mp->eid);
	s3_req_init(&r, mp->s, "POST", mp->key);
	r.verb = "CompleteMultipartUpload";
	r.query = query;
	r.quiet = true;
	r.plain_404 = true;
	r.error_in_2xx = true;
	r.in_data = (const uint8_t *)strbuf_str(&mp->body);
	r.in_size = mp->body.len;
	r.sha256 = hex;
	rc = s3_run(&r, err, errlen);
	if (rc == 0 && s3_xml_complete(strbuf_str(&r.mem), r.mem.len, &doc,
	    why, sizeof(why)) != 0) {
		url = s3_url(mp->s, mp->key);
		if (doc.code[0] != '\0')
			snprintf(err, errlen, "CompleteMultipartUpload %s: "
			    "%ld %s: %s", url, r.status, doc.code,
			    doc.message);
		else
			snprintf(err, errlen, "CompleteMultipartUpload %s: %s",
			    url, why);
		free(url);
		rc = -1;
	}
	s3_req_free(&r);
	free(query);
	return (rc == 0 ? 0 : -1);
}

/* AbortMultipartUpload, once and briefly, even after a cancel. */
static void
s3_mp_abort(struct s3_mp *mp, char *err, size_t errlen)
{
	struct s3_req	 r;
	char		*query, why[512];
	size_t		 len;
	long		 ms;

	xasprintf(&query, "uploadId=%s", mp->eid);
	s3_req_init(&r, mp->s, "DELETE", mp->key);
	r.verb = "AbortMultipartUpload";
	r.query = query;
	r.quiet = true;
	r.plain_404 = true;
	r.uncancelled = true;
	ms = mp->s->timeout_secs * 1000;
	r.limit_ms = ms < S3_MP_ABORT_MS ? ms : S3_MP_ABORT_MS;
	if (s3_run(&r, why, sizeof(why)) != 0) {
		len = strlen(err);
		if (len < errlen)
			snprintf(err + len, errlen - len, "; its parts may "
			    "stay in the bucket: %s", why);
	}
	s3_req_free(&r);
	free(query);
}

int
s3_multipart_put(struct s3 *s, const char *key, int fd, uint64_t size,
    const char *sha256hex, char *err, size_t errlen)
{
	struct s3_mp	 mp;
	struct sha256	 whole;
	uint8_t		*buf = NULL, d[SHA256_LEN];
	char		 hex[SHA256_HEX_LEN], all[SHA256_HEX_LEN], *url;
	uint64_t	 part, off, len;
	unsigned	 n, total;
	int		 rc = -1;

	if ((part = s3_part_size(size, s->part_size)) == 0) {
		url = s3_url(s, key);
		snprintf(err, errlen, "PUT %s: the file is %llu bytes, more "
		    "than an object may hold (5 TiB)", url,
		    (unsigned long long)size);
		free(url);
		return (-1);
	}
	total = (unsigned)((size + part - 1) / part);
	memset(&mp, 0, sizeof(mp));
	mp.s = s;
	mp.key = key;
	if (s3_mp_create(&mp, err, errlen) != 0)
		return (-1);
	strbuf_printf(&mp.body, "<CompleteMultipartUpload xmlns=\"http://"
	    "s3.amazonaws.com/doc/2006-03-01/\">");
	buf = xmalloc(S3_MP_CHUNK);
	sha256_init(&whole);
	for (n = 1, off = 0; n <= total; n++, off += len) {
		len = size - off < part ? size - off : part;
		if (s3_mp_hash(&mp, fd, off, len, &whole, buf, hex, err,
		    errlen) != 0)
			goto out;
		if (n == total) {
			/* All read: the file is still the manifest's. */
			sha256_final(&whole, d);
			sha256_hex(d, all);
			if (strcmp(all, sha256hex) != 0) {
				url = s3_url(s, key);
				snprintf(err, errlen, "UploadPart %u/%u %s: "
				    "the file's SHA-256 is not its manifest's: "
				    "it changed since the checkpoint", n,
				    total, url);
				free(url);
				goto out;
			}
		}
		if (s3_mp_part(&mp, n, total, fd, off, len, hex, err,
		    errlen) != 0)
			goto out;
	}
	rc = s3_mp_complete(&mp, err, errlen);
out:
	s->progress_base = 0;
	if (rc != 0)
		s3_mp_abort(&mp, err, errlen);
	sha256_free(&whole);
	free(buf);
	free(mp.eid);
	strbuf_free(&mp.body);
	return (rc);
}
