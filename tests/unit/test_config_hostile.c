/*
 * test_config_hostile.c -- the config loader against hostile input: files
 * that are not regular or too large, bytes that are not text, structures
 * nested too deep or too wide, YAML and JSON syntax errors with their
 * place, and the limit on how many diagnostics one run gives.
 */
#include "config_test.h"
#include "unit.h"

/* ---- hostile files ------------------------------------------------------ */

/* Load from memory: exactly one error, want, and no config. */
static void
expect_refused(const char *buf, size_t len, const char *want)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = config_load_buffer("h", buf, len, CONFIG_CHECK, &d);
	ck_assert_ptr_null(cfg);
	got = diags_text(&d);
	ck_assert_msg(strcmp(got, want) == 0, "want:\n%s\ngot:\n%s", want, got);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_uint_eq(d.n_errors, 1);
	free(got);
	config_diags_free(&d);
}

static void
expect_file_refused(const char *path, const char *want)
{
	struct config_diags	 d;
	struct config		*cfg;

	cfg = config_load(path, CONFIG_CHECK, &d);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(d.n, 1);
	ck_assert(d.v[0].error);
	ck_assert_uint_eq(d.v[0].line, 0);
	ck_assert_str_eq(d.v[0].msg, want);
	config_diags_free(&d);
}

START_TEST(test_hostile_files)
{
	char	*dir, path[256];
	int	 fd;

	dir = tmpdir();
	expect_file_refused(dir, "is a directory, not a configuration file");
	snprintf(path, sizeof(path), "%s/empty.yaml", dir);
	write_file(path, "", 0644);
	expect_file_refused(path, "the file is empty: it holds no "
	    "configuration");
	/* 100 MB, sparse: refused by its size before anything is read. */
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 100 << 20), 0);
	close(fd);
	expect_file_refused(path, "file is too large (104857600 bytes; the "
	    "limit is 4194304)");
	unlink(path);
	snprintf(path, sizeof(path), "%s/missing.yaml", dir);
	expect_file_refused(path, "cannot open: No such file or directory");
	expect_file_refused("/dev/null", "is not a regular file, not a "
	    "configuration file");
	snprintf(path, sizeof(path), "%s/empty.yaml", dir);
	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(test_hostile_bytes)
{
	static const char	 nul[] = "models: {}\n\0junk";
	static const char	 bad8[] = "models:\n  caf\xc3\xa9\xc0\xaf: {}\n";
	static const char	 surrogate[] = "a: \xed\xa0\x80\n";
	static const char	 cut[] = "a: \xe2\x82";
	char			*garbage;
	uint32_t		 x = 12345;
	struct config_diags	 d;

	expect_refused(nul, sizeof(nul) - 1,
	    "2:1: error: the file contains a NUL byte (binary data?)\n");
	expect_refused(bad8, sizeof(bad8) - 1,
	    "2:7: error: invalid UTF-8 (byte 0xc0); the file must be UTF-8 "
	    "text\n");
	expect_refused(surrogate, sizeof(surrogate) - 1,
	    "1:4: error: invalid UTF-8 (byte 0xed); the file must be UTF-8 "
	    "text\n");
	expect_refused(cut, sizeof(cut) - 1,
	    "1:4: error: invalid UTF-8 (byte 0xe2); the file must be UTF-8 "
	    "text\n");
	expect_refused("", 0, "error: the file is empty: it holds no "
	    "configuration\n");
	expect_refused(" \n\t\n", 4, "error: the file is empty: it holds no "
	    "configuration\n");
	expect_refused("# nothing\n", 10, "error: the file is empty: it holds "
	    "no configuration\n");
	/* Binary garbage: one clear error, whatever the bytes. */
	garbage = malloc(4096);
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < 4096; i++) {
			x = x * 1103515245 + 12345;
			garbage[i] = (char)(x >> 16);
		}
		ck_assert_ptr_null(config_load_buffer("g", garbage, 4096,
		    CONFIG_CHECK, &d));
		ck_assert_uint_eq(d.n, 1);
		ck_assert(d.v[0].error);
		config_diags_free(&d);
	}
	free(garbage);
	/* Past the size limit in memory too. */
	garbage = calloc(1, CONFIG_MAX_FILE_BYTES + 1);
	memset(garbage, ' ', CONFIG_MAX_FILE_BYTES + 1);
	expect_refused(garbage, CONFIG_MAX_FILE_BYTES + 1,
	    "error: file is too large (4194305 bytes; the limit is "
	    "4194304)\n");
	free(garbage);
}
END_TEST

/* "x: " and n nested sequences, in YAML or JSON. */
static char *
nested(int n, bool json)
{
	char	*s = malloc((size_t)n * 2 + 16), *p = s;

	p += sprintf(p, json ? "{\"x\": " : "x: ");
	for (int i = 0; i < n; i++)
		*p++ = '[';
	for (int i = 0; i < n; i++)
		*p++ = ']';
	strcpy(p, json ? "}\n" : "\n");
	return (s);
}

START_TEST(test_hostile_structure)
{
	struct config_diags	 d;
	char			*s, *want;
	size_t			 n;

	/* 32 levels (the root mapping and 31 sequences) are allowed. */
	s = nested(CONFIG_MAX_DEPTH - 1, false);
	ck_assert_ptr_null(load(s, CONFIG_CHECK, &d));
	ck_assert_str_eq(d.v[d.n - 1].msg, "missing required key 'models'");
	config_diags_free(&d);
	free(s);
	s = nested(CONFIG_MAX_DEPTH, false);
	expect_refused(s, strlen(s), "1:35: error: nesting is deeper than 32 "
	    "levels\n");
	free(s);
	s = nested(10000, false);
	expect_refused(s, strlen(s), "1:35: error: nesting is deeper than 32 "
	    "levels\n");
	free(s);
	s = nested(CONFIG_MAX_DEPTH, true);
	expect_refused(s, strlen(s), "1:38: error: nesting is deeper than 32 "
	    "levels\n");
	free(s);

	/* Huge scalars. */
	n = CONFIG_MAX_SCALAR + 1;
	s = malloc(n + 16);
	memcpy(s, "x: ", 3);
	memset(s + 3, 'a', n);
	strcpy(s + 3 + n, "\n");
	expect_refused(s, strlen(s), "1:4: error: value is too long (65537 "
	    "bytes; the limit is 65536)\n");
	s[3 + n - 1] = '\n';
	s[3 + n] = '\0';
	ck_assert_ptr_null(load(s, CONFIG_CHECK, &d));
	ck_assert_str_eq(d.v[d.n - 1].msg, "missing required key 'models'");
	config_diags_free(&d);
	free(s);

	/* Too many nodes. */
	n = CONFIG_MAX_NODES + 10;
	s = malloc(n * 2 + 16);
	strcpy(s, "x: [");
	for (size_t i = 0; i < n; i++)
		strcpy(s + 4 + 2 * i, "1,");
	strcpy(s + 4 + 2 * n - 1, "]\n");
	ck_assert_ptr_null(load(s, CONFIG_CHECK, &d));
	ck_assert_uint_eq(d.n, 1);
	ck_assert_str_eq(d.v[0].msg, "too many values in the file (the limit "
	    "is 100000)");
	config_diags_free(&d);
	free(s);

	/* Too many models. */
	s = malloc(100 * 64);
	n = (size_t)sprintf(s, "models:\n");
	for (int i = 0; i <= CONFIG_MAX_MODELS; i++)
		n += (size_t)sprintf(s + n, "  m%d: {model_path: p, port: %d}\n",
		    i, 10000 + i);
	xasprintf(&want, "%d:3: error: models.m64: too many models (at most "
	    "64)\n", CONFIG_MAX_MODELS + 2);
	expect_diags(s, want);
	free(want);
	free(s);

	/* A non-mapping top level. */
	expect_refused("- a\n- b\n", 8, "1:1: error: the top level must be a "
	    "mapping of keys, not a sequence\n");
	expect_refused("hello\n", 6, "1:1: error: the top level must be a "
	    "mapping of keys, not a string\n");
	expect_refused("[1, 2]", 6, "1:1: error: the top level must be a "
	    "mapping of keys, not a sequence\n");
}
END_TEST

START_TEST(test_hostile_yaml)
{
	static const char *bomb =
	    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";

	expect_refused(bomb, strlen(bomb), "1:4: error: YAML anchors (&name) "
	    "are not supported: write the value out in full\n");
	expect_refused("a: *x\n", 6, "1:4: error: YAML aliases (*name) are not "
	    "supported: write the value out in full\n");
	expect_refused("a: !!binary aGk=\n", 16, "1:4: error: YAML tags are not "
	    "supported here (only !!str, !!map and !!seq)\n");
	expect_refused("a: !!set {b}\n", 13, "1:4: error: YAML tags are not "
	    "supported here (only !!str, !!map and !!seq)\n");
	expect_refused("a: !!map [b]\n", 13, "1:4: error: YAML tags are not "
	    "supported here (only !!str, !!map and !!seq)\n");
	expect_diags(M "proxy: !!map {api_keys: !!seq [k]}\n", "");
	expect_refused("a: 1\n---\nb: 2\n", 14, "2:1: error: more than one "
	    "YAML document in the file\n");
	expect_refused("models:\n  a: [\n", 15, "3:1: error: YAML syntax error: "
	    "did not find expected node content while parsing a flow node\n");
	expect_refused("a: b: c\n", 8, "1:5: error: YAML syntax error: mapping "
	    "values are not allowed in this context\n");
	expect_refused("? [a]\n: b\n", 10, "1:3: error: a mapping key must be a "
	    "plain value, not a sequence\n");
	expect_refused("a: \"\\0\"\n", 8, "1:4: error: value contains a NUL "
	    "character\n");
	expect_refused("a: \x01\n", 5, "1:4: error: YAML syntax error: control "
	    "characters are not allowed\n");
	/* !!str and a BOM are fine. */
	expect_diags("\xef\xbb\xbfmodels:\n  !!str 7:\n    model_path: p\n"
	    "    port: !!str 5\n",
	    "4:11: error: models.7.port: expected an integer from 1 to 65535, "
	    "got a string (remove the quotes)\n");
}
END_TEST

START_TEST(test_hostile_json)
{
	expect_refused("{\"models\": {\"a\": {\"port\": 1,}}}", 31,
	    "1:30: error: JSON syntax error: invalid object key (must be a "
	    "string)\n");
	expect_refused("{\"a\": 1} x", 10, "1:11: error: JSON syntax error: "
	    "trailing garbage\n");
	expect_refused("{\"a\": [1, 2", 11, "1:12: error: JSON syntax error: "
	    "premature EOF\n");
	expect_refused("{\"a\": \"\\u0000\"}", 15, "1:7: error: value contains "
	    "a NUL character\n");
	expect_refused("{\"a\": \"\\udc00\"}", 15, "1:7: error: value is not "
	    "valid UTF-8 (a lone \\u surrogate?)\n");
	expect_refused("{\"a\": 1, // no\n}", 16, "1:10: error: JSON syntax "
	    "error: probable comment found in input text, comments are not "
	    "enabled.\n");
	expect_refused("{\n  \"a\": tru\n}", 13, "2:11: error: JSON syntax "
	    "error: invalid string in json text.\n");
	expect_diags("\xef\xbb\xbf{\"models\": {\"a\": {\"model_path\": "
	    "\"p\", \"port\": 0}}}",
	    "1:46: error: models.a.port: 0 is out of range (1..65535)\n");
	/* A JSON file is told by its first byte, not its name. */
	expect_diags("\n\n  {\"models\": {\"a\": {\"model_path\": \"p\", "
	    "\"port\": \"1\"}}}",
	    "3:48: error: models.a.port: expected an integer from 1 to 65535, "
	    "got a string (remove the quotes)\n");
}
END_TEST

START_TEST(test_diag_limit)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*s;
	size_t			 n;

	s = malloc(200 * 32);
	n = (size_t)sprintf(s, M "vllm_command: /bin/sh\n");
	for (int i = 0; i < 150; i++)
		n += (size_t)sprintf(s + n, "unknown%d: 1\n", i);
	cfg = load(s, CONFIG_CHECK, &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(d.n, CONFIG_MAX_DIAGS + 1);
	ck_assert_str_eq(d.v[0].msg, "unknown0: unknown key, ignored");
	ck_assert_str_eq(d.v[CONFIG_MAX_DIAGS].msg, "0 more errors and 50 "
	    "more warnings not shown");
	ck_assert(!d.v[CONFIG_MAX_DIAGS].error);
	config_free(cfg);
	config_diags_free(&d);

	/* Errors past the limit still fail the load and are counted. */
	n = (size_t)sprintf(s, M);
	for (int i = 0; i < 150; i++)
		n += (size_t)sprintf(s + n, "    env%d: 1\n", i);
	n += (size_t)sprintf(s + n, "port: 0\n");
	ck_assert_ptr_null(load(s, CONFIG_CHECK, &d));
	ck_assert_uint_eq(d.n, CONFIG_MAX_DIAGS + 1);
	ck_assert_uint_eq(d.n_errors, 1);
	ck_assert(d.v[CONFIG_MAX_DIAGS].error);
	config_diags_free(&d);
	free(s);
}
END_TEST

static Suite *
config_hostile_suite(void)
{
	Suite	*s = suite_create("config-hostile");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hostile_files);
	tcase_add_test(tc, test_hostile_bytes);
	tcase_add_test(tc, test_hostile_structure);
	tcase_add_test(tc, test_hostile_yaml);
	tcase_add_test(tc, test_hostile_json);
	tcase_add_test(tc, test_diag_limit);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(config_hostile_suite()));
}
