/*
 * fakegpu.h -- what the fake libcuda.so, libnvidia-ml.so and criu share:
 * the fake GPU state directory ($LLMUX_FAKE_GPU_DIR), as documented in
 * docs/gpu.md ("What the fakes imitate"):
 *
 *     gpus          one GPU a line: UUID TOTAL_MIB NAME...
 *     driver        "570.86.15 12080": NVML's version and the CUDA API's
 *     proc.PID      a GPU process: gpu=G mib=N state=S owner=APIPID
 *     vllm.APIPID   llmux-fakevllm's sleep state, for the fake criu
 *     extra.G       MiB of GPU G held by something outside llmux
 *     fault.NAME    an armed fault: N (the next N times) or -1 (always)
 *     calls         every driver call, one a line, appended
 *     lock          flock()ed around every change
 *
 * Header-only (static functions): each fake is one file of its own.
 */
#ifndef LLMUX_FAKEGPU_H
#define LLMUX_FAKEGPU_H

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FG_MAX_GPUS	64
/* Not every fake uses every helper. */
#define FG_FN	static __attribute__((unused))

struct fg_gpu {
	char		uuid[96];
	char		name[96];
	long long	total_mib;
};

struct fg_proc {
	int		pid;
	int		gpu;
	long long	mib;
	char		state[32];
	int		owner;
};

FG_FN const char *
fg_dir(void)
{
	const char	*d = getenv("LLMUX_FAKE_GPU_DIR");

	return (d != NULL && *d != '\0' ? d : NULL);
}

FG_FN int
fg_path(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

FG_FN int
fg_path(char *buf, size_t len, const char *fmt, ...)
{
	char	name[256];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	n = snprintf(buf, len, "%s/%s", fg_dir() != NULL ? fg_dir() : ".",
	    name);
	return (n > 0 && (size_t)n < len ? 0 : -1);
}

/* A whole small file, NUL-terminated, or NULL. */
FG_FN char *
fg_read(const char *name)
{
	char	 path[1024], *buf;
	FILE	*f;
	size_t	 n;

	if (fg_path(path, sizeof(path), "%s", name) != 0 ||
	    (f = fopen(path, "r")) == NULL)
		return (NULL);
	if ((buf = calloc(1, 65536)) == NULL) {
		fclose(f);
		return (NULL);
	}
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return (buf);
}

FG_FN int
fg_write(const char *name, const char *text)
{
	char	 path[1024], tmp[1100];
	FILE	*f;

	if (fg_path(path, sizeof(path), "%s", name) != 0)
		return (-1);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	if ((f = fopen(tmp, "w")) == NULL)
		return (-1);
	fputs(text, f);
	if (fclose(f) != 0) {
		unlink(tmp);
		return (-1);
	}
	chmod(tmp, 0666);
	return (rename(tmp, path));
}

FG_FN int
fg_lock(void)
{
	char	path[1024];
	int	fd;

	if (fg_path(path, sizeof(path), "lock") != 0)
		return (-1);
	if ((fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0666)) != -1)
		flock(fd, LOCK_EX);
	return (fd);
}

FG_FN void
fg_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}

FG_FN int
fg_gpus(struct fg_gpu *v, int max)
{
	char	*text, *line, *save = NULL;
	int	 n = 0, off;

	if ((text = fg_read("gpus")) == NULL)
		return (-1);
	for (line = strtok_r(text, "\n", &save); line != NULL && n < max;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#' || *line == '\0')
			continue;
		if (sscanf(line, "%95s %lld %n", v[n].uuid, &v[n].total_mib,
		    &off) < 2)
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%s", line + off);
		n++;
	}
	free(text);
	return (n);
}

FG_FN int
fg_proc_read(int pid, struct fg_proc *p)
{
	char	name[64], *text;
	int	rc = -1;

	snprintf(name, sizeof(name), "proc.%d", pid);
	if ((text = fg_read(name)) == NULL)
		return (-1);
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	if (sscanf(text, "gpu=%d mib=%lld state=%31s owner=%d", &p->gpu,
	    &p->mib, p->state, &p->owner) >= 3)
		rc = 0;
	free(text);
	return (rc);
}

FG_FN int
fg_proc_write(const struct fg_proc *p)
{
	char	name[64], text[256];

	snprintf(name, sizeof(name), "proc.%d", p->pid);
	snprintf(text, sizeof(text), "gpu=%d mib=%lld state=%s owner=%d\n",
	    p->gpu, p->mib, p->state, p->owner);
	return (fg_write(name, text));
}

/* Every live GPU process; dead ones hold nothing, as the driver frees. */
FG_FN int
fg_procs(struct fg_proc *v, int max)
{
	char		 path[1024];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0, pid;

	if (fg_path(path, sizeof(path), ".") != 0 ||
	    (d = opendir(path)) == NULL)
		return (0);
	while ((de = readdir(d)) != NULL && n < max) {
		if (sscanf(de->d_name, "proc.%d", &pid) != 1 ||
		    strstr(de->d_name, ".tmp") != NULL || kill(pid, 0) != 0)
			continue;
		if (fg_proc_read(pid, &v[n]) == 0)
			n++;
	}
	closedir(d);
	return (n);
}

/* MiB in use on GPU g: live processes that hold memory, and others. */
FG_FN long long
fg_used(int g, int except_pid)
{
	struct fg_proc	v[512];
	char		name[64], *text;
	long long	used = 0;
	int		n = fg_procs(v, 512);

	for (int i = 0; i < n; i++)
		if (v[i].gpu == g && v[i].pid != except_pid &&
		    strcmp(v[i].state, "checkpointed") != 0)
			used += v[i].mib;
	snprintf(name, sizeof(name), "extra.%d", g);
	if ((text = fg_read(name)) != NULL) {
		used += atoll(text);
		free(text);
	}
	return (used);
}

/* Take one shot of an armed fault (under the lock). */
FG_FN int
fg_fault(const char *fault)
{
	char	name[128], *text, buf[32];
	long	n;

	snprintf(name, sizeof(name), "fault.%s", fault);
	if ((text = fg_read(name)) == NULL)
		return (0);
	n = strtol(text, NULL, 10);
	free(text);
	if (n == 0)
		return (0);
	if (n > 0) {
		snprintf(buf, sizeof(buf), "%ld\n", n - 1);
		fg_write(name, buf);
	}
	return (1);
}

FG_FN void
fg_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

FG_FN void
fg_log(const char *fmt, ...)
{
	char	path[1024], line[512];
	va_list	ap;
	int	fd;

	if (fg_path(path, sizeof(path), "calls") != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0666)) == -1)
		return;
	dprintf(fd, "%s\n", line);
	close(fd);
}

FG_FN void
fg_driver(char *version, size_t len, int *api)
{
	char	*text;

	snprintf(version, len, "570.86.15");
	*api = 12080;
	if ((text = fg_read("driver")) == NULL)
		return;
	sscanf(text, "%63s %d", version, api);
	free(text);
}

#endif
