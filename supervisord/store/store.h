/*
 * store.h -- supervisord/store/, the map of what keeps a checkpoint's
 * images: their checksums (sha256.c), the manifest written beside them
 * (manifest.c), and their copies in an S3-compatible object store
 * (store.c, over store_xfer.c, store_key.c, s3*.c: store_int.h). criu/ writes and
 * checks manifests; the engine uploads and downloads.
 */
#ifndef LLMUX_STORE_H
#define LLMUX_STORE_H

#include "supervisord/core.h"

/* ---- sha256.c: SHA-256 for the checksums of checkpoint images ---------- */

#define SHA256_LEN	32
#define SHA256_HEX_LEN	65	/* 64 hex digits and a NUL */

/*
 * A hash under way: init holds a libcrypto context, final lets it go.
 * One that is abandoned before final (an error on the way) is freed with
 * sha256_free, which does nothing after final or on a zeroed struct.
 */
struct sha256 {
	struct evp_md_ctx_st	*ctx;	/* libcrypto's EVP_MD_CTX */
};

void	sha256_init(struct sha256 *);
void	sha256_update(struct sha256 *, const void *, size_t);
void	sha256_final(struct sha256 *, uint8_t out[SHA256_LEN]);
void	sha256_free(struct sha256 *);
void	sha256_hex(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN]);

/* ---- manifest.c: the manifest beside a checkpoint's images ------------- */

/*
 * DIR/llmux-manifest says which model, how it was evicted, the machine it
 * was made on (driver, GPU names and UUIDs) and the size and SHA-256 of
 * every image file, so that an image from another machine or a damaged
 * one is refused with a reason instead of being restored.
 */

#define MANIFEST_FILE		"llmux-manifest"
#define MANIFEST_VERSION	1
#define MANIFEST_MAX_BYTES	(4u << 20)
#define MANIFEST_MAX_FILES	100000
#define MANIFEST_MAX_GPUS	64

struct manifest_file {
	char		*name;		/* one path component */
	uint64_t	 size;
	char		 sha256[SHA256_HEX_LEN];
};

struct manifest_gpu {
	unsigned	 index;
	char		*name;
	char		*uuid;
};

struct manifest {
	char			*model;
	char			*model_path;
	unsigned		 port;
	unsigned		 tp;
	bool			 has_eviction;
	struct eviction		 eviction;
	char			*driver;	/* NVML's, "none" without */
	int			 cuda;		/* driver API version, 0 unknown */
	struct manifest_gpu	*gpus;
	size_t			 ngpus;
	int64_t			 created;	/* unix seconds */
	struct manifest_file	*files;
	size_t			 nfiles;
};

int	manifest_encode(const struct manifest *, char **, size_t *);
int	manifest_decode(const char *, size_t, struct manifest *, char *err,
	    size_t errlen);
void	manifest_free(struct manifest *);
/*
 * The directory is a descriptor (base/fs.c's), dir its path for
 * messages; every file is opened below it with O_NOFOLLOW.
 * List and hash every image file (not the manifest nor logs).
 */
int	manifest_scan(int dirfd, const char *dir, struct manifest *,
	    char *err, size_t errlen);
/* Do its files match the manifest's list? -1 with the first difference. */
int	manifest_verify(int dirfd, const char *dir, const struct manifest *,
	    char *err, size_t errlen);
/*
 * The same for names and sizes only, nothing read: for files whose
 * checksums were checked as they were written (store_download's).
 */
int	manifest_verify_sizes(int dirfd, const char *dir,
	    const struct manifest *,
	    char *err, size_t errlen);
/* Was it made on a machine like this one? -1 with the difference. */
int	manifest_match(const struct manifest *image,
	    const struct manifest *here, char *err, size_t errlen);
/* Write DIR/llmux-manifest atomically; read it back. */
int	manifest_write(int dirfd, const char *dir, const struct manifest *,
	    char *err, size_t errlen);
int	manifest_read(int dirfd, struct manifest *, char *err, size_t errlen);
/* Is this file name one the checksums cover? */
bool	manifest_covers(const char *name);

/* ---- store.c: checkpoint images in an S3-compatible object store ------- */

struct store_result {
	bool		 ok;
	/*
	 * download: the images were here already. Not skipped, ok: every
	 * file's size and SHA-256 were checked against the manifest as the
	 * file was written, so a restore need not read them again.
	 */
	bool		 skipped;
	const char	*reason;	/* !ok: why */
	const char	*url;		/* s3://BUCKET/MODEL/ID/ */
	uint64_t	 bytes;
	bool		 has_eviction;	/* download: the manifest's */
	struct eviction	 eviction;
};
typedef void	(*store_cb)(const struct store_result *, void *);
typedef void	(*store_progress_cb)(const char *detail, void *);

void	 store_init(struct supervisor *);
/* Cancel every transfer (at exit, before worker_shutdown); then free. */
void	 store_shutdown(struct supervisor *);
void	 store_free(struct supervisor *);
bool	 store_configured(const struct config *);
/* "s3://BUCKET/MODEL/", for messages. */
char	*store_model_url(const struct config *, const char *model);
/* --check-config: -1 with a warning when this libcurl cannot sign. */
int	 store_check_config(const struct config *, char *why, size_t);
/*
 * Copy the images in dir (a checkpoint with its manifest) to the store,
 * or fetch the model's latest checkpoint into dir unless dir exists.
 * cb runs once, from the loop, also for a cancelled job (at exit: ok
 * false, "cancelled").
 */
struct store_job *store_upload(struct model *, const char *dir, store_cb,
	    store_progress_cb, void *);
struct store_job *store_download(struct model *, const char *dir,
	    store_cb, store_progress_cb, void *);
/* Make the transfer stop soon (it still calls back). */
void	 store_cancel(struct store_job *);

#endif
