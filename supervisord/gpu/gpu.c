/*
 * gpu.c -- the GPU module's face to the rest of the supervisor: NVML
 * telemetry read every GPU_TELEMETRY_MS on a worker thread and kept for
 * status and /metrics (each GPU's memory, and its processes attributed to
 * the models they belong to), read again at once when a suspend, resume,
 * sleep, wake or stop ends (one read at a time), its news told upward
 * when what a viewer shows changed (gpu_hooks, the `gpu` event), a fresh
 * read on demand (what is free before a wake), and the checks that say
 * whether CUDA suspend can run on this machine. The driver itself is in
 * cuda.c, NVML in nvml.c, suspend and resume in gpu_ops.c.
 *
 * Both libraries are loaded with dlopen at run time, so llmux runs on
 * machines without a driver: there cuda_suspend fails with "unavailable
 * on this machine: ..." and escalates to stop, and status has no GPUs.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/gpu/gpu.h"

struct gpu_state {
	struct event		*ev_timer;
	bool			 running;	/* a telemetry job is out */
	bool			 again;		/* another read once it ends */
	bool			 have;		/* snap is valid */
	bool			 said;		/* the NVML failure was logged */
	bool			 missing;	/* NVML cannot be loaded here */
	char			*error;		/* why there is no telemetry */
	struct gpu_snapshot	 snap;
	bool			 told_have;	/* told is valid */
	struct gpu_snapshot	 told;		/* what the last news said */
};

struct gpu_telemetry_job {
	struct supervisor	*sup;
	char			*path;
	bool			 loaded;	/* NVML is there */
	bool			 ok;
	char			 err[512];
	struct gpu_snapshot	 snap;
};

static void	gpu_telemetry_start(struct supervisor *);

static void
gpu_telemetry_work(void *arg)
{
	struct gpu_telemetry_job	*tj = arg;

	if (nvml_open(tj->path, tj->err, sizeof(tj->err)) != 0)
		return;
	tj->loaded = true;
	tj->ok = nvml_snapshot(&tj->snap, tj->err, sizeof(tj->err)) == 0;
}

/* Whose is this GPU process? The model whose session it is in. */
static void
gpu_attribute(struct supervisor *sup, struct gpu_proc *gp)
{
	struct procfs_stat	 st;
	struct model		*m;

	gp->model[0] = '\0';
	if (procfs_read_stat(gp->pid, &st) != 0)
		return;
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->proc == NULL || m->proc->exited || m->removed)
			continue;
		if (m->proc->pid == gp->pid || m->proc->pid == st.session) {
			snprintf(gp->model, sizeof(gp->model), "%s", m->name);
			return;
		}
	}
}

/* The GPUs a snapshot shows a model's processes on, and their bytes. */
static uint64_t
gpu_snap_model(const struct gpu_snapshot *s, const char *name,
    uint64_t *bytes)
{
	uint64_t	mask = 0;

	*bytes = 0;
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->v[i].nprocs; j++)
			if (strcmp(s->v[i].procs[j].model, name) == 0) {
				mask |= (uint64_t)1 << (s->v[i].index % 64);
				*bytes += s->v[i].procs[j].bytes;
			}
	return (mask);
}

/* Is the move from a to b news: GPU_NEWS_MIN_BYTES and 1 % of scale? */
static bool
gpu_news_bytes(uint64_t a, uint64_t b, uint64_t scale)
{
	uint64_t	d = a > b ? a - b : b - a;

	return (d >= GPU_NEWS_MIN_BYTES && d >= scale / 100);
}

/* Does the telemetry now differ from the last told in what viewers show? */
static bool
gpu_news_differs(struct supervisor *sup, const struct gpu_state *gs)
{
	const struct gpu_info	*g, *t;
	struct model		*m;
	uint64_t		 now_b, told_b;

	if (gs->have != gs->told_have)
		return (true);
	if (!gs->have)
		return (false);
	if (gs->snap.n != gs->told.n)
		return (true);
	for (size_t i = 0; i < gs->snap.n; i++) {
		g = &gs->snap.v[i];
		t = &gs->told.v[i];
		if (g->index != t->index || g->total != t->total ||
		    strcmp(g->uuid, t->uuid) != 0 ||
		    gpu_news_bytes(g->used, t->used, g->total))
			return (true);
	}
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		if (gpu_snap_model(&gs->snap, m->name, &now_b) !=
		    gpu_snap_model(&gs->told, m->name, &told_b) ||
		    gpu_news_bytes(now_b, told_b, now_b > told_b ? now_b :
		    told_b))
			return (true);
	}
	return (false);
}

/* After each read: tell the levels above when it is news. */
static void
gpu_news(struct supervisor *sup, struct gpu_state *gs)
{
	if (!gpu_news_differs(sup, gs))
		return;
	nvml_snapshot_free(&gs->told);
	gs->told_have = gs->have;
	if (gs->have)
		nvml_snapshot_copy(&gs->told, &gs->snap);
	if (sup->gpu_hooks != NULL && sup->gpu_hooks->changed != NULL)
		sup->gpu_hooks->changed(sup);
}

static void
gpu_telemetry_done(void *arg, bool cancelled)
{
	struct gpu_telemetry_job	*tj = arg;
	struct supervisor		*sup = tj->sup;
	struct gpu_state		*gs = sup->gpu;

	if (cancelled || gs == NULL) {
		nvml_snapshot_free(&tj->snap);
		free(tj->path);
		free(tj);
		return;
	}
	gs->running = false;
	if (tj->ok) {
		for (size_t i = 0; i < tj->snap.n; i++)
			for (size_t j = 0; j < tj->snap.v[i].nprocs; j++)
				gpu_attribute(sup, &tj->snap.v[i].procs[j]);
		nvml_snapshot_free(&gs->snap);
		gs->snap = tj->snap;
		gs->have = true;
		free(gs->error);
		gs->error = NULL;
	} else {
		nvml_snapshot_free(&tj->snap);
		gs->have = false;
		free(gs->error);
		gs->error = xstrdup(tj->err);
		if (!gs->said)
			log_info("no GPU telemetry reason=\"%s\"", tj->err);
		gs->said = true;
		/* No NVML: it will not appear later; stop asking. */
		if (!tj->loaded) {
			gs->missing = true;
			event_del(gs->ev_timer);
		}
	}
	free(tj->path);
	free(tj);
	gpu_news(sup, gs);
	/* Asked for while this read was out: it may predate the change. */
	if (gs->again) {
		gs->again = false;
		gpu_telemetry_start(sup);
	}
}

static void
gpu_telemetry_start(struct supervisor *sup)
{
	struct gpu_state		*gs = sup->gpu;
	struct gpu_telemetry_job	*tj;
	const char			*path = sup->conf->gpu.nvml_library;

	if (gs == NULL || gs->missing)
		return;
	if (gs->running) {
		gs->again = true;
		return;
	}
	gs->running = true;
	tj = xcalloc(1, sizeof(*tj));
	tj->sup = sup;
	tj->path = xstrdup(path != NULL ? path : "libnvidia-ml.so.1");
	worker_run(sup, gpu_telemetry_work, gpu_telemetry_done, tj);
}

static void
gpu_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	gpu_telemetry_start(arg);
}

void
gpu_init(struct supervisor *sup)
{
	struct timeval	tv = { GPU_TELEMETRY_MS / 1000,
			    (GPU_TELEMETRY_MS % 1000) * 1000 };

	sup->gpu = xcalloc(1, sizeof(*sup->gpu));
	sup->gpu->ev_timer = event_new(sup->base, -1, EV_PERSIST,
	    gpu_timer_cb, sup);
	event_add(sup->gpu->ev_timer, &tv);
	gpu_telemetry_start(sup);
}

void
gpu_refresh(struct supervisor *sup)
{
	gpu_telemetry_start(sup);
}

/* ---- a fresh read (gpu_read) --------------------------------------------- */

struct gpu_read_job {
	struct supervisor	*sup;
	char			*path;
	bool			 ok;
	char			 err[512];
	struct gpu_snapshot	 snap;
	gpu_read_cb		 cb;
	void			*arg;
};

static void
gpu_read_work(void *arg)
{
	struct gpu_read_job	*rj = arg;

	if (nvml_open(rj->path, rj->err, sizeof(rj->err)) == 0)
		rj->ok = nvml_snapshot(&rj->snap, rj->err,
		    sizeof(rj->err)) == 0;
}

static void
gpu_read_done(void *arg, bool cancelled)
{
	struct gpu_read_job	*rj = arg;

	if (!cancelled) {
		if (!rj->ok)
			log_debug("no fresh GPU reading reason=\"%s\"", rj->err);
		rj->cb(rj->sup, rj->ok ? &rj->snap : NULL, rj->arg);
	}
	nvml_snapshot_free(&rj->snap);
	free(rj->path);
	free(rj);
}

int
gpu_read(struct supervisor *sup, gpu_read_cb cb, void *arg)
{
	struct gpu_read_job	*rj;
	const char		*path = sup->conf->gpu.nvml_library;

	if (sup->gpu == NULL || sup->gpu->missing)
		return (-1);
	rj = xcalloc(1, sizeof(*rj));
	rj->sup = sup;
	rj->path = xstrdup(path != NULL ? path : "libnvidia-ml.so.1");
	rj->cb = cb;
	rj->arg = arg;
	worker_run(sup, gpu_read_work, gpu_read_done, rj);
	return (0);
}

void
gpu_free(struct supervisor *sup)
{
	struct gpu_state	*gs = sup->gpu;

	if (gs == NULL)
		return;
	event_free(gs->ev_timer);
	nvml_snapshot_free(&gs->snap);
	nvml_snapshot_free(&gs->told);
	free(gs->error);
	free(gs);
	sup->gpu = NULL;
}

bool
gpu_available(const struct config *conf, char *why, size_t len)
{
	char	err[512];

	if (cuda_open(conf->gpu.cuda_library, err, sizeof(err)) != 0) {
		snprintf(why, len, "unavailable on this machine: %s", err);
		return (false);
	}
	snprintf(why, len, "CUDA driver API %d.%d", cuda_driver_version() /
	    1000, cuda_driver_version() % 1000 / 10);
	return (true);
}

/* A model's eviction, or any model's, needs this process strategy. */
static const struct model_config *
gpu_config_uses(const struct config *conf, enum process_strategy p)
{
	for (size_t i = 0; i < conf->n_models; i++)
		if (config_model_eviction(conf, &conf->models[i]).process == p)
			return (&conf->models[i]);
	return (NULL);
}

int
gpu_check_config(const struct config *conf, char *why, size_t len)
{
	const struct model_config	*mc;
	const char			*env = getenv("LLMUX_CUDA_LIBRARY");
	char				 err[512];
	void				*h;

	if ((mc = gpu_config_uses(conf, PROCESS_CUDA_SUSPEND)) == NULL)
		return (0);
	/* Symbols and version only: cuInit needs a GPU, not a check. */
	if (env == NULL || *env == '\0')
		env = conf->gpu.cuda_library;
	if ((h = dlopen(env, RTLD_LAZY | RTLD_LOCAL)) == NULL) {
		snprintf(why, len, "gpu.cuda_library: cannot load %s (%s); "
		    "model %s uses cuda_suspend, which will escalate to stop "
		    "on this machine", env, dlerror(), mc->name);
		return (-1);
	}
	dlclose(h);
	if (cuda_open(env, err, sizeof(err)) != 0 &&
	    strncmp(err, "cuInit failed", 13) != 0) {
		snprintf(why, len, "gpu.cuda_library: %s; model %s uses "
		    "cuda_suspend, which will escalate to stop on this machine",
		    err, mc->name);
		return (-1);
	}
	return (0);
}

/* ---- status and metrics ------------------------------------------------------ */

/* The GPUs a model's processes hold memory on now, as a mask. */
uint64_t
gpu_model_gpus(struct supervisor *sup, const struct model *m,
    uint64_t *bytes)
{
	struct gpu_state	*gs = sup->gpu;

	*bytes = 0;
	if (gs == NULL || !gs->have)
		return (0);
	return (gpu_snap_model(&gs->snap, m->name, bytes));
}

/* status "gpus": null without telemetry, else one map per GPU. */
void
gpu_status_body(struct supervisor *sup, struct body *b)
{
	struct gpu_state	*gs = sup->gpu;

	if (gs == NULL || !gs->have) {
		body_nil(b);
		return;
	}
	body_array(b, gs->snap.n);
	for (size_t i = 0; i < gs->snap.n; i++) {
		const struct gpu_info *g = &gs->snap.v[i];

		body_map(b, 7);
		body_kuint(b, "index", g->index);
		body_kstr(b, "name", g->name);
		body_kstr(b, "uuid", g->uuid);
		body_kuint(b, "memory_total_bytes", g->total);
		body_kuint(b, "memory_used_bytes", g->used);
		body_kuint(b, "memory_free_bytes", g->free);
		body_str(b, "processes");
		body_array(b, g->nprocs);
		for (size_t j = 0; j < g->nprocs; j++) {
			body_map(b, 3);
			body_kuint(b, "pid", (uint64_t)g->procs[j].pid);
			body_kstr(b, "model", g->procs[j].model[0] != '\0' ?
			    g->procs[j].model : NULL);
			body_kuint(b, "memory_bytes", g->procs[j].bytes);
		}
	}
}

/* The `gpu` event's data: the figures of status that telemetry gives. */
void
gpu_news_body(struct supervisor *sup, struct body *b, bool with_model_gpus)
{
	struct gpu_state	*gs = sup->gpu;
	struct model		*m;
	uint64_t		 mask, bytes;
	size_t			 n = 0;

	body_map(b, 2);
	body_str(b, "gpus");
	if (gs == NULL || !gs->have)
		body_nil(b);
	else {
		body_array(b, gs->snap.n);
		for (size_t i = 0; i < gs->snap.n; i++) {
			body_map(b, 3);
			body_kuint(b, "index", gs->snap.v[i].index);
			body_kuint(b, "memory_used_bytes", gs->snap.v[i].used);
			body_kuint(b, "memory_total_bytes",
			    gs->snap.v[i].total);
		}
	}
	TAILQ_FOREACH(m, &sup->models, entry)
		if (!m->removed)
			n++;
	body_str(b, "models");
	body_map(b, n);
	TAILQ_FOREACH(m, &sup->models, entry) {
		if (m->removed)
			continue;
		mask = gpu_model_gpus(sup, m, &bytes);
		body_str(b, m->name);
		body_map(b, 2);
		body_kuint(b, "gpu_memory_bytes", bytes);
		body_str(b, "gpus");
		if (!with_model_gpus) {
			body_nil(b);
			continue;
		}
		body_array(b, (size_t)__builtin_popcountll(mask));
		for (int g = 0; g < 64; g++)
			if (mask & ((uint64_t)1 << g))
				body_uint(b, (uint64_t)g);
	}
}

/* Why there are no GPUs in status, or NULL. */
const char *
gpu_telemetry_error(struct supervisor *sup)
{
	return (sup->gpu != NULL ? sup->gpu->error : NULL);
}

static void
gpu_metric(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gpu_metric(char **out, const char *fmt, ...)
{
	va_list	 ap;
	char	*line, *s;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	xasprintf(&s, "%s%s", *out, line);
	free(*out);
	free(line);
	*out = s;
}

/* Label values: a model name may hold a quote or a backslash. */
static void
gpu_label(const char *s, char *buf, size_t len)
{
	size_t	o = 0;

	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[o++] = '\\';
			buf[o++] = *s == '\n' ? 'n' : *s;
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
}

char *
gpu_metrics_text(struct supervisor *sup)
{
	struct gpu_state	*gs = sup->gpu;
	const struct gpu_info	*g;
	char			*out = xstrdup(""), l[512], n[512];
	static const struct {
		const char	*name;
		const char	*help;
		int		 field;
	} mem[] = {
		{ "llmux_gpu_memory_total_bytes", "GPU memory, from NVML.", 0 },
		{ "llmux_gpu_memory_used_bytes", "GPU memory in use.", 1 },
		{ "llmux_gpu_memory_free_bytes", "GPU memory free.", 2 },
	};

	if (gs == NULL || !gs->have)
		return (out);
	gpu_metric(&out, "# HELP llmux_gpu_info One per GPU, with its name "
	    "and UUID.\n# TYPE llmux_gpu_info gauge\n");
	for (size_t i = 0; i < gs->snap.n; i++) {
		g = &gs->snap.v[i];
		gpu_label(g->name, n, sizeof(n));
		gpu_label(g->uuid, l, sizeof(l));
		gpu_metric(&out, "llmux_gpu_info{gpu=\"%u\",name=\"%s\","
		    "uuid=\"%s\"} 1\n", g->index, n, l);
	}
	for (size_t k = 0; k < sizeof(mem) / sizeof(mem[0]); k++) {
		gpu_metric(&out, "# HELP %s %s\n# TYPE %s gauge\n",
		    mem[k].name, mem[k].help, mem[k].name);
		for (size_t i = 0; i < gs->snap.n; i++) {
			g = &gs->snap.v[i];
			gpu_metric(&out, "%s{gpu=\"%u\"} %llu\n", mem[k].name,
			    g->index, (unsigned long long)(mem[k].field == 0 ?
			    g->total : mem[k].field == 1 ? g->used : g->free));
		}
	}
	gpu_metric(&out, "# HELP llmux_gpu_process_memory_bytes GPU memory "
	    "held by each model's processes.\n"
	    "# TYPE llmux_gpu_process_memory_bytes gauge\n");
	for (size_t i = 0; i < gs->snap.n; i++) {
		g = &gs->snap.v[i];
		/* One line per model: sum its processes on this GPU. */
		for (size_t j = 0; j < g->nprocs; j++) {
			uint64_t	sum = 0;
			size_t		k;

			if (g->procs[j].model[0] == '\0')
				continue;
			for (k = 0; k < j; k++)
				if (strcmp(g->procs[k].model,
				    g->procs[j].model) == 0)
					break;
			if (k < j)
				continue;
			for (k = j; k < g->nprocs; k++)
				if (strcmp(g->procs[k].model,
				    g->procs[j].model) == 0)
					sum += g->procs[k].bytes;
			gpu_label(g->procs[j].model, l, sizeof(l));
			gpu_metric(&out, "llmux_gpu_process_memory_bytes{gpu="
			    "\"%u\",model=\"%s\"} %llu\n", g->index, l,
			    (unsigned long long)sum);
		}
	}
	return (out);
}
