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

#include "kvtext.h"
#include "xmalloc.h"
#include "supervisord/base/base.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"

#define JOURNAL_FILE		"state"
#define JOURNAL_MAX_VALUE	4096

int
journal_encode(const struct journal *j, char **out, size_t *outlen)
{
	struct strbuf	b = STRBUF_INIT;
	char		ev[64];

	strbuf_printf(&b, "# llmux supervisor state; written by "
	    "llmux-supervisord on every change, read at its start\n");
	strbuf_printf(&b, "llmux-state %d\n", JOURNAL_VERSION);
	strbuf_printf(&b, "switcher manual=%d", j->manual ? 1 : 0);
	if (j->pinned != NULL)
		kvt_kv(&b, "pinned", j->pinned);
	if (j->active != NULL)
		kvt_kv(&b, "active", j->active);
	strbuf_add(&b, "\n", 1);
	for (size_t i = 0; i < j->n; i++) {
		const struct journal_entry *e = &j->v[i];

		strbuf_add(&b, "model", 5);
		kvt_kv(&b, "name", e->name);
		strbuf_printf(&b, " pid=%d start=%llu state=%s generation=%llu "
		    "port=%u tp=%u", (int)e->pid,
		    (unsigned long long)e->start_time,
		    model_pstate_name(e->pstate),
		    (unsigned long long)e->generation, (unsigned)e->port,
		    e->tp);
		if (e->has_sleeping)
			strbuf_printf(&b, " sleeping=%s", eviction_format(
			    &e->sleeping, ev, sizeof(ev)));
		if (e->has_override)
			strbuf_printf(&b, " override=%s", eviction_format(
			    &e->override, ev, sizeof(ev)));
		if (e->busy != NULL)
			kvt_kv(&b, "busy", e->busy);
		if (e->cgroup != NULL)
			kvt_kv(&b, "cgroup", e->cgroup);
		if (e->images != NULL)
			kvt_kv(&b, "images", e->images);
		if (e->reason != NULL)
			kvt_kv(&b, "reason", e->reason);
		if (e->store_url != NULL)
			kvt_kv(&b, "store_url", e->store_url);
		if (e->store_error != NULL)
			kvt_kv(&b, "store_error", e->store_error);
		strbuf_add(&b, "\n", 1);
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

static int
jdec_eviction(struct kvt_dec *d, const char *key, const char *v, size_t len,
    struct eviction *out)
{
	char	buf[64];

	if (len == 0 || len >= sizeof(buf))
		return (kvt_fail(d, "key '%s': bad eviction", key));
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (strchr(buf, '+') == NULL || eviction_parse(buf, out) != 0)
		return (kvt_fail(d, "key '%s': bad eviction", key));
	return (0);
}

static int
jdec_switcher_kv(struct kvt_dec *d, const char *k, size_t klen, const char *v,
    size_t vlen, void *arg)
{
	struct journal	*j = arg;
	uint64_t	 n;

	if (kvt_key(k, klen, "manual")) {
		if (kvt_uint(d, "manual", v, vlen, 1, &n) != 0)
			return (-1);
		j->manual = n == 1;
	} else if (kvt_key(k, klen, "pinned")) {
		if (vlen > 0)
			return (kvt_str(d, "pinned", v, vlen, CONFIG_NAME_MAX,
			    &j->pinned));
	} else if (kvt_key(k, klen, "active")) {
		if (vlen > 0)
			return (kvt_str(d, "active", v, vlen, CONFIG_NAME_MAX,
			    &j->active));
	}
	return (0);
}

static int
jdec_model_kv(struct kvt_dec *d, const char *k, size_t klen, const char *v,
    size_t vlen, void *arg)
{
	struct journal_entry	*e = arg;
	uint64_t		 n;
	char			 buf[32];

	if (kvt_key(k, klen, "name"))
		return (kvt_str(d, "name", v, vlen, CONFIG_NAME_MAX,
		    &e->name));
	if (kvt_key(k, klen, "pid")) {
		if (kvt_uint(d, "pid", v, vlen, INT_MAX, &n) != 0)
			return (-1);
		e->pid = (pid_t)n;
	} else if (kvt_key(k, klen, "start")) {
		if (kvt_uint(d, "start", v, vlen, UINT64_MAX, &n) != 0)
			return (-1);
		e->start_time = n;
	} else if (kvt_key(k, klen, "generation")) {
		if (kvt_uint(d, "generation", v, vlen, UINT64_MAX, &n) != 0)
			return (-1);
		e->generation = n;
	} else if (kvt_key(k, klen, "port")) {
		if (kvt_uint(d, "port", v, vlen, UINT16_MAX, &n) != 0)
			return (-1);
		e->port = (uint16_t)n;
	} else if (kvt_key(k, klen, "tp")) {
		if (kvt_uint(d, "tp", v, vlen, 1024, &n) != 0)
			return (-1);
		e->tp = (unsigned)n;
	} else if (kvt_key(k, klen, "state")) {
		if (vlen >= sizeof(buf))
			return (kvt_fail(d, "key 'state': unknown state"));
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
		if (model_pstate_parse(buf, &e->pstate) != 0)
			return (kvt_fail(d, "key 'state': unknown state"));
	} else if (kvt_key(k, klen, "sleeping")) {
		if (jdec_eviction(d, "sleeping", v, vlen, &e->sleeping) != 0)
			return (-1);
		e->has_sleeping = true;
	} else if (kvt_key(k, klen, "override")) {
		if (jdec_eviction(d, "override", v, vlen, &e->override) != 0)
			return (-1);
		e->has_override = true;
	} else if (kvt_key(k, klen, "busy"))
		return (kvt_str(d, "busy", v, vlen, 16, &e->busy));
	else if (kvt_key(k, klen, "cgroup"))
		return (kvt_str(d, "cgroup", v, vlen, JOURNAL_MAX_VALUE,
		    &e->cgroup));
	else if (kvt_key(k, klen, "images"))
		return (kvt_str(d, "images", v, vlen, JOURNAL_MAX_VALUE,
		    &e->images));
	else if (kvt_key(k, klen, "reason"))
		return (kvt_str(d, "reason", v, vlen, PROTO_MAX_TEXT,
		    &e->reason));
	else if (kvt_key(k, klen, "store_url"))
		return (kvt_str(d, "store_url", v, vlen, JOURNAL_MAX_VALUE,
		    &e->store_url));
	else if (kvt_key(k, klen, "store_error"))
		return (kvt_str(d, "store_error", v, vlen, PROTO_MAX_TEXT,
		    &e->store_error));
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
	free(e->store_url);
	free(e->store_error);
	memset(e, 0, sizeof(*e));
}

static int
jdec_model(struct kvt_dec *d, struct journal *j, const char *p, const char *end)
{
	struct journal_entry	e;

	memset(&e, 0, sizeof(e));
	e.tp = 1;
	if (j->n >= CONFIG_MAX_MODELS * 2)
		return (kvt_fail(d, "too many models"));
	if (kvt_words(d, p, end, jdec_model_kv, &e) != 0) {
		journal_entry_free(&e);
		return (-1);
	}
	if (e.name == NULL || *e.name == '\0') {
		journal_entry_free(&e);
		return (kvt_fail(d, "model without a name"));
	}
	for (size_t i = 0; i < j->n; i++) {
		if (strcmp(j->v[i].name, e.name) == 0) {
			journal_entry_free(&e);
			return (kvt_fail(d, "model listed twice"));
		}
	}
	j->v = xreallocarray(j->v, j->n + 1, sizeof(*j->v));
	j->v[j->n++] = e;
	return (0);
}

/* One line after the header: "switcher ..." or "model ...". */
static int
jdec_line(struct kvt_dec *d, const char *kind, size_t klen, const char *rest,
    const char *end, void *arg)
{
	struct journal	*j = arg;

	if (kvt_key(kind, klen, "switcher"))
		return (kvt_words(d, rest, end, jdec_switcher_kv, j));
	if (kvt_key(kind, klen, "model"))
		return (jdec_model(d, j, rest, end));
	return (0);
}

int
journal_decode(const char *buf, size_t len, struct journal *j, char *err,
    size_t errlen)
{
	struct kvt_dec	d = { err, errlen, "state journal", "line", 0 };

	memset(j, 0, sizeof(*j));
	if (len > JOURNAL_MAX_BYTES)
		return (kvt_fail(&d, "journal of %zu bytes is over the limit",
		    len));
	if (kvt_parse(&d, buf, len, JOURNAL_MAX_LINE, "llmux-state",
	    JOURNAL_VERSION, jdec_line, j) != 0) {
		journal_free(j);
		return (-1);
	}
	return (0);
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
