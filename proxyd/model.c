/*
 * model.c -- the top-level "model" of a JSON body, found by a small scanner
 * of its own as the body's chunks arrive.
 *
 * Only a key of the outermost object counts ("model" inside "messages" or
 * "tools" does not). The first top-level "model" wins; scanning stops as
 * soon as its value is read, so a huge body costs only the bytes before
 * it. Escapes in keys and in the model are decoded ("mod\u0065l" is
 * "model"); every other string is only checked, never copied.
 *
 * The scanner keeps its whole state between chunks (a few bytes: where it
 * is in a string, an escape, a number or a literal), so a chunk boundary
 * can fall anywhere and every byte is looked at once: the work is linear
 * in the body whatever its shape (long strings, deep nesting, many small
 * tokens, chunks of one byte). yajl's streaming parser, used before,
 * copies a token cut by a chunk boundary and lexes it again from its first
 * byte with every chunk that follows, so one long string cost the square
 * of its length. The grammar is yajl's, which the fuzz target checks: RFC
 * 8259 JSON, with \v and \f taken as white space and UTF-8 checked by the
 * shape of each sequence.
 *
 * A multipart/form-data body is scanned for its "model" field instead
 * (formdata.c). Either way the scanner knows where the model's value lies
 * in the body, so that model_rewrite can put another name there: only
 * those bytes change, the rest of the body is moved, not copied.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "formdata.h"
#include "hex.h"
#include "model.h"
#include "xmalloc.h"

/* Where the scanner is. */
enum model_state {
	MS_START,		/* before the top-level value */
	MS_KEY_FIRST,		/* after '{': a key or '}' */
	MS_KEY,			/* after ',' in an object: a key */
	MS_COLON,		/* after a key */
	MS_VALUE,		/* after ':' or ',' in an array */
	MS_VALUE_FIRST,		/* after '[': a value or ']' */
	MS_AFTER,		/* after a value: ',' or the container's end */
	MS_STRING,		/* inside a string */
	MS_ESCAPE,		/* after a backslash */
	MS_HEX,			/* in the four digits of \u */
	MS_UTF8,		/* in a multibyte sequence */
	MS_NUM_MINUS,		/* after '-' */
	MS_NUM_ZERO,		/* after a leading 0 */
	MS_NUM_INT,		/* in the integer part */
	MS_NUM_DOT,		/* after '.' */
	MS_NUM_FRAC,		/* in the fraction */
	MS_NUM_E,		/* after 'e' */
	MS_NUM_ESIGN,		/* after the exponent's sign */
	MS_NUM_EXP,		/* in the exponent */
	MS_LITERAL,		/* in true, false or null */
};

/* What a string being scanned is. */
enum model_str {
	STR_SKIP,		/* checked only */
	STR_KEY,		/* a top-level key: is it "model"? */
	STR_MODEL,		/* the model's value: decoded into name */
};

struct model_parser {
	enum model_result	 result;
	enum model_state	 state;
	enum model_str		 str;
	bool			 key;		/* the string is a key */
	size_t			 consumed;
	const char		*error;
	uint32_t		 depth;		/* open containers */
	bool			 want_value;	/* the last top key was model */
	uint8_t			 need;		/* UTF-8 bytes still due */
	uint8_t			 hex_n;		/* \u digits read */
	uint32_t		 hex;
	uint32_t		 high;		/* a pending high surrogate */
	const char		*lit;		/* the literal's rest */
	size_t			 len;		/* decoded bytes of key or name */
	bool			 overlong;	/* more than fits */
	size_t			 at;		/* offset of the byte read */
	size_t			 value_at;	/* the model's opening quote */
	size_t			 value_end;	/* after its closing quote */
	struct formdata		*form;		/* multipart/form-data */
	/* Last: written before they are read, so not cleared. */
	uint8_t			 arrays[MODEL_MAX_DEPTH / 8]; /* bit: an array */
	char			 name[MODEL_NAME_MAX + 1];
};

/* Bytes a string can skip: not '"', '\\', a control byte or >= 0x80. */
static uint8_t	model_plain[256];
static bool	model_plain_made;

static void
model_plain_init(void)
{
	int	c;

	if (model_plain_made)
		return;
	for (c = 0x20; c < 0x80; c++)
		model_plain[c] = c != '"' && c != '\\';
	model_plain_made = true;
}

static enum model_result
model_parser_set(struct model_parser *mp, enum model_result r,
    const char *error)
{
	if (mp->result == MODEL_MORE) {
		mp->result = r;
		mp->error = error;
	}
	return (mp->result);
}

static enum model_result
model_bad(struct model_parser *mp)
{
	return (model_parser_set(mp, MODEL_INVALID,
	    "request body is not valid JSON"));
}

struct model_parser *
model_parser_new(void)
{
	struct model_parser	*mp;

	model_plain_init();
	/*
	 * One per request: malloc takes it from its per-thread cache, which
	 * calloc does not use, and only the fields before arrays need zeros.
	 */
	mp = xmalloc(sizeof(*mp));
	memset(mp, 0, offsetof(struct model_parser, arrays));
	mp->result = MODEL_MORE;
	mp->state = MS_START;
	return (mp);
}

struct model_parser *
model_parser_new_type(const char *content_type)
{
	struct model_parser	*mp;
	char			 buf[FORMDATA_MAX_BOUNDARY + 1];
	const char		*b;
	size_t			 blen;

	switch (formdata_boundary(content_type, buf, &b, &blen)) {
	case 0:
		return (model_parser_new());
	case 1:
		mp = model_parser_new();
		mp->form = formdata_new(b, blen);
		return (mp);
	default:
		return (NULL);
	}
}

void
model_parser_free(struct model_parser *mp)
{
	if (mp != NULL)
		formdata_free(mp->form);
	free(mp);
}

static bool
model_in_array(const struct model_parser *mp)
{
	uint32_t	d = mp->depth - 1;

	return ((mp->arrays[d / 8] >> (d % 8)) & 1);
}

/* Open an object or an array. */
static enum model_result
model_open(struct model_parser *mp, bool array)
{
	uint32_t	d = mp->depth;

	if (d >= MODEL_MAX_DEPTH)
		return (model_parser_set(mp, MODEL_INVALID,
		    "request body is nested too deeply"));
	if (array)
		mp->arrays[d / 8] |= (uint8_t)(1u << (d % 8));
	else
		mp->arrays[d / 8] &= (uint8_t)~(1u << (d % 8));
	mp->depth++;
	mp->state = array ? MS_VALUE_FIRST : MS_KEY_FIRST;
	return (MODEL_MORE);
}

/* Close the current container with c ('}' or ']'). */
static enum model_result
model_close(struct model_parser *mp, int c)
{
	if ((c == ']') != model_in_array(mp))
		return (model_bad(mp));
	if (--mp->depth == 0)
		return (model_parser_set(mp, MODEL_ABSENT,
		    "request body has no model"));
	mp->state = MS_AFTER;
	return (MODEL_MORE);
}

/* Append decoded bytes to the key or the name being read. */
static void
model_put(struct model_parser *mp, const char *s, size_t n)
{
	size_t	room = mp->str == STR_KEY ? 5 : MODEL_NAME_MAX;

	if (mp->str == STR_SKIP)
		return;
	if (mp->overlong || mp->len + n > room) {
		mp->overlong = true;
		return;
	}
	memcpy(mp->name + mp->len, s, n);
	mp->len += n;
}

/* Append the code point cp, UTF-8 encoded. */
static void
model_put_cp(struct model_parser *mp, uint32_t cp)
{
	char	b[4];

	if (cp < 0x80) {
		b[0] = (char)cp;
		model_put(mp, b, 1);
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		model_put(mp, b, 2);
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		model_put(mp, b, 3);
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		model_put(mp, b, 4);
	}
}

/* A high surrogate not followed by its low half stands for U+FFFD. */
static void
model_flush_high(struct model_parser *mp)
{
	if (mp->high != 0) {
		mp->high = 0;
		model_put_cp(mp, 0xfffd);
	}
}

/* A string begins: of which kind it is decides what is kept of it. */
static void
model_string(struct model_parser *mp, enum model_str kind, bool key)
{
	mp->str = kind;
	mp->key = key;
	mp->len = 0;
	mp->overlong = false;
	mp->high = 0;
	mp->state = MS_STRING;
}

/* The string just read ends: a key, the model, or anything else. */
static enum model_result
model_string_end(struct model_parser *mp)
{
	size_t	i;

	model_flush_high(mp);
	switch (mp->str) {
	case STR_KEY:
		mp->want_value = !mp->overlong && mp->len == 5 &&
		    memcmp(mp->name, "model", 5) == 0;
		mp->state = MS_COLON;
		return (MODEL_MORE);
	case STR_MODEL:
		if (mp->len == 0)
			return (model_parser_set(mp, MODEL_INVALID,
			    "model is empty"));
		if (mp->overlong)
			return (model_parser_set(mp, MODEL_INVALID,
			    "model is longer than 128 bytes"));
		for (i = 0; i < mp->len; i++) {
			if ((unsigned char)mp->name[i] < 0x20 ||
			    mp->name[i] == 0x7f)
				return (model_parser_set(mp, MODEL_INVALID,
				    "model contains control characters"));
		}
		mp->name[mp->len] = '\0';
		return (model_parser_set(mp, MODEL_FOUND, NULL));
	default:
		mp->state = mp->key ? MS_COLON : MS_AFTER;
		return (MODEL_MORE);
	}
}

/* A value starts with c (not white space). */
static enum model_result
model_value(struct model_parser *mp, int c)
{
	bool	is_model = mp->depth == 1 && mp->want_value;

	if (c == '"') {
		model_string(mp, is_model ? STR_MODEL : STR_SKIP, false);
		if (is_model)
			mp->value_at = mp->at;
		return (MODEL_MORE);
	}
	if (is_model && (c == '{' || c == '[' || c == '-' ||
	    (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n'))
		return (model_parser_set(mp, MODEL_INVALID,
		    "model must be a string"));
	switch (c) {
	case '{':
		return (model_open(mp, false));
	case '[':
		return (model_open(mp, true));
	case '-':
		mp->state = MS_NUM_MINUS;
		return (MODEL_MORE);
	case '0':
		mp->state = MS_NUM_ZERO;
		return (MODEL_MORE);
	case 't':
		mp->lit = "rue";
		break;
	case 'f':
		mp->lit = "alse";
		break;
	case 'n':
		mp->lit = "ull";
		break;
	default:
		if (c >= '1' && c <= '9') {
			mp->state = MS_NUM_INT;
			return (MODEL_MORE);
		}
		return (model_bad(mp));
	}
	mp->state = MS_LITERAL;
	return (MODEL_MORE);
}

static bool
model_space(int c)
{
	return (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\v' || c == '\f');
}

/* The four digits of a \u escape are read. */
static void
model_unicode(struct model_parser *mp)
{
	uint32_t	u = mp->hex;

	if (mp->str == STR_SKIP)
		return;
	if (u >= 0xdc00 && u <= 0xdfff && mp->high != 0) {
		model_put_cp(mp, 0x10000 + ((mp->high - 0xd800) << 10) +
		    (u - 0xdc00));
		mp->high = 0;
		return;
	}
	model_flush_high(mp);
	if (u >= 0xd800 && u <= 0xdbff)
		mp->high = u;
	else if (u >= 0xdc00 && u <= 0xdfff)
		model_put_cp(mp, 0xfffd);
	else
		model_put_cp(mp, u);
}

/* One byte in a string (not a plain one: those are skipped in bulk). */
static enum model_result
model_string_byte(struct model_parser *mp, int c)
{
	char	ch = (char)c;
	int	d;

	switch (mp->state) {
	case MS_STRING:
		if (c == '"')
			return (model_string_end(mp));
		if (c == '\\') {
			mp->state = MS_ESCAPE;
			return (MODEL_MORE);
		}
		if (c < 0x20)
			return (model_bad(mp));
		if (c < 0x80) {
			model_flush_high(mp);
			model_put(mp, &ch, 1);
			return (MODEL_MORE);
		}
		/* UTF-8, checked as yajl does: by the shape of each byte. */
		if ((c >> 5) == 0x6)
			mp->need = 1;
		else if ((c >> 4) == 0xe)
			mp->need = 2;
		else if ((c >> 3) == 0x1e)
			mp->need = 3;
		else
			return (model_bad(mp));
		model_flush_high(mp);
		model_put(mp, &ch, 1);
		mp->state = MS_UTF8;
		return (MODEL_MORE);
	case MS_UTF8:
		if ((c >> 6) != 0x2)
			return (model_bad(mp));
		model_put(mp, &ch, 1);
		if (--mp->need == 0)
			mp->state = MS_STRING;
		return (MODEL_MORE);
	case MS_ESCAPE:
		mp->state = MS_STRING;
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b':
			ch = '\b';
			break;
		case 'f':
			ch = '\f';
			break;
		case 'n':
			ch = '\n';
			break;
		case 'r':
			ch = '\r';
			break;
		case 't':
			ch = '\t';
			break;
		case 'u':
			mp->state = MS_HEX;
			mp->hex = 0;
			mp->hex_n = 0;
			return (MODEL_MORE);
		default:
			return (model_bad(mp));
		}
		model_flush_high(mp);
		model_put(mp, &ch, 1);
		return (MODEL_MORE);
	case MS_HEX:
		if ((d = hex_digit(c)) < 0)
			return (model_bad(mp));
		mp->hex = mp->hex * 16 + (uint32_t)d;
		if (++mp->hex_n == 4) {
			mp->state = MS_STRING;
			model_unicode(mp);
		}
		return (MODEL_MORE);
	default:
		abort();
	}
}

/*
 * One byte of a number; a byte that ends the number is handed back
 * (MODEL_MORE with *again set) to be read as what follows it.
 */
static enum model_result
model_number_byte(struct model_parser *mp, int c, bool *again)
{
	bool	digit = c >= '0' && c <= '9';

	switch (mp->state) {
	case MS_NUM_MINUS:
		if (!digit)
			return (model_bad(mp));
		mp->state = c == '0' ? MS_NUM_ZERO : MS_NUM_INT;
		return (MODEL_MORE);
	case MS_NUM_INT:
		if (digit)
			return (MODEL_MORE);
		/* FALLTHROUGH */
	case MS_NUM_ZERO:
		if (c == '.')
			mp->state = MS_NUM_DOT;
		else if (c == 'e' || c == 'E')
			mp->state = MS_NUM_E;
		else if (digit)
			return (model_bad(mp));	/* a leading zero */
		else {
			mp->state = MS_AFTER;
			*again = true;
		}
		return (MODEL_MORE);
	case MS_NUM_DOT:
		if (!digit)
			return (model_bad(mp));
		mp->state = MS_NUM_FRAC;
		return (MODEL_MORE);
	case MS_NUM_FRAC:
		if (digit)
			return (MODEL_MORE);
		if (c == 'e' || c == 'E')
			mp->state = MS_NUM_E;
		else {
			mp->state = MS_AFTER;
			*again = true;
		}
		return (MODEL_MORE);
	case MS_NUM_E:
		if (c == '+' || c == '-') {
			mp->state = MS_NUM_ESIGN;
			return (MODEL_MORE);
		}
		/* FALLTHROUGH */
	case MS_NUM_ESIGN:
		if (!digit)
			return (model_bad(mp));
		mp->state = MS_NUM_EXP;
		return (MODEL_MORE);
	case MS_NUM_EXP:
		if (!digit) {
			mp->state = MS_AFTER;
			*again = true;
		}
		return (MODEL_MORE);
	default:
		abort();
	}
}

/* One byte outside strings and numbers. */
static enum model_result
model_byte(struct model_parser *mp, int c)
{
	switch (mp->state) {
	case MS_START:
		if (c == '{')
			return (model_open(mp, false));
		if (c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') ||
		    c == 't' || c == 'f' || c == 'n')
			return (model_parser_set(mp, MODEL_INVALID,
			    "request body is not a JSON object"));
		return (model_bad(mp));
	case MS_KEY_FIRST:
		if (c == '}')
			return (model_close(mp, c));
		/* FALLTHROUGH */
	case MS_KEY:
		if (c != '"')
			return (model_bad(mp));
		model_string(mp, mp->depth == 1 ? STR_KEY : STR_SKIP, true);
		return (MODEL_MORE);
	case MS_COLON:
		if (c != ':')
			return (model_bad(mp));
		mp->state = MS_VALUE;
		return (MODEL_MORE);
	case MS_VALUE_FIRST:
		if (c == ']')
			return (model_close(mp, c));
		/* FALLTHROUGH */
	case MS_VALUE:
		return (model_value(mp, c));
	case MS_AFTER:
		if (c == ',') {
			mp->state = model_in_array(mp) ? MS_VALUE : MS_KEY;
			return (MODEL_MORE);
		}
		if (c == '}' || c == ']')
			return (model_close(mp, c));
		return (model_bad(mp));
	case MS_LITERAL:
		if (c != *mp->lit)
			return (model_bad(mp));
		if (*++mp->lit == '\0')
			mp->state = MS_AFTER;
		return (MODEL_MORE);
	default:
		abort();
	}
}

/* The form's answer, as the JSON scanner gives its own. */
static enum model_result
model_form_result(struct model_parser *mp, enum formdata_result r)
{
	const char	*v;
	size_t		 n;

	switch (r) {
	case FORM_MORE:
		return (MODEL_MORE);
	case FORM_ABSENT:
		return (model_parser_set(mp, MODEL_ABSENT,
		    formdata_error(mp->form)));
	case FORM_INVALID:
		return (model_parser_set(mp, MODEL_INVALID,
		    formdata_error(mp->form)));
	default:
		break;
	}
	v = formdata_value(mp->form, &n);
	if (n == 0)
		return (model_parser_set(mp, MODEL_INVALID, "model is empty"));
	if (!model_name_valid(v, n))
		return (model_parser_set(mp, MODEL_INVALID,
		    "model contains control characters"));
	memcpy(mp->name, v, n);
	mp->name[n] = '\0';
	return (model_parser_set(mp, MODEL_FOUND, NULL));
}

enum model_result
model_parser_feed(struct model_parser *mp, const void *buf, size_t len)
{
	const unsigned char	*p = buf, *end = p + len;
	size_t			 base = mp->consumed;
	bool			 again;
	int			 c;

	if (mp->result != MODEL_MORE || len == 0)
		return (mp->result);
	mp->consumed += len;
	if (mp->form != NULL)
		return (model_form_result(mp, formdata_feed(mp->form, buf,
		    len)));
	while (p < end) {
		if (mp->state == MS_STRING && mp->str == STR_SKIP) {
			/* The bulk of a body: string bytes that need nothing. */
			while (p < end && model_plain[*p])
				p++;
			if (p == end)
				break;
		}
		c = *p++;
		if (mp->state >= MS_STRING && mp->state <= MS_UTF8) {
			if (model_string_byte(mp, c) != MODEL_MORE)
				break;
			continue;
		}
		if (mp->state >= MS_NUM_MINUS && mp->state <= MS_NUM_EXP) {
			again = false;
			if (model_number_byte(mp, c, &again) != MODEL_MORE)
				break;
			if (!again)
				continue;
		}
		if (model_space(c) && mp->state != MS_LITERAL)
			continue;
		mp->at = base + (size_t)(p - (const unsigned char *)buf) - 1;
		if (model_byte(mp, c) != MODEL_MORE)
			break;
	}
	if (mp->result == MODEL_FOUND)
		mp->value_end = base + (size_t)(p - (const unsigned char *)buf);
	return (mp->result);
}

enum model_result
model_parser_finish(struct model_parser *mp)
{
	if (mp->result == MODEL_MORE && mp->form != NULL)
		return (model_form_result(mp, formdata_finish(mp->form)));
	if (mp->result == MODEL_MORE)
		model_parser_set(mp, MODEL_INVALID, mp->consumed == 0 ?
		    "request body is empty" : "request body is not valid JSON");
	return (mp->result);
}

bool
model_parser_span(const struct model_parser *mp, struct model_span *sp)
{
	if (mp->result != MODEL_FOUND)
		return (false);
	sp->form = mp->form != NULL;
	if (sp->form)
		return (formdata_span(mp->form, &sp->at, &sp->len));
	sp->at = mp->value_at;
	sp->len = mp->value_end - mp->value_at;
	return (true);
}

/*
 * A valid name (no control bytes) as a JSON string, quotes included, into
 * out (two bytes per byte of name, and two).
 */
static size_t
model_json_string(const char *name, char *out)
{
	size_t	n = 0;

	out[n++] = '"';
	for (; *name != '\0'; name++) {
		if (*name == '"' || *name == '\\')
			out[n++] = '\\';
		out[n++] = *name;
	}
	out[n++] = '"';
	return (n);
}

int
model_rewrite(struct evbuffer *body, const struct model_span *sp,
    const char *name)
{
	char		 repl[MODEL_NAME_MAX * 2 + 2];
	size_t		 rlen, nlen = strlen(name);
	struct evbuffer	*tmp;

	/* evbuffer_remove_buffer answers in an int. */
	if (!model_name_valid(name, nlen) || sp->at > INT_MAX ||
	    sp->at + sp->len > evbuffer_get_length(body))
		return (-1);
	if (sp->form) {
		memcpy(repl, name, nlen);
		rlen = nlen;
	} else
		rlen = model_json_string(name, repl);
	/* Move the bytes before the value out, put the name, move the rest. */
	if ((tmp = evbuffer_new()) == NULL)
		return (-1);
	if (evbuffer_remove_buffer(body, tmp, sp->at) != (int)sp->at ||
	    evbuffer_drain(body, sp->len) != 0 ||
	    evbuffer_add(tmp, repl, rlen) != 0 ||
	    evbuffer_add_buffer(tmp, body) != 0 ||
	    evbuffer_add_buffer(body, tmp) != 0) {
		evbuffer_free(tmp);
		return (-1);
	}
	evbuffer_free(tmp);
	return (0);
}

const char *
model_parser_name(const struct model_parser *mp)
{
	return (mp->result == MODEL_FOUND ? mp->name : NULL);
}

const char *
model_parser_error(const struct model_parser *mp)
{
	return (mp->error);
}

size_t
model_parser_consumed(const struct model_parser *mp)
{
	return (mp->consumed);
}

int
model_name_valid(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > MODEL_NAME_MAX)
		return (0);
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return (0);
	}
	return (1);
}
