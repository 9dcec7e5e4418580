/*
 * main.c -- llmux-supervisord: options, then the configuration. With
 * --check-config it judges the file and exits; otherwise the supervisor
 * runs (supervisor.c) until SIGTERM.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "version.h"
#include "supervisord/store/store.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/criu/criu.h"

#define SUPERVISOR_CONFIG	"/etc/llmux/llmux.yaml"

static void
usage(FILE *f)
{
	fprintf(f, "usage: llmux-supervisord [-nv] [-c FILE] [--check-config] "
	    "[--socket PATH]\n"
	    "  -c, --config FILE   the configuration (default %s)\n"
	    "  -n, --check-config  check the configuration, then exit\n"
	    "      --socket PATH   the supervisor socket (or LLMUX_SOCKET)\n"
	    "  -v, --verbose       more logging (repeat for debug)\n"
	    "      --help          this text\n"
	    "      --version       the version\n", SUPERVISOR_CONFIG);
}

/*
 * What this machine lacks for the GPU strategies the config uses (the
 * CUDA driver's checkpoint API, a CRIU new enough): warnings, since the
 * supervisor runs without them (those evictions escalate to stop).
 */
static void
main_check_machine(const struct config *cfg, const char *path)
{
	char	why[1024];

	if (gpu_check_config(cfg, why, sizeof(why)) != 0)
		fprintf(stderr, "%s: warning: %s\n", path, why);
	if (criu_check_config(cfg, why, sizeof(why)) != 0)
		fprintf(stderr, "%s: warning: %s\n", path, why);
	if (store_check_config(cfg, why, sizeof(why)) != 0)
		fprintf(stderr, "%s: warning: %s\n", path, why);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct config_diags	 diags;
	struct supervisor_opts	 opts;
	struct config		*cfg;
	const char		*path = SUPERVISOR_CONFIG, *sock;
	int			 ch, check = 0, verbose = 0;

	sock = getenv("LLMUX_SOCKET");
	while ((ch = getopt_long(argc, argv, "c:nv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'S':
			sock = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return (0);
		case 'V':
			printf("llmux-supervisord %s\n", LLMUX_VERSION);
			return (0);
		default:
			usage(stderr);
			return (1);
		}
	}
	if (optind != argc) {
		usage(stderr);
		return (1);
	}
	log_init("llmux-supervisord", verbose);

	cfg = config_load(path, check ? CONFIG_CHECK : CONFIG_RUN, &diags);
	config_diags_print(&diags, path, stderr);
	config_diags_free(&diags);
	if (cfg == NULL)
		return (1);
	if (check) {
		main_check_machine(cfg, path);
		printf("configuration OK\n");
		config_free(cfg);
		return (0);
	}
	/* --socket or LLMUX_SOCKET win over the file's supervisor_socket. */
	opts.config_path = path;
	opts.socket_path = sock;
	opts.verbose = verbose;
	return (supervisor_main(cfg, &opts));
}
