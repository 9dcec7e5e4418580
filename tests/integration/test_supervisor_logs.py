#!/usr/bin/env python3
"""test_supervisor_logs.py -- model logs: a model that floods its output is
never blocked and never fills the disk (the log is capped and rotated),
`llmuxctl logs` shows the last lines and `logs -f` follows new ones."""
import os
import uuid

import harness
from harness import check, wait_until
from supervisor_helpers import Sup, marked

FLOOD = """#!/bin/bash
# The model floods its stdout with 50 MB of lines while it serves.
line="%(marker)s $(printf 'x%%.0s' {1..80})"
(exec -a "%(marker)s-flood" yes "$line" | head -c 50000000) &
exec %(fake)s "$@"
"""


@harness.test
def flood_is_capped_and_never_blocks(env):
    marker = "flood-%s" % uuid.uuid4().hex[:8]
    cap = 1 << 20
    sup = Sup(env, {"m": {}}, extra="model_log_max_bytes: 1MiB\nmodel_log_keep: 2\n")
    wrapper = env.write("vllm-flood", FLOOD % {"marker": marker,
                                               "fake": harness.binary("llmux-fakevllm")})
    os.chmod(wrapper, 0o755)
    sup.command = wrapper
    sup.write_config(sup.models, sup.extra)
    sup.start()
    sup.ctl_ok("wake", "m")
    # While the flood runs the model answers, and so does the supervisor.
    served = 0
    while marked(marker + "-flood"):
        check(sup.health("m", timeout=10) == 200, "the model is not blocked")
        check(sup.ctl("status")[0] == 0, "the supervisor answers")
        served += 1
    print("health checks answered during the flood: %d" % served)
    logs = sorted(os.listdir(sup.log_dir))
    check(logs == ["m.log", "m.log.1", "m.log.2"], logs)
    sizes = {f: os.path.getsize(os.path.join(sup.log_dir, f)) for f in logs}
    check(all(s <= cap for s in sizes.values()), sizes)
    check(sizes["m.log.1"] > cap - 200 and sizes["m.log.2"] > cap - 200, sizes)
    # Rotation cuts at line ends.
    for f in ("m.log.1", "m.log.2"):
        with open(os.path.join(sup.log_dir, f), "rb") as fp:
            data = fp.read()
        check(data.endswith(b"\n") and marker.encode() in data, "%s ends a line" % f)
    # The model's own lines still arrive after the flood.
    sup.health("m")
    wait_until(lambda: "path=/health" in sup.ctl_ok("logs", "m", "-n", "3"), 10,
               "the model's own log line after the flood")


@harness.test
def logs_and_follow(env):
    sup = Sup(env, {"m": {}})
    sup.start()
    rc, out, err = sup.ctl("logs", "m")
    check(rc == 0 and out.strip() == "", (rc, out, err))
    sup.ctl_ok("wake", "m")
    out = sup.ctl_ok("logs", "m")
    check("--- llmux: starting model m at" in out, out)
    check("Application startup complete" in out, out)
    out = sup.ctl_ok("logs", "m", "-n", "1")
    check(len(out.strip().split("\n")) == 1, out)
    follower = env.spawn("follower", [harness.binary("llmuxctl"), "--socket", sup.socket,
                                      "logs", "m", "-f", "-n", "1"])
    wait_until(lambda: follower.output().count("\n") >= 1, 10, "the last line")
    for i in range(3):
        sup.get("m", "/health?n=%d" % i)
    wait_until(lambda: "/health" in follower.output() and
               follower.output().count("path=/health") >= 3, 10,
               "new lines followed: %r" % follower.output())
    check(follower.alive(), "still following")
    # Following a model that reload removes ends the call.
    del sup.models["m"]
    sup.models["n"] = {}
    sup.write_config(sup.models)
    sup.ctl_ok("reload")
    check(follower.wait(20) == 0, "the follower ends with the model")
    rc, out, err = sup.ctl("logs", "nope")
    check(rc == 1 and "Model not found: nope" in err, (rc, out, err))
    rc, out, err = sup.ctl("logs", "n", "-n", "0")
    check(rc == 2 and "usage: llmuxctl logs" in err, (rc, out, err))


if __name__ == "__main__":
    harness.main()
