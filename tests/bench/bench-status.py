#!/usr/bin/env python3
"""bench-status.py -- `make bench-status`: start llmux-supervisord with three
llmux-fakevllm models (one awake, one asleep, one not started), then time
10 000 `status` calls over its socket with build/bench/bench_status and
print p50/p90/p99. The target is a round trip under 1 ms on loopback.

    tests/bench/bench-status.py BUILD [N]
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["LLMUX_BUILD"] = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import harness  # noqa: E402
from supervisor_helpers import Sup  # noqa: E402


def main():
    n = sys.argv[2] if len(sys.argv) > 2 else "10000"
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
        p = subprocess.run([bench, sup.socket, n])
        ok = p.returncode == 0
    finally:
        env.close(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
