/*
 * test_gpu.c -- the pure parts of the GPU module: SHA-256, the checkpoint
 * manifest (encoding, the strict decoder's refusals, checksums of a
 * directory, the comparison with a machine), where a suspended model is
 * restored (gpu_place), GPU UUIDs, CUDA state names, criu's version line,
 * and what loading a missing driver says.
 */
#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisord/base/base.h"
#include "supervisord/criu/criu.h"
#include "supervisord/gpu/gpu.h"
#include "supervisord/store/store.h"
#include "xmalloc.h"
#include "unit.h"

static const char *
hash(const void *data, size_t len, size_t piece)
{
	static char	hex[SHA256_HEX_LEN];
	struct sha256	c;
	uint8_t		d[SHA256_LEN];
	const uint8_t	*p = data;

	sha256_init(&c);
	for (size_t o = 0; o < len; o += piece)
		sha256_update(&c, p + o, len - o < piece ? len - o : piece);
	sha256_final(&c, d);
	sha256_hex(d, hex);
	return (hex);
}

START_TEST(test_sha256)
{
	const char	*abc = "abc";
	const char	*two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomno"
			    "pnopq";
	char		*million;

	ck_assert_str_eq(hash("", 0, 1), "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	ck_assert_str_eq(hash(abc, 3, 3), "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	ck_assert_str_eq(hash(two, strlen(two), 7), "248d6a61d20638b8e5c0269"
	    "30c3e6039a33ce45964ff2167f6ecedd419db06c1");
	million = xmalloc(1000000);
	memset(million, 'a', 1000000);
	/* Pieces that straddle the 64-byte blocks, and one big one. */
	ck_assert_str_eq(hash(million, 1000000, 997), "cdc76e5c9914fb9281a1c7"
	    "e284d73e67f1809a48a497200e046d39ccc7112cd0");
	ck_assert_str_eq(hash(million, 1000000, 1000000), "cdc76e5c9914fb9281a"
	    "1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
}
END_TEST

/* Every piece size from 1 to 200 bytes gives the digest of one piece. */
START_TEST(test_sha256_pieces)
{
	char		*data = xmalloc(1000), whole[SHA256_HEX_LEN];
	struct sha256	 c;

	for (size_t i = 0; i < 1000; i++)
		data[i] = (char)(i * 7 + i / 13);
	snprintf(whole, sizeof(whole), "%s", hash(data, 1000, 1000));
	for (size_t piece = 1; piece <= 200; piece++)
		ck_assert_str_eq(hash(data, 1000, piece), whole);
	free(data);
	/* A hash given up on the way is freed; freeing again is harmless. */
	sha256_init(&c);
	sha256_update(&c, "abc", 3);
	sha256_free(&c);
	sha256_free(&c);
	memset(&c, 0, sizeof(c));
	sha256_free(&c);
}
END_TEST

static void
manifest_fill(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->model = xstrdup("meta/llama 3");
	m->model_path = xstrdup("meta-llama/Llama-3.1-8B");
	m->port = 8001;
	m->tp = 2;
	m->has_eviction = true;
	m->eviction = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_CHECKPOINT };
	m->driver = xstrdup("570.86.15");
	m->cuda = 12080;
	m->created = 1767225600;
	m->ngpus = 2;
	m->gpus = xcalloc(2, sizeof(*m->gpus));
	for (unsigned i = 0; i < 2; i++) {
		m->gpus[i].index = i;
		m->gpus[i].name = xstrdup("NVIDIA H100 80GB HBM3");
		xasprintf(&m->gpus[i].uuid, "GPU-%u", i);
	}
	m->nfiles = 1;
	m->files = xcalloc(1, sizeof(*m->files));
	m->files[0].name = xstrdup("pages-1.img");
	m->files[0].size = 65536;
	snprintf(m->files[0].sha256, sizeof(m->files[0].sha256), "%s",
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

START_TEST(test_manifest_roundtrip)
{
	struct manifest	 m, d;
	char		*text, err[256];
	size_t		 len;

	manifest_fill(&m);
	ck_assert_int_eq(manifest_encode(&m, &text, &len), 0);
	ck_assert_ptr_nonnull(strstr(text, "model name=meta/llama%203 "
	    "path=meta-llama/Llama-3.1-8B port=8001 tp=2 "
	    "eviction=offload+checkpoint\n"));
	ck_assert_ptr_nonnull(strstr(text, "gpu index=1 name=NVIDIA%20H100%20"
	    "80GB%20HBM3 uuid=GPU-1\n"));
	ck_assert_int_eq(manifest_decode(text, len, &d, err, sizeof(err)), 0);
	ck_assert_str_eq(d.model, "meta/llama 3");
	ck_assert_str_eq(d.model_path, m.model_path);
	ck_assert_uint_eq(d.port, 8001);
	ck_assert_uint_eq(d.tp, 2);
	ck_assert(d.has_eviction && d.eviction.weights == WEIGHTS_OFFLOAD &&
	    d.eviction.process == PROCESS_CHECKPOINT);
	ck_assert_str_eq(d.driver, "570.86.15");
	ck_assert_int_eq(d.cuda, 12080);
	ck_assert_int_eq(d.created, 1767225600);
	ck_assert_uint_eq(d.ngpus, 2);
	ck_assert_str_eq(d.gpus[1].name, "NVIDIA H100 80GB HBM3");
	ck_assert_str_eq(d.gpus[1].uuid, "GPU-1");
	ck_assert_uint_eq(d.nfiles, 1);
	ck_assert_str_eq(d.files[0].name, "pages-1.img");
	ck_assert_uint_eq(d.files[0].size, 65536);
	ck_assert_str_eq(d.files[0].sha256, m.files[0].sha256);
	/* The same machine matches. */
	ck_assert_int_eq(manifest_match(&d, &m, err, sizeof(err)), 0);
	manifest_free(&d);
	free(text);
	manifest_free(&m);
}
END_TEST

static void
refused(const char *text, const char *says)
{
	struct manifest	m;
	char		err[256];

	err[0] = '\0';
	ck_assert_int_eq(manifest_decode(text, strlen(text), &m, err,
	    sizeof(err)), -1);
	if (strstr(err, says) == NULL)
		ck_abort_msg("%s: said \"%s\", not \"%s\"", text, err, says);
}

#define HEAD	"llmux-checkpoint 1\nmodel name=a port=1\nmachine driver=x\n"
#define SHA	"sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

START_TEST(test_manifest_refusals)
{
	struct manifest	m;
	char		err[256], *big;

	refused("", "empty");
	refused("# just a comment\n", "empty");
	refused("llmux-state 1\n", "not an llmux checkpoint manifest");
	refused("llmux-checkpoint 2\n", "checkpoint manifest version 2");
	refused("llmux-checkpoint one\n", "expected a number");
	refused("llmux-checkpoint 1\nmachine driver=x\n", "no model or machine");
	refused("llmux-checkpoint 1\nmodel name=a\n", "no model or machine");
	refused(HEAD "model name=b\n", "key 'name' appears twice");
	refused("llmux-checkpoint 1\nmodel name=a%zz\n", "bad escape");
	refused("llmux-checkpoint 1\nmodel name=a%00\n", "bad escape");
	refused("llmux-checkpoint 1\nmodel name=a port=70000\n", "out of range");
	refused("llmux-checkpoint 1\nmodel name=a eviction=x+y\n", "not W+P");
	refused("llmux-checkpoint 1\nmodel noequals\n", "expected key=value");
	refused(HEAD "file name=a " SHA "\nfile name=a " SHA "\n",
	    "file listed twice");
	refused(HEAD "file name=../etc " SHA "\n", "plain name");
	refused(HEAD "file name=a/b " SHA "\n", "plain name");
	refused(HEAD "file name=.. " SHA "\n", "plain name");
	refused(HEAD "file name=a\n", "a sha256");
	refused(HEAD "file name=a sha256=12\n", "64 hex digits");
	refused(HEAD "gpu index=0 name=x\n", "a name and a uuid");
	refused(HEAD "gpu index=99 name=x uuid=y\n", "out of range");
	ck_assert_int_eq(manifest_decode("llmux-checkpoint 1\0x", 20, &m, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
	big = xcalloc(1, MANIFEST_MAX_BYTES + 2);
	memset(big, '#', MANIFEST_MAX_BYTES + 1);
	ck_assert_int_eq(manifest_decode(big, MANIFEST_MAX_BYTES + 1, &m, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger than"));
	free(big);
	/* Unknown lines and keys are skipped. */
	ck_assert_int_eq(manifest_decode(HEAD "future x=1\nmodel colour=red\n",
	    strlen(HEAD "future x=1\nmodel colour=red\n"), &m, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(m.model, "a");
	manifest_free(&m);
}
END_TEST

START_TEST(test_manifest_match)
{
	struct manifest	a, b;
	char		err[256];

	manifest_fill(&a);
	manifest_fill(&b);
	free(b.driver);
	b.driver = xstrdup("575.51.03");
	ck_assert_int_eq(manifest_match(&a, &b, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "made with NVIDIA driver 570.86.15, this machine "
	    "has 575.51.03");
	free(b.driver);
	b.driver = xstrdup(a.driver);
	b.ngpus = 1;
	ck_assert_int_eq(manifest_match(&a, &b, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "made on a machine with 2 GPUs, this one has 1");
	b.ngpus = 2;
	free(b.gpus[1].name);
	b.gpus[1].name = xstrdup("NVIDIA A100-SXM4-80GB");
	ck_assert_int_eq(manifest_match(&a, &b, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "made with GPU 1 a NVIDIA H100 80GB HBM3, here it "
	    "is a NVIDIA A100-SXM4-80GB");
	/* Other UUIDs (another machine of the same kind) are fine. */
	free(b.gpus[1].name);
	b.gpus[1].name = xstrdup(a.gpus[1].name);
	free(b.gpus[0].uuid);
	b.gpus[0].uuid = xstrdup("GPU-other");
	ck_assert_int_eq(manifest_match(&a, &b, err, sizeof(err)), 0);
	manifest_free(&a);
	manifest_free(&b);
}
END_TEST

static void
put(const char *dir, const char *name, const char *text)
{
	char	path[512];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_manifest_files)
{
	struct manifest	m, r;
	char		dir[] = "/tmp/llmux-test-manifest-XXXXXX", err[256];
	char		cmd[600];

	int		fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	fd = fs_open_dir(dir, NULL, false, err, sizeof(err));
	ck_assert_msg(fd != -1, "%s", err);
	put(dir, "pages-1.img", "abc");
	put(dir, "inventory.img", "");
	put(dir, "dump.log", "not covered");
	put(dir, ".hidden", "not covered");
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(manifest_scan(fd, dir, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(m.nfiles, 2);
	ck_assert_str_eq(m.files[0].name, "inventory.img");
	ck_assert_str_eq(m.files[1].name, "pages-1.img");
	ck_assert_uint_eq(m.files[1].size, 3);
	ck_assert_str_eq(m.files[1].sha256, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	m.model = xstrdup("a");
	m.driver = xstrdup("none");
	ck_assert_int_eq(manifest_write(fd, dir, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(manifest_read(fd, &r, err, sizeof(err)), 0);
	ck_assert_uint_eq(r.nfiles, 2);
	/* The manifest itself and logs are not covered. */
	ck_assert_int_eq(manifest_verify(fd, dir, &r, err, sizeof(err)), 0);
	ck_assert_int_eq(manifest_verify_sizes(fd, dir, &r, err, sizeof(err)),
	    0);
	put(dir, "pages-1.img", "abd");
	ck_assert_int_eq(manifest_verify(fd, dir, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "image file pages-1.img fails its checksum "
	    "(damaged or changed since the checkpoint)");
	/* Without the checksums (after a download): names and sizes. */
	ck_assert_int_eq(manifest_verify_sizes(fd, dir, &r, err, sizeof(err)),
	    0);
	put(dir, "pages-1.img", "abcd");
	ck_assert_int_eq(manifest_verify(fd, dir, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "image file pages-1.img has 4 bytes, the "
	    "manifest says 3");
	ck_assert_int_eq(manifest_verify_sizes(fd, dir, &r, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "image file pages-1.img has 4 bytes, the "
	    "manifest says 3");
	put(dir, "pages-1.img", "abc");
	put(dir, "pages-2.img", "x");
	ck_assert_int_eq(manifest_verify(fd, dir, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "image file pages-2.img is not in the manifest");
	ck_assert_int_eq(manifest_verify_sizes(fd, dir, &r, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "image file pages-2.img is not in the manifest");
	snprintf(cmd, sizeof(cmd), "%s/pages-2.img", dir);
	unlink(cmd);
	snprintf(cmd, sizeof(cmd), "%s/inventory.img", dir);
	unlink(cmd);
	ck_assert_int_eq(manifest_verify(fd, dir, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "image file inventory.img is missing");
	ck_assert_int_eq(manifest_verify_sizes(fd, dir, &r, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, "image file inventory.img is missing");
	manifest_free(&r);
	manifest_free(&m);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(manifest_read(fd, &r, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "it has no llmux manifest"));
	close(fd);
	ck_assert(manifest_covers("pages-1.img"));
	ck_assert(!manifest_covers(MANIFEST_FILE));
	ck_assert(!manifest_covers("restore.log"));
}
END_TEST

/* base/fs.c: directories walked from "/" by descriptor, and checked. */
START_TEST(test_fs_open_dir)
{
	char	dir[] = "/tmp/llmux-test-fs-XXXXXX", err[1024], path[600];
	char	want[1024];
	int	fd, sub;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* Made when missing (0700), and opened again. */
	fd = fs_open_dir(dir, "a/b", true, err, sizeof(err));
	ck_assert_msg(fd != -1, "%s", err);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	sub = fs_open_sub(fd, path, "images", true, err, sizeof(err));
	ck_assert_msg(sub != -1, "%s", err);
	close(sub);
	close(fd);
	/* Not there, not made. */
	ck_assert_int_eq(fs_open_dir(dir, "nope", false, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	/* Writable by others: refused, the configured one and below. */
	snprintf(path, sizeof(path), "%s/a", dir);
	ck_assert_int_eq(chmod(path, 0777), 0);
	ck_assert_int_eq(fs_open_dir(dir, "a/b", false, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s is writable by others (mode 0777)",
	    path);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(fs_open_dir(path, NULL, false, err, sizeof(err)), -1);
	ck_assert_str_eq(err, want);
	/* On the way there, a sticky one is not (/tmp is one). */
	ck_assert_int_eq(chmod(path, 01777), 0);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	fd = fs_open_dir(path, NULL, false, err, sizeof(err));
	ck_assert_msg(fd != -1, "%s", err);
	close(fd);
	snprintf(path, sizeof(path), "%s/a", dir);
	ck_assert_int_eq(chmod(path, 0770), 0);
	ck_assert_int_eq(fs_open_dir(dir, "a", false, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "is writable by its group"));
	ck_assert_int_eq(chmod(path, 0700), 0);
	/* A symbolic link anywhere: refused, never followed. */
	snprintf(path, sizeof(path), "%s/link", dir);
	ck_assert_int_eq(symlink("a", path), 0);
	ck_assert_int_eq(fs_open_dir(path, "b", false, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s is a symbolic link", path);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(fs_open_dir(dir, "link/b", true, err, sizeof(err)),
	    -1);
	ck_assert_str_eq(err, want);
	/* Another user's (as root only: nobody's). */
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/a", dir);
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(fs_open_dir(dir, "a/b", false, err,
		    sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s is owned by uid 65534, not "
		    "by root", path);
		ck_assert_str_eq(err, want);
	}
	/* Not absolute; dots. */
	ck_assert_int_eq(fs_open_dir("tmp/x", NULL, false, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(fs_open_dir(dir, "a/../a", false, err, sizeof(err)),
	    -1);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

static struct gpu_info	snap_gpus[4];

static void
snap(struct gpu_snapshot *s, size_t n, const uint64_t *free_gib,
    const char *const *names)
{
	memset(s, 0, sizeof(*s));
	memset(snap_gpus, 0, sizeof(snap_gpus));
	for (size_t i = 0; i < n; i++) {
		snap_gpus[i].index = (unsigned)i;
		snprintf(snap_gpus[i].name, sizeof(snap_gpus[i].name), "%s",
		    names[i]);
		snprintf(snap_gpus[i].uuid, sizeof(snap_gpus[i].uuid),
		    "GPU-%zu", i);
		snap_gpus[i].total = 80ULL << 30;
		snap_gpus[i].free = free_gib[i] << 30;
	}
	s->v = snap_gpus;
	s->n = n;
}

static struct gpu_need
need(unsigned index, uint64_t gib)
{
	struct gpu_need	n;

	memset(&n, 0, sizeof(n));
	n.index = index;
	n.bytes = gib << 30;
	snprintf(n.uuid, sizeof(n.uuid), "GPU-%u", index);
	snprintf(n.name, sizeof(n.name), "H100");
	return (n);
}

START_TEST(test_gpu_place)
{
	static const char *const h100x4[] = { "H100", "H100", "H100", "H100" };
	static const char *const mixed[] = { "H100", "A100", "A100", "H100" };
	struct gpu_snapshot	s;
	struct gpu_need		n[2];
	int			map[2];
	char			why[256];

	n[0] = need(0, 60);
	n[1] = need(1, 60);
	/* Room at home. */
	snap(&s, 4, (uint64_t[]){ 70, 70, 80, 80 }, h100x4);
	ck_assert_int_eq(gpu_place(n, 2, &s, true, map, why, sizeof(why)),
	    GPU_PLACE_HOME);
	ck_assert(map[0] == 0 && map[1] == 1);
	/* GPU 1 is busy: it moves, GPU 0 stays. */
	snap(&s, 4, (uint64_t[]){ 70, 10, 80, 80 }, h100x4);
	ck_assert_int_eq(gpu_place(n, 2, &s, true, map, why, sizeof(why)),
	    GPU_PLACE_MOVED);
	ck_assert(map[0] == 0 && map[1] == 2);
	ck_assert_str_eq(why, "GPU 1 -> GPU 2");
	/* Both busy: two distinct new GPUs. */
	snap(&s, 4, (uint64_t[]){ 10, 10, 80, 80 }, h100x4);
	ck_assert_int_eq(gpu_place(n, 2, &s, true, map, why, sizeof(why)),
	    GPU_PLACE_MOVED);
	ck_assert(map[0] == 2 && map[1] == 3);
	/* Migration off. */
	ck_assert_int_eq(gpu_place(n, 2, &s, false, map, why, sizeof(why)),
	    GPU_PLACE_NO_ROOM);
	ck_assert_str_eq(why, "GPU 0 has 10.0 GiB free, 60.0 GiB are needed "
	    "(migration is off: gpu.allow_migration)");
	ck_assert(map[0] == 0 && map[1] == 1);
	/* Only the same kind will do. */
	snap(&s, 4, (uint64_t[]){ 10, 70, 80, 10 }, mixed);
	ck_assert_int_eq(gpu_place(n, 1, &s, true, map, why, sizeof(why)),
	    GPU_PLACE_NO_ROOM);
	ck_assert_str_eq(why, "GPU 0 has 10.0 GiB free and no other H100 has "
	    "60.0 GiB free");
	ck_assert_int_eq(map[0], 0);
	/* A GPU that is gone counts as without room. */
	n[0] = need(3, 10);
	snap(&s, 3, (uint64_t[]){ 80, 80, 80 }, h100x4);
	ck_assert_int_eq(gpu_place(n, 1, &s, true, map, why, sizeof(why)),
	    GPU_PLACE_MOVED);
	ck_assert_int_eq(map[0], 0);
}
END_TEST

START_TEST(test_uuid_and_names)
{
	unsigned char	u[16];

	ck_assert_int_eq(cuda_uuid_parse("GPU-8f6b1a20-1111-2222-3333-"
	    "004455667788", u), 0);
	ck_assert(u[0] == 0x8f && u[1] == 0x6b && u[15] == 0x88);
	ck_assert_int_eq(cuda_uuid_parse("8F6B1A2011112222333300445566778"
	    "8", u), 0);
	ck_assert_int_eq(cuda_uuid_parse("GPU-8f6b", u), -1);
	ck_assert_int_eq(cuda_uuid_parse("GPU-8f6b1a20-1111-2222-3333-"
	    "0044556677889", u), -1);
	ck_assert_int_eq(cuda_uuid_parse("GPU-zz6b1a20-1111-2222-3333-"
	    "004455667788", u), -1);
	ck_assert_str_eq(cuda_pstate_name(CUDA_RUNNING), "RUNNING");
	ck_assert_str_eq(cuda_pstate_name(CUDA_FAILED), "FAILED");
	ck_assert_str_eq(cuda_pstate_name(42), "UNKNOWN");
}
END_TEST

START_TEST(test_criu_version)
{
	int	maj, min;

	ck_assert_int_eq(criu_parse_version("Version: 4.1\nGitID: v4.1\n",
	    &maj, &min), 0);
	ck_assert(maj == 4 && min == 1);
	ck_assert_int_eq(criu_parse_version("Version: 3.17.1\n", &maj, &min),
	    0);
	ck_assert(maj == 3 && min == 17);
	ck_assert_int_eq(criu_parse_version("Version:\t4\n", &maj, &min), 0);
	ck_assert(maj == 4 && min == 0);
	ck_assert_int_eq(criu_parse_version("criu: not found\n", &maj, &min),
	    -1);
	ck_assert_int_eq(criu_parse_version("Version: x\n", &maj, &min), -1);
}
END_TEST

START_TEST(test_missing_driver)
{
	char	err[512];

	setenv("LLMUX_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
	ck_assert_int_eq(cuda_open("libcuda.so.1", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot load /nonexistent/libcuda.so"
	    ".1"));
	ck_assert_int_eq(cuda_driver_version(), 0);
	setenv("LLMUX_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
	ck_assert_int_eq(nvml_open(NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot load /nonexistent/"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("gpu");
	TCase	*tc = tcase_create("gpu");

	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_sha256_pieces);
	tcase_add_test(tc, test_manifest_roundtrip);
	tcase_add_test(tc, test_manifest_refusals);
	tcase_add_test(tc, test_manifest_match);
	tcase_add_test(tc, test_manifest_files);
	tcase_add_test(tc, test_fs_open_dir);
	tcase_add_test(tc, test_gpu_place);
	tcase_add_test(tc, test_uuid_and_names);
	tcase_add_test(tc, test_criu_version);
	tcase_add_test(tc, test_missing_driver);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
