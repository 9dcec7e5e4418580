/*
 * mpjson.h -- turn a reply body (one msgpack map) into JSON, for the
 * control HTTP API and `llmuxctl --json`, and read values out of it
 * without building a tree.
 */
#ifndef LLMUX_MPJSON_H
#define LLMUX_MPJSON_H

#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

/* Write the msgpack value as JSON into g. -1 on malformed input. */
int	mpjson_write(yajl_gen g, const uint8_t *, size_t);
/* The same into a new NUL-terminated string (free()), or NULL. */
char	*mpjson_string(const uint8_t *, size_t, int pretty);

/*
 * Find the value at a dotted path of map keys ("models.a.in_flight") and
 * return a pointer to its first byte and the bytes left, or NULL.
 */
const uint8_t	*mpjson_find(const uint8_t *, size_t, const char *path,
		    size_t *left);

#endif
