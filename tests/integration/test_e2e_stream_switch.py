#!/usr/bin/env python3
"""test_e2e_stream_switch.py -- streaming during a switch. Long streams
run on a when a request for b arrives: the switch drains a, so every
stream in flight finishes whole (all its tokens, then [DONE]) before a is
put to sleep; streams for a that arrive during the drain wait and run
after the next switch back; b's answer comes after a's streams ended.
Then streams for a and b side by side, both ways."""
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, scale
from switch_helpers import Stack


@harness.test
def streams_during_a_switch(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "25"]},
                    "b": {"eviction": "discard+keep_running",
                          "args": ["--fake-token-ms", "5"]}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("a").kind == "ok", "a awake")
    results = {}

    def run(key, *args, **kw):
        results[key] = c.send(*args, **kw)
    threads = []

    def go(key, *args, **kw):
        t = threading.Thread(target=run, args=(key,) + args, kwargs=kw, daemon=True)
        t.start()
        threads.append(t)
    nlong = 6
    for i in range(nlong):
        go("long%d" % i, "a", stream=True, max_tokens=60)	# 1.5 s each
    wait_until(lambda: s.status()["models"]["a"]["in_flight"] == nlong, 10,
               "a's streams in flight")
    go("b", "b", stream=True, max_tokens=10)
    wait_until(lambda: s.status()["models"]["a"]["state"] == "draining", 10, "a drains")
    # New streams for a wait for the next switch.
    for i in range(3):
        go("late%d" % i, "a", stream=True, max_tokens=10)
    wait_until(lambda: s.status()["models"]["a"]["queue_depth"] == 3, 10, "queued for a")
    for t in threads:
        t.join(60)
        check(not t.is_alive(), "a client is stuck")
    for key, o in results.items():
        check(o.kind == "ok", "%s: %r" % (key, o))
    for i in range(nlong):
        check(results["long%d" % i].tokens == 60, "whole: %r" % results["long%d" % i])
        check(results["long%d" % i].t_end <= results["b"].t_end, "a's streams ended first")
    for i in range(3):
        check(results["late%d" % i].t_end >= results["b"].t_end, "late streams after b")
    # Streams both ways, side by side.
    load = Load(c, mix(["a", "b"], stream=0.9, max_tokens=(5, 30)), clients=4)
    progress(ledger, scale(40, 600), timeout=scale(60, 600))
    load.stop()
    idle(s)
    ledger.check()
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
