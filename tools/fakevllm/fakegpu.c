/*
 * fakegpu.c -- the fake-GPU hook: with --fake-gpu-dir DIR --fake-gpu-mb N
 * the stand-in "holds GPU memory" in a state directory that the test
 * suite's fake libcuda.so and libnvidia-ml.so (tests/fakes/) read and
 * change, so that llmux's GPU module can be tested without a GPU.
 *
 * At engine start each tensor-parallel rank is registered as a GPU
 * process holding N MiB on its GPU (CUDA_VISIBLE_DEVICES[rank], else the
 * rank): rank 0 is the engine process itself, ranks 1.. are helper
 * processes it forks ("VLLM::Worker_TPn"), so a TP>1 model has several
 * GPU processes, as vLLM has. A GPU without room fails the start with
 * vLLM's "CUDA out of memory". Each rank's file reads
 *
 *     DIR/proc.PID:   gpu=0 mib=1000 state=running owner=APIPID
 *
 * and the fake driver moves `state` through locked, checkpointed and
 * failed (and `gpu` on a restore onto another GPU). While any rank is not
 * running, generation fails with an explicit 500, as a locked CUDA
 * process would block. While the weights sleep a rank holds only a
 * context's worth. The engine's sleep state is kept in DIR/vllm.APIPID
 * for the fake criu, which brings a dumped model back in that state with
 * --fake-restore-state. None of this exists without --fake-gpu-dir.
 * Every change is made under flock(DIR/lock). docs/gpu.md has the format.
 */
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakevllm.h"
#include "log.h"
#include "xmalloc.h"

#define FAKEGPU_MAX_RANKS	64
#define FAKEGPU_CONTEXT_MB(mb)	((mb) / 50 > 0 ? (mb) / 50 : 1)

static struct {
	char		*dir;
	int64_t		 mb;
	pid_t		 owner;
	int		 n;
	pid_t		 pid[FAKEGPU_MAX_RANKS];
	int		 gpu[FAKEGPU_MAX_RANKS];
	struct timespec	 mtime[FAKEGPU_MAX_RANKS];
	char		 state[FAKEGPU_MAX_RANKS][16];
	char		 note[128];
	int		 asleep;
	char		 why[256];
} fg;

int
fv_fakegpu_parse_state(const char *s, struct fv_gpustate *st)
{
	memset(st, 0, sizeof(*st));
	if (sscanf(s, "level=%d,tags=%d,discarded=%d,nccl=%d,paused=%d",
	    &st->level, &st->tags, &st->discarded, &st->nccl,
	    &st->paused) != 5)
		return (-1);
	if (st->level < 0 || st->level > 2 || st->tags < 0 || st->tags > 3)
		return (-1);
	return (0);
}

static int
fakegpu_lock(void)
{
	char	*path;
	int	 fd;

	xasprintf(&path, "%s/lock", fg.dir);
	fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
	free(path);
	if (fd != -1)
		flock(fd, LOCK_EX);
	return (fd);
}

static void
fakegpu_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}

static char *
fakegpu_read(const char *name)
{
	char	*path, *buf;
	FILE	*f;
	size_t	 n;

	xasprintf(&path, "%s/%s", fg.dir, name);
	f = fopen(path, "r");
	free(path);
	if (f == NULL)
		return (NULL);
	buf = xcalloc(1, 4096);
	n = fread(buf, 1, 4095, f);
	buf[n] = '\0';
	fclose(f);
	return (buf);
}

static void
fakegpu_write(const char *name, const char *text)
{
	char	*path, *tmp;
	FILE	*f;

	xasprintf(&path, "%s/%s", fg.dir, name);
	xasprintf(&tmp, "%s/.%s.%d", fg.dir, name, (int)getpid());
	if ((f = fopen(tmp, "w")) != NULL) {
		fputs(text, f);
		fclose(f);
		chmod(tmp, 0666);
		if (rename(tmp, path) != 0)
			log_warn("fake GPU: cannot write %s", path);
	}
	free(path);
	free(tmp);
}

/* MiB that GPU gpu has in all, and in use by live processes and others. */
static int
fakegpu_room(int gpu, int64_t *total, int64_t *used)
{
	char		*text, *line, *save = NULL, name[64];
	DIR		*dir;
	struct dirent	*de;
	long long	 t, mib;
	int		 g, i = 0, pid;
	char		 state[32], path[512];

	*total = -1;
	*used = 0;
	if ((text = fakegpu_read("gpus")) == NULL)
		return (-1);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#')
			continue;
		if (i++ == gpu && sscanf(line, "%63s %lld", name, &t) == 2)
			*total = t;
	}
	free(text);
	if (*total < 0)
		return (-1);
	snprintf(path, sizeof(path), "extra.%d", gpu);
	if ((text = fakegpu_read(path)) != NULL) {
		*used += atoll(text);
		free(text);
	}
	if ((dir = opendir(fg.dir)) == NULL)
		return (0);
	while ((de = readdir(dir)) != NULL) {
		if (sscanf(de->d_name, "proc.%d", &pid) != 1 ||
		    kill(pid, 0) != 0)
			continue;
		if ((text = fakegpu_read(de->d_name)) == NULL)
			continue;
		if (sscanf(text, "gpu=%d mib=%lld state=%31s", &g, &mib,
		    state) == 3 && g == gpu && strcmp(state,
		    "checkpointed") != 0)
			*used += mib;
		free(text);
	}
	closedir(dir);
	return (0);
}

static void
fakegpu_write_rank(int r, int64_t mib, const char *state)
{
	char	name[64], text[256];

	snprintf(name, sizeof(name), "proc.%d", (int)fg.pid[r]);
	snprintf(text, sizeof(text), "gpu=%d mib=%lld state=%s owner=%d\n",
	    fg.gpu[r], (long long)mib, state, (int)fg.owner);
	fakegpu_write(name, text);
}

static void __attribute__((noreturn))
fakegpu_worker(int rank)
{
	char	name[32];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The kernel keeps 15 bytes of it, as it does of vLLM's. */
	snprintf(name, sizeof(name), "VLLM::Worker_TP%d", rank);
	prctl(PR_SET_NAME, name);
	closefrom(3);
	for (;;)
		pause();
}

int
fv_fakegpu_start(struct fv_opts *o)
{
	const char	*cvd = getenv("CUDA_VISIBLE_DEVICES");
	int		 visible[FAKEGPU_MAX_RANKS], nvis = 0, fd, r;
	int64_t		 total, used;
	char		*copy, *tok, *save = NULL;
	pid_t		 pid;

	if (o->gpu_dir == NULL)
		return (0);
	fg.dir = o->gpu_dir;
	fg.mb = o->gpu_mb;
	fg.owner = o->engine_process ? getppid() : getpid();
	if (cvd != NULL) {
		copy = xstrdup(cvd);
		for (tok = strtok_r(copy, ",", &save); tok != NULL &&
		    nvis < FAKEGPU_MAX_RANKS; tok = strtok_r(NULL, ",", &save))
			visible[nvis++] = atoi(tok);
		free(copy);
	}
	fg.n = o->tp > 0 && o->tp <= FAKEGPU_MAX_RANKS ? o->tp : 1;
	fd = fakegpu_lock();
	for (r = 0; r < fg.n; r++) {
		fg.gpu[r] = r < nvis ? visible[r] : r;
		if (fakegpu_room(fg.gpu[r], &total, &used) != 0) {
			log_warnx("fake GPU: no GPU %d in %s/gpus", fg.gpu[r],
			    fg.dir);
			fakegpu_unlock(fd);
			return (-1);
		}
		if (total - used < fg.mb) {
			log_warnx("CUDA out of memory. Tried to allocate %lld "
			    "MiB on GPU %d: %lld MiB total, %lld MiB free",
			    (long long)fg.mb, fg.gpu[r], (long long)total,
			    (long long)(total - used));
			fakegpu_unlock(fd);
			return (-1);
		}
	}
	for (r = 0; r < fg.n; r++) {
		if (r == 0)
			pid = getpid();
		else if ((pid = fork()) == 0)
			fakegpu_worker(r);
		else if (pid == -1) {
			log_warn("fake GPU: fork");
			fakegpu_unlock(fd);
			return (-1);
		}
		fg.pid[r] = pid;
		snprintf(fg.state[r], sizeof(fg.state[r]), "running");
		fakegpu_write_rank(r, fg.mb, "running");
		log_info("fake GPU process registered rank=%d pid=%d gpu=%d "
		    "mib=%lld", r, (int)pid, fg.gpu[r], (long long)fg.mb);
	}
	fakegpu_unlock(fd);
	return (0);
}

/* The state of rank r, read again only when its file changed. */
static const char *
fakegpu_state(int r)
{
	struct stat	 st;
	char		 name[64], path[PATH_MAX], *text, *p;

	snprintf(path, sizeof(path), "%s/proc.%d", fg.dir, (int)fg.pid[r]);
	if (stat(path, &st) != 0)
		return ("gone");
	if (st.st_mtim.tv_sec != fg.mtime[r].tv_sec ||
	    st.st_mtim.tv_nsec != fg.mtime[r].tv_nsec ||
	    fg.state[r][0] == '\0') {
		snprintf(name, sizeof(name), "proc.%d", (int)fg.pid[r]);
		if ((text = fakegpu_read(name)) != NULL &&
		    (p = strstr(text, "state=")) != NULL) {
			sscanf(p + 6, "%15s", fg.state[r]);
			fg.mtime[r] = st.st_mtim;
		}
		free(text);
	}
	return (fg.state[r]);
}

const char *
fv_fakegpu_blocked(void)
{
	const char	*st;

	for (int r = 0; r < fg.n && fg.dir != NULL; r++) {
		if (strcmp(st = fakegpu_state(r), "running") == 0)
			continue;
		snprintf(fg.why, sizeof(fg.why), "the CUDA state of GPU "
		    "process %d (rank %d) is %s: a locked or checkpointed "
		    "CUDA process cannot run kernels", (int)fg.pid[r], r, st);
		return (fg.why);
	}
	return (NULL);
}

/* Rewrite each rank's memory, keeping the state the driver gave it. */
static void
fakegpu_set_mib(int64_t mib)
{
	char	name[64], *text, state[32];
	int	fd = fakegpu_lock();

	for (int r = 0; r < fg.n; r++) {
		snprintf(name, sizeof(name), "proc.%d", (int)fg.pid[r]);
		if ((text = fakegpu_read(name)) == NULL)
			continue;
		if (sscanf(text, "gpu=%d mib=%*d state=%31s", &fg.gpu[r],
		    state) == 2)
			fakegpu_write_rank(r, mib, state);
		free(text);
	}
	fakegpu_unlock(fd);
}

void
fv_fakegpu_note(const struct fv_state *st)
{
	char	name[64], text[128];
	int	asleep;

	if (fg.dir == NULL)
		return;
	snprintf(text, sizeof(text), "level=%d,tags=%d,discarded=%d,nccl=%d,"
	    "paused=%d\n", st->level, st->tags, st->discarded,
	    st->nccl_suspended, st->paused);
	if (strcmp(text, fg.note) == 0)
		return;
	snprintf(fg.note, sizeof(fg.note), "%s", text);
	snprintf(name, sizeof(name), "vllm.%d", (int)fg.owner);
	fakegpu_write(name, text);
	/* Asleep, the weights and KV cache leave the GPU: a context stays. */
	asleep = (st->tags & FV_TAG_WEIGHTS) != 0;
	if (asleep != fg.asleep) {
		fg.asleep = asleep;
		fakegpu_set_mib(asleep ? FAKEGPU_CONTEXT_MB(fg.mb) : fg.mb);
	}
}
