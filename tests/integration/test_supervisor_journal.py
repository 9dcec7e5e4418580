#!/usr/bin/env python3
"""test_supervisor_journal.py -- the state journal and re-adoption: kill -9
of the supervisor and a restart leave the models loaded and serving (same
processes, same state, not restarted); what died meanwhile is cleaned up;
a model removed from the config is stopped; a damaged journal is set aside;
with the journal lost or damaged, the models found on their ports are
adopted, not started beside their orphans.
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


def port_holders(port):
    """The pids that hold a socket listening on TCP port."""
    inodes = set()
    for name in ("tcp", "tcp6"):
        with open("/proc/net/%s" % name) as f:
            for line in f.readlines()[1:]:
                x = line.split()
                if x[3] == "0A" and int(x[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add("socket:[%s]" % x[9])
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % d):
                if os.readlink("/proc/%s/fd/%s" % (d, fd)) in inodes:
                    out.add(int(d))
                    break
        except OSError:
            continue
    return out


@harness.test
def lost_journal_adopts_models_on_their_ports(env):
    """The journal deleted, then damaged, while a model serves and another
    sleeps: the next supervisor finds each model's process on its port by
    its command line and adopts it, awake or asleep as it is (one process
    on the port, requests served, no restart, no crash loop). A port held
    by a program that is not llmux's is reported, and that program left
    alone."""
    import socket
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"], "gpu_memory_utilization": 0.3},
                    "b": {"args": ["--fake-admin"], "gpu_memory_utilization": 0.3,
                          "eviction": "offload+keep_running"},
                    "c": {}})
    proc = sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    sup.ctl_ok("sleep", "b")
    pids = {n: sup.model(n)["pid"] for n in ("a", "b")}
    starts = {n: proc_start_time(p) for n, p in pids.items()}
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", sup.ports["c"]))
    stranger.listen(1)
    for i, damage in enumerate(("deleted", "damaged")):
        proc.signal(signal.SIGKILL)
        proc.wait(10)
        path = os.path.join(sup.state_dir, "state")
        if damage == "deleted":
            os.unlink(path)
        else:
            with open(path, "w") as f:
                f.write("llmux-state 1\nmodel name=a pid=notanumber\n")
        proc = sup.start("supervisord-%s" % damage)
        sup.wait_model("a", lambda m: m["state"] == "ready", 20, "a adopted awake")
        sup.wait_model("b", lambda m: m["state"] == "sleeping", 20, "b adopted asleep")
        st = sup.status()["models"]
        for n in ("a", "b"):
            m = st[n]
            check(m["pid"] == pids[n] and proc_start_time(m["pid"]) == starts[n],
                  "%s: the same process: %r" % (n, m))
            check(m["starts"] == 0 and m["crashes"] == 0 and not m["crash_loop"], m)
            check(port_holders(sup.ports[n]) == {pids[n]}, "%s: one process on its port"
                  % n)
        check(st["b"]["process_state"] == "sleeping:Offload+KeepRunning", st["b"])
        check(sup.fake_state("b")["is_sleeping"], "b still asleep")
        log = proc.output()
        check("adopted a model process found on its port" in log, log)
        if damage == "damaged":
            check(os.path.exists(path + ".bad"), "the damaged journal kept aside")
        # Served: a request to a, and b woken in place.
        status, _, body = harness.http(sup.ports["a"], "POST", "/v1/completions",
                                       {"model": "a", "prompt": "hello", "max_tokens": 4},
                                       timeout=30)
        check(status == 200, (status, body))
        rc, body = sup.ctl_json("wake", "b")
        check(rc == 0 and [p["phase"] for p in body["phases"]] == ["wake_up", "health"], body)
        check(sup.model("b")["pid"] == pids["b"], sup.model("b"))
        sup.ctl_ok("sleep", "b")
        # c's port: another program's; reported, never signalled.
        c = sup.model("c")
        # (Run unprivileged, the supervisor cannot see whose it is.)
        held = "port %d is held by " % sup.ports["c"]
        check(c["pid"] is None and held in (c["last_error"] or "") and
              "which is not one of llmux's model processes" in c["last_error"], c)
    # Still listening: nothing of it was touched.
    with socket.create_connection(("127.0.0.1", sup.ports["c"]), timeout=5):
        conn, _ = stranger.accept()
        conn.close()
    stranger.close()


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
