#!/usr/bin/env python3
"""test_e2e_switch_load.py -- switches under load. Clients keep a busy
with a mix of streamed and plain requests, chat and text completions;
then clients for b join, so that llmux switches back and forth between
them while both are loaded. Every request gets one complete answer from
the model it asked for (none fails, none is cut), several switches
happen, and both daemons exit cleanly."""
import time

import harness
from harness import check
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack


@harness.test
def switch_under_load(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "2", "--fake-sleep-level1-ms", "50",
                                   "--fake-wake-ms", "50"]},
                    "b": {"eviction": "discard+keep_running",
                          "args": ["--fake-token-ms", "2", "--fake-reload-ms", "100"]}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    load_a = Load(c, mix(["a"]), clients=4, seed=1)
    progress(ledger, 20, "a")
    load_b = Load(c, mix(["b"]), clients=3, seed=2)
    # Both loaded: fifo switches whenever the other model waits.
    end = time.monotonic() + scale(6, 90)
    while time.monotonic() < end:
        progress(ledger, 10, "b", timeout=60)
        progress(ledger, 10, "a", timeout=60)
    load_b.stop()
    progress(ledger, 10, "a", timeout=60)
    load_a.stop()
    idle(s)
    ledger.check()
    ab = s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) or 0
    ba = s.metric("llmux_switches_total", **{"from": "b", "to": "a"}) or 0
    say("switches: a->b %d, b->a %d", ab, ba)
    check(ab >= 2 and ba >= 2, "switched back and forth under load: %d %d" % (ab, ba))
    check(s.metric("llmux_switch_failures_total", to="a") is None and
          s.metric("llmux_switch_failures_total", to="b") is None, "no switch failed")
    for m in ("a", "b"):
        st = s.status()["models"][m]
        check(st["crashes"] == 0 and st["escalations"] == 0, st)
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
