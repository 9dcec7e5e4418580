/*
 * store_int.h -- what the files of the object-store module share:
 * store_key.c (where a model's images live in the bucket, and SigV4's
 * URI encoding), s3_xml.c (the store's XML replies, read strictly),
 * s3.c (a blocking client for one bucket, on libcurl, for worker
 * threads), s3_multipart.c (a large file uploaded in parts), store.c
 * (uploads and downloads of a model's images, as jobs) and store_xfer.c
 * (what a job does on its worker thread).
 *
 * The layout of a bucket (docs/gpu.md, "Object store"):
 *
 *	MODEL/ID/FILE		every image file of one checkpoint
 *	MODEL/ID/llmux-manifest	its manifest, uploaded after the files
 *	MODEL/latest		"ID\n": the checkpoint to restore
 *
 * MODEL is the model's name with ':', '/', '@' and a leading '.' written
 * as ~XX (so it is one path segment of unreserved characters); ID is
 * the manifest's creation time and the SHA-256 of the manifest itself,
 * YYYYMMDDTHHMMSSZ-HEX, so a downloaded manifest is checked against its
 * own name and IDs sort by age.
 */
#ifndef LLMUX_STORE_INT_H
#define LLMUX_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "config.h"
#include "strbuf.h"
#include "supervisord/base/base.h"
#include "supervisord/store/store.h"

/* ---- store_key.c ------------------------------------------------------- */

#define STORE_LATEST		"latest"
#define STORE_TIME_LEN		16	/* 20261127T022057Z */
#define STORE_ID_LEN		(STORE_TIME_LEN + 1 + 64)
#define STORE_LATEST_MAX	256	/* the latest object, bytes */

/* The model's segment of every key: "org/m:1" -> "org~2Fm~3A1". */
char	*store_key_model(const char *model);
/* The ID of a checkpoint made at created with this manifest hash. */
void	 store_key_id(int64_t created, const char *sha256hex,
	    char id[STORE_ID_LEN + 1]);
/* Is this an ID? */
bool	 store_key_id_valid(const char *, size_t);
/* Does the checkpoint id replace old (not newer, not the same)? */
bool	 store_key_superseded(const char *old, const char *id);
/* The ID a latest object holds ("ID" and one optional newline). */
int	 store_key_parse_latest(const char *, size_t,
	    char id[STORE_ID_LEN + 1]);
/*
 * A key listed under "MODEL/": the ID it belongs to (0), or -1 when it
 * is not one of a checkpoint's objects (latest, or not made by llmux).
 */
int	 store_key_listed_id(const char *key, const char *model,
	    char id[STORE_ID_LEN + 1]);
/* SigV4's UriEncode: all but A-Za-z0-9-._~ as %XX (and '/' if kept). */
char	*store_key_escape(const char *, bool keep_slash);

/* ---- s3_xml.c ---------------------------------------------------------- */

#define S3_XML_MAX_BYTES	(4u << 20)	/* a reply we read */
#define S3_XML_MAX_DEPTH	16
#define S3_XML_MAX_TEXT		4096		/* an element's text */
#define S3_XML_MAX_KEYS		10000		/* in one listing */

/* An S3 error reply: <Error><Code>..</Code><Message>..</Message>. */
struct s3_error_doc {
	char	code[64];
	char	message[512];
};

/* One page of ListObjectsV2. */
struct s3_list {
	char	**keys;
	size_t	  n;
	bool	  truncated;
	char	 *next;		/* NextContinuationToken, or NULL */
};

/* 0 when it is an Error document with a Code; text made printable. */
int	s3_xml_error(const char *, size_t, struct s3_error_doc *);
/* A ListBucketResult; -1 with why when it is not a well-formed one. */
int	s3_xml_list(const char *, size_t, struct s3_list *, char *err,
	    size_t errlen);
void	s3_list_free(struct s3_list *);

#define S3_UPLOAD_ID_MAX	1024		/* an UploadId we keep */

/*
 * An InitiateMultipartUploadResult: its UploadId (printable ASCII, no
 * space, at most S3_UPLOAD_ID_MAX bytes and shorter than idlen) into
 * id; -1 with why when there is not exactly one.
 */
int	s3_xml_initiate(const char *, size_t, char *id, size_t idlen,
	    char *err, size_t errlen);
/*
 * The reply to CompleteMultipartUpload, which may be an error even
 * after a 200: 0 for a CompleteMultipartUploadResult, 1 for an Error
 * document (into e), -1 with why for anything else.
 */
int	s3_xml_complete(const char *, size_t, struct s3_error_doc *,
	    char *err, size_t errlen);

/* ---- s3.c -------------------------------------------------------------- */

/* Returned besides 0 and -1: the object (or bucket) is not there. */
#define S3_NOT_FOUND	(-2)

#define S3_ERROR_BODY_MAX	(64u << 10)
#define S3_ETAG_MAX		128

/* SHA-256 of nothing: the payload hash of GET, HEAD and DELETE. */
#define S3_EMPTY_SHA256	\
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Bytes moved so far by the upload or download (for progress). */
typedef void	(*s3_progress_fn)(uint64_t bytes, void *);

struct s3 {
	CURL		*curl;
	char		*endpoint;	/* no trailing '/' */
	char		*bucket;
	char		*access_key;
	char		*secret_key;
	char		*sigv4;		/* "aws:amz:REGION:s3" */
	long		 timeout_secs;
	unsigned	 retries;
	uint64_t	 part_size;	/* bytes, of a multipart upload */
	uint64_t	 multipart_threshold; /* a larger file goes in parts */
	atomic_bool	*cancel;
	s3_progress_fn	 progress;
	void		*progress_arg;
	uint64_t	 progress_base;	/* the parts sent before this one */
	char		 errbuf[CURL_ERROR_SIZE];
};

/*
 * One request: what to send, where the answer goes, what happened
 * (s3.c runs it; s3_multipart.c builds its own).
 */
struct s3_req {
	struct s3	*s;
	const char	*method;	/* PUT, GET, DELETE or POST */
	const char	*verb;		/* for messages; NULL: the method */
	const char	*key;		/* NULL: the bucket itself */
	const char	*query;		/* canonical, or NULL */
	const char	*sha256;	/* of the body */

	/* The body sent: from fd (pread from in_base) or from memory. */
	int		 in_fd;
	const uint8_t	*in_data;
	uint64_t	 in_base;
	uint64_t	 in_size;
	uint64_t	 in_off;

	/* A 2xx body: into fd (hashed) or memory, at most out_max bytes. */
	int		 out_fd;
	uint64_t	 out_max;
	uint64_t	 out_len;
	struct sha256	 out_hash;
	struct strbuf	 mem;
	bool		 too_large;

	/* Anything else: the error document. */
	char		*ebody;
	size_t		 elen;

	/* The ETag header of the last answer ("" when none, or too long). */
	char		 etag[S3_ETAG_MAX + 1];

	bool		 quiet;		/* no progress of its own */
	bool		 error_in_2xx;	/* a 2xx may carry an Error document */
	bool		 plain_404;	/* a 404 is an error like the rest */
	bool		 uncancelled;	/* runs once, even after a cancel */
	long		 limit_ms;	/* uncancelled: the whole request */

	long		 status;
	int		 local_errno;	/* our read or write failed */
	unsigned	 attempts;
};

/*
 * A client for the configured bucket, for one thread. Requests are
 * retried with backoff on connection errors, timeouts and 5xx; cancel,
 * when set by another thread, ends a request within a second.
 */
struct s3	*s3_open(const struct object_store_config *,
		    atomic_bool *cancel);
void		 s3_close(struct s3 *);
void		 s3_set_progress(struct s3 *, s3_progress_fn, void *);
/* "s3://BUCKET/KEY", for messages. */
char		*s3_url(const struct s3 *, const char *key);
/*
 * PUT size bytes of fd (whose SHA-256 is sha256hex; the store checks):
 * one request, or a multipart upload when size is over the part size.
 */
int		 s3_put_file(struct s3 *, const char *key, int fd,
		    uint64_t size, const char *sha256hex, char *err,
		    size_t errlen);
int		 s3_put_data(struct s3 *, const char *key, const void *,
		    size_t, char *err, size_t errlen);
/* GET into fd (at most max bytes); its SHA-256 and size. */
int		 s3_get_file(struct s3 *, const char *key, int fd,
		    uint64_t max, char sha256hex[65], uint64_t *size,
		    char *err, size_t errlen);
/* GET into memory (at most max bytes, NUL-terminated). */
int		 s3_get_data(struct s3 *, const char *key, size_t max,
		    char **out, size_t *len, char *err, size_t errlen);
int		 s3_delete(struct s3 *, const char *key, char *err,
		    size_t errlen);
/* One page of the keys under prefix (token: from the last page). */
int		 s3_list(struct s3 *, const char *prefix, const char *token,
		    struct s3_list *, char *err, size_t errlen);
/* The retry delay before attempt n + 1 (n >= 1), ms. */
int64_t		 s3_backoff_ms(unsigned n);
/* Is this HTTP status, or this S3 error code, worth another try? */
bool		 s3_retry_status(long status, const char *code);
/* For s3_multipart.c: a request to build, run with retries, free. */
void		 s3_req_init(struct s3_req *, struct s3 *,
		    const char *method, const char *key);
int		 s3_run(struct s3_req *, char *err, size_t errlen);
void		 s3_req_free(struct s3_req *);
bool		 s3_cancelled(const struct s3 *);

/* ---- s3_multipart.c ---------------------------------------------------- */

#define S3_PART_MIN	(UINT64_C(5) << 20)	/* S3's smallest part */
#define S3_PART_MAX	(UINT64_C(5) << 30)	/* and largest */
#define S3_MAX_PARTS	10000
#define S3_MAX_OBJECT	(UINT64_C(5) << 40)	/* S3's largest object */

/*
 * The part size for a file of size bytes: part, grown (to a whole MiB)
 * when the file would need more than S3_MAX_PARTS; 0 when the file is
 * larger than S3_MAX_OBJECT.
 */
uint64_t	 s3_part_size(uint64_t size, uint64_t part);
/*
 * Upload size bytes of fd with CreateMultipartUpload, UploadPart (each
 * part hashed first, the file's whole SHA-256 checked against
 * sha256hex before the end) and CompleteMultipartUpload; on a failure
 * or a cancel, AbortMultipartUpload, best effort.
 */
int		 s3_multipart_put(struct s3 *, const char *key, int fd,
		    uint64_t size, const char *sha256hex, char *err,
		    size_t errlen);

/* ---- store.c, store_xfer.c: one transfer ------------------------------- */

enum store_kind { STORE_UPLOAD, STORE_DOWNLOAD };

/* A transfer: started and followed by store.c, run by store_xfer.c. */
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

/* The work of a job on its worker thread (a worker_fn). */
void	store_xfer_upload(void *job);
void	store_xfer_download(void *job);

#endif
