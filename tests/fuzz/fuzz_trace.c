/*
 * fuzz_trace.c -- llmux-sim's trace reader on arbitrary bytes: it must
 * accept or reject every input with a message, never crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/sim/trace.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct trace	 t;
	char		*cause = NULL;
	FILE		*f;

	if (len == 0 || (f = fmemopen((void *)data, len, "r")) == NULL)
		return (0);
	if (trace_read(f, &t, &cause) == 0) {
		if (t.n == 0 || t.n_models == 0 || t.n_models > TRACE_MAX_MODELS)
			abort();
		for (size_t i = 1; i < t.n; i++) {
			if (t.req[i].arrival_ms < t.req[i - 1].arrival_ms ||
			    t.req[i].model < 0 ||
			    (size_t)t.req[i].model >= t.n_models)
				abort();
		}
		trace_free(&t);
	} else {
		if (cause == NULL)
			abort();
		free(cause);
	}
	fclose(f);
	return (0);
}
