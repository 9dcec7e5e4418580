#!/usr/bin/env python3
"""test_e2e_wake_failure.py -- backends that fail to wake, under load. b
refuses its /wake_up (500); c, whose weights were discarded, fails to
reload them. Every request waiting for either gets 503 model_failed with
the reason; the half-woken model is stopped, backed off, and started
afresh by a later request, which is served. a's clients, switched away
from and back to meanwhile, are all served, and the daemons exit
cleanly."""
import threading

import harness
from harness import check
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say
from switch_helpers import Stack


def waiters(c, model, n):
    out = []
    threads = [threading.Thread(target=lambda i=i: out.append(
        c.send(model, stream=i % 2 == 0, max_tokens=4)), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads, out


@harness.test
def wake_failures_under_load(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "2"]},
                    "b": {"eviction": "offload+keep_running",
                          "args": ["--fake-fail-wake", "--fake-wake-ms", "200"]},
                    "c": {"eviction": "discard+keep_running",
                          "args": ["--fake-fail-reload", "--fake-reload-ms", "200"]}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    for m in ("b", "c", "a"):
        check(c.send(m).kind == "ok", "%s started" % m)	# b and c now asleep
    load = Load(c, mix(["a"], stream=0.3), clients=3)
    progress(ledger, 10, "a")
    for model, why in (("b", "wake_up failed: the model answered 500"),
                       ("c", "reload_weights failed")):
        threads, out = waiters(c, model, 6)
        for t in threads:
            t.join(60)
        check(len(out) == 6, "every waiter answered")
        # Those that waited for the failed wake get its reason; one that
        # came too late for it waits out the backoff and is served.
        failed = [o for o in out if o.kind == "error"]
        check(failed, "the wake failed: %r" % out)
        for o in failed:
            check(o.status == 503 and o.code == "model_failed" and why in o.detail,
                  "%s: %r" % (model, o))
        m = s.status()["models"][model]
        check(len(failed) < 6 or m["state"] == "failed" and m["pid"] is None,
              "%s stopped: %r" % (model, m))
        progress(ledger, 5, "a")
        # After the backoff, a cold start: no /wake_up, no reload.
        o = c.send(model, stream=True)
        check(o.kind == "ok", "%s served after its failure: %r" % (model, o))
        check(s.status()["models"][model]["starts"] == 2, "a fresh start")
        progress(ledger, 5, "a")
    load.stop()
    idle(s)
    ledger.check(allow=[(503, "model_failed")], models=("b", "c"))
    for m in ("b", "c"):
        check(s.metric("llmux_switch_failures_total", to=m) == 1, s.metrics())
        check("backoff_ms=2000" in s.sup_log(), "backed off")
    say("a served %d", ledger.count("ok", "a"))
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
