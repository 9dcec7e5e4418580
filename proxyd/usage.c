/*
 * usage.c -- the token counts of a model's answer without parsing it: the
 * relay keeps the last USAGE_WINDOW bytes of a successful answer's body in
 * a ring (a copy of at most that many bytes per piece relayed, nothing
 * else), and when the answer is over looks there for the last
 * `"usage": {...}` object, which an OpenAI answer carries at its end: a
 * JSON completion just before its last fields, a stream in its last event
 * before `data: [DONE]` (stream_options.include_usage, or a server that
 * always sends it). Chunks of a stream before that carry `"usage": null`,
 * which is passed over.
 *
 * The bytes come from the model server; the scan is bounded (the window,
 * a few candidates, 20 digits a number) and takes any bytes.
 */
#include <string.h>

#include "usage.h"

#define USAGE_MAX_TRIES		4	/* "usage" keys looked at, last first */
#define USAGE_MAX_KEY		32
#define USAGE_MAX_DIGITS	19	/* fits in 63 bits */

void
usage_feed(struct usage_scan *u, const void *data, size_t len)
{
	const uint8_t	*p = data;
	size_t		 at, n;

	if (len >= USAGE_WINDOW) {
		p += len - USAGE_WINDOW;
		u->fed += len - USAGE_WINDOW;
		len = USAGE_WINDOW;
	}
	while (len > 0) {
		at = (size_t)(u->fed % USAGE_WINDOW);
		n = USAGE_WINDOW - at;
		if (n > len)
			n = len;
		memcpy(u->tail + at, p, n);
		u->fed += n;
		p += n;
		len -= n;
	}
}

bool
usage_result(const struct usage_scan *u, struct usage_counts *c)
{
	uint8_t	buf[USAGE_WINDOW];
	size_t	at, len;

	if (u->fed < USAGE_WINDOW)
		return (usage_parse(u->tail, (size_t)u->fed, c));
	/* The ring in order: from the oldest byte kept. */
	at = (size_t)(u->fed % USAGE_WINDOW);
	len = USAGE_WINDOW - at;
	memcpy(buf, u->tail + at, len);
	memcpy(buf + len, u->tail, at);
	return (usage_parse(buf, USAGE_WINDOW, c));
}

static size_t
usage_skip_ws(const uint8_t *b, size_t i, size_t len)
{
	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' ||
	    b[i] == '\r'))
		i++;
	return (i);
}

/*
 * The string starting at b[i] (a quote): its end (after the closing
 * quote), or 0 if it does not end. Its first bytes, unescaped as they
 * are, go to key (NUL-terminated) when key is not NULL.
 */
static size_t
usage_string(const uint8_t *b, size_t i, size_t len, char *key)
{
	size_t	k = 0;

	for (i++; i < len; i++) {
		if (b[i] == '"') {
			if (key != NULL)
				key[k] = '\0';
			return (i + 1);
		}
		if (b[i] == '\\' || (key != NULL && k == USAGE_MAX_KEY)) {
			/* An escaped or long key is none of ours. */
			if (key != NULL)
				key[0] = '\0';
			key = NULL;
			if (b[i] == '\\')
				i++;
			continue;
		}
		if (key != NULL)
			key[k++] = (char)b[i];
	}
	return (0);
}

/* A number at b[i]: its value in *v and its end, or 0 if it is not one. */
static size_t
usage_number(const uint8_t *b, size_t i, size_t len, uint64_t *v)
{
	size_t	n = 0;

	*v = 0;
	while (i < len && b[i] >= '0' && b[i] <= '9') {
		if (++n > USAGE_MAX_DIGITS)
			return (0);
		*v = *v * 10 + (uint64_t)(b[i] - '0');
		i++;
	}
	return (n > 0 ? i : 0);
}

/*
 * The object at b[i] ('{'): the counts among its own keys. True when it
 * ends within the buffer and holds either count.
 */
static bool
usage_object(const uint8_t *b, size_t i, size_t len, struct usage_counts *c)
{
	char		 key[USAGE_MAX_KEY + 1];
	size_t		 end, j;
	uint64_t	 v;
	int		 depth = 0;
	bool		 found = false;

	memset(c, 0, sizeof(*c));
	while (i < len) {
		switch (b[i]) {
		case '{':
		case '[':
			depth++;
			i++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return (found);
			i++;
			break;
		case '"':
			if ((end = usage_string(b, i, len, depth == 1 ? key :
			    NULL)) == 0)
				return (false);
			i = end;
			if (depth != 1)
				break;
			j = usage_skip_ws(b, end, len);
			if (j >= len || b[j] != ':')
				break;		/* a value, not a key */
			j = usage_skip_ws(b, j + 1, len);
			if (strcmp(key, "prompt_tokens") != 0 &&
			    strcmp(key, "completion_tokens") != 0) {
				i = j;
				break;
			}
			if ((end = usage_number(b, j, len, &v)) == 0) {
				i = j;
				break;
			}
			if (key[0] == 'p')
				c->prompt_tokens = v;
			else
				c->completion_tokens = v;
			found = true;
			i = end;
			break;
		default:
			i++;
			break;
		}
	}
	return (false);
}

bool
usage_parse(const uint8_t *b, size_t len, struct usage_counts *c)
{
	static const char	 pat[] = "\"usage\"";
	const size_t		 plen = sizeof(pat) - 1;
	size_t			 i, j;
	int			 tries = 0;

	memset(c, 0, sizeof(*c));
	if (len < plen)
		return (false);
	for (i = len - plen + 1; i-- > 0 && tries < USAGE_MAX_TRIES;) {
		if (b[i] != '"' || memcmp(b + i, pat, plen) != 0)
			continue;
		j = usage_skip_ws(b, i + plen, len);
		if (j >= len || b[j] != ':')
			continue;
		j = usage_skip_ws(b, j + 1, len);
		if (j >= len || b[j] != '{')
			continue;	/* "usage": null, of a chunk before */
		tries++;
		if (usage_object(b, j, len, c))
			return (true);
	}
	memset(c, 0, sizeof(*c));
	return (false);
}
