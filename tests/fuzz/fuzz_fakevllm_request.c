/*
 * fuzz_fakevllm_request.c -- llmux-fakevllm's request body decoder
 * (fv_request_parse) on arbitrary bytes. The first byte picks the route:
 * with bit 1 set /v1/embeddings, else even for /v1/chat/completions and
 * odd for /v1/completions. Embedding inputs parsed are checked: as many
 * hashes and token counts as inputs, the counts adding up.
 */
#include <stdlib.h>
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
	if (data[0] & 2)
		kind = FV_EMBED;
	else
		kind = (data[0] & 1) ? FV_COMPLETION : FV_CHAT;
	if (fv_request_parse(&r, kind, (const char *)data + 1, size - 1, err,
	    sizeof(err), &param) != 0)
		return (0);
	if (kind == FV_EMBED) {
		uint64_t	sum = 0;

		if (r.n_inputs == 0 || r.n_inputs > FV_EMBED_MAX_INPUTS ||
		    r.input_hash == NULL || r.input_tokens == NULL ||
		    (r.dimensions != -1 && (r.dimensions < 1 ||
		    r.dimensions > FV_EMBED_DIM)))
			abort();
		for (size_t i = 0; i < r.n_inputs; i++)
			sum += r.input_tokens[i];
		if (sum != r.prompt_tokens)
			abort();
	}
	fv_request_free(&r);
	return (0);
}
