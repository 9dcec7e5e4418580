#!/usr/bin/env python3
"""bench-switch.py -- `make bench-switch`: what llmux adds to a switch on
top of the model's own work.

A real llmux-supervisord runs two llmux-fakevllm models (--fake-fast: their
sleep, wake and start cost almost nothing) on one GPU at 0.9 each, behind a
real llmux-proxyd; a client sends requests for a, b, a, b ... one at a
time, so each request switches. For every switch the supervisor logs

    msg="switch timing" ... total_us= cooldown_us= engine_us= llmux_us=

where total is the switch from the switcher's decision to the target being
ready, engine is the time spent inside the engine's steps on the models
of the switch (the HTTP calls /sleep, /wake_up, /collective_rpc,
/reset_prefix_cache and /health, and for retain+stop the stop and the
start of the process until /health answers), cooldown is min_active_secs
(0 here) and llmux = total - cooldown - engine: the switcher, the drain
round trip to the proxy, the scheduling of the steps, the state pushes and
the journal. The figures are printed per eviction; nothing is asserted.

    tests/bench/bench-switch.py BUILD [--switches N] [--evictions W+P,...]
"""
import argparse
import os
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EVICTIONS = ["offload+keep_running", "discard+keep_running", "retain+stop"]
TARGET_US = 5000


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def run(eviction, switches, harness, Stack):
    env = harness.Env("bench-switch")
    ok = False
    try:
        s = Stack(env, {"a": {"eviction": eviction}, "b": {"eviction": eviction}},
                  verbose=False)
        s.start()
        for m in ("a", "b", "a"):   # first starts and first switches
            s.served(m)
        skip = s.sup_log().count('msg="switch timing"')
        client = []
        for i in range(switches):
            m = "ba"[i % 2]
            t0 = time.monotonic()
            got = s.served(m, text="bench %d" % i)
            client.append((time.monotonic() - t0) * 1e6)
            if got != m:
                raise AssertionError("request for %s served by %s" % (m, got))
        harness.wait_until(lambda: s.sup_log().count('msg="switch timing"') >=
                           skip + switches, 10, "every switch logged")
        rows = re.findall(r'msg="switch timing" from=\S+ to=\S+ ok=1 total_us=(\d+) '
                          r'cooldown_us=(\d+) engine_us=(\d+) llmux_us=(-?\d+)',
                          s.sup_log())[skip:skip + switches]
        ok = True
        return [tuple(int(x) for x in r) for r in rows], client
    finally:
        env.close(not ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--switches", type=int, default=200)
    ap.add_argument("--evictions", default=",".join(EVICTIONS))
    args = ap.parse_args()
    os.environ["LLMUX_BUILD"] = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness
    from switch_helpers import Stack

    print("switches: %d per eviction, two llmux-fakevllm --fake-fast models on one "
          "GPU, fifo, min_active_secs 0" % args.switches)
    print("%-22s %9s %9s %9s %9s   %9s %9s   %9s" % (
        "eviction", "llmux p50", "p90", "max", "mean", "total p50", "engine p50",
        "client p50"))
    for ev in args.evictions.split(","):
        rows, client = run(ev, args.switches, harness, Stack)
        llmux = [r[3] for r in rows]
        print("%-22s %7.0fus %7.0fus %7.0fus %7.0fus   %7.0fus %8.0fus   %7.0fus" % (
            ev, pct(llmux, 50), pct(llmux, 90), max(llmux), statistics.mean(llmux),
            pct([r[0] for r in rows], 50), pct([r[2] for r in rows], 50),
            pct(client, 50)))
    print("target: llmux's part under %d us per switch (figures, not a test)" % TARGET_US)
    return 0


if __name__ == "__main__":
    sys.exit(main())
