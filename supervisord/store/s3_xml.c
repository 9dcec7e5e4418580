/*
 * s3_xml.c -- the XML documents llmux reads from an object store: an
 * error reply (<Error><Code>, <Message>), one page of ListObjectsV2
 * (<ListBucketResult><Contents><Key>, <IsTruncated>,
 * <NextContinuationToken>), and the replies of a multipart upload
 * (<InitiateMultipartUploadResult><UploadId>, and
 * <CompleteMultipartUploadResult> or an Error document). The bytes come from the network, so the
 * reader is small and strict: bounded size, depth and text, one root
 * element, matching end tags, the five predefined entities and numeric
 * references only (no DOCTYPE, so no entity expansion), no NUL. Element
 * names are compared without their namespace prefix; attributes are
 * skipped. tests/fuzz/fuzz_s3xml.c feeds it anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "xmalloc.h"
#include "store_int.h"

#define S3_XML_MAX_NAME	64

struct s3_xml;
/* An element ends: path[0..depth-1] are the names, text its own text. */
typedef int	(*s3_xml_leaf_fn)(struct s3_xml *, void *);

struct s3_xml {
	const char	*start;
	const char	*p;
	const char	*end;
	char		 path[S3_XML_MAX_DEPTH][S3_XML_MAX_NAME + 1];
	size_t		 depth;
	bool		 seen_root;
	char		 text[S3_XML_MAX_TEXT + 1];
	size_t		 tlen;
	char		 err[160];
};

static int
s3_xml_fail(struct s3_xml *x, const char *why)
{
	if (x->err[0] == '\0')
		snprintf(x->err, sizeof(x->err), "%s at byte %zu", why,
		    (size_t)(x->p - x->start));
	return (-1);
}

static const char *
s3_xml_find(const char *p, const char *end, const char *needle)
{
	size_t	n = strlen(needle);

	for (; p + n <= end; p++)
		if (memcmp(p, needle, n) == 0)
			return (p);
	return (NULL);
}

static int
s3_xml_put(struct s3_xml *x, const char *s, size_t n)
{
	if (x->depth == 0) {
		/* Only white space outside the root element. */
		for (size_t i = 0; i < n; i++)
			if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
			    s[i] != '\n')
				return (s3_xml_fail(x, "text outside the "
				    "root element"));
		return (0);
	}
	if (x->tlen + n > S3_XML_MAX_TEXT)
		return (s3_xml_fail(x, "text too long"));
	memcpy(x->text + x->tlen, s, n);
	x->tlen += n;
	x->text[x->tlen] = '\0';
	return (0);
}

/* One code point as UTF-8. */
static int
s3_xml_put_code(struct s3_xml *x, unsigned long c)
{
	char	u[4];
	size_t	n;

	if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return (s3_xml_fail(x, "bad character reference"));
	if (c < 0x80) {
		u[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	return (s3_xml_put(x, u, n));
}

/* x->p is at '&': one entity or character reference. */
static int
s3_xml_entity(struct s3_xml *x)
{
	static const struct {
		const char	*name;
		char		 c;
	} named[] = {
		{ "lt", '<' }, { "gt", '>' }, { "amp", '&' },
		{ "quot", '"' }, { "apos", '\'' },
	};
	const char	*semi, *s;
	unsigned long	 c = 0;
	size_t		 len;
	int		 base = 10, digit;

	s = x->p + 1;
	for (semi = s; semi < x->end && semi - s < 12 && *semi != ';'; semi++)
		;
	if (semi >= x->end || *semi != ';')
		return (s3_xml_fail(x, "unterminated entity"));
	len = (size_t)(semi - s);
	x->p = semi + 1;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (strlen(named[i].name) == len &&
		    memcmp(named[i].name, s, len) == 0)
			return (s3_xml_put(x, &named[i].c, 1));
	if (len < 2 || s[0] != '#')
		return (s3_xml_fail(x, "unknown entity"));
	s++;
	len--;
	if (*s == 'x') {
		base = 16;
		s++;
		len--;
	}
	if (len == 0 || len > 8)
		return (s3_xml_fail(x, "bad character reference"));
	for (size_t i = 0; i < len; i++) {
		if ((digit = hex_digit(s[i])) < 0 || digit >= base)
			return (s3_xml_fail(x, "bad character reference"));
		c = c * (unsigned long)base + (unsigned long)digit;
	}
	return (s3_xml_put_code(x, c));
}

/* Text up to the next '<', entities decoded. */
static int
s3_xml_text(struct s3_xml *x)
{
	const char	*start;

	while (x->p < x->end && *x->p != '<') {
		if (*x->p == '&') {
			if (s3_xml_entity(x) != 0)
				return (-1);
			continue;
		}
		start = x->p;
		while (x->p < x->end && *x->p != '<' && *x->p != '&')
			x->p++;
		if (s3_xml_put(x, start, (size_t)(x->p - start)) != 0)
			return (-1);
	}
	return (0);
}

static bool
s3_xml_space(char c)
{
	return (c == ' ' || c == '\t' || c == '\r' || c == '\n');
}

/* A name at x->p, its namespace prefix dropped, into out. */
static int
s3_xml_name(struct s3_xml *x, char out[S3_XML_MAX_NAME + 1])
{
	const char	*start = x->p, *local;
	size_t		 len;

	while (x->p < x->end && !s3_xml_space(*x->p) && *x->p != '>' &&
	    *x->p != '/' && *x->p != '=' && *x->p != '<' && *x->p != '"' &&
	    *x->p != '\'')
		x->p++;
	len = (size_t)(x->p - start);
	if (len == 0 || len > S3_XML_MAX_NAME)
		return (s3_xml_fail(x, "bad element name"));
	local = memrchr(start, ':', len);
	local = local != NULL ? local + 1 : start;
	len = (size_t)(x->p - local);
	if (len == 0)
		return (s3_xml_fail(x, "bad element name"));
	memcpy(out, local, len);
	out[len] = '\0';
	return (0);
}

/* Skip attributes up to '>' or "/>"; *empty when it is "/>". */
static int
s3_xml_attrs(struct s3_xml *x, bool *empty)
{
	char	q;

	*empty = false;
	while (x->p < x->end) {
		switch (*x->p) {
		case '>':
			x->p++;
			return (0);
		case '/':
			if (x->p + 1 < x->end && x->p[1] == '>') {
				*empty = true;
				x->p += 2;
				return (0);
			}
			return (s3_xml_fail(x, "stray '/' in a tag"));
		case '"':
		case '\'':
			q = *x->p++;
			while (x->p < x->end && *x->p != q) {
				if (*x->p == '<')
					return (s3_xml_fail(x, "'<' in an "
					    "attribute"));
				x->p++;
			}
			if (x->p >= x->end)
				return (s3_xml_fail(x, "unterminated "
				    "attribute"));
			x->p++;
			break;
		case '<':
			return (s3_xml_fail(x, "'<' in a tag"));
		default:
			x->p++;
			break;
		}
	}
	return (s3_xml_fail(x, "unterminated tag"));
}

static int
s3_xml_start(struct s3_xml *x, s3_xml_leaf_fn leaf, void *arg)
{
	bool	empty;

	if (x->depth == 0 && x->seen_root)
		return (s3_xml_fail(x, "a second root element"));
	if (x->depth == S3_XML_MAX_DEPTH)
		return (s3_xml_fail(x, "nested too deep"));
	if (s3_xml_name(x, x->path[x->depth]) != 0 ||
	    s3_xml_attrs(x, &empty) != 0)
		return (-1);
	x->depth++;
	x->seen_root = true;
	x->tlen = 0;
	x->text[0] = '\0';
	if (empty) {
		if (leaf(x, arg) != 0)
			return (-1);
		x->depth--;
	}
	return (0);
}

static int
s3_xml_end(struct s3_xml *x, s3_xml_leaf_fn leaf, void *arg)
{
	char	name[S3_XML_MAX_NAME + 1];

	if (s3_xml_name(x, name) != 0)
		return (-1);
	while (x->p < x->end && s3_xml_space(*x->p))
		x->p++;
	if (x->p >= x->end || *x->p != '>')
		return (s3_xml_fail(x, "unterminated end tag"));
	x->p++;
	if (x->depth == 0 || strcmp(name, x->path[x->depth - 1]) != 0)
		return (s3_xml_fail(x, "mismatched end tag"));
	if (leaf(x, arg) != 0)
		return (-1);
	x->depth--;
	x->tlen = 0;
	x->text[0] = '\0';
	return (0);
}

/* Read a whole document, calling leaf as each element ends. */
static int
s3_xml_parse(struct s3_xml *x, const char *buf, size_t len,
    s3_xml_leaf_fn leaf, void *arg)
{
	const char	*q;

	memset(x, 0, sizeof(*x));
	if (len > S3_XML_MAX_BYTES)
		return (s3_xml_fail(x, "document too large"));
	if (memchr(buf, '\0', len) != NULL)
		return (s3_xml_fail(x, "NUL byte"));
	x->start = x->p = buf;
	x->end = buf + len;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		x->p += 3;
	while (x->p < x->end) {
		if (*x->p != '<') {
			if (s3_xml_text(x) != 0)
				return (-1);
			continue;
		}
		if (x->end - x->p >= 2 && x->p[1] == '?') {
			if ((q = s3_xml_find(x->p + 2, x->end, "?>")) == NULL)
				return (s3_xml_fail(x, "unterminated <?"));
			x->p = q + 2;
		} else if (x->end - x->p >= 4 && memcmp(x->p, "<!--", 4) == 0) {
			if ((q = s3_xml_find(x->p + 4, x->end, "-->")) == NULL)
				return (s3_xml_fail(x, "unterminated comment"));
			x->p = q + 3;
		} else if (x->end - x->p >= 9 &&
		    memcmp(x->p, "<![CDATA[", 9) == 0) {
			if ((q = s3_xml_find(x->p + 9, x->end, "]]>")) == NULL)
				return (s3_xml_fail(x, "unterminated CDATA"));
			if (x->depth == 0)
				return (s3_xml_fail(x, "CDATA outside the "
				    "root element"));
			if (s3_xml_put(x, x->p + 9, (size_t)(q - x->p - 9)) !=
			    0)
				return (-1);
			x->p = q + 3;
		} else if (x->end - x->p >= 2 && x->p[1] == '!') {
			return (s3_xml_fail(x, "DOCTYPE and declarations are "
			    "not accepted"));
		} else if (x->end - x->p >= 2 && x->p[1] == '/') {
			x->p += 2;
			if (s3_xml_end(x, leaf, arg) != 0)
				return (-1);
		} else {
			x->p++;
			if (s3_xml_start(x, leaf, arg) != 0)
				return (-1);
		}
	}
	if (!x->seen_root)
		return (s3_xml_fail(x, "no root element"));
	if (x->depth != 0)
		return (s3_xml_fail(x, "truncated document"));
	return (0);
}

/* Copy text, keeping printable ASCII only, into a bounded buffer. */
static void
s3_xml_printable(char *dst, size_t size, const char *src)
{
	size_t	o = 0;

	for (; *src != '\0' && o + 1 < size; src++) {
		unsigned char	c = (unsigned char)*src;

		if (c == '\n' || c == '\t' || c == '\r')
			c = ' ';
		dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[o] = '\0';
}

static bool
s3_xml_at(const struct s3_xml *x, const char *a, const char *b,
    const char *c)
{
	const char	*want[3] = { a, b, c };
	size_t		 n = c != NULL ? 3 : b != NULL ? 2 : 1;

	if (x->depth != n)
		return (false);
	for (size_t i = 0; i < n; i++)
		if (strcmp(x->path[i], want[i]) != 0)
			return (false);
	return (true);
}

static int
s3_xml_error_leaf(struct s3_xml *x, void *arg)
{
	struct s3_error_doc	*e = arg;

	if (s3_xml_at(x, "Error", "Code", NULL))
		s3_xml_printable(e->code, sizeof(e->code), x->text);
	else if (s3_xml_at(x, "Error", "Message", NULL))
		s3_xml_printable(e->message, sizeof(e->message), x->text);
	else if (x->depth == 1 && strcmp(x->path[0], "Error") != 0)
		return (s3_xml_fail(x, "not an Error document"));
	return (0);
}

int
s3_xml_error(const char *buf, size_t len, struct s3_error_doc *e)
{
	struct s3_xml	x;

	memset(e, 0, sizeof(*e));
	if (s3_xml_parse(&x, buf, len, s3_xml_error_leaf, e) != 0 ||
	    e->code[0] == '\0') {
		memset(e, 0, sizeof(*e));
		return (-1);
	}
	return (0);
}

static int
s3_xml_list_leaf(struct s3_xml *x, void *arg)
{
	struct s3_list	*l = arg;

	if (s3_xml_at(x, "ListBucketResult", "Contents", "Key")) {
		if (x->tlen == 0)
			return (s3_xml_fail(x, "an empty Key"));
		if (l->n >= S3_XML_MAX_KEYS)
			return (s3_xml_fail(x, "too many keys"));
		l->keys = xreallocarray(l->keys, l->n + 1, sizeof(*l->keys));
		l->keys[l->n++] = xstrdup(x->text);
	} else if (s3_xml_at(x, "ListBucketResult", "IsTruncated", NULL)) {
		if (strcmp(x->text, "true") == 0)
			l->truncated = true;
		else if (strcmp(x->text, "false") == 0)
			l->truncated = false;
		else
			return (s3_xml_fail(x, "IsTruncated is not true or "
			    "false"));
	} else if (s3_xml_at(x, "ListBucketResult", "NextContinuationToken",
	    NULL)) {
		if (l->next != NULL)
			return (s3_xml_fail(x, "two continuation tokens"));
		l->next = xstrdup(x->text);
	} else if (x->depth == 1 && strcmp(x->path[0], "ListBucketResult") !=
	    0)
		return (s3_xml_fail(x, "not a ListBucketResult"));
	return (0);
}

int
s3_xml_list(const char *buf, size_t len, struct s3_list *l, char *err,
    size_t errlen)
{
	struct s3_xml	x;

	memset(l, 0, sizeof(*l));
	if (s3_xml_parse(&x, buf, len, s3_xml_list_leaf, l) != 0) {
		snprintf(err, errlen, "unreadable listing: %s", x.err);
		s3_list_free(l);
		return (-1);
	}
	if (l->truncated && (l->next == NULL || *l->next == '\0')) {
		snprintf(err, errlen, "unreadable listing: truncated without "
		    "a continuation token");
		s3_list_free(l);
		return (-1);
	}
	return (0);
}

void
s3_list_free(struct s3_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->next);
	memset(l, 0, sizeof(*l));
}

/* ---- multipart upload -------------------------------------------------- */

struct s3_xml_initiate {
	char	*id;
	size_t	 idlen;
	int	 seen;
};

static int
s3_xml_initiate_leaf(struct s3_xml *x, void *arg)
{
	struct s3_xml_initiate	*in = arg;

	if (s3_xml_at(x, "InitiateMultipartUploadResult", "UploadId", NULL)) {
		if (in->seen++ > 0)
			return (s3_xml_fail(x, "two UploadIds"));
		if (x->tlen == 0 || x->tlen >= in->idlen ||
		    x->tlen > S3_UPLOAD_ID_MAX)
			return (s3_xml_fail(x, "an UploadId that is empty or "
			    "too long"));
		for (size_t i = 0; i < x->tlen; i++)
			if (x->text[i] <= 0x20 || x->text[i] >= 0x7f)
				return (s3_xml_fail(x, "an UploadId that is "
				    "not printable ASCII"));
		memcpy(in->id, x->text, x->tlen + 1);
	} else if (x->depth == 1 && strcmp(x->path[0],
	    "InitiateMultipartUploadResult") != 0)
		return (s3_xml_fail(x, "not an "
		    "InitiateMultipartUploadResult"));
	return (0);
}

int
s3_xml_initiate(const char *buf, size_t len, char *id, size_t idlen,
    char *err, size_t errlen)
{
	struct s3_xml		x;
	struct s3_xml_initiate	in = { id, idlen, 0 };

	if (idlen > 0)
		id[0] = '\0';
	if (s3_xml_parse(&x, buf, len, s3_xml_initiate_leaf, &in) != 0) {
		snprintf(err, errlen, "unreadable reply: %s", x.err);
		goto fail;
	}
	if (in.seen == 0) {
		snprintf(err, errlen, "unreadable reply: no UploadId");
		goto fail;
	}
	return (0);
fail:
	if (idlen > 0)
		id[0] = '\0';
	return (-1);
}

static int
s3_xml_complete_leaf(struct s3_xml *x, void *arg)
{
	struct s3_error_doc	*e = arg;

	if (strcmp(x->path[0], "Error") == 0)
		return (s3_xml_error_leaf(x, e));
	if (x->depth == 1 && strcmp(x->path[0],
	    "CompleteMultipartUploadResult") != 0)
		return (s3_xml_fail(x, "not a CompleteMultipartUploadResult "
		    "nor an Error document"));
	return (0);
}

int
s3_xml_complete(const char *buf, size_t len, struct s3_error_doc *e,
    char *err, size_t errlen)
{
	struct s3_xml	x;

	memset(e, 0, sizeof(*e));
	if (s3_xml_parse(&x, buf, len, s3_xml_complete_leaf, e) != 0) {
		snprintf(err, errlen, "unreadable reply: %s", x.err);
		memset(e, 0, sizeof(*e));
		return (-1);
	}
	if (strcmp(x.path[0], "Error") != 0)
		return (0);
	if (e->code[0] == '\0') {
		snprintf(err, errlen, "unreadable reply: an Error document "
		    "without a Code");
		return (-1);
	}
	return (1);
}
