#!/usr/bin/env python3
"""test_e2e_alternation.py -- rapid alternation: one client asking a, b,
a, b ... one request at a time (each one a switch), then a, b, c in turn
with the three evictions (offload, discard, stop), then clients asking
all three at once. Every answer comes from the model asked for, the
number of switches is exactly the number of alternations, and the
daemons exit cleanly."""
import harness
from harness import check
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack

FAST = ["--fake-sleep-level1-ms", "20", "--fake-sleep-level2-ms", "20", "--fake-wake-ms", "20",
        "--fake-reload-ms", "30", "--fake-token-ms", "1"]


def switches(s):
    total = 0
    for a in ("", "a", "b", "c"):   # "": from idle, as llmux 0.7 labels it
        for b in ("a", "b", "c"):
            total += s.metric("llmux_switches_total", **{"from": a, "to": b}) or 0
    return total


@harness.test
def rapid_alternation(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": FAST},
                    "b": {"eviction": "discard+keep_running", "args": FAST},
                    "c": {"eviction": "retain+stop", "args": FAST}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    # Two models, one request at a time: every request is a switch.
    n2 = scale(20, 300)
    for i in range(n2):
        o = c.send("ab"[i % 2], stream=i % 3 == 0, max_tokens=4)
        check(o.kind == "ok", "request %d: %r" % (i, o))
    check(switches(s) == n2, "one switch per request: %d for %d" % (switches(s), n2))
    # Three models in turn, each evicted its own way.
    n3 = scale(15, 150)
    base = switches(s)
    for i in range(n3):
        o = c.send("cab"[i % 3], stream=i % 2 == 0, max_tokens=4, chat=i % 4 != 1)
        check(o.kind == "ok", "request %d: %r" % (i, o))
    check(switches(s) - base == n3, "one switch per request: %d for %d" %
          (switches(s) - base, n3))
    check(s.status()["models"]["c"]["starts"] >= n3 // 3, "c was stopped and started each time")
    # Three clients, one per model, side by side: whatever the order, each
    # answer comes from its model.
    load = Load(c, mix(["a", "b", "c"], stream=0.4, max_tokens=(1, 6)), clients=3)
    progress(ledger, scale(60, 1000), timeout=scale(60, 600))
    load.stop()
    idle(s)
    ledger.check()
    say("switches: %d", switches(s))
    for m in ("a", "b", "c"):
        st = s.status()["models"][m]
        check(st["crashes"] == 0 and st["escalations"] == 0, st)
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
