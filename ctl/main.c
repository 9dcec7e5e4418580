/*
 * main.c -- llmuxctl, the operator's command line: global options, then
 * one command from the verb table (verbs.c) over the supervisor's socket.
 */
#include <getopt.h>
#include <signal.h>
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
	int			 ch, rc;

	/* A closed socket is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	memset(&ctl, 0, sizeof(ctl));
	ctl.cl.fd = -1;
	env = getenv("LLMUX_SOCKET");
	ctl.socket = env != NULL && *env != '\0' ? env : CTL_DEFAULT_SOCKET;
	/* Options stop at the command: its own options are its business. */
	while ((ch = getopt_long(argc, argv, "+s:jh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.socket = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			verbs_usage(stdout);
			return (CTL_EXIT_OK);
		case 'V':
			printf("llmuxctl %s\n", LLMUX_VERSION);
			return (CTL_EXIT_OK);
		default:
			verbs_usage(stderr);
			return (CTL_EXIT_USAGE);
		}
	}
	if (optind >= argc) {
		verbs_usage(stderr);
		return (CTL_EXIT_USAGE);
	}
	if ((v = verbs_find(argv[optind])) == NULL) {
		fprintf(stderr, "llmuxctl: unknown command '%s' (llmuxctl help "
		    "lists them)\n", argv[optind]);
		return (CTL_EXIT_USAGE);
	}
	rc = verbs_run(&ctl, v, argc - optind - 1, argv + optind + 1);
	if (ctl.connected)
		client_close(&ctl.cl);
	return (rc);
}
