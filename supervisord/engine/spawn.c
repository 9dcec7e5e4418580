/*
 * spawn.c -- how a model process is made: its argv and environment (pure
 * functions of the config, unit-tested), and the child's setup between
 * fork and exec, in a fixed order: default signals, own session and
 * process group, cgroup, stdio, then (as root) groups, gid and uid dropped
 * with libcap-ng, then no_new_privs, then exec. Any failure in the child is
 * written to a close-on-exec pipe, so the parent knows the start failed
 * and why; exec closing the pipe means success.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmalloc.h"
#include "supervisord/engine/engine.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

size_t
spawn_strv_len(char *const *v)
{
	size_t	n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return (n);
}

void
spawn_strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Append s (taken) to a NULL-terminated vector of n elements. */
static char **
spawn_strv_push(char **v, size_t *n, char *s)
{
	v = xreallocarray(v, *n + 2, sizeof(*v));
	v[(*n)++] = s;
	v[*n] = NULL;
	return (v);
}

/* Do args name the option opt, as "opt VALUE" or "opt=VALUE"? */
bool
spawn_names_option(char *const *args, const char *opt)
{
	size_t	len = strlen(opt);

	for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
		if (strncmp(args[i], opt, len) == 0 &&
		    (args[i][len] == '\0' || args[i][len] == '='))
			return (true);
	}
	return (false);
}

bool
spawn_names_served_model(char *const *args)
{
	return (spawn_names_option(args, "--served-model-name"));
}

const char *
spawn_served_name(const struct model_config *mc)
{
	static const char	opt[] = "--served-model-name";
	char			**a = mc->extra_args;

	for (size_t i = 0; a != NULL && a[i] != NULL; i++) {
		if (strcmp(a[i], opt) == 0 && a[i + 1] != NULL)
			return (a[i + 1]);
		if (strncmp(a[i], opt, sizeof(opt) - 1) == 0 &&
		    a[i][sizeof(opt) - 1] == '=')
			return (a[i] + sizeof(opt));
	}
	return (mc->name);
}

/*
 * vllm_command serve MODEL_PATH --port PORT [--host 127.0.0.1]
 * --enable-sleep-mode [--served-model-name NAME ALIAS...] EXTRA_ARGS...
 * vLLM binds every address unless told: loopback, unless extra_args
 * name a host (--check-config warns).
 */
char **
spawn_argv(const struct config *conf, const struct model_config *mc)
{
	char	**v = NULL;
	size_t	  n = 0;
	char	 *port;

	v = spawn_strv_push(v, &n, xstrdup(conf->vllm_command));
	v = spawn_strv_push(v, &n, xstrdup("serve"));
	v = spawn_strv_push(v, &n, xstrdup(mc->model_path));
	v = spawn_strv_push(v, &n, xstrdup("--port"));
	xasprintf(&port, "%u", (unsigned)mc->port);
	v = spawn_strv_push(v, &n, port);
	if (!spawn_names_option(mc->extra_args, "--host")) {
		v = spawn_strv_push(v, &n, xstrdup("--host"));
		v = spawn_strv_push(v, &n, xstrdup("127.0.0.1"));
	}
	v = spawn_strv_push(v, &n, xstrdup("--enable-sleep-mode"));
	/* Every alias too: the proxy forwards the body as the client sent it. */
	if (!spawn_names_served_model(mc->extra_args)) {
		v = spawn_strv_push(v, &n, xstrdup("--served-model-name"));
		v = spawn_strv_push(v, &n, xstrdup(mc->name));
		for (size_t i = 0; i < mc->n_aliases; i++)
			v = spawn_strv_push(v, &n, xstrdup(mc->aliases[i]));
	}
	for (size_t i = 0; i < mc->n_extra_args; i++)
		v = spawn_strv_push(v, &n, xstrdup(mc->extra_args[i]));
	return (v);
}

/* Set KEY=VALUE in an environment vector, replacing any KEY=. */
static char **
spawn_env_put(char **v, size_t *n, const char *kv)
{
	const char	*eq = strchr(kv, '=');
	size_t		 klen = eq != NULL ? (size_t)(eq - kv) : strlen(kv);

	for (size_t i = 0; i < *n; i++) {
		if (strncmp(v[i], kv, klen) == 0 && v[i][klen] == '=') {
			free(v[i]);
			v[i] = xstrdup(kv);
			return (v);
		}
	}
	return (spawn_strv_push(v, n, xstrdup(kv)));
}

/* Variables of ours that a model must not inherit. */
static bool
spawn_env_private(const char *kv)
{
	static const char *drop[] = {
		"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
		"WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
		"LLMUX_SOCKET", NULL
	};

	for (size_t i = 0; drop[i] != NULL; i++) {
		size_t	len = strlen(drop[i]);

		if (strncmp(kv, drop[i], len) == 0 && kv[len] == '=')
			return (true);
	}
	return (false);
}

/*
 * A model with `gpus:` sees those GPUs only, numbered as NVML numbers them
 * (the PCI bus order, which CUDA follows with CUDA_DEVICE_ORDER=PCI_BUS_ID;
 * its own default puts the fastest first).
 */
static char **
spawn_env_gpus(char **v, size_t *n, const struct model_config *mc)
{
	char	*list = NULL, *kv, *next;

	if (mc->n_gpus == 0 || mc->gpus == NULL)
		return (v);
	for (size_t i = 0; i < mc->n_gpus; i++) {
		xasprintf(&next, "%s%s%d", list != NULL ? list : "",
		    list != NULL ? "," : "", mc->gpus[i]);
		free(list);
		list = next;
	}
	v = spawn_env_put(v, n, "CUDA_DEVICE_ORDER=PCI_BUS_ID");
	xasprintf(&kv, "CUDA_VISIBLE_DEVICES=%s", list);
	v = spawn_env_put(v, n, kv);
	free(kv);
	free(list);
	return (v);
}

/*
 * The supervisor's environment without its private variables, then
 * VLLM_SERVER_DEV_MODE=1 (enables /sleep, /wake_up, /collective_rpc,
 * /reset_prefix_cache) and NO_COLOR=1, then CUDA_VISIBLE_DEVICES and
 * CUDA_DEVICE_ORDER for a model with `gpus:`, then for CRIU models
 * UV_USE_IO_URING=0 and USE_LIBUV=0 (CRIU cannot dump io_uring), then the
 * model's own env:, which wins.
 */
char **
spawn_envp(char *const *base, const struct model_config *mc, bool criu)
{
	char	**v = NULL;
	size_t	  n = 0;

	v = xcalloc(1, sizeof(*v));
	for (size_t i = 0; base != NULL && base[i] != NULL; i++) {
		if (strchr(base[i], '=') == NULL || spawn_env_private(base[i]))
			continue;
		v = spawn_env_put(v, &n, base[i]);
	}
	v = spawn_env_put(v, &n, "VLLM_SERVER_DEV_MODE=1");
	v = spawn_env_put(v, &n, "NO_COLOR=1");
	v = spawn_env_gpus(v, &n, mc);
	if (criu) {
		v = spawn_env_put(v, &n, "UV_USE_IO_URING=0");
		v = spawn_env_put(v, &n, "USE_LIBUV=0");
	}
	for (size_t i = 0; i < mc->n_env && mc->env[i] != NULL; i++)
		if (strchr(mc->env[i], '=') != NULL)
			v = spawn_env_put(v, &n, mc->env[i]);
	return (v);
}

/* In the child: report why the start failed, and exit. */
static void __attribute__((noreturn))
spawn_child_fail(int fd, const char *what, int err)
{
	char	msg[512];
	int	n;

	if (err != 0)
		n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	else
		n = snprintf(msg, sizeof(msg), "%s", what);
	if (n > 0)
		(void)!write(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n :
		    sizeof(msg) - 1);
	_exit(127);
}

/* In the child: everything between fork and exec. */
static void __attribute__((noreturn))
spawn_child(const struct spawn_spec *sp, int errfd)
{
	sigset_t	set;
	int		devnull, caps;

	/* Signals as a fresh process has them (ours are blocked/ignored). */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);

	if (setsid() == -1)
		spawn_child_fail(errfd, "setsid", errno);
	if (sp->cgroup_fd != -1 && write(sp->cgroup_fd, "0", 1) != 1)
		spawn_child_fail(errfd, "joining the model's cgroup", errno);

	if ((devnull = open("/dev/null", O_RDONLY)) == -1)
		spawn_child_fail(errfd, "open /dev/null", errno);
	if (dup2(devnull, STDIN_FILENO) == -1 ||
	    dup2(sp->out_fd, STDOUT_FILENO) == -1 ||
	    dup2(sp->out_fd, STDERR_FILENO) == -1)
		spawn_child_fail(errfd, "dup2", errno);
	/* Everything else closes at exec; errfd already does. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != errfd)
				(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

	if (sp->drop) {
		/* Groups, gid, uid: in that order, all capabilities gone. */
		capng_clear(CAPNG_SELECT_BOTH);
		caps = capng_change_id((int)sp->uid, (int)sp->gid,
		    CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
		if (caps != 0)
			spawn_child_fail(errfd, "dropping privileges "
			    "(capng_change_id) failed", errno);
		if (getuid() != sp->uid || geteuid() != sp->uid ||
		    getgid() != sp->gid || getegid() != sp->gid ||
		    getgroups(0, NULL) != 0)
			spawn_child_fail(errfd, "dropping privileges did not "
			    "take effect", 0);
		if (sp->uid != 0 && setuid(0) != -1)
			spawn_child_fail(errfd, "privileges could be regained "
			    "after dropping them", 0);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		spawn_child_fail(errfd, "prctl(PR_SET_NO_NEW_PRIVS)", errno);

	execvpe(sp->argv[0], sp->argv, sp->envp);
	{
		char	what[300];

		snprintf(what, sizeof(what), "cannot run %s", sp->argv[0]);
		spawn_child_fail(errfd, what, errno);
	}
}

pid_t
spawn_exec(const struct spawn_spec *sp, char *err, size_t errlen)
{
	int	pfd[2], status;
	pid_t	pid;
	char	msg[512];
	ssize_t	n;
	size_t	len = 0;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return (-1);
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return (-1);
	}
	if (pid == 0) {
		close(pfd[0]);
		spawn_child(sp, pfd[1]);
	}
	close(pfd[1]);
	/* Returns at exec (the pipe closes) or when the child failed. */
	for (;;) {
		n = read(pfd[0], msg + len, sizeof(msg) - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(msg) - 1)
			break;
	}
	close(pfd[0]);
	if (len == 0)
		return (pid);
	msg[len] = '\0';
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	snprintf(err, errlen, "%s", msg);
	return (-1);
}
