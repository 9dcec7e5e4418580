/*
 * manifest.h -- the manifest llmux writes beside a checkpoint's CRIU
 * images (DIR/llmux-manifest): which model, how it was evicted, the
 * machine it was made on (driver, GPU names and UUIDs) and the size and
 * SHA-256 of every image file, so that an image from another machine or a
 * damaged one is refused with a reason instead of being restored.
 */
#ifndef LLMUX_MANIFEST_H
#define LLMUX_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eviction.h"
#include "sha256.h"

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
/* List and hash every image file of dir (not the manifest nor logs). */
int	manifest_scan(const char *dir, struct manifest *, char *err,
	    size_t errlen);
/* Do dir's files match the manifest's list? -1 with the first difference. */
int	manifest_verify(const char *dir, const struct manifest *, char *err,
	    size_t errlen);
/* Was it made on a machine like this one? -1 with the difference. */
int	manifest_match(const struct manifest *image,
	    const struct manifest *here, char *err, size_t errlen);
/* Write DIR/llmux-manifest atomically; read it back. */
int	manifest_write(const char *dir, const struct manifest *, char *err,
	    size_t errlen);
int	manifest_read(const char *dir, struct manifest *, char *err,
	    size_t errlen);
/* Is this file name one the checksums cover? */
bool	manifest_covers(const char *name);

#endif
