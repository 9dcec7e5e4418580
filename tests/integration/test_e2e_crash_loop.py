#!/usr/bin/env python3
"""test_e2e_crash_loop.py -- a crash-looping backend. c's server dies on
every stream it serves (after its first token), and a client keeps
asking it for streams. Each of c's streams ends with an explicit error
(the proxy's error event, or 502 for one sent to the dead port before
the supervisor saw it die), never a hang or a silent cut; c is started
again after each crash (by the next request, sooner than its crash
restart) until its fifth short run in a row, then left failed with
crash_loop set (shown by llmuxctl status). Then, under a load of
clients for a, a request for c still wakes it (and c dies on every
stream it is asked for, ending each explicitly, even while it is being
switched away from); a's clients are all served; `llmuxctl wake` clears
the crash loop; the daemons exit cleanly. Under `make soak` also: a model
killed each time it comes back, with no request asking for it, is
restarted by itself with a growing delay until the crash loop."""
import os
import signal

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say
from switch_helpers import Stack

ALLOW = [(200, "upstream_closed"), (502, "upstream_error"), (503, "model_failed")]


@harness.test
def crash_looping_backend(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": ["--fake-token-ms", "2"]},
                    "c": {"eviction": "offload+keep_running",
                          "args": ["--fake-crash-after-tokens", "1", "--fake-token-ms", "5"]}}
              ).start()
    ledger = Ledger()
    cl = Client(s.port, ledger)
    check(cl.send("a").kind == "ok", "a awake")
    crashes = 0
    while not s.status()["models"]["c"]["crash_loop"]:
        o = cl.send("c", stream=True, max_tokens=20)
        check(o.kind == "error", "c's stream ends with an explicit error: %r" % o)
        wait_until(lambda: s.status()["models"]["c"]["crashes"] > crashes or
                   s.status()["models"]["c"]["crash_loop"], 30, "c's crash noticed")
        crashes = s.status()["models"]["c"]["crashes"]
        check(crashes <= 10, "a crash loop is declared: %r" % s.status()["models"]["c"])
    m = s.status()["models"]["c"]
    say("crash loop after %d crashes: %r", m["crashes"], m)
    check(m["crashes"] == 5 and m["state"] == "failed", m)
    check("crash loop" in s.sup.ctl_ok("status"), "llmuxctl status says so")
    check('msg="model is crash-looping, not restarting it" model=c' in s.sup_log(), "logged")
    load = Load(cl, mix(["a"], stream=0.3), clients=2)
    progress(ledger, 10, "a")
    # A request for c still wakes it.
    o = cl.send("c", max_tokens=4)
    check(o.kind == "ok", "a plain request for c: %r" % o)
    for i in range(3):
        o = cl.send("c", stream=True, max_tokens=20)
        check(o.kind == "error", "c's stream ends with an explicit error: %r" % o)
        progress(ledger, 5, "a")
    load.stop()
    idle(s)
    ledger.check(allow=ALLOW, models=("c",))
    s.sup.ctl_ok("wake", "c")
    check(not s.status()["models"]["c"]["crash_loop"], "wake clears the crash loop")
    check(cl.send("a").kind == "ok", "a serves")
    s.stop_clean()


if harness.SOAK:
    @harness.test
    def killed_each_time_it_restarts(env):
        s = Stack(env, {"a": {}, "c": {}}).start()
        cl = Client(s.port, Ledger())
        check(cl.send("c").kind == "ok", "c awake")
        pids = set()
        while True:
            m = wait_until(lambda: (lambda m: m if m["crash_loop"] or (
                m["state"] == "ready" and m["pid"] not in pids) else None)(
                    s.status()["models"]["c"]), 60, "c restarted by itself")
            if m["crash_loop"]:
                break
            pids.add(m["pid"])
            for pid in s.sup.model_pids("c"):
                os.kill(pid, signal.SIGKILL)
        check(len(pids) == 5 and m["restarts"] == 4, m)
        log = s.sup_log()
        for delay in (500, 1000, 2000, 4000):
            check('msg="restarting model after crash" model=c delay_ms=%d' % delay in log, log)
        check(cl.send("a").kind == "ok", "a serves")
        s.stop_clean()


if __name__ == "__main__":
    harness.main()
