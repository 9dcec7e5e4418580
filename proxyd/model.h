/*
 * model.h -- find the top-level "model" of a JSON request body while the
 * body arrives: no tree, no copy of the body, work linear in its bytes,
 * and scanning stops as soon as the model is known.
 */
#ifndef LLMUX_PROXY_MODEL_H
#define LLMUX_PROXY_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

struct evbuffer;

#define MODEL_NAME_MAX	PROTO_MAX_NAME
#define MODEL_MAX_DEPTH	1024	/* objects and arrays open at once */

enum model_result {
	MODEL_MORE,		/* give me more of the body */
	MODEL_FOUND,		/* model_parser_name() is the model */
	MODEL_ABSENT,		/* a JSON object without a top-level model */
	MODEL_INVALID,		/* not JSON, not an object, bad model value */
};

struct model_parser;

/* Where the model's value lies in the body: a JSON string, or form data. */
struct model_span {
	size_t		 at;		/* its first byte (a JSON string's '"') */
	size_t		 len;
	bool		 form;		/* the raw value of a form field */
};

/* A scanner of JSON bodies. */
struct model_parser	*model_parser_new(void);
/*
 * A scanner for a body of this Content-Type (NULL: none given): the model
 * field of multipart/form-data, else JSON. NULL when it is multipart
 * without a valid boundary.
 */
struct model_parser	*model_parser_new_type(const char *);
void			 model_parser_free(struct model_parser *);
/*
 * Feed the next bytes of the body. Returns MODEL_MORE until the answer is
 * known; after that every call returns the same answer and reads nothing.
 */
enum model_result	 model_parser_feed(struct model_parser *,
			    const void *, size_t);
/* The body has ended: the final answer (never MODEL_MORE). */
enum model_result	 model_parser_finish(struct model_parser *);
/* The model (MODEL_FOUND), or NULL. */
const char		*model_parser_name(const struct model_parser *);
/* Why the body is MODEL_INVALID or MODEL_ABSENT, for the 400 message. */
const char		*model_parser_error(const struct model_parser *);
/* Bytes fed while the answer was not known (scanning stops with it). */
size_t			 model_parser_consumed(const struct model_parser *);
/* Where the model found lies in the body fed (false unless MODEL_FOUND). */
bool			 model_parser_span(const struct model_parser *,
			    struct model_span *);
/*
 * Put name where the span says in body (a JSON string, escaped, or the
 * raw value of a form field); every other byte stays, moved rather than
 * copied. 0, or -1 (body unchanged) when name is not a valid model name
 * or the span is not in the body.
 */
int			 model_rewrite(struct evbuffer *,
			    const struct model_span *, const char *name);

/* Is this a name we accept (1..MODEL_NAME_MAX bytes, no control bytes)? */
int			 model_name_valid(const char *, size_t);

#endif
