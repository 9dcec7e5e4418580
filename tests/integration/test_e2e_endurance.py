#!/usr/bin/env python3
"""test_e2e_endurance.py -- an endurance run with mixed traffic: three
models evicted three ways, clients sending streamed and plain requests,
chat and text completions, streams abandoned half read, requests
abandoned while queued, requests for an unknown model, bodies that are
not JSON, and control calls on the admin port, in rounds. After each
round, once the proxy is idle, the memory (VmRSS) and the open
descriptors (/proc/PID/fd) of both daemons are read: they stay flat
(descriptors within a few of the first rounds' most, memory within a
bound; memory is not judged under ASan, whose quarantine holds freed
memory). Every request gets its answer or its explicit error; the
daemons exit cleanly. Quick under `make check` (a few rounds of seconds);
several minutes under `make soak`."""
import time

import harness
from harness import check
from e2e_helpers import Client, Ledger, Load, fds, idle, rss_kb, sanitized, say, scale
from switch_helpers import Stack

ARGS = ["--fake-token-ms", "2", "--fake-sleep-level1-ms", "20", "--fake-sleep-level2-ms", "20",
        "--fake-wake-ms", "20", "--fake-reload-ms", "40"]
# A body that is not JSON: the proxy reads the model and stops; the model
# server refuses the rest (400, its code a number).
ALLOW = [(404, "model_not_found"), (400, "invalid_request"), (400, 400)]

# Memory may grow by this much from the second round to the last.
RSS_SLACK_KB = 2048
# Descriptors: pooled upstream connections and model processes come and go.
FD_SLACK = 8


def pick(r):
    x = r.random()
    m = r.choice("aab" + "c")
    if x < 0.04:
        return {"model": "nope"}
    if x < 0.07:
        return {"model": "a", "raw": b'{"model": "a", "messages": [ not json'}
    if x < 0.15:
        return {"model": m, "stream": True, "max_tokens": 200, "abandon_after": r.randint(1, 4)}
    if x < 0.20:
        return {"model": m, "abandon_after": 0}
    return {"model": m, "stream": r.random() < 0.4, "max_tokens": r.randint(1, 24),
            "chat": r.random() < 0.7}


@harness.test
def endurance(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": ARGS},
                    "b": {"eviction": "discard+keep_running", "args": ARGS},
                    "c": {"eviction": "retain+stop", "args": ARGS}},
              policy={"policy_type": "cost_aware", "coalesce_window_ms": 200,
                      "max_wait_secs": 1}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    rounds = scale(4, 30)
    secs = scale(4, 10)
    asan = sanitized(s.proxy.pid)
    samples = []
    start = time.monotonic()
    for i in range(rounds):
        load = Load(c, pick, clients=6, seed=i + 1)
        end = time.monotonic() + secs
        while time.monotonic() < end:
            # Control calls beside the traffic.
            s.status()
            s.metrics()
            time.sleep(0.2)
        load.stop()
        idle(s)
        sample = {"proxy_rss": rss_kb(s.proxy.pid), "proxy_fds": fds(s.proxy.pid),
                  "sup_rss": rss_kb(s.sup.proc.pid), "sup_fds": fds(s.sup.proc.pid),
                  "requests": ledger.sent}
        samples.append(sample)
        say("round %2d: %6d requests  proxy %6d kB %3d fds  supervisor %6d kB %3d fds",
            i + 1, sample["requests"], sample["proxy_rss"], sample["proxy_fds"],
            sample["sup_rss"], sample["sup_fds"])
    say("%d requests in %.0f s", ledger.sent, time.monotonic() - start)
    ledger.check(allow=ALLOW)
    check(ledger.count("ok") > ledger.sent // 2, ledger.summary())
    for d in ("proxy", "sup"):
        first = max(x[d + "_fds"] for x in samples[:2])
        worst = max(x[d + "_fds"] for x in samples[2:])
        check(worst <= first + FD_SLACK, "%s descriptors stay flat: %r" %
              (d, [x[d + "_fds"] for x in samples]))
        if not asan:
            grew = samples[-1][d + "_rss"] - samples[1][d + "_rss"]
            check(grew <= RSS_SLACK_KB, "%s memory stays flat: %r" %
                  (d, [x[d + "_rss"] for x in samples]))
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
