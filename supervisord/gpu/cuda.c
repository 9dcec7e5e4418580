/*
 * cuda.c -- the CUDA driver's checkpoint API, loaded with dlopen: lock and
 * checkpoint a process's GPU state into host memory (freeing its GPU
 * memory), and restore and unlock it, the way the cuda-checkpoint tool
 * does it but from inside the supervisor (no external binary, no sudo).
 *
 * The library is loaded once per process (gpu.cuda_library, or
 * LLMUX_CUDA_LIBRARY for tests); every function used must be there and
 * the driver's API version must be 12.8 or later (driver 570), where
 * restore can remap GPUs; what is missing is named in one line. Each
 * step's state is read before and after (cuCheckpointProcessGetState):
 * a lock that times out leaves the process running, and a process found
 * in the FAILED state is reported as such, so the caller stops it and
 * starts it afresh. The calls block; gpu_ops.c runs them on threads.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hex.h"
#include "supervisord/gpu/gpu.h"

/* The driver's types, as cuda.h lays them out. */
typedef int cuda_result_t;			/* CUresult */
#define CUDA_SUCCESS		0
#define CUDA_ERROR_TIMEOUT	909

struct cuda_lock_args {				/* CUcheckpointLockArgs */
	unsigned int	timeout_ms;
	unsigned int	reserved0;
	uint64_t	reserved1[7];
};

struct cuda_checkpoint_args {			/* CUcheckpointCheckpointArgs */
	uint64_t	reserved[8];
};

struct cuda_restore_args {			/* CUcheckpointRestoreArgs */
	struct cuda_pair *pairs;
	unsigned int	 npairs;
	char		 reserved[52 - sizeof(struct cuda_pair *)];
	uint64_t	 reserved1;
};

struct cuda_unlock_args {			/* CUcheckpointUnlockArgs */
	uint64_t	reserved[8];
};

static struct {
	pthread_mutex_t	 mtx;
	bool		 tried;
	bool		 ok;
	char		 err[512];
	void		*handle;
	int		 version;
	cuda_result_t	(*init)(unsigned int);
	cuda_result_t	(*driver_version)(int *);
	cuda_result_t	(*error_name)(cuda_result_t, const char **);
	cuda_result_t	(*get_state)(int, int *);
	cuda_result_t	(*lock)(int, struct cuda_lock_args *);
	cuda_result_t	(*checkpoint)(int, struct cuda_checkpoint_args *);
	cuda_result_t	(*restore)(int, struct cuda_restore_args *);
	cuda_result_t	(*unlock)(int, struct cuda_unlock_args *);
} cuda = { .mtx = PTHREAD_MUTEX_INITIALIZER };

_Static_assert(sizeof(struct cuda_lock_args) == 64, "CUcheckpointLockArgs");
_Static_assert(sizeof(struct cuda_restore_args) == 64,
    "CUcheckpointRestoreArgs");
_Static_assert(sizeof(struct cuda_pair) == 32, "CUcheckpointGpuPair");

static const char *
cuda_error(cuda_result_t rc, char *buf, size_t len)
{
	const char	*name = NULL;

	if (cuda.error_name != NULL && cuda.error_name(rc, &name) ==
	    CUDA_SUCCESS && name != NULL)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "CUresult %d", rc);
	return (buf);
}

/* dlopen, the symbols, the version and cuInit; with cuda.lock held. */
static void
cuda_load(const char *path)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} syms[] = {
#define SYM(n, f) { n, offsetof(__typeof__(cuda), f) }
		SYM("cuInit", init),
		SYM("cuDriverGetVersion", driver_version),
		SYM("cuCheckpointProcessGetState", get_state),
		SYM("cuCheckpointProcessLock", lock),
		SYM("cuCheckpointProcessCheckpoint", checkpoint),
		SYM("cuCheckpointProcessRestore", restore),
		SYM("cuCheckpointProcessUnlock", unlock),
#undef SYM
	};
	char		 missing[300] = "", ebuf[64];
	void		*f;
	cuda_result_t	 rc;
	size_t		 o = 0;

	if ((cuda.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(cuda.err, sizeof(cuda.err), "cannot load %s (%s)",
		    path, dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if ((f = dlsym(cuda.handle, syms[i].name)) == NULL) {
			if (o < sizeof(missing))
				o += (size_t)snprintf(missing + o,
				    sizeof(missing) - o, "%s%s", o ? ", " : "",
				    syms[i].name);
			continue;
		}
		memcpy((char *)&cuda + syms[i].off, &f, sizeof(f));
	}
	*(void **)&cuda.error_name = dlsym(cuda.handle, "cuGetErrorName");
	if (cuda.driver_version != NULL &&
	    cuda.driver_version(&cuda.version) != CUDA_SUCCESS)
		cuda.version = 0;
	if (missing[0] != '\0') {
		snprintf(cuda.err, sizeof(cuda.err), "the CUDA driver %s "
		    "(API %d.%d) lacks %s: CUDA suspend needs driver 570 or "
		    "later (CUDA 12.8)", path, cuda.version / 1000,
		    cuda.version % 1000 / 10, missing);
		return;
	}
	if (cuda.version < CUDA_MIN_VERSION) {
		snprintf(cuda.err, sizeof(cuda.err), "the CUDA driver %s has "
		    "API %d.%d: CUDA suspend needs driver 570 or later (CUDA "
		    "12.8)", path, cuda.version / 1000, cuda.version % 1000 / 10);
		return;
	}
	if ((rc = cuda.init(0)) != CUDA_SUCCESS) {
		snprintf(cuda.err, sizeof(cuda.err), "cuInit failed: %s",
		    cuda_error(rc, ebuf, sizeof(ebuf)));
		return;
	}
	cuda.ok = true;
}

int
cuda_open(const char *path, char *err, size_t errlen)
{
	const char	*env = getenv("LLMUX_CUDA_LIBRARY");
	int		 rc;

	if (env != NULL && *env != '\0')
		path = env;
	if (path == NULL)
		path = "libcuda.so.1";
	pthread_mutex_lock(&cuda.mtx);
	if (!cuda.tried) {
		cuda.tried = true;
		cuda_load(path);
	}
	rc = cuda.ok ? 0 : -1;
	if (!cuda.ok)
		snprintf(err, errlen, "%s", cuda.err);
	pthread_mutex_unlock(&cuda.mtx);
	return (rc);
}

int
cuda_driver_version(void)
{
	int	v;

	pthread_mutex_lock(&cuda.mtx);
	v = cuda.ok ? cuda.version : 0;
	pthread_mutex_unlock(&cuda.mtx);
	return (v);
}

const char *
cuda_pstate_name(int s)
{
	switch (s) {
	case CUDA_RUNNING:
		return ("RUNNING");
	case CUDA_LOCKED:
		return ("LOCKED");
	case CUDA_CHECKPOINTED:
		return ("CHECKPOINTED");
	case CUDA_FAILED:
		return ("FAILED");
	default:
		return ("UNKNOWN");
	}
}

int
cuda_get_state(pid_t pid, enum cuda_pstate *st, char *err, size_t errlen)
{
	cuda_result_t	rc;
	int		s = -1;
	char		ebuf[64];

	*st = CUDA_UNKNOWN;
	if (!cuda.ok) {
		snprintf(err, errlen, "the CUDA driver is not loaded");
		return (-1);
	}
	if ((rc = cuda.get_state((int)pid, &s)) != CUDA_SUCCESS) {
		snprintf(err, errlen, "cannot read the CUDA state of process "
		    "%d: %s", (int)pid, cuda_error(rc, ebuf, sizeof(ebuf)));
		return (-1);
	}
	*st = s >= CUDA_RUNNING && s <= CUDA_FAILED ? (enum cuda_pstate)s :
	    CUDA_UNKNOWN;
	return (0);
}

/* The state now, or UNKNOWN; says so in o when it is FAILED. */
static enum cuda_pstate
cuda_check(pid_t pid, struct cuda_outcome *o)
{
	enum cuda_pstate	st;
	char			err[128];

	if (cuda_get_state(pid, &st, err, sizeof(err)) != 0)
		return (CUDA_UNKNOWN);
	if (st == CUDA_FAILED)
		o->failed_state = true;
	return (st);
}

static void
cuda_fail(struct cuda_outcome *o, int64_t t0, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cuda_fail(struct cuda_outcome *o, int64_t t0, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
	va_end(ap);
	o->ok = false;
	o->ms = clock_ms() - t0;
}

static void
cuda_ok(struct cuda_outcome *o, int64_t t0)
{
	o->ok = true;
	o->ms = clock_ms() - t0;
}

/*
 * The state a suspend or resume starts from; false, with why in o, when
 * it cannot be read or is FAILED.
 */
static bool
cuda_begin(pid_t pid, struct cuda_outcome *o, int64_t t0,
    enum cuda_pstate *st)
{
	char	err[192];

	memset(o, 0, sizeof(*o));
	if (cuda_get_state(pid, st, err, sizeof(err)) != 0) {
		cuda_fail(o, t0, "%s", err);
		return (false);
	}
	if (*st == CUDA_FAILED) {
		o->failed_state = true;
		cuda_fail(o, t0, "process %d is in the CUDA FAILED state",
		    (int)pid);
		return (false);
	}
	return (true);
}

/* Is the process in state want after its step? If not, o says so. */
static bool
cuda_expect(pid_t pid, struct cuda_outcome *o, int64_t t0,
    enum cuda_pstate want, const char *step)
{
	enum cuda_pstate	st;

	if ((st = cuda_check(pid, o)) == want)
		return (true);
	cuda_fail(o, t0, "process %d is %s after its %s, not %s", (int)pid,
	    cuda_pstate_name(st), step, cuda_pstate_name(want));
	return (false);
}

void
cuda_suspend_pid(pid_t pid, unsigned timeout_ms, struct cuda_outcome *o)
{
	struct cuda_lock_args		 la;
	struct cuda_checkpoint_args	 ca;
	struct cuda_unlock_args		 ua;
	enum cuda_pstate		 st;
	cuda_result_t			 rc;
	int64_t				 t0 = clock_ms(), t;
	char				 ebuf[64];

	if (!cuda_begin(pid, o, t0, &st))
		return;
	switch (st) {
	case CUDA_CHECKPOINTED:
		cuda_ok(o, t0);		/* already suspended */
		return;
	case CUDA_RUNNING:
		memset(&la, 0, sizeof(la));
		la.timeout_ms = timeout_ms;
		t = clock_ms();
		if ((rc = cuda.lock((int)pid, &la)) != CUDA_SUCCESS) {
			st = cuda_check(pid, o);
			o->lock_timeout = st == CUDA_RUNNING;
			cuda_fail(o, t0, "lock of process %d failed after %lld "
			    "ms: %s (%s)", (int)pid, (long long)(clock_ms() -
			    t), cuda_error(rc, ebuf, sizeof(ebuf)),
			    st == CUDA_RUNNING ? "it is left running" :
			    cuda_pstate_name(st));
			return;
		}
		break;
	case CUDA_LOCKED:
		break;			/* locked by an earlier attempt */
	default:
		cuda_fail(o, t0, "process %d is in an unknown CUDA state",
		    (int)pid);
		return;
	}
	if (!cuda_expect(pid, o, t0, CUDA_LOCKED, "lock"))
		return;
	memset(&ca, 0, sizeof(ca));
	if ((rc = cuda.checkpoint((int)pid, &ca)) != CUDA_SUCCESS) {
		st = cuda_check(pid, o);
		if (st == CUDA_LOCKED) {
			memset(&ua, 0, sizeof(ua));
			if (cuda.unlock((int)pid, &ua) == CUDA_SUCCESS)
				st = cuda_check(pid, o);
		}
		cuda_fail(o, t0, "checkpoint of process %d failed: %s (it is "
		    "%s)", (int)pid, cuda_error(rc, ebuf, sizeof(ebuf)),
		    cuda_pstate_name(st));
		return;
	}
	if (cuda_expect(pid, o, t0, CUDA_CHECKPOINTED, "checkpoint"))
		cuda_ok(o, t0);
}

void
cuda_resume_pid(pid_t pid, const struct cuda_pair *pairs, size_t npairs,
    struct cuda_outcome *o)
{
	struct cuda_restore_args	 ra;
	struct cuda_unlock_args		 ua;
	enum cuda_pstate		 st;
	cuda_result_t			 rc;
	int64_t				 t0 = clock_ms();
	char				 ebuf[64];

	if (!cuda_begin(pid, o, t0, &st))
		return;
	switch (st) {
	case CUDA_RUNNING:
		cuda_ok(o, t0);		/* nothing to resume */
		return;
	case CUDA_CHECKPOINTED:
		memset(&ra, 0, sizeof(ra));
		ra.pairs = npairs > 0 ? (struct cuda_pair *)pairs : NULL;
		ra.npairs = (unsigned int)npairs;
		if ((rc = cuda.restore((int)pid, &ra)) != CUDA_SUCCESS) {
			st = cuda_check(pid, o);
			cuda_fail(o, t0, "restore of process %d failed: %s (it "
			    "is %s)", (int)pid, cuda_error(rc, ebuf,
			    sizeof(ebuf)), cuda_pstate_name(st));
			return;
		}
		if (!cuda_expect(pid, o, t0, CUDA_LOCKED, "restore"))
			return;
		break;
	case CUDA_LOCKED:
		break;			/* restored, not yet unlocked */
	default:
		cuda_fail(o, t0, "process %d is in an unknown CUDA state",
		    (int)pid);
		return;
	}
	memset(&ua, 0, sizeof(ua));
	if ((rc = cuda.unlock((int)pid, &ua)) != CUDA_SUCCESS) {
		st = cuda_check(pid, o);
		cuda_fail(o, t0, "unlock of process %d failed: %s (it is %s)",
		    (int)pid, cuda_error(rc, ebuf, sizeof(ebuf)),
		    cuda_pstate_name(st));
		return;
	}
	if (cuda_expect(pid, o, t0, CUDA_RUNNING, "unlock"))
		cuda_ok(o, t0);
}

int
cuda_uuid_parse(const char *s, unsigned char out[16])
{
	size_t	n = 0;
	int	hi, lo;

	if (strncmp(s, "GPU-", 4) == 0 || strncmp(s, "MIG-", 4) == 0)
		s += 4;
	while (*s != '\0') {
		if (*s == '-') {
			s++;
			continue;
		}
		if (n == 16 || (hi = hex_digit(s[0])) < 0 ||
		    (lo = hex_digit(s[1])) < 0)
			return (-1);
		out[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return (n == 16 ? 0 : -1);
}
