#!/usr/bin/env python3
"""test_switch_demand.py -- switching on demand through the whole stack (a
real supervisor with llmux-fakevllm models, a real proxy): a request for a
sleeping model wakes it and is served; two models switch back and forth,
each request answered by the right model; an alias reaches the model as
the client wrote it; a burst for b while a is being woken costs one switch
back, not two; requests for the victim during its drain wait and are
served after; a client that gives up while queued cancels the switch that
was waiting for its cooldown."""
import re

import harness
from harness import check, wait_until
from switch_helpers import Parallel, Stack, give_up_request

OFFLOAD = "offload+keep_running"


@harness.test
def sleeping_model_is_woken_and_served(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD, "args": ["--fake-admin"]},
                    "b": {"eviction": OFFLOAD, "args": ["--fake-admin"]}}).start()
    check(s.state() == "idle", s.status())
    check(s.served("a") == "a", "a served by a")
    check(s.state() == "active:a", s.status())
    check(s.served("b") == "b", "b served by b")
    st = s.status()
    check(st["state"] == "active:b" and st["active_model"] == "b", st)
    check(st["models"]["a"]["state"] == "sleeping", st["models"]["a"])
    check(st["models"]["a"]["process_state"] == "sleeping:Offload+KeepRunning",
          st["models"]["a"])
    check(s.sup.fake_state("a")["is_sleeping"], "a really asleep")
    # Woken again: the same process, a warm wake.
    pid = st["models"]["a"]["pid"]
    check(s.served("a") == "a", "a again")
    check(s.status()["models"]["a"]["pid"] == pid, "a woken, not restarted")
    check(not s.sup.fake_state("a")["is_sleeping"], "a awake")
    check(s.sup.fake_state("b")["is_sleeping"], "b asleep now")
    log = s.sup_log()
    check('msg="switch done" from=b to=a' in log, "the switch is logged")
    check(re.search(r"msg=\"switch timing\" from=b to=a ok=1 total_us=\d+ cooldown_us=\d+ "
                    r"engine_us=\d+ llmux_us=-?\d+", log), "timed in the log")


@harness.test
def back_and_forth(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": "retain+stop"}}).start()
    for i in range(6):
        want = "ab"[i % 2]
        check(s.served(want, text="question %d" % i) == want, "request %d" % i)
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) == 3,
          s.metrics())
    check(s.metric("llmux_switches_total", **{"from": "b", "to": "a"}) == 2,
          s.metrics())
    # From idle, from="" as llmux 0.7 labels it (dashboards rely on it).
    check(s.metric("llmux_switches_total", **{"from": "", "to": "a"}) == 1,
          s.metrics())
    check('from="none"' not in s.metrics(), s.metrics())
    # Side by side: twelve clients, six for each; every one is answered,
    # each by its own model.
    p = Parallel()
    for i in range(12):
        p.run(s.chat, "ab"[i % 2], text="parallel %d" % i, max_tokens=8)
    for i, (st, body) in enumerate(p.join()):
        check(st == 200, "request %d: %d %r" % (i, st, body))
        check(body["model"] == "ab"[i % 2], "request %d served by %r" % (i, body["model"]))
        check(body["usage"]["completion_tokens"] == 8, "complete: %r" % body)


@harness.test
def alias_reaches_the_model(env):
    s = Stack(env, {"a": {"aliases": "[gpt-4o, \"team/a\"]"}, "b": {}}).start()
    for name in ("gpt-4o", "team/a"):
        st, body = s.chat(name)
        check(st == 200, (name, st, body))
        # The model server answers to the alias, under its first name.
        check(body["model"] == "a", body)
    pid = s.status()["models"]["a"]["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    i = argv.index(b"--served-model-name")
    check(argv[i + 1:i + 4] == [b"a", b"gpt-4o", b"team/a"], argv)


@harness.test
def burst_for_b_while_a_wakes(env):
    # a wakes slowly: a burst for b arrives in the middle of the switch.
    s = Stack(env, {"a": {"eviction": OFFLOAD, "args": ["--fake-wake-ms", "800"]},
                    "b": {"eviction": OFFLOAD}}).start()
    s.served("a")
    s.served("b")
    p = Parallel()
    p.run(s.chat, "a", text="the one for a")
    wait_until(lambda: s.state() == "switching:b->a", 10, "the switch to a")
    for i in range(5):
        p.run(s.chat, "b", text="burst %d" % i)
    wait_until(lambda: s.status()["models"]["b"]["queue_depth"] == 5, 10,
               "the burst queued behind the switch")
    check(s.state() == "switching:b->a", "still one switch: %s" % s.state())
    results = p.join()
    check(all(st == 200 for st, _ in results), results)
    check(results[0][1]["model"] == "a", results[0])
    check(all(body["model"] == "b" for _, body in results[1:]), results)
    # One switch there and one back: the burst joined no second switch.
    check(s.metric("llmux_switches_total", **{"from": "b", "to": "a"}) == 1, s.metrics())
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) == 2, s.metrics())


@harness.test
def victim_requests_wait_during_its_drain(env):
    # a's answers take 2 s (20 tokens of 100 ms): the drain waits for them.
    s = Stack(env, {"a": {"eviction": OFFLOAD, "args": ["--fake-token-ms", "100"]},
                    "b": {"eviction": OFFLOAD}}).start()
    s.served("a", max_tokens=1)
    done = []
    p = Parallel()

    def tracked(model, **kw):
        r = s.chat(model, **kw)
        done.append(model)
        return r
    p.run(tracked, "a", text="long", max_tokens=20)
    wait_until(lambda: s.status()["models"]["a"]["in_flight"] == 1, 10,
               "a's long request in flight")
    p.run(tracked, "b", text="for b")
    wait_until(lambda: s.status()["models"]["a"]["state"] == "draining", 10, "a drains")
    # New requests for the victim wait for the next switch.
    p.run(tracked, "a", text="late for a", max_tokens=1)
    wait_until(lambda: s.status()["models"]["a"]["queue_depth"] == 1, 10, "queued")
    long_a, b, late_a = p.join()
    check(long_a[0] == 200 and long_a[1]["usage"]["completion_tokens"] == 20,
          "the in-flight request finished whole: %r" % (long_a,))
    check(long_a[1]["choices"][0]["finish_reason"] == "length", long_a)
    check(b[0] == 200 and b[1]["model"] == "b", b)
    check(late_a[0] == 200 and late_a[1]["model"] == "a", late_a)
    check(done == ["a", "b", "a"], "served in that order: %r" % done)


@harness.test
def client_gives_up_while_queued(env):
    # b waits for a's 30 s cooldown; its only client leaves meanwhile.
    s = Stack(env, {"a": {}, "b": {}}, policy={"min_active_secs": 30}).start()
    s.served("a")
    sock = give_up_request(s.port, "b")
    wait_until(lambda: s.state() == "switching:a->b", 10, "the switch to b, in cooldown")
    check(s.status()["models"]["b"]["queue_depth"] == 1, s.status())
    sock.close()
    wait_until(lambda: 'msg="switch cancelled" to=b' in s.sup_log(), 10, "the switch cancelled")
    st = s.status()
    check(st["state"] == "active:a" and st["models"]["b"]["queue_depth"] == 0, st)
    check(st["models"]["b"]["starts"] == 0, "b never started: %r" % st["models"]["b"])
    check(s.served("a") == "a", "a serves on")


if __name__ == "__main__":
    harness.main()
