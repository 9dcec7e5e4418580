/*
 * fuzz_model.c -- libFuzzer target for the model extraction of request
 * bodies: the input (after a first byte that chooses chunk sizes) is a
 * body; fed whole and fed in chunks it must give the same answer and the
 * same model, and a model found is always a valid name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyd/model.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static enum model_result
fuzz_model_run(const uint8_t *buf, size_t len, size_t step, char *name)
{
	struct model_parser	*mp;
	enum model_result	 r = MODEL_MORE;
	size_t			 off = 0, n;

	mp = model_parser_new();
	while (off < len && r == MODEL_MORE) {
		n = step == 0 ? len - off : step;
		if (n > len - off)
			n = len - off;
		r = model_parser_feed(mp, buf + off, n);
		off += n;
		/* Vary the chunk size as a client's writes would. */
		if (step != 0)
			step = step % 7 + 1;
	}
	if (r == MODEL_MORE)
		r = model_parser_finish(mp);
	name[0] = '\0';
	if (r == MODEL_FOUND) {
		const char *s = model_parser_name(mp);

		if (!model_name_valid(s, strlen(s)))
			abort();
		strcpy(name, s);
	} else if (model_parser_name(mp) != NULL ||
	    model_parser_error(mp) == NULL)
		abort();
	model_parser_free(mp);
	return (r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char			whole[MODEL_NAME_MAX + 1];
	char			split[MODEL_NAME_MAX + 1];
	enum model_result	a, b;

	if (size < 1)
		return (0);
	a = fuzz_model_run(data + 1, size - 1, 0, whole);
	b = fuzz_model_run(data + 1, size - 1, (size_t)data[0] % 13 + 1,
	    split);
	if (a != b || strcmp(whole, split) != 0)
		abort();
	return (0);
}
