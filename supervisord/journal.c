/*
 * journal.c -- the state journal's format: what the supervisor owns
 * (model -> pid, process start time, state, eviction in force, images,
 * cgroup), as text an operator can read, written atomically (a temp file,
 * then a rename; with fsync of both when asked to be durable) and read
 * back strictly, since a file on disk is input like any other.
 *
 *     llmux-state 1
 *     switcher manual=0 pinned= active=a
 *     model name=a pid=4242 start=123456 state=running generation=3 ...
 *
 * Values are percent-encoded (bytes outside '!'..'~', '%' and '='), so a
 * value holds no space and a line splits on spaces. Unknown line kinds
 * and keys are skipped, so a newer supervisor's journal can be read;
 * a newer version number is refused.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"
#include "xmalloc.h"

#define JOURNAL_FILE		"state"
#define JOURNAL_MAX_VALUE	4096

struct jbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
jbuf_add(struct jbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap == 0 ? 1024 : b->cap * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	char	*s;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	jbuf_add(b, s, (size_t)n);
	free(s);
}

/* " key=value" with the value percent-encoded. */
static void
jbuf_kv(struct jbuf *b, const char *key, const char *v)
{
	static const char	hex[] = "0123456789ABCDEF";
	char			enc[3];

	jbuf_printf(b, " %s=", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == '%' || *p == '=') {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			jbuf_add(b, enc, 3);
		} else
			jbuf_add(b, (const char *)p, 1);
	}
}

int
journal_encode(const struct journal *j, char **out, size_t *outlen)
{
	struct jbuf	b = { NULL, 0, 0 };
	char		ev[64];

	jbuf_printf(&b, "# llmux supervisor state; written by "
	    "llmux-supervisord on every change, read at its start\n");
	jbuf_printf(&b, "llmux-state %d\n", JOURNAL_VERSION);
	jbuf_printf(&b, "switcher manual=%d", j->manual ? 1 : 0);
	if (j->pinned != NULL)
		jbuf_kv(&b, "pinned", j->pinned);
	if (j->active != NULL)
		jbuf_kv(&b, "active", j->active);
	jbuf_add(&b, "\n", 1);
	for (size_t i = 0; i < j->n; i++) {
		const struct journal_entry *e = &j->v[i];

		jbuf_add(&b, "model", 5);
		jbuf_kv(&b, "name", e->name);
		jbuf_printf(&b, " pid=%d start=%llu state=%s generation=%llu "
		    "port=%u tp=%u", (int)e->pid,
		    (unsigned long long)e->start_time,
		    model_pstate_name(e->pstate),
		    (unsigned long long)e->generation, (unsigned)e->port,
		    e->tp);
		if (e->has_sleeping)
			jbuf_printf(&b, " sleeping=%s", eviction_format(
			    &e->sleeping, ev, sizeof(ev)));
		if (e->has_override)
			jbuf_printf(&b, " override=%s", eviction_format(
			    &e->override, ev, sizeof(ev)));
		if (e->busy != NULL)
			jbuf_kv(&b, "busy", e->busy);
		if (e->cgroup != NULL)
			jbuf_kv(&b, "cgroup", e->cgroup);
		if (e->images != NULL)
			jbuf_kv(&b, "images", e->images);
		if (e->reason != NULL)
			jbuf_kv(&b, "reason", e->reason);
		jbuf_add(&b, "\n", 1);
	}
	if (b.len > JOURNAL_MAX_BYTES) {
		free(b.p);
		return (-1);
	}
	*out = b.p;
	*outlen = b.len;
	return (0);
}

/* ---- decoding ------------------------------------------------------------- */

struct jdec {
	char		*err;
	size_t		 errlen;
	unsigned	 line;
};

static int __attribute__((format(printf, 2, 3)))
jdec_fail(struct jdec *d, const char *fmt, ...)
{
	char	msg[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(d->err, d->errlen, "line %u: %s", d->line, msg);
	return (-1);
}

static int
jdec_hex(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/* Percent-decode v[0..len) into a new string of at most max bytes. */
static int
jdec_str(struct jdec *d, const char *key, const char *v, size_t len,
    size_t max, char **out)
{
	char	*s;
	size_t	 o = 0;

	if (*out != NULL)
		return (jdec_fail(d, "key '%s' appears twice", key));
	s = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '%') {
			int	hi, lo;

			if (i + 2 >= len || (hi = jdec_hex(v[i + 1])) < 0 ||
			    (lo = jdec_hex(v[i + 2])) < 0 ||
			    (hi == 0 && lo == 0)) {
				free(s);
				return (jdec_fail(d, "key '%s': bad escape",
				    key));
			}
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			s[o++] = v[i];
	}
	s[o] = '\0';
	if (o > max) {
		free(s);
		return (jdec_fail(d, "key '%s': value of %zu bytes is over "
		    "the limit of %zu", key, o, max));
	}
	*out = s;
	return (0);
}

static int
jdec_uint(struct jdec *d, const char *key, const char *v, size_t len,
    uint64_t max, uint64_t *out)
{
	uint64_t	n = 0;

	if (len == 0 || len > 20)
		return (jdec_fail(d, "key '%s': expected a number", key));
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return (jdec_fail(d, "key '%s': expected a number",
			    key));
		if (n > (UINT64_MAX - 9) / 10)
			return (jdec_fail(d, "key '%s': number too large",
			    key));
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > max)
		return (jdec_fail(d, "key '%s': %llu is out of range", key,
		    (unsigned long long)n));
	*out = n;
	return (0);
}

static int
jdec_eviction(struct jdec *d, const char *key, const char *v, size_t len,
    struct eviction *out)
{
	char	buf[64];

	if (len == 0 || len >= sizeof(buf))
		return (jdec_fail(d, "key '%s': bad eviction", key));
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (strchr(buf, '+') == NULL || eviction_parse(buf, out) != 0)
		return (jdec_fail(d, "key '%s': bad eviction", key));
	return (0);
}

/* Call fn for each "key=value" word after the line's first word. */
typedef int	(*jdec_kv_fn)(struct jdec *, const char *, size_t,
		    const char *, size_t, void *);

static int
jdec_words(struct jdec *d, const char *p, const char *end, jdec_kv_fn fn,
    void *arg)
{
	const char	*w, *eq;

	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		w = p;
		while (p < end && *p != ' ')
			p++;
		if ((eq = memchr(w, '=', (size_t)(p - w))) == NULL ||
		    eq == w)
			return (jdec_fail(d, "expected key=value"));
		if (fn(d, w, (size_t)(eq - w), eq + 1, (size_t)(p - eq - 1),
		    arg) != 0)
			return (-1);
	}
	return (0);
}

static bool
jdec_key(const char *k, size_t klen, const char *want)
{
	return (strlen(want) == klen && memcmp(k, want, klen) == 0);
}

static int
jdec_switcher_kv(struct jdec *d, const char *k, size_t klen, const char *v,
    size_t vlen, void *arg)
{
	struct journal	*j = arg;
	uint64_t	 n;

	if (jdec_key(k, klen, "manual")) {
		if (jdec_uint(d, "manual", v, vlen, 1, &n) != 0)
			return (-1);
		j->manual = n == 1;
	} else if (jdec_key(k, klen, "pinned")) {
		if (vlen > 0)
			return (jdec_str(d, "pinned", v, vlen, CONFIG_NAME_MAX,
			    &j->pinned));
	} else if (jdec_key(k, klen, "active")) {
		if (vlen > 0)
			return (jdec_str(d, "active", v, vlen, CONFIG_NAME_MAX,
			    &j->active));
	}
	return (0);
}

static int
jdec_model_kv(struct jdec *d, const char *k, size_t klen, const char *v,
    size_t vlen, void *arg)
{
	struct journal_entry	*e = arg;
	uint64_t		 n;
	char			 buf[32];

	if (jdec_key(k, klen, "name"))
		return (jdec_str(d, "name", v, vlen, CONFIG_NAME_MAX,
		    &e->name));
	if (jdec_key(k, klen, "pid")) {
		if (jdec_uint(d, "pid", v, vlen, INT_MAX, &n) != 0)
			return (-1);
		e->pid = (pid_t)n;
	} else if (jdec_key(k, klen, "start")) {
		if (jdec_uint(d, "start", v, vlen, UINT64_MAX, &n) != 0)
			return (-1);
		e->start_time = n;
	} else if (jdec_key(k, klen, "generation")) {
		if (jdec_uint(d, "generation", v, vlen, UINT64_MAX, &n) != 0)
			return (-1);
		e->generation = n;
	} else if (jdec_key(k, klen, "port")) {
		if (jdec_uint(d, "port", v, vlen, UINT16_MAX, &n) != 0)
			return (-1);
		e->port = (uint16_t)n;
	} else if (jdec_key(k, klen, "tp")) {
		if (jdec_uint(d, "tp", v, vlen, 1024, &n) != 0)
			return (-1);
		e->tp = (unsigned)n;
	} else if (jdec_key(k, klen, "state")) {
		if (vlen >= sizeof(buf))
			return (jdec_fail(d, "key 'state': unknown state"));
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
		if (model_pstate_parse(buf, &e->pstate) != 0)
			return (jdec_fail(d, "key 'state': unknown state"));
	} else if (jdec_key(k, klen, "sleeping")) {
		if (jdec_eviction(d, "sleeping", v, vlen, &e->sleeping) != 0)
			return (-1);
		e->has_sleeping = true;
	} else if (jdec_key(k, klen, "override")) {
		if (jdec_eviction(d, "override", v, vlen, &e->override) != 0)
			return (-1);
		e->has_override = true;
	} else if (jdec_key(k, klen, "busy"))
		return (jdec_str(d, "busy", v, vlen, 16, &e->busy));
	else if (jdec_key(k, klen, "cgroup"))
		return (jdec_str(d, "cgroup", v, vlen, JOURNAL_MAX_VALUE,
		    &e->cgroup));
	else if (jdec_key(k, klen, "images"))
		return (jdec_str(d, "images", v, vlen, JOURNAL_MAX_VALUE,
		    &e->images));
	else if (jdec_key(k, klen, "reason"))
		return (jdec_str(d, "reason", v, vlen, PROTO_MAX_TEXT,
		    &e->reason));
	return (0);
}

static void
journal_entry_free(struct journal_entry *e)
{
	free(e->name);
	free(e->busy);
	free(e->cgroup);
	free(e->images);
	free(e->reason);
	memset(e, 0, sizeof(*e));
}

static int
jdec_model(struct jdec *d, struct journal *j, const char *p, const char *end)
{
	struct journal_entry	e;

	memset(&e, 0, sizeof(e));
	e.tp = 1;
	if (j->n >= CONFIG_MAX_MODELS * 2)
		return (jdec_fail(d, "too many models"));
	if (jdec_words(d, p, end, jdec_model_kv, &e) != 0) {
		journal_entry_free(&e);
		return (-1);
	}
	if (e.name == NULL || *e.name == '\0') {
		journal_entry_free(&e);
		return (jdec_fail(d, "model without a name"));
	}
	for (size_t i = 0; i < j->n; i++) {
		if (strcmp(j->v[i].name, e.name) == 0) {
			journal_entry_free(&e);
			return (jdec_fail(d, "model listed twice"));
		}
	}
	j->v = xreallocarray(j->v, j->n + 1, sizeof(*j->v));
	j->v[j->n++] = e;
	return (0);
}

int
journal_decode(const char *buf, size_t len, struct journal *j, char *err,
    size_t errlen)
{
	struct jdec	 d = { err, errlen, 0 };
	const char	*p = buf, *end = buf + len, *nl, *w;
	bool		 header = false;
	uint64_t	 version;

	memset(j, 0, sizeof(*j));
	if (len > JOURNAL_MAX_BYTES)
		return (jdec_fail(&d, "journal of %zu bytes is over the limit",
		    len));
	while (p < end) {
		d.line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (nl - p > JOURNAL_MAX_LINE) {
			jdec_fail(&d, "line too long");
			goto fail;
		}
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			jdec_fail(&d, "NUL byte");
			goto fail;
		}
		if (p == nl || *p == '#') {
			p = nl + 1;
			continue;
		}
		w = p;
		while (w < nl && *w != ' ')
			w++;
		if (!header) {
			if ((size_t)(w - p) != 11 ||
			    memcmp(p, "llmux-state", 11) != 0) {
				jdec_fail(&d, "not an llmux state journal");
				goto fail;
			}
			while (w < nl && *w == ' ')
				w++;
			if (jdec_uint(&d, "version", w, (size_t)(nl - w),
			    UINT32_MAX, &version) != 0)
				goto fail;
			if (version != JOURNAL_VERSION) {
				jdec_fail(&d, "journal version %llu, this "
				    "supervisor reads version %d",
				    (unsigned long long)version,
				    JOURNAL_VERSION);
				goto fail;
			}
			header = true;
		} else if ((size_t)(w - p) == 8 &&
		    memcmp(p, "switcher", 8) == 0) {
			if (jdec_words(&d, w, nl, jdec_switcher_kv, j) != 0)
				goto fail;
		} else if ((size_t)(w - p) == 5 && memcmp(p, "model", 5) == 0) {
			if (jdec_model(&d, j, w, nl) != 0)
				goto fail;
		}
		p = nl + 1;
	}
	if (!header) {
		jdec_fail(&d, "empty journal");
		goto fail;
	}
	return (0);
fail:
	journal_free(j);
	return (-1);
}

void
journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		journal_entry_free(&j->v[i]);
	free(j->v);
	free(j->pinned);
	free(j->active);
	memset(j, 0, sizeof(*j));
}

/* ---- files ---------------------------------------------------------------- */

char *
journal_path(const char *dir)
{
	char	*path;

	xasprintf(&path, "%s/%s", dir, JOURNAL_FILE);
	return (path);
}

int
journal_write_file(const char *dir, const struct journal *j, bool durable,
    char *err, size_t errlen)
{
	char	*buf;
	size_t	 len;
	int	 rc;

	if (journal_encode(j, &buf, &len) != 0) {
		snprintf(err, errlen, "journal too large");
		return (-1);
	}
	rc = journal_write_buf(dir, buf, len, durable, err, errlen);
	free(buf);
	return (rc);
}

/* The same with the text already encoded; no allocation but the paths. */
int
journal_write_buf(const char *dir, const char *buf, size_t len, bool durable,
    char *err, size_t errlen)
{
	char	*path, *tmp;
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd, dfd, rc = -1;

	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return (-1);
	}
	path = journal_path(dir);
	xasprintf(&tmp, "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0640)) == -1) {
		snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "write %s: %s", tmp,
			    strerror(errno));
			close(fd);
			goto out;
		}
		off += (size_t)n;
	}
	if (durable && fsync(fd) == -1) {
		snprintf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (durable && (dfd = open(dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	rc = 0;
out:
	free(path);
	free(tmp);
	return (rc);
}

int
journal_read_file(const char *dir, struct journal *j, char *err,
    size_t errlen)
{
	char		*path, *buf;
	struct stat	 sb;
	size_t		 len;
	int		 rc;

	memset(j, 0, sizeof(*j));
	path = journal_path(dir);
	if (stat(path, &sb) == -1) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc == -1)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return (rc);
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > JOURNAL_MAX_BYTES) {
		snprintf(err, errlen, "%s: not a regular file of at most %u "
		    "bytes", path, JOURNAL_MAX_BYTES);
		free(path);
		return (-1);
	}
	if ((buf = procfs_read_file(path, JOURNAL_MAX_BYTES, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return (-1);
	}
	free(path);
	rc = journal_decode(buf, len, j, err, errlen) == 0 ? 1 : -1;
	free(buf);
	return (rc);
}
