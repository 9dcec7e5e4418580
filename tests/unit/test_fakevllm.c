/*
 * test_fakevllm.c -- llmux-fakevllm's pure parts: the command line, the
 * fault table, deterministic text and token counting, request bodies,
 * JSON escaping and the id map.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "tools/fakevllm/fakevllm.h"
#include "unit.h"

/* ---- args ---------------------------------------------------------------- */

static int
parse(struct fv_opts *o, char **cause, ...)
{
	char	*argv[64];
	int	 argc = 0;
	va_list	 ap;
	char	*a;

	argv[argc++] = (char *)"llmux-fakevllm";
	va_start(ap, cause);
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	fv_args_defaults(o);
	*cause = NULL;
	return (fv_args_parse(o, argc, argv, cause));
}

START_TEST(test_args_supervisor_line)
{
	struct fv_opts	 o;
	char		*cause;

	ck_assert_int_eq(parse(&o, &cause, "serve", "meta/llama-3-8b", "--port",
	    "8101", "--enable-sleep-mode", "--served-model-name", "llama",
	    "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.45",
	    "--max-model-len", "32k", "--enforce-eager", NULL), 0);
	ck_assert_str_eq(o.model, "meta/llama-3-8b");
	ck_assert_int_eq(o.port, 8101);
	ck_assert_int_eq(o.sleep_mode, 1);
	ck_assert_int_eq(o.nnames, 1);
	ck_assert_str_eq(o.names[0], "llama");
	ck_assert_int_eq(o.tp, 2);
	ck_assert_int_eq(o.max_model_len, 32768);
	/* vLLM binds every address unless told (llmux tells it). */
	ck_assert_str_eq(o.host, "0.0.0.0");
	ck_assert(o.gpu_util == 0.45);
	ck_assert_int_eq(o.gpu_mode, FV_GPU_NONE);
	ck_assert_int_eq(o.nignored, 1);
	ck_assert_str_eq(o.ignored[0], "--enforce-eager");
	/* Realistic delays unless --fake-fast. */
	ck_assert_int_eq(o.startup_ms, 3000);
	ck_assert_int_eq(o.token_ms, 20);
	fv_args_free(&o);
}
END_TEST

START_TEST(test_args_unknown_options)
{
	struct fv_opts	 o;
	char		*cause;

	ck_assert_int_eq(parse(&o, &cause, "serve", "m", "--dtype", "bfloat16",
	    "--trust-remote-code", "--seed=3", "--no-enable-prefix-caching",
	    "--swap-space", "-1", "--new-boolean", "--another", "x",
	    "--enable-chunked-prefill", "-tp", "4", "--host", "::1", NULL), 0);
	ck_assert_int_eq(o.nignored, 8);
	ck_assert_str_eq(o.ignored[0], "--dtype bfloat16");
	ck_assert_str_eq(o.ignored[1], "--trust-remote-code");
	ck_assert_str_eq(o.ignored[2], "--seed 3");
	ck_assert_str_eq(o.ignored[3], "--no-enable-prefix-caching");
	ck_assert_str_eq(o.ignored[4], "--swap-space -1");
	/* An unknown option followed by another option takes no value. */
	ck_assert_str_eq(o.ignored[5], "--new-boolean");
	ck_assert_str_eq(o.ignored[6], "--another x");
	ck_assert_str_eq(o.ignored[7], "--enable-chunked-prefill");
	ck_assert_int_eq(o.tp, 4);
	ck_assert_str_eq(o.host, "::1");
	ck_assert_str_eq(o.names[0], "m");
	fv_args_free(&o);
}
END_TEST

START_TEST(test_args_names_and_model)
{
	struct fv_opts	 o;
	char		*cause;

	ck_assert_int_eq(parse(&o, &cause, "serve", "m", "--served-model-name",
	    "a", "b", "c", "--port", "1", NULL), 0);
	ck_assert_int_eq(o.nnames, 3);
	ck_assert_str_eq(o.names[2], "c");
	fv_args_free(&o);
	ck_assert_int_eq(parse(&o, &cause, "serve", "--model", "x",
	    "--served-model-name=one", NULL), 0);
	ck_assert_str_eq(o.model, "x");
	ck_assert_int_eq(o.nnames, 1);
	ck_assert_str_eq(o.names[0], "one");
	fv_args_free(&o);
}
END_TEST

START_TEST(test_args_fake_options)
{
	struct fv_opts	 o;
	char		*cause;

	ck_assert_int_eq(parse(&o, &cause, "serve", "m", "--fake-token-ms", "7",
	    "--fake-fast", "--fake-weights-mb=64", "--fake-admin",
	    "--fake-engine-process", "--fake-fail-sleep", "--fake-fail-wake=3",
	    "--fake-hang-sleep=-1", "--fake-crash-after-tokens", "5",
	    "--fake-fault", "stall_stream:2:4", "--fake-health-500",
	    "--fake-exit-during-startup=7", "--fake-requests-while-asleep",
	    "fail", "--api-key", "k", "--disable-uvicorn-access-log",
	    "--enable-log-requests", "--max-num-seqs", "8", NULL), 0);
	/* --fake-fast zeroes every delay but the ones set explicitly. */
	ck_assert_int_eq(o.token_ms, 7);
	ck_assert_int_eq(o.startup_ms, 0);
	ck_assert_int_eq(o.reload_ms, 0);
	ck_assert_int_eq(o.weights_mb, 64);
	ck_assert_int_eq(o.admin, 1);
	ck_assert_int_eq(o.engine_process, 1);
	ck_assert_int_eq(o.faults.count[FV_FAULT_FAIL_SLEEP], 1);
	ck_assert_int_eq(o.faults.count[FV_FAULT_FAIL_WAKE], 3);
	ck_assert_int_eq(o.faults.count[FV_FAULT_HANG_SLEEP], -1);
	ck_assert_int_eq(o.faults.count[FV_FAULT_CRASH_STREAM], 1);
	ck_assert_int_eq(o.faults.arg[FV_FAULT_CRASH_STREAM], 5);
	ck_assert_int_eq(o.faults.count[FV_FAULT_STALL_STREAM], 2);
	ck_assert_int_eq(o.faults.arg[FV_FAULT_STALL_STREAM], 4);
	ck_assert_int_eq(o.faults.count[FV_FAULT_HEALTH_500], -1);
	ck_assert_int_eq(o.faults.arg[FV_FAULT_EXIT_STARTUP], 7);
	ck_assert_int_eq(o.asleep, FV_ASLEEP_FAIL);
	ck_assert_str_eq(o.api_key, "k");
	ck_assert_int_eq(o.access_log, 0);
	ck_assert_int_eq(o.log_requests, 1);
	ck_assert_int_eq(o.max_num_seqs, 8);
	fv_args_free(&o);
}
END_TEST

START_TEST(test_args_errors)
{
	static const char *bad[][7] = {
		{ "run", "m", NULL },
		{ "serve", NULL },
		{ "serve", "m", "extra", NULL },
		{ "serve", "m", "--port", "65536", NULL },
		{ "serve", "m", "--port", NULL },
		{ "serve", "m", "--fake-token-ms", "x", NULL },
		{ "serve", "m", "--fake-token-ms", "3600001", NULL },
		{ "serve", "m", "--fake-whatever", NULL },
		{ "serve", "m", "--fake-fast=yes", NULL },
		{ "serve", "m", "--fake-fault", "nope", NULL },
		{ "serve", "m", "--fake-gpu", "rocm", NULL },
		{ "serve", "m", "--fake-gpu", "cuda", "-tp", "2", NULL },
		{ "serve", "m", "--fake-gpu", "cuda", "--fake-gpu-dir", "d", NULL },
		{ "serve", "m", "--gpu-memory-utilization", "0", NULL },
		{ "serve", "m", "--gpu-memory-utilization", "1.01", NULL },
		{ "serve", "m", "--gpu-memory-utilization", "x", NULL },
		{ "serve", "m", "--fake-kv-mb", "-1", NULL },
	};
	struct fv_opts	 o;
	char		*argv[8], *cause;
	size_t		 i;
	int		 argc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		argv[0] = (char *)"llmux-fakevllm";
		for (argc = 1; bad[i][argc - 1] != NULL; argc++)
			argv[argc] = (char *)bad[i][argc - 1];
		argv[argc] = NULL;
		fv_args_defaults(&o);
		cause = NULL;
		ck_assert_msg(fv_args_parse(&o, argc, argv, &cause) == -1,
		    "case %zu accepted", i);
		ck_assert_ptr_nonnull(cause);
		free(cause);
		fv_args_free(&o);
	}
}
END_TEST

START_TEST(test_args_fake_gpu_cuda)
{
	struct fv_opts	 o;
	char		*cause;

	ck_assert_int_eq(parse(&o, &cause, "serve", "m", "--fake-gpu", "cuda",
	    "--gpu-memory-utilization=0.55", "--fake-weights-mb", "1024",
	    "--fake-kv-mb", "2048", NULL), 0);
	ck_assert_int_eq(o.gpu_mode, FV_GPU_CUDA);
	ck_assert(o.gpu_util == 0.55);
	ck_assert_int_eq(o.weights_mb, 1024);
	ck_assert_int_eq(o.kv_mb, 2048);
	fv_args_free(&o);
	/* vLLM's default claim, the KV cache from what is left. */
	ck_assert_int_eq(parse(&o, &cause, "serve", "m", NULL), 0);
	ck_assert_int_eq(o.gpu_mode, FV_GPU_NONE);
	ck_assert(o.gpu_util == 0.9);
	ck_assert_int_eq(o.kv_mb, -1);
	fv_args_free(&o);
}
END_TEST

/* ---- pattern ------------------------------------------------------------- */

START_TEST(test_pattern)
{
	enum { LEN = 3 * 4096 };
	static unsigned char	buf[LEN], part[LEN];
	uint64_t		seed = 0x1234, w;

	/* A staging buffer: the base once, the tags per place. */
	fv_pattern_base(buf, LEN, seed);
	fv_pattern_stamp(buf, LEN, seed, 7, 8192);
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 7, 8192), -1);
	for (size_t off = 0; off < LEN; off += 8) {
		memcpy(&w, buf + off, 8);
		ck_assert(w == fv_pattern_word(seed, 7, 8192 + off));
	}
	/* The same bytes are wrong at another place, in another block, seed. */
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 7, 12288), 0);
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 8, 8192), 0);
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed + 1, 7, 8192), 0);
	/* A sample from the middle, not sector-aligned at its end. */
	memcpy(part, buf + 1000, 1200);
	ck_assert_int_eq(fv_pattern_find(part, 1200, seed, 7, 8192 + 1000), -1);
	/* One damaged byte, in a tag and in the body. */
	buf[5000] ^= 1;
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 7, 8192), 5000 / 8 * 8);
	buf[5000] ^= 1;
	buf[4608] ^= 0x80;
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 7, 8192), 4608);
	/* Two pages swapped: the tags differ. */
	fv_pattern_stamp(buf, LEN, seed, 7, 8192);
	memcpy(part, buf, 4096);
	memcpy(buf, buf + 4096, 4096);
	memcpy(buf + 4096, part, 4096);
	ck_assert_int_eq(fv_pattern_find(buf, LEN, seed, 7, 8192), 0);
}
END_TEST

/* ---- faults -------------------------------------------------------------- */

START_TEST(test_faults)
{
	struct fv_faults	 f;
	struct evbuffer		*b;
	char			*cause = NULL, out[256];
	int32_t			 arg;
	size_t			 len;

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(fv_faults_lookup("hang_sleep"), FV_FAULT_HANG_SLEEP);
	ck_assert_int_eq(fv_faults_lookup("nope"), -1);
	ck_assert_str_eq(fv_faults_name(FV_FAULT_HEALTH_500), "health_500");
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_FAIL_SLEEP, NULL), 0);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "fail_sleep:2", &cause), 0);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_FAIL_SLEEP, NULL), 1);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_FAIL_SLEEP, NULL), 1);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_FAIL_SLEEP, NULL), 0);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "stall_stream", &cause), 0);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_STALL_STREAM, &arg), 1);
	ck_assert_int_eq(arg, 1);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "health_500:-1", &cause), 0);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_HEALTH_500, NULL), 1);
	ck_assert_int_eq(fv_faults_take(&f, FV_FAULT_HEALTH_500, NULL), 1);
	ck_assert_int_eq(f.count[FV_FAULT_HEALTH_500], -1);
	b = evbuffer_new();
	fv_faults_json(b, &f);
	len = evbuffer_remove(b, out, sizeof(out) - 1);
	out[len] = '\0';
	ck_assert_str_eq(out, "{\"health_500\":{\"count\":-1,\"arg\":0}}");
	evbuffer_free(b);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "explode", &cause), -1);
	free(cause);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "fail_wake:x", &cause), -1);
	free(cause);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "fail_wake:1:-3", &cause), -1);
	free(cause);
	ck_assert_int_eq(fv_faults_parse_spec(&f, "fail_wake:-2", &cause), -1);
	free(cause);
}
END_TEST

/* ---- generate ------------------------------------------------------------ */

START_TEST(test_generate_deterministic_and_counted)
{
	char		 text[8192], tok[FV_TOKEN_MAX], again[FV_TOKEN_MAX];
	uint64_t	 seed;
	uint32_t	 i, n;
	size_t		 off, len;

	for (seed = 1; seed < 200; seed++) {
		n = 1 + (uint32_t)(seed % 300);
		off = 0;
		for (i = 0; i < n; i++) {
			len = fv_generate_token(seed * 7919, i, tok, sizeof(tok));
			ck_assert_uint_gt(len, 0);
			ck_assert_uint_eq(fv_generate_count(tok, len), 1);
			ck_assert_uint_eq(fv_generate_token(seed * 7919, i, again,
			    sizeof(again)), len);
			ck_assert_str_eq(tok, again);
			if (i == 0) {
				ck_assert(tok[0] >= 'A' && tok[0] <= 'Z');
			}
			memcpy(text + off, tok, len);
			off += len;
		}
		/* The usage count always matches the text. */
		ck_assert_uint_eq(fv_generate_count(text, off), n);
		ck_assert(strstr(text, ",,") == NULL);
	}
	ck_assert_uint_eq(fv_generate_token(1, 0, tok, 4), 0);
}
END_TEST

START_TEST(test_generate_count)
{
	ck_assert_uint_eq(fv_generate_count("", 0), 0);
	ck_assert_uint_eq(fv_generate_count("Hello, world.", 13), 4);
	ck_assert_uint_eq(fv_generate_count("  a  b  ", 8), 2);
	ck_assert_uint_eq(fv_generate_count("abcdefgh", 8), 1);
	ck_assert_uint_eq(fv_generate_count("abcdefghi", 9), 2);
	ck_assert_uint_eq(fv_generate_count("don't", 5), 1);
	ck_assert_uint_eq(fv_generate_count("\xc3\xa9t\xc3\xa9", 5), 3);
}
END_TEST

START_TEST(test_generate_natural_and_hash)
{
	uint64_t	s;
	uint32_t	n;

	for (s = 0; s < 1000; s++) {
		n = fv_generate_natural(s);
		ck_assert_uint_ge(n, 8);
		ck_assert_uint_le(n, 64);
	}
	ck_assert_uint_ne(fv_generate_hash(FV_HASH_INIT, "a", 1),
	    fv_generate_hash(FV_HASH_INIT, "b", 1));
	ck_assert_uint_eq(fv_generate_hash(FV_HASH_INIT, "", 0), FV_HASH_INIT);
}
END_TEST

/* ---- request ------------------------------------------------------------- */

static int
req(struct fv_genreq *r, int kind, const char *body, const char **param)
{
	char	err[256];
	int	rc;

	rc = fv_request_parse(r, kind, body, strlen(body), err, sizeof(err),
	    param);
	if (rc != 0)
		ck_assert(err[0] != '\0');
	return (rc);
}

START_TEST(test_request_chat)
{
	struct fv_genreq	 a, b;
	const char		*param;

	ck_assert_int_eq(req(&a, FV_CHAT, "{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"system\",\"content\":\"Be brief.\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi "
	    "there\"},{\"type\":\"image_url\",\"image_url\":{}}]}],"
	    "\"max_tokens\":5,\"max_completion_tokens\":9,\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true},\"temperature\":0,"
	    "\"seed\":3,\"n\":1,\"unknown\":[1,2]}", &param), 0);
	ck_assert_str_eq(a.model, "m");
	ck_assert_int_eq(a.max_tokens, 9);
	ck_assert_int_eq(a.stream, 1);
	ck_assert_int_eq(a.include_usage, 1);
	ck_assert_int_eq(a.has_temperature, 1);
	ck_assert(a.temperature == 0);
	ck_assert_int_eq(a.has_seed, 1);
	/* 1 + 3 template, 4 + 3 "Be brief.", 4 + 2 "Hi there" + 1 image. */
	ck_assert_uint_eq(a.prompt_tokens, 1 + 3 + 4 + 3 + 4 + 2 + 1);
	ck_assert_int_eq(req(&b, FV_CHAT, "{\"messages\":[{\"role\":\"system\","
	    "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi "
	    "there\"}]}", &param), 0);
	ck_assert_ptr_null(b.model);
	ck_assert_int_eq(b.max_tokens, -1);
	ck_assert_uint_eq(a.prompt_hash, b.prompt_hash);
	fv_request_free(&a);
	fv_request_free(&b);
	ck_assert_int_eq(req(&b, FV_CHAT, "{\"messages\":[{\"role\":\"user\","
	    "\"content\":\"Hi there!\"}]}", &param), 0);
	ck_assert_uint_ne(a.prompt_hash, b.prompt_hash);
	fv_request_free(&b);
}
END_TEST

START_TEST(test_request_completion)
{
	struct fv_genreq	 r;
	const char		*param;
	uint64_t		 h;

	ck_assert_int_eq(req(&r, FV_COMPLETION, "{\"prompt\":\"Once upon\","
	    "\"max_tokens\":3}", &param), 0);
	ck_assert_uint_eq(r.prompt_tokens, 3);
	h = r.prompt_hash;
	ck_assert_int_eq(req(&r, FV_COMPLETION, "{\"prompt\":[\"Once upon\"]}",
	    &param), 0);
	ck_assert_uint_eq(r.prompt_hash, h);
	ck_assert_int_eq(req(&r, FV_COMPLETION, "{\"prompt\":[1,2,3,4,5]}",
	    &param), 0);
	ck_assert_uint_eq(r.prompt_tokens, 5);
	h = r.prompt_hash;
	ck_assert_int_eq(req(&r, FV_COMPLETION, "{\"prompt\":[[1,2,3,4,5]]}",
	    &param), 0);
	ck_assert_uint_eq(r.prompt_hash, h);
}
END_TEST

START_TEST(test_request_errors)
{
	static const struct {
		int		 kind;
		const char	*body;
		const char	*param;
	} bad[] = {
		{ FV_CHAT, "", NULL },
		{ FV_CHAT, "nope", NULL },
		{ FV_CHAT, "[]", NULL },
		{ FV_CHAT, "{}", "messages" },
		{ FV_CHAT, "{\"messages\":{}}", "messages" },
		{ FV_CHAT, "{\"messages\":[]}", "messages" },
		{ FV_CHAT, "{\"messages\":[1]}", "messages" },
		{ FV_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages" },
		{ FV_CHAT, "{\"messages\":[{\"role\":\"u\",\"content\":5}]}",
		    "messages" },
		{ FV_CHAT, "{\"messages\":[{\"role\":\"u\",\"content\":[{\"type\":"
		    "\"text\"}]}]}", "messages" },
		{ FV_CHAT, "{\"messages\":[{\"role\":\"u\",\"content\":[3]}]}",
		    "messages" },
		{ FV_COMPLETION, "{}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":[]}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":[[]]}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":[1,\"b\"]}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":{}}", "prompt" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}",
		    "max_tokens" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":1.5}",
		    "max_tokens" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"stream\":1}", "stream" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"stream_options\":{}}",
		    "stream_options" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,"
		    "\"stream_options\":[]}", "stream_options" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"temperature\":\"hot\"}",
		    "temperature" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"temperature\":-0.5}",
		    "temperature" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"n\":3}", "n" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"n\":0}", "n" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"model\":[]}", "model" },
		{ FV_COMPLETION, "{\"prompt\":\"x\",\"seed\":\"s\"}", "seed" },
	};
	struct fv_genreq	 r;
	const char		*param;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(req(&r, bad[i].kind, bad[i].body, &param) == -1,
		    "accepted %s", bad[i].body);
		if (bad[i].param == NULL)
			ck_assert_ptr_null(param);
		else
			ck_assert_str_eq(param, bad[i].param);
		ck_assert_ptr_null(r.model);
	}
}
END_TEST

START_TEST(test_request_hostile)
{
	struct fv_genreq	 r;
	const char		*param;
	char			 err[128], *deep;
	size_t			 n = 100000;

	deep = malloc(2 * n + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	ck_assert_int_eq(fv_request_parse(&r, FV_CHAT, deep, 2 * n, err,
	    sizeof(err), &param), -1);
	free(deep);
	ck_assert_int_eq(fv_request_parse(&r, FV_CHAT, "{\"a\":\"\0\"}", 9, err,
	    sizeof(err), &param), -1);
	/* A body without a terminating NUL is fine (it is copied). */
	ck_assert_int_eq(fv_request_parse(&r, FV_COMPLETION,
	    "{\"prompt\":\"x\"}XXXX", 14, err, sizeof(err), &param), 0);
}
END_TEST

/* ---- json and idmap ------------------------------------------------------ */

START_TEST(test_json)
{
	struct evbuffer	*b = evbuffer_new();
	char		 out[128];
	size_t		 len;

	fv_json_string(b, "a\"b\\c\n\x01\xc3\xa9", 9);
	len = evbuffer_remove(b, out, sizeof(out) - 1);
	out[len] = '\0';
	ck_assert_str_eq(out, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"");
	evbuffer_free(b);
	ck_assert(fv_json_depth_ok("[[{}]]", 6, 3));
	ck_assert(!fv_json_depth_ok("[[{}]]", 6, 2));
	ck_assert(fv_json_depth_ok("\"[[[[\\\"[[\"", 10, 1));
}
END_TEST

START_TEST(test_idmap)
{
	struct fv_idmap		 m;
	struct fv_idnode	 n[3000];
	size_t			 i;

	fv_idmap_init(&m);
	ck_assert_ptr_null(fv_idmap_any(&m));
	for (i = 0; i < 3000; i++)
		fv_idmap_add(&m, &n[i], i * 1024);
	ck_assert_uint_eq(m.n, 3000);
	for (i = 0; i < 3000; i++)
		ck_assert_ptr_eq(fv_idmap_find(&m, i * 1024), &n[i]);
	ck_assert_ptr_null(fv_idmap_find(&m, 1));
	fv_idmap_remove(&m, &n[5]);
	ck_assert_ptr_null(fv_idmap_find(&m, 5 * 1024));
	for (i = 0; i < 2999; i++)
		fv_idmap_remove(&m, fv_idmap_any(&m));
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(fv_idmap_any(&m));
}
END_TEST

/* ---- the engine, in one process, without HTTP ----------------------------- */

static struct event_base	*eng_base;

/* Run the event loop until the engine is idle (or give up). */
static void
eng_settle(void)
{
	int	i;

	for (i = 0; i < 1000; i++) {
		event_base_loop(eng_base, EVLOOP_NONBLOCK);
		if (fv_server.engine.ready && !fv_server.engine.busy)
			return;
	}
}

static void
eng_send(int type, int op, uint64_t id, int64_t a, int64_t b)
{
	struct fv_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)type;
	m.op = (uint16_t)op;
	m.id = id;
	m.seed = id;
	m.a = a;
	m.b = b;
	fv_engine_dispatch(&m, NULL);
}

START_TEST(test_engine_state_machine)
{
	static struct fv_opts	 o;
	const struct fv_state	*st = &fv_server.engine;
	int64_t			 i;

	fv_args_defaults(&o);
	o.startup_ms = o.sleep1_ms = o.sleep2_ms = 0;
	o.wake_ms = o.reload_ms = o.token_ms = 0;
	o.sleep_mode = 1;
	o.max_num_seqs = 4;
	o.model = (char *)"unit";
	/* Replies go to fv_server, which finds no HTTP request for them. */
	memset(&fv_server, 0, sizeof(fv_server));
	fv_server.listening = 1;
	eng_base = event_base_new();
	fv_channel_inproc();
	fv_engine_init(eng_base, &o);
	fv_engine_start();
	eng_settle();
	ck_assert_int_eq(st->ready, 1);

	eng_send(FV_MSG_ADD, 0, 1, 5, 0);
	ck_assert_int_eq(st->tokens, 5);
	ck_assert_int_eq(st->finished, 1);

	eng_send(FV_MSG_CALL, FV_CALL_SLEEP, 100, 2, FV_MODE_ABORT);
	eng_settle();
	ck_assert_int_eq(st->tags, FV_TAG_WEIGHTS | FV_TAG_KV);
	ck_assert_int_eq(st->level, 2);
	ck_assert_int_eq(st->discarded, 1);
	ck_assert_int_eq(st->paused, 1);
	/* Asleep: a request waits for the scheduler. */
	eng_send(FV_MSG_ADD, 0, 2, 5, 0);
	ck_assert_int_eq(st->waiting, 1);
	eng_send(FV_MSG_CALL, FV_CALL_WAKE, 101, FV_TAG_ALL, 0);
	eng_settle();
	ck_assert_int_eq(st->tags, 0);
	ck_assert_int_eq(st->paused, 0);
	/* Woken from level 2 without a reload: it ran and failed. */
	ck_assert_int_eq(st->waiting, 0);
	ck_assert_int_eq(st->running, 0);
	ck_assert_int_eq(st->tokens, 5);
	eng_send(FV_MSG_CALL, FV_CALL_RELOAD, 102, 0, 0);
	eng_settle();
	ck_assert_int_eq(st->discarded, 0);
	eng_send(FV_MSG_ADD, 0, 3, 7, 0);
	ck_assert_int_eq(st->tokens, 12);
	ck_assert_int_eq(st->finished, 2);

	/* A stalled stream holds a seat; aborting it frees the seat. */
	eng_send(FV_MSG_FAULT, FV_FAULT_STALL_STREAM, 0, 1, 2);
	eng_send(FV_MSG_ADD, 0, 4, 9, FV_ADD_STREAM);
	ck_assert_int_eq(st->stalled, 1);
	ck_assert_int_eq(st->running, 1);
	eng_send(FV_MSG_ABORT, 0, 4, 0, 0);
	ck_assert_int_eq(st->running, 0);

	/* Behind a hung sleep everything queues, up to a limit. */
	eng_send(FV_MSG_FAULT, FV_FAULT_HANG_SLEEP, 0, 1, 0);
	eng_send(FV_MSG_CALL, FV_CALL_SLEEP, 103, 1, FV_MODE_ABORT);
	ck_assert_int_eq(st->busy, 1);
	for (i = 0; i < FV_ENGINE_QUEUE_MAX + 3; i++)
		eng_send(FV_MSG_ADD, 0, 1000 + (uint64_t)i, 1, 0);
	ck_assert_int_eq(st->queued, FV_ENGINE_QUEUE_MAX);
	/* An abort takes its request out of the queue. */
	eng_send(FV_MSG_ABORT, 0, 1000, 0, 0);
	ck_assert_int_eq(st->queued, FV_ENGINE_QUEUE_MAX - 1);
	ck_assert_int_eq(st->sleeps, 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("fakevllm");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_args_supervisor_line);
	tcase_add_test(tc, test_args_unknown_options);
	tcase_add_test(tc, test_args_names_and_model);
	tcase_add_test(tc, test_args_fake_options);
	tcase_add_test(tc, test_args_errors);
	tcase_add_test(tc, test_args_fake_gpu_cuda);
	tcase_add_test(tc, test_pattern);
	tcase_add_test(tc, test_faults);
	tcase_add_test(tc, test_generate_deterministic_and_counted);
	tcase_add_test(tc, test_generate_count);
	tcase_add_test(tc, test_generate_natural_and_hash);
	tcase_add_test(tc, test_request_chat);
	tcase_add_test(tc, test_request_completion);
	tcase_add_test(tc, test_request_errors);
	tcase_add_test(tc, test_request_hostile);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_idmap);
	tcase_add_test(tc, test_engine_state_machine);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
