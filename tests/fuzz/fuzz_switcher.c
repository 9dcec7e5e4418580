/*
 * fuzz_switcher.c -- the switcher driven by arbitrary sequences of inputs
 * (demand, engine completions in any order, failures, deaths, operator
 * commands, timers, the free memory a wake finds) over an arbitrary small
 * config, checking after every
 * input what must always hold:
 *
 *   - on no GPU do the models hold more than all of it;
 *   - no two switches in progress share a GPU;
 *   - ready is only ever said of a model that is active;
 *   - the timer is never asked for a time already past.
 *
 * The first bytes choose the config; the rest are inputs, a few bytes
 * each.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisord/switcher/policy.h"
#include "supervisord/switcher/switcher.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FZ_MODELS	4
#define FZ_PENDING	64

enum fz_op { FZ_DRAIN, FZ_EVICT, FZ_WAKE, FZ_WARMUP, FZ_ROOM };

struct fz_pending {
	enum fz_op	 op;
	int		 model;
};

static struct {
	struct switcher		*sw;
	struct fz_pending	 p[FZ_PENDING];
	size_t			 n;
	int64_t			 now;
	int64_t			 timer;
	bool			 sync;
} fz;

static void
fz_add(enum fz_op op, int m)
{
	if (fz.sync) {
		switch (op) {
		case FZ_DRAIN:
			switcher_drained(fz.sw, m, fz.now);
			break;
		case FZ_EVICT:
			switcher_evicted(fz.sw, m, true, NULL, fz.now);
			break;
		case FZ_WAKE:
			switcher_woken(fz.sw, m, true, NULL, fz.now);
			break;
		case FZ_WARMUP:
			switcher_warmed(fz.sw, m, true, NULL, fz.now);
			break;
		case FZ_ROOM:
			switcher_room(fz.sw, m, NULL, 0, fz.now);
			break;
		}
		return;
	}
	if (fz.n == FZ_PENDING)
		return;		/* an engine that loses an answer */
	fz.p[fz.n].op = op;
	fz.p[fz.n].model = m;
	fz.n++;
}

static void
fz_drain(void *arg, int m)
{
	fz_add(FZ_DRAIN, m);
}

static void
fz_evict(void *arg, int m, struct eviction e)
{
	if ((unsigned)e.weights >= WEIGHTS__COUNT ||
	    (unsigned)e.process >= PROCESS__COUNT)
		abort();
	fz_add(FZ_EVICT, m);
}

static void
fz_wake(void *arg, int m)
{
	fz_add(FZ_WAKE, m);
}

static void
fz_warmup(void *arg, int m)
{
	fz_add(FZ_WARMUP, m);
}

static void
fz_check_room(void *arg, int m)
{
	fz_add(FZ_ROOM, m);
}

static void
fz_ready(void *arg, int m)
{
	if (switcher_model_state(fz.sw, m) != SWM_ACTIVE)
		abort();
}

static void
fz_failed(void *arg, int m, const char *reason)
{
	if (reason == NULL || *reason == '\0')
		abort();
}

static void
fz_record(void *arg, const struct switch_record *r)
{
	if (r->total_ms < 0 || r->cooldown_ms < 0 || r->drain_ms < 0 ||
	    r->sleep_ms < 0 || r->wake_ms < 0 || r->cooldown_ms +
	    r->drain_ms + r->sleep_ms + r->wake_ms != r->total_ms)
		abort();
	if (!r->ok && r->reason == NULL)
		abort();
}

static void
fz_set_timer(void *arg, int64_t at)
{
	if (at <= fz.now)
		abort();
	fz.timer = at;
}

static const struct switcher_ops fz_ops = {
	.drain = fz_drain,
	.evict = fz_evict,
	.wake = fz_wake,
	.warmup = fz_warmup,
	.ready = fz_ready,
	.failed = fz_failed,
	.record = fz_record,
	.set_timer = fz_set_timer,
};

static const struct switcher_ops fz_room_ops = {
	.drain = fz_drain,
	.evict = fz_evict,
	.wake = fz_wake,
	.check_room = fz_check_room,
	.warmup = fz_warmup,
	.ready = fz_ready,
	.failed = fz_failed,
	.record = fz_record,
	.set_timer = fz_set_timer,
};

/* What must always hold. */
static void
fz_check(size_t n_models)
{
	struct switcher_switch_status	s[FZ_MODELS];
	struct switcher_model_status	st;
	size_t				ns;

	for (unsigned g = 0; g < switcher_n_gpus(fz.sw); g++) {
		double	used = 0.0;

		for (size_t i = 0; i < n_models; i++) {
			switcher_model_status(fz.sw, (int)i, &st);
			if (st.gpus & ((uint64_t)1 << g))
				used += st.held;
		}
		if (used > 1.0 + 1e-6)
			abort();
	}
	ns = switcher_switches(fz.sw, s, FZ_MODELS);
	if (ns > FZ_MODELS)
		abort();
	for (size_t i = 0; i < ns; i++) {
		for (size_t j = i + 1; j < ns; j++) {
			if (s[i].gpus & s[j].gpus)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const double	 fractions[] = { 0.9, 0.5, 0.3, 0.6 };
	static char		*names[] = { "a", "b", "c", "d" };
	static int		 gpu0[] = { 0 }, gpu1[] = { 1 }, both[] = { 0, 1 };
	struct model_config	 mc[FZ_MODELS];
	struct config		 cfg;
	struct switcher_params	 params;
	size_t			 n, pos = 0;
	bool			 room;
	char			*cause;
	char			 buf[256];

	if (len < 8)
		return (0);
	log_init("fuzz_switcher", 0);
	memset(&fz, 0, sizeof(fz));
	memset(&cfg, 0, sizeof(cfg));
	memset(mc, 0, sizeof(mc));
	n = 1 + data[pos++] % FZ_MODELS;
	policy_config_default(&cfg.policy);
	cfg.policy.type = (enum policy_type)(data[pos++] % POLICY__COUNT);
	cfg.policy.drain_timeout_secs = 1 + data[pos] % 30;
	cfg.policy.drain_before_switch = (data[pos++] & 0x80) == 0;
	cfg.warmup = data[pos] & 1;
	cfg.max_sleeping = (data[pos] >> 1) & 3;
	cfg.gpu_count = 1 + ((data[pos] >> 3) & 1);
	room = (data[pos++] & 0x10) != 0;
	cfg.startup_timeout_secs = 60;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = data[pos++];

		mc[i].name = names[i];
		mc[i].gpu_memory_utilization = fractions[b & 3];
		mc[i].eviction_set = true;
		eviction_from_level(1 + (b >> 2) % 5, &mc[i].eviction);
		mc[i].preload = (b & 0x20) != 0;
		mc[i].ttl_secs = (b & 0x40) ? 30 : 0;
		if (cfg.gpu_count == 2) {
			switch (b >> 6) {
			case 0:
				mc[i].gpus = gpu0;
				mc[i].n_gpus = 1;
				break;
			case 1:
				mc[i].gpus = gpu1;
				mc[i].n_gpus = 1;
				break;
			case 2:
				mc[i].gpus = both;
				mc[i].n_gpus = 2;
				break;
			}
		}
		if (b == 0xff)
			mc[i].checkpoint_path = "/nonexistent";
	}
	cfg.models = mc;
	cfg.n_models = n;

	switcher_params_default(&params);
	params.quiet = true;
	params.wake_timeout_ms = 20000;
	if ((fz.sw = switcher_new(&cfg, room ? &fz_room_ops : &fz_ops, NULL,
	    &params)) == NULL)
		abort();
	fz.timer = SWITCHER_NEVER;
	switcher_start(fz.sw, fz.now);
	fz_check(n);

	while (pos + 3 <= len) {
		uint8_t	 op = data[pos], a = data[pos + 1], b = data[pos + 2];
		int	 m = a % (int)n;
		struct eviction e;

		pos += 3;
		fz.now += (b & 0x0f) * 250;
		fz.sync = (op & 0x80) != 0;
		cause = NULL;
		switch (op % 16) {
		case 0:
		case 1:
		case 2:
			switcher_demand(fz.sw, m, b >> 4, a >> 6, (b & 7) * 1000,
			    fz.now);
			break;
		case 3:
		case 4:
		case 5:
		case 6:
			/* Complete a pending operation, ok or failed. */
			if (fz.n > 0) {
				size_t			k = a % fz.n;
				struct fz_pending	p = fz.p[k];
				bool			ok = (b & 0x80) == 0;

				fz.p[k] = fz.p[--fz.n];
				switch (p.op) {
				case FZ_DRAIN:
					switcher_drained(fz.sw, p.model, fz.now);
					break;
				case FZ_EVICT:
					switcher_evicted(fz.sw, p.model, ok,
					    "evict failed", fz.now);
					break;
				case FZ_WAKE:
					switcher_woken(fz.sw, p.model, ok,
					    "wake failed", fz.now);
					break;
				case FZ_WARMUP:
					switcher_warmed(fz.sw, p.model, ok,
					    "bad answer", fz.now);
					break;
				case FZ_ROOM: {
					/* GPU 0 and 1 of 80 GiB, some free. */
					struct switcher_gpu_room r[2] = {
					    { 0, 80ULL << 30, 0 },
					    { 1, 80ULL << 30, 0 } };

					r[0].free_bytes = (r[0].total_bytes /
					    255) * a;
					r[1].free_bytes = (r[1].total_bytes /
					    255) * b;
					switcher_room(fz.sw, p.model, r,
					    ok ? 2 : (size_t)(b & 1), fz.now);
					break;
				}
				}
			}
			break;
		case 7:
		case 8:
			if (fz.timer != SWITCHER_NEVER && fz.timer > fz.now)
				fz.now = fz.timer;
			switcher_timer(fz.sw, fz.now);
			break;
		case 9:
			if (b & 0x10)
				switcher_restart(fz.sw, m, fz.now);
			else
				switcher_died(fz.sw, m, "killed", fz.now);
			break;
		case 10:
			switcher_cmd_switch(fz.sw, m, fz.now, &cause);
			break;
		case 11:
			if (b & 1)
				switcher_cmd_pin(fz.sw, m, fz.now, &cause);
			else
				switcher_cmd_unpin(fz.sw, fz.now);
			break;
		case 12:
			switcher_cmd_mode(fz.sw, (b & 1) ? SWITCHER_MANUAL :
			    SWITCHER_AUTO, fz.now);
			break;
		case 13:
			eviction_from_level(1 + b % 5, &e);
			switcher_cmd_sleep(fz.sw, m, (b & 0x80) ? &e : NULL,
			    fz.now, &cause);
			break;
		case 14:
			switcher_cmd_wake(fz.sw, m, fz.now, &cause);
			break;
		case 15:
			if (b & 0x40)
				switcher_proxy(fz.sw, (b & 0x80) != 0, fz.now);
			else {
				eviction_from_level(1 + b % 5, &e);
				switcher_cmd_set_eviction(fz.sw, m, e, fz.now,
				    &cause);
			}
			break;
		}
		free(cause);
		fz_check(n);
		switcher_state_string(fz.sw, buf, sizeof(buf));
	}
	switcher_free(fz.sw);
	return (0);
}
