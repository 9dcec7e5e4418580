/*
 * main.c -- llmux-sim: run a switch policy over a trace of arrivals in
 * virtual time, through the supervisor's own switcher and policy code.
 *
 *     llmux-sim --trace FILE --policy NAME [--switch-cost S]
 *         [--service-time S] [--max-wait S] [--concurrency N]
 *         [--min-active S] [--json]
 *     llmux-sim --list-policies
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "supervisord/switcher/policy.h"
#include "version.h"

#include "sim.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: llmux-sim --trace FILE --policy NAME [--switch-cost S] "
	    "[--service-time S]\n"
	    "                 [--max-wait S] [--concurrency N] "
	    "[--min-active S] [--json]\n"
	    "       llmux-sim --list-policies\n");
}

/* A number of seconds in [min, max]; whole seconds when whole is set. */
static int
parse_seconds(const char *flag, const char *s, double min, double max,
    bool whole, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v)) {
		fprintf(stderr, "llmux-sim: %s: not a number: %s\n", flag, s);
		return (-1);
	}
	if (v < min || v > max) {
		fprintf(stderr, "llmux-sim: %s: out of range (%g to %g): %s\n",
		    flag, min, max, s);
		return (-1);
	}
	if (whole && v != floor(v)) {
		fprintf(stderr, "llmux-sim: %s: whole seconds only (as the "
		    "config key): %s\n", flag, s);
		return (-1);
	}
	*out = v;
	return (0);
}

static void
print_text(const char *policy, const struct sim_result *r)
{
	printf("policy        %s\n", policy);
	printf("requests      %zu\n", r->requests);
	printf("switches      %zu\n", r->switches);
	printf("switch_time   %.3f s (switching %.3f s, held %.3f s)\n",
	    r->switch_time, (double)r->switching_ms / 1000.0,
	    (double)r->held_ms / 1000.0);
	printf("wall_time     %.3f s (serving %.3f s; idle %.3f s not "
	    "counted)\n", r->wall_time, (double)r->serving_ms / 1000.0,
	    (double)r->idle_ms / 1000.0);
	printf("gpu_fraction  %.4f\n", r->gpu_fraction);
	printf("mean_wait     %.3f s\n", r->mean_wait);
	printf("max_wait      %.3f s\n", r->max_wait);
}

static void
print_json(const char *policy, const struct sim_result *r)
{
	printf("{\"policy\":\"%s\",\"requests\":%zu,\"switches\":%zu,"
	    "\"switch_time\":%.3f,\"wall_time\":%.3f,\"gpu_fraction\":%.4f,"
	    "\"mean_wait\":%.3f,\"max_wait\":%.3f}\n", policy, r->requests,
	    r->switches, r->switch_time, r->wall_time, r->gpu_fraction,
	    r->mean_wait, r->max_wait);
}

int
main(int argc, char **argv)
{
	enum {
		OPT_TRACE = 256, OPT_POLICY, OPT_SWITCH_COST, OPT_SERVICE,
		OPT_MAX_WAIT, OPT_CONCURRENCY, OPT_MIN_ACTIVE, OPT_JSON,
		OPT_LIST, OPT_HELP, OPT_VERSION
	};
	static const struct option longopts[] = {
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "switch-cost", required_argument, NULL, OPT_SWITCH_COST },
		{ "service-time", required_argument, NULL, OPT_SERVICE },
		{ "max-wait", required_argument, NULL, OPT_MAX_WAIT },
		{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
		{ "min-active", required_argument, NULL, OPT_MIN_ACTIVE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "list-policies", no_argument, NULL, OPT_LIST },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	struct sim_options	 o;
	struct sim_result	 r;
	struct trace		 t;
	const char		*trace_path = NULL, *policy = NULL;
	char			*cause;
	bool			 json = false;
	double			 v;
	int			 ch;

	log_init("llmux-sim", 0);
	sim_options_default(&o);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_TRACE:
			trace_path = optarg;
			break;
		case OPT_POLICY:
			policy = optarg;
			break;
		case OPT_SWITCH_COST:
			if (parse_seconds("--switch-cost", optarg, 0, 86400,
			    false, &v) != 0)
				return (1);
			o.switch_cost_ms = llround(v * 1000.0);
			break;
		case OPT_SERVICE:
			if (parse_seconds("--service-time", optarg, 0.001,
			    86400, false, &v) != 0)
				return (1);
			o.service_ms = llround(v * 1000.0);
			break;
		case OPT_MAX_WAIT:
			if (parse_seconds("--max-wait", optarg, 0, 86400, true,
			    &v) != 0)
				return (1);
			o.max_wait_secs = (uint32_t)v;
			break;
		case OPT_MIN_ACTIVE:
			if (parse_seconds("--min-active", optarg, 0, 86400,
			    true, &v) != 0)
				return (1);
			o.min_active_secs = (uint32_t)v;
			break;
		case OPT_CONCURRENCY:
			if (parse_seconds("--concurrency", optarg, 1, 100000,
			    true, &v) != 0)
				return (1);
			o.concurrency = (uint32_t)v;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_LIST:
			for (int i = 0; i < POLICY__COUNT; i++)
				printf("%s\n",
				    policy_type_name((enum policy_type)i));
			return (0);
		case OPT_HELP:
			usage(stdout);
			return (0);
		case OPT_VERSION:
			printf("llmux-sim %s\n", LLMUX_VERSION);
			return (0);
		default:
			if (optopt >= OPT_TRACE && optopt <= OPT_VERSION)
				fprintf(stderr, "llmux-sim: %s needs a value\n",
				    argv[optind - 1]);
			else
				fprintf(stderr, "llmux-sim: unknown option: "
				    "%s\n", argv[optind - 1]);
			usage(stderr);
			return (1);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "llmux-sim: unexpected argument: %s\n",
		    argv[optind]);
		usage(stderr);
		return (1);
	}
	if (trace_path == NULL || policy == NULL) {
		fprintf(stderr, "llmux-sim: --trace and --policy are "
		    "required\n");
		usage(stderr);
		return (1);
	}
	if (policy_type_parse(policy, &o.policy) != 0) {
		fprintf(stderr, "llmux-sim: unknown policy: %s (see "
		    "--list-policies)\n", policy);
		return (1);
	}
	if (trace_load(trace_path, &t, &cause) != 0) {
		fprintf(stderr, "llmux-sim: %s\n", cause);
		free(cause);
		return (1);
	}
	if (sim_run(&t, &o, &r, &cause) != 0) {
		fprintf(stderr, "llmux-sim: %s\n", cause);
		free(cause);
		trace_free(&t);
		return (1);
	}
	if (json)
		print_json(policy, &r);
	else
		print_text(policy, &r);
	trace_free(&t);
	return (0);
}
