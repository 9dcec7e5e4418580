#!/usr/bin/env python3
"""test_supervisor_journal.py -- the state journal and re-adoption: kill -9
of the supervisor and a restart leave the models loaded and serving (same
processes, same state, not restarted); what died meanwhile is cleaned up;
a model removed from the config is stopped; a damaged journal is set aside.
"""
import os
import signal

import harness
from harness import check, wait_until
from supervisor_helpers import Sup, alive, proc_start_time


def journal(sup):
    with open(os.path.join(sup.state_dir, "state")) as f:
        return f.read()


@harness.test
def kill9_and_restart_keeps_models(env):
    # Small models: a and b are awake side by side.
    sup = Sup(env, {"a": {"args": ["--fake-admin", "--fake-engine-process"],
                          "gpu_memory_utilization": 0.3},
                    "b": {"args": ["--fake-admin"], "gpu_memory_utilization": 0.3},
                    "c": {"gpu_memory_utilization": 0.3}})
    proc = sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    sup.ctl_ok("sleep", "b", "--eviction", "offload+keep_running")
    sup.ctl_ok("eviction", "c", "discard+stop")
    sup.ctl_ok("pin", "a")
    before = sup.status()
    a, b = before["models"]["a"], before["models"]["b"]
    tree = sup.model_pids("a")
    starts = {p: proc_start_time(p) for p in tree + [b["pid"]]}
    j = journal(sup)
    check("name=a pid=%d" % a["pid"] in j and "state=sleeping" in j, j)

    proc.signal(signal.SIGKILL)
    proc.wait(10)
    # The models did not notice.
    check(sup.health("a") == 200 and sup.health("b") == 200, "models serve on")
    rc, out, err = sup.ctl("status")
    check(rc == 3 and "not running" in err, (rc, out, err))

    sup.start("supervisord-2")
    after = sup.status()
    for name in ("a", "b"):
        m, old = after["models"][name], before["models"][name]
        for k in ("pid", "process_state", "state", "generation", "port"):
            check(m[k] == old[k], "%s.%s: %r then %r" % (name, k, old[k], m[k]))
        check(m["starts"] == 0, "not started again: %r" % m)
    check(after["models"]["c"]["eviction"] == {"weights": "discard", "process": "stop"},
          after["models"]["c"])
    check(after["mode"] == {"mode": "manual", "pinned": "a"}, after["mode"])
    check(after["state"] == "active:a", after["state"])
    # The very same processes, not new ones with the same pids.
    for p, t in starts.items():
        check(alive(p) and proc_start_time(p) == t, "process %d kept" % p)
    check(sup.fake_state("b")["is_sleeping"], "b still asleep")
    log = sup.env.procs[-1].output()
    check("adopted model process" in log, log)
    # Adopted processes are watched: a crash is noticed, and b wakes.
    rc, body = sup.ctl_json("wake", "b")
    check(rc == 0 and [p["phase"] for p in body["phases"]] == ["wake_up", "health"], body)
    os.kill(a["pid"], signal.SIGKILL)
    m = sup.wait_model("a", lambda m: m["crashes"] == 1, 20, "the crash of an adopted a")
    check("status unknown" in m["last_error"], m)
    wait_until(lambda: not any(alive(p) for p in tree), 10, "a's old tree gone")


@harness.test
def dead_processes_are_cleaned_up(env):
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"], "gpu_memory_utilization": 0.3},
                    "b": {"gpu_memory_utilization": 0.3}})
    proc = sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    tree = sup.model_pids("a")
    leader = sup.model("a")["pid"]
    check(len(tree) == 2 and leader in tree, tree)
    proc.signal(signal.SIGKILL)
    proc.wait(10)
    # a's leader dies while no supervisor runs; its engine is orphaned.
    os.kill(leader, signal.SIGKILL)
    sup.start("supervisord-2")
    m = sup.model("a")
    check(m["state"] == "stopped" and m["pid"] is None, m)
    check("exited while the supervisor was not running" in m["last_error"], m)
    wait_until(lambda: not any(alive(p) for p in tree), 10, "a's leftovers killed")
    check(sup.model("b")["state"] == "ready", "b adopted")


@harness.test
def removed_model_is_stopped_at_restart(env):
    sup = Sup(env, {"a": {}, "b": {}})
    proc = sup.start()
    sup.ctl_ok("wake", "b")
    pid = sup.model("b")["pid"]
    proc.signal(signal.SIGTERM)
    proc.wait(10)
    check(alive(pid), "b left running")
    del sup.models["b"]
    sup.write_config(sup.models)
    sup.start("supervisord-2")
    wait_until(lambda: not alive(pid), 20, "b, no longer configured, to be stopped")
    check("b" not in sup.status()["models"], sup.status())


@harness.test
def damaged_journal_is_set_aside(env):
    sup = Sup(env, {"a": {}})
    os.makedirs(sup.state_dir)
    os.chmod(sup.state_dir, 0o777)
    with open(os.path.join(sup.state_dir, "state"), "w") as f:
        f.write("llmux-state 1\nmodel name=a pid=notanumber\n")
    os.chmod(os.path.join(sup.state_dir, "state"), 0o666)
    sup.start()
    check("state journal is unreadable" in sup.log_text(), sup.log_text())
    check(os.path.exists(os.path.join(sup.state_dir, "state.bad")), "kept aside")
    check(sup.model("a")["state"] == "stopped", sup.model("a"))
    sup.ctl_ok("wake", "a")
    wait_until(lambda: "name=a pid=" in journal(sup), 10, "a new journal")


@harness.test
def replies_wait_for_the_journal(env):
    """What llmuxctl was told is in the journal on disk when it is told:
    a supervisor killed right after cannot forget it."""
    sup = Sup(env, {"a": {"gpu_memory_utilization": 0.3},
                    "b": {"gpu_memory_utilization": 0.3}})
    sup.start()
    sup.ctl_ok("wake", "a")
    check("name=a " in journal(sup) and "state=running" in journal(sup), journal(sup))
    for i in range(10):
        sup.ctl_ok("pin", "a")
        check(" pinned=a" in journal(sup).splitlines()[2], journal(sup))
        sup.ctl_ok("eviction", "b", "discard+stop" if i % 2 else "offload+keep_running")
        j = journal(sup)
        check("override=%s" % ("discard+stop" if i % 2 else "offload+keep_running") in j, j)
        sup.ctl_ok("unpin")
        check(" pinned=" not in journal(sup).splitlines()[2], journal(sup))
    sup.ctl_ok("sleep", "a", "--eviction", "offload+keep_running")
    j = journal(sup)
    check("state=sleeping" in j and "sleeping=offload+keep_running" in j, j)


@harness.test
def journal_write_failure_is_reported(env):
    sup = Sup(env, {"a": {}}, extra="")
    sup.state_dir = "/proc/llmux-no-such-dir"
    sup.write_config(sup.models)
    sup.start()
    sup.ctl_ok("wake", "a")
    wait_until(lambda: "cannot write the state journal" in sup.log_text(), 10,
               "the warning")
    metrics = sup.ctl_ok("metrics")
    check("llmux_supervisor_journal_failures 0" not in metrics and
          "llmux_supervisor_journal_writes_total 0" in metrics, metrics)
    check(sup.model("a")["state"] == "ready", "serving on regardless")


if __name__ == "__main__":
    harness.main()
