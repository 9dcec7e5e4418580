#!/usr/bin/env python3
"""bench-status.py -- `make bench-status`: start llmux-supervisord with three
llmux-fakevllm models (one awake, one asleep, one not started), then time
10 000 `status` calls over its socket with build/bench/bench_status and
print p50/p90/p99. The target is a round trip under 1 ms on loopback.

    tests/bench/bench-status.py BUILD [N] [--markdown]

--markdown prints its section of docs/benchmarks.md (tests/bench/bench-all.py).
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKDOWN = "--markdown" in sys.argv[1:]
ARGS = [a for a in sys.argv[1:] if a != "--markdown"]
os.environ["LLMUX_BUILD"] = os.path.abspath(ARGS[0] if ARGS else "build")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))

import benchmd  # noqa: E402
import harness  # noqa: E402
from supervisor_helpers import Sup  # noqa: E402

INTRO = """
`make bench-status` (`tests/bench/bench-status.py`,
`tests/bench/bench_status.c`): llmux-supervisord with three llmux-fakevllm
models (one awake, one asleep, one not started), then %s `status` calls,
one at a time, over its socket, as llmuxctl makes them: the round trip of
the status call, whose reply describes every model. The target is under
1 ms on loopback.
"""


def main():
    n = ARGS[1] if len(ARGS) > 1 else "10000"
    env = harness.Env("bench-status")
    ok = False
    try:
        # Small models, so that one can be awake beside another.
        small = {"gpu_memory_utilization": 0.3}
        sup = Sup(env, {"a": dict(small), "b": dict(small), "c": dict(small)})
        sup.start()
        sup.ctl_ok("wake", "a")
        sup.ctl_ok("wake", "b")
        sup.ctl_ok("sleep", "b", "--eviction", "offload+keep_running")
        bench = os.path.join(harness.BUILD, "bench", "bench_status")
        p = subprocess.run([bench, sup.socket, n], stdout=subprocess.PIPE,
                           universal_newlines=True)
        ok = p.returncode == 0
        if MARKDOWN:
            benchmd.section("status", "Status calls", "tests/bench/bench-status.py",
                            INTRO % n)
            benchmd.code(p.stdout)
        else:
            sys.stdout.write(p.stdout)
    finally:
        env.close(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
