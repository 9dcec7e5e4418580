"""test_request_metrics.py -- the request metrics of /metrics against a
real supervisor and proxy in front of two llmux-fakevllm models: a
non-streamed and a streamed request (stream_options.include_usage) are
counted in the duration and time-to-first-token histograms and as 2xx
answers, the prompt and completion tokens are those of the usage the
model returned, a stream without usage adds no tokens, a proxy-made 429
/ 404 of a model counts as 4xx; llmux_build_info and the process
metrics are there; `promtool check metrics` (Debian's prometheus
package) passes on the whole exposition, or is skipped saying so when
promtool is not installed (tools/install-deps.sh installs it)."""
import json
import shutil
import subprocess
import time

import harness
from harness import check, test
from switch_helpers import Stack

MSG = [{"role": "user", "content": "count the tokens, please"}]


def usage_of_stream(events):
    """The usage of the last chunk that carries one (or None), and the text."""
    usage, text = None, ""
    for e in events:
        if e == "[DONE]":
            continue
        obj = json.loads(e)
        if obj.get("usage"):
            usage = obj["usage"]
        for c in obj.get("choices", []):
            text += c.get("delta", {}).get("content") or ""
    return usage, text


@test
def request_metrics_and_tokens(env):
    started = time.time()
    s = Stack(env, {"a": {}, "b": {}}).start()
    # A non-streamed request: its usage.
    st, body = s.chat("a", text="hello there", max_tokens=7)
    check(st == 200, body)
    u1 = body["usage"]
    # A streamed one with include_usage: the usage of its last chunk.
    st, events = harness.sse_events(s.port, "/v1/chat/completions", {
        "model": "a", "messages": MSG, "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True}})
    check(st == 200, events)
    u2, text = usage_of_stream(events)
    check(u2 is not None and text, events)
    # A stream without usage: counted, but it brings no tokens.
    st, events = harness.sse_events(s.port, "/v1/chat/completions", {
        "model": "a", "messages": MSG, "max_tokens": 3, "stream": True})
    check(st == 200 and usage_of_stream(events)[0] is None, events)
    # An unknown model is no model's: it shows in the rejections only.
    st, _ = s.chat("nope")
    check(st == 404, st)

    m = lambda name, **kw: s.metric(name, **kw)  # noqa: E731
    want_prompt = u1["prompt_tokens"] + u2["prompt_tokens"]
    want_completion = u1["completion_tokens"] + u2["completion_tokens"]
    check(want_prompt > 0 and want_completion == 7 + 5, (u1, u2))
    harness.wait_until(lambda: m("llmux_request_duration_seconds_count", model="a") == 3, 10,
                       "the three requests of a to be counted")
    check(m("llmux_prompt_tokens_total", model="a") == want_prompt, s.metrics())
    check(m("llmux_completion_tokens_total", model="a") == want_completion, s.metrics())
    check(m("llmux_prompt_tokens_total", model="b") == 0, s.metrics())
    check(m("llmux_time_to_first_token_seconds_count", model="a") == 3, s.metrics())
    check(m("llmux_time_to_first_token_seconds_bucket", model="a", le="+Inf") == 3,
          s.metrics())
    check(m("llmux_request_duration_seconds_bucket", model="a", le="600") == 3, s.metrics())
    check(m("llmux_request_duration_seconds_sum", model="a") > 0, s.metrics())
    check(m("llmux_responses_total", model="a", code_class="2xx") == 3, s.metrics())
    check(m("llmux_responses_total", model="a", code_class="4xx") == 0, s.metrics())
    check(m("llmux_request_duration_seconds_count", model="b") == 0, s.metrics())
    check(m("llmux_proxy_rejected_total", code="model_not_found") == 1, s.metrics())
    check(m("llmux_build_info", version=s.status()["supervisor"]["version"]) == 1, s.metrics())
    check(m("process_cpu_seconds_total") is not None, s.metrics())
    for name in ("process_resident_memory_bytes", "process_virtual_memory_bytes",
                 "process_open_fds", "process_max_fds", "process_start_time_seconds"):
        check((m(name) or 0) > 0, "%s: %s" % (name, m(name)))
    check(started - 5 <= m("process_start_time_seconds") <= time.time() + 5,
          (started, m("process_start_time_seconds")))
    check(m("llmux_request_queue_wait_seconds_count", model="a") == 1, s.metrics())

    promtool = shutil.which("promtool")
    if promtool is None:
        harness.skip("promtool is not installed (the prometheus package): "
                     "the exposition was not checked by it")
    text = s.metrics()
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(p.returncode == 0, "promtool check metrics:\n%s" % p.stdout.decode())


if __name__ == "__main__":
    harness.main()
