/*
 * store_int.h -- what the files of the object-store module share:
 * store_key.c (where a model's images live in the bucket, and SigV4's
 * URI encoding), s3_xml.c (the store's XML replies, read strictly),
 * s3.c (a blocking client for one bucket, on libcurl, for worker
 * threads) and store.c (uploads and downloads of a model's images).
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

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

/* ---- s3.c -------------------------------------------------------------- */

struct s3;

/* Returned besides 0 and -1: the object (or bucket) is not there. */
#define S3_NOT_FOUND	(-2)

/* Bytes moved so far by the request in flight (for progress). */
typedef void	(*s3_progress_fn)(uint64_t bytes, void *);

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
/* PUT size bytes of fd (whose SHA-256 is sha256hex; the store checks). */
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

#endif
