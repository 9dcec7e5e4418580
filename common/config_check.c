/*
 * config_check.c -- the rules that span keys, run once the file is bound
 * (nginx's "merge and check" step): unique ports, names and aliases, GPU
 * lists, what extra_args imply, checkpoint_path, llmux 0.7's TP>1 warnings;
 * and the facts about this machine (programs and paths that must exist),
 * which are warnings for --check-config and errors where the supervisor
 * needs them.
 */
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "xmalloc.h"

struct config_check_port {
	char			 name[CONFIG_TEXT_MAX + 16];
	unsigned		 port;
	struct config_pos	 pos;
	size_t			 order;
	bool			 top;	/* port, admin_port, metrics_port */
};

/* A model's name, printable, for messages. */
static const char *
config_check_name(const struct model_config *m, char *buf)
{
	return (config_printable(m->name, strlen(m->name), buf,
	    CONFIG_TEXT_MAX));
}

/* File order; values not written in the file (defaults) come first. */
static int
config_check_port_cmp(const void *a, const void *b)
{
	const struct config_check_port	*x = a, *y = b;

	if (x->pos.line != y->pos.line)
		return (x->pos.line < y->pos.line ? -1 : 1);
	if (x->pos.col != y->pos.col)
		return (x->pos.col < y->pos.col ? -1 : 1);
	return (x->order < y->order ? -1 : x->order > y->order);
}

static void
config_check_port_add(struct config_check_port *v, size_t *n,
    const char *name, unsigned port, struct config_pos pos)
{
	snprintf(v[*n].name, sizeof(v[*n].name), "%s", name);
	v[*n].port = port;
	v[*n].pos = pos;
	v[*n].order = *n;
	v[*n].top = strncmp(name, "models.", 7) != 0;
	(*n)++;
}

static void
config_check_ports(struct config_loader *ld)
{
	struct config			*cfg = ld->cfg;
	struct config_check_port	*v;
	struct config_pos		 none = { 0, 0 };
	size_t				 n = 0, i, j;
	char				 where[CONFIG_TEXT_MAX + 16];
	char				 nm[CONFIG_TEXT_MAX];

	v = xcalloc(cfg->n_models + 3, sizeof(*v));
	config_check_port_add(v, &n, "port", cfg->port,
	    config_marked(ld, &cfg->port, none));
	if (cfg->admin_port != 0)
		config_check_port_add(v, &n, "admin_port", cfg->admin_port,
		    config_marked(ld, &cfg->admin_port, none));
	if (cfg->metrics_port != 0)
		config_check_port_add(v, &n, "metrics_port", cfg->metrics_port,
		    config_marked(ld, &cfg->metrics_port, none));
	for (i = 0; i < cfg->n_models; i++) {
		snprintf(where, sizeof(where), "models.%s.port",
		    config_check_name(&cfg->models[i], nm));
		config_check_port_add(v, &n, where, cfg->models[i].port,
		    config_marked(ld, &cfg->models[i].port, none));
	}
	/* In file order, each port against those written before it. */
	qsort(v, n, sizeof(*v), config_check_port_cmp);
	for (i = 1; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (v[i].port == 0 || v[i].port != v[j].port)
				continue;
			/* /metrics may be served on the control API's port. */
			if (v[i].top && v[j].top &&
			    strcmp(v[i].name, "port") != 0 &&
			    strcmp(v[j].name, "port") != 0)
				continue;
			if (v[j].pos.line != 0)
				snprintf(where, sizeof(where), "line %u",
				    v[j].pos.line);
			else
				snprintf(where, sizeof(where), "the default");
			config_diag(ld, true, false, v[i].pos.line,
			    v[i].pos.col, "%s: port %u is already used by %s "
			    "(%s)", v[i].name, v[i].port, v[j].name, where);
			break;
		}
	}
	free(v);
}

/* Is this extra_args entry the option opt, alone or as "opt=value"? */
static const char *
config_check_option(char **args, size_t n, size_t *i, const char *const *opts,
    bool *missing)
{
	const char	*a = args[*i];
	size_t		 len;

	*missing = false;
	for (; *opts != NULL; opts++) {
		len = strlen(*opts);
		if (strncmp(a, *opts, len) != 0)
			continue;
		if (a[len] == '=')
			return (a + len + 1);
		if (a[len] != '\0')
			continue;
		if (*i + 1 >= n) {
			*missing = true;
			return (NULL);
		}
		return (args[++*i]);
	}
	return (NULL);
}

int
config_check_args(struct config_loader *ld, struct model_config *m)
{
	static const char *const tp_opts[] = {
		"--tensor-parallel-size", "--tensor_parallel_size", "-tp", NULL
	};
	static const char *const gmu_opts[] = {
		"--gpu-memory-utilization", "--gpu_memory_utilization", NULL
	};
	struct config_pos	 pos;
	const char		*val;
	char			*end;
	unsigned long		 tp = 1;
	double			 gmu = 0;
	bool			 missing;
	int			 rc = 0;
	char			 nm[CONFIG_TEXT_MAX];

	config_check_name(m, nm);
	for (size_t i = 0; i < m->n_extra_args; i++) {
		val = config_check_option(m->extra_args, m->n_extra_args, &i,
		    tp_opts, &missing);
		/* Point at the value, or at the option that lacks one. */
		pos = config_marked(ld, &m->extra_args[i], m->pos);
		if (val != NULL || missing) {
			tp = missing ? 0 : strtoul(val, &end, 10);
			if (missing || *val < '0' || *val > '9' ||
			    *end != '\0' || tp < 1 || tp > CONFIG_MAX_GPUS) {
				config_diag(ld, true, false, pos.line, pos.col,
				    "models.%s.extra_args: the tensor parallel "
				    "size must be an integer from 1 to %d",
				    nm, CONFIG_MAX_GPUS);
				rc = -1;
				tp = 1;
			}
			continue;
		}
		val = config_check_option(m->extra_args, m->n_extra_args, &i,
		    gmu_opts, &missing);
		pos = config_marked(ld, &m->extra_args[i], m->pos);
		if (val != NULL || missing) {
			gmu = missing ? 0 : strtod(val, &end);
			if (missing || *val == '\0' || *end != '\0' ||
			    !isfinite(gmu) || gmu <= 0 || gmu > 1) {
				config_diag(ld, true, false, pos.line, pos.col,
				    "models.%s.extra_args: the GPU memory "
				    "utilization must be a number more than 0, "
				    "at most 1", nm);
				rc = -1;
				gmu = 0;
			}
		}
	}
	m->tensor_parallel_size = (unsigned)tp;
	if (m->gpu_memory_utilization != 0 && gmu != 0 &&
	    m->gpu_memory_utilization != gmu) {
		pos = config_marked(ld, &m->gpu_memory_utilization, m->pos);
		config_diag(ld, true, false, pos.line, pos.col,
		    "models.%s.gpu_memory_utilization: %g differs from "
		    "--gpu-memory-utilization %g in extra_args; set it in one "
		    "place", nm, m->gpu_memory_utilization, gmu);
		rc = -1;
	}
	if (m->gpu_memory_utilization == 0)
		m->gpu_memory_utilization = gmu != 0 ? gmu : 0.9;
	return (rc);
}

static void
config_check_gpus(struct config_loader *ld, struct model_config *m)
{
	struct config		*cfg = ld->cfg;
	struct config_pos	 pos;
	char			 nm[CONFIG_TEXT_MAX];

	config_check_name(m, nm);
	for (size_t i = 0; i < m->n_gpus; i++) {
		if (cfg->gpu_count == 0 ||
		    (unsigned)m->gpus[i] < cfg->gpu_count)
			continue;
		pos = config_marked(ld, &m->gpus[i], m->pos);
		config_diag(ld, true, false, pos.line, pos.col,
		    "models.%s.gpus[%zu]: GPU %d does not exist (gpu_count is "
		    "%u)", nm, i, m->gpus[i], cfg->gpu_count);
	}
	if (m->n_gpus != 0 && m->tensor_parallel_size > m->n_gpus) {
		pos = config_marked(ld, &m->gpus, m->pos);
		config_diag(ld, true, false, pos.line, pos.col,
		    "models.%s.gpus: tensor parallel size %u needs %u GPUs, "
		    "but %zu %s listed", nm, m->tensor_parallel_size,
		    m->tensor_parallel_size, m->n_gpus,
		    m->n_gpus == 1 ? "is" : "are");
	} else if (m->n_gpus == 0 && cfg->gpu_count != 0 &&
	    m->tensor_parallel_size > cfg->gpu_count)
		config_diag(ld, true, false, m->pos.line, m->pos.col,
		    "models.%s: tensor parallel size %u needs %u GPUs, but "
		    "gpu_count is %u", nm, m->tensor_parallel_size,
		    m->tensor_parallel_size, cfg->gpu_count);
}

static bool
config_check_has_arg(const struct model_config *m, const char *arg)
{
	for (size_t i = 0; i < m->n_extra_args; i++)
		if (strcmp(m->extra_args[i], arg) == 0)
			return (true);
	return (false);
}

/* llmux 0.7's startup validation for TP>1 models that CUDA-checkpoint. */
static void
config_check_tp(struct config_loader *ld, const struct model_config *m)
{
	static const struct {
		const char	*arg;
		const char	*why;
	} need[] = {
		{ "--enforce-eager", "CUDA graphs keep stale NCCL handles and "
		  "crash on resume" },
		{ "--disable-custom-all-reduce", "custom all-reduce buffers "
		  "cannot survive a CUDA checkpoint" },
	};
	char	nm[CONFIG_TEXT_MAX];

	if (m->tensor_parallel_size <= 1 ||
	    (m->eviction.process != PROCESS_CUDA_SUSPEND &&
	    m->eviction.process != PROCESS_CHECKPOINT))
		return;
	config_check_name(m, nm);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (config_check_has_arg(m, need[i].arg))
			continue;
		config_diag(ld, false, false, m->pos.line, m->pos.col,
		    "models.%s: %s at tensor parallel size %u without %s in "
		    "extra_args: %s", nm,
		    eviction_process_name(m->eviction.process),
		    m->tensor_parallel_size, need[i].arg, need[i].why);
	}
}

static void
config_check_checkpoint_path(struct config_loader *ld,
    const struct model_config *m)
{
	struct config		*cfg = ld->cfg;
	struct config_pos	 pos;
	struct stat		 st;
	bool			 run = ld->mode == CONFIG_RUN;
	char			 nm[CONFIG_TEXT_MAX], path[CONFIG_TEXT_MAX];

	if (m->checkpoint_path == NULL)
		return;
	config_check_name(m, nm);
	pos = config_marked(ld, &m->checkpoint_path, m->pos);
	if (!cfg->checkpoint.set) {
		config_diag(ld, true, false, pos.line, pos.col,
		    "models.%s.checkpoint_path: needs a top-level "
		    "'checkpoint' section", nm);
		return;
	}
	if (cfg->checkpoint.object_store.set ||
	    stat(m->checkpoint_path, &st) == 0)
		return;
	config_diag(ld, run, true, pos.line, pos.col,
	    "models.%s.checkpoint_path: %s does not exist on this machine%s",
	    nm, config_printable(m->checkpoint_path,
	    strlen(m->checkpoint_path), path, sizeof(path)), run ? "" :
	    " (the supervisor will refuse to start)");
}

/* Aliases must not clash with a model's name or with another alias. */
static void
config_check_aliases(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct model_config	*m, *o;
	struct config_pos	 pos;
	const char		*a;
	size_t			 i, j, k, l;
	char			 nm[CONFIG_TEXT_MAX], onm[CONFIG_TEXT_MAX];
	char			 an[CONFIG_TEXT_MAX];

	for (i = 0; i < cfg->n_models; i++) {
		m = &cfg->models[i];
		config_check_name(m, nm);
		for (j = 0; j < m->n_aliases; j++) {
			a = m->aliases[j];
			config_printable(a, strlen(a), an, sizeof(an));
			pos = config_marked(ld, &m->aliases[j], m->pos);
			for (k = 0; k < cfg->n_models; k++) {
				if (strcmp(cfg->models[k].name, a) == 0) {
					config_diag(ld, true, false, pos.line,
					    pos.col, "models.%s.aliases[%zu]: "
					    "'%s' is the name of a model",
					    nm, j, an);
					goto next;
				}
			}
			/* Compare with every alias written before this one. */
			for (k = 0; k <= i; k++) {
				o = &cfg->models[k];
				for (l = 0; l < (k == i ? j : o->n_aliases);
				    l++) {
					if (strcmp(o->aliases[l], a) != 0)
						continue;
					config_check_name(o, onm);
					config_diag(ld, true, false, pos.line,
					    pos.col, "models.%s.aliases[%zu]: "
					    "'%s' is already an alias of "
					    "model '%s'", nm, j, an, onm);
					goto next;
				}
			}
next:
			;
		}
	}
}

bool
config_check_command(const char *cmd)
{
	const char	*path, *p, *colon;
	char		 full[PATH_MAX];
	struct stat	 st;
	size_t		 dlen;

	if (strchr(cmd, '/') != NULL)
		return (stat(cmd, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cmd, X_OK) == 0);
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = colon + 1) {
		colon = strchr(p, ':');
		dlen = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (snprintf(full, sizeof(full), "%.*s%s%s", (int)dlen, p,
		    dlen != 0 ? "/" : "", cmd) < (int)sizeof(full) &&
		    stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(full, X_OK) == 0)
			return (true);
		if (colon == NULL)
			return (false);
	}
}

/* Programs the configuration names that this machine lacks. */
static void
config_check_machine(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct model_config	*m;
	struct config_pos	 none = { 0, 0 }, pos;
	char			 nm[CONFIG_TEXT_MAX], cmd[CONFIG_TEXT_MAX];

	if (cfg->vllm_command != NULL &&
	    !config_check_command(cfg->vllm_command)) {
		pos = config_marked(ld, &cfg->vllm_command, none);
		config_diag(ld, false, true, pos.line, pos.col,
		    "vllm_command: %s is not found on this machine (no such "
		    "executable%s)", config_printable(cfg->vllm_command,
		    strlen(cfg->vllm_command), cmd, sizeof(cmd)),
		    strchr(cfg->vllm_command, '/') != NULL ? "" : " on PATH");
	}
	for (size_t i = 0; i < cfg->n_models; i++) {
		m = &cfg->models[i];
		if (m->eviction.process != PROCESS_CHECKPOINT &&
		    m->checkpoint_path == NULL)
			continue;
		if (config_check_command(cfg->checkpoint.criu_path))
			break;
		pos = config_marked(ld, &cfg->checkpoint.criu_path, m->pos);
		config_check_name(m, nm);
		config_diag(ld, false, true, pos.line, pos.col,
		    "checkpoint.criu_path: %s is not found on this machine; "
		    "model %s needs it to checkpoint",
		    config_printable(cfg->checkpoint.criu_path,
		    strlen(cfg->checkpoint.criu_path), cmd, sizeof(cmd)),
		    nm);
		break;
	}
}

/*
 * As root, the users and the group written in the file must exist here:
 * the supervisor would start, and every model start (user) or the proxy
 * (proxy_user) would then fail. An error for --check-config; the
 * supervisor itself starts and says so at each start, as before. The
 * package's own accounts (the defaults, made by its sysusers.d) are only
 * warned about when written and missing: the package is not installed.
 */
static void
config_check_accounts(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct config_pos	 none = { 0, 0 }, pos;
	const struct {
		const char	*key;
		char *const	*val;
		bool		 group;
	} acct[] = {
		{ "user", &cfg->user, false },
		{ "proxy_user", &cfg->proxy_user, false },
		{ "admin_group", &cfg->admin_group, true },
	};
	const struct config_key	*k;
	char			 name[CONFIG_TEXT_MAX];
	bool			 ours;

	if (ld->mode != CONFIG_CHECK || geteuid() != 0)
		return;
	for (size_t i = 0; i < sizeof(acct) / sizeof(acct[0]); i++) {
		const char	*v = *acct[i].val;

		pos = config_marked(ld, acct[i].val, none);
		if (v == NULL || pos.line == 0)
			continue;
		if (acct[i].group ? getgrnam(v) != NULL : getpwnam(v) != NULL)
			continue;
		k = config_keys_find(CS_TOP, acct[i].key);
		ours = k != NULL && k->def != NULL && strcmp(k->def, v) == 0;
		config_diag(ld, !ours, true, pos.line, pos.col, "%s: %s '%s' "
		    "does not exist on this machine%s", acct[i].key,
		    acct[i].group ? "group" : "user",
		    config_printable(v, strlen(v), name, sizeof(name)),
		    ours ? " (the package creates it)" : "");
	}
}

/*
 * A model server is started with --host 127.0.0.1 (engine/spawn.c): its
 * /sleep, /wake_up and /collective_rpc routes must not face the network.
 * extra_args that name a host win, and are warned about.
 */
static void
config_check_host(struct config_loader *ld, const struct model_config *m)
{
	struct config_pos	pos;
	char			nm[CONFIG_TEXT_MAX];

	for (size_t i = 0; i < m->n_extra_args; i++) {
		if (strcmp(m->extra_args[i], "--host") != 0 &&
		    strncmp(m->extra_args[i], "--host=", 7) != 0)
			continue;
		pos = config_marked(ld, &m->extra_args[i], m->pos);
		config_diag(ld, false, false, pos.line, pos.col,
		    "models.%s.extra_args: --host replaces llmux's --host "
		    "127.0.0.1: the model's port, with its sleep, wake_up and "
		    "collective_rpc routes, is open to whatever reaches that "
		    "address, past api_keys and admin_token",
		    config_check_name(m, nm));
		return;
	}
}

static bool
config_check_loopback(const char *addr)
{
	return (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0);
}

void
config_check(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct model_config	*m;
	struct config_pos	 pos, none = { 0, 0 };

	if (cfg->n_models == 0 && config_marked(ld, &cfg->models,
	    none).line != 0) {
		pos = config_marked(ld, &cfg->models, none);
		config_diag(ld, false, false, pos.line, pos.col,
		    "models: no models are configured");
	}
	config_check_ports(ld);
	for (size_t i = 0; i < cfg->n_models; i++) {
		m = &cfg->models[i];
		if (!m->eviction_set)
			m->eviction = cfg->policy.eviction;
		config_check_args(ld, m);
		config_check_gpus(ld, m);
		config_check_tp(ld, m);
		config_check_checkpoint_path(ld, m);
		config_check_host(ld, m);
	}
	config_check_aliases(ld);
	config_check_accounts(ld);
	if (cfg->admin_port != 0 && cfg->proxy.admin_token == NULL &&
	    cfg->proxy.admin_address != NULL &&
	    !config_check_loopback(cfg->proxy.admin_address)) {
		pos = config_marked(ld, &cfg->proxy.admin_address, none);
		config_diag(ld, false, false, pos.line, pos.col,
		    "proxy.admin_address: the control API listens on %s "
		    "without an admin_token", cfg->proxy.admin_address);
	}
	config_check_machine(ld);
}
