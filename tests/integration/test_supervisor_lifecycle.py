#!/usr/bin/env python3
"""test_supervisor_lifecycle.py -- a model's life under llmux-supervisord:
lazy start and readiness, its port on loopback only (the stand-in alone
on every address, as vLLM), a start that fails (exit status and the last lines
of the log), a startup timeout, a crash noticed and restarted, a crash loop,
a hung model (a stopped process, a /health that answers 500) killed after
three failed health checks and handled as a crash, a stop that leaves
nothing behind, and SIGTERM leaving models running."""
import os
import signal
import subprocess

import harness
from harness import check, wait_until
from supervisor_helpers import (Sup, alive, as_root, listen_addresses, marked,
                                proc_uid, NOBODY)


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)


@harness.test
def lazy_start_and_readiness(env):
    sup = Sup(env, {"a": {"args": ["--fake-startup-ms", "300"]}, "b": {}})
    # b is woken last, by --json, to read its phases.
    sup.start()
    st = sup.status()
    check(st["state"] == "idle", st)
    check(st["mode"] == {"mode": "auto"}, st["mode"])
    for name in ("a", "b"):
        m = st["models"][name]
        check(m["process_state"] == "not_started" and m["pid"] is None, m)
        check(m["state"] == "stopped", m)
    # Nothing runs until a wake asks for it.
    check(sup.model_pids("a") == [] and sup.model_pids("b") == [], "lazy")

    rc, out, err = sup.ctl("wake", "a")
    check(rc == 0 and "Model a woken" in out, (rc, out, err))
    check("wake a: start" in err, "progress line: %r" % err)
    m = sup.model("a")
    check(m["process_state"] == "running" and m["state"] == "ready", m)
    check(sup.status()["state"] == "active:a", sup.status()["state"])
    check(sup.health("a") == 200, "a serves")
    pid = m["pid"]
    check(sup.model_pids("a") == [pid], sup.model_pids("a"))
    check(sup.model_pids("b") == [], "b is still not started")
    # How it was started.
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")[:-1]
    check(argv[1:8] == [b"serve", sup.model_path("a").encode(), b"--port",
                        str(sup.ports["a"]).encode(), b"--host", b"127.0.0.1",
                        b"--enable-sleep-mode"], argv)
    check(b"--served-model-name" in argv and argv[argv.index(b"--served-model-name") + 1] == b"a", argv)
    e = environ(pid)
    check(e.get(b"VLLM_SERVER_DEV_MODE") == b"1" and e.get(b"NO_COLOR") == b"1", e)
    check(b"NOTIFY_SOCKET" not in e, "no systemd variables")
    check(os.getsid(pid) == pid and os.getpgid(pid) == pid, "own session and group")
    check(os.readlink("/proc/%d/fd/0" % pid) == "/dev/null", "stdin")
    check(os.readlink("/proc/%d/fd/1" % pid).startswith("pipe:"), "stdout to the log keeper")
    check(proc_uid(pid) == (NOBODY if as_root() else os.getuid()), "runs as the supervisor's user")
    # Its output went to its log.
    wait_until(lambda: "Application startup complete" in sup.ctl_ok("logs", "a"), 10,
               "the model's log")
    # The start phase of b, printed for the record (timing is not checked
    # in tests).
    rc, body = sup.ctl_json("wake", "b")
    check(rc == 0 and [p["phase"] for p in body["phases"]] == ["start"], body)
    print("start phase of a model that needs no startup time: %d ms" % body["phases"][0]["ms"])


@harness.test
def model_port_on_loopback(env):
    """A model server is started with --host 127.0.0.1: its port, with its
    /sleep, /wake_up and /collective_rpc routes, is not on the network.
    The stand-in, as vLLM, binds every address when not told: started
    alone it is seen on 0.0.0.0, so the difference is the supervisor's."""
    import fakevllm_helpers
    sup = Sup(env, {"a": {}})
    sup.start()
    sup.ctl_ok("wake", "a")
    check(listen_addresses(sup.ports["a"]) == {"127.0.0.1"},
          listen_addresses(sup.ports["a"]))
    pid = sup.model("a")["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    check(argv[argv.index(b"--host") + 1] == b"127.0.0.1", argv)
    _, port = fakevllm_helpers.start(env, name="alone")
    check(listen_addresses(port) == {"0.0.0.0"}, listen_addresses(port))


@harness.test
def start_failure_has_exit_status_and_log(env):
    sup = Sup(env, {"a": {"args": ["--fake-exit-during-startup=3"]}})
    sup.start()
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 1, (rc, out, err))
    check("exited with status 3 while starting" in err, err)
    check("last lines of the model's log" in err, err)
    check("injected fault: exiting during startup" in err, err)
    m = sup.model("a")
    check(m["process_state"] == "failed:start failed: the model process exited with "
          "status 3 while starting", m)
    check(m["state"] == "failed" and m["pid"] is None, m)
    check(sup.model_pids("a") == [], "nothing left running")


@harness.test
def start_errors_are_reported(env):
    # A command that cannot be executed (its interpreter does not exist).
    sup = Sup(env, {"a": {}})
    bad = env.write("bad-vllm", "#!/nonexistent/interpreter\n")
    os.chmod(bad, 0o755)
    sup.command = bad
    sup.write_config(sup.models)
    sup.start()
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 1 and "start failed: cannot run %s: No such file or directory" % bad in err,
          (rc, out, err))
    # A log directory that cannot be made.
    sup.command = None
    sup.log_dir = "/dev/null/logs"
    sup.write_config(sup.models)
    sup.ctl_ok("reload")
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 1 and "cannot create log_dir /dev/null/logs" in err, (rc, out, err))
    check(sup.model("a")["state"] == "failed", sup.model("a"))


@harness.test
def startup_timeout(env):
    sup = Sup(env, {"a": {"args": ["--fake-health-500", "--fake-engine-process"],
                          "startup_timeout_secs": 1}})
    sup.start()
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 1, (rc, out, err))
    check("not ready after 1 s" in err and "answered 500" in err, err)
    check(sup.model("a")["state"] == "failed", sup.model("a"))
    wait_until(lambda: sup.model_pids("a") == [], 10, "the failed start to be stopped")


@harness.test
def crash_noticed_and_restarted(env):
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"]}})
    sup.start()
    sup.ctl_ok("wake", "a")
    old = sup.model("a")["pid"]
    tree = sup.model_pids("a")
    check(len(tree) == 2, "leader and engine: %r" % tree)
    os.kill(old, signal.SIGKILL)
    m = sup.wait_model("a", lambda m: m["restarts"] == 1 and m["state"] == "ready", 30,
                       "a to be restarted")
    check(m["crashes"] == 1, m)
    check("killed by signal 9" in m["last_error"], m)
    check(m["pid"] != old, m)
    # The old engine did not survive its leader.
    wait_until(lambda: not any(alive(p) for p in tree), 10, "the crashed tree to be gone")
    check(sup.health("a") == 200, "a serves again")
    metrics = sup.ctl_ok("metrics")
    check('llmux_supervisor_model_crashes_total{model="a"} 1' in metrics, metrics)
    check('llmux_supervisor_model_restarts_total{model="a"} 1' in metrics, metrics)


@harness.test
def crash_loop_stops_restarts(env):
    sup = Sup(env, {"a": {}})
    sup.start()
    sup.ctl_ok("wake", "a")
    for i in range(5):
        m = sup.wait_model("a", lambda m: m["state"] == "ready" and m["pid"] is not None
                           and m["crashes"] == i, 60, "a to run (round %d)" % i)
        os.kill(m["pid"], signal.SIGKILL)
    m = sup.wait_model("a", lambda m: m["crash_loop"], 30, "a crash loop")
    check(m["crashes"] == 5 and m["restarts"] == 4, m)
    check(m["state"] == "failed", m)
    out = sup.ctl_ok("status")
    check("crash loop" in out, out)
    # An operator's wake ends it.
    sup.ctl_ok("wake", "a")
    m = sup.model("a")
    check(m["state"] == "ready" and not m["crash_loop"], m)


@harness.test
def hung_model_is_killed_and_restarted(env):
    # health_check_secs 1: three checks unanswered (a stopped process)
    # make a model hung; it is killed and handled as a crash.
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"]},
                    "b": {"gpu_memory_utilization": 0.3, "eviction": "offload+keep_running"},
                    "c": {"gpu_memory_utilization": 0.3}},
              extra="health_check_secs: 1\n")
    sup.start()
    sup.ctl_ok("wake", "a")
    old = sup.model("a")["pid"]
    tree = sup.model_pids("a")
    for pid in tree:
        os.kill(pid, signal.SIGSTOP)
    m = sup.wait_model("a", lambda m: m["state"] == "ready" and m["pid"] not in (None, old), 30,
                       "a killed and restarted")
    check(m["crashes"] == 1 and "unresponsive (GET /health timed out" in m["last_error"] and
          "killed by signal 9" in m["last_error"], m)
    wait_until(lambda: not any(alive(p) for p in tree), 10, "the stopped tree gone")
    log = sup.log_text()
    check(log.count('msg="model failed its health check" model=a') == 3, log)
    check('msg="killing an unresponsive model" model=a' in log, log)
    # A server that answers 500 is hung too; asleep, it is not restarted
    # (failed: its next wake starts it).
    sup.ctl_ok("stop", "a")
    sup.ctl_ok("wake", "b")
    sup.ctl_ok("sleep", "b")
    old = sup.model("b")["pid"]
    status, _, _ = harness.http(sup.ports["b"], "POST", "/fake/faults",
                                {"fault": "health_500", "count": -1})
    check(status == 200, "the fault armed: %r" % status)
    m = sup.wait_model("b", lambda m: m["state"] == "failed", 30, "b killed")
    check("GET /health answered 500, 3 times in a row" in m["last_error"] and m["pid"] is None, m)
    check(m["restarts"] == 0, m)
    sup.ctl_ok("wake", "b")
    check(sup.model("b")["pid"] not in (None, old), "b started afresh")
    # A healthy model is left alone: c answers every check.
    sup.ctl_ok("wake", "c")
    pid = sup.model("c")["pid"]
    wait_until(lambda: sup.fake_state("c")["http_requests"] >= 5, 20, "c checked a few times")
    m = sup.model("c")
    check(m["crashes"] == 0 and m["pid"] == pid and m["state"] == "ready", m)


@harness.test
def hung_during_its_sleep(env):
    # A model that hangs in the middle of its /sleep is found by the same
    # checks (a server busy sleeping still answers /health): the sleep
    # escalates to a stop at once, not at the call's 120 s deadline.
    sup = Sup(env, {"a": {"args": ["--fake-sleep-level1-ms", "60000"],
                          "eviction": "offload+keep_running"}},
              extra="health_check_secs: 1\n")
    sup.start()
    sup.ctl_ok("wake", "a")
    p = subprocess.Popen([harness.binary("llmuxctl"), "--socket", sup.socket, "sleep", "a"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        sup.wait_model("a", lambda m: m["phase"] == "sleep", 10, "a sleeping")
        for pid in sup.model_pids("a"):
            os.kill(pid, signal.SIGSTOP)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    check(p.returncode == 0 and b"escalated to stop" in out + err and
          b"unresponsive" in out + err, (p.returncode, out, err))
    m = sup.model("a")
    check(m["state"] == "stopped" and m["escalations"] == 1, m)
    wait_until(lambda: sup.model_pids("a") == [], 10, "a's processes gone")


WRAPPER = """#!/bin/bash
# A model whose helpers hide: one ignores SIGTERM, one left the session.
(trap '' TERM; exec -a "%(marker)s-stubborn" sleep 10001) &
setsid bash -c 'exec -a "%(marker)s-escaped" sleep 10002' &
exec %(fake)s "$@"
"""


@harness.test
def stop_leaves_no_orphan(env):
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"]}})
    marker = env.path("helper")
    wrapper = env.write("vllm-wrapper", WRAPPER % {"marker": marker,
                                                   "fake": harness.binary("llmux-fakevllm")})
    os.chmod(wrapper, 0o755)
    sup.command = wrapper
    sup.write_config(sup.models)
    sup.start()
    sup.ctl_ok("wake", "a")
    wait_until(lambda: len(marked(marker)) == 2, 10, "the helpers to run")
    tree = sup.model_pids("a") + marked(marker)
    check(len(tree) == 4, tree)
    rc, out, err = sup.ctl("stop", "a")
    check(rc == 0 and "Model a stopped" in out, (rc, out, err))
    # The stop returns once every process is gone, the stubborn one by SIGKILL.
    check([p for p in tree if alive(p)] == [], "left: %r" % [p for p in tree if alive(p)])
    m = sup.model("a")
    check(m["process_state"] == "not_started" and m["pid"] is None, m)


@harness.test
def sigterm_leaves_models_running(env):
    sup = Sup(env, {"a": {}, "b": {}})
    proc = sup.start()
    sup.ctl_ok("wake", "a")
    pid = sup.model("a")["pid"]
    proc.signal(signal.SIGTERM)
    check(proc.wait(20) == 0, "clean exit")
    check(not os.path.exists(sup.socket), "socket removed")
    check(alive(pid) and sup.health("a") == 200, "a still serves")
    rc, out, err = sup.ctl("status")
    check(rc == 3, (rc, out, err))
    sup.start("supervisord-2")
    m = sup.model("a")
    check(m["pid"] == pid and m["state"] == "ready", m)
    out = sup.ctl_ok("stop", "--all")
    check("Model a stopped" in out and "Model b" not in out, out)
    check(not alive(pid), "stop --all stopped a")


@harness.test
def systemd_notify_and_watchdog(env):
    import socket as so
    sup = Sup(env, {"a": {}})
    path = os.path.join(sup.run, "notify")
    s = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o777)
    s.settimeout(20)
    got = []

    def wait_for(word):
        while not any(word in m for m in got):
            got.append(s.recv(4096).decode())
        return True

    os.environ["NOTIFY_SOCKET"] = path
    os.environ["WATCHDOG_USEC"] = "200000"
    try:
        proc = sup.start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
        del os.environ["WATCHDOG_USEC"]
    check(wait_for("READY=1"), got)
    # STATUS= says what is active: nothing yet.
    check(wait_for("STATUS=idle"), got)
    # WATCHDOG=1 keeps coming, at half the interval.
    n = len([m for m in got if "WATCHDOG=1" in m])
    while len([m for m in got if "WATCHDOG=1" in m]) < n + 3:
        got.append(s.recv(4096).decode())
    # The models do not see the notify socket.
    sup.ctl_ok("wake", "a")
    check(wait_for("STATUS=active: a"), got)
    check(b"NOTIFY_SOCKET" not in environ(sup.model("a")["pid"]), "not passed on")
    proc.signal(signal.SIGHUP)
    check(wait_for("RELOADING=1"), got)
    proc.signal(signal.SIGTERM)
    check(wait_for("STOPPING=1"), got)
    s.close()


if __name__ == "__main__":
    harness.main()
