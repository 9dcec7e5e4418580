#!/usr/bin/env python3
"""bench-policies.py -- every policy on every trace of tests/traces/ at
switch costs 2, 5, 10 and 20 s, through llmux-sim; prints one table, a
summary line per policy, and how llmux's own policy compares with
time_slice cell by cell.

    tests/bench/bench-policies.py [BUILD] [--concurrency N]
        [--service-time S] [--markdown] [--seeds N]

--seeds N also replays N more sets of traces, made by the generators of
tests/traces/gen-traces.py with other seeds, through llmux's own policy and
time_slice, and counts the cells where the former is worse: the shipped
traces are one draw, and this says how much of a cell's result is the draw.
"""
import argparse
import glob
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COSTS = [2, 5, 10, 20]
TRACE_ORDER = ["steady", "bursty", "alternating", "dominant", "surges",
               "three", "random", "backlog", "chained", "pairs"]
OURS, BASELINE = "batch_aware", "time_slice"


def run(sim, trace, policy, cost, args):
    argv = [sim, "--trace", trace, "--policy", policy,
            "--switch-cost", str(cost), "--json",
            "--concurrency", str(args.concurrency),
            "--service-time", str(args.service_time)]
    out = subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    return json.loads(out)


def run_all(sim, jobs, args):
    """Run (trace path, policy, cost) jobs, a few at a time."""
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as ex:
        return dict(zip(jobs, ex.map(
            lambda j: run(sim, j[0], j[1], j[2], args), jobs)))


def worse(a, b):
    """Where a is worse than b, at the printed precision (0.1 %, 0.1 s):
    a string of G (GPU serving), M (mean wait), X (max wait)."""
    w = ""
    if round(1000 * a["gpu_fraction"]) < round(1000 * b["gpu_fraction"]):
        w += "G"
    if round(10 * a["mean_wait"]) > round(10 * b["mean_wait"]):
        w += "M"
    if round(10 * a["max_wait"]) > round(10 * b["max_wait"]):
        w += "X"
    return w


def summary(rs):
    """Over a set of cells: GPU serving = total serving / total wall time;
    mean wait over all requests; the largest max wait; all switches."""
    wall = sum(r["wall_time"] for r in rs)
    sw = sum(r["switch_time"] for r in rs)
    reqs = sum(r["requests"] for r in rs)
    return (100 * (1 - sw / wall) if wall > 0 else 100.0,
            sum(r["mean_wait"] * r["requests"] for r in rs) / reqs,
            max(r["max_wait"] for r in rs),
            sum(r["switches"] for r in rs))


def generators():
    path = os.path.join(ROOT, "tests", "traces", "gen-traces.py")
    spec = importlib.util.spec_from_file_location("gen_traces", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.TRACES


def other_seeds(sim, args, n):
    """OURS against BASELINE on n more draws of every trace."""
    tmp = tempfile.mkdtemp(prefix="llmux-bench-")
    try:
        jobs = []
        for k in range(1, n + 1):
            d = os.path.join(tmp, str(k))
            os.mkdir(d)
            for name, fn, seed in generators():
                rows = sorted(fn(random.Random(seed + 1000 * k)),
                              key=lambda r: r[0])
                if rows == sorted(fn(random.Random(seed)),
                                  key=lambda r: r[0]):
                    continue        # not random: the shipped trace
                path = os.path.join(d, name + ".csv")
                with open(path, "w") as f:
                    f.write("arrival_seconds,model\n")
                    for t, model in rows:
                        f.write("%.3f,%s\n" % (t, model))
                for cost in COSTS:
                    for p in (OURS, BASELINE):
                        jobs.append((path, p, cost))
        res = run_all(sim, jobs, args)
    finally:
        shutil.rmtree(tmp)
    print()
    print("%d more draws of the traces (generator seed + 1000 k), %s "
          "against %s:" % (n, OURS, BASELINE))
    total = cells = 0
    for k in range(1, n + 1):
        d = os.path.join(tmp, str(k))
        missed = []
        ours, base = [], []
        for (path, p, cost), r in sorted(res.items()):
            if os.path.dirname(path) != d or p != OURS:
                continue
            b = res[(path, BASELINE, cost)]
            ours.append(r)
            base.append(b)
            w = worse(r, b)
            if w:
                missed.append("%s %ds %s" % (
                    os.path.basename(path)[:-4], cost, w))
        total += len(missed)
        cells += len(ours)
        so, sb = summary(ours), summary(base)
        print("  draw %d: worse in %d of %d cells; GPU %.1f %% vs %.1f %%, "
              "mean wait %.2f s vs %.2f s%s" % (
                  k, len(missed), len(ours), so[0], sb[0], so[1], sb[1],
                  (": " + ", ".join(missed)) if missed else ""))
    print("  in all: %s worse than %s in %d of %d cells" % (
        OURS, BASELINE, total, cells))


INTRO = """
`make bench-policies` (`tests/bench/bench-policies.py`): every policy on
every trace of `tests/traces/` at switch costs 2, 5, 10 and 20 s, through
llmux-sim (the supervisor's own policy code in virtual time), service time
%gs, concurrency %d, the defaults otherwise (max wait 15 s, min active
5 s). Each cell: GPU serving %%, mean wait s, max wait s, switches; the
comparisons below are between policies of the same run. docs/policies.md
explains the policies and these figures.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--service-time", type=float, default=0.5)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--seeds", type=int, default=0)
    args = ap.parse_args()

    sim = os.path.join(args.build, "bin", "llmux-sim")
    policies = subprocess.run([sim, "--list-policies"], check=True,
                              stdout=subprocess.PIPE,
                              universal_newlines=True).stdout.split()
    found = {os.path.basename(p)[:-4]: p for p in
             glob.glob(os.path.join(ROOT, "tests", "traces", "*.csv"))}
    traces = [t for t in TRACE_ORDER if t in found] + \
        sorted(t for t in found if t not in TRACE_ORDER)

    md = args.markdown
    if md:
        sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
        import benchmd
        benchmd.section("policies", "Policies", "tests/bench/bench-policies.py", INTRO % (
            args.service_time, args.concurrency))
    else:
        print("llmux-sim, service time %gs, concurrency %d; per policy: GPU "
              "serving %%, mean wait s, max wait s, switches"
              % (args.service_time, args.concurrency))
        print()
    if md:
        print("| trace | cost | " + " | ".join(policies) + " |")
        print("|---|---:|" + "---:|" * len(policies))
    else:
        print("%-12s %4s  " % ("trace", "cost") +
              "  ".join("%-24s" % p for p in policies))
    res = run_all(sim, [(found[t], p, c) for t in traces for c in COSTS
                        for p in policies], args)
    results = {(t, c, p): res[(found[t], p, c)]
               for t in traces for c in COSTS for p in policies}
    for trace in traces:
        for cost in COSTS:
            cells = []
            for p in policies:
                r = results[(trace, cost, p)]
                cells.append("%5.1f %6.1f %6.1f %4d" % (
                    100 * r["gpu_fraction"], r["mean_wait"], r["max_wait"],
                    r["switches"]))
            if md:
                print("| %s | %ds | " % (trace, cost) + " | ".join(cells) + " |")
            else:
                print("%-12s %3ds  " % (trace, cost) +
                      "  ".join("%-24s" % c for c in cells))

    print()
    if md:
        print("```")
    print("over the whole table: GPU serving = total serving / total wall "
          "time; mean wait over all requests; max wait the largest")
    for p in policies:
        s = summary([results[(t, c, p)] for t in traces for c in COSTS])
        print("  %-12s GPU %5.1f %%  mean wait %6.2f s  max wait %6.1f s  "
              "switches %d" % ((p,) + s))

    if OURS not in policies or BASELINE not in policies:
        if md:
            print("```\n")
        return 0
    print()
    print("by switch cost, %s against %s:" % (OURS, BASELINE))
    for c in COSTS:
        so = summary([results[(t, c, OURS)] for t in traces])
        sb = summary([results[(t, c, BASELINE)] for t in traces])
        print("  %2ds: GPU %5.1f %% vs %5.1f %%, mean wait %6.2f s vs "
              "%6.2f s, max wait %6.1f s vs %6.1f s" % (
                  c, so[0], sb[0], so[1], sb[1], so[2], sb[2]))

    print()
    misses = []
    better = 0
    for trace in traces:
        for cost in COSTS:
            a = results[(trace, cost, OURS)]
            b = results[(trace, cost, BASELINE)]
            w = worse(a, b)
            if w:
                misses.append("%s %ds (%s): gpu %.1f%% vs %.1f%%, mean "
                              "%.1fs vs %.1fs, max %.1fs vs %.1fs" % (
                                  trace, cost, w, 100 * a["gpu_fraction"],
                                  100 * b["gpu_fraction"], a["mean_wait"],
                                  b["mean_wait"], a["max_wait"],
                                  b["max_wait"]))
            elif worse(b, a):
                better += 1
    n = len(traces) * len(COSTS)
    print("%s worse than %s (GPU serving, mean or max wait, at the printed "
          "precision) in %d of %d cells; better on at least one and worse "
          "on none in %d; the same in %d" % (
              OURS, BASELINE, len(misses), n, better,
              n - len(misses) - better))
    for m in misses:
        print("  worse: " + m)
    if args.seeds > 0:
        other_seeds(sim, args, args.seeds)
    if md:
        print("```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
