/*
 * main.c -- llmuxctl, the operator's command line: global options, then
 * one command from the verb table (verbs.c) over the supervisor's socket.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "version.h"

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct ctl_verb	*v;
	struct ctl		 ctl;
	const char		*env;
	char			 bad[256];
	bool			 help = false, version = false;
	int			 ch, i, n, rc;

	/* A closed socket is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	memset(&ctl, 0, sizeof(ctl));
	ctl.cl.fd = -1;
	env = getenv("LLMUX_SOCKET");
	ctl.socket = env != NULL && *env != '\0' ? env : CTL_DEFAULT_SOCKET;
	/*
	 * Options stop at the command: its own options are its business. A
	 * wrong one is reported after all are read, so that --json, wherever
	 * it is, says how.
	 */
	bad[0] = '\0';
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:s:jh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			version = true;
			break;
		case ':':
			if (bad[0] == '\0')
				snprintf(bad, sizeof(bad), "option '%s' needs a "
				    "value", argv[optind - 1]);
			break;
		default:
			if (bad[0] != '\0')
				break;
			if (optopt != 0)
				snprintf(bad, sizeof(bad), "unknown option "
				    "'-%c'", optopt);
			else
				snprintf(bad, sizeof(bad), "unknown option "
				    "'%s'", argv[optind - 1]);
			break;
		}
	}
	/* --json may also follow the command. */
	for (i = optind + 1, n = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			ctl.json = true;
		else
			argv[optind + 1 + n++] = argv[i];
	}
	output_set_json(ctl.json);
	if (bad[0] != '\0') {
		output_error("%s", bad);
		if (!ctl.json)
			verbs_usage(stderr);
		return (CTL_EXIT_USAGE);
	}
	if (help) {
		verbs_usage(stdout);
		return (CTL_EXIT_OK);
	}
	if (version) {
		printf("llmuxctl %s\n", LLMUX_VERSION);
		return (CTL_EXIT_OK);
	}
	if (optind >= argc) {
		if (ctl.json)
			output_error("no command (llmuxctl help lists them)");
		else
			verbs_usage(stderr);
		return (CTL_EXIT_USAGE);
	}
	if ((v = verbs_find(argv[optind])) == NULL) {
		output_error("unknown command '%s' (llmuxctl help lists them)",
		    argv[optind]);
		return (CTL_EXIT_USAGE);
	}
	rc = verbs_run(&ctl, v, n, argv + optind + 1);
	if (ctl.connected)
		client_close(&ctl.cl);
	return (rc);
}
