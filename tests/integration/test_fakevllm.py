"""test_fakevllm.py -- llmux-fakevllm's command line and HTTP surface:
startup, /health, /v1/models, chat and text completions (shapes, usage,
determinism, max_tokens, streaming framing and include_usage), vLLM's
error answers, --api-key, the VLLM_SERVER_DEV_MODE gating, /v1/embeddings
of a model served with --task embed, and /metrics (the peak of
generations held at once).
Sleep, wake and faults are in test_fakevllm_sleep.py and
test_fakevllm_faults.py."""
import json
import os
import signal
import socket
import subprocess

import harness
from harness import check, http, http_json, test, wait_until

import fakevllm_helpers as fv


@test
def accepts_vllm_options_and_lists_models(env):
    p, port = fv.start(env, "--tensor-parallel-size", "2", "--gpu-memory-utilization",
                       "0.9", "--max-model-len", "4096", "--enforce-eager",
                       "--trust-remote-code", "--dtype", "bfloat16",
                       "--some-future-flag=1", "--another-future-flag", "value",
                       "--disable-log-stats", "-pp", "1",
                       names=("alpha", "beta"))
    status, obj = http_json(port, "GET", "/v1/models")
    check(status == 200, "models: %d" % status)
    check(obj["object"] == "list", obj)
    check([m["id"] for m in obj["data"]] == ["alpha", "beta"], obj)
    for m in obj["data"]:
        check(m["object"] == "model" and m["owned_by"] == "vllm", m)
        check(m["root"] == "org/model-1b" and m["max_model_len"] == 4096, m)
    status, hdrs, body = http(port, "GET", "/health")
    check(status == 200 and body == b"", (status, body))
    status, obj = http_json(port, "GET", "/version")
    check(status == 200 and "version" in obj, obj)
    check(http(port, "GET", "/ping")[0] == 200 and http(port, "POST", "/ping")[0] == 200)
    check(http(port, "POST", "/health")[0] == 405)
    check(http(port, "HEAD", "/health")[0] == 200)
    # Either served name is accepted; answers carry the first one.
    for name in ("alpha", "beta"):
        status, obj = fv.chat(port, "hi", model=name)
        check(status == 200 and obj["model"] == "alpha", obj)
    # No model field: vLLM serves it with its (only) model.
    status, obj = harness.http_json(port, "POST", "/v1/chat/completions",
                                    {"messages": [{"role": "user", "content": "x"}],
                                     "max_tokens": 2})
    check(status == 200, obj)
    out = p.output()
    check('option="--another-future-flag value"' in out, out)
    check('option="--enforce-eager"' in out, out)


@test
def bad_command_lines_are_refused(env):
    exe = harness.binary("llmux-fakevllm")
    cases = [
        ([exe], "serve"),
        ([exe, "serve"], "no model"),
        ([exe, "serve", "m", "--fake-nonsense"], "unknown option --fake-nonsense"),
        ([exe, "serve", "m", "--port", "http"], "--port"),
        ([exe, "serve", "m", "--fake-token-ms", "-5"], "--fake-token-ms"),
        ([exe, "serve", "m", "--fake-fault", "explode"], "unknown fault"),
        ([exe, "serve", "m", "--fake-requests-while-asleep", "maybe"], "asleep"),
        ([exe, "serve", "m", "extra-positional"], "unexpected argument"),
        ([exe, "serve", "m", "--fake-fast=1"], "takes no value"),
    ]
    for argv, why in cases:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        check(r.returncode == 2, "%s: exit %d" % (argv, r.returncode))
        check(why in r.stderr.decode(), "%s: %s" % (argv, r.stderr))
    r = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, timeout=20)
    check(r.returncode == 0 and b"llmux-fakevllm" in r.stdout, r.stdout)
    r = subprocess.run([exe, "serve", "--help"], stderr=subprocess.PIPE, timeout=20)
    check(r.returncode == 0 and b"usage" in r.stderr, r.stderr)


@test
def port_is_bound_at_once_but_served_only_after_startup(env):
    # A startup that takes "forever": the port is bound (no one else can
    # take it) but nobody listens yet, as with vLLM's early bind.
    p, port = fv.start(env, "--fake-startup-ms", "600000", wait=False)
    wait_until(lambda: fv.log_has(p, "loading weights"), what="startup begins")
    check(p.alive(), p.output())
    check(fv.port_refuses(port), "connection accepted before startup finished")
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        raise AssertionError("the port was not bound by llmux-fakevllm")
    except OSError:
        pass
    finally:
        s.close()
    p.signal(signal.SIGTERM)
    rc = fv.exit_code(p)
    check(rc == 0, "SIGTERM during startup: exit %s" % rc)


@test
def health_answers_once_started(env):
    p, port = fv.start(env, "--fake-startup-ms", "200", "--fake-weights-mb", "8")
    check(fv.log_has(p, "Application startup complete."), p.output())
    st = fv.state(port)
    check(st["ready"] and st["weights_loaded"] and not st["is_sleeping"], st)


@test
def weights_that_do_not_fit_fail_startup(env):
    if "asan" in os.path.basename(harness.BUILD):
        print("(skipped under AddressSanitizer, which cannot run in a small "
              "address space)")
        return
    port = harness.free_port()
    p = env.spawn("fakevllm", ["prlimit", "--as=%d" % (256 << 20),
                               harness.binary("llmux-fakevllm"), "serve", "m", "--port",
                               str(port), "--fake-fast", "--fake-weights-mb", "1024"])
    rc = fv.exit_code(p)
    check(rc == 1, "exit %s" % rc)
    check(fv.log_has(p, "cannot allocate the weights"), p.output())


@test
def unresolvable_host_fails_fast(env):
    exe = harness.binary("llmux-fakevllm")
    r = subprocess.run([exe, "serve", "m", "--host", "no-such-host.invalid", "--port",
                        "0", "--fake-fast"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    check(r.returncode == 1 and b"cannot resolve" in r.stdout, r.stdout)


@test
def port_in_use_fails_fast(env):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        exe = harness.binary("llmux-fakevllm")
        r = subprocess.run([exe, "serve", "m", "--port", str(port), "--fake-fast"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        check(r.returncode == 1, "exit %d" % r.returncode)
        check(b"cannot bind" in r.stdout, r.stdout)
    finally:
        s.close()


@test
def out_of_descriptors_backs_off_and_recovers(env):
    port = harness.free_port()
    p = env.spawn("fakevllm", ["prlimit", "--nofile=24:24", harness.binary("llmux-fakevllm"),
                               "serve", "m", "--port", str(port), "--fake-fast"])
    wait_until(lambda: fv.health(port) == 200, timeout=30, what="health")
    socks = []
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        wait_until(lambda: fv.log_has(p, "accept failed"), what="EMFILE logged")
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: fv.health(port) == 200, timeout=30, what="recovered")
    check(p.alive(), p.output())


@test
def chat_completion_shape_and_usage(env):
    p, port = fv.start(env)
    status, obj = fv.chat(port, "Tell me about the sea.", max_tokens=12)
    check(status == 200, obj)
    check(obj["object"] == "chat.completion" and obj["id"].startswith("chatcmpl-"), obj)
    check(obj["model"] == "alpha" and isinstance(obj["created"], int), obj)
    ch = obj["choices"][0]
    check(ch["index"] == 0 and ch["message"]["role"] == "assistant", ch)
    check(ch["finish_reason"] == "length", ch)
    u = obj["usage"]
    check(u["completion_tokens"] == 12, u)
    check(fv.count_tokens(ch["message"]["content"]) == 12, ch)
    check(u["prompt_tokens"] > fv.count_tokens("Tell me about the sea."), u)
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], u)
    # max_completion_tokens wins over max_tokens, as in vLLM.
    status, obj = fv.chat(port, "x", max_tokens=3, max_completion_tokens=5)
    check(obj["usage"]["completion_tokens"] == 5, obj)


@test
def text_completion_shape_and_usage(env):
    p, port = fv.start(env)
    status, obj = http_json(port, "POST", "/v1/completions",
                            {"model": "alpha", "prompt": "Once upon a time",
                             "max_tokens": 7, "temperature": 0})
    check(status == 200, obj)
    check(obj["object"] == "text_completion" and obj["id"].startswith("cmpl-"), obj)
    ch = obj["choices"][0]
    check(fv.count_tokens(ch["text"]) == 7 and ch["finish_reason"] == "length", ch)
    check(obj["usage"]["completion_tokens"] == 7, obj)
    # Token ids as the prompt: one prompt token per id.
    status, obj = http_json(port, "POST", "/v1/completions",
                            {"prompt": [101, 102, 103, 104], "max_tokens": 2})
    check(status == 200 and obj["usage"]["prompt_tokens"] == 4, obj)
    status, obj = http_json(port, "POST", "/v1/completions",
                            {"prompt": ["only one"], "max_tokens": 2})
    check(status == 200, obj)


@test
def output_is_deterministic_at_temperature_zero(env):
    p, port = fv.start(env)
    a = fv.content_of(fv.chat(port, "What is a GPU?", max_tokens=12)[1])
    b = fv.content_of(fv.chat(port, "What is a GPU?", max_tokens=12)[1])
    check(a == b, (a, b))
    c = fv.content_of(fv.chat(port, "What is a CPU?", max_tokens=12)[1])
    check(a != c, (a, c))
    short = fv.content_of(fv.chat(port, "What is a GPU?", max_tokens=5)[1])
    check(a.startswith(short) and len(short) < len(a), (short, a))
    # A fixed seed makes sampling repeatable too.
    s1 = fv.content_of(fv.chat(port, "seeded", max_tokens=10, temperature=1.0,
                               seed=7)[1])
    s2 = fv.content_of(fv.chat(port, "seeded", max_tokens=10, temperature=1.0,
                               seed=7)[1])
    check(s1 == s2, (s1, s2))
    # Without a seed, sampling differs from request to request.
    outs = {fv.content_of(fv.chat(port, "random", max_tokens=10,
                                  temperature=1.0)[1]) for _ in range(5)}
    check(len(outs) > 1, outs)
    # Another model answers the same prompt differently.
    p2, port2 = fv.start(env, names=("gamma",), name="other")
    d = fv.content_of(fv.chat(port2, "What is a GPU?", max_tokens=12,
                              model="gamma")[1])
    check(a != d, (a, d))


@test
def without_max_tokens_the_answer_stops_by_itself(env):
    p, port = fv.start(env)
    status, obj = fv.chat(port, "Say something.", max_tokens=None)
    check(status == 200, obj)
    n = obj["usage"]["completion_tokens"]
    check(obj["choices"][0]["finish_reason"] == "stop" and 8 <= n <= 64, obj)
    check(fv.count_tokens(fv.content_of(obj)) == n, obj)


@test
def chat_stream_framing(env):
    p, port = fv.start(env)
    full = fv.content_of(fv.chat(port, "Stream this.", max_tokens=9)[1])
    s = fv.Stream(port, fv.chat_body("Stream this.", 9, stream=True))
    s.wait()
    check(s.status == 200 and s.error is None, (s.status, s.error))
    check(s.headers["content-type"].startswith("text/event-stream"), s.headers)
    check(s.headers.get("transfer-encoding") == "chunked", s.headers)
    check(s.ended_with_done() and s.events.count("[DONE]") == 1, s.events)
    chunks = s.chunks()
    first = chunks[0]
    check(first["object"] == "chat.completion.chunk", first)
    check(first["choices"][0]["delta"] == {"role": "assistant", "content": ""}, first)
    check(all(c["id"] == first["id"] for c in chunks), chunks)
    check(len(s.tokens()) == 9 and "".join(s.tokens()) == full, (s.tokens(), full))
    reasons = [c["choices"][0]["finish_reason"] for c in chunks]
    check(reasons == [None] * 9 + ["length"], reasons)
    check(all("usage" not in c for c in chunks), chunks)


@test
def chat_stream_include_usage(env):
    p, port = fv.start(env)
    s = fv.Stream(port, fv.chat_body("Count me.", 6, stream=True,
                                     stream_options={"include_usage": True}))
    s.wait()
    chunks = s.chunks()
    last = chunks[-1]
    check(last["choices"] == [] and last["usage"]["completion_tokens"] == 6, last)
    check(last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 6, last)
    check(all("usage" not in c for c in chunks[:-1]), chunks)
    check(s.ended_with_done(), s.events)
    # continuous_usage_stats: every chunk carries the running usage.
    s = fv.Stream(port, fv.chat_body("Count me.", 4, stream=True,
                                     stream_options={"include_usage": True,
                                                     "continuous_usage_stats": True}))
    s.wait()
    counts = [c["usage"]["completion_tokens"] for c in s.chunks()]
    check(counts == [0, 1, 2, 3, 4, 4], counts)


@test
def completion_stream_framing(env):
    p, port = fv.start(env)
    body = {"model": "alpha", "prompt": "Go on", "max_tokens": 5, "temperature": 0}
    status, obj = http_json(port, "POST", "/v1/completions", body)
    full = obj["choices"][0]["text"]
    body.update(stream=True, stream_options={"include_usage": True})
    s = fv.Stream(port, body, path="/v1/completions")
    s.wait()
    chunks = s.chunks()
    check(all(c["object"] == "text_completion" for c in chunks), chunks)
    check("".join(s.tokens()) == full and len(s.tokens()) == 5, (s.tokens(), full))
    check(chunks[-2]["choices"][0]["finish_reason"] == "length", chunks)
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5,
          chunks)
    check(s.ended_with_done(), s.events)


@test
def errors_look_like_vllms(env):
    p, port = fv.start(env, "--max-model-len", "64")
    status, obj = fv.chat(port, "hi", model="nope")
    check(status == 404, obj)
    check(obj == {"error": {"message": "The model `nope` does not exist.",
                            "type": "NotFoundError", "param": "model", "code": 404}}, obj)
    status, obj = http_json(port, "POST", "/v1/completions",
                            {"model": "nope", "prompt": "x"})
    check(status == 404 and obj["error"]["type"] == "NotFoundError", obj)

    def bad(path, body, param=None):
        status, _, data = http(port, "POST", path, body=body,
                               headers={"Content-Type": "application/json"})
        check(status == 400, "%s %r: %d %r" % (path, body, status, data))
        err = json.loads(data)["error"]
        check(err["type"] == "BadRequestError" and err["code"] == 400, err)
        if param is not None:
            check(err["param"] == param, err)

    chatp = "/v1/chat/completions"
    bad(chatp, "{not json")
    bad(chatp, "[1, 2]")
    bad(chatp, "")
    bad(chatp, "{\"messages\": []}", "messages")
    bad(chatp, {"model": "alpha"}, "messages")
    bad(chatp, {"messages": [{"content": "no role"}]}, "messages")
    bad(chatp, {"messages": "hello"}, "messages")
    bad(chatp, fv.chat_body("x", max_tokens=0), "max_tokens")
    bad(chatp, fv.chat_body("x", max_tokens="ten"), "max_tokens")
    bad(chatp, fv.chat_body("x", max_tokens=100), "max_completion_tokens")
    bad(chatp, fv.chat_body("x " * 100), None)
    bad(chatp, fv.chat_body("x", stream_options={"include_usage": True}),
        "stream_options")
    bad(chatp, fv.chat_body("x", n=2), "n")
    bad(chatp, fv.chat_body("x", temperature=-1), "temperature")
    bad(chatp, fv.chat_body("x", stream="yes"), "stream")
    bad(chatp, fv.chat_body("x", model=5), "model")
    bad(chatp, "[" * 10000 + "]" * 10000)
    bad(chatp, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\u0000b\"}]}")
    bad("/v1/completions", {"max_tokens": 2}, "prompt")
    bad("/v1/completions", {"prompt": ["a", "b"]}, "prompt")
    bad("/v1/completions", {"prompt": [1, -2]}, "prompt")
    bad("/v1/completions", {"prompt": []}, "prompt")
    status, _, data = http(port, "GET", "/v1/chat/completions")
    check(status == 405 and json.loads(data) == {"detail": "Method Not Allowed"}, data)
    status, _, data = http(port, "GET", "/v2/nothing")
    check(status == 404 and json.loads(data) == {"detail": "Not Found"}, data)
    # The server is still fine.
    check(fv.chat(port, "still there?", max_tokens=2)[0] == 200)


@test
def api_key_guards_v1_only(env):
    p, port = fv.start(env, "--api-key", "sekret")
    status, _, data = http(port, "GET", "/v1/models")
    check(status == 401 and json.loads(data) == {"error": "Unauthorized"}, data)
    status, _, data = http(port, "GET", "/v1/models",
                           headers={"Authorization": "Bearer wrong"})
    check(status == 401, data)
    status, _, data = http(port, "GET", "/v1/models",
                           headers={"Authorization": "Bearer sekret"})
    check(status == 200, data)
    check(fv.health(port) == 200)


@test
def dev_routes_need_dev_mode(env):
    dev_paths = [("POST", "/sleep"), ("POST", "/wake_up"), ("GET", "/is_sleeping"),
                 ("POST", "/collective_rpc"), ("POST", "/reset_prefix_cache")]
    admin_paths = [("GET", "/fake/state"), ("GET", "/fake/faults"),
                   ("POST", "/fake/faults")]
    p, port = fv.start(env, dev=False)
    for method, path in dev_paths + admin_paths:
        status, _, data = http(port, method, path)
        check(status == 404 and json.loads(data) == {"detail": "Not Found"},
              "%s %s: %d %r" % (method, path, status, data))
    p2, port2 = fv.start(env, "--fake-admin", dev=False, name="admin")
    for method, path in dev_paths:
        check(http(port2, method, path)[0] == 404, path)
    check(http(port2, "GET", "/fake/state")[0] == 200)
    p3, port3 = fv.start(env, name="dev")
    check(http(port3, "GET", "/is_sleeping")[0] == 200)
    check(http(port3, "GET", "/fake/state")[0] == 200)
    check(http(port3, "GET", "/sleep")[0] == 405)


@test
def embeddings_with_task_embed(env):
    import base64
    import math
    import struct
    p, port = fv.start(env, "--task", "embed", names=("emb", "emb-alias"))
    body = {"model": "emb-alias", "input": ["hello there", "world"]}
    status, obj = fv.post(port, "/v1/embeddings", body)
    check(status == 200 and obj["object"] == "list" and obj["model"] == "emb", obj)
    check(obj["id"].startswith("embd-") and isinstance(obj["created"], int), obj)
    check([d["index"] for d in obj["data"]] == [0, 1] and
          all(d["object"] == "embedding" for d in obj["data"]), obj)
    v0, v1 = obj["data"][0]["embedding"], obj["data"][1]["embedding"]
    check(len(v0) == 32 and abs(math.sqrt(sum(x * x for x in v0)) - 1) < 1e-5, v0)
    check(v0 != v1, "different inputs, different vectors")
    # A token per word (up to 8 characters), and one to begin each input.
    check(obj["usage"] == {"prompt_tokens": (1 + 2) + (1 + 1), "total_tokens": 5,
                           "completion_tokens": 0, "prompt_tokens_details": None}, obj)
    # The same input, the same vector; base64 is its float32 bytes.
    status, again = fv.post(port, "/v1/embeddings", {"input": "hello there",
                                                     "encoding_format": "base64"})
    raw = base64.b64decode(again["data"][0]["embedding"])
    check(status == 200 and len(raw) == 128, again)
    check(all(abs(a - b) < 1e-6 for a, b in zip(struct.unpack("<32f", raw), v0)),
          "base64 holds the same floats")
    status, obj = fv.post(port, "/v1/embeddings", {"input": [[1, 2, 3], [4]], "dimensions": 8})
    check(status == 200 and [len(d["embedding"]) for d in obj["data"]] == [8, 8] and
          obj["usage"]["prompt_tokens"] == 4, obj)
    for bad, param in (({}, "input"), ({"input": []}, "input"), ({"input": [[]]}, "input"),
                       ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
                       ({"input": "x", "dimensions": 33}, "dimensions"),
                       ({"input": [-1]}, "input")):
        status, obj = fv.post(port, "/v1/embeddings", bad)
        check(status == 400 and obj["error"]["param"] == param, (bad, obj))
    status, obj = fv.post(port, "/v1/embeddings", {"model": "x", "input": "x"})
    check(status == 404 and obj["error"]["type"] == "NotFoundError", obj)
    # Only the routes of its task: no chat on an embedding model, and no
    # embeddings on a generating one.
    check(fv.chat(port, "hi", model="emb")[0] == 404, "no chat with --task embed")
    p2, port2 = fv.start(env, name="fakevllm-gen")
    status, obj = fv.post(port2, "/v1/embeddings", {"input": "x"})
    check(status == 404 and obj == {"detail": "Not Found"}, obj)


@test
def metrics_show_the_peak_of_generations(env):
    p, port = fv.start(env, "--fake-token-ms", "50")
    streams = [fv.Stream(port, fv.chat_body("long %d" % i, 100, stream=True)) for i in range(3)]
    wait_until(lambda: all(len(s.tokens()) >= 1 for s in streams), what="3 streams running")
    st, _, text = harness.http(port, "GET", "/metrics")
    text = text.decode()
    check(st == 200 and 'fakevllm_requests_in_flight{model_name="alpha"} 3' in text, text)
    check('vllm:num_requests_running{engine="0",model_name="alpha"} 3' in text, text)
    for s in streams:
        s.close()
    wait_until(lambda: 'fakevllm_requests_in_flight{model_name="alpha"} 0' in
               harness.http(port, "GET", "/metrics")[2].decode(), what="the streams to end")
    text = harness.http(port, "GET", "/metrics")[2].decode()
    check('fakevllm_requests_in_flight_peak{model_name="alpha"} 3' in text, text)


@test
def sigterm_exits_cleanly_mid_stream(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    s = fv.Stream(port, fv.chat_body("long", 5000, stream=True))
    wait_until(lambda: len(s.tokens()) >= 2, what="tokens flowing")
    p.signal(signal.SIGTERM)
    rc = fv.exit_code(p)
    check(rc == 0, "exit %s" % rc)
    s.wait()
    check(fv.log_has(p, "Shutting down"), p.output())


if __name__ == "__main__":
    harness.main()
