/*
 * test_config.c -- the config loader: every default, every seed key and
 * llmux key, each kind of error and warning with its exact line:column,
 * all errors in one run, JSON and YAML giving equal structs, machine
 * facts in check and run mode, hostile files, the sample files under
 * tests/configs/, and docs/configuration.md naming every key.
 *
 * Run from the source root (tests/run-tests does): it reads tests/configs/
 * and docs/configuration.md.
 */
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------- */

static struct config *
load(const char *text, enum config_mode mode, struct config_diags *d)
{
	return (config_load_buffer("t.yaml", text, strlen(text), mode, d));
}

/* The diagnostics that depend on the file alone, one "L:C: kind: msg" a line. */
static char *
diags_text(const struct config_diags *d)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	f = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].machine)
			continue;
		if (d->v[i].line != 0)
			fprintf(f, "%u:%u: ", d->v[i].line, d->v[i].col);
		fprintf(f, "%s: %s\n", d->v[i].error ? "error" : "warning",
		    d->v[i].msg);
	}
	fclose(f);
	return (buf);
}

/* Load text; its file diagnostics must be exactly want. */
static void
expect_diags(const char *text, const char *want)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = load(text, CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(strcmp(got, want) == 0,
	    "config:\n%s\nwant:\n%s\ngot:\n%s", text, want, got);
	ck_assert_msg((cfg == NULL) == (d.n_errors != 0),
	    "a config must come back exactly when there are no errors");
	free(got);
	config_free(cfg);
	config_diags_free(&d);
}

/* Load text, which must succeed with no file diagnostics at all. */
static struct config *
load_ok(const char *text)
{
	struct config_diags	 d;
	struct config		*cfg;
	char			*got;

	cfg = load(text, CONFIG_CHECK, &d);
	got = diags_text(&d);
	ck_assert_msg(cfg != NULL && *got == '\0', "config:\n%s\ngot:\n%s",
	    text, got);
	free(got);
	config_diags_free(&d);
	return (cfg);
}

static char *
read_file(const char *path, size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	FILE		*f;
	size_t		 n;

	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the source root)",
	    path);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	n = fread(buf, 1, (size_t)st.st_size, f);
	ck_assert_uint_eq(n, (size_t)st.st_size);
	buf[n] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = n;
	return (buf);
}

static char *
tmpdir(void)
{
	char	tmpl[] = "/tmp/llmux-test-config-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return (strdup(tmpl));
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Are the two structs of section sec equal, key by key (by the table)? */
static bool
same_section(enum config_section sec, const void *a, const void *b)
{
	const struct config_key	*k;
	const char		*fa, *fb;
	size_t			 na, nb;

	for (size_t i = 0; i < config_nkeys; i++) {
		k = &config_keys[i];
		if (k->section != sec)
			continue;
		fa = (const char *)a + k->off;
		fb = (const char *)b + k->off;
		if (k->set_off != 0 && *(const bool *)((const char *)a +
		    k->set_off - 1) != *(const bool *)((const char *)b +
		    k->set_off - 1))
			return (false);
		switch (k->type) {
		case CT_STRING: {
			const char *sa = *(char *const *)fa;
			const char *sb = *(char *const *)fb;

			if ((sa == NULL) != (sb == NULL) ||
			    (sa != NULL && strcmp(sa, sb) != 0))
				return (false);
			break;
		}
		case CT_PORT:
			if (*(const uint16_t *)fa != *(const uint16_t *)fb)
				return (false);
			break;
		case CT_U32:
		case CT_BYTES32:
			if (*(const uint32_t *)fa != *(const uint32_t *)fb)
				return (false);
			break;
		case CT_BYTES:
			if (*(const uint64_t *)fa != *(const uint64_t *)fb)
				return (false);
			break;
		case CT_DOUBLE:
			if (*(const double *)fa != *(const double *)fb)
				return (false);
			break;
		case CT_BOOL:
			if (*(const bool *)fa != *(const bool *)fb)
				return (false);
			break;
		case CT_EVICTION:
		case CT_LEVEL:
			if (memcmp(fa, fb, sizeof(struct eviction)) != 0)
				return (false);
			break;
		case CT_POLICY:
			if (*(const enum policy_type *)fa !=
			    *(const enum policy_type *)fb)
				return (false);
			break;
		case CT_STRLIST:
		case CT_ENV:
			na = *(const size_t *)((const char *)a + k->aux_off);
			nb = *(const size_t *)((const char *)b + k->aux_off);
			if (na != nb)
				return (false);
			for (size_t j = 0; j < na; j++)
				if (strcmp((*(char **const *)fa)[j],
				    (*(char **const *)fb)[j]) != 0)
					return (false);
			break;
		case CT_GPUS:
			na = *(const size_t *)((const char *)a + k->aux_off);
			nb = *(const size_t *)((const char *)b + k->aux_off);
			if (na != nb || (na != 0 && memcmp(*(int *const *)fa,
			    *(int *const *)fb, na * sizeof(int)) != 0))
				return (false);
			break;
		case CT_SECTION:
			if (!same_section(k->sub, fa, fb))
				return (false);
			break;
		case CT_MODELS: {
			const struct config *ca = a, *cb = b;

			if (ca->n_models != cb->n_models)
				return (false);
			for (size_t j = 0; j < ca->n_models; j++) {
				if (strcmp(ca->models[j].name,
				    cb->models[j].name) != 0 ||
				    ca->models[j].tensor_parallel_size !=
				    cb->models[j].tensor_parallel_size ||
				    !same_section(CS_MODEL, &ca->models[j],
				    &cb->models[j]))
					return (false);
			}
			break;
		}
		}
	}
	return (true);
}

/* ---- defaults and keys ---------------------------------------------- */

static const char *minimal =
    "models:\n"
    "  a:\n"
    "    model_path: org/a\n"
    "    port: 8001\n";

START_TEST(test_defaults)
{
	struct config		*cfg = load_ok(minimal);
	struct model_config	*m;

	ck_assert_str_eq(cfg->path, "t.yaml");
	ck_assert_uint_eq(cfg->port, 3000);
	ck_assert_uint_eq(cfg->metrics_port, 9090);
	ck_assert_uint_eq(cfg->admin_port, 3001);
	ck_assert(!cfg->admin_port_set);
	ck_assert_str_eq(cfg->vllm_command, "vllm");
	ck_assert(!cfg->warmup);
	ck_assert_uint_eq(cfg->startup_timeout_secs, 600);
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
	ck_assert_str_eq(cfg->checkpoint.images_dir, "/tmp/llmux-checkpoints");
	ck_assert_str_eq(cfg->checkpoint.cuda_checkpoint_path,
	    "cuda-checkpoint");
	ck_assert(cfg->checkpoint.keep_images);
	ck_assert(!cfg->checkpoint.object_store.set);
	ck_assert_ptr_null(cfg->checkpoint.object_store.endpoint);
	ck_assert_str_eq(cfg->checkpoint.object_store.region, "us-east-1");

	ck_assert_str_eq(cfg->proxy.listen_address, "0.0.0.0");
	ck_assert_str_eq(cfg->proxy.admin_address, "127.0.0.1");
	ck_assert_uint_eq(cfg->proxy.max_queue_per_model, 16384);
	ck_assert_uint_eq(cfg->proxy.max_body_bytes, 32u << 20);
	ck_assert_uint_eq(cfg->proxy.max_header_bytes, 64u << 10);
	ck_assert_uint_eq(cfg->proxy.max_connections, 4096);
	ck_assert_uint_eq(cfg->proxy.n_api_keys, 0);
	ck_assert_ptr_nonnull(cfg->proxy.api_keys);
	ck_assert_ptr_null(cfg->proxy.api_keys[0]);
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
	ck_assert_uint_eq(config_model_startup_timeout(cfg, m), 600);
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

/* The seed's keys, every one set away from its default, in JSON. */
START_TEST(test_seed_keys)
{
	struct config_diags	 d;
	struct config		*cfg;
	struct model_config	*m;
	char			*text;
	size_t			 len;

	text = read_file("tests/configs/good/seed-cost-aware.json", &len);
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
    "gpu:\n"
    "  cuda_library: /opt/fake/libcuda.so.1\n"
    "  nvml_library: /opt/fake/libnvidia-ml.so.1\n"
    "  lock_timeout_ms: 500\n"
    "  allow_migration: true\n";

/* The same configuration, as the seed would write it: JSON. */
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
    "\"state_dir\": \"/tmp/state\", \"log_dir\": \"/tmp/log\", "
    "\"model_log_max_bytes\": 1000000000, \"model_log_keep\": 10, "
    "\"gpu_count\": 4,\n"
    " \"proxy\": {\"listen_address\": \"::\", \"admin_address\": \"::1\", "
    "\"max_queue_per_model\": 10, \"max_body_bytes\": \"1MiB\", "
    "\"max_header_bytes\": 16384, \"max_connections\": 99, "
    "\"api_keys\": [\"sk-one\", \"sk-two\"], "
    "\"admin_token\": \"s3cret-token\"},\n"
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

/* ---- errors, each kind with its place --------------------------------- */

#define M	"models:\n  a:\n    model_path: p\n    port: 8001\n"

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
		want = read_file(path, NULL);
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

	doc = read_file("docs/configuration.md", NULL);
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
	tcase_add_test(tc, test_admin_port_null);
	tcase_add_test(tc, test_machine);
	tcase_add_test(tc, test_hostile_files);
	tcase_add_test(tc, test_hostile_bytes);
	tcase_add_test(tc, test_hostile_structure);
	tcase_add_test(tc, test_hostile_yaml);
	tcase_add_test(tc, test_hostile_json);
	tcase_add_test(tc, test_sample_files);
	tcase_add_test(tc, test_example_file);
	tcase_add_test(tc, test_docs);
	tcase_add_test(tc, test_lookups);
	tcase_add_test(tc, test_print);
	tcase_add_test(tc, test_diag_limit);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(config_suite()));
}
