/*
 * test_proxy_metrics.c -- the Prometheus text of llmux-proxyd: names and
 * labels of llmux 0.7's metrics, cumulative histogram buckets, label
 * escaping, the proxy's own gauges, the request histograms, answers by
 * class, tokens, and the process metrics.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "prom.h"
#include "proxyd/metrics.h"
#include "unit.h"

static char *
format(const struct metrics_model_view *v, size_t n,
    const struct metrics_proxy_view *p)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 len;
	char		*s;

	metrics_format(b, v, n, p);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return (s);
}

#define HAS(text, line) ck_assert_msg(strstr(text, line) != NULL, \
	"missing: %s", line)

START_TEST(test_seed_names)
{
	struct model_metrics		m = { 0 };
	struct metrics_model_view	v = { "llama", &m, 2, 5, true };
	struct metrics_proxy_view	p = { 0 };
	char				*t;

	m.requests[0] = 7;
	m.requests[1] = 3;
	p.connections = 4;
	p.max_connections = 100;
	p.rejected[REJ_QUEUE_FULL] = 2;
	p.supervisor_connected = true;
	t = format(&v, 1, &p);
	HAS(t, "# TYPE llmux_requests_total counter\n");
	HAS(t, "llmux_requests_total{model=\"llama\",waited=\"false\"} 7\n");
	HAS(t, "llmux_requests_total{model=\"llama\",waited=\"true\"} 3\n");
	HAS(t, "# TYPE llmux_in_flight gauge\n");
	HAS(t, "llmux_in_flight{model=\"llama\"} 2\n");
	HAS(t, "llmux_queue_depth{model=\"llama\"} 5\n");
	HAS(t, "llmux_model_ready{model=\"llama\"} 1\n");
	HAS(t, "llmux_upstream_errors_total{model=\"llama\",kind=\"closed\"} 0\n");
	HAS(t, "llmux_proxy_rejected_total{code=\"queue_full\"} 2\n");
	HAS(t, "llmux_proxy_connections 4\n");
	HAS(t, "llmux_proxy_max_connections 100\n");
	HAS(t, "llmux_supervisor_connected 1\n");
	HAS(t, "llmux_proxy_accept_paused 0\n");
	free(t);
}
END_TEST

START_TEST(test_histogram)
{
	struct model_metrics		m = { 0 };
	struct metrics_model_view	v = { "m", &m, 0, 0, false };
	struct metrics_proxy_view	p = { 0 };
	char				*t;

	metrics_observe_wait(&m, 0.001);	/* le 0.005 */
	metrics_observe_wait(&m, 0.3);		/* le 0.5 */
	metrics_observe_wait(&m, 3.0);		/* le 5 */
	metrics_observe_wait(&m, 1000.0);	/* only +Inf */
	t = format(&v, 1, &p);
	HAS(t, "# TYPE llmux_request_queue_wait_seconds histogram\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"0.005\"} 1\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"0.25\"} 1\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"0.5\"} 2\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"5\"} 3\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"300\"} 3\n");
	HAS(t, "llmux_request_queue_wait_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n");
	HAS(t, "llmux_request_queue_wait_seconds_count{model=\"m\"} 4\n");
	HAS(t, "llmux_request_queue_wait_seconds_sum{model=\"m\"} 1003.301000\n");
	free(t);
}
END_TEST

START_TEST(test_requests)
{
	struct model_metrics		m = { 0 };
	struct metrics_model_view	v = { "m", &m, 0, 0, true };
	struct metrics_proxy_view	p = { 0 };
	struct metrics_process		pr;
	struct evbuffer			*b;
	char				*t;

	metrics_observe_request(&m, 200, 0.3, 0.02);
	metrics_observe_request(&m, 200, 2.0, -1);	/* no body: no ttft */
	metrics_observe_request(&m, 404, 0.001, -1);
	metrics_observe_request(&m, 503, 0.001, -1);
	m.prompt_tokens = 12;
	m.completion_tokens = 7;
	t = format(&v, 1, &p);
	HAS(t, "# TYPE llmux_request_duration_seconds histogram\n");
	HAS(t, "llmux_request_duration_seconds_bucket{model=\"m\",le=\"0.01\"} 2\n");
	HAS(t, "llmux_request_duration_seconds_bucket{model=\"m\",le=\"0.5\"} 3\n");
	HAS(t, "llmux_request_duration_seconds_count{model=\"m\"} 4\n");
	HAS(t, "# TYPE llmux_time_to_first_token_seconds histogram\n");
	HAS(t, "llmux_time_to_first_token_seconds_bucket{model=\"m\",le=\"0.01\"} 0\n");
	HAS(t, "llmux_time_to_first_token_seconds_bucket{model=\"m\",le=\"0.025\"} 1\n");
	HAS(t, "llmux_time_to_first_token_seconds_count{model=\"m\"} 1\n");
	HAS(t, "llmux_responses_total{model=\"m\",code_class=\"2xx\"} 2\n");
	HAS(t, "llmux_responses_total{model=\"m\",code_class=\"4xx\"} 1\n");
	HAS(t, "llmux_responses_total{model=\"m\",code_class=\"5xx\"} 1\n");
	HAS(t, "llmux_prompt_tokens_total{model=\"m\"} 12\n");
	HAS(t, "llmux_completion_tokens_total{model=\"m\"} 7\n");
	free(t);

	/* The process: this test's own, read from /proc. */
	metrics_process_read(&pr);
	ck_assert(pr.have);
	ck_assert_uint_gt(pr.resident_bytes, 0);
	ck_assert_uint_ge(pr.open_fds, 3);
	ck_assert(pr.start_time > 1.5e9);
	b = evbuffer_new();
	metrics_format_process(b, &pr);
	evbuffer_add(b, "", 1);
	t = (char *)evbuffer_pullup(b, -1);
	HAS(t, "# TYPE process_cpu_seconds_total counter\n");
	HAS(t, "# TYPE process_open_fds gauge\n");
	HAS(t, "llmux_build_info{version=\"");
	evbuffer_free(b);
}
END_TEST

START_TEST(test_escaping)
{
	struct model_metrics		m = { 0 };
	struct metrics_model_view	v = { "a\"b\\c\nd", &m, 0, 0, false };
	struct metrics_proxy_view	p = { 0 };
	char				*t, buf[8];

	t = format(&v, 1, &p);
	HAS(t, "llmux_in_flight{model=\"a\\\"b\\\\c\\nd\"} 0\n");
	free(t);
	/* A short buffer truncates, never overflows. */
	ck_assert_str_eq(prom_label("\"\"\"\"\"", buf, sizeof(buf)),
	    "\\\"\\\"\\\"");
	ck_assert_str_eq(metrics_reject_name(REJ__COUNT), "unknown");
	ck_assert_str_eq(metrics_upstream_error_name(UPERR_CONNECT), "connect");
}
END_TEST

START_TEST(test_no_models)
{
	struct metrics_proxy_view	p = { 0 };
	char				*t;

	p.accept_paused = true;
	p.waiting_for_config = 3;
	t = format(NULL, 0, &p);
	HAS(t, "llmux_proxy_accept_paused 1\n");
	HAS(t, "llmux_proxy_waiting_for_config 3\n");
	ck_assert_ptr_null(strstr(t, "llmux_in_flight{"));
	free(t);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("proxy_metrics");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_seed_names);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_no_models);
	suite_add_tcase(s, tc);
	return (unit_run(s));
}
