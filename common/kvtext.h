/*
 * kvtext.h -- the small line format of the files llmux keeps on disk (the
 * supervisor's state journal, checkpoint manifests):
 *
 *     # a comment
 *     <magic> <version>
 *     <kind> key=value key=value ...
 *
 * Values are percent-encoded (spaces, '=', '%', controls and non-ASCII
 * bytes), so a line splits on spaces. Reading is strict — a line and
 * value length limit, no NUL byte, no bad escape, no key twice — and
 * skips line kinds and keys it does not know, so versions can grow.
 */
#ifndef LLMUX_KVTEXT_H
#define LLMUX_KVTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Writing (into a strbuf): " key=value" with the value percent-encoded. */
void	kvt_kv(struct strbuf *, const char *key, const char *value);

/* Reading: where errors go, and the line being read. */
struct kvt_dec {
	char		*err;
	size_t		 errlen;
	const char	*what;		/* "state journal", in messages */
	const char	*prefix;	/* "line", "manifest line" */
	unsigned	 line;
};

int	kvt_fail(struct kvt_dec *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Percent-decode a value of at most max bytes into *out (NULL before). */
int	kvt_str(struct kvt_dec *, const char *key, const char *v, size_t len,
	    size_t max, char **out);
int	kvt_uint(struct kvt_dec *, const char *key, const char *v, size_t len,
	    uint64_t max, uint64_t *out);
bool	kvt_key(const char *k, size_t klen, const char *want);

/* Each key=value word of a line after its kind. */
typedef int	(*kvt_kv_fn)(struct kvt_dec *, const char *k, size_t klen,
		    const char *v, size_t vlen, void *arg);
int	kvt_words(struct kvt_dec *, const char *p, const char *end,
	    kvt_kv_fn, void *);

/*
 * Read a whole file: the header "<magic> <version>" must come first and
 * carry exactly this version; each later line is passed to fn with its
 * kind (the first word) and the rest. Comments and blank lines are
 * skipped. -1 with the reason in the decoder's err.
 */
typedef int	(*kvt_line_fn)(struct kvt_dec *, const char *kind, size_t klen,
		    const char *rest, const char *end, void *arg);
int	kvt_parse(struct kvt_dec *, const char *buf, size_t len,
	    size_t max_line, const char *magic, unsigned version,
	    kvt_line_fn, void *);

#endif
