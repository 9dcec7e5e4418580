/*
 * gpuout.c -- what llmuxctl prints about GPUs: the GPU table under
 * `llmuxctl status` (each GPU's memory and the models' processes on it,
 * from the supervisor's NVML telemetry) and the phases of each row of
 * `llmuxctl validate`.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define MIB	(1024ULL * 1024ULL)

void
gpuout_status(const struct value *gpus)
{
	const struct value	*g, *procs, *p;
	struct table		*t;
	char			 idx[16], used[32], total[32], freem[32];
	char			 who[512];
	size_t			 o;

	if (gpus == NULL || gpus->kind != VALUE_ARRAY || gpus->n == 0)
		return;
	printf("\n");
	t = table_new(6, "GPU", "NAME", "USED_MIB", "TOTAL_MIB", "FREE_MIB",
	    "PROCESSES");
	for (size_t i = 0; i < gpus->n; i++) {
		g = value_at(gpus, i);
		snprintf(idx, sizeof(idx), "%llu", (unsigned long long)
		    value_uint(value_get(g, "index"), 0));
		snprintf(used, sizeof(used), "%llu", (unsigned long long)
		    (value_uint(value_get(g, "memory_used_bytes"), 0) / MIB));
		snprintf(total, sizeof(total), "%llu", (unsigned long long)
		    (value_uint(value_get(g, "memory_total_bytes"), 0) / MIB));
		snprintf(freem, sizeof(freem), "%llu", (unsigned long long)
		    (value_uint(value_get(g, "memory_free_bytes"), 0) / MIB));
		who[0] = '\0';
		o = 0;
		procs = value_get(g, "processes");
		for (size_t j = 0; procs != NULL && j < procs->n &&
		    o < sizeof(who); j++) {
			p = value_at(procs, j);
			o += (size_t)snprintf(who + o, sizeof(who) - o,
			    "%s%s:%llu(%llu MiB)", o ? " " : "",
			    value_str(value_get(p, "model"), "-"),
			    (unsigned long long)value_uint(value_get(p, "pid"),
			    0), (unsigned long long)(value_uint(value_get(p,
			    "memory_bytes"), 0) / MIB));
		}
		table_add(t, idx, value_str(value_get(g, "name"), "?"), used,
		    total, freem, who);
	}
	table_print(t);
	table_free(t);
}

void
gpuout_validate_phases(const struct value *results)
{
	const struct value	*row, *phases, *p;
	const char		*op, *last;
	char			 d[32];

	if (results == NULL || results->n == 0)
		return;
	printf("\nphases:\n");
	for (size_t i = 0; i < results->n; i++) {
		row = value_at(results, i);
		printf("  %s:", value_str(value_get(row, "eviction"), "?"));
		phases = value_get(row, "phases");
		last = NULL;
		for (size_t k = 0; phases != NULL && k < phases->n; k++) {
			p = value_at(phases, k);
			op = value_str(value_get(p, "op"), "?");
			if (last == NULL || strcmp(last, op) != 0)
				printf("%s%s:", last == NULL ? " " : "; ", op);
			else
				printf(",");
			printf(" %s %s%s", value_str(value_get(p, "phase"), "?"),
			    output_duration(value_uint(value_get(p, "ms"), 0), d,
			    sizeof(d)), value_bool(value_get(p, "ok")) ? "" :
			    " (failed)");
			last = op;
		}
		printf("\n");
	}
}
