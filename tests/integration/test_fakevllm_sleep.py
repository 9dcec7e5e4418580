"""test_fakevllm_sleep.py -- llmux-fakevllm's sleep mode, as vLLM's:
levels 1 and 2 (and 0), wake_up with tags, reload_weights after a level-2
wake (for embeddings too), the sleep modes abort/wait/keep for requests in
flight, requests that arrive while asleep, /is_sleeping, collective_rpc,
reset_prefix_cache, and the memory that moves like GPU weights."""
import json
import threading

import harness
from harness import check, http, test, wait_until

import fakevllm_helpers as fv


def is_sleeping(port):
    status, obj = harness.http_json(port, "GET", "/is_sleeping")
    check(status == 200, obj)
    return obj["is_sleeping"]


def ok_empty(port, path):
    status, _, data = http(port, "POST", path, timeout=30)
    check(status == 200 and data == b"", "%s: %d %r" % (path, status, data))


@test
def level1_sleep_queues_requests_until_wake(env):
    p, port = fv.start(env)
    before = fv.content_of(fv.chat(port, "remember me", max_tokens=10)[1])
    check(not is_sleeping(port))
    ok_empty(port, "/sleep?level=1")
    check(is_sleeping(port))
    st = fv.state(port)
    check(st["sleep_level"] == 1 and st["sleeping_tags"] == ["weights", "kv_cache"], st)
    check(not st["weights_discarded"] and not st["weights_loaded"], st)
    # What does not need the weights still answers.
    check(fv.health(port) == 200)
    check(http(port, "GET", "/v1/models")[0] == 200)
    # A request while asleep waits in the scheduler (vLLM queues it).
    s = fv.Stream(port, fv.chat_body("remember me", 10, stream=True))
    wait_until(lambda: fv.state(port)["requests_waiting"] == 1, what="request queued")
    check(not s.done.is_set() and s.tokens() == [], s.events)
    ok_empty(port, "/wake_up")
    s.wait()
    check("".join(s.tokens()) == before, (s.tokens(), before))
    check(not is_sleeping(port))
    after = fv.content_of(fv.chat(port, "remember me", max_tokens=10)[1])
    check(after == before, (before, after))


@test
def level2_wake_needs_reload_weights(env):
    p, port = fv.start(env)
    before = fv.content_of(fv.chat(port, "deep sleep", max_tokens=10)[1])
    ok_empty(port, "/sleep?level=2")
    st = fv.state(port)
    check(st["sleep_level"] == 2 and st["weights_discarded"], st)
    ok_empty(port, "/wake_up")
    check(not is_sleeping(port))
    status, obj = fv.chat(port, "deep sleep", max_tokens=10)
    check(status == 500 and obj["error"]["type"] == "InternalServerError", obj)
    check("reload_weights" in obj["error"]["message"], obj)
    # Streamed: a 200 whose events carry the error, then [DONE].
    s = fv.Stream(port, fv.chat_body("deep sleep", 10, stream=True))
    s.wait()
    check(s.status == 200 and s.ended_with_done(), s.events)
    check(json.loads(s.events[-2])["error"]["code"] == 500, s.events)
    status, obj = fv.post(port, "/collective_rpc", {"method": "reload_weights"})
    check(status == 200 and obj == {"results": [None]}, obj)
    status, obj = fv.post(port, "/reset_prefix_cache")
    check(status == 200 and obj == {"success": True}, obj)
    after = fv.content_of(fv.chat(port, "deep sleep", max_tokens=10)[1])
    check(after == before, (before, after))
    st = fv.state(port)
    check(st["sleeps"] == 1 and st["wakes"] == 1 and st["reloads"] == 1, st)
    check(st["prefix_cache_resets"] == 1, st)


@test
def level2_wake_needs_reload_weights_for_embeddings_too(env):
    p, port = fv.start(env, "--task", "embed")
    body = {"model": "alpha", "input": "deep sleep", "encoding_format": "base64"}
    status, before = fv.post(port, "/v1/embeddings", body)
    check(status == 200, before)
    ok_empty(port, "/sleep?level=2")
    ok_empty(port, "/wake_up")
    status, obj = fv.post(port, "/v1/embeddings", body)
    check(status == 500 and "reload_weights" in obj["error"]["message"], obj)
    status, obj = fv.post(port, "/collective_rpc", {"method": "reload_weights"})
    check(status == 200, obj)
    status, after = fv.post(port, "/v1/embeddings", body)
    check(status == 200 and after["data"] == before["data"], (before, after))


@test
def wake_up_with_tags(env):
    p, port = fv.start(env)
    ok_empty(port, "/sleep?level=2")
    # Waking only the KV cache leaves the weights asleep: reload refused.
    ok_empty(port, "/wake_up?tags=kv_cache")
    check(fv.state(port)["sleeping_tags"] == ["weights"])
    status, obj = fv.post(port, "/collective_rpc", {"method": "reload_weights"})
    check(status == 500, obj)
    ok_empty(port, "/wake_up?tags=weights")
    check(not is_sleeping(port))
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    check(fv.chat(port, "tags")[0] == 200)

    # The RLHF order: weights, reload, then the KV cache.
    ok_empty(port, "/sleep?level=2")
    ok_empty(port, "/wake_up?tags=weights")
    check(is_sleeping(port) and fv.state(port)["sleeping_tags"] == ["kv_cache"])
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    status, obj = fv.chat(port, "tags")
    check(status == 500 and "KV cache" in obj["error"]["message"], obj)
    # Unknown tags are ignored, as vLLM ignores them.
    ok_empty(port, "/wake_up?tags=bogus")
    check(is_sleeping(port))
    ok_empty(port, "/wake_up?tags=kv_cache")
    check(not is_sleeping(port))
    check(fv.chat(port, "tags")[0] == 200)
    # Repeated tags in one call.
    ok_empty(port, "/sleep?level=1")
    ok_empty(port, "/wake_up?tags=weights&tags=kv_cache")
    check(not is_sleeping(port) and fv.chat(port, "tags")[0] == 200)


@test
def level0_pauses_scheduling_only(env):
    p, port = fv.start(env, "--fake-weights-mb", "16")
    ok_empty(port, "/sleep?level=0")
    st = fv.state(port)
    check(st["is_sleeping"] and st["scheduler_paused"] and st["sleeping_tags"] == [], st)
    check(st["weights_mapped"], st)
    ok_empty(port, "/wake_up?tags=scheduling")
    check(not is_sleeping(port) and fv.chat(port, "zero")[0] == 200)


@test
def sleeping_twice_and_waking_awake_are_harmless(env):
    p, port = fv.start(env)
    ok_empty(port, "/wake_up")
    ok_empty(port, "/sleep?level=1")
    ok_empty(port, "/sleep?level=2")  # the executor is already asleep
    st = fv.state(port)
    check(st["sleep_level"] == 1 and not st["weights_discarded"], st)
    ok_empty(port, "/wake_up")
    check(fv.chat(port, "again")[0] == 200)


@test
def bad_sleep_arguments(env):
    p, port = fv.start(env)
    for q in ("level=3", "level=x", "level=-1", "mode=later", "level=1&mode=",
              "level=" + "1" * 100, "mode=" + "a" * 100):
        status, obj = fv.post(port, "/sleep?" + q)
        check(status == 400 and obj["error"]["code"] == 400, "%s: %r" % (q, obj))
    check(not is_sleeping(port))
    p2, port2 = fv.start(env, name="nosleep", sleep_mode=False)
    status, obj = fv.post(port2, "/sleep?level=1")
    check(status == 400 and "enable-sleep-mode" in obj["error"]["message"], obj)
    ok_empty(port2, "/sleep?level=0")


@test
def sleep_mode_abort_ends_streams(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    s = fv.Stream(port, fv.chat_body("long story", 5000, stream=True,
                                     stream_options={"include_usage": True}))
    wait_until(lambda: len(s.tokens()) >= 2, what="tokens flowing")
    ok_empty(port, "/sleep?level=1")
    s.wait()
    check(s.finish_reasons() == ["abort"] and s.ended_with_done(), s.events)
    n = len(s.tokens())
    check(2 <= n < 5000, n)
    check(s.chunks()[-1]["usage"]["completion_tokens"] == n, s.chunks()[-1])
    st = fv.state(port)
    check(st["requests_running"] == 0 and st["requests_aborted"] == 1, st)
    # Non-streamed requests in flight end the same way.
    ok_empty(port, "/wake_up")
    res = {}
    t = harness_thread(lambda: res.update(r=fv.chat(port, "long", max_tokens=5000)))
    wait_until(lambda: fv.state(port)["requests_running"] == 1, what="running")
    ok_empty(port, "/sleep?level=1&mode=abort")
    t.join(30)
    status, obj = res["r"]
    check(status == 200 and obj["choices"][0]["finish_reason"] == "abort", obj)


@test
def sleep_mode_wait_lets_streams_finish(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    s = fv.Stream(port, fv.chat_body("short story", 100, stream=True))
    wait_until(lambda: len(s.tokens()) >= 1, what="tokens flowing")
    ok_empty(port, "/sleep?level=1&mode=wait")
    # The sleep answered only after the stream's last token was sent
    # (mode=abort would have cut it short).
    st = fv.state(port)
    check(st["requests_running"] == 0 and st["sleeps"] == 1, st)
    s.wait()
    check(s.finish_reasons() == ["length"] and len(s.tokens()) == 100, s.events)
    check(is_sleeping(port))


@test
def sleep_mode_keep_freezes_streams_until_wake(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    p2, port2 = fv.start(env, name="reference")
    full = fv.content_of(fv.chat(port2, "frozen story", max_tokens=100)[1])
    s = fv.Stream(port, fv.chat_body("frozen story", 100, stream=True))
    wait_until(lambda: len(s.tokens()) >= 1, what="tokens flowing")
    ok_empty(port, "/sleep?level=1&mode=keep")
    st = fv.state(port)
    check(st["requests_frozen"] == 1, st)
    check(not s.done.is_set(), "a frozen stream ended")
    ok_empty(port, "/wake_up")
    s.wait()
    check(s.finish_reasons() == ["length"] and "".join(s.tokens()) == full,
          (s.tokens(), full))


@test
def commands_wait_behind_a_slow_sleep(env):
    # /is_sleeping is an engine call: it is answered after the sleep.
    p, port = fv.start(env, "--fake-sleep-level1-ms", "1000")
    res = {}
    t = harness_thread(lambda: res.update(sleep=http(port, "POST", "/sleep?level=1",
                                                     timeout=30)[0]))
    wait_until(lambda: fv.state(port)["busy"], what="sleep running")
    check(fv.health(port) == 200)          # never blocked
    check(http(port, "GET", "/v1/models")[0] == 200)
    check(is_sleeping(port))               # answered once the sleep is done
    st = fv.state(port)
    check(st["sleeps"] == 1 and not st["busy"], st)
    t.join(30)
    check(res["sleep"] == 200, res)


@test
def collective_rpc_answers(env):
    p, port = fv.start(env, "--tensor-parallel-size", "2")
    status, _, data = http(port, "POST", "/collective_rpc", body="{nope",
                           headers={"Content-Type": "application/json"})
    err = json.loads(data)["error"]
    check(status == 400 and err["message"].startswith("JSON decode error"), data)
    status, obj = fv.post(port, "/collective_rpc", {})
    check(status == 400 and obj["error"]["message"] == "Missing 'method' in request body",
          obj)
    status, obj = fv.post(port, "/collective_rpc", {"method": 7})
    check(status == 400, obj)
    status, obj = fv.post(port, "/collective_rpc", {"method": "no_such_method"})
    check(status == 500 and obj["error"]["type"] == "InternalServerError", obj)
    status, obj = fv.post(port, "/collective_rpc", {"method": "suspend_nccl"})
    check(status == 200 and obj == {"results": [None, None]}, obj)
    check(fv.state(port)["nccl_suspended"])
    status, obj = fv.chat(port, "nccl")
    check(status == 500 and "NCCL" in obj["error"]["message"], obj)
    status, obj = fv.post(port, "/collective_rpc", {"method": "resume_nccl",
                                                    "args": [], "kwargs": {}})
    check(status == 200 and obj == {"results": [None, None]}, obj)
    check(fv.chat(port, "nccl")[0] == 200)
    check(http(port, "GET", "/collective_rpc")[0] == 405)


@test
def reset_prefix_cache_fails_while_requests_run(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    s = fv.Stream(port, fv.chat_body("busy", 5000, stream=True))
    wait_until(lambda: len(s.tokens()) >= 1, what="tokens flowing")
    status, obj = fv.post(port, "/reset_prefix_cache")
    check(status == 200 and obj == {"success": False}, obj)
    status, obj = fv.post(port, "/reset_prefix_cache?reset_running_requests=true")
    check(status == 200 and obj == {"success": True}, obj)
    s.close()


@test
def client_disconnect_aborts_generation(env):
    p, port = fv.start(env, "--fake-token-ms", "20")
    s = fv.Stream(port, fv.chat_body("walk away", 5000, stream=True))
    wait_until(lambda: len(s.tokens()) >= 2, what="tokens flowing")
    check(fv.state(port)["requests_running"] == 1)
    s.close()
    wait_until(lambda: fv.state(port)["requests_running"] == 0, what="abort")
    check(fv.state(port)["requests_in_flight"] == 0)
    check(fv.chat(port, "next")[0] == 200)


@test
def max_num_seqs_limits_running_requests(env):
    p, port = fv.start(env, "--fake-token-ms", "20", "--max-num-seqs", "1")
    a = fv.Stream(port, fv.chat_body("first", 5000, stream=True))
    wait_until(lambda: len(a.tokens()) >= 1, what="first running")
    b = fv.Stream(port, fv.chat_body("second", 5, stream=True))
    wait_until(lambda: fv.state(port)["requests_waiting"] == 1, what="second waits")
    check(b.tokens() == [], b.events)
    a.close()               # its seat goes to the waiting request
    b.wait()
    check(len(b.tokens()) == 5 and b.finish_reasons() == ["length"], b.events)


@test
def requests_while_asleep_can_fail_instead(env):
    p, port = fv.start(env, "--fake-requests-while-asleep", "fail")
    ok_empty(port, "/sleep?level=1")
    status, obj = fv.chat(port, "asleep")
    check(status == 503 and obj["error"]["code"] == 503, obj)
    ok_empty(port, "/wake_up")
    check(fv.chat(port, "awake")[0] == 200)


@test
def weights_memory_moves_like_gpu_memory(env):
    for engine in (False, True):
        args = ["--fake-weights-mb", "96"] + (["--fake-engine-process"] if engine else [])
        p, port = fv.start(env, *args, name="mem%d" % engine)
        pid = fv.state(port)["engine_pid"]
        check((pid != p.pid) == engine, (pid, p.pid))
        full = 96 * 1024
        check(fv.rss_kb(pid) >= full * 0.95, fv.rss_kb(pid))
        ok_empty(port, "/sleep?level=1")       # offloaded: a host copy is kept
        check(fv.rss_kb(pid) >= full * 0.95, fv.rss_kb(pid))
        ok_empty(port, "/wake_up")
        ok_empty(port, "/sleep?level=2")       # discarded: freed
        low = fv.rss_kb(pid)
        check(low < full * 0.5, low)
        ok_empty(port, "/wake_up")             # mapped again, still empty
        check(fv.rss_kb(pid) < full * 0.5, fv.rss_kb(pid))
        check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
        check(fv.rss_kb(pid) >= full * 0.95, fv.rss_kb(pid))
        st = fv.state(port)
        check(st["rss_kb"] >= full * 0.95 and st["weights_loaded"], st)
        if engine:
            check(fv.rss_kb(p.pid) < full * 0.5, "the API server holds the weights")
        p.stop()


def harness_thread(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


if __name__ == "__main__":
    harness.main()
