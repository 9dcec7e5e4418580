/*
 * cfgtree_int.h -- what the YAML and JSON front ends of cfgtree share: a
 * builder that attaches nodes to the open container, enforcing the caps
 * on nesting and node count, and records the first error.
 */
#ifndef LLMUX_CFGTREE_INT_H
#define LLMUX_CFGTREE_INT_H

#include "cfgtree.h"
#include "config.h"

struct cfgtree_builder {
	struct cfgnode		*root;
	struct cfgnode		*stack[CONFIG_MAX_DEPTH + 1];
	size_t			 depth;
	size_t			 nodes;
	struct cfgtree_error	*err;
	bool			 failed;
};

void		 cfgtree_builder_init(struct cfgtree_builder *,
		    struct cfgtree_error *);
/* A new node, counted against CONFIG_MAX_NODES; NULL when past it. */
struct cfgnode	*cfgtree_builder_node(struct cfgtree_builder *,
		    enum cfgnode_kind, unsigned, unsigned);
/* Set a scalar's text, refusing one longer than CONFIG_MAX_SCALAR. */
int		 cfgtree_builder_text(struct cfgtree_builder *,
		    struct cfgnode *, const char *, size_t);
/* Attach a node under the open container (or as the root); open it. */
int		 cfgtree_builder_add(struct cfgtree_builder *,
		    struct cfgnode *);
/* Close the innermost open container. */
int		 cfgtree_builder_close(struct cfgtree_builder *);
/* Record the first error; returns -1. */
int		 cfgtree_builder_fail(struct cfgtree_builder *, unsigned,
		    unsigned, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
/* The finished tree, or NULL (and everything freed) after an error. */
struct cfgnode	*cfgtree_builder_finish(struct cfgtree_builder *);


struct cfgnode	*cfgtree_parse_yaml(const char *, size_t,
		    struct cfgtree_error *);
struct cfgnode	*cfgtree_parse_json(const char *, size_t,
		    struct cfgtree_error *);

#endif
