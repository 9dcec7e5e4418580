/*
 * cudagpu.c -- --fake-gpu cuda: the stand-in's weights and KV cache as
 * real device memory, through the CUDA driver API (cudadrv.c), so that
 * llmux's evictions move real bytes and their times can be measured.
 *
 * At start the engine claims --gpu-memory-utilization of the GPU's total,
 * as vLLM does: the weights (--fake-weights-mb, else half the claim) and
 * the KV cache (--fake-kv-mb, else the rest less 5 % for the context and
 * activations), in allocations of at most 1 GiB, as a model's tensors.
 * The weights get a known pattern (pattern.c); the KV cache is left as
 * allocated, as vLLM leaves it.
 *
 * Sleep level 1 copies the weights to pinned host memory and frees every
 * allocation (vLLM's CuMemAllocator offloads the "weights" tag and
 * discards the rest); level 2 frees everything. A wake allocates again
 * and copies the weights back; after level 2 reload_weights writes the
 * pattern again. A CUDA suspend (the driver's checkpoint API, driven by
 * the supervisor) needs nothing from here: the driver saves and restores
 * the process's device memory itself.
 *
 * The pattern is checked after every wake and reload and before every
 * request is served (a model reads its weights for every request): one
 * 512-byte sample in every 2 MiB page of the weights, gathered with one 2D
 * copy per allocation, the sample's place in the page moving from one
 * check to the next. A check that fails makes the wake (or the request)
 * answer 500 with where and what it found.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cudadrv.h"
#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

#define CG_PAGE		((size_t)2 << 20)	/* one sample per 2 MiB */
#define CG_CHUNK	((size_t)1 << 30)	/* the largest allocation */
#define CG_SAMPLE	((size_t)512)
#define CG_STAGING	((size_t)64 << 20)
#define CG_MIB		((size_t)1 << 20)
#define CG_GIB(b)	((double)(b) / (double)(1ULL << 30))

struct cg_alloc {
	uint64_t	 dptr;		/* 0 while not on the device */
	size_t		 size;
	void		*host;		/* the level-1 copy, pinned */
	int		 weights;
};

static struct {
	struct fv_cuda	 cu;
	int		 on;
	uint64_t	 seed;
	size_t		 claim;
	size_t		 weights;
	size_t		 kv;
	struct cg_alloc	*a;
	int		 n;
	unsigned char	*staging;
	size_t		 staging_size;
	unsigned char	*sample;
	uint64_t	 checks;
	uint64_t	 failures;
	uint64_t	 round;
	char		 error[256];
	int64_t		 sleep_ms;
	int64_t		 wake_ms;
	int64_t		 reload_ms;
	int64_t		 check_us;
} cg;

static const char *
cg_strerror(int rc)
{
	static char	buf[160];

	return (fv_cudadrv_strerror(&cg.cu, rc, buf, sizeof(buf)));
}

static size_t
cg_round(size_t n)
{
	return ((n + CG_PAGE - 1) / CG_PAGE * CG_PAGE);
}

/* Split BYTES into allocations of at most CG_CHUNK. */
static void
cg_layout(size_t bytes, int weights)
{
	size_t	left = cg_round(bytes), n;

	while (left > 0) {
		n = left < CG_CHUNK ? left : CG_CHUNK;
		cg.a = xreallocarray(cg.a, cg.n + 1, sizeof(*cg.a));
		memset(&cg.a[cg.n], 0, sizeof(cg.a[cg.n]));
		cg.a[cg.n].size = n;
		cg.a[cg.n].weights = weights;
		cg.n++;
		left -= n;
	}
}

static int
cg_map(int i, char **cause)
{
	size_t	free_b = 0, total = 0;
	int	rc;

	if (cg.a[i].dptr != 0)
		return (0);
	if ((rc = cg.cu.MemAlloc(&cg.a[i].dptr, cg.a[i].size)) == 0)
		return (0);
	cg.a[i].dptr = 0;
	cg.cu.MemGetInfo(&free_b, &total);
	xasprintf(cause, "CUDA out of memory. Tried to allocate %.2f GiB. GPU "
	    "0 has a total capacity of %.2f GiB of which %.2f GiB is free "
	    "(cuMemAlloc: %s)", CG_GIB(cg.a[i].size), CG_GIB(total),
	    CG_GIB(free_b), cg_strerror(rc));
	return (-1);
}

static void
cg_unmap(int i)
{
	if (cg.a[i].dptr == 0)
		return;
	if (cg.cu.MemFree(cg.a[i].dptr) != 0)
		log_warnx("cuMemFree failed");
	cg.a[i].dptr = 0;
}

static size_t
cg_bytes(int device, int weights_only)
{
	size_t	n = 0;

	for (int i = 0; i < cg.n; i++) {
		if (weights_only && !cg.a[i].weights)
			continue;
		if (device ? cg.a[i].dptr != 0 : cg.a[i].host != NULL)
			n += cg.a[i].size;
	}
	return (n);
}

/* Write the pattern into every weights allocation. */
static int
cg_write_weights(char **cause)
{
	size_t	n;
	int	rc;

	for (int i = 0; i < cg.n; i++) {
		if (!cg.a[i].weights)
			continue;
		for (size_t off = 0; off < cg.a[i].size; off += n) {
			n = cg.a[i].size - off;
			if (n > cg.staging_size)
				n = cg.staging_size;
			fv_pattern_stamp(cg.staging, n, cg.seed, (uint32_t)i,
			    off);
			if ((rc = cg.cu.MemcpyHtoD(cg.a[i].dptr + off,
			    cg.staging, n)) != 0) {
				xasprintf(cause, "cannot write the weights "
				    "(cuMemcpyHtoD: %s)", cg_strerror(rc));
				return (-1);
			}
		}
	}
	return (0);
}

int
fv_cudagpu_enabled(void)
{
	return (cg.on);
}

int
fv_cudagpu_start(struct fv_opts *o, char **cause)
{
	char	err[512];
	size_t	free_b = 0, total = 0, reserve;
	int64_t	t0 = clock_ms();
	int	rc;

	if (o->gpu_mode != FV_GPU_CUDA)
		return (0);
	if (fv_cudadrv_open(&cg.cu, err, sizeof(err)) != 0 ||
	    fv_cudadrv_context(&cg.cu, 0, err, sizeof(err)) != 0) {
		xasprintf(cause, "--fake-gpu cuda: %s", err);
		return (-1);
	}
	cg.claim = (size_t)(o->gpu_util * (double)cg.cu.total) / CG_PAGE *
	    CG_PAGE;
	reserve = cg_round(cg.claim / 20);
	cg.weights = o->weights_mb > 0 ? cg_round((size_t)o->weights_mb *
	    CG_MIB) : cg_round(cg.claim / 2);
	if (cg.weights == 0)
		cg.weights = CG_PAGE;
	if (o->kv_mb >= 0)
		cg.kv = cg_round((size_t)o->kv_mb * CG_MIB);
	else if (cg.claim > cg.weights + reserve)
		cg.kv = cg.claim - cg.weights - reserve;
	else {
		xasprintf(cause, "No available memory for the cache blocks: "
		    "the weights take %.2f GiB of the %.2f GiB claimed. Try "
		    "increasing `gpu_memory_utilization` when initializing "
		    "the engine.", CG_GIB(cg.weights), CG_GIB(cg.claim));
		return (-1);
	}
	if ((rc = cg.cu.MemGetInfo(&free_b, &total)) != 0 ||
	    free_b < cg.weights + cg.kv) {
		xasprintf(cause, "Free memory on device (%.2f/%.2f GiB) on "
		    "startup is less than desired GPU memory utilization "
		    "(%.2f, %.2f GiB). Decrease GPU memory utilization or "
		    "reduce GPU memory used by other processes.",
		    CG_GIB(free_b), CG_GIB(cg.cu.total), o->gpu_util,
		    CG_GIB(cg.weights + cg.kv));
		return (-1);
	}
	cg.seed = fv_generate_mix(fv_generate_hash(FV_HASH_INIT, o->model,
	    strlen(o->model)));
	cg.staging_size = cg.weights < CG_STAGING ? cg.weights : CG_STAGING;
	if ((rc = cg.cu.MemAllocHost((void **)&cg.staging,
	    cg.staging_size)) != 0 || (rc = cg.cu.MemAllocHost(
	    (void **)&cg.sample, CG_CHUNK / CG_PAGE * CG_SAMPLE)) != 0) {
		xasprintf(cause, "cannot allocate pinned host memory "
		    "(cuMemAllocHost: %s)", cg_strerror(rc));
		return (-1);
	}
	fv_pattern_base(cg.staging, cg.staging_size, cg.seed);
	cg_layout(cg.weights, 1);
	cg_layout(cg.kv, 0);
	for (int i = 0; i < cg.n; i++)
		if (cg_map(i, cause) != 0)
			return (-1);
	if (cg_write_weights(cause) != 0)
		return (-1);
	cg.on = 1;
	if (fv_cudagpu_check() != NULL) {
		xasprintf(cause, "%s", cg.error);
		return (-1);
	}
	log_info("CUDA device memory ready device=\"%s\" total_gib=%.2f "
	    "gpu_memory_utilization=%.2f weights_gib=%.2f kv_cache_gib=%.2f "
	    "allocations=%d ms=%lld", cg.cu.name, CG_GIB(cg.cu.total),
	    o->gpu_util, CG_GIB(cg.weights), CG_GIB(cg.kv), cg.n,
	    (long long)(clock_ms() - t0));
	return (0);
}

const char *
fv_cudagpu_check(void)
{
	size_t		 soff, rows;
	int64_t		 bad, t0 = clock_us();
	uint64_t	 got, want;
	int		 rc;

	if (!cg.on)
		return (NULL);
	cg.checks++;
	cg.error[0] = '\0';
	for (int i = 0; i < cg.n && cg.error[0] == '\0'; i++) {
		if (!cg.a[i].weights || cg.a[i].dptr == 0)
			continue;
		/* The sample's place in the page moves with each check. */
		soff = (size_t)((cg.round * 131 + (uint64_t)i * 17) %
		    (CG_PAGE / CG_SAMPLE)) * CG_SAMPLE;
		rows = cg.a[i].size / CG_PAGE;
		if ((rc = fv_cudadrv_gather(&cg.cu, cg.sample, cg.a[i].dptr +
		    soff, CG_PAGE, CG_SAMPLE, rows)) != 0) {
			snprintf(cg.error, sizeof(cg.error), "cannot read the "
			    "weights back (cuMemcpy2D: %s)", cg_strerror(rc));
			break;
		}
		for (size_t r = 0; r < rows; r++) {
			uint64_t off = r * CG_PAGE + soff;

			bad = fv_pattern_find(cg.sample + r * CG_SAMPLE,
			    CG_SAMPLE, cg.seed, (uint32_t)i, off);
			if (bad < 0)
				continue;
			off += (uint64_t)bad;
			memcpy(&got, cg.sample + r * CG_SAMPLE + bad,
			    sizeof(got));
			want = fv_pattern_word(cg.seed, (uint32_t)i, off);
			snprintf(cg.error, sizeof(cg.error), "the weights are "
			    "corrupt: allocation %d (%zu MiB), byte %" PRIu64
			    " holds 0x%016" PRIx64 ", expected 0x%016" PRIx64,
			    i, cg.a[i].size / CG_MIB, off, got, want);
			break;
		}
	}
	cg.round++;
	cg.check_us = clock_us() - t0;
	if (cg.error[0] == '\0')
		return (NULL);
	cg.failures++;
	log_warnx("weights pattern check failed: %s", cg.error);
	return (cg.error);
}

/* Why the weights cannot be used (a failed check), or NULL. */
const char *
fv_cudagpu_error(void)
{
	return (cg.on && cg.error[0] != '\0' ? cg.error : NULL);
}

int
fv_cudagpu_sleep(int level, char **cause)
{
	size_t	moved = 0, freed = cg_bytes(1, 0);
	int64_t	t0 = clock_ms();
	int	rc, i;

	if (!cg.on)
		return (0);
	for (i = 0; level == 1 && i < cg.n; i++) {
		if (!cg.a[i].weights || cg.a[i].dptr == 0)
			continue;
		if ((rc = cg.cu.MemAllocHost(&cg.a[i].host,
		    cg.a[i].size)) != 0 || (rc = cg.cu.MemcpyDtoH(
		    cg.a[i].host, cg.a[i].dptr, cg.a[i].size)) != 0) {
			xasprintf(cause, "cannot offload the weights to host "
			    "memory (%s)", cg_strerror(rc));
			/* Nothing was freed yet: undo the copies. */
			for (int k = 0; k <= i; k++) {
				if (cg.a[k].host != NULL)
					cg.cu.MemFreeHost(cg.a[k].host);
				cg.a[k].host = NULL;
			}
			return (-1);
		}
		moved += cg.a[i].size;
	}
	for (i = 0; i < cg.n; i++)
		cg_unmap(i);
	cg.error[0] = '\0';
	cg.sleep_ms = clock_ms() - t0;
	log_info("CUDA sleep level=%d offloaded_gib=%.2f freed_gib=%.2f "
	    "ms=%lld gb_per_s=%.2f", level, CG_GIB(moved), CG_GIB(freed),
	    (long long)cg.sleep_ms, cg.sleep_ms > 0 ? (double)moved / 1e6 /
	    (double)cg.sleep_ms : 0.0);
	return (0);
}

/*
 * Map the TAGS (FV_TAG_WEIGHTS, FV_TAG_KV) again and copy offloaded
 * weights back: -1 when memory is short (what was mapped here is freed
 * again), -2 when the weights came back damaged (cause says how).
 */
int
fv_cudagpu_wake(int tags, char **cause)
{
	size_t	moved = 0;
	int64_t	t0 = clock_ms();
	int	rc, i, copied = 0, *now;

	if (!cg.on)
		return (0);
	now = xcalloc((size_t)cg.n, sizeof(*now));
	for (i = 0; i < cg.n; i++) {
		if (!(tags & (cg.a[i].weights ? FV_TAG_WEIGHTS : FV_TAG_KV)) ||
		    cg.a[i].dptr != 0)
			continue;
		if (cg_map(i, cause) != 0) {
			/* Give back what this wake took: still asleep. */
			for (int k = 0; k < i; k++)
				if (now[k])
					cg_unmap(k);
			free(now);
			return (-1);
		}
		now[i] = 1;
	}
	free(now);
	for (i = 0; i < cg.n; i++) {
		if (cg.a[i].host == NULL || cg.a[i].dptr == 0)
			continue;
		if ((rc = cg.cu.MemcpyHtoD(cg.a[i].dptr, cg.a[i].host,
		    cg.a[i].size)) != 0) {
			xasprintf(cause, "cannot copy the weights back "
			    "(cuMemcpyHtoD: %s)", cg_strerror(rc));
			return (-1);
		}
		cg.cu.MemFreeHost(cg.a[i].host);
		cg.a[i].host = NULL;
		moved += cg.a[i].size;
		copied = 1;
	}
	cg.wake_ms = clock_ms() - t0;
	log_info("CUDA wake tags=%d restored_gib=%.2f device_gib=%.2f ms=%lld "
	    "gb_per_s=%.2f", tags, CG_GIB(moved), CG_GIB(cg_bytes(1, 0)),
	    (long long)cg.wake_ms, cg.wake_ms > 0 ? (double)moved / 1e6 /
	    (double)cg.wake_ms : 0.0);
	if (copied && fv_cudagpu_check() != NULL) {
		xasprintf(cause, "%s", cg.error);
		return (-2);
	}
	return (0);
}

/* reload_weights: the pattern written again, and checked. */
int
fv_cudagpu_reload(char **cause)
{
	int64_t	t0 = clock_ms();

	if (!cg.on)
		return (0);
	for (int i = 0; i < cg.n; i++)
		if (cg.a[i].weights && cg_map(i, cause) != 0)
			return (-1);
	if (cg_write_weights(cause) != 0)
		return (-1);
	cg.reload_ms = clock_ms() - t0;
	log_info("CUDA reload weights_gib=%.2f ms=%lld", CG_GIB(cg.weights),
	    (long long)cg.reload_ms);
	if (fv_cudagpu_check() != NULL) {
		xasprintf(cause, "%s", cg.error);
		return (-2);
	}
	return (0);
}

void
fv_cudagpu_state(struct fv_state *st)
{
	st->gpu_mode = cg.on ? FV_GPU_CUDA : FV_GPU_NONE;
	if (!cg.on)
		return;
	snprintf(st->gpu_name, sizeof(st->gpu_name), "%s", cg.cu.name);
	snprintf(st->gpu_error, sizeof(st->gpu_error), "%s", cg.error);
	st->gpu_total = (int64_t)cg.cu.total;
	st->gpu_claim = (int64_t)cg.claim;
	st->gpu_weights = (int64_t)cg.weights;
	st->gpu_kv = (int64_t)cg.kv;
	st->gpu_device = (int64_t)cg_bytes(1, 0);
	st->gpu_host = (int64_t)cg_bytes(0, 1);
	st->gpu_checks = (int64_t)cg.checks;
	st->gpu_failures = (int64_t)cg.failures;
	st->gpu_sleep_ms = cg.sleep_ms;
	st->gpu_wake_ms = cg.wake_ms;
	st->gpu_reload_ms = cg.reload_ms;
	st->gpu_check_us = cg.check_us;
}
