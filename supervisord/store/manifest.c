/*
 * manifest.c -- a checkpoint's manifest: encoding, strict decoding (it is
 * a file on disk, so input like any other: limits on size, lines, values
 * and file names, no duplicates), the checksums of the image files, and
 * the comparison with this machine.
 *
 *     llmux-checkpoint 1
 *     model name=a path=Qwen/Qwen2.5-7B port=8001 tp=1 eviction=offload+checkpoint
 *     machine driver=570.86.15 cuda=12080 gpus=2 created=1767225600
 *     gpu index=0 name=NVIDIA%20H100%2080GB%20HBM3 uuid=GPU-8f6b...
 *     file name=pages-1.img size=1048576 sha256=9f86d0...
 *
 * Values are percent-encoded as in the state journal. Unknown lines and
 * keys are skipped; a newer version number is refused.
 *
 * The files are read and written below a directory descriptor opened
 * safely (base/fs.c), never by path: each with O_NOFOLLOW, a regular file
 * owned by root or by the supervisor's user.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvtext.h"
#include "xmalloc.h"
#include "supervisord/store/store.h"

#define MANIFEST_MAX_VALUE	4096
#define MANIFEST_READ_CHUNK	(1u << 20)

/* ---- encoding --------------------------------------------------------------- */

int
manifest_encode(const struct manifest *m, char **out, size_t *outlen)
{
	struct strbuf	b = STRBUF_INIT;
	char		ev[64];

	strbuf_printf(&b, "# llmux checkpoint manifest: the images of this "
	    "directory and the machine they were made on\n");
	strbuf_printf(&b, "llmux-checkpoint %d\n", MANIFEST_VERSION);
	strbuf_add(&b, "model", 5);
	kvt_kv(&b, "name", m->model != NULL ? m->model : "");
	kvt_kv(&b, "path", m->model_path != NULL ? m->model_path : "");
	strbuf_printf(&b, " port=%u tp=%u", m->port, m->tp);
	if (m->has_eviction)
		strbuf_printf(&b, " eviction=%s", eviction_format(&m->eviction, ev,
		    sizeof(ev)));
	strbuf_add(&b, "\nmachine", 8);
	kvt_kv(&b, "driver", m->driver != NULL ? m->driver : "none");
	strbuf_printf(&b, " cuda=%d gpus=%zu created=%lld\n", m->cuda, m->ngpus,
	    (long long)m->created);
	for (size_t i = 0; i < m->ngpus; i++) {
		strbuf_printf(&b, "gpu index=%u", m->gpus[i].index);
		kvt_kv(&b, "name", m->gpus[i].name);
		kvt_kv(&b, "uuid", m->gpus[i].uuid);
		strbuf_add(&b, "\n", 1);
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		strbuf_add(&b, "file", 4);
		kvt_kv(&b, "name", m->files[i].name);
		strbuf_printf(&b, " size=%llu sha256=%s\n",
		    (unsigned long long)m->files[i].size, m->files[i].sha256);
	}
	if (b.len > MANIFEST_MAX_BYTES) {
		free(b.p);
		return (-1);
	}
	*out = b.p;
	*outlen = b.len;
	return (0);
}

/* ---- decoding --------------------------------------------------------------- */

static int
md_model_kv(struct kvt_dec *d, const char *k, size_t kl, const char *v,
    size_t vl, void *arg)
{
	struct manifest	*m = arg;
	uint64_t	 n;
	char		*s = NULL;
	int		 rc;

	if (kvt_key(k, kl, "name"))
		return (kvt_str(d, "name", v, vl, MANIFEST_MAX_VALUE, &m->model));
	if (kvt_key(k, kl, "path"))
		return (kvt_str(d, "path", v, vl, MANIFEST_MAX_VALUE, &m->model_path));
	if (kvt_key(k, kl, "port")) {
		if (kvt_uint(d, "port", v, vl, 65535, &n) != 0)
			return (-1);
		m->port = (unsigned)n;
	} else if (kvt_key(k, kl, "tp")) {
		if (kvt_uint(d, "tp", v, vl, 1024, &n) != 0)
			return (-1);
		m->tp = (unsigned)n;
	} else if (kvt_key(k, kl, "eviction")) {
		if (kvt_str(d, "eviction", v, vl, MANIFEST_MAX_VALUE, &s) != 0)
			return (-1);
		rc = eviction_parse(s, &m->eviction);
		free(s);
		if (rc != 0)
			return (kvt_fail(d, "key 'eviction': not W+P"));
		m->has_eviction = true;
	}
	return (0);
}

static int
md_machine_kv(struct kvt_dec *d, const char *k, size_t kl, const char *v,
    size_t vl, void *arg)
{
	struct manifest	*m = arg;
	uint64_t	 n;

	if (kvt_key(k, kl, "driver"))
		return (kvt_str(d, "driver", v, vl, MANIFEST_MAX_VALUE, &m->driver));
	if (kvt_key(k, kl, "cuda")) {
		if (kvt_uint(d, "cuda", v, vl, 1000000, &n) != 0)
			return (-1);
		m->cuda = (int)n;
	} else if (kvt_key(k, kl, "created")) {
		if (kvt_uint(d, "created", v, vl, INT64_MAX, &n) != 0)
			return (-1);
		m->created = (int64_t)n;
	}
	return (0);
}

static int
md_gpu_kv(struct kvt_dec *d, const char *k, size_t kl, const char *v,
    size_t vl, void *arg)
{
	struct manifest_gpu	*g = arg;
	uint64_t		 n;

	if (kvt_key(k, kl, "name"))
		return (kvt_str(d, "name", v, vl, MANIFEST_MAX_VALUE, &g->name));
	if (kvt_key(k, kl, "uuid"))
		return (kvt_str(d, "uuid", v, vl, MANIFEST_MAX_VALUE, &g->uuid));
	if (kvt_key(k, kl, "index")) {
		if (kvt_uint(d, "index", v, vl, MANIFEST_MAX_GPUS - 1, &n) != 0)
			return (-1);
		g->index = (unsigned)n;
	}
	return (0);
}

static int
md_file_kv(struct kvt_dec *d, const char *k, size_t kl, const char *v,
    size_t vl, void *arg)
{
	struct manifest_file	*f = arg;

	if (kvt_key(k, kl, "name"))
		return (kvt_str(d, "name", v, vl, MANIFEST_MAX_VALUE, &f->name));
	if (kvt_key(k, kl, "size"))
		return (kvt_uint(d, "size", v, vl, UINT64_MAX, &f->size));
	if (kvt_key(k, kl, "sha256")) {
		if (vl != SHA256_HEX_LEN - 1)
			return (kvt_fail(d, "key 'sha256': not 64 hex digits"));
		for (size_t i = 0; i < vl; i++)
			if (!isxdigit((unsigned char)v[i]))
				return (kvt_fail(d, "key 'sha256': not 64 hex "
				    "digits"));
		memcpy(f->sha256, v, vl);
		f->sha256[vl] = '\0';
	}
	return (0);
}

/* A file name must stay inside the directory: one plain component. */
static bool
md_safe_name(const char *s)
{
	return (*s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0);
}

static int
md_line(struct kvt_dec *d, const char *w, size_t wl, const char *p,
    const char *end, void *arg)
{
	struct manifest		*m = arg;
	struct manifest_gpu	 g;
	struct manifest_file	 f;

	if (kvt_key(w, wl, "model"))
		return (kvt_words(d, p, end, md_model_kv, m));
	if (kvt_key(w, wl, "machine"))
		return (kvt_words(d, p, end, md_machine_kv, m));
	if (kvt_key(w, wl, "gpu")) {
		memset(&g, 0, sizeof(g));
		if (kvt_words(d, p, end, md_gpu_kv, &g) != 0 || g.name == NULL ||
		    g.uuid == NULL || m->ngpus >= MANIFEST_MAX_GPUS) {
			free(g.name);
			free(g.uuid);
			return (d->err[0] != '\0' ? -1 : kvt_fail(d, "a gpu needs "
			    "a name and a uuid (at most %d GPUs)",
			    MANIFEST_MAX_GPUS));
		}
		m->gpus = xreallocarray(m->gpus, m->ngpus + 1, sizeof(g));
		m->gpus[m->ngpus++] = g;
		return (0);
	}
	if (kvt_key(w, wl, "file")) {
		memset(&f, 0, sizeof(f));
		if (kvt_words(d, p, end, md_file_kv, &f) != 0 || f.name == NULL ||
		    f.sha256[0] == '\0' || !md_safe_name(f.name) ||
		    m->nfiles >= MANIFEST_MAX_FILES) {
			free(f.name);
			return (d->err[0] != '\0' ? -1 : kvt_fail(d, "a file needs "
			    "a plain name and a sha256 (at most %d files)",
			    MANIFEST_MAX_FILES));
		}
		for (size_t i = 0; i < m->nfiles; i++) {
			if (strcmp(m->files[i].name, f.name) == 0) {
				free(f.name);
				return (kvt_fail(d, "file listed twice"));
			}
		}
		m->files = xreallocarray(m->files, m->nfiles + 1, sizeof(f));
		m->files[m->nfiles++] = f;
	}
	return (0);		/* unknown lines are skipped */
}

int
manifest_decode(const char *buf, size_t len, struct manifest *m, char *err,
    size_t errlen)
{
	struct kvt_dec	d = { err, errlen, "checkpoint manifest",
	    "manifest line", 0 };

	memset(m, 0, sizeof(*m));
	err[0] = '\0';
	if (len > MANIFEST_MAX_BYTES)
		return (kvt_fail(&d, "the manifest is larger than %u bytes",
		    MANIFEST_MAX_BYTES));
	if (kvt_parse(&d, buf, len, MANIFEST_MAX_BYTES, "llmux-checkpoint",
	    MANIFEST_VERSION, md_line, m) != 0)
		goto fail;
	if (m->model == NULL || m->driver == NULL) {
		kvt_fail(&d, "the manifest has no model or machine line");
		goto fail;
	}
	return (0);
fail:
	manifest_free(m);
	return (-1);
}

void
manifest_free(struct manifest *m)
{
	free(m->model);
	free(m->model_path);
	free(m->driver);
	for (size_t i = 0; i < m->ngpus; i++) {
		free(m->gpus[i].name);
		free(m->gpus[i].uuid);
	}
	free(m->gpus);
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].name);
	free(m->files);
	memset(m, 0, sizeof(*m));
}

/* ---- files and checksums ------------------------------------------------------ */

bool
manifest_covers(const char *name)
{
	size_t	n = strlen(name);

	if (name[0] == '.' || strcmp(name, MANIFEST_FILE) == 0)
		return (false);
	return (!(n > 4 && strcmp(name + n - 4, ".log") == 0));
}

/*
 * Size and SHA-256 of one file, hashed as it is read; the size alone
 * (from fstat, nothing read) when !hash.
 */
static int
manifest_hash(int dfd, const char *name, struct manifest_file *f,
    bool hash, char *err, size_t errlen)
{
	struct sha256	 c;
	struct stat	 st;
	uint8_t		 d[SHA256_LEN], *buf;
	ssize_t		 n;
	int		 fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1) {
		snprintf(err, errlen, "cannot open %s: %s", name,
		    strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", name);
		close(fd);
		return (-1);
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is owned by uid %u, not by root", name,
		    (unsigned)st.st_uid);
		close(fd);
		return (-1);
	}
	if (!hash) {
		f->size = (uint64_t)st.st_size;
		close(fd);
		return (0);
	}
	buf = xmalloc(MANIFEST_READ_CHUNK);
	sha256_init(&c);
	f->size = 0;
	while ((n = read(fd, buf, MANIFEST_READ_CHUNK)) > 0) {
		sha256_update(&c, buf, (size_t)n);
		f->size += (uint64_t)n;
	}
	free(buf);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", name,
		    strerror(errno));
		sha256_free(&c);
		return (-1);
	}
	sha256_final(&c, d);
	sha256_hex(d, f->sha256);
	return (0);
}

static int
manifest_name_cmp(const void *a, const void *b)
{
	return (strcmp(((const struct manifest_file *)a)->name,
	    ((const struct manifest_file *)b)->name));
}

static int
manifest_list(int dfd, const char *dir, struct manifest *m, bool hash,
    char *err,
    size_t errlen)
{
	DIR		*d;
	struct dirent	*de;
	int		 rc = 0, fd;

	/* A description of its own: dfd's offset is left alone. */
	if ((fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1 || (d = fdopendir(fd)) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", dir,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return (-1);
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct manifest_file	f;

		if (!manifest_covers(de->d_name))
			continue;
		if (m->nfiles >= MANIFEST_MAX_FILES) {
			snprintf(err, errlen, "more than %d files in %s",
			    MANIFEST_MAX_FILES, dir);
			rc = -1;
			break;
		}
		memset(&f, 0, sizeof(f));
		if ((rc = manifest_hash(dirfd(d), de->d_name, &f, hash, err,
		    errlen)) != 0)
			break;
		f.name = xstrdup(de->d_name);
		m->files = xreallocarray(m->files, m->nfiles + 1, sizeof(f));
		m->files[m->nfiles++] = f;
	}
	closedir(d);
	if (rc == 0 && m->nfiles > 0)
		qsort(m->files, m->nfiles, sizeof(*m->files),
		    manifest_name_cmp);
	return (rc);
}

int
manifest_scan(int dfd, const char *dir, struct manifest *m, char *err,
    size_t errlen)
{
	return (manifest_list(dfd, dir, m, true, err, errlen));
}

/* dir's files against the manifest's list; their checksums too if hash. */
static int
manifest_compare(int dfd, const char *dir, const struct manifest *m,
    bool hash,
    char *err, size_t errlen)
{
	struct manifest	 now;
	size_t		 i, j;
	int		 rc = -1;

	memset(&now, 0, sizeof(now));
	if (manifest_list(dfd, dir, &now, hash, err, errlen) != 0)
		return (-1);
	for (i = 0; i < m->nfiles; i++) {
		for (j = 0; j < now.nfiles; j++)
			if (strcmp(now.files[j].name, m->files[i].name) == 0)
				break;
		if (j == now.nfiles) {
			snprintf(err, errlen, "image file %s is missing",
			    m->files[i].name);
			goto out;
		}
		if (now.files[j].size != m->files[i].size) {
			snprintf(err, errlen, "image file %s has %llu bytes, "
			    "the manifest says %llu", m->files[i].name,
			    (unsigned long long)now.files[j].size,
			    (unsigned long long)m->files[i].size);
			goto out;
		}
		if (hash && strcmp(now.files[j].sha256, m->files[i].sha256) !=
		    0) {
			snprintf(err, errlen, "image file %s fails its "
			    "checksum (damaged or changed since the "
			    "checkpoint)", m->files[i].name);
			goto out;
		}
	}
	if (now.nfiles != m->nfiles) {
		for (j = 0; j < now.nfiles; j++) {
			for (i = 0; i < m->nfiles; i++)
				if (strcmp(now.files[j].name,
				    m->files[i].name) == 0)
					break;
			if (i == m->nfiles)
				break;
		}
		snprintf(err, errlen, "image file %s is not in the manifest",
		    j < now.nfiles ? now.files[j].name : "?");
		goto out;
	}
	rc = 0;
out:
	manifest_free(&now);
	return (rc);
}

int
manifest_verify(int dfd, const char *dir, const struct manifest *m,
    char *err, size_t errlen)
{
	return (manifest_compare(dfd, dir, m, true, err, errlen));
}

int
manifest_verify_sizes(int dfd, const char *dir, const struct manifest *m,
    char *err, size_t errlen)
{
	return (manifest_compare(dfd, dir, m, false, err, errlen));
}

int
manifest_match(const struct manifest *img, const struct manifest *here,
    char *err, size_t errlen)
{
	if (strcmp(img->driver, here->driver) != 0) {
		snprintf(err, errlen, "made with NVIDIA driver %s, this "
		    "machine has %s", img->driver, here->driver);
		return (-1);
	}
	if (img->ngpus != here->ngpus) {
		snprintf(err, errlen, "made on a machine with %zu GPUs, this "
		    "one has %zu", img->ngpus, here->ngpus);
		return (-1);
	}
	for (size_t i = 0; i < img->ngpus; i++) {
		if (strcmp(img->gpus[i].name, here->gpus[i].name) != 0) {
			snprintf(err, errlen, "made with GPU %u a %s, here it "
			    "is a %s", img->gpus[i].index, img->gpus[i].name,
			    here->gpus[i].name);
			return (-1);
		}
	}
	return (0);
}

int
manifest_write(int dfd, const char *dir, const struct manifest *m,
    char *err, size_t errlen)
{
	char	*text, *tmp;
	size_t	 len, off = 0;
	ssize_t	 n;
	int	 fd, rc = -1;

	if (manifest_encode(m, &text, &len) != 0) {
		snprintf(err, errlen, "the manifest is too large");
		return (-1);
	}
	xasprintf(&tmp, ".%s.tmp", MANIFEST_FILE);
	(void)unlinkat(dfd, tmp, 0);
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "cannot write %s/%s: %s", dir, tmp,
		    strerror(errno));
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	if (off < len || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s/%s: %s", dir, tmp,
		    strerror(errno));
		close(fd);
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	close(fd);
	if (renameat(dfd, tmp, dfd, MANIFEST_FILE) != 0) {
		snprintf(err, errlen, "cannot rename %s/%s: %s", dir, tmp,
		    strerror(errno));
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	rc = 0;
out:
	free(text);
	free(tmp);
	return (rc);
}

int
manifest_read(int dfd, struct manifest *m, char *err, size_t errlen)
{
	struct stat	 st;
	char		*buf, derr[256];
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd, rc;

	memset(m, 0, sizeof(*m));
	fd = openat(dfd, MANIFEST_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		snprintf(err, errlen, errno == ENOENT ? "it has no llmux "
		    "manifest (%s): it was not made by llmux" : "cannot read "
		    "its manifest (%s): %s", MANIFEST_FILE, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (off_t)MANIFEST_MAX_BYTES ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		snprintf(err, errlen, "its manifest is not a regular file of "
		    "at most %u bytes owned by root", MANIFEST_MAX_BYTES);
		close(fd);
		return (-1);
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size &&
	    (n = read(fd, buf + off, (size_t)st.st_size - off)) > 0)
		off += (size_t)n;
	close(fd);
	if ((rc = manifest_decode(buf, off, m, derr, sizeof(derr))) != 0)
		snprintf(err, errlen, "its manifest is unreadable: %s", derr);
	free(buf);
	return (rc);
}
