/*
 * fuzz_fakevllm_request.c -- llmux-fakevllm's request body decoder
 * (fv_request_parse) on arbitrary bytes. The first byte picks the route:
 * even for /v1/chat/completions, odd for /v1/completions.
 */
#include <stddef.h>
#include <stdint.h>

#include "tools/fakevllm/fakevllm.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fv_genreq	 r;
	const char		*param;
	char			 err[256];
	int			 kind;

	if (size == 0)
		return (0);
	kind = (data[0] & 1) ? FV_COMPLETION : FV_CHAT;
	if (fv_request_parse(&r, kind, (const char *)data + 1, size - 1, err,
	    sizeof(err), &param) == 0)
		fv_request_free(&r);
	return (0);
}
