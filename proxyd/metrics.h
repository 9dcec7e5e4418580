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
/* Of llmux_request_duration_seconds and llmux_time_to_first_token_seconds. */
#define METRICS_DURATION_BUCKETS 14
extern const double metrics_duration_bounds[METRICS_DURATION_BUCKETS];
#define METRICS_TTFT_BUCKETS	14
extern const double metrics_ttft_bounds[METRICS_TTFT_BUCKETS];
#define METRICS_MAX_BUCKETS	14

/* A histogram's counts: bucket[i] counts values in (bound i-1, bound i]. */
struct metrics_hist {
	uint64_t	bucket[METRICS_MAX_BUCKETS];	/* not cumulative */
	uint64_t	count;
	double		sum;
};

/* Status code classes of llmux_responses_total (1xx never ends one). */
enum metrics_class {
	MCLASS_2XX, MCLASS_3XX, MCLASS_4XX, MCLASS_5XX, MCLASS__COUNT
};

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
	uint64_t		requests[2];		/* [waited] */
	struct metrics_hist	wait;
	struct metrics_hist	duration;	/* head to last byte out */
	struct metrics_hist	ttft;		/* to the first body byte */
	uint64_t		responses[MCLASS__COUNT];
	uint64_t		prompt_tokens;	/* from the answers' usage */
	uint64_t		completion_tokens;
	uint64_t		upstream_errors[UPERR__COUNT];
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

/* The process's own figures (metrics_process_read), Prometheus' names. */
struct metrics_process {
	bool		have;			/* /proc could be read */
	double		cpu_seconds;		/* user + system */
	uint64_t	resident_bytes;
	uint64_t	virtual_bytes;
	uint64_t	open_fds;
	uint64_t	max_fds;
	double		start_time;		/* unix seconds */
};

void		 metrics_observe_wait(struct model_metrics *, double secs);
/* A request of the model was answered with status (0: none was sent). */
void		 metrics_observe_request(struct model_metrics *, int status,
		    double secs, double ttft_secs);
void		 metrics_hist_observe(struct metrics_hist *, const double *,
		    int nbounds, double);
/* Read /proc/self; p->have is false when it cannot be read. */
void		 metrics_process_read(struct metrics_process *);
const char	*metrics_reject_name(enum reject_code);
const char	*metrics_upstream_error_name(enum upstream_error);
/* Append the whole exposition (HELP, TYPE, samples) to out. */
void		 metrics_format(struct evbuffer *out,
		    const struct metrics_model_view *, size_t n,
		    const struct metrics_proxy_view *);
/* llmux_build_info and the process_* metrics. */
void		 metrics_format_process(struct evbuffer *out,
		    const struct metrics_process *);

#endif
