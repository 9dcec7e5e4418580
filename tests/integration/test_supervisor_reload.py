#!/usr/bin/env python3
"""test_supervisor_reload.py -- reading the config again: an invalid config
is refused with its errors and the running one is kept; a valid one adds
models, stops removed ones and leaves changed ones running until their
next start; SIGHUP does the same as `llmuxctl reload`."""
import signal

import harness
from harness import check, wait_until
from supervisor_helpers import Sup, alive


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


@harness.test
def bad_config_keeps_the_old_one(env):
    sup = Sup(env, {"a": {}, "b": {}})
    sup.start()
    sup.ctl_ok("wake", "a")
    pid = sup.model("a")["pid"]
    good = open(sup.config_path).read()
    with open(sup.config_path, "w") as f:
        f.write(good + "  c:\n    port: 99999\n    bogus_key: 1\n")
    rc, out, err = sup.ctl("reload")
    check(rc == 1, (rc, out, err))
    check("Invalid configuration, the running one is kept" in err, err)
    check("llmux.yaml:" in err, "errors with file:line:col: %r" % err)
    rc, body = sup.ctl_json("reload")
    check(rc == 1 and len(body["errors"]) >= 2, body)
    st = sup.status()
    check(sorted(st["models"]) == ["a", "b"], st)
    check(st["models"]["a"]["pid"] == pid and alive(pid), "a untouched")
    # SIGHUP with the bad file: same, the daemon lives on.
    sup.proc.signal(signal.SIGHUP)
    wait_until(lambda: "the new configuration is invalid" in sup.log_text(), 10,
               "the SIGHUP reload")
    check(sup.proc.alive() and sup.ctl("status")[0] == 0, "still serving")
    metrics = sup.ctl_ok("metrics")
    check('llmux_supervisor_reloads_total{result="invalid"} 3' in metrics, metrics)


@harness.test
def reload_adds_removes_and_changes(env):
    # Small models: several are awake side by side.
    small = {"gpu_memory_utilization": 0.3}
    sup = Sup(env, {"a": dict(small), "b": dict(small), "c": dict(small)})
    sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    a_pid, b_pid = sup.model("a")["pid"], sup.model("b")["pid"]
    # a changes (new args), b goes, d comes, c stays as it is.
    models = {"a": dict(small, args=["--fake-admin"]), "c": dict(small), "d": dict(small)}
    sup.write_config(models)
    rc, body = sup.ctl_json("reload")
    check(rc == 0, body)
    check(body["added"] == ["d"] and body["removed"] == ["b"] and
          body["changed"] == ["a"], body)
    check(body["generation"] == 1, body)
    wait_until(lambda: not alive(b_pid), 20, "b to be stopped")
    st = sup.status()
    check(list(st["models"]) == ["a", "c", "d"], st["models"].keys())
    check(st["models"]["d"]["state"] == "stopped", st["models"]["d"])
    # a keeps running its old process; the change shows at its next start.
    check(st["models"]["a"]["pid"] == a_pid and alive(a_pid), st["models"]["a"])
    check(b"--fake-admin" not in cmdline(a_pid), "the old process, old args")
    sup.ctl_ok("stop", "a")
    sup.ctl_ok("wake", "a")
    check(b"--fake-admin" in cmdline(sup.model("a")["pid"]), "the new args took effect")
    rc, out, err = sup.ctl("wake", "b")
    check(rc == 1 and "Model not found: b" in err, (rc, out, err))
    sup.ctl_ok("wake", "d")
    # SIGHUP reloads too.
    models["e"] = dict(small)
    sup.write_config(models)
    sup.proc.signal(signal.SIGHUP)
    wait_until(lambda: "e" in sup.status()["models"], 10, "e after SIGHUP")
    check(sup.status()["supervisor"]["config_generation"] == 2, sup.status())


if __name__ == "__main__":
    harness.main()
