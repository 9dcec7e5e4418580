/*
 * test_config.c -- the config loader: every default, every key of llmux
 * 0.7 (Rust) and every key llmux added, JSON and YAML giving equal
 * structs, the sample files under tests/configs/ and the example config,
 * docs/configuration.md naming every key, lookups and printing. Errors,
 * warnings, machine facts and hostile input are test_config_errors.c's.
 *
 * Run from the source root (tests/run-tests does): it reads tests/configs/
 * and docs/configuration.md.
 */
#include "config_test.h"
#include "unit.h"

START_TEST(test_defaults)
{
	struct config		*cfg = load_ok(minimal);
	struct model_config	*m;

	ck_assert_str_eq(cfg->path, "t.yaml");
	ck_assert_uint_eq(cfg->port, 3000);
	ck_assert_uint_eq(cfg->metrics_port, 3002);
	ck_assert_uint_eq(cfg->admin_port, 3001);
	ck_assert(!cfg->admin_port_set);
	ck_assert_str_eq(cfg->vllm_command, "vllm");
	ck_assert(!cfg->warmup);
	ck_assert_uint_eq(cfg->startup_timeout_secs, 900);
	ck_assert_uint_eq(cfg->max_sleeping, 0);
	ck_assert_str_eq(cfg->supervisor_socket, "/run/llmux/supervisor.sock");
	ck_assert_str_eq(cfg->user, "llmux-engine");
	ck_assert_str_eq(cfg->proxy_user, "llmux");
	ck_assert_str_eq(cfg->admin_group, "llmux-admin");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/llmux");
	ck_assert_str_eq(cfg->log_dir, "/var/log/llmux");
	ck_assert_uint_eq(cfg->model_log_max_bytes, 64u << 20);
	ck_assert_uint_eq(cfg->model_log_keep, 3);
	ck_assert_uint_eq(cfg->gpu_count, 0);

	ck_assert_int_eq(cfg->policy.type, POLICY_FIFO);
	ck_assert_uint_eq(cfg->policy.request_timeout_secs, 300);
	ck_assert(cfg->policy.drain_before_switch);
	ck_assert_int_eq(cfg->policy.eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(cfg->policy.eviction.process, PROCESS_STOP);
	ck_assert_uint_eq(cfg->policy.min_active_secs, 5);
	ck_assert_uint_eq(cfg->policy.coalesce_window_ms, 2000);
	ck_assert_double_eq(cfg->policy.amortization_factor, 0.5);
	ck_assert_uint_eq(cfg->policy.max_wait_secs, 15);
	ck_assert_uint_eq(cfg->policy.tick_interval_ms, 500);
	ck_assert_uint_eq(cfg->policy.min_quantum_ms, 2000);
	ck_assert_uint_eq(cfg->policy.drain_timeout_secs, 300);

	ck_assert(!cfg->checkpoint.set);
	ck_assert_str_eq(cfg->checkpoint.criu_path, "criu");
	ck_assert_str_eq(cfg->checkpoint.cuda_plugin_dir, "/usr/lib/criu/");
	/* Under the state directory: model_path_images_dir. */
	ck_assert_ptr_null(cfg->checkpoint.images_dir);
	ck_assert_str_eq(cfg->checkpoint.cuda_checkpoint_path,
	    "cuda-checkpoint");
	ck_assert(cfg->checkpoint.keep_images);
	ck_assert(!cfg->checkpoint.object_store.set);
	ck_assert_ptr_null(cfg->checkpoint.object_store.endpoint);
	ck_assert_str_eq(cfg->checkpoint.object_store.region, "us-east-1");

	ck_assert_str_eq(cfg->proxy.listen_address, "127.0.0.1");
	ck_assert(!cfg->proxy.allow_unauthenticated);
	ck_assert_str_eq(cfg->admin_token_file, "/etc/llmux/admin-token");
	ck_assert_str_eq(cfg->proxy.admin_address, "127.0.0.1");
	ck_assert_uint_eq(cfg->proxy.max_queue_per_model, 16384);
	ck_assert_uint_eq(cfg->proxy.max_body_bytes, 32u << 20);
	ck_assert_uint_eq(cfg->proxy.max_header_bytes, 64u << 10);
	ck_assert_uint_eq(cfg->proxy.max_connections, 4096);
	ck_assert_uint_eq(cfg->proxy.max_connections_per_ip, 1024);
	ck_assert_uint_eq(cfg->proxy.max_buffered_body_mb, 128);
	ck_assert_uint_eq(cfg->proxy.header_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->proxy.body_timeout_ms, 30000);
	ck_assert_uint_eq(cfg->proxy.keepalive_timeout_secs, 75);
	ck_assert_uint_eq(cfg->proxy.n_api_keys, 0);
	ck_assert_ptr_nonnull(cfg->proxy.api_keys);
	ck_assert_ptr_null(cfg->proxy.api_keys[0]);
	/* The default file's token, on a machine where llmux is installed. */
	if (access(cfg->admin_token_file, F_OK) != 0)
		ck_assert_ptr_null(cfg->proxy.admin_token);

	ck_assert_str_eq(cfg->gpu.cuda_library, "libcuda.so.1");
	ck_assert_str_eq(cfg->gpu.nvml_library, "libnvidia-ml.so.1");
	ck_assert_uint_eq(cfg->gpu.lock_timeout_ms, 10000);
	ck_assert(!cfg->gpu.allow_migration);

	ck_assert_uint_eq(cfg->n_models, 1);
	m = &cfg->models[0];
	ck_assert_str_eq(m->name, "a");
	ck_assert_str_eq(m->model_path, "org/a");
	ck_assert_uint_eq(m->port, 8001);
	ck_assert_uint_eq(m->n_extra_args, 0);
	ck_assert_ptr_nonnull(m->extra_args);
	ck_assert_ptr_null(m->extra_args[0]);
	ck_assert(!m->eviction_set);
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(m->eviction.process, PROCESS_STOP);
	ck_assert_ptr_null(m->checkpoint_path);
	ck_assert_uint_eq(m->n_aliases, 0);
	ck_assert_ptr_null(m->aliases[0]);
	ck_assert_uint_eq(m->n_env, 0);
	ck_assert_ptr_null(m->env[0]);
	ck_assert_ptr_null(m->gpus);
	ck_assert_uint_eq(m->n_gpus, 0);
	ck_assert_double_eq(m->gpu_memory_utilization, 0.9);
	ck_assert_uint_eq(m->tensor_parallel_size, 1);
	ck_assert_uint_eq(m->ttl_secs, 0);
	ck_assert(!m->preload);
	ck_assert_uint_eq(m->startup_timeout_secs, 0);
	ck_assert_uint_eq(config_model_startup_timeout(cfg, m), 900);
	ck_assert_uint_eq(m->pos.line, 2);
	ck_assert_uint_eq(m->pos.col, 3);
	config_free(cfg);
}
END_TEST

/* Every key of the table has a default or is documented as having none. */
START_TEST(test_table)
{
	const struct config_key	*k;

	for (size_t i = 0; i < config_nkeys; i++) {
		k = &config_keys[i];
		ck_assert_ptr_nonnull(k->doc);
		ck_assert_ptr_eq(config_keys_find(k->section, k->name), k);
		if (k->type == CT_PORT || k->type == CT_U32 ||
		    k->type == CT_BYTES || k->type == CT_BYTES32)
			ck_assert_msg(k->min <= k->max, "%s bounds", k->name);
	}
	ck_assert_ptr_null(config_keys_find(CS_TOP, "nope"));
	ck_assert_str_eq(config_keys_section_name(CS_OBJECT_STORE),
	    "checkpoint.object_store");
}
END_TEST

/* llmux 0.7's keys, every one set away from its default, in JSON. */
START_TEST(test_seed_keys)
{
	struct config_diags	 d;
	struct config		*cfg;
	struct model_config	*m;
	char			*text;
	size_t			 len;

	text = unit_read_file("tests/configs/good/seed-cost-aware.json",
	    &len);
	cfg = config_load_buffer("seed.json", text, len, CONFIG_CHECK, &d);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(cfg->port, 4000);
	ck_assert_uint_eq(cfg->metrics_port, 9100);
	ck_assert_uint_eq(cfg->admin_port, 4001);
	ck_assert(cfg->admin_port_set);
	ck_assert_str_eq(cfg->vllm_command, "/opt/vllm/bin/vllm");
	ck_assert(cfg->warmup);
	ck_assert_uint_eq(cfg->startup_timeout_secs, 900);
	ck_assert_uint_eq(cfg->max_sleeping, 2);

	ck_assert_int_eq(cfg->policy.type, POLICY_COST_AWARE);
	ck_assert_uint_eq(cfg->policy.request_timeout_secs, 600);
	ck_assert(!cfg->policy.drain_before_switch);
	ck_assert_int_eq(cfg->policy.eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(cfg->policy.eviction.process, PROCESS_STOP);
	ck_assert_uint_eq(cfg->policy.min_active_secs, 10);
	ck_assert_uint_eq(cfg->policy.coalesce_window_ms, 1500);
	ck_assert_double_eq(cfg->policy.amortization_factor, 0.75);
	ck_assert_uint_eq(cfg->policy.max_wait_secs, 30);

	ck_assert(cfg->checkpoint.set);
	ck_assert_str_eq(cfg->checkpoint.criu_path, "/usr/local/sbin/criu");
	ck_assert_str_eq(cfg->checkpoint.cuda_plugin_dir,
	    "/usr/local/lib/criu/");
	ck_assert_str_eq(cfg->checkpoint.images_dir,
	    "/var/lib/llmux/checkpoints");
	ck_assert_str_eq(cfg->checkpoint.cuda_checkpoint_path,
	    "/usr/local/bin/cuda-checkpoint");
	ck_assert(!cfg->checkpoint.keep_images);
	ck_assert(cfg->checkpoint.object_store.set);
	ck_assert_str_eq(cfg->checkpoint.object_store.endpoint,
	    "http://127.0.0.1:9000");
	ck_assert_str_eq(cfg->checkpoint.object_store.bucket, "llmux-images");
	ck_assert_str_eq(cfg->checkpoint.object_store.access_key, "llmux");
	ck_assert_str_eq(cfg->checkpoint.object_store.secret_key,
	    "not-a-real-secret");
	ck_assert_str_eq(cfg->checkpoint.object_store.region, "eu-west-1");

	ck_assert_uint_eq(cfg->n_models, 3);
	m = &cfg->models[0];
	ck_assert_str_eq(m->name, "chat");
	ck_assert_str_eq(m->model_path, "Qwen/Qwen2.5-14B-Instruct");
	ck_assert_uint_eq(m->port, 8001);
	ck_assert(m->eviction_set);
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(m->eviction.process, PROCESS_KEEP_RUNNING);
	ck_assert_uint_eq(m->n_extra_args, 3);
	ck_assert_str_eq(m->extra_args[0], "--max-model-len");
	ck_assert_str_eq(m->extra_args[1], "4096");
	ck_assert_str_eq(m->extra_args[2], "--enforce-eager");
	ck_assert_ptr_null(m->extra_args[3]);
	m = &cfg->models[1];
	ck_assert_str_eq(m->name, "code");
	ck_assert(m->eviction_set);
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(m->eviction.process, PROCESS_KEEP_RUNNING);
	m = &cfg->models[2];
	ck_assert_str_eq(m->name, "reason");
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(m->eviction.process, PROCESS_CHECKPOINT);
	ck_assert_str_eq(m->checkpoint_path,
	    "/var/lib/llmux/checkpoints/reason/images");
	config_free(cfg);
	config_diags_free(&d);
	free(text);
}
END_TEST

static const char *full_yaml =
    "models:\n"
    "  qwen:\n"
    "    model_path: Qwen/Qwen2.5-7B\n"
    "    port: 8001\n"
    "    extra_args: [--max-model-len, 4096, -tp, 2, --enforce-eager,\n"
    "      --disable-custom-all-reduce]\n"
    "    eviction: offload+cuda_suspend\n"
    "    aliases: [q, \"qwen:latest\"]\n"
    "    env: {HF_HOME: /srv/hf, N: 3}\n"
    "    gpus: [1, 0]\n"
    "    gpu_memory_utilization: 0.4\n"
    "    ttl_secs: 3600\n"
    "    preload: true\n"
    "    startup_timeout_secs: 1200\n"
    "  small:\n"
    "    model_path: /models/small\n"
    "    port: 8002\n"
    "    sleep_level: 3\n"
    "    checkpoint_path: /tmp\n"
    "    extra_args: [--gpu-memory-utilization=0.3]\n"
    "    gpus: 2\n"
    "policy:\n"
    "  policy_type: batch_aware\n"
    "  request_timeout_secs: 30\n"
    "  drain_before_switch: false\n"
    "  sleep_level: 1\n"
    "  min_active_secs: 0\n"
    "  coalesce_window_ms: 100\n"
    "  amortization_factor: 2\n"
    "  max_wait_secs: 7\n"
    "  tick_interval_ms: 50\n"
    "  min_quantum_ms: 10\n"
    "  drain_timeout_secs: 60\n"
    "checkpoint:\n"
    "  images_dir: /var/tmp/images\n"
    "  keep_images: false\n"
    "port: 5000\n"
    "metrics_port: 0\n"
    "admin_port: 0\n"
    "vllm_command: /bin/sh\n"
    "warmup: true\n"
    "startup_timeout_secs: 60\n"
    "max_sleeping: 1\n"
    "supervisor_socket: /tmp/llmux.sock\n"
    "user: nobody\n"
    "proxy_user: www-data\n"
    "admin_group: adm\n"
    "admin_token_file: /nonexistent/admin-token\n"
    "state_dir: /tmp/state\n"
    "log_dir: /tmp/log\n"
    "model_log_max_bytes: 1 GB\n"
    "model_log_keep: 10\n"
    "gpu_count: 4\n"
    "proxy:\n"
    "  listen_address: \"::\"\n"
    "  admin_address: ::1\n"
    "  max_queue_per_model: 10\n"
    "  max_body_bytes: 1048576\n"
    "  max_header_bytes: 16k\n"
    "  max_connections: 99\n"
    "  api_keys: [sk-one, sk-two]\n"
    "  admin_token: s3cret-token\n"
    "  allow_unauthenticated: true\n"
    "gpu:\n"
    "  cuda_library: /opt/fake/libcuda.so.1\n"
    "  nvml_library: /opt/fake/libnvidia-ml.so.1\n"
    "  lock_timeout_ms: 500\n"
    "  allow_migration: true\n";

/* The same configuration, as llmux 0.7 would write it: JSON. */
static const char *full_json =
    "{\"models\": {\"qwen\": {\"model_path\": \"Qwen/Qwen2.5-7B\", "
    "\"port\": 8001, \"extra_args\": [\"--max-model-len\", \"4096\", "
    "\"-tp\", \"2\", \"--enforce-eager\", \"--disable-custom-all-reduce\"], "
    "\"eviction\": {\"weights\": \"offload\", "
    "\"process\": \"cuda_suspend\"}, \"aliases\": [\"q\", "
    "\"qwen:latest\"], \"env\": {\"HF_HOME\": \"/srv/hf\", \"N\": \"3\"}, "
    "\"gpus\": [1, 0], \"gpu_memory_utilization\": 0.4, "
    "\"ttl_secs\": 3600, \"preload\": true, "
    "\"startup_timeout_secs\": 1200},\n"
    " \"small\": {\"model_path\": \"/models/small\", \"port\": 8002, "
    "\"eviction\": 3, \"checkpoint_path\": \"/tmp\", \"extra_args\": "
    "[\"--gpu-memory-utilization=0.3\"], \"gpus\": [2]}},\n"
    " \"policy\": {\"policy_type\": \"batch_aware\", "
    "\"request_timeout_secs\": 30, \"drain_before_switch\": false, "
    "\"eviction\": {\"weights\": \"offload\", \"process\": "
    "\"keep_running\"}, \"min_active_secs\": 0, \"coalesce_window_ms\": "
    "100, \"amortization_factor\": 2.0, \"max_wait_secs\": 7, "
    "\"tick_interval_ms\": 50, \"min_quantum_ms\": 10, "
    "\"drain_timeout_secs\": 60},\n"
    " \"checkpoint\": {\"images_dir\": \"/var/tmp/images\", "
    "\"keep_images\": false},\n"
    " \"port\": 5000, \"metrics_port\": 0, \"admin_port\": 0, "
    "\"vllm_command\": \"/bin/sh\", \"warmup\": true, "
    "\"startup_timeout_secs\": 60, \"max_sleeping\": 1,\n"
    " \"supervisor_socket\": \"/tmp/llmux.sock\", \"user\": \"nobody\", "
    "\"proxy_user\": \"www-data\", \"admin_group\": \"adm\", "
    "\"admin_token_file\": \"/nonexistent/admin-token\", "
    "\"state_dir\": \"/tmp/state\", \"log_dir\": \"/tmp/log\", "
    "\"model_log_max_bytes\": 1000000000, \"model_log_keep\": 10, "
    "\"gpu_count\": 4,\n"
    " \"proxy\": {\"listen_address\": \"::\", \"admin_address\": \"::1\", "
    "\"max_queue_per_model\": 10, \"max_body_bytes\": \"1MiB\", "
    "\"max_header_bytes\": 16384, \"max_connections\": 99, "
    "\"api_keys\": [\"sk-one\", \"sk-two\"], "
    "\"admin_token\": \"s3cret-token\", \"allow_unauthenticated\": true},\n"
    " \"gpu\": {\"cuda_library\": \"/opt/fake/libcuda.so.1\", "
    "\"nvml_library\": \"/opt/fake/libnvidia-ml.so.1\", "
    "\"lock_timeout_ms\": 500, \"allow_migration\": true}}\n";

/* Every llmux key, set away from its default, in YAML. */
START_TEST(test_llmux_keys)
{
	struct config		*cfg = load_ok(full_yaml);
	struct model_config	*m;

	ck_assert_uint_eq(cfg->port, 5000);
	ck_assert_uint_eq(cfg->metrics_port, 0);
	ck_assert_uint_eq(cfg->admin_port, 0);
	ck_assert(cfg->admin_port_set);
	ck_assert_str_eq(cfg->supervisor_socket, "/tmp/llmux.sock");
	ck_assert_str_eq(cfg->user, "nobody");
	ck_assert_str_eq(cfg->proxy_user, "www-data");
	ck_assert_str_eq(cfg->admin_group, "adm");
	ck_assert_str_eq(cfg->state_dir, "/tmp/state");
	ck_assert_str_eq(cfg->log_dir, "/tmp/log");
	ck_assert_uint_eq(cfg->model_log_max_bytes, 1000000000u);
	ck_assert_uint_eq(cfg->model_log_keep, 10);
	ck_assert_uint_eq(cfg->gpu_count, 4);
	ck_assert_uint_eq(cfg->startup_timeout_secs, 60);
	ck_assert_uint_eq(cfg->max_sleeping, 1);
	ck_assert_int_eq(cfg->policy.type, POLICY_BATCH_AWARE);
	ck_assert_int_eq(cfg->policy.eviction.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(cfg->policy.eviction.process, PROCESS_KEEP_RUNNING);
	ck_assert_uint_eq(cfg->policy.drain_timeout_secs, 60);
	ck_assert(cfg->checkpoint.set);
	ck_assert_str_eq(cfg->checkpoint.criu_path, "criu");
	ck_assert_str_eq(cfg->proxy.listen_address, "::");
	ck_assert_str_eq(cfg->proxy.admin_address, "::1");
	ck_assert_uint_eq(cfg->proxy.max_queue_per_model, 10);
	ck_assert_uint_eq(cfg->proxy.max_body_bytes, 1048576);
	ck_assert_uint_eq(cfg->proxy.max_header_bytes, 16384);
	ck_assert_uint_eq(cfg->proxy.max_connections, 99);
	ck_assert_uint_eq(cfg->proxy.n_api_keys, 2);
	ck_assert_str_eq(cfg->proxy.api_keys[1], "sk-two");
	ck_assert_ptr_null(cfg->proxy.api_keys[2]);
	ck_assert_str_eq(cfg->proxy.admin_token, "s3cret-token");
	ck_assert(cfg->proxy.allow_unauthenticated);
	ck_assert_str_eq(cfg->admin_token_file, "/nonexistent/admin-token");
	ck_assert_str_eq(cfg->gpu.cuda_library, "/opt/fake/libcuda.so.1");
	ck_assert_str_eq(cfg->gpu.nvml_library, "/opt/fake/libnvidia-ml.so.1");
	ck_assert_uint_eq(cfg->gpu.lock_timeout_ms, 500);
	ck_assert(cfg->gpu.allow_migration);

	m = &cfg->models[0];
	ck_assert_uint_eq(m->n_extra_args, 6);
	ck_assert_str_eq(m->extra_args[1], "4096");
	ck_assert_uint_eq(m->tensor_parallel_size, 2);
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(m->eviction.process, PROCESS_CUDA_SUSPEND);
	ck_assert_uint_eq(m->n_aliases, 2);
	ck_assert_str_eq(m->aliases[1], "qwen:latest");
	ck_assert_uint_eq(m->n_env, 2);
	ck_assert_str_eq(m->env[0], "HF_HOME=/srv/hf");
	ck_assert_str_eq(m->env[1], "N=3");
	ck_assert_ptr_null(m->env[2]);
	ck_assert_uint_eq(m->n_gpus, 2);
	ck_assert_int_eq(m->gpus[0], 1);
	ck_assert_int_eq(m->gpus[1], 0);
	ck_assert_double_eq(m->gpu_memory_utilization, 0.4);
	ck_assert_uint_eq(m->ttl_secs, 3600);
	ck_assert(m->preload);
	ck_assert_uint_eq(m->startup_timeout_secs, 1200);
	ck_assert_uint_eq(config_model_startup_timeout(cfg, m), 1200);
	m = &cfg->models[1];
	ck_assert_int_eq(m->eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(m->eviction.process, PROCESS_CUDA_SUSPEND);
	ck_assert_double_eq(m->gpu_memory_utilization, 0.3);
	ck_assert_uint_eq(m->tensor_parallel_size, 1);
	ck_assert_uint_eq(m->n_gpus, 1);
	ck_assert_int_eq(m->gpus[0], 2);
	ck_assert_str_eq(m->checkpoint_path, "/tmp");
	config_free(cfg);
}
END_TEST

START_TEST(test_json_equals_yaml)
{
	struct config_diags	 d;
	struct config		*y, *j, *other;
	char			*got;

	y = load_ok(full_yaml);
	j = config_load_buffer("t.json", full_json, strlen(full_json),
	    CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(j != NULL && *got == '\0', "%s", got);
	free(got);
	config_diags_free(&d);
	ck_assert(same_section(CS_TOP, y, j));
	/* The comparison can fail: a one-key change is seen. */
	other = load_ok(minimal);
	ck_assert(!same_section(CS_TOP, y, other));
	y->models[1].gpus[0] = 3;
	ck_assert(!same_section(CS_TOP, y, j));
	config_free(y);
	config_free(j);
	config_free(other);
}
END_TEST

START_TEST(test_eviction_forms)
{
	struct config	*cfg;
	struct eviction	 e;

	cfg = load_ok(
	    "models:\n"
	    "  l1: {model_path: p, port: 1001, sleep_level: 1}\n"
	    "  l2: {model_path: p, port: 1002, eviction: 2}\n"
	    "  l3: {model_path: p, port: 1003, eviction: \"3\"}\n"
	    "  l4: {model_path: p, port: 1004, sleep_level: 4}\n"
	    "  l5: {model_path: p, port: 1005, eviction: 5}\n"
	    "  s: {model_path: p, port: 1006, eviction: discard+cuda_suspend}\n"
	    "  o: {model_path: p, port: 1007, eviction: {process: stop, "
	    "weights: offload}}\n"
	    "  d: {model_path: p, port: 1008}\n"
	    "policy: {sleep_level: 2}\n");
	ck_assert_int_eq(cfg->models[0].eviction.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(cfg->models[0].eviction.process, PROCESS_KEEP_RUNNING);
	ck_assert_int_eq(cfg->models[1].eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(cfg->models[1].eviction.process, PROCESS_KEEP_RUNNING);
	ck_assert_int_eq(cfg->models[2].eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(cfg->models[2].eviction.process, PROCESS_CUDA_SUSPEND);
	ck_assert_int_eq(cfg->models[3].eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(cfg->models[3].eviction.process, PROCESS_CHECKPOINT);
	ck_assert_int_eq(cfg->models[4].eviction.weights, WEIGHTS_RETAIN);
	ck_assert_int_eq(cfg->models[4].eviction.process, PROCESS_STOP);
	ck_assert_int_eq(cfg->models[5].eviction.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(cfg->models[5].eviction.process, PROCESS_CUDA_SUSPEND);
	ck_assert_int_eq(cfg->models[6].eviction.weights, WEIGHTS_OFFLOAD);
	ck_assert_int_eq(cfg->models[6].eviction.process, PROCESS_STOP);
	for (int i = 0; i < 7; i++)
		ck_assert(cfg->models[i].eviction_set);
	/* No eviction of its own: the policy's, sleep level 2. */
	ck_assert(!cfg->models[7].eviction_set);
	ck_assert_int_eq(cfg->models[7].eviction.weights, WEIGHTS_DISCARD);
	e = config_model_eviction(cfg, &cfg->models[7]);
	ck_assert_int_eq(e.weights, WEIGHTS_DISCARD);
	ck_assert_int_eq(e.process, PROCESS_KEEP_RUNNING);
	e = config_model_eviction(cfg, &cfg->models[0]);
	ck_assert_int_eq(e.weights, WEIGHTS_OFFLOAD);
	config_free(cfg);
}
END_TEST

START_TEST(test_sizes)
{
	static const struct {
		const char	*text;
		uint64_t	 bytes;
	} ok[] = {
		{ "65536", 65536 }, { "64MiB", 64ull << 20 },
		{ "32M", 32ull << 20 }, { "\"1 GB\"", 1000000000ull },
		{ "2k", 2048 }, { "3KB", 3000 }, { "1TiB", 1ull << 40 },
		{ "4096B", 4096 }, { "1G", 1ull << 30 },
	};
	char	buf[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *cfg;

		snprintf(buf, sizeof(buf), "%smodel_log_max_bytes: %s\n",
		    minimal, ok[i].text);
		cfg = load_ok(buf);
		ck_assert_uint_eq(cfg->model_log_max_bytes, ok[i].bytes);
		config_free(cfg);
	}
	snprintf(buf, sizeof(buf), "%smodel_log_max_bytes: 12QB\n", minimal);
	expect_diags(buf, "5:22: error: model_log_max_bytes: expected a size "
	    "such as 65536, \"64MiB\" or \"32M\", got a string\n");
	snprintf(buf, sizeof(buf), "%smodel_log_max_bytes: 100\n", minimal);
	expect_diags(buf, "5:22: error: model_log_max_bytes: 100 is out of "
	    "range (1024..1099511627776 bytes)\n");
	snprintf(buf, sizeof(buf), "%smodel_log_max_bytes: 99999999999T\n",
	    minimal);
	expect_diags(buf, "5:22: error: model_log_max_bytes: 99999999999T is "
	    "out of range (1024..1099511627776 bytes)\n");
	snprintf(buf, sizeof(buf), "%smodel_log_max_bytes: "
	    "99999999999999999999999\n", minimal);
	expect_diags(buf, "5:22: error: model_log_max_bytes: "
	    "99999999999999999999999 is out of range (1024..1099511627776 "
	    "bytes)\n");
}
END_TEST

START_TEST(test_admin_port_null)
{
	struct config	*cfg;

	cfg = load_ok(M "admin_port: null\n");
	ck_assert_uint_eq(cfg->admin_port, 0);
	ck_assert(cfg->admin_port_set);
	config_free(cfg);
	cfg = load_ok("{\"models\": {\"a\": {\"model_path\": \"p\", "
	    "\"port\": 1}}, \"admin_port\": null, \"checkpoint\": null}");
	ck_assert(!cfg->checkpoint.set);
	config_free(cfg);
}
END_TEST

/* ---- the sample files ------------------------------------------------- */

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t	ls = strlen(s), lx = strlen(suffix);

	return (ls >= lx && strcmp(s + ls - lx, suffix) == 0);
}

/* Every tests/configs/good/ file loads; every bad/ one gives its .expect. */
START_TEST(test_sample_files)
{
	struct config_diags	 d;
	struct config		*cfg;
	struct dirent		*de;
	DIR			*dir;
	char			 path[512], *want, *got;
	int			 good = 0, bad = 0;

	ck_assert_ptr_nonnull(dir = opendir("tests/configs/good"));
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "tests/configs/good/%s",
		    de->d_name);
		cfg = config_load(path, CONFIG_CHECK, &d);
		ck_assert_msg(cfg != NULL, "%s: %s", path,
		    d.n ? d.v[0].msg : "?");
		config_free(cfg);
		config_diags_free(&d);
		good++;
	}
	closedir(dir);
	ck_assert_int_ge(good, 3);

	ck_assert_ptr_nonnull(dir = opendir("tests/configs/bad"));
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || has_suffix(de->d_name, ".expect"))
			continue;
		snprintf(path, sizeof(path), "tests/configs/bad/%s.expect",
		    de->d_name);
		want = unit_read_file(path, NULL);
		snprintf(path, sizeof(path), "tests/configs/bad/%s",
		    de->d_name);
		cfg = config_load(path, CONFIG_CHECK, &d);
		got = diags_text(&d);
		ck_assert_msg(strcmp(got, want) == 0, "%s:\nwant:\n%s\ngot:\n%s",
		    path, want, got);
		ck_assert_msg(cfg == NULL, "%s loaded", path);
		free(got);
		free(want);
		config_diags_free(&d);
		bad++;
	}
	closedir(dir);
	ck_assert_int_ge(bad, 10);
}
END_TEST

/* The shipped example is valid and says nothing but machine facts. */
START_TEST(test_example_file)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = config_load("etc/llmux.yaml", CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(cfg != NULL && *got == '\0', "%s", got);
	ck_assert_uint_eq(cfg->n_models, 2);
	free(got);
	config_free(cfg);
	config_diags_free(&d);
}
END_TEST

/* docs/configuration.md names every key of the table. */
START_TEST(test_docs)
{
	char	*doc, needle[128];

	doc = unit_read_file("docs/configuration.md", NULL);
	for (size_t i = 0; i < config_nkeys; i++) {
		snprintf(needle, sizeof(needle), "`%s`", config_keys[i].name);
		ck_assert_msg(strstr(doc, needle) != NULL,
		    "docs/configuration.md does not name %s",
		    config_keys[i].name);
	}
	free(doc);
}
END_TEST

/* ---- lookups and output ---------------------------------------------- */

START_TEST(test_lookups)
{
	struct config		*cfg;
	enum policy_type	 t;

	cfg = load_ok(M "    aliases: [alpha, \"a:1\"]\n  b:\n"
	    "    model_path: q\n    port: 8002\n");
	ck_assert_ptr_eq(config_find_model(cfg, "a"), &cfg->models[0]);
	ck_assert_ptr_eq(config_find_model(cfg, "b"), &cfg->models[1]);
	ck_assert_ptr_null(config_find_model(cfg, "alpha"));
	ck_assert_ptr_eq(config_resolve_model(cfg, "alpha"), &cfg->models[0]);
	ck_assert_ptr_eq(config_resolve_model(cfg, "a:1"), &cfg->models[0]);
	ck_assert_ptr_eq(config_resolve_model(cfg, "b"), &cfg->models[1]);
	ck_assert_ptr_null(config_resolve_model(cfg, "c"));
	config_free(cfg);

	for (int i = 0; i < POLICY__COUNT; i++) {
		ck_assert_int_eq(config_policy_parse(
		    config_policy_name((enum policy_type)i), &t), 0);
		ck_assert_int_eq(t, i);
	}
	ck_assert_str_eq(config_policy_name(POLICY_TIME_SLICE), "time_slice");
	ck_assert_str_eq(config_policy_name(POLICY__COUNT), "?");
	ck_assert_int_eq(config_policy_parse("FIFO", &t), -1);
	ck_assert_uint_eq(config_keys_distance("polcy_type", "policy_type"),
	    1);
	ck_assert_str_eq(config_keys_suggest(CS_POLICY, "tick_interval"),
	    "tick_interval_ms");
	ck_assert_ptr_null(config_keys_suggest(CS_TOP, "zzzzzz"));
	config_free(NULL);
}
END_TEST

START_TEST(test_print)
{
	struct config_diags	 d;
	char			*buf = NULL;
	size_t			 len = 0;
	FILE			*f;

	ck_assert_ptr_null(load(M "prot: 1\nport: x\n", CONFIG_CHECK, &d));
	f = open_memstream(&buf, &len);
	config_diags_print(&d, "f.yaml", f);
	fclose(f);
	/* The vllm_command warning has no place, so it comes first. */
	ck_assert_msg(strstr(buf, "f.yaml:5:1: warning: prot: unknown key, "
	    "ignored (did you mean 'port'?)\nf.yaml:6:7: error: port: expected "
	    "an integer from 1 to 65535, got a string\n") != NULL, "%s", buf);
	ck_assert_uint_eq(d.n_errors, 1);
	free(buf);
	config_diags_free(&d);

	ck_assert_ptr_null(load("", CONFIG_CHECK, &d));
	f = open_memstream(&buf, &len);
	config_diags_print(&d, "f.yaml", f);
	fclose(f);
	ck_assert_str_eq(buf, "f.yaml: error: the file is empty: it holds no "
	    "configuration\n");
	free(buf);
	config_diags_free(&d);
}
END_TEST

/* Past CONFIG_MAX_DIAGS, the rest are counted, not kept. */
static Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_seed_keys);
	tcase_add_test(tc, test_llmux_keys);
	tcase_add_test(tc, test_json_equals_yaml);
	tcase_add_test(tc, test_eviction_forms);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_admin_port_null);
	tcase_add_test(tc, test_sample_files);
	tcase_add_test(tc, test_example_file);
	tcase_add_test(tc, test_docs);
	tcase_add_test(tc, test_lookups);
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(config_suite()));
}
