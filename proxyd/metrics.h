/*
 * metrics.h -- the proxy's Prometheus metrics: per-model counters kept by
 * the request path, and the text format written for /metrics. Formatting
 * is pure (values in, text out) so it is unit-tested on its own.
 */
#ifndef LLMUX_PROXY_METRICS_H
#define LLMUX_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Buckets of llmux_request_queue_wait_seconds (a switch takes seconds). */
#define METRICS_WAIT_BUCKETS	14
extern const double metrics_wait_bounds[METRICS_WAIT_BUCKETS];

/* Why an upstream exchange failed (llmux_upstream_errors_total{kind}). */
enum upstream_error {
	UPERR_CONNECT,		/* could not connect */
	UPERR_CLOSED,		/* closed before the response ended */
	UPERR_BAD_RESPONSE,	/* not HTTP, or a head over the limit */
	UPERR_TIMEOUT,		/* silent for upstream_timeout_secs */
	UPERR__COUNT
};

/* Proxy-made error answers (llmux_proxy_rejected_total{code}). */
enum reject_code {
	REJ_BAD_REQUEST,	/* 400 */
	REJ_UNAUTHORIZED,	/* 401 */
	REJ_NOT_FOUND,		/* 404 path */
	REJ_MODEL_NOT_FOUND,	/* 404 model */
	REJ_TOO_LARGE,		/* 413 */
	REJ_HEADERS_TOO_LARGE,	/* 431 */
	REJ_QUEUE_FULL,		/* 429 */
	REJ_TIMEOUT,		/* 504 */
	REJ_UNAVAILABLE,	/* 503 */
	REJ_MODEL_FAILED,	/* 503 failed wake */
	REJ_MANUAL_MODE,	/* 503 */
	REJ_BAD_GATEWAY,	/* 502 */
	REJ_UPSTREAM_TIMEOUT,	/* 504 model server silent */
	REJ_REQUEST_TIMEOUT,	/* 408 head or body too slow */
	REJ_NOT_IMPLEMENTED,	/* 501 transfer coding */
	REJ_TOO_MANY_CONNECTIONS, /* 503 connection caps */
	REJ_BUFFERS_FULL,	/* 503 max_buffered_body_mb */
	REJ__COUNT
};

struct model_metrics {
	uint64_t	requests[2];		/* [waited] */
	uint64_t	wait_bucket[METRICS_WAIT_BUCKETS]; /* not cumulative */
	uint64_t	wait_count;
	double		wait_sum;
	uint64_t	upstream_errors[UPERR__COUNT];
};

/* What /metrics shows of one model. */
struct metrics_model_view {
	const char			*name;
	const struct model_metrics	*m;
	uint32_t			 in_flight;
	uint32_t			 queued;
	bool				 ready;
};

/* What /metrics shows of the proxy itself. */
struct metrics_proxy_view {
	uint32_t	connections;
	uint32_t	max_connections;
	bool		accept_paused;
	bool		supervisor_connected;
	uint64_t	rejected[REJ__COUNT];
	uint32_t	waiting_for_config;
	uint64_t	body_bytes;		/* request bodies held */
	uint64_t	max_body_bytes;		/* max_buffered_body_mb */
};

void		 metrics_observe_wait(struct model_metrics *, double secs);
const char	*metrics_reject_name(enum reject_code);
const char	*metrics_upstream_error_name(enum upstream_error);
/* Append the whole exposition (HELP, TYPE, samples) to out. */
void		 metrics_format(struct evbuffer *out,
		    const struct metrics_model_view *, size_t n,
		    const struct metrics_proxy_view *);
/* A label value escaped as Prometheus wants (\\, \", \n) into buf. */

#endif
