/*
 * metrics.c -- Prometheus text exposition of the proxy's metrics, with
 * llmux 0.7's names (llmux_requests_total{model,waited},
 * llmux_request_queue_wait_seconds{model}, llmux_in_flight{model}) and the
 * proxy's own (request durations, time to the first token, answers by
 * status class, tokens, queue depth, upstream errors, rejections,
 * connections), llmux_build_info and the process_* metrics of the process
 * itself, read from /proc/self.
 */
#include <sys/resource.h>

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "prom.h"
#include "version.h"

const double metrics_wait_bounds[METRICS_WAIT_BUCKETS] = {
	0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300
};
/* A request takes from milliseconds (refused) to minutes (generating). */
const double metrics_duration_bounds[METRICS_DURATION_BUCKETS] = {
	0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600
};
const double metrics_ttft_bounds[METRICS_TTFT_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120
};

static const char *metrics_class_names[MCLASS__COUNT] = {
	"2xx", "3xx", "4xx", "5xx"
};

static const char *metrics_reject_names[REJ__COUNT] = {
	[REJ_BAD_REQUEST] = "invalid_request",
	[REJ_UNAUTHORIZED] = "invalid_api_key",
	[REJ_NOT_FOUND] = "not_found",
	[REJ_MODEL_NOT_FOUND] = "model_not_found",
	[REJ_TOO_LARGE] = "request_too_large",
	[REJ_HEADERS_TOO_LARGE] = "headers_too_large",
	[REJ_QUEUE_FULL] = "queue_full",
	[REJ_TIMEOUT] = "queue_timeout",
	[REJ_UNAVAILABLE] = "model_unavailable",
	[REJ_MODEL_FAILED] = "model_failed",
	[REJ_MANUAL_MODE] = "manual_mode",
	[REJ_BAD_GATEWAY] = "upstream_error",
	[REJ_UPSTREAM_TIMEOUT] = "upstream_timeout",
	[REJ_REQUEST_TIMEOUT] = "request_timeout",
	[REJ_NOT_IMPLEMENTED] = "unsupported_transfer_coding",
	[REJ_TOO_MANY_CONNECTIONS] = "too_many_connections",
	[REJ_BUFFERS_FULL] = "request_buffers_full",
};

static const char *metrics_uperr_names[UPERR__COUNT] = {
	[UPERR_CONNECT] = "connect",
	[UPERR_CLOSED] = "closed",
	[UPERR_BAD_RESPONSE] = "bad_response",
	[UPERR_TIMEOUT] = "timeout",
};

const char *
metrics_reject_name(enum reject_code c)
{
	return ((unsigned)c < REJ__COUNT ? metrics_reject_names[c] : "unknown");
}

const char *
metrics_upstream_error_name(enum upstream_error e)
{
	return ((unsigned)e < UPERR__COUNT ? metrics_uperr_names[e] :
	    "unknown");
}

void
metrics_hist_observe(struct metrics_hist *h, const double *bounds,
    int nbounds, double v)
{
	int	i;

	for (i = 0; i < nbounds && i < METRICS_MAX_BUCKETS; i++) {
		if (v <= bounds[i]) {
			h->bucket[i]++;
			break;
		}
	}
	h->count++;
	h->sum += v;
}

void
metrics_observe_wait(struct model_metrics *m, double secs)
{
	metrics_hist_observe(&m->wait, metrics_wait_bounds,
	    METRICS_WAIT_BUCKETS, secs);
}

void
metrics_observe_request(struct model_metrics *m, int status, double secs,
    double ttft_secs)
{
	if (status >= 200 && status < 600)
		m->responses[status / 100 - 2]++;
	metrics_hist_observe(&m->duration, metrics_duration_bounds,
	    METRICS_DURATION_BUCKETS, secs);
	if (ttft_secs >= 0)
		metrics_hist_observe(&m->ttft, metrics_ttft_bounds,
		    METRICS_TTFT_BUCKETS, ttft_secs);
}

static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A metric of one value, without labels: its head, then its line. */
static void
metrics_one(struct evbuffer *out, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_head(out, name, type, help);
	evbuffer_add_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* The same for a value in seconds (two decimals). */
static void
metrics_one_double(struct evbuffer *out, const char *name, const char *type,
    const char *help, double v)
{
	metrics_head(out, name, type, help);
	evbuffer_add_printf(out, "%s %.2f\n", name, v);
}

/* A bucket bound as Prometheus writes it ("0.005", "1", "+Inf"). */
static const char *
metrics_bound(double b, char *buf, size_t len)
{
	snprintf(buf, len, "%g", b);
	return (buf);
}

/* One histogram per model: the one at offset off of each model_metrics. */
static void
metrics_format_hist(struct evbuffer *out, const char *metric,
    const char *help, const struct metrics_model_view *v, size_t n,
    size_t off, const double *bounds, int nbounds)
{
	const struct metrics_hist	*h;
	char				 name[512], bound[32];
	uint64_t			 cum;
	size_t				 i;
	int				 b;

	metrics_head(out, metric, "histogram", help);
	for (i = 0; i < n; i++) {
		h = (const struct metrics_hist *)(const void *)
		    ((const char *)v[i].m + off);
		prom_label(v[i].name, name, sizeof(name));
		cum = 0;
		for (b = 0; b < nbounds; b++) {
			cum += h->bucket[b];
			evbuffer_add_printf(out, "%s_bucket{model=\"%s\","
			    "le=\"%s\"} %llu\n", metric, name,
			    metrics_bound(bounds[b], bound, sizeof(bound)),
			    (unsigned long long)cum);
		}
		evbuffer_add_printf(out, "%s_bucket{model=\"%s\",le=\"+Inf\"} "
		    "%llu\n", metric, name, (unsigned long long)h->count);
		evbuffer_add_printf(out, "%s_sum{model=\"%s\"} %.6f\n", metric,
		    name, h->sum);
		evbuffer_add_printf(out, "%s_count{model=\"%s\"} %llu\n", metric,
		    name, (unsigned long long)h->count);
	}
}

static void
metrics_format_models(struct evbuffer *out,
    const struct metrics_model_view *v, size_t n)
{
	char		 name[512];
	size_t		 i;
	int		 k;

	metrics_head(out, "llmux_requests_total", "counter",
	    "Requests forwarded to a model, by whether they waited in a queue.");
	for (i = 0; i < n; i++) {
		prom_label(v[i].name, name, sizeof(name));
		for (k = 0; k < 2; k++)
			evbuffer_add_printf(out, "llmux_requests_total{model=\"%s\","
			    "waited=\"%s\"} %llu\n", name, k ? "true" : "false",
			    (unsigned long long)v[i].m->requests[k]);
	}

	metrics_format_hist(out, "llmux_request_queue_wait_seconds",
	    "Time requests waited for their model to be ready.", v, n,
	    offsetof(struct model_metrics, wait), metrics_wait_bounds,
	    METRICS_WAIT_BUCKETS);
	metrics_format_hist(out, "llmux_request_duration_seconds",
	    "Time from a request's head to the last byte of its answer.", v, n,
	    offsetof(struct model_metrics, duration), metrics_duration_bounds,
	    METRICS_DURATION_BUCKETS);
	metrics_format_hist(out, "llmux_time_to_first_token_seconds",
	    "Time from a forwarded request's head to the first byte of the "
	    "model's answer body (its first token when streamed).", v, n,
	    offsetof(struct model_metrics, ttft), metrics_ttft_bounds,
	    METRICS_TTFT_BUCKETS);

	metrics_head(out, "llmux_responses_total", "counter",
	    "Requests of a model answered, by status code class.");
	for (i = 0; i < n; i++) {
		prom_label(v[i].name, name, sizeof(name));
		for (k = 0; k < MCLASS__COUNT; k++)
			evbuffer_add_printf(out, "llmux_responses_total{model="
			    "\"%s\",code_class=\"%s\"} %llu\n", name,
			    metrics_class_names[k],
			    (unsigned long long)v[i].m->responses[k]);
	}
	metrics_head(out, "llmux_prompt_tokens_total", "counter",
	    "Prompt tokens, from the usage the model returned.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "llmux_prompt_tokens_total{model="
		    "\"%s\"} %llu\n", prom_label(v[i].name, name, sizeof(name)),
		    (unsigned long long)v[i].m->prompt_tokens);
	metrics_head(out, "llmux_completion_tokens_total", "counter",
	    "Completion tokens, from the usage the model returned.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "llmux_completion_tokens_total{model="
		    "\"%s\"} %llu\n", prom_label(v[i].name, name, sizeof(name)),
		    (unsigned long long)v[i].m->completion_tokens);

	metrics_head(out, "llmux_in_flight", "gauge",
	    "Requests forwarded to a model whose response is not yet fully "
	    "delivered.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "llmux_in_flight{model=\"%s\"} %u\n",
		    prom_label(v[i].name, name, sizeof(name)),
		    v[i].in_flight);

	metrics_head(out, "llmux_queue_depth", "gauge",
	    "Requests waiting for their model.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "llmux_queue_depth{model=\"%s\"} %u\n",
		    prom_label(v[i].name, name, sizeof(name)), v[i].queued);

	metrics_head(out, "llmux_model_ready", "gauge",
	    "1 when the proxy dispatches requests to the model.");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "llmux_model_ready{model=\"%s\"} %d\n",
		    prom_label(v[i].name, name, sizeof(name)),
		    v[i].ready ? 1 : 0);

	metrics_head(out, "llmux_upstream_errors_total", "counter",
	    "Failed exchanges with a model server, by kind.");
	for (i = 0; i < n; i++) {
		prom_label(v[i].name, name, sizeof(name));
		for (k = 0; k < UPERR__COUNT; k++)
			evbuffer_add_printf(out, "llmux_upstream_errors_total{"
			    "model=\"%s\",kind=\"%s\"} %llu\n", name,
			    metrics_uperr_names[k],
			    (unsigned long long)v[i].m->upstream_errors[k]);
	}
}

void
metrics_format(struct evbuffer *out, const struct metrics_model_view *v,
    size_t n, const struct metrics_proxy_view *p)
{
	int	k;

	metrics_format_models(out, v, n);

	metrics_head(out, "llmux_proxy_rejected_total", "counter",
	    "Requests the proxy answered with an error itself, by code.");
	for (k = 0; k < REJ__COUNT; k++)
		evbuffer_add_printf(out,
		    "llmux_proxy_rejected_total{code=\"%s\"} %llu\n",
		    metrics_reject_names[k], (unsigned long long)p->rejected[k]);

	metrics_one(out, "llmux_proxy_connections", "gauge",
	    "Open client connections on the proxy port.", p->connections);
	metrics_one(out, "llmux_proxy_max_connections", "gauge",
	    "The connection limit of the proxy port.", p->max_connections);
	metrics_one(out, "llmux_proxy_buffered_body_bytes", "gauge",
	    "Request body bytes the proxy holds (max_buffered_body_mb).",
	    p->body_bytes);
	metrics_one(out, "llmux_proxy_max_buffered_body_bytes", "gauge",
	    "The limit of request body bytes the proxy holds.",
	    p->max_body_bytes);
	metrics_one(out, "llmux_proxy_accept_paused", "gauge",
	    "1 while the proxy does not accept new connections.",
	    p->accept_paused ? 1 : 0);
	metrics_one(out, "llmux_proxy_waiting_for_config", "gauge",
	    "Requests held until the supervisor sends the configuration.",
	    p->waiting_for_config);
	metrics_one(out, "llmux_supervisor_connected", "gauge",
	    "1 while the proxy is connected to the supervisor.",
	    p->supervisor_connected ? 1 : 0);
}

/* ---- the process ------------------------------------------------------- */

void
metrics_process_read(struct metrics_process *p)
{
	FILE			*f;
	DIR			*d;
	struct dirent		*de;
	struct rlimit		 rl;
	char			 buf[1024], *s;
	struct timespec		 real, boot;
	unsigned long long	 utime, stime, start, vsize;
	long long		 rss;
	long			 tick = sysconf(_SC_CLK_TCK);
	long			 page = sysconf(_SC_PAGESIZE);
	size_t			 len;

	memset(p, 0, sizeof(*p));
	if ((f = fopen("/proc/self/stat", "r")) == NULL)
		return;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* The name in parentheses may hold anything: start after the last. */
	if ((s = strrchr(buf, ')')) == NULL || sscanf(s + 1,
	    " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
	    "%*d %*d %*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize,
	    &rss) != 5 || tick <= 0 || page <= 0)
		return;
	/*
	 * The start is in ticks since boot; the boot's time is the wall
	 * clock less CLOCK_BOOTTIME (the unit's ProcSubset=pid hides
	 * /proc/stat and its btime).
	 */
	if (clock_gettime(CLOCK_REALTIME, &real) != 0 ||
	    clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
		return;
	p->have = true;
	p->cpu_seconds = (double)(utime + stime) / (double)tick;
	p->resident_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	p->virtual_bytes = vsize;
	p->start_time = (double)(real.tv_sec - boot.tv_sec) +
	    (double)(real.tv_nsec - boot.tv_nsec) / 1e9 +
	    (double)start / (double)tick;
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				p->open_fds++;
		closedir(d);
		p->open_fds--;		/* the directory's own */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		p->max_fds = rl.rlim_cur;
}

void
metrics_format_process(struct evbuffer *out, const struct metrics_process *p)
{
	metrics_head(out, "llmux_build_info", "gauge",
	    "1, labelled with the version of llmux-proxyd.");
	evbuffer_add_printf(out, "llmux_build_info{version=\"%s\"} 1\n",
	    LLMUX_VERSION);
	if (!p->have)
		return;
	metrics_one_double(out, "process_cpu_seconds_total", "counter",
	    "User and system CPU time of llmux-proxyd, in seconds.",
	    p->cpu_seconds);
	metrics_one(out, "process_resident_memory_bytes", "gauge",
	    "Resident memory of llmux-proxyd, in bytes.", p->resident_bytes);
	metrics_one(out, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory of llmux-proxyd, in bytes.", p->virtual_bytes);
	metrics_one(out, "process_open_fds", "gauge",
	    "File descriptors llmux-proxyd holds open.", p->open_fds);
	metrics_one(out, "process_max_fds", "gauge",
	    "The limit of open file descriptors of llmux-proxyd.", p->max_fds);
	metrics_one_double(out, "process_start_time_seconds", "gauge",
	    "When llmux-proxyd started, in seconds since the epoch.",
	    p->start_time);
}
