/*
 * test_supervisor.c -- the supervisor's pure parts: a model's argv and
 * environment, process_state strings, file names of models, /proc
 * parsing, peer roles, the eviction and wake plans of all twelve
 * combinations, health poll intervals, text cleaning for messages, and
 * what counts as a changed model on reload.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "supervisord/base/base.h"
#include "supervisord/control/control.h"
#include "supervisord/engine/engine.h"
#include "supervisord/persist/persist.h"
#include "supervisord/server/server.h"
#include "xmalloc.h"
#include "unit.h"

static struct config *
load(const char *yaml)
{
	struct config_diags	 d;
	struct config		*c;

	memset(&d, 0, sizeof(d));
	c = config_load_buffer("test.yaml", yaml, strlen(yaml), CONFIG_CHECK,
	    &d);
	if (c == NULL) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "%u:%u: %s\n", d.v[i].line, d.v[i].col,
			    d.v[i].msg);
	}
	config_diags_free(&d);
	ck_assert_ptr_nonnull(c);
	return (c);
}

static const char *base_yaml =
    "vllm_command: /opt/vllm/bin/vllm\n"
    "models:\n"
    "  llama:\n"
    "    model_path: meta-llama/Llama-3.1-8B\n"
    "    port: 8001\n"
    "    extra_args: [--max-model-len, \"8192\"]\n"
    "    env: {HF_HUB_OFFLINE: \"1\", NO_COLOR: \"0\"}\n"
    "  named:\n"
    "    model_path: /models/q\n"
    "    port: 8002\n"
    "    extra_args: [\"--served-model-name=other\"]\n";

static char *
joined(char **v)
{
	size_t	 len = 1;
	char	*s;

	for (size_t i = 0; v[i] != NULL; i++)
		len += strlen(v[i]) + 1;
	s = xcalloc(1, len);
	for (size_t i = 0; v[i] != NULL; i++) {
		if (i > 0)
			strcat(s, " ");
		strcat(s, v[i]);
	}
	return (s);
}

static const char *
env_get(char **v, const char *key)
{
	size_t	len = strlen(key);

	for (size_t i = 0; v[i] != NULL; i++)
		if (strncmp(v[i], key, len) == 0 && v[i][len] == '=')
			return (v[i] + len + 1);
	return (NULL);
}

START_TEST(test_argv)
{
	struct config	*c = load(base_yaml);
	char		**v, *s;

	v = spawn_argv(c, &c->models[0]);
	s = joined(v);
	ck_assert_str_eq(s, "/opt/vllm/bin/vllm serve meta-llama/Llama-3.1-8B "
	    "--port 8001 --host 127.0.0.1 --enable-sleep-mode "
	    "--served-model-name llama --max-model-len 8192");
	free(s);
	spawn_strv_free(v);

	/* extra_args naming a served model: no --served-model-name added. */
	v = spawn_argv(c, &c->models[1]);
	s = joined(v);
	ck_assert_str_eq(s, "/opt/vllm/bin/vllm serve /models/q --port 8002 "
	    "--host 127.0.0.1 --enable-sleep-mode --served-model-name=other");
	free(s);
	spawn_strv_free(v);
	config_free(c);

	/* Aliases are served names too: the proxy forwards them as sent. */
	c = load("vllm_command: vllm\nmodels:\n  llama:\n"
	    "    model_path: /m/l\n    port: 8001\n"
	    "    aliases: [gpt-4, \"llama-3\"]\n"
	    "    extra_args: [--max-num-seqs, \"8\"]\n");
	v = spawn_argv(c, &c->models[0]);
	s = joined(v);
	ck_assert_str_eq(s, "vllm serve /m/l --port 8001 --host 127.0.0.1 "
	    "--enable-sleep-mode --served-model-name llama gpt-4 llama-3 "
	    "--max-num-seqs 8");
	free(s);
	spawn_strv_free(v);
	config_free(c);

	/* extra_args naming a host: theirs, not loopback. */
	c = load("vllm_command: vllm\nmodels:\n  l:\n"
	    "    model_path: /m/l\n    port: 8001\n"
	    "    extra_args: [\"--host=0.0.0.0\"]\n");
	v = spawn_argv(c, &c->models[0]);
	s = joined(v);
	ck_assert_str_eq(s, "vllm serve /m/l --port 8001 --enable-sleep-mode "
	    "--served-model-name l --host=0.0.0.0");
	free(s);
	spawn_strv_free(v);
	config_free(c);
}
END_TEST

START_TEST(test_names_served_model)
{
	char	*a[] = { "--x", "--served-model-name", "m", NULL };
	char	*b[] = { "--served-model-name=m", NULL };
	char	*c[] = { "--served-model-names", "--served", NULL };

	ck_assert(spawn_names_served_model(a));
	ck_assert(spawn_names_served_model(b));
	ck_assert(!spawn_names_served_model(c));
	ck_assert(!spawn_names_served_model(NULL));
}
END_TEST

START_TEST(test_envp)
{
	struct config	*c = load(base_yaml);
	char		*base[] = { "PATH=/usr/bin", "NOTIFY_SOCKET=/run/x",
			    "LISTEN_FDS=3", "WATCHDOG_USEC=100",
			    "LLMUX_SOCKET=/tmp/s", "HOME=/root", "NOEQUALS",
			    NULL };
	char		**v;

	v = spawn_envp(base, &c->models[0], false);
	ck_assert_str_eq(env_get(v, "PATH"), "/usr/bin");
	ck_assert_str_eq(env_get(v, "HOME"), "/root");
	ck_assert_ptr_null(env_get(v, "NOTIFY_SOCKET"));
	ck_assert_ptr_null(env_get(v, "LISTEN_FDS"));
	ck_assert_ptr_null(env_get(v, "WATCHDOG_USEC"));
	ck_assert_ptr_null(env_get(v, "LLMUX_SOCKET"));
	ck_assert_str_eq(env_get(v, "VLLM_SERVER_DEV_MODE"), "1");
	ck_assert_str_eq(env_get(v, "HF_HUB_OFFLINE"), "1");
	/* The model's env: wins over our defaults. */
	ck_assert_str_eq(env_get(v, "NO_COLOR"), "0");
	ck_assert_ptr_null(env_get(v, "UV_USE_IO_URING"));
	for (size_t i = 0; v[i] != NULL; i++)
		ck_assert_ptr_nonnull(strchr(v[i], '='));
	spawn_strv_free(v);

	v = spawn_envp(base, &c->models[1], true);
	ck_assert_str_eq(env_get(v, "NO_COLOR"), "1");
	ck_assert_str_eq(env_get(v, "UV_USE_IO_URING"), "0");
	ck_assert_str_eq(env_get(v, "USE_LIBUV"), "0");
	/* Without gpus: every GPU, as the environment has it. */
	ck_assert_ptr_null(env_get(v, "CUDA_VISIBLE_DEVICES"));
	ck_assert_ptr_null(env_get(v, "CUDA_DEVICE_ORDER"));
	spawn_strv_free(v);
	config_free(c);

	/* gpus: those GPUs only, in NVML's (the PCI bus) order. */
	c = load("gpu_count: 4\nmodels:\n  a:\n    model_path: /m/a\n"
	    "    port: 8001\n    gpus: [1]\n  b:\n    model_path: /m/b\n"
	    "    port: 8002\n    gpus: [3, 0]\n    extra_args: "
	    "[--tensor-parallel-size, \"2\"]\n  c:\n    model_path: /m/c\n"
	    "    port: 8003\n    gpus: [2]\n"
	    "    env:\n      CUDA_VISIBLE_DEVICES: GPU-8f6b1a22\n");
	base[0] = "CUDA_VISIBLE_DEVICES=0,1,2,3";
	v = spawn_envp(base, &c->models[0], false);
	ck_assert_str_eq(env_get(v, "CUDA_VISIBLE_DEVICES"), "1");
	ck_assert_str_eq(env_get(v, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
	spawn_strv_free(v);
	v = spawn_envp(base, &c->models[1], false);
	ck_assert_str_eq(env_get(v, "CUDA_VISIBLE_DEVICES"), "3,0");
	spawn_strv_free(v);
	/* The model's own env: still wins. */
	v = spawn_envp(base, &c->models[2], false);
	ck_assert_str_eq(env_get(v, "CUDA_VISIBLE_DEVICES"), "GPU-8f6b1a22");
	spawn_strv_free(v);
	config_free(c);
}
END_TEST

START_TEST(test_process_state_strings)
{
	struct supervisor	 sup;
	struct model		*m;
	char			*s;

	memset(&sup, 0, sizeof(sup));
	sup.base = event_base_new();
	sup.conf = load(base_yaml);
	TAILQ_INIT(&sup.models);
	TAILQ_INIT(&sup.clients);
	m = model_new(&sup, &sup.conf->models[0]);

	s = model_process_state(m);
	ck_assert_str_eq(s, "not_started");
	free(s);
	m->pstate = MODEL_STARTING;
	s = model_process_state(m);
	ck_assert_str_eq(s, "starting");
	free(s);
	m->pstate = MODEL_RUNNING;
	s = model_process_state(m);
	ck_assert_str_eq(s, "running");
	free(s);
	m->pstate = MODEL_SLEEPING;
	m->sleeping = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	s = model_process_state(m);
	ck_assert_str_eq(s, "sleeping:Offload+KeepRunning");
	free(s);
	m->sleeping = (struct eviction){ WEIGHTS_RETAIN, PROCESS_CUDA_SUSPEND };
	s = model_process_state(m);
	ck_assert_str_eq(s, "sleeping:Retain+CudaSuspend");
	free(s);
	m->pstate = MODEL_CHECKPOINTED;
	s = model_process_state(m);
	ck_assert_str_eq(s, "checkpointed");
	free(s);
	m->pstate = MODEL_FAILED;
	m->reason = xstrdup("exited with status 1");
	s = model_process_state(m);
	ck_assert_str_eq(s, "failed:exited with status 1");
	free(s);

	/* What is published follows the state. */
	m->pstate = MODEL_RUNNING;
	ck_assert_int_eq(model_published_state(m), PROTO_MS_READY);
	m->pstate = MODEL_NOT_STARTED;
	ck_assert_int_eq(model_published_state(m), PROTO_MS_STOPPED);
	m->pstate = MODEL_SLEEPING;
	ck_assert_int_eq(model_published_state(m), PROTO_MS_SLEEPING);

	model_free(m);
	config_free(sup.conf);
	event_base_free(sup.base);
}
END_TEST

START_TEST(test_pstate_names)
{
	enum model_pstate	s;

	for (int i = 0; i < MODEL_PSTATE__COUNT; i++) {
		ck_assert_int_eq(model_pstate_parse(model_pstate_name(
		    (enum model_pstate)i), &s), 0);
		ck_assert_int_eq((int)s, i);
	}
	ck_assert_int_eq(model_pstate_parse("sleeping:x", &s), -1);
	ck_assert_int_eq(model_pstate_parse("", &s), -1);
}
END_TEST

START_TEST(test_path_name)
{
	char	*s;

	s = model_path_name("meta-llama/Llama-3.1_8B");
	ck_assert_str_eq(s, "meta-llama%2FLlama-3.1_8B");
	free(s);
	s = model_path_name("..");
	ck_assert_str_eq(s, "%2E.");
	free(s);
	s = model_path_name(".hidden");
	ck_assert_str_eq(s, "%2Ehidden");
	free(s);
	s = model_path_name("a b%c");
	ck_assert_str_eq(s, "a%20b%25c");
	free(s);
	/* Two names never share a file. */
	s = model_path_name("a/b");
	ck_assert_str_ne(s, "a_b");
	free(s);
}
END_TEST

START_TEST(test_parse_stat)
{
	struct procfs_stat	st;
	const char		*line = "4242 (python3 (vllm) x) S 1 4242 4242 0 "
				    "-1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 "
				    "987654 123456 789 18446744073709551615\n";

	ck_assert_int_eq(procfs_parse_stat(line, strlen(line), &st), 0);
	ck_assert_int_eq(st.pid, 4242);
	ck_assert_int_eq(st.state, 'S');
	ck_assert_int_eq(st.ppid, 1);
	ck_assert_int_eq(st.pgrp, 4242);
	ck_assert_int_eq(st.session, 4242);
	ck_assert_uint_eq(st.starttime, 987654);

	/* Cut lines, garbage, missing fields. */
	ck_assert_int_eq(procfs_parse_stat("", 0, &st), -1);
	ck_assert_int_eq(procfs_parse_stat("12 (x", 5, &st), -1);
	ck_assert_int_eq(procfs_parse_stat("12 (x) S 1 2", 12, &st), -1);
	ck_assert_int_eq(procfs_parse_stat("x (y) S 1 2 3", 13, &st), -1);
	ck_assert_int_eq(procfs_parse_stat(line, 40, &st), -1);

	/* Our own process reads back. */
	ck_assert_int_eq(procfs_read_stat(getpid(), &st), 0);
	ck_assert_int_eq(st.pid, getpid());
	ck_assert(procfs_alive(getpid(), st.starttime));
	ck_assert(!procfs_alive(getpid(), st.starttime + 1));
}
END_TEST

START_TEST(test_members)
{
	/* 10 leads; 11, 12 its children; 13 a grandchild that left the
	 * session; 14 an orphan of the session (ppid 1); 20 unrelated. */
	struct procfs_stat	all[] = {
		{ 1, 'S', 0, 1, 1, 0 },
		{ 10, 'S', 1, 10, 10, 0 },
		{ 11, 'S', 10, 10, 10, 0 },
		{ 12, 'S', 10, 10, 10, 0 },
		{ 13, 'S', 12, 13, 13, 0 },
		{ 14, 'S', 1, 10, 10, 0 },
		{ 20, 'S', 1, 20, 20, 0 },
		{ 21, 'S', 20, 20, 20, 0 },
	};
	struct procfs_stat	out[16];
	bool			seen[32];
	size_t			n;

	memset(seen, 0, sizeof(seen));
	n = procfs_members_of(10, all, sizeof(all) / sizeof(all[0]), out, 16);
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		seen[out[i].pid] = true;
	ck_assert(seen[11] && seen[12] && seen[13] && seen[14]);
	ck_assert(!seen[10] && !seen[20] && !seen[21] && !seen[1]);
	/* The limit is honoured. */
	ck_assert_uint_eq(procfs_members_of(10, all, 8, out, 2), 2);
	ck_assert_uint_eq(procfs_members_of(99, all, 8, out, 16), 0);
}
END_TEST

START_TEST(test_maps_and_cgroup)
{
	const char	*maps =
	    "7f00-7f01 r--p 00000000 08:01 1 /usr/lib/libc.so.6\n"
	    "7f02-7f03 rw-s 00000000 00:05 2 /dev/nvidia0\n";
	const char	*plain = "7f00-7f01 r--p 00000000 08:01 1 /lib/x\n"
	    "7f05-7f06 rw-p 00000000 00:00 0 [heap]\n";
	const char	*cg = "12:memory:/x\n0::/system.slice/llmux.service\n";
	const char	*mi =
	    "22 1 0:21 / /proc rw - proc proc rw\n"
	    "30 22 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 "
	    "cgroup2 rw\n";
	char		 out[256];

	ck_assert(procfs_maps_nvidia(maps, strlen(maps)));
	ck_assert(!procfs_maps_nvidia(plain, strlen(plain)));
	ck_assert(!procfs_maps_nvidia("", 0));
	ck_assert_int_eq(procfs_cgroup2_path(cg, strlen(cg), out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "/system.slice/llmux.service");
	ck_assert_int_eq(procfs_cgroup2_path("1:cpu:/\n", 8, out,
	    sizeof(out)), -1);
	ck_assert_int_eq(procfs_cgroup2_mount(mi, strlen(mi), out,
	    sizeof(out)), 0);
	ck_assert_str_eq(out, "/sys/fs/cgroup");
	ck_assert_int_eq(procfs_cgroup2_mount("22 1 0:21 / /proc rw - proc "
	    "proc rw\n", 37, out, sizeof(out)), -1);
}
END_TEST

/* Finding a model's process on its port: /proc/net/tcp, cmdline, state. */
START_TEST(test_port_adoption)
{
	static const char tcp[] =
	    "  sl  local_address rem_address   st tx_queue rx_queue tr "
	    "tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 0100007F:1F41 00000000:0000 0A 00000000:00000000 "
	    "00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"
	    "   1: 0100007F:1F41 0100007F:9C40 01 00000000:00000000 "
	    "00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1\n"
	    "   2: 00000000:1F42 00000000:0000 0A 00000000:00000000 "
	    "00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0\n";
	static const char tcp6[] =
	    "   0: 00000000000000000000000000000000:1F41 "
	    "00000000000000000000000000000000:0000 0A 00000000:00000000 "
	    "00:00000000 00000000     0        0 5151 1 0 100 0 0 10 0\n";
	uint64_t	 ino[4];
	struct config	*c;
	char		 cmd[512];
	size_t		 n;

	/* Listening (0A) on 8001 only; an established one is not. */
	ck_assert_uint_eq(procfs_listen_inodes(tcp, strlen(tcp), 8001, ino,
	    4), 1);
	ck_assert_uint_eq(ino[0], 4242);
	ck_assert_uint_eq(procfs_listen_inodes(tcp, strlen(tcp), 8002, ino,
	    4), 1);
	ck_assert_uint_eq(ino[0], 4444);
	ck_assert_uint_eq(procfs_listen_inodes(tcp, strlen(tcp), 8003, ino,
	    4), 0);
	ck_assert_uint_eq(procfs_listen_inodes(tcp6, strlen(tcp6), 8001, ino,
	    4), 1);
	ck_assert_uint_eq(ino[0], 5151);

	c = load("vllm_command: /usr/bin/vllm\nmodels:\n  l:\n"
	    "    model_path: /m/l\n    port: 8001\n"
	    "    extra_args: [--max-num-seqs, \"8\"]\n");
/* As /proc gives it: each word NUL-terminated (not the literal's NUL). */
#define CMD(s)	(memcpy(cmd, s, sizeof(s) - 1), sizeof(s) - 1)
	/* As spawned; as a script run by its interpreter. */
	n = CMD("/usr/bin/vllm\0serve\0/m/l\0--port\0008001\0--host\0"
	    "127.0.0.1\0--enable-sleep-mode\0--served-model-name\0l\0"
	    "--max-num-seqs\0008\0");
	ck_assert(adopt_is_model_command(c, &c->models[0], cmd, n));
	n = CMD("/usr/bin/python3\0/usr/bin/vllm\0serve\0/m/l\0--port\0"
	    "8001\0--host\000127.0.0.1\0--enable-sleep-mode\0"
	    "--served-model-name\0l\0--max-num-seqs\0008\0");
	ck_assert(adopt_is_model_command(c, &c->models[0], cmd, n));
	/* Another port, another program, a word missing: not ours. */
	n = CMD("/usr/bin/vllm\0serve\0/m/l\0--port\0008002\0--host\0"
	    "127.0.0.1\0--enable-sleep-mode\0--served-model-name\0l\0"
	    "--max-num-seqs\0008\0");
	ck_assert(!adopt_is_model_command(c, &c->models[0], cmd, n));
	n = CMD("/usr/bin/other\0serve\0/m/l\0--port\0008001\0--host\0"
	    "127.0.0.1\0--enable-sleep-mode\0--served-model-name\0l\0"
	    "--max-num-seqs\0008\0");
	ck_assert(!adopt_is_model_command(c, &c->models[0], cmd, n));
	n = CMD("/usr/bin/vllm\0serve\0/m/l\0--port\0008001\0");
	ck_assert(!adopt_is_model_command(c, &c->models[0], cmd, n));
	ck_assert(!adopt_is_model_command(c, &c->models[0], "", 0));
#undef CMD
	config_free(c);

	ck_assert_int_eq(evict_parse_is_sleeping("{\"is_sleeping\": true}"), 1);
	ck_assert_int_eq(evict_parse_is_sleeping("{\"is_sleeping\":false}"), 0);
	ck_assert_int_eq(evict_parse_is_sleeping("{\"is_sleeping\": 1}"), -1);
	ck_assert_int_eq(evict_parse_is_sleeping("{\"sleeping\": true}"), -1);
	ck_assert_int_eq(evict_parse_is_sleeping("\"is_sleeping\""), -1);
	ck_assert_int_eq(evict_parse_is_sleeping(NULL), -1);
}
END_TEST

START_TEST(test_roles)
{
	struct role_policy	rp;
	struct peer_cred	c;
	gid_t			groups[] = { 100, 500 };
	int			admin = ROLE_BIT(PROTO_ROLE_ADMIN);
	int			proxy = ROLE_BIT(PROTO_ROLE_PROXY);

	memset(&rp, 0, sizeof(rp));
	rp.privileged = true;
	rp.self_uid = 0;
	rp.has_proxy_uid = true;
	rp.proxy_uid = 990;
	rp.has_admin_gid = true;
	rp.admin_gid = 500;

	memset(&c, 0, sizeof(c));
	c.uid = 0;
	ck_assert_int_eq(server_peer_roles(&c, &rp), admin | proxy);
	c.uid = 990;
	c.gid = 990;
	ck_assert_int_eq(server_peer_roles(&c, &rp), proxy);
	/* An admin-group member by supplementary group, or primary. */
	c.uid = 1000;
	c.gid = 1000;
	c.groups = groups;
	c.ngroups = 2;
	ck_assert_int_eq(server_peer_roles(&c, &rp), admin);
	c.groups = NULL;
	c.ngroups = 0;
	c.gid = 500;
	ck_assert_int_eq(server_peer_roles(&c, &rp), admin);
	/* Anyone else: nothing. */
	c.gid = 1000;
	ck_assert_int_eq(server_peer_roles(&c, &rp), 0);
	c.uid = 1;
	c.gid = 1;
	ck_assert_int_eq(server_peer_roles(&c, &rp), 0);

	/* Unprivileged: our own user is both; others are still refused. */
	rp.privileged = false;
	rp.self_uid = 1000;
	rp.has_proxy_uid = false;
	rp.has_admin_gid = false;
	c.uid = 1000;
	ck_assert_int_eq(server_peer_roles(&c, &rp), admin | proxy);
	c.uid = 1001;
	ck_assert_int_eq(server_peer_roles(&c, &rp), 0);
	/* A privileged supervisor does not trust its own uid by itself. */
	rp.privileged = true;
	rp.self_uid = 1001;
	ck_assert_int_eq(server_peer_roles(&c, &rp), 0);
}
END_TEST

static void
plan_is(const struct evict_plan *p, const char *want)
{
	char	got[512] = "";

	for (size_t i = 0; i < p->n; i++) {
		if (i > 0)
			strcat(got, " ");
		strcat(got, evict_step_name(p->steps[i]));
	}
	ck_assert_str_eq(got, want);
}

/* llmux 0.7's sequences for all twelve combinations, TP 1 and TP 2. */
START_TEST(test_sleep_plans)
{
	static const char *want[3][4][2] = {
		{ { "", "" }, { "cuda_suspend", "nccl_suspend cuda_suspend" },
		  { "criu_dump", "nccl_suspend criu_dump" }, { "stop", "stop" } },
		{ { "sleep", "sleep" },
		  { "sleep cuda_suspend", "sleep nccl_suspend cuda_suspend" },
		  { "sleep criu_dump", "sleep nccl_suspend criu_dump" },
		  { "sleep stop", "sleep stop" } },
		{ { "discard", "discard" },
		  { "discard cuda_suspend", "discard nccl_suspend cuda_suspend" },
		  { "discard criu_dump", "discard nccl_suspend criu_dump" },
		  { "discard stop", "discard stop" } },
	};
	struct evict_plan	p;
	struct eviction		e;

	for (int w = 0; w < WEIGHTS__COUNT; w++)
		for (int pr = 0; pr < PROCESS__COUNT; pr++)
			for (int tp = 0; tp < 2; tp++) {
				e.weights = (enum weights_strategy)w;
				e.process = (enum process_strategy)pr;
				evict_plan_sleep(&e, tp ? 2 : 1, &p);
				plan_is(&p, want[w][pr][tp]);
			}
}
END_TEST

START_TEST(test_wake_plans)
{
	struct evict_plan	p;
	struct eviction		e;

	/* Not running, failed, stopped: a cold start. */
	e = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_STOP };
	evict_plan_wake(MODEL_NOT_STARTED, &e, 1, false, &p);
	plan_is(&p, "start");
	evict_plan_wake(MODEL_FAILED, &e, 2, true, &p);
	plan_is(&p, "start");
	evict_plan_wake(MODEL_RUNNING, &e, 1, false, &p);
	plan_is(&p, "");

	e = (struct eviction){ WEIGHTS_RETAIN, PROCESS_KEEP_RUNNING };
	evict_plan_wake(MODEL_SLEEPING, &e, 1, false, &p);
	plan_is(&p, "health");
	e = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_KEEP_RUNNING };
	evict_plan_wake(MODEL_SLEEPING, &e, 1, false, &p);
	plan_is(&p, "wake_up health");
	e = (struct eviction){ WEIGHTS_DISCARD, PROCESS_KEEP_RUNNING };
	evict_plan_wake(MODEL_SLEEPING, &e, 1, false, &p);
	plan_is(&p, "wake_up reload_weights reset_prefix_cache health");
	e = (struct eviction){ WEIGHTS_RETAIN, PROCESS_CUDA_SUSPEND };
	evict_plan_wake(MODEL_SLEEPING, &e, 1, false, &p);
	plan_is(&p, "cuda_resume health");
	evict_plan_wake(MODEL_SLEEPING, &e, 4, false, &p);
	plan_is(&p, "cuda_resume nccl_resume health");
	e = (struct eviction){ WEIGHTS_DISCARD, PROCESS_CUDA_SUSPEND };
	evict_plan_wake(MODEL_SLEEPING, &e, 2, false, &p);
	plan_is(&p, "cuda_resume nccl_resume wake_up reload_weights "
	    "reset_prefix_cache health");
	e = (struct eviction){ WEIGHTS_DISCARD, PROCESS_CHECKPOINT };
	evict_plan_wake(MODEL_CHECKPOINTED, &e, 2, true, &p);
	plan_is(&p, "criu_restore health nccl_resume wake_up reload_weights "
	    "reset_prefix_cache");
	evict_plan_wake(MODEL_CHECKPOINTED, &e, 1, true, &p);
	plan_is(&p, "criu_restore health wake_up reload_weights "
	    "reset_prefix_cache");
	/* Checkpointed without images: start afresh. */
	evict_plan_wake(MODEL_CHECKPOINTED, &e, 1, false, &p);
	plan_is(&p, "start");
}
END_TEST

START_TEST(test_store_plans)
{
	struct evict_plan	p;
	struct eviction		e;

	/* An object store uploads after a dump, downloads before a restore. */
	e = (struct eviction){ WEIGHTS_OFFLOAD, PROCESS_CHECKPOINT };
	evict_plan_sleep(&e, 2, &p);
	evict_plan_store(&p);
	plan_is(&p, "sleep nccl_suspend criu_dump upload");
	evict_plan_wake(MODEL_CHECKPOINTED, &e, 1, true, &p);
	evict_plan_store(&p);
	plan_is(&p, "download criu_restore health wake_up");
	/* Nothing else changes. */
	evict_plan_wake(MODEL_CHECKPOINTED, &e, 1, false, &p);
	evict_plan_store(&p);
	plan_is(&p, "start");
	e = (struct eviction){ WEIGHTS_DISCARD, PROCESS_CUDA_SUSPEND };
	evict_plan_sleep(&e, 1, &p);
	evict_plan_store(&p);
	plan_is(&p, "discard cuda_suspend");
	evict_plan_wake(MODEL_SLEEPING, &e, 1, false, &p);
	evict_plan_store(&p);
	plan_is(&p, "cuda_resume wake_up reload_weights reset_prefix_cache "
	    "health");
	p.n = 0;
	evict_plan_store(&p);
	plan_is(&p, "");
}
END_TEST

START_TEST(test_health_intervals)
{
	int64_t	iv = HEALTH_FIRST_INTERVAL_MS, prev;
	int	n = 0;

	ck_assert_int_ge(iv, 10);
	ck_assert_int_le(iv, 20);
	while (iv < HEALTH_MAX_INTERVAL_MS && n++ < 100) {
		prev = iv;
		iv = health_next_interval(iv);
		ck_assert_int_gt(iv, prev);
	}
	ck_assert_int_eq(iv, HEALTH_MAX_INTERVAL_MS);
	ck_assert_int_eq(health_next_interval(iv), HEALTH_MAX_INTERVAL_MS);
	/* Polls never further apart than readiness must be noticed in. */
	ck_assert_int_lt(HEALTH_MAX_INTERVAL_MS, 50);
}
END_TEST

START_TEST(test_text_clean)
{
	char	 s[64], *big, *d;

	snprintf(s, sizeof(s), "ok\tline\nbell\a esc\033[0m caf\xc3\xa9 "
	    "bad\xff\xc3");
	body_text_clean(s);
	ck_assert_str_eq(s, "ok\tline\nbell? esc?[0m caf\xc3\xa9 bad??");

	big = xmalloc(3 * PROTO_MAX_TEXT);
	memset(big, 'x', 3 * PROTO_MAX_TEXT - 1);
	big[3 * PROTO_MAX_TEXT - 1] = '\0';
	/* A two-byte character across the limit is dropped whole. */
	big[PROTO_MAX_TEXT - 2] = '\xc3';
	big[PROTO_MAX_TEXT - 1] = '\xa9';
	d = body_text_dup(big);
	ck_assert_uint_eq(strlen(d), PROTO_MAX_TEXT - 2);
	free(d);
	free(big);
	d = body_text_dup(NULL);
	ck_assert_str_eq(d, "");
	free(d);
}
END_TEST

START_TEST(test_eviction_debug)
{
	struct eviction	e = { WEIGHTS_RETAIN, PROCESS_CUDA_SUSPEND };
	char		buf[128];

	ck_assert_str_eq(body_eviction_debug(&e, buf, sizeof(buf)),
	    "EvictionPolicy { weights: Retain, process: CudaSuspend }");
}
END_TEST

START_TEST(test_validate_text)
{
	const char	*reply = "{\"id\":\"cmpl-1\",\"choices\":[{\"index\":0,"
			    "\"text\" : \"red, \\\"green\\\" and blue\",\"x\":1}]}";
	char		*t;

	t = validate_text(reply, strlen(reply));
	ck_assert_str_eq(t, "red, \\\"green\\\" and blue");
	free(t);
	ck_assert_ptr_null(validate_text("{\"text\":\"cut", 11));
	ck_assert_ptr_null(validate_text("{\"text\": 3}", 11));
	ck_assert_ptr_null(validate_text("{}", 2));
	ck_assert_ptr_null(validate_text("\"text\"", 6));
	/* An embedding reply (base64): its vector is what is compared. */
	reply = "{\"object\":\"list\",\"data\":[{\"index\":0,\"object\":"
	    "\"embedding\",\"embedding\":\"AACAPwAAAMA=\"}],\"usage\":{}}";
	t = validate_text(reply, strlen(reply));
	ck_assert_str_eq(t, "AACAPwAAAMA=");
	free(t);
	/* Floats are not a string: nothing to compare. */
	ck_assert_ptr_null(validate_text("{\"embedding\":[0.5,1]}", 21));
}
END_TEST

START_TEST(test_reload_changed)
{
	struct config	*a = load(base_yaml), *b;
	char		*yaml;

	b = load(base_yaml);
	ck_assert(!reload_model_changed(a, &a->models[0], b, &b->models[0]));
	config_free(b);

	xasprintf(&yaml, "%s    eviction: offload+keep_running\n", base_yaml);
	b = load(yaml);
	free(yaml);
	ck_assert(!reload_model_changed(a, &a->models[0], b, &b->models[0]));
	ck_assert(reload_model_changed(a, &a->models[1], b, &b->models[1]));
	config_free(b);

	b = load("vllm_command: /other/vllm\nmodels:\n  llama:\n"
	    "    model_path: meta-llama/Llama-3.1-8B\n    port: 8001\n"
	    "    extra_args: [--max-model-len, \"8192\"]\n"
	    "    env: {HF_HUB_OFFLINE: \"1\", NO_COLOR: \"0\"}\n");
	ck_assert(reload_model_changed(a, &a->models[0], b, &b->models[0]));
	config_free(b);
	config_free(a);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("supervisor");
	TCase	*tc = tcase_create("pure");

	tcase_add_test(tc, test_argv);
	tcase_add_test(tc, test_names_served_model);
	tcase_add_test(tc, test_envp);
	tcase_add_test(tc, test_process_state_strings);
	tcase_add_test(tc, test_pstate_names);
	tcase_add_test(tc, test_path_name);
	tcase_add_test(tc, test_parse_stat);
	tcase_add_test(tc, test_members);
	tcase_add_test(tc, test_maps_and_cgroup);
	tcase_add_test(tc, test_port_adoption);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_sleep_plans);
	tcase_add_test(tc, test_wake_plans);
	tcase_add_test(tc, test_store_plans);
	tcase_add_test(tc, test_health_intervals);
	tcase_add_test(tc, test_text_clean);
	tcase_add_test(tc, test_eviction_debug);
	tcase_add_test(tc, test_reload_changed);
	tcase_add_test(tc, test_validate_text);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
