#!/usr/bin/env python3
"""test_e2e_burst.py -- a burst for b during a switch to a. b is active;
a request for a starts a switch whose wake is slow; while a wakes, a
burst of requests for b (plain and streamed) arrives at once. Every
request is answered by its model: a's first, then the whole burst after
one switch back to b (the burst joins no second switch, and none of it
is lost or failed)."""
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, flood, idle, say, scale
from switch_helpers import Stack


@harness.test
def burst_for_b_during_a_switch_to_a(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-wake-ms", "1000"]},
                    "b": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "1"]}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    for m in ("a", "b"):
        check(c.send(m).kind == "ok", "warm-up of %s" % m)
    first = []
    t = threading.Thread(target=lambda: first.append(c.send("a", max_tokens=6)), daemon=True)
    t.start()
    wait_until(lambda: s.status()["models"]["a"]["state"] == "waking", 10, "a waking")
    n = scale(60, 600)
    burst = flood(s.port, ledger, [{"model": "b", "stream": i % 3 == 0, "max_tokens": 5}
                                   for i in range(n)], timeout=120)
    t.join(60)
    check(first and first[0].kind == "ok", "a's request: %r" % first)
    check(all(o.kind == "ok" for o in burst), "the burst: %r" %
          [o for o in burst if o.kind != "ok"][:5])
    # a was ready before the first of the burst was answered.
    check(first[0].t_end <= min(o.t_end for o in burst), "a served first")
    idle(s)
    ledger.check()
    check(s.metric("llmux_switches_total", **{"from": "b", "to": "a"}) == 1, s.metrics())
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) == 2, s.metrics())
    say("burst of %d served after one switch back", n)
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
