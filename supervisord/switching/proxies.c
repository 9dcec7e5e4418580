/*
 * proxies.c -- what each proxy connection has told the supervisor: its
 * demand for each model (queued, in flight, how long the oldest has
 * waited) and the drains it has yet to answer. A model's demand is the
 * sum over the proxies connected (the oldest wait: the longest); a
 * proxy that leaves takes its counts and the drain answers it owed with
 * it at once (switching_proxy_gone), so a switch never waits for a
 * connection that is gone and status never shows its requests.
 *
 * The books hang on the peer (struct client, server/), keyed by model
 * name, so a model freed by a reload leaves nothing dangling: a name no
 * model has any more is dropped when the proxy's books next grow.
 */
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"
#include "supervisord/server/server.h"
#include "switching_int.h"

struct proxy_book {
	char		*model;
	uint32_t	 queued;
	uint32_t	 in_flight;
	uint32_t	 oldest_ms;
	uint32_t	 drain_owed;	/* the drain_id to answer; 0: none */
};

struct proxy_books {
	struct proxy_book	*v;
	size_t			 n;
};

static void
proxies_books_free(struct proxy_books *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->v[i].model);
	free(b->v);
	free(b);
}

/* Does any model, removed ones too, have this name? */
static bool
proxies_model_exists(struct supervisor *sup, const char *name)
{
	struct model	*m;

	TAILQ_FOREACH(m, &sup->models, entry)
		if (strcmp(m->name, name) == 0)
			return (true);
	return (false);
}

static struct proxy_book *
proxies_book(struct client *c, const char *model, bool create)
{
	struct proxy_books	*b = c->books;
	size_t			 i, o;

	for (i = 0; b != NULL && i < b->n; i++)
		if (strcmp(b->v[i].model, model) == 0)
			return (&b->v[i]);
	if (!create)
		return (NULL);
	if (b == NULL) {
		b = c->books = xcalloc(1, sizeof(*b));
		c->books_free = proxies_books_free;
	}
	/* Names no model has any more go first. */
	for (i = o = 0; i < b->n; i++) {
		if (proxies_model_exists(c->sup, b->v[i].model))
			b->v[o++] = b->v[i];
		else
			free(b->v[i].model);
	}
	b->n = o;
	b->v = xreallocarray(b->v, b->n + 1, sizeof(*b->v));
	memset(&b->v[b->n], 0, sizeof(b->v[b->n]));
	b->v[b->n].model = xstrdup(model);
	return (&b->v[b->n++]);
}

static uint32_t
proxies_clamp(uint64_t n)
{
	return (n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

/* m's demand: the sum over the proxies still connected. */
void
proxies_total(struct supervisor *sup, struct model *m)
{
	struct client		*c;
	struct proxy_book	*bk;
	uint64_t		 queued = 0, in_flight = 0;
	uint32_t		 oldest = 0;

	TAILQ_FOREACH(c, &sup->clients, entry) {
		if (!c->hello || c->role != PROTO_ROLE_PROXY ||
		    (bk = proxies_book(c, m->name, false)) == NULL)
			continue;
		queued += bk->queued;
		in_flight += bk->in_flight;
		if (bk->queued > 0 && bk->oldest_ms > oldest)
			oldest = bk->oldest_ms;
	}
	m->queued = proxies_clamp(queued);
	m->in_flight = proxies_clamp(in_flight);
	m->oldest_ms = oldest;
}

/* What c says of m now; m's totals follow. */
void
proxies_demand(struct client *c, struct model *m, uint32_t queued,
    uint32_t in_flight, uint32_t oldest_ms)
{
	struct proxy_book	*bk = proxies_book(c, m->name, true);

	bk->queued = queued;
	bk->in_flight = in_flight;
	bk->oldest_ms = oldest_ms;
	proxies_total(c->sup, m);
}

/* c was sent m's drain drain_id: it owes the answer. */
void
proxies_drain_sent(struct client *c, const struct model *m,
    uint32_t drain_id)
{
	proxies_book(c, m->name, true)->drain_owed = drain_id;
}

/* c answers drain_id for model: true when it owed that answer. */
bool
proxies_drain_answered(struct client *c, const char *model,
    uint32_t drain_id)
{
	struct proxy_book	*bk = proxies_book(c, model, false);

	if (bk == NULL || drain_id == 0 || bk->drain_owed != drain_id)
		return (false);
	bk->drain_owed = 0;
	return (true);
}

/*
 * c is gone: forget what it said of m. True when it had said anything;
 * *owed: it owed the answer to m's current drain.
 */
bool
proxies_forget(struct client *c, const struct model *m, bool *owed)
{
	struct proxy_books	*b = c->books;
	struct proxy_book	*bk = proxies_book(c, m->name, false);

	*owed = false;
	if (bk == NULL)
		return (false);
	*owed = bk->drain_owed != 0 && bk->drain_owed == m->drain_id;
	free(bk->model);
	*bk = b->v[--b->n];
	return (true);
}
