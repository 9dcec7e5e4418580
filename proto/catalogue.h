/*
 * catalogue.h -- the description of every message, shared by the codec:
 * one table of fields per message type (key, kind, limits, where the value
 * lives in the C struct). Private to proto/.
 */
#ifndef LLMUX_CATALOGUE_H
#define LLMUX_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum field_kind {
	FK_STR,		/* char *; NULL when absent */
	FK_U16,
	FK_U32,
	FK_U64,
	FK_BOOL,
	FK_ENUM,	/* an enum stored as int, < max */
	FK_EVICTION,	/* struct eviction as "weights+process" */
	FK_STRLIST,	/* struct proto_strlist */
	FK_BIN,		/* uint8_t * at off, size_t length at off2 */
	FK_BODY,	/* a msgpack map kept as bytes, like FK_BIN */
	FK_ARRAY,	/* array of structs at off, size_t count at off2 */
	FK_EVENT_ID,	/* struct proto_event_id; presence flag at off2 */
};

#define FF_REQUIRED	0x1
#define NO_OFF		((size_t)-1)

struct fieldset;

struct field {
	const char		*key;
	enum field_kind		 kind;
	size_t			 off;
	uint64_t		 max;	/* bytes, value or count */
	int			 flags;
	size_t			 off2;	/* length, count or presence flag */
	const struct fieldset	*sub;	/* FK_ARRAY elements */
	size_t			 elem_size;
	size_t			 item_max; /* FK_STRLIST: bytes of each */
};

struct fieldset {
	const struct field	*f;
	size_t			 n;
};

#define ID_REQUIRED	0x1

struct msgdef {
	enum proto_type		 type;
	const char		*name;
	struct fieldset		 fields;
	int			 flags;
	int			 call_fields;	/* PROTO_F_*; -1 not a call */
	const char		*call_name;	/* control name */
};

/* The description of a message type, or NULL for an unknown type. */
const struct msgdef	*proto_msgdef(uint64_t);

/* A field of the struct at base. */
#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define CAT(base, off, type) ((const type *)(const void *)((const char *)(base) + (off)))

#endif
