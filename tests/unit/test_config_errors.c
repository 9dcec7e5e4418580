/*
 * test_config_errors.c -- the config loader's refusals: each kind of error
 * and warning with its exact line:column, all errors in one run, the
 * object store's keys, machine facts in check and run mode, the admin
 * token file and the API port without keys. Hostile input is
 * test_config_hostile.c's.
 */
#include "config_test.h"
#include "unit.h"

/* ---- errors, each kind with its place --------------------------------- */

START_TEST(test_error_types)
{
	expect_diags(M "warmup: yes\n",
	    "5:9: error: warmup: expected true or false, got a string\n");
	expect_diags(M "warmup: \"true\"\n",
	    "5:9: error: warmup: expected true or false, got a string "
	    "(remove the quotes)\n");
	expect_diags("models:\n  a:\n    model_path: p\n    port: \"8001\"\n",
	    "4:11: error: models.a.port: expected an integer from 1 to 65535, "
	    "got a string (remove the quotes)\n");
	expect_diags(M "port: null\n",
	    "5:7: error: port: expected an integer from 1 to 65535, got null\n");
	expect_diags(M "startup_timeout_secs: 1.5\n",
	    "5:23: error: startup_timeout_secs: expected an integer from 1 to "
	    "604800, got a number\n");
	expect_diags(M "policy: 5\n",
	    "5:9: error: policy: expected a mapping, got an integer\n");
	expect_diags(M "policy:\n  amortization_factor: [1]\n",
	    "6:24: error: policy.amortization_factor: expected a number, got a "
	    "sequence\n");
	expect_diags(M "policy:\n  amortization_factor: .inf\n",
	    "6:24: error: policy.amortization_factor: .inf is out of range "
	    "(0..1000)\n");
	expect_diags(M "    extra_args: --enforce-eager\n",
	    "5:17: error: models.a.extra_args: expected a sequence of strings, "
	    "got a string\n");
	expect_diags(M "    extra_args: [a, null, {b: c}]\n",
	    "5:21: error: models.a.extra_args[1]: expected a string, got null\n"
	    "5:27: error: models.a.extra_args[2]: expected a string, got a "
	    "mapping\n");
	expect_diags("models:\n  a:\n    model_path: \"\"\n    port: 1\n",
	    "3:17: error: models.a.model_path: must not be empty\n");
	expect_diags(M "    model_path: q\n",
	    "5:5: error: models.a.model_path: duplicate key (first at line "
	    "3)\n");
	expect_diags("models: [a]\n",
	    "1:9: error: models: expected a mapping of model names to models, "
	    "got a sequence\n");
	expect_diags("models:\n  a: 5\n",
	    "2:6: error: models.a: expected a mapping, got an integer\n");
	expect_diags(M "user: \"bad user\"\n",
	    "5:7: error: user: 'bad user' is not a valid user or group name\n");
	expect_diags(M "state_dir: var/lib\n",
	    "5:12: error: state_dir: 'var/lib' must be an absolute path\n");
	expect_diags(M "proxy: {listen_address: localhost}\n",
	    "5:25: error: proxy.listen_address: 'localhost' is not an IPv4 or "
	    "IPv6 address\n");
	expect_diags(M "proxy: {api_keys: [\"a b\"]}\n",
	    "5:20: error: proxy.api_keys[0]: 'a b' may hold only printable "
	    "ASCII without spaces\n");
	expect_diags(M "port: true\n",
	    "5:7: error: port: expected an integer from 1 to 65535, got a "
	    "boolean\n");
	expect_diags(M "model_log_max_bytes: -5\n",
	    "5:22: error: model_log_max_bytes: -5 is out of range "
	    "(1024..1099511627776 bytes)\n");
	expect_diags(M "model_log_max_bytes: MiB\n",
	    "5:22: error: model_log_max_bytes: expected a size such as 65536, "
	    "\"64MiB\" or \"32M\", got a string\n");
	expect_diags(M "model_log_max_bytes: {a: 1}\n",
	    "5:22: error: model_log_max_bytes: expected a size such as 65536, "
	    "\"64MiB\" or \"32M\", got a mapping\n");
	expect_diags(M "policy: {policy_type: [fifo]}\n",
	    "5:23: error: policy.policy_type: expected a policy name, got a "
	    "sequence\n");
	expect_diags(M "    eviction: [offload, stop]\n",
	    "5:15: error: models.a.eviction: expected {weights, process}, a "
	    "level 1..5 or \"weights+process\", got a sequence\n");
	expect_diags(M "    eviction: {weights: 1, process: stop, process: "
	    "stop}\n",
	    "5:25: error: models.a.eviction.weights: expected a strategy name, "
	    "got an integer\n"
	    "5:43: error: models.a.eviction.process: duplicate key (first at "
	    "line 5)\n");
	expect_diags(M "    env: [A=1]\n",
	    "5:10: error: models.a.env: expected a mapping of variable names to "
	    "values, got a sequence\n");
	expect_diags(M "    gpus: \"0\"\n",
	    "5:11: error: models.a.gpus: expected a sequence of GPU indexes, got "
	    "a string (remove the quotes)\n");
	expect_diags(M "    env: {1X: a, \"A=B\": c, OK: [d]}\n",
	    "5:11: error: models.a.env.1X: not a valid environment variable "
	    "name\n"
	    "5:18: error: models.a.env.A=B: not a valid environment variable "
	    "name\n"
	    "5:32: error: models.a.env.OK: expected a string, got a sequence\n");
}
END_TEST

START_TEST(test_error_ranges)
{
	char	sock[120], text[512], *big;

	expect_diags("models:\n  a:\n    model_path: p\n    port: 0\n",
	    "4:11: error: models.a.port: 0 is out of range (1..65535)\n");
	expect_diags(M "metrics_port: 65536\n",
	    "5:15: error: metrics_port: 65536 is out of range (0..65535)\n");
	expect_diags(M "port: -1\n",
	    "5:7: error: port: -1 is out of range (1..65535)\n");
	expect_diags(M "max_sleeping: 99999999999999999999\n",
	    "5:15: error: max_sleeping: 99999999999999999999 is out of range "
	    "(0..1000)\n");
	expect_diags(M "    gpu_memory_utilization: 0\n",
	    "5:29: error: models.a.gpu_memory_utilization: 0 is out of range "
	    "(more than 0, at most 1)\n");
	expect_diags(M "    gpu_memory_utilization: 1.01\n",
	    "5:29: error: models.a.gpu_memory_utilization: 1.01 is out of "
	    "range (more than 0, at most 1)\n");
	expect_diags(M "policy: {tick_interval_ms: 5}\n",
	    "5:28: error: policy.tick_interval_ms: 5 is out of range "
	    "(10..3600000)\n");
	/* Lists longer than their limit. */
	snprintf(text, sizeof(text), M "    aliases: [");
	for (int i = 0; i < 33; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "a%d, ", i);
	strcat(text, "z]\n");
	expect_diags(text, "5:14: error: models.a.aliases: too many entries "
	    "(34; at most 32)\n");
	snprintf(text, sizeof(text), M "    gpus: [");
	for (int i = 0; i < 65; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "%d, ", i % 10);
	strcat(text, "0]\n");
	expect_diags(text, "5:11: error: models.a.gpus: too many entries (66; at "
	    "most 64)\n");
	big = malloc(8192);
	snprintf(big, 8192, M "    env: {");
	for (int i = 0; i < 256; i++)
		snprintf(big + strlen(big), 8192 - strlen(big), "E%d: v, ", i);
	strcat(big, "Z: v}\n");
	expect_diags(big, "5:10: error: models.a.env: too many entries (257; at "
	    "most 256)\n");
	free(big);
	memset(sock, 'x', sizeof(sock));
	snprintf(text, sizeof(text), M "supervisor_socket: /%.107s\n", sock);
	expect_diags(text, "5:20: error: supervisor_socket: is too long (108 "
	    "bytes; at most 107)\n");
	snprintf(text, sizeof(text), M "supervisor_socket: /%.106s\n", sock);
	expect_diags(text, "");
}
END_TEST

START_TEST(test_error_ports)
{
	/* Two models on one port. */
	expect_diags(M "  b:\n    model_path: q\n    port: 8001\n",
	    "7:11: error: models.b.port: port 8001 is already used by "
	    "models.a.port (line 4)\n");
	/* A model on the proxy's port, written before or after it. */
	expect_diags("port: 8001\n" M,
	    "5:11: error: models.a.port: port 8001 is already used by port "
	    "(line 1)\n");
	expect_diags(M "metrics_port: 8001\n",
	    "5:15: error: metrics_port: port 8001 is already used by "
	    "models.a.port (line 4)\n");
	/* A model on the default admin port. */
	expect_diags("models:\n  a:\n    model_path: p\n    port: 3001\n",
	    "4:11: error: models.a.port: port 3001 is already used by "
	    "admin_port (the default)\n");
	/* Disabled ports clash with nothing. */
	expect_diags("admin_port: 0\nmetrics_port: 0\nmodels:\n  a:\n"
	    "    model_path: p\n    port: 3001\n  b:\n    model_path: p\n"
	    "    port: 9090\n", "");
	/* On one line, the later column is the one reported. */
	expect_diags("{\"port\": 7, \"models\": {\"a\": {\"model_path\": "
	    "\"p\", \"port\": 7}}}",
	    "1:57: error: models.a.port: port 7 is already used by port (line "
	    "1)\n");
	/* /metrics may share the control API's port. */
	expect_diags(M "admin_port: 9090\n", "");
	expect_diags(M "admin_port: 3000\n",
	    "5:13: error: admin_port: port 3000 is already used by port (the "
	    "default)\n");
}
END_TEST

START_TEST(test_error_missing)
{
	expect_diags("models:\n  a:\n    port: 8001\n",
	    "2:3: error: models.a: missing required key 'model_path'\n");
	expect_diags("models:\n  a:\n    model_path: p\n",
	    "2:3: error: models.a: missing required key 'port'\n");
	expect_diags("models:\n  a: {}\n",
	    "2:3: error: models.a: missing required key 'model_path'\n"
	    "2:3: error: models.a: missing required key 'port'\n");
	expect_diags("port: 3000\n",
	    "1:1: error: missing required key 'models'\n");
	expect_diags(M "checkpoint:\n  object_store:\n    bucket: bkt\n",
	    "6:3: error: checkpoint.object_store: missing required key "
	    "'endpoint'\n"
	    "6:3: error: checkpoint.object_store: missing required key "
	    "'access_key'\n"
	    "6:3: error: checkpoint.object_store: missing required key "
	    "'secret_key'\n");
}
END_TEST

/* A checkpoint.object_store with one key (line 7) set to value. */
static void
expect_store(const char *key, const char *value, const char *want)
{
	const char	*keys[] = { "endpoint", "bucket", "access_key",
			    "secret_key" };
	const char	*vals[] = { "http://127.0.0.1:9000", "llmux-images",
			    "AKIDEXAMPLE", "wJalrXUtnFEMI" };
	char		 text[2048];
	int		 n;

	n = snprintf(text, sizeof(text), M "checkpoint:\n  object_store:\n"
	    "    %s: %s\n", key, value);
	for (size_t i = 0; i < 4; i++)
		if (strcmp(keys[i], key) != 0)
			n += snprintf(text + n, sizeof(text) - (size_t)n,
			    "    %s: %s\n", keys[i], vals[i]);
	expect_diags(text, want);
}

START_TEST(test_object_store_keys)
{
	struct config	*cfg;
	char		 want[512], longb[80];

	cfg = load_ok(M "checkpoint:\n  object_store: {endpoint: "
	    "'https://s3.example.com:9000/store/', bucket: llmux.images-1, "
	    "access_key: AKIDEXAMPLE, secret_key: 'wJal/rX+Ut='}\n");
	ck_assert(cfg->checkpoint.object_store.set);
	ck_assert_uint_eq(cfg->checkpoint.object_store.timeout_secs, 60);
	ck_assert_uint_eq(cfg->checkpoint.object_store.retries, 4);
	ck_assert_uint_eq(cfg->checkpoint.object_store.part_size_mb, 64);
	ck_assert_uint_eq(
	    cfg->checkpoint.object_store.multipart_threshold_mb, 5120);
	ck_assert_str_eq(cfg->checkpoint.object_store.region, "us-east-1");
	config_free(cfg);

	expect_store("endpoint", "s3.example.com", "7:15: error: "
	    "checkpoint.object_store.endpoint: 's3.example.com' is not an "
	    "http:// or https:// URL\n");
	expect_store("endpoint", "'ftp://h'", "7:15: error: "
	    "checkpoint.object_store.endpoint: 'ftp://h' is not an http:// "
	    "or https:// URL\n");
	expect_store("endpoint", "'http:///x'", "7:15: error: "
	    "checkpoint.object_store.endpoint: 'http:///x' has no host\n");
	expect_store("endpoint", "'http://k:s@h'", "7:15: error: "
	    "checkpoint.object_store.endpoint: 'http://k:s@h' must not hold "
	    "credentials (use access_key and secret_key)\n");
	expect_store("endpoint", "'http://h/?a=b'", "7:15: error: "
	    "checkpoint.object_store.endpoint: 'http://h/?a=b' must not have "
	    "a query or a fragment\n");
	expect_store("endpoint", "'http://h /x'", "7:15: error: "
	    "checkpoint.object_store.endpoint: 'http://h /x' may hold only "
	    "printable ASCII without spaces\n");

	expect_store("bucket", "ab", "7:13: error: "
	    "checkpoint.object_store.bucket: 'ab' must be 3 to 63 characters "
	    "long (S3's bucket rules)\n");
	memset(longb, 'a', 64);
	longb[64] = '\0';
	snprintf(want, sizeof(want), "7:13: error: checkpoint.object_store."
	    "bucket: is too long (64 bytes; at most 63)\n");
	expect_store("bucket", longb, want);
	expect_store("bucket", "Images", "7:13: error: "
	    "checkpoint.object_store.bucket: 'Images' may hold only lowercase "
	    "letters, digits, '.' and '-' (S3's bucket rules)\n");
	expect_store("bucket", "img_1", "7:13: error: "
	    "checkpoint.object_store.bucket: 'img_1' may hold only lowercase "
	    "letters, digits, '.' and '-' (S3's bucket rules)\n");
	expect_store("bucket", "-images", "7:13: error: "
	    "checkpoint.object_store.bucket: '-images' must begin and end "
	    "with a letter or a digit (S3's bucket rules)\n");
	expect_store("bucket", "images.", "7:13: error: "
	    "checkpoint.object_store.bucket: 'images.' must begin and end "
	    "with a letter or a digit (S3's bucket rules)\n");
	expect_store("bucket", "im..ages", "7:13: error: "
	    "checkpoint.object_store.bucket: 'im..ages' must not hold two "
	    "dots in a row (S3's bucket rules)\n");
	expect_store("bucket", "192.168.5.4", "7:13: error: "
	    "checkpoint.object_store.bucket: '192.168.5.4' must not be an IP "
	    "address (S3's bucket rules)\n");
	expect_store("bucket", "xn--images", "7:13: error: "
	    "checkpoint.object_store.bucket: 'xn--images' uses a prefix or "
	    "suffix S3 reserves (S3's bucket rules)\n");
	expect_store("bucket", "images-s3alias", "7:13: error: "
	    "checkpoint.object_store.bucket: 'images-s3alias' uses a prefix or "
	    "suffix S3 reserves (S3's bucket rules)\n");

	/* Both keys, non-empty; the secret is never repeated. */
	expect_store("access_key", "''", "7:17: error: "
	    "checkpoint.object_store.access_key: must not be empty\n");
	expect_store("secret_key", "''", "7:17: error: "
	    "checkpoint.object_store.secret_key: must not be empty\n");
	expect_store("secret_key", "'my secret'", "7:17: error: "
	    "checkpoint.object_store.secret_key: the value may hold only "
	    "printable ASCII without spaces\n");
	expect_store("access_key", "'my key'", "7:17: error: "
	    "checkpoint.object_store.access_key: 'my key' may hold only "
	    "printable ASCII without spaces\n");

	expect_store("region", "'eu west'", "7:13: error: "
	    "checkpoint.object_store.region: 'eu west' may hold only letters, "
	    "digits, '-' and '_'\n");
	expect_store("retries", "21", "7:14: error: "
	    "checkpoint.object_store.retries: 21 is out of range (0..20)\n");
	expect_store("timeout_secs", "0", "7:19: error: "
	    "checkpoint.object_store.timeout_secs: 0 is out of range "
	    "(1..3600)\n");
	/* S3's smallest and largest part. */
	expect_store("part_size_mb", "4", "7:19: error: "
	    "checkpoint.object_store.part_size_mb: 4 is out of range "
	    "(5..5120)\n");
	expect_store("part_size_mb", "5121", "7:19: error: "
	    "checkpoint.object_store.part_size_mb: 5121 is out of range "
	    "(5..5120)\n");
	expect_store("multipart_threshold_mb", "5121", "7:29: error: "
	    "checkpoint.object_store.multipart_threshold_mb: 5121 is out of "
	    "range (5..5120)\n");
}
END_TEST

START_TEST(test_error_eviction_policy)
{
	expect_diags(M "    eviction: {weights: melt, process: stop}\n",
	    "5:25: error: models.a.eviction.weights: unknown weights strategy "
	    "'melt' (expected retain, offload or discard)\n");
	expect_diags(M "    eviction: offload+nap\n",
	    "5:15: error: models.a.eviction: unknown process strategy 'nap' "
	    "(expected keep_running, cuda_suspend, checkpoint or stop)\n");
	expect_diags(M "    eviction: nap\n",
	    "5:15: error: models.a.eviction: expected \"weights+process\", a "
	    "level 1..5 or {weights, process}, got a string\n");
	expect_diags(M "    eviction: 7\n",
	    "5:15: error: models.a.eviction: 7 is out of range (1..5)\n");
	expect_diags(M "    eviction: {weights: offload}\n",
	    "5:15: error: models.a.eviction: missing required key 'process'\n");
	expect_diags(M "    eviction: {weights: offload, process: stop, "
	    "proces: x}\n",
	    "5:49: warning: models.a.eviction.proces: unknown key, ignored (did "
	    "you mean 'process'?)\n");
	expect_diags(M "    sleep_level: 2\n    eviction: 3\n",
	    "6:5: error: models.a.eviction: 'eviction' and 'sleep_level' (line "
	    "5) set the same thing; keep one\n");
	expect_diags(M "    sleep_level: offload\n",
	    "5:18: error: models.a.sleep_level: expected a level from 1 to 5, "
	    "got a string\n");
	expect_diags(M "policy:\n  policy_type: lifo\n",
	    "6:16: error: policy.policy_type: unknown policy type 'lifo' "
	    "(expected fifo, cost_aware, time_slice or batch_aware)\n");
	expect_diags(M "policy:\n  eviction: {weights: retain, process: "
	    "freeze}\n",
	    "6:40: error: policy.eviction.process: unknown process strategy "
	    "'freeze' (expected keep_running, cuda_suspend, checkpoint or "
	    "stop)\n");
}
END_TEST

START_TEST(test_error_checkpoint_gpus)
{
	expect_diags(M "    checkpoint_path: /tmp\n",
	    "5:22: error: models.a.checkpoint_path: needs a top-level "
	    "'checkpoint' section\n");
	expect_diags(M "    checkpoint_path: /tmp\ncheckpoint: {}\n", "");
	expect_diags("gpu_count: 2\n" M "    gpus: [0, 2]\n",
	    "6:15: error: models.a.gpus[1]: GPU 2 does not exist (gpu_count is "
	    "2)\n");
	expect_diags(M "    gpus: [1, 64]\n",
	    "5:15: error: models.a.gpus[1]: 64 is out of range (0..63)\n");
	expect_diags(M "    gpus: [1, 1]\n",
	    "5:15: error: models.a.gpus[1]: GPU 1 is listed twice\n");
	expect_diags(M "    gpus: []\n",
	    "5:11: error: models.a.gpus: list at least one GPU, or leave the "
	    "key out to use them all\n");
	expect_diags(M "    gpus: [0]\n    extra_args: [--tensor-parallel-size, "
	    "\"2\"]\n",
	    "5:11: error: models.a.gpus: tensor parallel size 2 needs 2 GPUs, "
	    "but 1 is listed\n");
	expect_diags("gpu_count: 1\n" M "    extra_args: [-tp=4]\n",
	    "3:3: error: models.a: tensor parallel size 4 needs 4 GPUs, but "
	    "gpu_count is 1\n");
	expect_diags(M "    extra_args: [--tensor-parallel-size, two]\n",
	    "5:42: error: models.a.extra_args: the tensor parallel size must be "
	    "an integer from 1 to 64\n");
	expect_diags(M "    extra_args: [--max-model-len, 9, -tp]\n",
	    "5:38: error: models.a.extra_args: the tensor parallel size must be "
	    "an integer from 1 to 64\n");
	expect_diags(M "    extra_args: [--gpu-memory-utilization=1.5]\n",
	    "5:18: error: models.a.extra_args: the GPU memory utilization must "
	    "be a number more than 0, at most 1\n");
	expect_diags(M "    extra_args: [--gpu-memory-utilization, 0.8]\n"
	    "    gpu_memory_utilization: 0.5\n",
	    "6:29: error: models.a.gpu_memory_utilization: 0.5 differs from "
	    "--gpu-memory-utilization 0.8 in extra_args; set it in one place\n");
}
END_TEST

START_TEST(test_error_names)
{
	char	text[512];

	expect_diags("models:\n  \"a b\":\n    model_path: p\n    port: 1\n",
	    "2:3: error: models.a b: bad model name: it may hold only letters, "
	    "digits and . _ : / @ -\n");
	expect_diags("models:\n  \"\":\n    model_path: p\n    port: 1\n",
	    "2:3: error: models.: bad model name: it must be 1 to 128 bytes "
	    "long\n");
	snprintf(text, sizeof(text), "models:\n  %0129d:\n    model_path: p\n"
	    "    port: 1\n", 0);
	expect_diags(text, "2:3: error: models.00000000000000000000000000000000"
	    "00000000000000000000000000000000...: bad model name: it must be 1 "
	    "to 128 bytes long\n");
	snprintf(text, sizeof(text), "models:\n  %0128d:\n    model_path: p\n"
	    "    port: 1\n", 0);
	expect_diags(text, "");
	expect_diags("models:\n  \"org/m-1.5:q4@x_y\":\n    model_path: p\n"
	    "    port: 1\n", "");
	expect_diags("models:\n  \"\\e[31m\":\n    model_path: p\n    port: 1\n",
	    "2:3: error: models.\\x1b[31m: bad model name: it may hold only "
	    "letters, digits and . _ : / @ -\n");
	expect_diags("models:\n  \"mod\xc3\xa8le \xe2\x82\xac\":\n"
	    "    model_path: p\n    port: 1\n",
	    "2:3: error: models.mod\xc3\xa8le \xe2\x82\xac: bad model name: it "
	    "may hold only letters, digits and . _ : / @ -\n");
	expect_diags(M "    aliases: [b, a]\n  b:\n    model_path: q\n"
	    "    port: 8002\n    aliases: [c, b2, c]\n  c2:\n"
	    "    model_path: r\n    port: 8003\n    aliases: [b2, \"x y\"]\n",
	    "5:15: error: models.a.aliases[0]: 'b' is the name of a model\n"
	    "5:18: error: models.a.aliases[1]: 'a' is the name of a model\n"
	    "9:22: error: models.b.aliases[2]: 'c' is already an alias of "
	    "model 'b'\n"
	    "13:15: error: models.c2.aliases[0]: 'b2' is already an alias of "
	    "model 'b'\n"
	    "13:19: error: models.c2.aliases[1]: 'x y' may hold only letters, "
	    "digits and . _ : / @ -\n");
}
END_TEST

START_TEST(test_error_duplicates)
{
	expect_diags(M "port: 1\nport: 2\n",
	    "6:1: error: port: duplicate key (first at line 5)\n");
	expect_diags(M "  a:\n    model_path: q\n    port: 9\n",
	    "5:3: error: models.a: duplicate key (first at line 2)\n");
	expect_diags("{\"models\": {\"a\": {\"model_path\": \"p\", \"port\": 1, "
	    "\"port\": 2}}}",
	    "1:49: error: models.a.port: duplicate key (first at line 1)\n");
	expect_diags(M "    env: {A: 1, B: 2, A: 3}\n",
	    "5:23: error: models.a.env.A: duplicate key (first at line 5)\n");
	expect_diags(M "policy: {}\npolicy: {}\n",
	    "6:1: error: policy: duplicate key (first at line 5)\n");
}
END_TEST

/* Every error of a file, in file order, in one run. */
START_TEST(test_all_errors)
{
	expect_diags(
	    "port: 70000\n"
	    "models:\n"
	    "  a:\n"
	    "    port: 8001\n"
	    "    eviction: {weights: melt, process: stop}\n"
	    "  b:\n"
	    "    model_path: q\n"
	    "    port: 8001\n"
	    "    extra_args: [--tensor-parallel-size, 2]\n"
	    "    eviction: retain+cuda_suspend\n"
	    "policy:\n"
	    "  policy_type: lifo\n"
	    "  polcy_type: fifo\n"
	    "gpu_count: 1\n"
	    "warmup: 1\n",
	    "1:7: error: port: 70000 is out of range (1..65535)\n"
	    "3:3: error: models.a: missing required key 'model_path'\n"
	    "5:25: error: models.a.eviction.weights: unknown weights strategy "
	    "'melt' (expected retain, offload or discard)\n"
	    "6:3: error: models.b: tensor parallel size 2 needs 2 GPUs, but "
	    "gpu_count is 1\n"
	    "6:3: warning: models.b: cuda_suspend at tensor parallel size 2 "
	    "without --enforce-eager in extra_args: CUDA graphs keep stale NCCL "
	    "handles and crash on resume\n"
	    "6:3: warning: models.b: cuda_suspend at tensor parallel size 2 "
	    "without --disable-custom-all-reduce in extra_args: custom "
	    "all-reduce buffers cannot survive a CUDA checkpoint\n"
	    "8:11: error: models.b.port: port 8001 is already used by "
	    "models.a.port (line 4)\n"
	    "12:16: error: policy.policy_type: unknown policy type 'lifo' "
	    "(expected fifo, cost_aware, time_slice or batch_aware)\n"
	    "13:3: warning: policy.polcy_type: unknown key, ignored (did you "
	    "mean 'policy_type'?)\n"
	    "15:9: error: warmup: expected true or false, got an integer\n");
}
END_TEST

START_TEST(test_warnings)
{
	struct config_diags	 d;
	struct config		*cfg;

	expect_diags(M "prot: 3000\n",
	    "5:1: warning: prot: unknown key, ignored (did you mean 'port'?)\n");
	expect_diags(M "    sleep-level: 2\n",
	    "5:5: warning: models.a.sleep-level: unknown key, ignored (did you "
	    "mean 'sleep_level'?)\n");
	expect_diags(M "a_key_much_longer_than_any_known_key_of_the_table_at_all_"
	    "really_long: 1\n",
	    "5:1: warning: a_key_much_longer_than_any_known_key_of_the_table_at_"
	    "all_really_...: unknown key, ignored\n");
	expect_diags(M "frobnicate: 1\n",
	    "5:1: warning: frobnicate: unknown key, ignored\n");
	expect_diags(M "    max_sleeping: 2\n",
	    "5:5: warning: models.a.max_sleeping: unknown key here, ignored (it "
	    "is a key of the top level)\n");
	expect_diags(M "policy_type: fifo\n",
	    "5:1: warning: policy_type: unknown key here, ignored (it is a key "
	    "of policy)\n");
	expect_diags(M "checkpoint:\n",
	    "5:12: warning: checkpoint: an empty value leaves the section out; "
	    "write {} to use its defaults\n");
	expect_diags("models: {}\n",
	    "1:9: warning: models: no models are configured\n");
	expect_diags(M "proxy: {admin_address: 0.0.0.0}\n",
	    "5:24: warning: proxy.admin_address: the control API listens on "
	    "0.0.0.0 without an admin_token\n");
	expect_diags(M "proxy: {admin_address: 0.0.0.0, admin_token: t0k}\n",
	    "");
	expect_diags(M "    extra_args: [--tensor-parallel-size=2]\n"
	    "    eviction: discard+checkpoint\ncheckpoint: {}\n",
	    "2:3: warning: models.a: checkpoint at tensor parallel size 2 "
	    "without --enforce-eager in extra_args: CUDA graphs keep stale NCCL "
	    "handles and crash on resume\n"
	    "2:3: warning: models.a: checkpoint at tensor parallel size 2 "
	    "without --disable-custom-all-reduce in extra_args: custom "
	    "all-reduce buffers cannot survive a CUDA checkpoint\n");
	expect_diags(M "    extra_args: [-tp, 2, --enforce-eager, "
	    "--disable-custom-all-reduce]\n    eviction: 3\n", "");
	/* TP>1 with an eviction that keeps no CUDA checkpoint: no warning. */
	expect_diags(M "    extra_args: [-tp, 2]\n    eviction: 1\n", "");

	/* Warnings alone do not fail the load. */
	cfg = load(M "prot: 1\n", CONFIG_RUN, &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(d.n_errors, 0);
	config_free(cfg);
	config_diags_free(&d);
}
END_TEST

/* ---- facts about this machine ---------------------------------------- */

/* The machine diagnostics, one "kind: msg" a line. */
static char *
machine_text(const struct config_diags *d)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	f = open_memstream(&buf, &len);
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].machine)
			fprintf(f, "%s: %s\n", d->v[i].error ? "error" :
			    "warning", d->v[i].msg);
	fclose(f);
	return (buf);
}

static void
expect_machine(const char *text, enum config_mode mode, const char *want,
    bool ok)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = load(text, mode, &d);
	got = machine_text(&d);
	ck_assert_msg(strcmp(got, want) == 0, "config:\n%s\nwant:\n%s\ngot:\n%s",
	    text, want, got);
	ck_assert_msg((cfg != NULL) == ok, "config:\n%s\n", text);
	free(got);
	config_free(cfg);
	config_diags_free(&d);
}

START_TEST(test_machine)
{
	char	*dir, path[256], text[1024], *old_path;

	dir = tmpdir();
	snprintf(path, sizeof(path), "%s/fake-vllm", dir);
	write_file(path, "#!/bin/sh\n", 0755);
	snprintf(path, sizeof(path), "%s/not-exec", dir);
	write_file(path, "data\n", 0644);
	old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	setenv("PATH", dir, 1);

	/* vllm_command: an absolute path, or a name on PATH. */
	snprintf(text, sizeof(text), M "vllm_command: %s/fake-vllm\n", dir);
	expect_machine(text, CONFIG_RUN, "", true);
	expect_machine(M "vllm_command: fake-vllm\n", CONFIG_CHECK, "", true);
	expect_machine(M "vllm_command: not-exec\n", CONFIG_RUN,
	    "warning: vllm_command: not-exec is not found on this machine (no "
	    "such executable on PATH)\n", true);
	snprintf(text, sizeof(text), M "vllm_command: %s/not-exec\n", dir);
	snprintf(path, sizeof(path), "warning: vllm_command: %s/not-exec is "
	    "not found on this machine (no such executable)\n", dir);
	expect_machine(text, CONFIG_CHECK, path, true);

	/* checkpoint_path: a warning when checking, an error when running. */
	snprintf(text, sizeof(text), M "    checkpoint_path: %s/none\n"
	    "    eviction: 5\nvllm_command: fake-vllm\n"
	    "checkpoint: {criu_path: fake-vllm}\n", dir);
	snprintf(path, sizeof(path), "models.a.checkpoint_path: %s/none does "
	    "not exist on this machine", dir);
	{
		char want[512];

		snprintf(want, sizeof(want), "warning: %s (the supervisor "
		    "will refuse to start)\n", path);
		expect_machine(text, CONFIG_CHECK, want, true);
		snprintf(want, sizeof(want), "error: %s\n", path);
		expect_machine(text, CONFIG_RUN, want, false);
	}
	/* ... unless an object store can supply the images. */
	snprintf(text, sizeof(text), M "    checkpoint_path: %s/none\n"
	    "vllm_command: fake-vllm\ncheckpoint:\n  criu_path: fake-vllm\n"
	    "  object_store: {endpoint: 'http://s3', bucket: bkt, "
	    "access_key: a, secret_key: s}\n", dir);
	expect_machine(text, CONFIG_RUN, "", true);
	snprintf(text, sizeof(text), M "    checkpoint_path: %s\n"
	    "vllm_command: fake-vllm\ncheckpoint: {criu_path: fake-vllm}\n",
	    dir);
	expect_machine(text, CONFIG_RUN, "", true);

	/* criu, when a model checkpoints. */
	expect_machine(M "    eviction: discard+checkpoint\n"
	    "vllm_command: fake-vllm\ncheckpoint: {criu_path: /no/criu}\n",
	    CONFIG_RUN, "warning: checkpoint.criu_path: /no/criu is not found "
	    "on this machine; model a needs it to checkpoint\n", true);
	expect_machine(M "    eviction: discard+checkpoint\n"
	    "vllm_command: fake-vllm\n", CONFIG_CHECK,
	    "warning: checkpoint.criu_path: criu is not found on this machine; "
	    "model a needs it to checkpoint\n", true);
	expect_machine(M "vllm_command: fake-vllm\n"
	    "checkpoint: {criu_path: /no/criu}\n", CONFIG_RUN, "", true);

	ck_assert(config_check_command("fake-vllm"));
	ck_assert(!config_check_command("not-exec"));
	ck_assert(!config_check_command(dir));
	if (old_path != NULL)
		setenv("PATH", old_path, 1);
	free(old_path);
	snprintf(path, sizeof(path), "%s/fake-vllm", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/not-exec", dir);
	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

/* ---- who may reach llmux (config_access.c) --------------------------- */

/* Load M with admin_token_file: path (and more); the token, or NULL. */
static char *
token_of(const char *path, const char *more, enum config_mode mode,
    const char *want_diag)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			 text[1024], *got, *tok;

	snprintf(text, sizeof(text), M "vllm_command: /bin/sh\n"
	    "admin_token_file: %s\n%s", path, more);
	cfg = load(text, mode, &d);
	got = machine_text(&d);
	ck_assert_msg(strcmp(got, want_diag) == 0, "want:\n%s\ngot:\n%s",
	    want_diag, got);
	free(got);
	ck_assert_msg((cfg != NULL) == (d.n_errors == 0), "%s", text);
	tok = cfg != NULL && cfg->proxy.admin_token != NULL ?
	    strdup(cfg->proxy.admin_token) : NULL;
	config_free(cfg);
	config_diags_free(&d);
	return (tok);
}

/* The refusal of the token file at path, as a run and as a check. */
static void
token_refused(const char *path, const char *why)
{
	char	want[1024];

	snprintf(want, sizeof(want), "error: admin_token_file: %s %s, so it "
	    "is not used\n", path, why);
	ck_assert_ptr_null(token_of(path, "", CONFIG_RUN, want));
	snprintf(want, sizeof(want), "warning: admin_token_file: %s %s, so "
	    "it is not used (the supervisor will refuse to start)\n", path,
	    why);
	ck_assert_ptr_null(token_of(path, "", CONFIG_CHECK, want));
}

START_TEST(test_admin_token_file)
{
	char	*dir, path[256], slink[256], other[256], *tok, big[400];

	dir = tmpdir();
	snprintf(path, sizeof(path), "%s/admin-token", dir);

	/* Missing: no token, and nothing to say. */
	ck_assert_ptr_null(token_of(path, "", CONFIG_RUN, ""));

	/* One line; the newline (and trailing blanks) are not the token. */
	write_file(path, "0123456789abcdef\n", 0640);
	chmod(path, 0640);
	tok = token_of(path, "", CONFIG_RUN, "");
	ck_assert_str_eq(tok, "0123456789abcdef");
	free(tok);
	/* An inline admin_token wins; null names no file. */
	tok = token_of(path, "proxy: {admin_token: inline-one}\n", CONFIG_RUN,
	    "");
	ck_assert_str_eq(tok, "inline-one");
	free(tok);
	ck_assert_ptr_null(token_of("null", "", CONFIG_RUN, ""));
	/* 0600 and 0400 are fine too. */
	chmod(path, 0400);
	tok = token_of(path, "", CONFIG_RUN, "");
	ck_assert_str_eq(tok, "0123456789abcdef");
	free(tok);

	/* Modes that let others read it or anyone else write it. */
	chmod(path, 0644);
	token_refused(path, "is readable by others (mode 0644; want 0640)");
	chmod(path, 0660);
	token_refused(path, "is writable by its group (mode 0660; want 0640)");
	chmod(path, 0646);
	token_refused(path, "is writable by others (mode 0646; want 0640)");
	chmod(path, 0640);

	/* A symbolic link, even to a good file; a second hard link. */
	snprintf(slink, sizeof(slink), "%s/link", dir);
	ck_assert_int_eq(symlink(path, slink), 0);
	token_refused(slink, "is a symbolic link");
	unlink(slink);
	snprintf(other, sizeof(other), "%s/other", dir);
	ck_assert_int_eq(link(path, other), 0);
	token_refused(path, "has other hard links");
	unlink(other);
	/* A directory. */
	snprintf(other, sizeof(other), "%s/adir", dir);
	ck_assert_int_eq(mkdir(other, 0750), 0);
	token_refused(other, "is not a regular file");
	rmdir(other);

	/* Another user's file (as root, who can make one). */
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, 65534, 0), 0);
		token_refused(path, "belongs to uid 65534, not root");
		ck_assert_int_eq(chown(path, 0, 0), 0);
	}

	/* What it holds. */
	write_file(path, "\n", 0640);
	token_refused(path, "is empty");
	write_file(path, "two words\n", 0640);
	token_refused(path, "may hold only printable ASCII without spaces, "
	    "on one line");
	write_file(path, "line1\nline2\n", 0640);
	token_refused(path, "may hold only printable ASCII without spaces, "
	    "on one line");
	memset(big, 'x', 300);
	big[300] = '\0';
	write_file(path, big, 0640);
	token_refused(path, "holds 300 characters (a token is at most 256)");

	unlink(path);
	rmdir(dir);
	free(dir);
}
END_TEST

START_TEST(test_listen_without_keys)
{
	/* Loopback (the default) needs no keys. */
	expect_diags(M, "");
	expect_diags(M "proxy: {listen_address: 127.0.0.2}\n", "");
	expect_diags(M "proxy: {listen_address: '::1'}\n", "");
	/* A public address needs keys, or says it means to be open. */
	expect_diags(M "proxy: {listen_address: 0.0.0.0}\n",
	    "5:25: error: proxy.listen_address: the API would listen on "
	    "0.0.0.0 with no api_keys, open to anyone who reaches it (set "
	    "proxy.api_keys, listen on 127.0.0.1, or set "
	    "proxy.allow_unauthenticated: true)\n");
	expect_diags(M "proxy: {listen_address: '::'}\n",
	    "5:25: error: proxy.listen_address: the API would listen on :: "
	    "with no api_keys, open to anyone who reaches it (set "
	    "proxy.api_keys, listen on 127.0.0.1, or set "
	    "proxy.allow_unauthenticated: true)\n");
	expect_diags(M "proxy: {listen_address: 0.0.0.0, api_keys: [k1]}\n",
	    "");
	expect_diags(M "proxy: {listen_address: 0.0.0.0, "
	    "allow_unauthenticated: true}\n", "");
	ck_assert(config_access_loopback("127.0.0.1"));
	ck_assert(config_access_loopback("127.255.0.9"));
	ck_assert(config_access_loopback("::1"));
	ck_assert(config_access_loopback("::ffff:127.0.0.1"));
	ck_assert(!config_access_loopback("0.0.0.0"));
	ck_assert(!config_access_loopback("::"));
	ck_assert(!config_access_loopback("10.0.0.1"));
	ck_assert(!config_access_loopback("128.0.0.1"));
	ck_assert(!config_access_loopback("::ffff:10.0.0.1"));
}
END_TEST

static Suite *
config_errors_suite(void)
{
	Suite	*s = suite_create("config-errors");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_error_types);
	tcase_add_test(tc, test_error_ranges);
	tcase_add_test(tc, test_error_ports);
	tcase_add_test(tc, test_error_missing);
	tcase_add_test(tc, test_object_store_keys);
	tcase_add_test(tc, test_error_eviction_policy);
	tcase_add_test(tc, test_error_checkpoint_gpus);
	tcase_add_test(tc, test_error_names);
	tcase_add_test(tc, test_error_duplicates);
	tcase_add_test(tc, test_all_errors);
	tcase_add_test(tc, test_warnings);
	tcase_add_test(tc, test_machine);
	tcase_add_test(tc, test_admin_token_file);
	tcase_add_test(tc, test_listen_without_keys);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(config_errors_suite()));
}
