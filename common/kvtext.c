/*
 * kvtext.c -- writing and strictly reading the key=value line format of
 * llmux's files on disk (see kvtext.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "kvtext.h"
#include "xmalloc.h"

void
kvt_kv(struct strbuf *b, const char *key, const char *v)
{
	static const char	hex[] = "0123456789ABCDEF";
	char			enc[3];

	strbuf_printf(b, " %s=", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '%' || *p == '=') {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			strbuf_add(b, enc, 3);
		} else
			strbuf_add(b, (const char *)p, 1);
	}
}

int
kvt_fail(struct kvt_dec *d, const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(d->err, d->errlen, "%s %u: %s", d->prefix, d->line, msg);
	return (-1);
}

int
kvt_str(struct kvt_dec *d, const char *key, const char *v, size_t len,
    size_t max, char **out)
{
	char	*s;
	size_t	 o = 0;
	int	 hi, lo;

	if (*out != NULL)
		return (kvt_fail(d, "key '%s' appears twice", key));
	if (len > max * 3)
		return (kvt_fail(d, "key '%s': value of %zu bytes is over the "
		    "limit of %zu", key, len, max));
	s = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		if (v[i] != '%') {
			s[o++] = v[i];
			continue;
		}
		if (i + 2 >= len || (hi = hex_digit(v[i + 1])) < 0 ||
		    (lo = hex_digit(v[i + 2])) < 0 || (hi == 0 && lo == 0)) {
			free(s);
			return (kvt_fail(d, "key '%s': bad escape", key));
		}
		s[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	s[o] = '\0';
	if (o > max) {
		free(s);
		return (kvt_fail(d, "key '%s': value of %zu bytes is over the "
		    "limit of %zu", key, o, max));
	}
	*out = s;
	return (0);
}

int
kvt_uint(struct kvt_dec *d, const char *key, const char *v, size_t len,
    uint64_t max, uint64_t *out)
{
	uint64_t	n = 0;

	if (len == 0 || len > 20)
		return (kvt_fail(d, "key '%s': expected a number", key));
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return (kvt_fail(d, "key '%s': expected a number",
			    key));
		if (n > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
			return (kvt_fail(d, "key '%s': number too large",
			    key));
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > max)
		return (kvt_fail(d, "key '%s': %llu is out of range", key,
		    (unsigned long long)n));
	*out = n;
	return (0);
}

bool
kvt_key(const char *k, size_t klen, const char *want)
{
	return (strlen(want) == klen && memcmp(k, want, klen) == 0);
}

int
kvt_words(struct kvt_dec *d, const char *p, const char *end, kvt_kv_fn fn,
    void *arg)
{
	const char	*w, *eq;

	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		for (w = p; p < end && *p != ' '; p++)
			;
		if ((eq = memchr(w, '=', (size_t)(p - w))) == NULL || eq == w)
			return (kvt_fail(d, "expected key=value, not '%.*s'",
			    (int)(p - w > 40 ? 40 : p - w), w));
		if (fn(d, w, (size_t)(eq - w), eq + 1, (size_t)(p - eq - 1),
		    arg) != 0)
			return (-1);
	}
	return (0);
}

int
kvt_parse(struct kvt_dec *d, const char *buf, size_t len, size_t max_line,
    const char *magic, unsigned version, kvt_line_fn fn, void *arg)
{
	const char	*p = buf, *end = buf + len, *nl, *w;
	bool		 header = false;
	uint64_t	 v;

	d->line = 0;
	for (; p < end; p = nl + 1) {
		d->line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) > max_line)
			return (kvt_fail(d, "line too long"));
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL)
			return (kvt_fail(d, "NUL byte"));
		if (p == nl || *p == '#')
			continue;
		for (w = p; w < nl && *w != ' '; w++)
			;
		if (header) {
			if (fn(d, p, (size_t)(w - p), w, nl, arg) != 0)
				return (-1);
			continue;
		}
		if (!kvt_key(p, (size_t)(w - p), magic))
			return (kvt_fail(d, "not an llmux %s", d->what));
		while (w < nl && *w == ' ')
			w++;
		if (kvt_uint(d, "version", w, (size_t)(nl - w), UINT32_MAX,
		    &v) != 0)
			return (-1);
		if (v != version)
			return (kvt_fail(d, "%s version %llu, this program "
			    "reads version %u", d->what, (unsigned long long)v,
			    version));
		header = true;
	}
	if (!header)
		return (kvt_fail(d, "empty %s", d->what));
	return (0);
}
