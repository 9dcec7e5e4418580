#!/usr/bin/env python3
"""test_ctl.py -- llmuxctl: help generated from the verb table, usage
errors (exit 2), an unreachable supervisor in one line (exit 3), the
human tables, --json bodies in the shapes of llmux 0.7 (Rust),
mode/pin/unpin/switch and eviction get/set, progress lines, and failures
(exit 1)."""
import json
import os
import subprocess

import harness
from harness import check
from supervisor_helpers import Sup

VERBS = ["status", "models", "switch", "pin", "unpin", "mode", "sleep", "wake", "stop",
         "eviction", "checkpoint", "restore", "validate", "reload", "logs", "metrics",
         "help"]


def ctl(*args, env=None):
    p = subprocess.run([harness.binary("llmuxctl")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@harness.test
def help_and_usage(env):
    rc, out, err = ctl("help")
    check(rc == 0, (rc, out, err))
    for v in VERBS:
        check("\n  %s" % v in out, "help lists %s: %s" % (v, out))
    check("3 supervisor unreachable" in out, out)
    rc, out, err = ctl("help", "sleep")
    check(rc == 0 and "usage: llmuxctl sleep MODEL [--eviction W+P]" in out, out)
    for args, usage in ((["sleep"], "usage: llmuxctl sleep MODEL"),
                        (["wake", "a", "b"], "usage: llmuxctl wake MODEL"),
                        (["mode", "sideways"], "usage: llmuxctl mode auto|manual"),
                        (["sleep", "a", "--eviction", "loud+clear"], "unknown eviction"),
                        (["eviction", "a"], "usage: llmuxctl eviction [MODEL W+P]"),
                        (["stop", "-x"], "usage: llmuxctl stop")):
        rc, out, err = ctl("--socket", env.path("none.sock"), *args)
        check(rc == 2 and usage in err, (args, rc, out, err))
    rc, out, err = ctl("frobnicate")
    check(rc == 2 and "unknown command 'frobnicate'" in err, (rc, err))
    rc, out, err = ctl()
    check(rc == 2 and "usage: llmuxctl" in err, (rc, err))
    rc, out, err = ctl("--version")
    check(rc == 0 and out.startswith("llmuxctl "), out)


@harness.test
def unreachable_supervisor(env):
    path = env.path("absent.sock")
    rc, out, err = ctl("--socket", path, "status")
    check(rc == 3, (rc, out, err))
    check(err == "llmuxctl: the supervisor is not running (cannot connect to %s: "
          "No such file or directory)\n" % path, err)
    # LLMUX_SOCKET names it too.
    e = dict(os.environ, LLMUX_SOCKET=path)
    rc, out, err = ctl("wake", "a", env=e)
    check(rc == 3 and path in err and err.count("\n") == 1, (rc, err))


@harness.test
def tables_json_and_control(env):
    sup = Sup(env, {"a": {"aliases": "[alpha]", "eviction": "offload+keep_running"},
                    "b": {}, "broken": {"args": ["--fake-exit-during-startup=1"]}})
    sup.start()
    out = sup.ctl_ok("status")
    check(out.startswith("state: idle   mode: auto"), out)
    check("MODEL" in out and "PROCESS" in out and "not_started" in out, out)
    out = sup.ctl_ok("models")
    check("alpha" in out and "offload+keep_running" in out and sup.model_path("a") in out, out)
    rc, body = sup.ctl_json("models")
    check(rc == 0 and [m["name"] for m in body["models"]] == ["a", "b", "broken"], body)
    check(body["models"][0]["aliases"] == ["alpha"], body)

    # llmux 0.7's shapes.
    st = sup.status()
    check(set(["state", "active_model", "mode", "models"]) <= set(st), st)
    check(set(["in_flight", "queue_depth", "process_state"]) <= set(st["models"]["a"]), st)
    rc, body = sup.ctl_json("mode", "manual")
    check(rc == 0 and body == {"message": "Switched to manual mode"}, body)
    check(sup.status()["mode"] == {"mode": "manual", "pinned": None}, sup.status())
    rc, body = sup.ctl_json("mode", "auto")
    check(body == {"message": "Switched to auto mode"}, body)
    rc, body = sup.ctl_json("eviction")
    check(body["models"]["a"] == {"eviction": {"weights": "offload",
                                               "process": "keep_running"},
                                  "process_state": "not_started"}, body)
    rc, body = sup.ctl_json("eviction", "b", "retain+cuda_suspend")
    check(rc == 0 and body == {"message": "Eviction policy for b set to EvictionPolicy "
                               "{ weights: Retain, process: CudaSuspend }"}, body)
    rc, body = sup.ctl_json("eviction", "nope", "3")
    check(rc == 1 and body == {"error": "Model not found: nope"}, body)
    out = sup.ctl_ok("eviction")
    check("retain+cuda_suspend" in out, out)

    # pin switches (progress on stderr), switch moves the pin.
    rc, out, err = sup.ctl("pin", "a")
    check(rc == 0 and out.strip() == "Pinned to model: a", (rc, out, err))
    check("pin a: start" in err, err)
    check(sup.status()["mode"] == {"mode": "manual", "pinned": "a"}, sup.status())
    rc, out, err = sup.ctl("switch", "b")
    check(rc == 0 and out.strip() == "Switched to model: b", (rc, out, err))
    check("switch a: sleep" in err and "switch b: start" in err, err)
    st = sup.status()
    check(st["state"] == "active:b" and st["active_model"] == "b", st)
    check(st["mode"]["pinned"] == "b", st["mode"])
    check(st["models"]["a"]["process_state"] == "sleeping:Offload+KeepRunning", st)
    rc, body = sup.ctl_json("unpin")
    check(body == {"message": "Unpinned. Switched to auto mode."}, body)
    rc, out, err = sup.ctl("pin", "nope")
    check(rc == 1 and err.strip() == "llmuxctl: Model not found: nope", (rc, err))
    check(sup.status()["mode"] == {"mode": "auto"}, "a failed pin changes nothing")
    # A pin whose switch fails goes back to the previous mode.
    sup.ctl_ok("mode", "manual")
    rc, out, err = sup.ctl("pin", "broken")
    check(rc == 1 and "Failed to switch to pinned model: start failed" in err, (rc, out, err))
    check(sup.status()["mode"] == {"mode": "manual", "pinned": None}, sup.status()["mode"])
    rc, out, err = sup.ctl("switch", "broken")
    check(rc == 1 and "Switch failed: start failed" in err, (rc, out, err))
    metrics = sup.ctl_ok("metrics")
    check('llmux_supervisor_model_state{model="a",state="sleeping"} 1' in metrics, metrics)
    rc, body = sup.ctl_json("metrics")
    check(rc == 0 and "llmux_supervisor_uptime_seconds" in body["text"], body)


@harness.test
def validate_evictions(env):
    sup = Sup(env, {"a": {}})
    sup.start()
    rc, out, err = sup.ctl("validate", "a")
    check(rc == 0 and "Model a: 2 of 2 evictions passed" in out, (rc, out, err))
    table = out.split("\n\n")[0]
    rows = [l.split() for l in table.split("\n")[2:] if l.strip()]
    check([(r[0], r[-3], r[-2]) for r in rows] ==
          [("offload+keep_running", "yes", "PASS"), ("discard+keep_running", "yes", "PASS")],
          out)
    check("validate a: wake_up" in err and "validate a: request" in err, err)
    # Under the table, the time of each phase of each row.
    check("\nphases:\n  offload+keep_running: sleep: sleep " in out, out)
    check("; wake: wake_up " in out and ", reload_weights " in out, out)
    rc, body = sup.ctl_json("validate", "a", "--policies", "retain+cuda_suspend,offload+stop")
    check(rc == 1 and body["error"] == "Model a: 1 of 2 evictions passed", body)
    first, second = body["results"]
    check(not first["pass"] and first["response_match"] and
          "escalated to stop" in first["error"], first)
    check(second["pass"] and second["gpu_mib_before"] is None, second)
    check(sup.model("a")["state"] == "ready", "left awake")
    rc, out, err = sup.ctl("validate", "a", "--policies", "x+y")
    check(rc == 2 and "unknown eviction 'x+y'" in err, (rc, err))


if __name__ == "__main__":
    harness.main()
