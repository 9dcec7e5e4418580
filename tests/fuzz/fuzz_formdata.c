/*
 * fuzz_formdata.c -- libFuzzer target for the model field of
 * multipart/form-data bodies (proxyd/formdata.c, through the model scanner
 * of proxyd/model.c). The first byte chooses chunk sizes, the second the
 * boundary; the rest is the body. Fed whole and fed in chunks of every
 * size it must give the same answer, the same model and the same place
 * for it; a model found is a valid name and is the bytes at that place.
 * It is then rewritten (model_rewrite) to another name: scanned again the
 * body gives that name at the same place, and every other byte is as it
 * was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxyd/model.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *fuzz_boundaries[] = {
	"b", "--==x", "----llmuxB0undary", "a b",
};

struct fuzz_out {
	enum model_result	 r;
	char			 name[MODEL_NAME_MAX + 1];
	struct model_span	 sp;
	const char		*error;
};

static void
fuzz_form_run(const char *ctype, const uint8_t *buf, size_t len, size_t step,
    struct fuzz_out *o)
{
	struct model_parser	*mp;
	size_t			 off = 0, n;

	if ((mp = model_parser_new_type(ctype)) == NULL)
		abort();
	o->r = MODEL_MORE;
	while (off < len && o->r == MODEL_MORE) {
		n = step == 0 ? len - off : step;
		if (n > len - off)
			n = len - off;
		o->r = model_parser_feed(mp, buf + off, n);
		off += n;
		if (step != 0)
			step = step % 11 + 1;
	}
	if (o->r == MODEL_MORE)
		o->r = model_parser_finish(mp);
	memset(&o->sp, 0, sizeof(o->sp));
	o->name[0] = '\0';
	if (o->r == MODEL_FOUND) {
		if (!model_parser_span(mp, &o->sp) || !o->sp.form)
			abort();
		strcpy(o->name, model_parser_name(mp));
	} else if (model_parser_error(mp) == NULL)
		abort();
	o->error = model_parser_error(mp);
	model_parser_free(mp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	 name[] = "org/re-written";
	struct fuzz_out		 whole, split, again;
	struct evbuffer		*b;
	const uint8_t		*body, *out;
	char			 ctype[128];
	size_t			 len, olen, tail;

	if (size < 2)
		return (0);
	snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=\"%s\"",
	    fuzz_boundaries[data[1] % 4]);
	body = data + 2;
	len = size - 2;
	fuzz_form_run(ctype, body, len, 0, &whole);
	fuzz_form_run(ctype, body, len, (size_t)data[0] % 17 + 1, &split);
	if (whole.r != split.r || strcmp(whole.name, split.name) != 0 ||
	    whole.sp.at != split.sp.at || whole.sp.len != split.sp.len)
		abort();
	if (whole.r != MODEL_FOUND)
		return (0);
	if (!model_name_valid(whole.name, strlen(whole.name)) ||
	    whole.sp.at + whole.sp.len > len ||
	    whole.sp.len != strlen(whole.name) ||
	    memcmp(body + whole.sp.at, whole.name, whole.sp.len) != 0)
		abort();

	b = evbuffer_new();
	evbuffer_add(b, body, len);
	if (model_rewrite(b, &whole.sp, name) != 0)
		abort();
	olen = evbuffer_get_length(b);
	out = evbuffer_pullup(b, -1);
	tail = len - whole.sp.at - whole.sp.len;
	if (olen != len - whole.sp.len + strlen(name) ||
	    memcmp(out, body, whole.sp.at) != 0 ||
	    memcmp(out + olen - tail, body + len - tail, tail) != 0)
		abort();
	fuzz_form_run(ctype, out, olen, 0, &again);
	if (again.r != MODEL_FOUND || strcmp(again.name, name) != 0 ||
	    again.sp.at != whole.sp.at)
		abort();
	evbuffer_free(b);
	return (0);
}
