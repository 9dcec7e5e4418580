#!/usr/bin/env python3
"""test_e2e_backend_stop.py -- a backend SIGSTOPped. a serves a load of
streams and plain requests when its processes are stopped (SIGSTOP):
they accept connections and say nothing. The requests in flight and
those sent meanwhile end with an explicit error: 504 or a stream's error
event once the proxy's upstream_timeout_secs pass in silence, or 502
once the supervisor's health checks (health_check_secs) find a hung and
kill it. a is then restarted and later requests are served; b, switched
to while a hangs, is served too (a's drain ends when its requests do).
Nothing hangs; the daemons exit cleanly."""
import os
import signal
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack

ALLOW = [(504, "upstream_timeout"), (200, "upstream_timeout"), (502, "upstream_error"),
         (200, "upstream_closed")]


@harness.test
def backend_stopped(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "10", "--fake-engine-process"]},
                    "b": {"eviction": "offload+keep_running"}},
              extra="health_check_secs: 1\nproxy:\n  upstream_timeout_secs: 2\n").start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("a").kind == "ok", "a awake")
    load = Load(c, mix(["a"], stream=0.5, max_tokens=(20, 60)), clients=4)
    for round in range(scale(2, 6)):
        progress(ledger, 5, "a")
        old = s.status()["models"]["a"]["pid"]
        wait_until(lambda: s.status()["models"]["a"]["in_flight"] > 0, 10, "a busy")
        for pid in s.sup.model_pids("a"):
            os.kill(pid, signal.SIGSTOP)
        if round % 2 == 1:
            # A switch to b while a hangs: a's drain waits for its
            # requests, which end; b is served.
            got = []
            t = threading.Thread(target=lambda: got.append(c.send("b")), daemon=True)
            t.start()
            t.join(60)
            check(got and got[0].kind == "ok", "b served while a hung: %r" % got)
        m = wait_until(lambda: (lambda m: m if m["state"] == "ready" and
                                m["pid"] not in (None, old) else None)(
            s.status()["models"]["a"]), 60, "a killed and restarted")
        check(s.sup_log().count('msg="killing an unresponsive model" model=a') == round + 1,
              "a was found hung")
        say("round %d: a (pid %d) killed as hung, restarted as %d", round, old, m["pid"])
        progress(ledger, 5, "a", what="a served again")
    load.stop()
    idle(s)
    check(ledger.of("error"), "the requests a held ended in errors: %s" % ledger.summary())
    ledger.check(allow=ALLOW, models=("a",))
    # Killed while serving: a crash; while being put to sleep: an escalation.
    m = s.status()["models"]["a"]
    check(m["crashes"] + m["escalations"] == scale(2, 6), m)
    check(m["escalations"] == 0 or "the model was unresponsive" in m["last_error"], m)
    check(c.send("a", stream=True).kind == "ok" and c.send("b").kind == "ok", "both serve")
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
