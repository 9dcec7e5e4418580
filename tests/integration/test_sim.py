#!/usr/bin/env python3
"""test_sim.py -- llmux-sim on small traces gives the numbers worked out by
hand (the working is in each test), and rejects bad input with clear
errors.

The model (docs/policies.md): one GPU, every model at 0.9 of it; a switch
costs --switch-cost seconds, 12 % of it the eviction and the rest the wake
(all of it the wake when nothing is evicted first); min_active_secs 5.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, test  # noqa: E402

KEYS = {"policy", "requests", "switches", "switch_time", "wall_time",
        "gpu_fraction", "mean_wait", "max_wait"}


def sim(*args):
    return subprocess.run([harness.binary("llmux-sim")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def sim_json(env, trace, policy, *args):
    path = env.write("trace.csv", trace)
    p = sim("--trace", path, "--policy", policy, "--json", *args)
    check(p.returncode == 0, "llmux-sim failed: %s" % p.stderr)
    out = json.loads(p.stdout)
    check(set(out) == KEYS, "keys %s" % sorted(out))
    return out


def expect(out, **want):
    for k, v in want.items():
        got = out[k]
        ok = got == v if isinstance(v, (int, str)) else abs(got - v) < 1e-3
        check(ok, "%s: got %r, want %r (all: %r)" % (k, got, v, out))


@test
def fifo_by_hand(env):
    # 0.0 a arrives: start a from nothing, a wake of 10 s, ready at 10.0.
    # 0.1 b, 0.2 a wait. 10.0-10.5 a(0.0) waits 10.0; 10.5-11.0 a(0.2)
    # waits 10.3. fifo switches to b at 10.0; cooldown until a has been
    # active 5 s (15.0); drain is instant; evict 1.2 s, wake 8.8 s: b is
    # ready at 25.0. 5.0 b arrives. 25.0-25.5 b(0.1) waits 24.9;
    # 25.5-26.0 b(5.0) waits 20.5.
    # Serving 2 s; switching 0-10 and 11-25: 24 s; wall 26 s.
    out = sim_json(env, "arrival_seconds,model\n0,a\n0.1,b\n0.2,a\n5,b\n",
                   "fifo", "--switch-cost", "10")
    expect(out, policy="fifo", requests=4, switches=2, switch_time=24.0,
           wall_time=26.0, gpu_fraction=round(2 / 26, 4),
           mean_wait=(10.0 + 10.3 + 24.9 + 20.5) / 4, max_wait=24.9)


@test
def concurrency_by_hand(env):
    # Three requests at 0 for a; wake 2 s; two served together 2-3 (wait
    # 2, 2), the third 3-4 (wait 3). Serving 2 s, switching 2 s.
    out = sim_json(env, "0,a\n0,a\n0,a\n", "fifo", "--switch-cost", "2",
                   "--service-time", "1", "--concurrency", "2")
    expect(out, requests=3, switches=1, switch_time=2.0, wall_time=4.0,
           gpu_fraction=0.5, mean_wait=7 / 3, max_wait=3.0)


@test
def time_slice_waits_for_its_tick(env):
    # a: ready at 2.0, served 2-3 (wait 2). b arrives at 7.2; a has been
    # active 5.2 s and is idle, but time_slice switches on its 0.5 s tick:
    # 7.5. Evict 0.24 + wake 1.76: ready 9.5, b served 9.5-10.5 (wait
    # 2.3). Switching 0-2 and 7.5-9.5; held 7.2-7.5 (b waits, nothing
    # runs): switch_time 4.3; serving 2; idle 3-7.2 is not counted.
    out = sim_json(env, "0,a\n7.2,b\n", "time_slice", "--switch-cost", "2",
                   "--service-time", "1")
    expect(out, requests=2, switches=2, switch_time=4.3, wall_time=6.3,
           gpu_fraction=round(2 / 6.3, 4), mean_wait=(2 + 2.3) / 2,
           max_wait=2.3)


@test
def batch_aware_switches_at_once(env):
    # The same, but batch_aware switches at 7.2: b ready at 9.2 (wait 2).
    out = sim_json(env, "0,a\n7.2,b\n", "batch_aware", "--switch-cost", "2",
                   "--service-time", "1")
    expect(out, requests=2, switches=2, switch_time=4.0, wall_time=6.0,
           gpu_fraction=round(2 / 6, 4), mean_wait=2.0, max_wait=2.0)


@test
def cost_aware_serving_window(env):
    # a ready at 2.0 (served 2-3). b at 6.0: a->b has no sample yet, so
    # its cost is the initial 10 s and a keeps a serving window until
    # 2 + 10 = 12.0 (staleness would be 6 + 15 = 21). Switch 12-14, b
    # served 14-15 (wait 8). Held 6-12: switch_time 2 + 6 + 2 = 10.
    out = sim_json(env, "0,a\n6,b\n", "cost_aware", "--switch-cost", "2",
                   "--service-time", "1")
    expect(out, requests=2, switches=2, switch_time=10.0, wall_time=12.0,
           gpu_fraction=round(2 / 12, 4), mean_wait=5.0, max_wait=8.0)


@test
def max_wait_flag(env):
    # As above with --max-wait 3: b is stale at 9.0, before the window.
    out = sim_json(env, "0,a\n6,b\n", "cost_aware", "--switch-cost", "2",
                   "--service-time", "1", "--max-wait", "3")
    expect(out, switch_time=2 + 3 + 2, max_wait=5.0)


@test
def text_output_and_list(env):
    p = sim("--list-policies")
    check(p.returncode == 0)
    check(p.stdout.split() == ["fifo", "cost_aware", "time_slice",
                               "batch_aware"], p.stdout)
    path = env.write("t.csv", "0,a\n")
    p = sim("--trace", path, "--policy", "fifo", "--switch-cost", "1")
    check(p.returncode == 0, p.stderr)
    lines = dict(l.split(None, 1) for l in p.stdout.splitlines())
    check(lines["requests"] == "1", p.stdout)
    check(lines["switches"] == "1", p.stdout)
    check(lines["gpu_fraction"] == "0.3333", p.stdout)


@test
def bad_input(env):
    cases = [
        ("0,a\nx,b\n", "t.csv:2: arrival time is not a number"),
        ("0,a\n-1,b\n", "t.csv:2: arrival time out of range"),
        ("0\n", "t.csv:1: expected \"arrival_seconds,model\""),
        ("0,\n", "t.csv:1: missing model name"),
        ("nan,a\n", "t.csv:1: arrival time is not a number"),
        ("arrival_seconds,model\n", "no requests"),
        ("0,%s\n" % ("m" * 200), "model name too long"),
        ("0,a\n" + "1," + "x" * 5000 + "\n", "t.csv:2: line too long"),
        ("0,a\x00b\n", "t.csv:1: NUL byte"),
        ("".join("0,m%d\n" % i for i in range(65)), "too many models"),
    ]
    for text, want in cases:
        path = env.write("t.csv", text)
        p = sim("--trace", path, "--policy", "fifo")
        check(p.returncode == 1, "accepted %r" % text[:40])
        check(want in p.stderr, "for %r: %s" % (text[:40], p.stderr))
        check(p.stdout == "", p.stdout)

    path = env.write("ok.csv", "0,a\n")
    for args, want in [
            (["--policy", "lottery"], "unknown policy: lottery"),
            (["--switch-cost", "-1"], "--switch-cost: out of range"),
            (["--service-time", "0"], "--service-time: out of range"),
            (["--concurrency", "1.5"], "--concurrency: whole"),
            (["--max-wait", "abc"], "--max-wait: not a number"),
            (["--bogus"], "unknown option"),
            (["extra"], "unexpected argument")]:
        argv = ["--trace", path]
        if "--policy" not in args:
            argv += ["--policy", "fifo"]
        p = sim(*(argv + args))
        check(p.returncode == 1, "accepted %r" % args)
        check(want in p.stderr, "for %r: %s" % (args, p.stderr))
    p = sim("--policy", "fifo")
    check(p.returncode == 1 and "--trace and --policy" in p.stderr, p.stderr)
    p = sim("--trace", env.path("missing.csv"), "--policy", "fifo")
    check(p.returncode == 1 and "missing.csv" in p.stderr, p.stderr)


@test
def every_policy_serves_every_trace(env):
    traces = os.path.join(harness.ROOT, "tests", "traces")
    for name in sorted(os.listdir(traces)):
        if not name.endswith(".csv"):
            continue
        with open(os.path.join(traces, name)) as f:
            n = sum(1 for l in f if l.strip() and l[0].isdigit())
        for policy in ["fifo", "cost_aware", "time_slice", "batch_aware"]:
            p = sim("--trace", os.path.join(traces, name), "--policy",
                    policy, "--switch-cost", "5", "--json")
            check(p.returncode == 0, "%s %s: %s" % (name, policy, p.stderr))
            out = json.loads(p.stdout)
            check(out["requests"] == n, "%s %s: %r" % (name, policy, out))
            check(0 < out["gpu_fraction"] <= 1, repr(out))
            check(abs(out["gpu_fraction"] - (1 - out["switch_time"] /
                                             out["wall_time"])) < 1e-3,
                  repr(out))


if __name__ == "__main__":
    harness.main()
