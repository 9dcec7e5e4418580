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
        [--markdown]

--markdown prints its section of docs/benchmarks.md (tests/bench/bench-all.py).
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


INTRO = """
`make bench-switch` (`tests/bench/bench-switch.py`; `BENCH_ARGS="--switches
N"`, default 200; `--evictions W+P,...`). A real llmux-supervisord runs two
llmux-fakevllm models (`--fake-fast`: their sleep, wake and start take
almost nothing) on one GPU at 0.9 each, behind a real llmux-proxyd, with
`fifo` and `min_active_secs: 0`, logging at its default level. A client
sends requests for b, a, b, a ... one at a time, so every request switches.
For each switch the supervisor logs `msg="switch timing"` with, in µs:
**total**, from the switcher's decision to the target being ready;
**engine**, the time inside the engine's steps on the models of that switch
(the model's HTTP calls `/sleep`, `/wake_up`, `/collective_rpc`,
`/reset_prefix_cache`, `/health`, and for `retain+stop` the stop of the
victim until its tree is gone and the start of the target until `/health`
answers, polled at 10-40 ms intervals); **cooldown** (`min_active_secs`, 0
here); and **llmux** = total - cooldown - engine: the switcher and policy,
the `drain`/`drained` round trip through the proxy, the scheduling of the
steps on the event loop, the state pushes, the journal. The target is
llmux's part under 5 ms per switch; `share` is llmux's part of the total
at the median (p50 llmux / p50 total), measured in the same run.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--switches", type=int, default=200)
    ap.add_argument("--evictions", default=",".join(EVICTIONS))
    ap.add_argument("--markdown", action="store_true",
                    help="print the section of docs/benchmarks.md")
    args = ap.parse_args()
    os.environ["LLMUX_BUILD"] = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
    import harness
    from switch_helpers import Stack
    import benchmd

    rows = []
    for ev in args.evictions.split(","):
        r, client = run(ev, args.switches, harness, Stack)
        llmux = [x[3] for x in r]
        rows.append((ev, pct(llmux, 50), pct(llmux, 90), max(llmux), statistics.mean(llmux),
                     pct([x[0] for x in r], 50), pct([x[2] for x in r], 50), pct(client, 50)))
    if args.markdown:
        benchmd.section("switch", "Switching", "tests/bench/bench-switch.py", INTRO)
        print("%d switches per eviction:\n" % args.switches)
        print("| eviction | llmux p50 | p90 | max | mean | total p50 | engine p50 | client p50 "
              "| share |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for ev, p50, p90, mx, mean, tot, eng, cl in rows:
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %.1f %% |" % (
                ev, us(p50), us(p90), us(mx), us(mean), us(tot), us(eng), us(cl),
                100.0 * p50 / tot if tot > 0 else 0))
        print("\nTarget: llmux's part under %d µs per switch (%s).\n" % (
            TARGET_US, "met at the median and at worst by every eviction"
            if all(r[3] < TARGET_US for r in rows) else "not met everywhere: see the max"))
        return 0
    print("switches: %d per eviction, two llmux-fakevllm --fake-fast models on one "
          "GPU, fifo, min_active_secs 0" % args.switches)
    print("%-22s %9s %9s %9s %9s   %9s %9s   %9s" % (
        "eviction", "llmux p50", "p90", "max", "mean", "total p50", "engine p50",
        "client p50"))
    for ev, p50, p90, mx, mean, tot, eng, cl in rows:
        print("%-22s %7.0fus %7.0fus %7.0fus %7.0fus   %7.0fus %8.0fus   %7.0fus" % (
            ev, p50, p90, mx, mean, tot, eng, cl))
    print("target: llmux's part under %d us per switch (figures, not a test)" % TARGET_US)
    return 0


def us(v):
    """µs below 10 ms, ms above."""
    return "%.0f µs" % v if v < 10000 else "%.1f ms" % (v / 1000.0)


if __name__ == "__main__":
    sys.exit(main())
