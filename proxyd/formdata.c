/*
 * formdata.c -- the "model" field of a multipart/form-data body, found by
 * a scanner that keeps its state between the pieces of the body.
 *
 * The body is a preamble, then parts, each opened by a delimiter line
 * ("--" and the boundary; CRLF before it but for the first), its header
 * lines, an empty line and its content, and a last delimiter followed by
 * "--" (RFC 2046 section 5.1.1, RFC 7578). The delimiter "\r\n--BOUNDARY"
 * is matched with its Knuth-Morris-Pratt table, so every byte is looked
 * at once and the work is linear whatever the content (a file part of
 * many megabytes before the model costs a pass over it, most of it by
 * memchr for CR). Only one header line is kept at a time, and of the
 * content only the model's, at most FORMDATA_MAX_VALUE bytes: the memory
 * of a scanner is fixed. Header lines end in CRLF; a part whose
 * Content-Disposition has name="model" (or name=model) holds the model,
 * and the first such part wins.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "formdata.h"
#include "xmalloc.h"

#define FORMDATA_DELIM_MAX	(4 + FORMDATA_MAX_BOUNDARY)

enum formdata_state {
	FD_SEARCH,		/* for a delimiter: preamble, or a part's content */
	FD_DELIM,		/* just after a delimiter */
	FD_DASH,		/* after its first '-': the form ends */
	FD_PAD,			/* white space after a delimiter */
	FD_DELIM_LF,		/* CR after a delimiter */
	FD_HEADER,		/* in a part's header line */
	FD_HEADER_LF,		/* CR in a header line */
};

struct formdata {
	enum formdata_result	 result;
	enum formdata_state	 state;
	const char		*error;
	char			 delim[FORMDATA_DELIM_MAX];	/* CRLF--boundary */
	size_t			 dlen;
	uint8_t			 fail[FORMDATA_DELIM_MAX];	/* KMP table */
	size_t			 matched;	/* bytes of delim matched */
	size_t			 pos;		/* bytes fed before this piece */
	bool			 in_form;	/* a delimiter was seen */
	bool			 is_model;	/* this part is the model */
	bool			 collect;	/* its content is kept in val */
	size_t			 line_len;
	char			 line[FORMDATA_MAX_LINE];
	size_t			 val_at;	/* where the content began */
	size_t			 val_len;	/* bytes in val (delimiter too) */
	char			 val[FORMDATA_MAX_VALUE + FORMDATA_DELIM_MAX];
};

static enum formdata_result
formdata_set(struct formdata *f, enum formdata_result r, const char *error)
{
	if (f->result == FORM_MORE) {
		f->result = r;
		f->error = error;
	}
	return (f->result);
}

static bool
formdata_space(int c)
{
	return (c == ' ' || c == '\t');
}

/*
 * One parameter value of a header (a token or a quoted string), from *p:
 * copied into out (size bytes, NUL-terminated, cut if longer: *cut set).
 */
static void
formdata_param_value(const char **p, const char *end, char *out, size_t size,
    bool *cut)
{
	const char	*s = *p;
	size_t		 n = 0;
	bool		 quoted = s < end && *s == '"';

	*cut = false;
	if (quoted)
		s++;
	while (s < end) {
		if (quoted && *s == '"') {
			s++;
			break;
		}
		if (!quoted && *s == ';')
			break;
		if (quoted && *s == '\\' && s + 1 < end)
			s++;
		if (n + 1 < size)
			out[n++] = *s;
		else
			*cut = true;
		s++;
	}
	/* A token's trailing white space is not part of it. */
	while (!quoted && n > 0 && formdata_space(out[n - 1]))
		n--;
	out[n] = '\0';
	*p = s;
}

/*
 * The parameters after the first ';' of [p, end): calls found for the one
 * named name (case-insensitive), with its value. Returns what found did.
 */
static bool
formdata_param(const char *p, const char *end, const char *name, char *out,
    size_t size, bool *cut)
{
	const char	*n0, *n1;

	while (p < end && *p != ';')
		p++;
	while (p < end) {
		p++;				/* the ';' */
		while (p < end && formdata_space(*p))
			p++;
		n0 = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		n1 = p;
		while (n1 > n0 && formdata_space(n1[-1]))
			n1--;
		if (p >= end || *p == ';')
			continue;		/* a parameter without '=' */
		p++;
		while (p < end && formdata_space(*p))
			p++;
		formdata_param_value(&p, end, out, size, cut);
		if ((size_t)(n1 - n0) == strlen(name) &&
		    strncasecmp(n0, name, (size_t)(n1 - n0)) == 0)
			return (true);
		while (p < end && *p != ';')
			p++;
	}
	return (false);
}

int
formdata_boundary(const char *ct, char out[FORMDATA_MAX_BOUNDARY + 1],
    const char **boundary, size_t *len)
{
	static const char	 type[] = "multipart/form-data";
	const char		*end;
	char			 v[FORMDATA_MAX_BOUNDARY + 2];
	bool			 cut;
	size_t			 n, i;

	if (ct == NULL)
		return (0);
	while (formdata_space(*ct))
		ct++;
	/* Most bodies are JSON: say so at the first byte. */
	if ((*ct | 0x20) != 'm' || strncasecmp(ct, type, sizeof(type) - 1) != 0)
		return (0);
	end = ct + strlen(ct);
	ct += sizeof(type) - 1;
	if (*ct != '\0' && *ct != ';' && !formdata_space(*ct))
		return (0);
	if (!formdata_param(ct, end, "boundary", v, sizeof(v), &cut) || cut)
		return (-1);
	n = strlen(v);
	if (n == 0 || n > FORMDATA_MAX_BOUNDARY)
		return (-1);
	for (i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return (-1);
	}
	memcpy(out, v, n + 1);
	*boundary = out;
	*len = n;
	return (1);
}

struct formdata *
formdata_new(const char *boundary, size_t len)
{
	struct formdata	*f;
	size_t		 i, k;

	if (len == 0 || len > FORMDATA_MAX_BOUNDARY)
		return (NULL);
	f = xcalloc(1, sizeof(*f));
	f->result = FORM_MORE;
	f->state = FD_SEARCH;
	memcpy(f->delim, "\r\n--", 4);
	memcpy(f->delim + 4, boundary, len);
	f->dlen = 4 + len;
	/* fail[i]: the longest proper prefix of delim[0..i] ending there. */
	f->fail[0] = 0;
	for (i = 1, k = 0; i < f->dlen; i++) {
		while (k > 0 && f->delim[i] != f->delim[k])
			k = f->fail[k - 1];
		if (f->delim[i] == f->delim[k])
			k++;
		f->fail[i] = (uint8_t)k;
	}
	/* The first delimiter may open the body: as if CRLF came before. */
	f->matched = 2;
	return (f);
}

void
formdata_free(struct formdata *f)
{
	free(f);
}

/* A header line of a part is whole (without its CRLF). */
static void
formdata_header(struct formdata *f)
{
	static const char	 cd[] = "content-disposition";
	const char		*p = f->line, *end = f->line + f->line_len;
	const char		*colon;
	char			 v[8];
	bool			 cut;

	if (formdata_space(*p))
		return;			/* a folded line: nothing of ours */
	if ((colon = memchr(p, ':', f->line_len)) == NULL ||
	    (size_t)(colon - p) != sizeof(cd) - 1 ||
	    strncasecmp(p, cd, sizeof(cd) - 1) != 0)
		return;
	f->is_model = formdata_param(colon + 1, end, "name", v, sizeof(v),
	    &cut) && !cut && strcmp(v, "model") == 0;
}

/* One byte after a delimiter or in a part's headers. */
static enum formdata_result
formdata_byte(struct formdata *f, int c, size_t at)
{
	switch (f->state) {
	case FD_DELIM:
		if (c == '-') {
			f->state = FD_DASH;
			return (FORM_MORE);
		}
		/* FALLTHROUGH */
	case FD_PAD:
		if (formdata_space(c))
			f->state = FD_PAD;
		else if (c == '\r')
			f->state = FD_DELIM_LF;
		else
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "boundary is followed by neither a line end nor "
			    "--"));
		return (FORM_MORE);
	case FD_DASH:
		if (c != '-')
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "boundary is followed by neither a line end nor "
			    "--"));
		return (formdata_set(f, FORM_ABSENT, "the form has no model "
		    "field"));
	case FD_DELIM_LF:
		if (c != '\n')
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "boundary line does not end in CRLF"));
		f->state = FD_HEADER;
		f->is_model = false;
		f->line_len = 0;
		return (FORM_MORE);
	case FD_HEADER:
		if (c == '\r')
			f->state = FD_HEADER_LF;
		else if (c == '\n')
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "header line does not end in CRLF"));
		else if (f->line_len == sizeof(f->line))
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "header line is longer than 2048 bytes"));
		else
			f->line[f->line_len++] = (char)c;
		return (FORM_MORE);
	case FD_HEADER_LF:
		if (c != '\n')
			return (formdata_set(f, FORM_INVALID, "a multipart "
			    "header line does not end in CRLF"));
		if (f->line_len > 0) {
			formdata_header(f);
			f->line_len = 0;
			f->state = FD_HEADER;
			return (FORM_MORE);
		}
		/* The empty line: the part's content follows. */
		f->state = FD_SEARCH;
		f->matched = 0;
		f->collect = f->is_model;
		f->val_at = at + 1;
		f->val_len = 0;
		return (FORM_MORE);
	default:
		abort();
	}
}

/* The delimiter is whole: the content before it ends. */
static enum formdata_result
formdata_delimiter(struct formdata *f)
{
	f->matched = 0;
	f->in_form = true;
	f->state = FD_DELIM;
	if (!f->collect)
		return (FORM_MORE);
	f->val_len -= f->dlen;
	return (formdata_set(f, FORM_FOUND, NULL));
}

enum formdata_result
formdata_feed(struct formdata *f, const void *buf, size_t len)
{
	const unsigned char	*start = buf, *p = start, *end = p + len;
	size_t			 j;
	int			 c;

	if (f->result != FORM_MORE || len == 0)
		return (f->result);
	while (p < end) {
		if (f->state != FD_SEARCH) {
			c = *p++;
			if (formdata_byte(f, c, f->pos + (size_t)(p - start) -
			    1) != FORM_MORE)
				break;
			continue;
		}
		/* Outside the model's content, skip to the next CR at once. */
		if (f->matched == 0 && !f->collect) {
			const unsigned char *cr = memchr(p, '\r',
			    (size_t)(end - p));

			if (cr == NULL) {
				p = end;
				break;
			}
			p = cr;
		}
		c = *p++;
		if (f->collect) {
			/* The value, and the delimiter that will end it. */
			if (f->val_len == FORMDATA_MAX_VALUE + f->dlen) {
				formdata_set(f, FORM_INVALID, "model is longer "
				    "than 128 bytes");
				break;
			}
			f->val[f->val_len++] = (char)c;
		}
		j = f->matched;
		while (j > 0 && (unsigned char)f->delim[j] != c)
			j = f->fail[j - 1];
		if ((unsigned char)f->delim[j] == c)
			j++;
		f->matched = j;
		if (j == f->dlen && formdata_delimiter(f) != FORM_MORE)
			break;
	}
	f->pos += len;
	return (f->result);
}

enum formdata_result
formdata_finish(struct formdata *f)
{
	if (f->result == FORM_MORE)
		formdata_set(f, FORM_INVALID, !f->in_form ? "request body is "
		    "not multipart/form-data (no boundary line)" : "the "
		    "multipart body ends before its last boundary");
	return (f->result);
}

const char *
formdata_value(const struct formdata *f, size_t *len)
{
	if (f->result != FORM_FOUND)
		return (NULL);
	*len = f->val_len;
	return (f->val);
}

const char *
formdata_error(const struct formdata *f)
{
	return (f->error);
}

bool
formdata_span(const struct formdata *f, size_t *at, size_t *len)
{
	if (f->result != FORM_FOUND)
		return (false);
	*at = f->val_at;
	*len = f->val_len;
	return (true);
}
