#!/usr/bin/env python3
"""gen-traces.py -- generate llmux-sim's workload traces (CSV lines
"arrival_seconds,model") into this directory. Deterministic: a fixed seed
per trace, so running it again rewrites the same files. The traces are
committed; rerun only to change them.

    tests/traces/gen-traces.py [DIR]
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def poisson(rng, rate, start, end, model):
    """Arrivals of one model at `rate` per second in [start, end)."""
    out, t = [], start
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            return out
        out.append((t, model))


def steady(rng):
    """Two models, even Poisson load (0.4 + 0.4 req/s) for 10 minutes."""
    return poisson(rng, 0.4, 0, 600, "a") + poisson(rng, 0.4, 0, 600, "b")


def bursty(rng):
    """Bursts of 10-30 requests within a second, for a or b at random,
    about every 20 s, for 10 minutes."""
    out, t = [], 0.0
    while t < 600:
        model = rng.choice("ab")
        for _ in range(rng.randint(10, 30)):
            out.append((t + rng.uniform(0, 1.0), model))
        t += rng.uniform(10, 30)
    return out


def alternating(rng):
    """Strict alternation a, b, a, b ... one request every 2 s, 5 minutes."""
    return [(i * 2.0, "ab"[i % 2]) for i in range(150)]


def dominant(rng):
    """One dominant model: a at 0.9 req/s, b at 0.1 req/s, 10 minutes."""
    return poisson(rng, 0.9, 0, 600, "a") + poisson(rng, 0.1, 0, 600, "b")


def surges(rng):
    """A steady 0.5 req/s for a, and every 60 s a surge of 20 requests for
    b within 2 s, for 10 minutes."""
    out = poisson(rng, 0.5, 0, 600, "a")
    for k in range(10):
        base = 30 + 60 * k
        out += [(base + rng.uniform(0, 2.0), "b") for _ in range(20)]
    return out


def three(rng):
    """Three models in 40 s phases: the phase's model at 0.8 req/s, the
    other two at 0.1 req/s each, for 12 minutes."""
    out = []
    for k in range(18):
        start, end = 40 * k, 40 * (k + 1)
        for i, model in enumerate("abc"):
            rate = 0.8 if i == k % 3 else 0.1
            out += poisson(rng, rate, start, end, model)
    return out


def random_mix(rng):
    """400 requests for four models with uneven popularity and random
    gaps of 0-4 s."""
    out, t = [], 0.0
    for _ in range(400):
        t += rng.uniform(0, 4.0)
        out.append((t, rng.choices("abcd", weights=[4, 3, 2, 1])[0]))
    return out


def backlog(rng):
    """Long backlogs: a steady 0.3 req/s for a, and every 40-80 s a surge
    of 30-50 requests for a within a second (15-25 s of work at 0.5 s a
    request), while b asks 0.15 req/s, for 15 minutes."""
    out = poisson(rng, 0.3, 0, 900, "a") + poisson(rng, 0.15, 0, 900, "b")
    t = rng.uniform(10, 40)
    while t < 900:
        out += [(t + rng.uniform(0, 1.0), "a")
                for _ in range(rng.randint(30, 50))]
        t += rng.uniform(40, 80)
    return out


def chained(rng):
    """Bursts that arrive on completion times: a burst of 6-16 requests
    for a, the next one when the last would be done at 0.5 s a request
    (a client that sends its next batch as the answers come), in runs of
    3-8 bursts with pauses of 5-30 s between runs; b asks 0.2 req/s; 15
    minutes."""
    out, t = poisson(rng, 0.2, 0, 900, "b"), 0.0
    while t < 900:
        for _ in range(rng.randint(3, 8)):
            n = rng.randint(6, 16)
            out += [(t + rng.uniform(0, 0.2), "a") for _ in range(n)]
            t += 0.5 * n
        t += rng.uniform(5, 30)
    return out


def pairs(rng):
    """Random two-model mixes: bursts of 1-30 requests for a or b at
    random, each within 0-3 s, separated by gaps of 5-30 s, for 15
    minutes."""
    out, t = [], 0.0
    while t < 900:
        model = rng.choice("ab")
        spread = rng.uniform(0, 3.0)
        out += [(t + rng.uniform(0, spread), model)
                for _ in range(rng.randint(1, 30))]
        t += rng.uniform(5.0, 30.0)
    return out


TRACES = [
    ("steady", steady, 1),
    ("bursty", bursty, 2),
    ("alternating", alternating, 3),
    ("dominant", dominant, 4),
    ("surges", surges, 5),
    ("three", three, 6),
    ("random", random_mix, 7),
    ("backlog", backlog, 8),
    ("chained", chained, 9),
    ("pairs", pairs, 10),
]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else HERE
    for name, fn, seed in TRACES:
        rng = random.Random(seed)
        rows = sorted(fn(rng), key=lambda r: r[0])
        with open(os.path.join(out_dir, name + ".csv"), "w") as f:
            f.write("arrival_seconds,model\n")
            for t, model in rows:
                f.write("%.3f,%s\n" % (t, model))
        print("%-12s %5d requests" % (name, len(rows)))


if __name__ == "__main__":
    main()
