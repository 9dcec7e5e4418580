/*
 * formdata.h -- find the "model" field of a multipart/form-data body
 * (RFC 7578: /v1/audio/transcriptions and translations send their model
 * so) while the body arrives: no copy of the body, work linear in its
 * bytes, and scanning stops once the field's value is read.
 *
 * Pure: no I/O. proxyd/model.c uses it for bodies of that type, so that
 * callers see one model scanner.
 */
#ifndef LLMUX_PROXY_FORMDATA_H
#define LLMUX_PROXY_FORMDATA_H

#include <stdbool.h>
#include <stddef.h>

#define FORMDATA_MAX_BOUNDARY	70	/* RFC 2046 */
#define FORMDATA_MAX_LINE	2048	/* one header line of a part */
#define FORMDATA_MAX_VALUE	128	/* the longest model kept */

enum formdata_result {
	FORM_MORE,		/* give me more of the body */
	FORM_FOUND,		/* formdata_value() is the field's value */
	FORM_ABSENT,		/* a whole form without a "model" field */
	FORM_INVALID,		/* not a multipart body, or a bad field */
};

struct formdata;

/*
 * Is content_type multipart/form-data? 1 with its boundary (pointing into
 * content_type when unquoted, else into out), 0 when it is another type,
 * -1 when it is multipart/form-data without a valid boundary.
 */
int			 formdata_boundary(const char *content_type,
			    char out[FORMDATA_MAX_BOUNDARY + 1],
			    const char **boundary, size_t *len);
struct formdata		*formdata_new(const char *boundary, size_t len);
void			 formdata_free(struct formdata *);
/* Feed the next bytes; FORM_MORE until the answer is known, then it. */
enum formdata_result	 formdata_feed(struct formdata *, const void *, size_t);
/* The body has ended: the final answer (never FORM_MORE). */
enum formdata_result	 formdata_finish(struct formdata *);
/* The value (FORM_FOUND), not NUL-terminated, or NULL. */
const char		*formdata_value(const struct formdata *, size_t *len);
/* Why FORM_INVALID or FORM_ABSENT. */
const char		*formdata_error(const struct formdata *);
/* Where the value lies in the body (FORM_FOUND): its offset and length. */
bool			 formdata_span(const struct formdata *, size_t *at,
			    size_t *len);

#endif
