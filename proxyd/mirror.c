/*
 * mirror.c -- the proxy's copy of the supervisor's ring of events, for
 * GET /control/events (sse.c). After each hello the proxy subscribes with
 * the id of the last event it holds (0 when it holds none: after a
 * restart it gets the supervisor's whole ring again); the reply says
 * where the supervisor's ring ends, and the mirror is "synced" once it
 * holds that far. Each event is kept as the SSE record clients are sent,
 * with the supervisor's own ids, so a client resumes on any proxy.
 *
 * The mirror holds one contiguous run of one boot: an event of another
 * boot, a gap, or a hole in the numbers starts it again (clients behind
 * that are told of the gap by sse.c). It is bounded like the supervisor's
 * ring: ring_size records, MIRROR_MAX_BYTES at most.
 */
#include <stdlib.h>
#include <string.h>

#include "evstream.h"
#include "log.h"
#include "mpjson.h"
#include "mpread.h"
#include "proxy.h"
#include "xmalloc.h"

#define MIRROR_DEFAULT_SIZE	4096
#define MIRROR_MAX_SIZE		65536
#define MIRROR_MAX_BYTES	(16u << 20)
#define MIRROR_CALL_MS		10000

struct mrec {
	uint64_t	 seq;
	char		*sse;
	size_t		 len;
};

static struct {
	uint64_t	 boot;		/* 0: nothing yet */
	struct mrec	*v;		/* ring of cap, oldest at head */
	size_t		 cap, head, n, bytes;
	bool		 synced;
	bool		 waiting;	/* subscribed, reply seen, replaying */
	uint64_t	 target;	/* synced when last reaches it */
	uint32_t	 call;
} mir;

/* Who is told when the mirror synced or grew (sse.c, set by main.c). */
static void	(*mirror_changed)(void);

void
mirror_on_change(void (*cb)(void))
{
	mirror_changed = cb;
}

static void
mirror_tell(void)
{
	if (mirror_changed != NULL)
		mirror_changed();
}

static void
mirror_drop_oldest(void)
{
	struct mrec	*r = &mir.v[mir.head];

	mir.bytes -= r->len;
	free(r->sse);
	r->sse = NULL;
	mir.head = (mir.head + 1) % mir.cap;
	mir.n--;
}

static void
mirror_clear(void)
{
	while (mir.n > 0)
		mirror_drop_oldest();
	mir.head = 0;
}

static void
mirror_resize(size_t cap)
{
	struct mrec	*v;

	if (cap < 1)
		cap = MIRROR_DEFAULT_SIZE;
	if (cap > MIRROR_MAX_SIZE)
		cap = MIRROR_MAX_SIZE;
	if (cap == mir.cap)
		return;
	while (mir.n > cap)
		mirror_drop_oldest();
	v = xcalloc(cap, sizeof(*v));
	for (size_t i = 0; i < mir.n; i++)
		v[i] = mir.v[(mir.head + i) % mir.cap];
	free(mir.v);
	mir.v = v;
	mir.cap = cap;
	mir.head = 0;
}

bool
mirror_synced(void)
{
	return (mir.synced);
}

uint64_t
mirror_boot(void)
{
	return (mir.boot);
}

uint64_t
mirror_last_seq(void)
{
	return (mir.n > 0 ? mir.v[(mir.head + mir.n - 1) % mir.cap].seq : 0);
}

uint64_t
mirror_first_seq(void)
{
	return (mir.n > 0 ? mir.v[mir.head].seq : 0);
}

const char *
mirror_get(uint64_t seq, size_t *len)
{
	uint64_t	first = mirror_first_seq();
	struct mrec	*r;

	if (mir.n == 0 || seq < first || seq - first >= mir.n)
		return (NULL);
	r = &mir.v[(mir.head + (size_t)(seq - first)) % mir.cap];
	*len = r->len;
	return (r->sse);
}

static void
mirror_check_synced(void)
{
	if (mir.synced || !mir.waiting || mirror_last_seq() < mir.target)
		return;
	mir.synced = true;
	mir.waiting = false;
	log_debug("event mirror synced boot=%llu last=%llu",
	    (unsigned long long)mir.boot,
	    (unsigned long long)mirror_last_seq());
	mirror_tell();
}

/* A number from the subscribe reply's body, or 0. */
static uint64_t
mirror_reply_uint(const uint8_t *body, size_t len, const char *key)
{
	const uint8_t	*v;
	size_t		 left;
	struct mpr	 r;
	struct mpr_item	 it;
	const char	*why;

	if ((v = mpjson_find(body, len, key, &left)) == NULL)
		return (0);
	mpr_init(&r, v, left);
	if (mpr_next(&r, &it, &why) != 0 || it.kind != MPR_UINT)
		return (0);
	return (it.u);
}

static void
mirror_subscribed(int status, const uint8_t *body, size_t len, void *arg)
{
	uint64_t	boot;

	mir.call = 0;
	if (status != 200 || body == NULL) {
		log_warnx("the supervisor refused the event subscription "
		    "status=%d", status);
		return;
	}
	boot = mirror_reply_uint(body, len, "boot");
	if (boot != mir.boot) {
		/* Another supervisor: what we hold is of its predecessor. */
		mirror_clear();
		mir.boot = boot;
	}
	mirror_resize((size_t)mirror_reply_uint(body, len, "ring_size"));
	mir.target = mirror_reply_uint(body, len, "last_seq");
	mir.waiting = true;
	mirror_check_synced();
}

void
mirror_link_up(void)
{
	struct proto_call	call;

	if (mir.cap == 0)
		mirror_resize(MIRROR_DEFAULT_SIZE);
	memset(&call, 0, sizeof(call));
	call.has_since = true;
	call.since.boot = mir.n > 0 ? mir.boot : 0;
	call.since.seq = mirror_last_seq();
	mir.synced = mir.waiting = false;
	mir.call = link_call(PROTO_CTL_SUBSCRIBE, &call, MIRROR_CALL_MS,
	    mirror_subscribed, NULL);
}

void
mirror_link_down(void)
{
	if (mir.call != 0)
		link_cancel(mir.call);
	mir.call = 0;
	mir.synced = mir.waiting = false;
}

void
mirror_event(const struct proto_event *e)
{
	struct mrec	*r;
	char		*sse;
	size_t		 len;

	if (mir.cap == 0)
		mirror_resize(MIRROR_DEFAULT_SIZE);
	if (e->boot != mir.boot) {
		mirror_clear();
		mir.boot = e->boot;
	}
	if (strcmp(e->kind, "gap") == 0) {
		/* What came before is gone: start again after it. */
		mirror_clear();
		mirror_tell();
		return;
	}
	if (mir.n > 0 && e->seq <= mirror_last_seq())
		return;		/* a replay of what we hold */
	if (mir.n > 0 && e->seq != mirror_last_seq() + 1)
		mirror_clear();	/* a hole: keep one contiguous run */
	if ((sse = evstream_sse(e, &len)) == NULL) {
		log_warnx("event not kept, bad kind or data seq=%llu",
		    (unsigned long long)e->seq);
		return;
	}
	while (mir.n > 0 && (mir.n == mir.cap ||
	    mir.bytes + len > MIRROR_MAX_BYTES))
		mirror_drop_oldest();
	r = &mir.v[(mir.head + mir.n) % mir.cap];
	r->seq = e->seq;
	r->sse = sse;
	r->len = len;
	mir.n++;
	mir.bytes += len;
	mirror_check_synced();
	mirror_tell();
}

void
mirror_shutdown(void)
{
	mirror_clear();
	free(mir.v);
	memset(&mir, 0, sizeof(mir));
}
