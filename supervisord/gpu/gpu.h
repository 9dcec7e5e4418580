/*
 * gpu.h -- supervisord/gpu/, the map of the GPU module: the CUDA driver's
 * checkpoint API (cuda.c), NVML telemetry (nvml.c), where a suspended
 * model is restored (gpu_place.c), and the module itself (gpu.c:
 * telemetry, status, metrics; gpu_ops.c: suspend, resume and measurements
 * on worker threads), which the engine, criu/ and control/ call. The unit
 * tests use the first three without a GPU. Both libraries are loaded with
 * dlopen, once per process, and only the types and functions used are
 * declared here, with the driver's layouts (cuda.h, nvml.h).
 */
#ifndef LLMUX_GPU_H
#define LLMUX_GPU_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "supervisord/core.h"

struct body;

#define GPU_MAX			64	/* GPUs on one machine */
#define GPU_MAX_PROCS		1024	/* processes listed per GPU */
#define GPU_NAME_MAX		96	/* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define GPU_UUID_MAX		96	/* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define GPU_DRIVER_MAX		80	/* NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE */
#define GPU_TELEMETRY_MS	2000	/* how often NVML is read for status */
/*
 * A change of telemetry that viewers are told of (gpu_hooks.changed): at
 * least GPU_NEWS_MIN_BYTES and at least 1 % (of a GPU's total, of a
 * model's larger figure), so that noise does not flood the event stream.
 */
#define GPU_NEWS_MIN_BYTES	(64ull << 20)

/* The CUDA driver API version the checkpoint API needs (driver 570). */
#define CUDA_MIN_VERSION	12080

/* ---- nvml.c: what NVML says about the GPUs ----------------------------- */

struct gpu_proc {
	pid_t		 pid;
	uint64_t	 bytes;		/* its memory on this GPU */
	char		 model[128];	/* whose it is; gpu.c fills it in */
};

struct gpu_info {
	unsigned	 index;		/* NVML's, the PCI bus order */
	char		 name[GPU_NAME_MAX];
	char		 uuid[GPU_UUID_MAX];
	uint64_t	 total;
	uint64_t	 used;
	uint64_t	 free;
	struct gpu_proc	*procs;
	size_t		 nprocs;
};

struct gpu_snapshot {
	char		 driver[GPU_DRIVER_MAX];	/* "570.86.15" */
	struct gpu_info	*v;
	size_t		 n;
	int64_t		 taken_ms;
};

/* Load NVML once (path, or LLMUX_NVML_LIBRARY); -1 with the reason. */
int	 nvml_open(const char *path, char *err, size_t errlen);
int	 nvml_snapshot(struct gpu_snapshot *, char *err, size_t errlen);
void	 nvml_snapshot_free(struct gpu_snapshot *);
void	 nvml_snapshot_copy(struct gpu_snapshot *,
	    const struct gpu_snapshot *);
/* The GPU with this UUID, or NULL. */
const struct gpu_info *nvml_snapshot_find(const struct gpu_snapshot *,
	    const char *uuid);
/* Bytes a set of pids holds over every GPU. */
uint64_t nvml_snapshot_bytes(const struct gpu_snapshot *, const pid_t *,
	    size_t);

/* ---- cuda.c: the driver's checkpoint API ------------------------------- */

/* CUprocessState, with a value of ours for "no answer". */
enum cuda_pstate {
	CUDA_RUNNING = 0,
	CUDA_LOCKED = 1,
	CUDA_CHECKPOINTED = 2,
	CUDA_FAILED = 3,
	CUDA_UNKNOWN = -1,
};

/* One GPU of a process mapped to another at restore. */
struct cuda_pair {
	unsigned char	 from[16];
	unsigned char	 to[16];
};

/* How one process's suspend or resume went. */
struct cuda_outcome {
	bool		 ok;
	bool		 failed_state;	/* the process is in FAILED */
	bool		 lock_timeout;	/* the lock timed out, still running */
	int64_t		 ms;
	char		 reason[384];
};

/* Load the driver once (path, or LLMUX_CUDA_LIBRARY), check it, cuInit. */
int	 cuda_open(const char *path, char *err, size_t errlen);
/* The driver's API version (12080 for 12.8), 0 before cuda_open. */
int	 cuda_driver_version(void);
const char *cuda_pstate_name(int);
int	 cuda_get_state(pid_t, enum cuda_pstate *, char *err, size_t errlen);
/* lock (timeout_ms) + checkpoint, checking the state before and after. */
void	 cuda_suspend_pid(pid_t, unsigned timeout_ms, struct cuda_outcome *);
/* restore (onto pairs, if any) + unlock, checking the state likewise. */
void	 cuda_resume_pid(pid_t, const struct cuda_pair *, size_t,
	    struct cuda_outcome *);
/* "GPU-8f6b1a2c-..." to the driver's 16 bytes; -1 if malformed. */
int	 cuda_uuid_parse(const char *, unsigned char out[16]);

/* ---- gpu_place.c: where a suspended model is restored ------------------ */

/* What a suspended model held on one GPU. */
struct gpu_need {
	char		 uuid[GPU_UUID_MAX];
	char		 name[GPU_NAME_MAX];
	unsigned	 index;
	uint64_t	 bytes;
};

/* What a suspended model's processes held, for its resume. */
struct gpu_saved_entry {
	pid_t		 pid;
	bool		 has_gpu;	/* NVML said where (else /proc did) */
	struct gpu_need	 gpu;
};

struct gpu_saved {
	struct gpu_saved_entry	*v;
	size_t			 n;
};

enum gpu_place_result {
	GPU_PLACE_HOME,		/* its own GPUs have room: restore there */
	GPU_PLACE_MOVED,	/* onto other GPUs of the same kind */
	GPU_PLACE_NO_ROOM,	/* nowhere: restore at home, it may fail */
};

/*
 * Choose the GPU (an index into snap->v) each need is restored on: at home
 * when every home GPU has room, else, when allowed, each GPU that lacks
 * room is replaced by a GPU of the same name, none of the model's own,
 * with room (the lowest index first). why says what was found.
 */
enum gpu_place_result gpu_place(const struct gpu_need *, size_t n,
	    const struct gpu_snapshot *, bool allow, int *map, char *why,
	    size_t whylen);

/* ---- gpu.c, gpu_ops.c: CUDA suspend and NVML telemetry ----------------- */

/* How a suspend or resume went (the callback may take saved). */
struct gpu_result {
	bool		  ok;
	bool		  failed_state;	/* a process is in CUDA's FAILED state */
	const char	 *reason;
	bool		  moved;	/* restored onto other GPUs */
	uint64_t	  gpus;		/* where the model is now; 0: unknown */
	const char	 *detail;	/* "GPU 0 -> GPU 1", or why not */
	struct gpu_saved *saved;	/* suspend: where each process was */
};
typedef void	(*gpu_cb)(struct gpu_result *, void *);
typedef void	(*gpu_measure_cb)(bool ok, uint64_t mib, void *);

/*
 * News that goes up, through the table supervisor.c sets in
 * sup->gpu_hooks (each may be NULL, as may the table): the telemetry
 * differs from what was last told in what a viewer shows (a GPU's memory
 * used, a model's GPU memory or GPUs; changes under GPU_NEWS_MIN_BYTES or
 * 1 % are not news), or it appeared or went away. gpu_news_body says what
 * it is now.
 */
struct gpu_hooks {
	void	(*changed)(struct supervisor *);
};

void	 gpu_init(struct supervisor *);
void	 gpu_free(struct supervisor *);
/*
 * Read NVML again now (after a suspend, a resume, the end of a sleep, a
 * wake or a stop): one read at a time, so one that is out is followed by
 * one more when it ends.
 */
void	 gpu_refresh(struct supervisor *);
/*
 * Read NVML now, on a worker thread: cb gets the GPUs (NULL when the read
 * failed) on the loop, unless the supervisor is going away. -1, without a
 * call, where NVML is known to be missing.
 */
typedef void	(*gpu_read_cb)(struct supervisor *,
		    const struct gpu_snapshot *, void *);
int	 gpu_read(struct supervisor *, gpu_read_cb, void *);
/* Can CUDA suspend run here? Loads the driver (blocks: not in the loop). */
bool	 gpu_available(const struct config *, char *why, size_t);
/* --check-config: -1 with a warning when a model needs what is missing. */
int	 gpu_check_config(const struct config *, char *why, size_t);
/*
 * The model's processes are the caller's to name (the engine's
 * process_members: the leader first, at most GPU_MAX_PROCS are used).
 * Lock + checkpoint every GPU process of the model, in parallel.
 */
int	 gpu_suspend(struct model *, const pid_t *, size_t, gpu_cb, void *);
/* Restore + unlock them; maybe onto other GPUs (gpu.allow_migration). */
int	 gpu_resume(struct model *, const pid_t *, size_t, gpu_cb, void *);
/* GPU memory the model's processes hold now, MiB (NVML). */
void	 gpu_measure(struct model *, const pid_t *, size_t, gpu_measure_cb,
	    void *);
void	 gpu_saved_free(struct gpu_saved *);
/* From the last telemetry: status "gpus", a model's GPUs, metrics. */
void	 gpu_status_body(struct supervisor *, struct body *);
uint64_t gpu_model_gpus(struct supervisor *, const struct model *,
	    uint64_t *bytes);
const char *gpu_telemetry_error(struct supervisor *);
char	*gpu_metrics_text(struct supervisor *);
/*
 * The `gpu` event's data, from the last telemetry: {gpus: null or [{index,
 * memory_used_bytes, memory_total_bytes}], models: {name:
 * {gpu_memory_bytes, gpus}}}; with_model_gpus false leaves each model's
 * gpus out (null), to keep the data under the protocol's limit.
 */
void	 gpu_news_body(struct supervisor *, struct body *,
	    bool with_model_gpus);

#endif
