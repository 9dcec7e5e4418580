#!/usr/bin/env python3
"""test_switch_restart.py -- switching across restarts and reloads, through
the whole stack: kill -9 of the supervisor under traffic to the active
model (traffic flows on, the model is re-adopted with the same pid, and
switching works afterwards); a model that crashes is restarted through
the switcher; a reload adds and removes models, also in the middle of a
switch; warm-up and preload at start (an embedding model's warm-up
too); an idle model's ttl."""
import json
import os
import signal
import threading

import harness
from harness import check, wait_until
from switch_helpers import Parallel, Stack

OFFLOAD = "offload+keep_running"


class Traffic:
    """A client sending requests for one model back to back."""

    def __init__(self, stack, model):
        self.stack = stack
        self.model = model
        self.results = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        i = 0
        while not self.stop.is_set():
            st, body = self.stack.chat(self.model, text="traffic %d" % i, timeout=30)
            self.results.append((st, body.get("model") if isinstance(body, dict) else body))
            i += 1

    def count_ok(self):
        return sum(1 for st, _ in self.results if st == 200)

    def end(self):
        self.stop.set()
        self.t.join(60)
        check(not self.t.is_alive(), "the traffic thread ended")
        return self.results


@harness.test
def kill9_under_traffic(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    s.served("a")
    pid = s.status()["models"]["a"]["pid"]
    traffic = Traffic(s, "a")
    wait_until(lambda: traffic.count_ok() >= 5, 20, "traffic flowing")
    s.sup.proc.signal(signal.SIGKILL)
    s.sup.proc.wait(10)
    wait_until(lambda: not s.proxy_ready(), 10, "the proxy to see the supervisor go")
    # The proxy serves the model it knew ready: the traffic goes on.
    n = traffic.count_ok()
    wait_until(lambda: traffic.count_ok() >= n + 5, 20, "traffic without the supervisor")
    s.sup.start("supervisord-2")
    wait_until(s.proxy_ready, 20, "the proxy back with the new supervisor")
    st = s.status()
    check(st["models"]["a"]["pid"] == pid and st["models"]["a"]["starts"] == 0,
          "re-adopted, not restarted: %r" % st["models"]["a"])
    check(st["state"] == "active:a", st)
    n = traffic.count_ok()
    wait_until(lambda: traffic.count_ok() >= n + 5, 20, "traffic with the new supervisor")
    results = traffic.end()
    check(all(st == 200 and m == "a" for st, m in results), "every request served: %r" %
          [r for r in results if r[0] != 200][:5])
    check("adopted model process" in s.sup_log(), "adopted")
    # Switching works afterwards, both ways.
    check(s.served("b") == "b", "b")
    check(s.served("a") == "a", "a")
    check(s.status()["models"]["a"]["pid"] == pid, "a woken, the same process")


@harness.test
def crashed_active_model_restarts(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    s.served("a")
    pid = s.status()["models"]["a"]["pid"]
    os.kill(pid, signal.SIGKILL)
    m = wait_until(lambda: (lambda m: m if m["restarts"] == 1 and m["state"] == "ready"
                            else None)(s.status()["models"]["a"]), 30, "a restarted")
    check(m["pid"] != pid and m["crashes"] == 1, m)
    check(s.state() == "active:a", s.status())
    check(s.served("a") == "a", "a serves again")
    check(s.served("b") == "b", "and switching works")


@harness.test
def reload_adds_and_removes_models(env):
    models = {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}
    s = Stack(env, models).start()
    s.served("b")
    models = {"a": {"eviction": OFFLOAD}, "c": {"eviction": OFFLOAD}}
    s.sup.write_config(models, s.sup.extra)
    code, body = s.sup.ctl_json("reload")
    check(code == 0 and body["added"] == ["c"] and body["removed"] == ["b"], body)
    wait_until(lambda: 'msg="switcher rebuilt' in s.sup_log(), 10, "the switcher rebuilt")
    st, body = s.chat("b")
    check(st == 404, "b is gone: %d %r" % (st, body))
    check(s.served("c") == "c", "c, added, is switched to")
    check(s.served("a") == "a", "a")
    check(s.served("c") == "c", "c again")
    check(s.status()["models"].keys() == {"a", "c"}, s.status())


@harness.test
def reload_in_the_middle_of_a_switch(env):
    models = {"a": {"eviction": OFFLOAD},
              "b": {"eviction": OFFLOAD, "args": ["--fake-wake-ms", "1500"]}}
    s = Stack(env, models).start()
    s.served("b")
    s.served("a")
    p = Parallel()
    p.run(s.chat, "b")
    wait_until(lambda: s.status()["models"]["b"]["state"] == "waking", 10, "b waking")
    models["c"] = {}
    s.sup.write_config(models, s.sup.extra)
    code, body = s.sup.ctl_json("reload")
    check(code == 0 and body["added"] == ["c"], body)
    check("takes the new configuration when the switch in progress is done" in s.sup_log(),
          "the rebuild waits")
    # Meanwhile the new model is not the switcher's yet: orders are refused.
    code, body = s.control("POST", "/control/wake", {"model": "c"})
    check(code == 409 and "not known to the switcher yet" in body["error"], (code, body))
    (st, body), = p.join()
    check(st == 200 and body["model"] == "b", "the switch went on: %r" % (body,))
    wait_until(lambda: 'msg="switcher rebuilt' in s.sup_log(), 10, "then the rebuild")
    check(s.state() == "active:b", "the state carried over: %s" % s.state())
    check(s.served("c") == "c", "c served")
    check(s.served("b") == "b", "b served")


@harness.test
def request_for_a_model_added_while_the_rebuild_waits(env):
    # The demand for c arrives while the switcher still has the old config;
    # the proxy does not send it again, so the rebuilt switcher must take it.
    models = {"a": {"eviction": OFFLOAD},
              "b": {"eviction": OFFLOAD, "args": ["--fake-wake-ms", "1500"]}}
    s = Stack(env, models).start()
    s.served("b")
    s.served("a")
    p = Parallel()
    p.run(s.chat, "b")
    wait_until(lambda: s.status()["models"]["b"]["state"] == "waking", 10, "b waking")
    models["c"] = {}
    s.sup.write_config(models, s.sup.extra)
    code, body = s.sup.ctl_json("reload")
    check(code == 0 and body["added"] == ["c"], body)
    p.run(s.chat, "c")
    wait_until(lambda: s.status()["models"]["c"]["queue_depth"] == 1, 10, "c's request queued")
    check('msg="switcher rebuilt' not in s.sup_log(), "before the rebuild")
    b, c = p.join()
    check(b[0] == 200 and b[1]["model"] == "b", b)
    check(c[0] == 200 and c[1]["model"] == "c", "c's request served: %r" % (c,))


@harness.test
def reload_removes_the_model_being_woken(env):
    models = {"a": {"eviction": OFFLOAD},
              "b": {"eviction": OFFLOAD, "args": ["--fake-wake-ms", "3000"]}}
    s = Stack(env, models).start()
    s.served("b")
    s.served("a")
    p = Parallel()
    p.run(s.chat, "b")
    wait_until(lambda: s.status()["models"]["b"]["state"] == "waking", 10, "b waking")
    del models["b"]
    s.sup.write_config(models, s.sup.extra)
    code, body = s.sup.ctl_json("reload")
    check(code == 0 and body["removed"] == ["b"], body)
    (st, body), = p.join()
    check(st == 404 and body["error"]["code"] == "model_not_found", (st, body))
    # The switch to b ends at once (b's wake was cut), not at its deadline.
    wait_until(lambda: 'msg="switcher rebuilt' in s.sup_log(), 10, "the rebuild")
    check(list(s.status()["models"]) == ["a"], s.status())
    check(s.served("a") == "a", "a served")


@harness.test
def warmup_and_preload(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD},
                    "b": {"eviction": OFFLOAD, "preload": "true"}},
              extra="warmup: true\n").start()
    # Warm-up: each model started, asked once, put to sleep; then preload.
    wait_until(lambda: s.state() == "active:b", 30, "b preloaded after the warm-up")
    fa = s.sup.fake_state("a")
    check(fa["requests_served"] == 1 and fa["is_sleeping"], fa)
    fb = s.sup.fake_state("b")
    check(fb["requests_served"] == 1 and not fb["is_sleeping"] and fb["wakes"] == 1, fb)
    log = s.sup_log()
    check(log.count('msg="warm-up inference begins"') == 2, log)
    pid = s.status()["models"]["a"]["pid"]
    check(s.served("a") == "a", "a, a warm wake")
    check(s.status()["models"]["a"]["pid"] == pid and s.sup.fake_state("a")["wakes"] == 1,
          "woken, not started")


@harness.test
def warmup_of_an_embedding_model(env):
    # vLLM serves no /v1/completions for a pooling model (404): its
    # warm-up is an embedding instead, and the warm-up does not fail;
    # validate compares embeddings.
    s = Stack(env, {"a": {"eviction": OFFLOAD},
                    "e": {"eviction": OFFLOAD, "args": ["--task", "embed"]}},
              extra="warmup: true\n").start()
    wait_until(lambda: s.status()["models"]["e"]["state"] == "sleeping" and
               s.status()["models"]["a"]["state"] == "sleeping", 30,
               "both warmed up and asleep")
    fe = s.sup.fake_state("e")
    check(fe["requests_served"] == 1 and fe["is_sleeping"], fe)
    check(s.sup.fake_state("a")["requests_served"] == 1, "a warmed with a completion")
    log = s.sup_log()
    check(log.count("answered 404 to /v1/completions: it serves no completions, "
                    "so /v1/embeddings") == 1, log)
    check("warm-up request" not in log, log)
    st, _, data = harness.http(s.port, "POST", "/v1/embeddings",
                               {"model": "e", "input": "after the warm-up"}, None, 30)
    check(st == 200 and json.loads(data)["data"][0]["embedding"], (st, data))
    # validate compares the vector of the same text before and after each
    # sleep (a completion's text for a generating model).
    st, body = s.control("POST", "/control/validate", {"model": "e"})
    check(st == 200 and body["message"] == "Model e: 2 of 2 evictions passed" and
          [r["response_match"] for r in body["results"]] == [True, True], (st, body))
    check(s.sup.fake_state("e")["requests_failed"] == 0, "no request failed")


@harness.test
def idle_ttl_puts_a_model_to_sleep(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD, "ttl_secs": 1}, "b": {}}).start()
    s.served("a")
    wait_until(lambda: s.status()["models"]["a"]["state"] == "sleeping", 20,
               "a asleep after its ttl")
    check(s.state() == "idle", s.status())
    check('msg="idle past its ttl, sleeping" model=a' in s.sup_log(), "logged")
    check(s.served("a") == "a", "woken again on demand")


@harness.test
def max_sleeping_stops_the_least_recently_used(env):
    # Each answer takes 100 ms (4 tokens): longer than the proxy's 50 ms
    # coalescing of demand, so that a's last use is reported before b's.
    slow = {"eviction": OFFLOAD, "args": ["--fake-token-ms", "25"]}
    s = Stack(env, {"a": dict(slow), "b": dict(slow), "c": dict(slow)},
              extra="max_sleeping: 1\n").start()
    for m in ("a", "b", "c"):
        s.served(m)
    # a and b asleep with their processes: one too many; a was used last
    # the longest ago.
    m = wait_until(lambda: (lambda m: m if m["state"] == "stopped" else None)(
        s.status()["models"]["a"]), 20, "a stopped")
    check(m["pid"] is None, m)
    check(s.status()["models"]["b"]["state"] == "sleeping", s.status())
    check(s.served("a") == "a", "a started again")


if __name__ == "__main__":
    harness.main()
