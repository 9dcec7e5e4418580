/*
 * embed.c -- POST /v1/embeddings of a model served with --task embed, in
 * vLLM's (OpenAI's) shape: {"id":"embd-…","object":"list","created",
 * "model","data":[{"index","object":"embedding","embedding"}],"usage"}.
 *
 * A vector is a pure function of its input (its text, or its token ids)
 * and the model's name: FV_EMBED_DIM numbers scaled to length 1, as
 * vLLM normalises a pooled embedding; "dimensions" keeps the first N and
 * scales them again. "encoding_format": "base64" sends each vector as the
 * base64 of its little-endian float32 bytes, which is what the openai
 * clients ask for by default. Embeddings are answered at once, on the API
 * server's side: nothing is generated, so no token timer runs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include "fv_evhtp.h"

#include "fakevllm.h"

void
fv_embed_vector(uint64_t hash, float *v)
{
	uint64_t	x;
	double		d[FV_EMBED_DIM], sum = 0;
	int		k;

	for (k = 0; k < FV_EMBED_DIM; k++) {
		x = fv_generate_mix(hash ^ fv_server.model_hash ^
		    (0x9e3779b97f4a7c15ULL * (uint64_t)(k + 1)));
		/* 53 bits into [-1, 1). */
		d[k] = (double)(x >> 11) / 4503599627370496.0 - 1.0;
		sum += d[k] * d[k];
	}
	sum = sum > 0 ? sqrt(sum) : 1;
	for (k = 0; k < FV_EMBED_DIM; k++)
		v[k] = (float)(d[k] / sum);
}

void
fv_embed_base64(const unsigned char *in, size_t len, char *out)
{
	static const char	 b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i, o = 0;
	uint32_t		 w;

	for (i = 0; i + 2 < len; i += 3) {
		w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64[w >> 18];
		out[o++] = b64[(w >> 12) & 63];
		out[o++] = b64[(w >> 6) & 63];
		out[o++] = b64[w & 63];
	}
	if (i < len) {
		w = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			w |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64[w >> 18];
		out[o++] = b64[(w >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(w >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* One vector of dims numbers, as a JSON list or a base64 string. */
static void
embed_one(struct evbuffer *b, uint64_t hash, int64_t dims, int base64)
{
	float		 v[FV_EMBED_DIM];
	unsigned char	 raw[FV_EMBED_DIM * 4];
	char		 text[((FV_EMBED_DIM * 4 + 2) / 3) * 4 + 1];
	double		 sum = 0;
	uint32_t	 w;
	int64_t		 k;

	fv_embed_vector(hash, v);
	if (dims < FV_EMBED_DIM) {
		for (k = 0; k < dims; k++)
			sum += (double)v[k] * v[k];
		sum = sum > 0 ? sqrt(sum) : 1;
		for (k = 0; k < dims; k++)
			v[k] = (float)(v[k] / sum);
	}
	if (base64) {
		for (k = 0; k < dims; k++) {
			memcpy(&w, &v[k], 4);
			raw[4 * k] = (unsigned char)w;
			raw[4 * k + 1] = (unsigned char)(w >> 8);
			raw[4 * k + 2] = (unsigned char)(w >> 16);
			raw[4 * k + 3] = (unsigned char)(w >> 24);
		}
		fv_embed_base64(raw, (size_t)dims * 4, text);
		evbuffer_add_printf(b, "\"%s\"", text);
		return;
	}
	evbuffer_add(b, "[", 1);
	for (k = 0; k < dims; k++)
		evbuffer_add_printf(b, "%s%.9g", k ? "," : "", (double)v[k]);
	evbuffer_add(b, "]", 1);
}

void
fv_embed_handle(evhtp_request_t *req, int64_t t0)
{
	struct fv_genreq	 r;
	struct evbuffer		*b;
	const char		*why;
	size_t			 i;
	int64_t			 dims;

	if (fv_openai_request(req, t0, FV_EMBED, &r) != 0)
		return;
	for (i = 0; i < r.n_inputs; i++) {
		if (r.input_tokens[i] <= (uint32_t)fv_server.opts->max_model_len)
			continue;
		fv_server_error(req, t0, 400, "BadRequestError", NULL,
		    "This model's maximum context length is %d tokens. However, "
		    "you requested %u tokens in the input for embedding "
		    "generation. Please reduce the length of the input.",
		    fv_server.opts->max_model_len, r.input_tokens[i]);
		fv_request_free(&r);
		return;
	}
	if (fv_server.engine.paused || fv_server.engine.tags != 0) {
		fv_server_error(req, t0, 503, "ServiceUnavailableError", NULL,
		    "The model is sleeping; call /wake_up first.");
		fv_request_free(&r);
		return;
	}
	/* As for generation: the weights must be there. */
	if ((why = fv_engine_unloaded(&fv_server.engine)) != NULL) {
		fv_server.failed++;
		fv_server_error(req, t0, 500, "InternalServerError", NULL,
		    "%s", why);
		fv_request_free(&r);
		return;
	}
	dims = r.dimensions > 0 ? r.dimensions : FV_EMBED_DIM;
	b = evbuffer_new();
	evbuffer_add_printf(b, "{\"id\":\"embd-%016llx%016llx\",\"object\":"
	    "\"list\",\"created\":%lld,\"model\":",
	    (unsigned long long)fv_server_random(),
	    (unsigned long long)fv_server_random(), (long long)time(NULL));
	fv_json_cstring(b, fv_server.opts->names[0]);
	evbuffer_add_printf(b, ",\"data\":[");
	for (i = 0; i < r.n_inputs; i++) {
		evbuffer_add_printf(b, "%s{\"index\":%zu,\"object\":"
		    "\"embedding\",\"embedding\":", i ? "," : "", i);
		embed_one(b, r.input_hash[i], dims, r.base64);
		evbuffer_add(b, "}", 1);
	}
	evbuffer_add_printf(b, "],\"usage\":{\"prompt_tokens\":%u,"
	    "\"total_tokens\":%u,\"completion_tokens\":0,"
	    "\"prompt_tokens_details\":null}}", r.prompt_tokens,
	    r.prompt_tokens);
	fv_request_free(&r);
	fv_server_reply(req, t0, 200, "application/json", b);
	fv_server.served++;
	evbuffer_free(b);
}
