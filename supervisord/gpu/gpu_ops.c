/*
 * gpu_ops.c -- CUDA suspend and resume of a model, and measurements of
 * its GPU memory, as jobs on worker threads (worker.c): the event loop
 * hands a job the model's process ids and the settings it needs, and
 * gets the outcome back in a callback.
 *
 * Suspend finds the model's GPU processes (those NVML lists, else those
 * mapping /dev/nvidia*), records on which GPUs each held how much, and
 * locks and checkpoints every one of them in parallel, a thread each.
 * Resume restores and unlocks them in parallel; when the model's GPUs are
 * busy now and gpu.allow_migration is on, onto other GPUs of the same
 * kind with the driver's UUID remapping (gpu_place.c), and says where.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/gpu/gpu.h"

enum gpu_job_kind { GPU_JOB_SUSPEND, GPU_JOB_RESUME, GPU_JOB_MEASURE };

struct gpu_job {
	enum gpu_job_kind	 kind;
	char			*model;
	char			*cuda_path;
	char			*nvml_path;
	unsigned		 lock_timeout_ms;
	bool			 allow_migration;
	pid_t			*members;
	size_t			 nmembers;
	struct gpu_saved	 saved;		/* in: resume; out: suspend */
	gpu_cb			 cb;
	gpu_measure_cb		 measure_cb;
	void			*arg;

	/* The outcome. */
	bool			 ok;
	bool			 failed_state;
	bool			 moved;
	uint64_t		 gpus;
	uint64_t		 bytes;
	char			 reason[1024];
	char			 detail[256];
};

/* One process's operation, on a thread of its own. */
struct gpu_one {
	struct gpu_job		*job;
	pid_t			 pid;
	struct cuda_pair	*pairs;
	size_t			 npairs;
	struct cuda_outcome	 out;
	pthread_t		 t;
	bool			 started;
};

void
gpu_saved_free(struct gpu_saved *s)
{
	if (s == NULL)
		return;
	free(s->v);
	free(s);
}

static void
gpu_saved_add(struct gpu_saved *s, pid_t pid, const struct gpu_info *g,
    uint64_t bytes)
{
	struct gpu_saved_entry	*e;

	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	e = &s->v[s->n++];
	memset(e, 0, sizeof(*e));
	e->pid = pid;
	if (g != NULL) {
		e->has_gpu = true;
		snprintf(e->gpu.uuid, sizeof(e->gpu.uuid), "%s", g->uuid);
		snprintf(e->gpu.name, sizeof(e->gpu.name), "%s", g->name);
		e->gpu.index = g->index;
		e->gpu.bytes = bytes;
	}
}

static struct gpu_job *
gpu_job_new(struct model *m, enum gpu_job_kind kind, const pid_t *members,
    size_t nmembers, void *arg)
{
	const struct config	*conf = m->sup->conf;
	struct gpu_job		*job;

	job = xcalloc(1, sizeof(*job));
	job->kind = kind;
	job->model = xstrdup(m->name);
	job->cuda_path = xstrdup(conf->gpu.cuda_library != NULL ?
	    conf->gpu.cuda_library : "libcuda.so.1");
	job->nvml_path = xstrdup(conf->gpu.nvml_library != NULL ?
	    conf->gpu.nvml_library : "libnvidia-ml.so.1");
	job->lock_timeout_ms = conf->gpu.lock_timeout_ms;
	job->allow_migration = conf->gpu.allow_migration;
	job->arg = arg;
	job->members = xcalloc(GPU_MAX_PROCS, sizeof(*job->members));
	job->nmembers = nmembers < GPU_MAX_PROCS ? nmembers : GPU_MAX_PROCS;
	memcpy(job->members, members, job->nmembers * sizeof(*members));
	return (job);
}

static void
gpu_job_free(struct gpu_job *job)
{
	free(job->model);
	free(job->cuda_path);
	free(job->nvml_path);
	free(job->members);
	free(job->saved.v);
	free(job);
}

static bool
gpu_job_member(const struct gpu_job *job, pid_t pid)
{
	for (size_t i = 0; i < job->nmembers; i++)
		if (job->members[i] == pid)
			return (true);
	return (false);
}

/* NVML's view, when it loads; false (and a reason in err) otherwise. */
static bool
gpu_job_snapshot(struct gpu_job *job, struct gpu_snapshot *s, char *err,
    size_t errlen)
{
	if (nvml_open(job->nvml_path, err, errlen) != 0)
		return (false);
	return (nvml_snapshot(s, err, errlen) == 0);
}

/* Which processes of the model use a GPU, and where. */
static void
gpu_job_discover(struct gpu_job *job)
{
	struct gpu_snapshot	s;
	char			err[256];

	if (gpu_job_snapshot(job, &s, err, sizeof(err))) {
		for (size_t i = 0; i < s.n; i++)
			for (size_t j = 0; j < s.v[i].nprocs; j++)
				if (gpu_job_member(job, s.v[i].procs[j].pid))
					gpu_saved_add(&job->saved,
					    s.v[i].procs[j].pid, &s.v[i],
					    s.v[i].procs[j].bytes);
		nvml_snapshot_free(&s);
	} else
		log_debug("NVML unavailable, reading /proc model=%s "
		    "reason=\"%s\"", job->model, err);
	if (job->saved.n > 0)
		return;
	/* No NVML, or it sees no pid of ours (a PID namespace): /proc. */
	for (size_t i = 0; i < job->nmembers; i++)
		if (procfs_pid_maps_nvidia(job->members[i]))
			gpu_saved_add(&job->saved, job->members[i], NULL, 0);
}

/* The distinct pids of the saved entries, in order. */
static size_t
gpu_job_pids(const struct gpu_job *job, pid_t *out, size_t max)
{
	size_t	n = 0, k;

	for (size_t i = 0; i < job->saved.n && n < max; i++) {
		for (k = 0; k < n; k++)
			if (out[k] == job->saved.v[i].pid)
				break;
		if (k == n)
			out[n++] = job->saved.v[i].pid;
	}
	return (n);
}

static void *
gpu_one_thread(void *arg)
{
	struct gpu_one	*one = arg;

	if (one->job->kind == GPU_JOB_SUSPEND)
		cuda_suspend_pid(one->pid, one->job->lock_timeout_ms,
		    &one->out);
	else
		cuda_resume_pid(one->pid, one->pairs, one->npairs, &one->out);
	return (NULL);
}

/* Run every process's operation in parallel; gather the outcome. */
static void
gpu_job_parallel(struct gpu_job *job, struct gpu_one *v, size_t n)
{
	size_t	failed = 0, o;
	int64_t	slowest = 0;

	for (size_t i = 0; i < n; i++) {
		v[i].job = job;
		if (n == 1 || pthread_create(&v[i].t, NULL, gpu_one_thread,
		    &v[i]) != 0)
			gpu_one_thread(&v[i]);
		else
			v[i].started = true;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].started)
			pthread_join(v[i].t, NULL);
	job->ok = true;
	o = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].out.ms > slowest)
			slowest = v[i].out.ms;
		if (v[i].out.failed_state)
			job->failed_state = true;
		if (v[i].out.ok)
			continue;
		job->ok = false;
		if (failed++ < 3 && o < sizeof(job->reason))
			o += (size_t)snprintf(job->reason + o,
			    sizeof(job->reason) - o, "%s%s", o ? "; " : "",
			    v[i].out.reason);
	}
	if (failed > 3 && o < sizeof(job->reason))
		snprintf(job->reason + o, sizeof(job->reason) - o,
		    "; and %zu more", failed - 3);
	log_info("cuda %s done model=%s processes=%zu failed=%zu ms=%lld",
	    job->kind == GPU_JOB_SUSPEND ? "suspend" : "resume", job->model,
	    n, failed, (long long)slowest);
}

static void
gpu_job_suspend(void *arg)
{
	struct gpu_job	*job = arg;
	struct gpu_one	*v;
	pid_t		 pids[GPU_MAX_PROCS];
	size_t		 n;
	char		 err[512];

	if (cuda_open(job->cuda_path, err, sizeof(err)) != 0) {
		snprintf(job->reason, sizeof(job->reason), "unavailable on "
		    "this machine: %s", err);
		return;
	}
	gpu_job_discover(job);
	if ((n = gpu_job_pids(job, pids, GPU_MAX_PROCS)) == 0) {
		snprintf(job->reason, sizeof(job->reason), "no GPU process "
		    "found among the model's %zu processes", job->nmembers);
		return;
	}
	v = xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i].pid = pids[i];
	gpu_job_parallel(job, v, n);
	free(v);
}

/* Without a record of the suspend: ask the driver which are suspended. */
static void
gpu_job_probe(struct gpu_job *job)
{
	enum cuda_pstate	st;
	char			err[256];

	for (size_t i = 0; i < job->nmembers; i++)
		if (cuda_get_state(job->members[i], &st, err,
		    sizeof(err)) == 0 && (st == CUDA_CHECKPOINTED ||
		    st == CUDA_LOCKED || st == CUDA_FAILED))
			gpu_saved_add(&job->saved, job->members[i], NULL, 0);
}

/*
 * Where to restore: needs per GPU from the saved entries, a placement,
 * and for a move, each process's pairs (every GPU it held, moved or not,
 * as the driver wants all of them).
 */
static void
gpu_job_place(struct gpu_job *job, struct gpu_one *v, size_t n)
{
	struct gpu_snapshot	 s;
	struct gpu_need		 need[GPU_MAX];
	int			 map[GPU_MAX];
	size_t			 nn = 0, k;
	enum gpu_place_result	 r;
	char			 err[256], why[256];

	for (size_t i = 0; i < job->saved.n; i++) {
		const struct gpu_saved_entry *e = &job->saved.v[i];

		if (!e->has_gpu)
			continue;
		for (k = 0; k < nn; k++)
			if (strcmp(need[k].uuid, e->gpu.uuid) == 0)
				break;
		if (k == nn) {
			if (nn == GPU_MAX)
				continue;
			need[nn] = e->gpu;
			need[nn++].bytes = 0;
		}
		need[k].bytes += e->gpu.bytes;
		job->gpus |= (uint64_t)1 << (e->gpu.index % 64);
	}
	if (nn == 0 || !gpu_job_snapshot(job, &s, err, sizeof(err)))
		return;
	r = gpu_place(need, nn, &s, job->allow_migration, map, why,
	    sizeof(why));
	if (r == GPU_PLACE_NO_ROOM) {
		log_warnx("restoring at home without room model=%s "
		    "reason=\"%s\"", job->model, why);
		snprintf(job->detail, sizeof(job->detail), "%s", why);
	}
	if (r != GPU_PLACE_MOVED) {
		nvml_snapshot_free(&s);
		return;
	}
	job->moved = true;
	job->gpus = 0;
	for (k = 0; k < nn; k++)
		job->gpus |= (uint64_t)1 << (s.v[map[k]].index % 64);
	snprintf(job->detail, sizeof(job->detail), "%s", why);
	log_info("restoring onto other GPUs model=%s moves=\"%s\"",
	    job->model, why);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < job->saved.n; j++) {
			const struct gpu_saved_entry *e = &job->saved.v[j];
			struct cuda_pair	p;

			if (e->pid != v[i].pid || !e->has_gpu)
				continue;
			for (k = 0; k < nn; k++)
				if (strcmp(need[k].uuid, e->gpu.uuid) == 0)
					break;
			if (k == nn || cuda_uuid_parse(e->gpu.uuid, p.from) !=
			    0 || cuda_uuid_parse(s.v[map[k]].uuid, p.to) != 0)
				continue;
			v[i].pairs = xreallocarray(v[i].pairs, v[i].npairs + 1,
			    sizeof(p));
			v[i].pairs[v[i].npairs++] = p;
		}
	}
	nvml_snapshot_free(&s);
}

static void
gpu_job_resume(void *arg)
{
	struct gpu_job	*job = arg;
	struct gpu_one	*v;
	pid_t		 pids[GPU_MAX_PROCS];
	size_t		 n, live = 0;
	char		 err[512];

	if (cuda_open(job->cuda_path, err, sizeof(err)) != 0) {
		snprintf(job->reason, sizeof(job->reason), "unavailable on "
		    "this machine: %s", err);
		return;
	}
	if (job->saved.n == 0)
		gpu_job_probe(job);
	n = gpu_job_pids(job, pids, GPU_MAX_PROCS);
	for (size_t i = 0; i < n; i++)
		if (gpu_job_member(job, pids[i]))
			pids[live++] = pids[i];
	if (live == 0) {
		snprintf(job->reason, sizeof(job->reason), "no suspended GPU "
		    "process found among the model's %zu processes",
		    job->nmembers);
		return;
	}
	v = xcalloc(live, sizeof(*v));
	for (size_t i = 0; i < live; i++)
		v[i].pid = pids[i];
	gpu_job_place(job, v, live);
	gpu_job_parallel(job, v, live);
	if (!job->ok && job->detail[0] != '\0' && !job->moved)
		snprintf(job->reason + strlen(job->reason),
		    sizeof(job->reason) - strlen(job->reason), " (%s)",
		    job->detail);
	for (size_t i = 0; i < live; i++)
		free(v[i].pairs);
	free(v);
}

static void
gpu_job_measure(void *arg)
{
	struct gpu_job		*job = arg;
	struct gpu_snapshot	 s;

	if (!gpu_job_snapshot(job, &s, job->reason, sizeof(job->reason)))
		return;
	job->bytes = nvml_snapshot_bytes(&s, job->members, job->nmembers);
	job->ok = true;
	nvml_snapshot_free(&s);
}

static void
gpu_job_done(void *arg, bool cancelled)
{
	struct gpu_job		*job = arg;
	struct gpu_result	 r;
	struct gpu_saved	*saved = NULL;

	if (!cancelled && job->kind == GPU_JOB_MEASURE) {
		job->measure_cb(job->ok, job->bytes >> 20, job->arg);
	} else if (!cancelled) {
		memset(&r, 0, sizeof(r));
		r.ok = job->ok;
		r.failed_state = job->failed_state;
		r.reason = job->ok ? NULL : job->reason;
		r.moved = job->moved;
		r.gpus = job->gpus;
		r.detail = job->detail[0] != '\0' ? job->detail : NULL;
		if (job->kind == GPU_JOB_SUSPEND && job->ok) {
			saved = xcalloc(1, sizeof(*saved));
			*saved = job->saved;
			job->saved.v = NULL;
			job->saved.n = 0;
			r.saved = saved;
		}
		job->cb(&r, job->arg);
		gpu_saved_free(r.saved);
	}
	gpu_job_free(job);
}

int
gpu_suspend(struct model *m, const pid_t *members, size_t n, gpu_cb cb,
    void *arg)
{
	struct gpu_job	*job = gpu_job_new(m, GPU_JOB_SUSPEND, members, n,
			    arg);

	job->cb = cb;
	worker_run(m->sup, gpu_job_suspend, gpu_job_done, job);
	return (0);
}

int
gpu_resume(struct model *m, const pid_t *members, size_t n, gpu_cb cb,
    void *arg)
{
	struct gpu_job	*job = gpu_job_new(m, GPU_JOB_RESUME, members, n, arg);

	job->cb = cb;
	if (m->gpu_saved != NULL && m->gpu_saved->n > 0) {
		job->saved.v = xcalloc(m->gpu_saved->n, sizeof(*job->saved.v));
		memcpy(job->saved.v, m->gpu_saved->v,
		    m->gpu_saved->n * sizeof(*job->saved.v));
		job->saved.n = m->gpu_saved->n;
	}
	worker_run(m->sup, gpu_job_resume, gpu_job_done, job);
	return (0);
}

void
gpu_measure(struct model *m, const pid_t *members, size_t n,
    gpu_measure_cb cb, void *arg)
{
	struct gpu_job	*job = gpu_job_new(m, GPU_JOB_MEASURE, members, n,
			    arg);

	job->measure_cb = cb;
	worker_run(m->sup, gpu_job_measure, gpu_job_done, job);
}
