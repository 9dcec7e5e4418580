/*
 * store_key.c -- where a model's checkpoint images live in the object
 * store's bucket (store_int.h has the layout), and the URI encoding of
 * Signature Version 4 that keys and query values are sent in. Pure
 * functions: the unit tests pin the layout down.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"
#include "store_int.h"

static const char	store_key_hex[] = "0123456789ABCDEF";

static bool
store_key_unreserved(unsigned char c)
{
	return (isascii(c) && (isalnum(c) || c == '-' || c == '.' ||
	    c == '_' || c == '~'));
}

/*
 * Model names hold letters, digits and . _ : / @ - (config_keys.c); '~'
 * is not among them, so it escapes the others without any collision.
 */
char *
store_key_model(const char *model)
{
	size_t	 len = strlen(model), o = 0;
	char	*out = xmalloc(len * 3 + 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)model[i];

		if (store_key_unreserved(c) && c != '~' &&
		    !(c == '.' && i == 0))
			out[o++] = (char)c;
		else {
			out[o++] = '~';
			out[o++] = store_key_hex[c >> 4];
			out[o++] = store_key_hex[c & 15];
		}
	}
	out[o] = '\0';
	return (out);
}

void
store_key_id(int64_t created, const char *sha256hex,
    char id[STORE_ID_LEN + 1])
{
	struct tm	tm;
	time_t		t = (time_t)created;

	if (created < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year > 8099)
		memset(&tm, 0, sizeof(tm));
	snprintf(id, STORE_ID_LEN + 1, "%04u%02u%02uT%02u%02u%02uZ-%.64s",
	    (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)(tm.tm_mon + 1) %
	    100, (unsigned)tm.tm_mday % 100, (unsigned)tm.tm_hour % 100,
	    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100, sha256hex);
}

bool
store_key_id_valid(const char *s, size_t len)
{
	if (len != STORE_ID_LEN)
		return (false);
	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (i == 8) {
			if (c != 'T')
				return (false);
		} else if (i == STORE_TIME_LEN - 1) {
			if (c != 'Z')
				return (false);
		} else if (i == STORE_TIME_LEN) {
			if (c != '-')
				return (false);
		} else if (i < STORE_TIME_LEN) {
			if (!isdigit(c))
				return (false);
		} else if (!isdigit(c) && !(c >= 'a' && c <= 'f'))
			return (false);
	}
	return (true);
}

int
store_key_parse_latest(const char *s, size_t len, char id[STORE_ID_LEN + 1])
{
	if (len > 0 && s[len - 1] == '\n')
		len--;
	if (!store_key_id_valid(s, len))
		return (-1);
	memcpy(id, s, len);
	id[len] = '\0';
	return (0);
}

/*
 * Age is an ID's time part: two checkpoints made in the same second
 * differ only by their hashes, which say nothing of their order, so the
 * other one of such a pair is the older (one writer per model).
 */
bool
store_key_superseded(const char *old, const char *id)
{
	return (strcmp(old, id) != 0 &&
	    strncmp(old, id, STORE_TIME_LEN) <= 0);
}

int
store_key_listed_id(const char *key, const char *model,
    char id[STORE_ID_LEN + 1])
{
	size_t		 mlen = strlen(model);
	const char	*rest, *slash;

	if (strncmp(key, model, mlen) != 0 || key[mlen] != '/')
		return (-1);
	rest = key + mlen + 1;
	if ((slash = strchr(rest, '/')) == NULL || slash[1] == '\0' ||
	    !store_key_id_valid(rest, (size_t)(slash - rest)))
		return (-1);
	memcpy(id, rest, STORE_ID_LEN);
	id[STORE_ID_LEN] = '\0';
	return (0);
}

char *
store_key_escape(const char *s, bool keep_slash)
{
	size_t	 len = strlen(s), o = 0;
	char	*out = xmalloc(len * 3 + 1);

	for (size_t i = 0; i < len; i++) {
		unsigned char	c = (unsigned char)s[i];

		if (store_key_unreserved(c) || (keep_slash && c == '/'))
			out[o++] = (char)c;
		else {
			out[o++] = '%';
			out[o++] = store_key_hex[c >> 4];
			out[o++] = store_key_hex[c & 15];
		}
	}
	out[o] = '\0';
	return (out);
}
