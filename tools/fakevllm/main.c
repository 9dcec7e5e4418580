/*
 * main.c -- llmux-fakevllm: a stand-in for `vllm serve` that needs no GPU.
 *
 * It answers the OpenAI routes and vLLM's dev-mode sleep/wake routes with
 * vLLM's shapes and semantics, takes realistic (or, with --fake-fast, no)
 * time for each phase, moves memory like a model's weights, and fails on
 * request. The supervisor starts it exactly as it starts vLLM. See
 * docs/fakevllm.md.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fakevllm.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

static pid_t	main_child = -1;

/* SIGTERM or SIGINT: stop the engine process, if any, and exit at once. */
static void
main_signal(evutil_socket_t sig, short events, void *arg)
{
	struct timespec	ts = { 0, 10 * 1000 * 1000 };
	int		i, status;

	log_info("Shutting down signal=%d", (int)sig);
	if (main_child != -1) {
		kill(main_child, SIGTERM);
		for (i = 0; i < 200; i++) {
			if (waitpid(main_child, &status, WNOHANG) == main_child)
				break;
			nanosleep(&ts, NULL);
		}
		if (i == 200) {
			kill(main_child, SIGKILL);
			waitpid(main_child, &status, 0);
		}
	}
	exit(0);
}

static int
main_wants(int argc, char **argv, const char *a, const char *b)
{
	int	i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], a) == 0 || (b != NULL &&
		    strcmp(argv[i], b) == 0))
			return (1);
	return (0);
}

int
main(int argc, char **argv)
{
	struct fv_opts		 opts;
	struct event_base	*base;
	struct event		*ev_term, *ev_int;
	const char		*env;
	char			*cause;
	int			 dev_mode, i;

	if (main_wants(argc, argv, "--version", NULL)) {
		printf("llmux-fakevllm %s\n", LLMUX_VERSION);
		return (0);
	}
	if (main_wants(argc, argv, "--help", "-h")) {
		fv_args_usage();
		return (0);
	}
	env = getenv("LLMUX_DEBUG");
	log_init("llmux-fakevllm", env != NULL && *env != '\0');

	fv_args_defaults(&opts);
	if (fv_args_parse(&opts, argc, argv, &cause) != 0) {
		fprintf(stderr, "llmux-fakevllm: %s\n", cause);
		free(cause);
		fv_args_free(&opts);
		fv_args_usage();
		return (2);
	}
	env = getenv("VLLM_SERVER_DEV_MODE");
	dev_mode = (env != NULL && atoi(env) != 0);
	if (opts.api_key == NULL && (env = getenv("VLLM_API_KEY")) != NULL &&
	    *env != '\0')
		opts.api_key = xstrdup(env);

	log_info("vLLM API server (llmux-fakevllm) version=%s model=%s "
	    "served_model_name=%s host=%s port=%d dev_mode=%d sleep_mode=%d "
	    "engine_process=%d pid=%ld", LLMUX_VERSION, opts.model,
	    opts.names[0], opts.host, opts.port, dev_mode, opts.sleep_mode,
	    opts.engine_process, (long)getpid());
	log_info("timings startup_ms=%lld sleep_level1_ms=%lld "
	    "sleep_level2_ms=%lld wake_ms=%lld reload_ms=%lld token_ms=%lld "
	    "weights_mb=%lld", (long long)opts.startup_ms,
	    (long long)opts.sleep1_ms, (long long)opts.sleep2_ms,
	    (long long)opts.wake_ms, (long long)opts.reload_ms,
	    (long long)opts.token_ms, (long long)opts.weights_mb);
	for (i = 0; i < opts.nignored; i++)
		log_info("option ignored by the stand-in option=\"%s\"",
		    opts.ignored[i]);
	if (dev_mode)
		log_warnx("Running in dev mode: the sleep, wake_up and "
		    "collective_rpc routes are exposed.");

	signal(SIGPIPE, SIG_IGN);
	if (fv_server_bind(&opts, &cause) != 0) {
		log_warnx("%s", cause);
		free(cause);
		fv_args_free(&opts);
		return (1);
	}
	if (opts.engine_process)
		main_child = fv_channel_fork(&opts, fv_server.fd);

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	fv_server_init(base, &opts, dev_mode, opts.admin);
	ev_term = evsignal_new(base, SIGTERM, main_signal, NULL);
	ev_int = evsignal_new(base, SIGINT, main_signal, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	if (opts.engine_process) {
		fv_server.engine_pid = main_child;
		fv_channel_parent_start(base);
	} else {
		fv_channel_inproc();
		fv_engine_init(base, &opts);
		fv_engine_start();
	}
	event_base_dispatch(base);
	return (0);
}
