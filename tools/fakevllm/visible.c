/*
 * visible.c -- which GPUs the stand-in was given, as /fake/state reports
 * them: CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER from its environment
 * (null when unset), so a test can see where the supervisor placed it.
 */
#include <stdlib.h>

#include <event2/buffer.h>

#include "fakevllm.h"

static void
visible_var(struct evbuffer *b, const char *key, const char *name)
{
	const char	*v = getenv(name);

	evbuffer_add_printf(b, ",\"%s\":", key);
	if (v != NULL)
		fv_json_cstring(b, v);
	else
		evbuffer_add_printf(b, "null");
}

void
fv_visible_json(struct evbuffer *b)
{
	visible_var(b, "cuda_visible_devices", "CUDA_VISIBLE_DEVICES");
	visible_var(b, "cuda_device_order", "CUDA_DEVICE_ORDER");
}
