#!/usr/bin/env python3
"""test_e2e_supervisor_kill.py -- kill -9 of the supervisor under load. a
is active and loaded (streams and plain requests), b asleep. The
supervisor is killed with SIGKILL: traffic to a keeps flowing through the
proxy; requests for b wait. A new supervisor re-adopts both models from
its journal (same pids, nothing started again, b still asleep), the
proxy reconnects, b's waiting requests are served after a switch, and
switching goes on. Every request gets its answer; the daemons exit
cleanly."""
import signal
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack


@harness.test
def supervisor_killed_under_load(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": ["--fake-token-ms", "3"]},
                    "b": {"eviction": "discard+keep_running", "args": ["--fake-token-ms", "3"]}},
              policy={"request_timeout_secs": 120}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("b").kind == "ok" and c.send("a").kind == "ok", "a active, b asleep")
    pids = {m: s.status()["models"][m]["pid"] for m in ("a", "b")}
    load = Load(c, mix(["a"], stream=0.4, max_tokens=(4, 20)), clients=4)
    for i in range(scale(2, 10)):
        progress(ledger, 10, "a")
        check(s.status()["state"] == "active:a", s.status())
        s.sup.proc.signal(signal.SIGKILL)
        s.sup.proc.wait(10)
        wait_until(lambda: not s.proxy_ready(), 10, "the proxy to see the supervisor go")
        # The proxy serves a, which it knew ready; b's requests wait.
        waiting = []
        t = threading.Thread(target=lambda: waiting.append(c.send("b", stream=True)),
                             daemon=True)
        t.start()
        progress(ledger, 10, "a", what="a served without a supervisor")
        check(not waiting, "b waits for the supervisor")
        s.sup.start("supervisord-%d" % (i + 2))
        wait_until(s.proxy_ready, 20, "the proxy back with the new supervisor")
        st = s.status()
        for m in ("a", "b"):
            check(st["models"][m]["pid"] == pids[m] and st["models"][m]["starts"] == 0,
                  "%s re-adopted, not restarted: %r" % (m, st["models"][m]))
        # Adopted in the states they had (b's waiting request may have
        # started a switch to b by the time status answers).
        log = s.sup_log()
        for m, state in (("a", "running"), ("b", "sleeping")):
            line = 'msg="adopted model process" model=%s pid=%d state=%s' % (m, pids[m], state)
            check(line in log, "%s adopted %s: %s" % (m, state, log[-3000:]))
        t.join(60)
        check(waiting and waiting[0].kind == "ok", "b's request served: %r" % waiting)
        progress(ledger, 10, "a", what="a served after the restart")
        say("round %d: re-adopted a (pid %d) and b (pid %d)", i, pids["a"], pids["b"])
    load.stop()
    idle(s)
    ledger.check()
    check("adopted model process" in s.sup_log(), "adopted")
    # Switching goes on with the same processes.
    check(c.send("b").kind == "ok" and c.send("a").kind == "ok", "switching works")
    check(all(s.status()["models"][m]["pid"] == pids[m] for m in ("a", "b")), s.status())
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
