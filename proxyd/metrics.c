/*
 * metrics.c -- Prometheus text exposition of the proxy's metrics, with the
 * seed's names (llmux_requests_total{model,waited},
 * llmux_request_queue_wait_seconds{model}, llmux_in_flight{model}) and the
 * proxy's own (queue depth, upstream errors, rejections, connections).
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "prom.h"

const double metrics_wait_bounds[METRICS_WAIT_BUCKETS] = {
	0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300
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
metrics_observe_wait(struct model_metrics *m, double secs)
{
	int	i;

	for (i = 0; i < METRICS_WAIT_BUCKETS; i++) {
		if (secs <= metrics_wait_bounds[i]) {
			m->wait_bucket[i]++;
			break;
		}
	}
	m->wait_count++;
	m->wait_sum += secs;
}

static void
metrics_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A bucket bound as Prometheus writes it ("0.005", "1", "+Inf"). */
static const char *
metrics_bound(double b, char *buf, size_t len)
{
	snprintf(buf, len, "%g", b);
	return (buf);
}

static void
metrics_format_models(struct evbuffer *out,
    const struct metrics_model_view *v, size_t n)
{
	char		 name[512], bound[32];
	uint64_t	 cum;
	size_t		 i;
	int		 b, k;

	metrics_head(out, "llmux_requests_total", "counter",
	    "Requests forwarded to a model, by whether they waited in a queue.");
	for (i = 0; i < n; i++) {
		prom_label(v[i].name, name, sizeof(name));
		for (k = 0; k < 2; k++)
			evbuffer_add_printf(out, "llmux_requests_total{model=\"%s\","
			    "waited=\"%s\"} %llu\n", name, k ? "true" : "false",
			    (unsigned long long)v[i].m->requests[k]);
	}

	metrics_head(out, "llmux_request_queue_wait_seconds", "histogram",
	    "Time requests waited for their model to be ready.");
	for (i = 0; i < n; i++) {
		prom_label(v[i].name, name, sizeof(name));
		cum = 0;
		for (b = 0; b < METRICS_WAIT_BUCKETS; b++) {
			cum += v[i].m->wait_bucket[b];
			evbuffer_add_printf(out,
			    "llmux_request_queue_wait_seconds_bucket{model=\"%s\","
			    "le=\"%s\"} %llu\n", name,
			    metrics_bound(metrics_wait_bounds[b], bound,
			    sizeof(bound)), (unsigned long long)cum);
		}
		evbuffer_add_printf(out,
		    "llmux_request_queue_wait_seconds_bucket{model=\"%s\","
		    "le=\"+Inf\"} %llu\n", name,
		    (unsigned long long)v[i].m->wait_count);
		evbuffer_add_printf(out,
		    "llmux_request_queue_wait_seconds_sum{model=\"%s\"} %.6f\n",
		    name, v[i].m->wait_sum);
		evbuffer_add_printf(out,
		    "llmux_request_queue_wait_seconds_count{model=\"%s\"} %llu\n",
		    name, (unsigned long long)v[i].m->wait_count);
	}

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

	metrics_head(out, "llmux_proxy_connections", "gauge",
	    "Open client connections on the proxy port.");
	evbuffer_add_printf(out, "llmux_proxy_connections %u\n",
	    p->connections);
	metrics_head(out, "llmux_proxy_max_connections", "gauge",
	    "The connection limit of the proxy port.");
	evbuffer_add_printf(out, "llmux_proxy_max_connections %u\n",
	    p->max_connections);
	metrics_head(out, "llmux_proxy_buffered_body_bytes", "gauge",
	    "Request body bytes the proxy holds (max_buffered_body_mb).");
	evbuffer_add_printf(out, "llmux_proxy_buffered_body_bytes %llu\n",
	    (unsigned long long)p->body_bytes);
	metrics_head(out, "llmux_proxy_max_buffered_body_bytes", "gauge",
	    "The limit of request body bytes the proxy holds.");
	evbuffer_add_printf(out, "llmux_proxy_max_buffered_body_bytes %llu\n",
	    (unsigned long long)p->max_body_bytes);
	metrics_head(out, "llmux_proxy_accept_paused", "gauge",
	    "1 while the proxy does not accept new connections.");
	evbuffer_add_printf(out, "llmux_proxy_accept_paused %d\n",
	    p->accept_paused ? 1 : 0);
	metrics_head(out, "llmux_proxy_waiting_for_config", "gauge",
	    "Requests held until the supervisor sends the configuration.");
	evbuffer_add_printf(out, "llmux_proxy_waiting_for_config %u\n",
	    p->waiting_for_config);
	metrics_head(out, "llmux_supervisor_connected", "gauge",
	    "1 while the proxy is connected to the supervisor.");
	evbuffer_add_printf(out, "llmux_supervisor_connected %d\n",
	    p->supervisor_connected ? 1 : 0);
}
