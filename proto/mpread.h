/*
 * mpread.h -- a strict, bounded msgpack reader over a byte buffer.
 *
 * msgpack-c's own unpacker allocates memory for an array or map from the
 * count in its header before it has seen the elements, so a 5-byte input
 * can ask it for gigabytes. This reader never allocates: it walks the bytes
 * in place, checks every count against the bytes that remain (each element
 * needs at least one byte) and every length against the end of the buffer,
 * and limits nesting. Strings are returned as pointers into the buffer.
 */
#ifndef LLMUX_MPREAD_H
#define LLMUX_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mpr_kind {
	MPR_NIL, MPR_BOOL, MPR_UINT, MPR_INT, MPR_FLOAT, MPR_STR, MPR_BIN,
	MPR_ARRAY, MPR_MAP, MPR_EXT
};

struct mpr_item {
	enum mpr_kind	 kind;
	bool		 b;
	uint64_t	 u;		/* MPR_UINT */
	int64_t		 i;		/* MPR_INT (negative) */
	double		 f;		/* MPR_FLOAT */
	const uint8_t	*s;		/* MPR_STR, MPR_BIN, MPR_EXT data */
	uint32_t	 len;		/* their length */
	uint32_t	 n;		/* MPR_ARRAY elements, MPR_MAP pairs */
};

struct mpr {
	const uint8_t	*p;
	const uint8_t	*end;
};

void		 mpr_init(struct mpr *, const uint8_t *, size_t);
size_t		 mpr_left(const struct mpr *);
/*
 * Read one item's header (and a scalar's value). For an array or map only
 * the header is consumed; its elements follow. Returns 0, or -1 with a
 * reason in err on truncation, an impossible count or a reserved byte.
 */
int		 mpr_next(struct mpr *, struct mpr_item *, const char **err);
/* Skip what follows an item header: a container's elements, recursively. */
int		 mpr_skip(struct mpr *, const struct mpr_item *, int depth_left,
		    const char **err);
/* Check that the buffer holds exactly one well-formed value. */
int		 mpr_check_value(const uint8_t *, size_t, int max_depth,
		    const char **err);
const char	*mpr_kind_name(enum mpr_kind);

#endif
