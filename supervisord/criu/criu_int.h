/*
 * criu_int.h -- what the files of the CRIU module (criu.c: dump and
 * restore; criu_util.c: programs, versions, log reasons) share.
 */
#ifndef LLMUX_CRIU_INT_H
#define LLMUX_CRIU_INT_H

#include "supervisord/criu/criu.h"

/* Is prog runnable, as a path or through PATH? */
bool		 criu_find(const char *);
/* checkpoint.criu_path, or "criu". */
const char	*criu_program(const struct config *);
/* CRIU leaves /dev/shm/link_remap.* behind when a dump fails. */
void		 criu_remove_link_remap(void);
/* The last error line of a criu log below dirfd (else its last line). */
void		 criu_log_reason(int dirfd, const char *name, char *buf,
		    size_t len);

#endif
