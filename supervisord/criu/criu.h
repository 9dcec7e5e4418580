/*
 * criu.h -- supervisord/criu/, the map of checkpoints to disk with CRIU:
 * dumping a model's process tree to images and restoring it (criu.c),
 * and what decides whether criu can run here (criu_util.c, with the
 * module's own helpers in criu_int.h). The engine calls it for the
 * CRIU_DUMP and CRIU_RESTORE steps.
 */
#ifndef LLMUX_CRIU_H
#define LLMUX_CRIU_H

#include "supervisord/core.h"

/* ---- criu.c: checkpoint to disk ---------------------------------------- */

typedef void	(*criu_cb)(int ok, const char *reason, pid_t restored,
		    void *);
typedef void	(*criu_progress_cb)(const char *detail, void *);

bool	criu_available(const struct config *, char *why, size_t);
/* --check-config: -1 with a warning when criu is missing or too old. */
int	criu_check_config(const struct config *, char *why, size_t);
/* Dump the tree of the model's process to images_dir/NAME/images. */
int	criu_dump(struct model *, const struct eviction *, criu_cb,
	    criu_progress_cb, void *);
/*
 * Check the images' manifest and checksums, then restore them; checked:
 * the checksums were checked as the files were written (a download just
 * now), so only their names and sizes are.
 */
int	criu_restore(struct model *, const char *dir, bool checked, criu_cb,
	    criu_progress_cb, void *);
/* "Version: 4.1" (criu --version) to 4 and 1; -1 if none. */
int	criu_parse_version(const char *, int *major, int *minor);
/*
 * The eviction a checkpoint directory's manifest records; -1 if none, or
 * if the directory is not one to trust (the restore says why).
 */
int	criu_images_eviction(const struct config *, const char *dir,
	    struct eviction *);

#endif
