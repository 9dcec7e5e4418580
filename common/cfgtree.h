/*
 * cfgtree.h -- a small document tree (mappings, sequences, scalars, each
 * with its line and column) built from YAML by libyaml's event parser or
 * from JSON by yajl's callback parser, so that one binder serves both.
 *
 * The parsers are built for hostile input: the buffer is checked for NUL
 * bytes and invalid UTF-8 first, nesting, scalar length and node count are
 * capped (CONFIG_MAX_* in config.h), and YAML anchors and aliases are
 * refused, so an alias bomb cannot expand. A tree holds at most
 * CONFIG_MAX_NODES nodes and the text of its scalars, so its size is
 * bounded by a small multiple of the input's.
 */
#ifndef LLMUX_CFGTREE_H
#define LLMUX_CFGTREE_H

#include <stdbool.h>
#include <stddef.h>

enum cfgnode_kind {
	CFGNODE_MAP,
	CFGNODE_SEQ,
	CFGNODE_SCALAR,
};

/* What a scalar resolved to (YAML 1.2 core schema, or the JSON token). */
enum cfgnode_tag {
	CFGTAG_STR,
	CFGTAG_INT,
	CFGTAG_FLOAT,
	CFGTAG_BOOL,
	CFGTAG_NULL,
};

struct cfgnode {
	enum cfgnode_kind	  kind;
	enum cfgnode_tag	  tag;		/* scalars */
	bool			  quoted;	/* scalars: written quoted */
	unsigned		  line;		/* 1-based */
	unsigned		  col;		/* 1-based, in characters */
	char			 *str;		/* scalars: text, NUL-free */
	size_t			  len;
	/* A sequence's items; a mapping's keys and values, interleaved. */
	struct cfgnode		**items;
	size_t			  n;		/* items, or pairs of a map */
	size_t			  nitems;	/* entries in items */
	size_t			  cap;
};

enum cfgtree_syntax {
	CFGTREE_YAML,
	CFGTREE_JSON,
};

/* Why a parse failed, and where (line 0: the whole file). */
struct cfgtree_error {
	unsigned	line, col;
	char		msg[256];
};

/*
 * Parse buf as JSON when its first non-blank byte is '{', else as YAML.
 * Returns the root node, or NULL with err filled in.
 */
struct cfgnode	*cfgtree_parse(const char *buf, size_t len,
		    enum cfgtree_syntax *syntax, struct cfgtree_error *err);
void		 cfgtree_free(struct cfgnode *);

/* The key and value of a mapping's i-th pair. */
struct cfgnode	*cfgtree_key(const struct cfgnode *, size_t);
struct cfgnode	*cfgtree_value(const struct cfgnode *, size_t);
/* "a mapping", "a sequence", "a string", "an integer", ... */
const char	*cfgtree_describe(const struct cfgnode *);

/* Resolve a plain YAML scalar's tag by the YAML 1.2 core schema. */
void		 cfgtree_resolve_plain(struct cfgnode *);
/* Is this text an integer: [-+]?[0-9]+ ? */
bool		 cfgtree_is_integer(const char *, size_t);

/*
 * For each key of a mapping that repeats an earlier key, call fn with the
 * pair index of the first and of the repeat. O(n log n).
 */
void		 cfgtree_map_dups(const struct cfgnode *,
		    void (*)(const struct cfgnode *, size_t, size_t, void *),
		    void *);

#endif
