/*
 * idmap.c -- a small hash table from 64-bit ids to intrusive nodes: the
 * API server finds a request by id when the engine's tokens arrive, the
 * engine finds a generation by id when an abort arrives.
 */
#include <stddef.h>

#include "fakevllm.h"

static size_t
idmap_bucket(uint64_t id)
{
	return ((size_t)(fv_generate_mix(id) % FV_IDMAP_BUCKETS));
}

void
fv_idmap_init(struct fv_idmap *m)
{
	size_t	i;

	for (i = 0; i < FV_IDMAP_BUCKETS; i++)
		LIST_INIT(&m->b[i]);
	m->n = 0;
}

void
fv_idmap_add(struct fv_idmap *m, struct fv_idnode *n, uint64_t id)
{
	n->id = id;
	LIST_INSERT_HEAD(&m->b[idmap_bucket(id)], n, entry);
	m->n++;
}

struct fv_idnode *
fv_idmap_find(struct fv_idmap *m, uint64_t id)
{
	struct fv_idnode	*n;

	LIST_FOREACH(n, &m->b[idmap_bucket(id)], entry)
		if (n->id == id)
			return (n);
	return (NULL);
}

void
fv_idmap_remove(struct fv_idmap *m, struct fv_idnode *n)
{
	LIST_REMOVE(n, entry);
	m->n--;
}

/* Any one node, or NULL when empty: for draining the whole map. */
struct fv_idnode *
fv_idmap_any(struct fv_idmap *m)
{
	size_t	i;

	if (m->n == 0)
		return (NULL);
	for (i = 0; i < FV_IDMAP_BUCKETS; i++)
		if (!LIST_EMPTY(&m->b[i]))
			return (LIST_FIRST(&m->b[i]));
	return (NULL);
}
