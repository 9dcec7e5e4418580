#!/usr/bin/env python3
"""test_e2e_idle_kill.py -- a model server that dies between requests costs
no request. a's processes are SIGKILLed while nothing is in flight and
have exited, then 20 requests for it arrive at once: those the proxy
cannot deliver (connection refused, or closed before a byte of the
request was written) wait in a's queue while the supervisor restarts a,
and all 20 are answered 200, none 502.

It is done twice: once with the supervisor stopped (SIGSTOP) while a dies
and the requests come, so that the proxy is sure to find a's port closed
before the supervisor has seen the death: every request is held, the
proxy reports a unreachable, and when the supervisor runs again it
restarts a and the 20 are served; and once as it comes, the supervisor
racing the requests. Then a is killed in the middle of a stream: that
stream ends with the proxy's documented error event (upstream_closed),
and the requests sent right after it are all served. Under `make soak`,
five rounds."""
import os
import signal

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, flood, idle, say, scale
from supervisor_helpers import alive
from switch_helpers import Parallel, Stack


def kill_model(s, name, old=None):
    """SIGKILL every process of the model; (its pid before, the pids)."""
    if old is None:
        old = s.status()["models"][name]["pid"]
    pids = s.sup.model_pids(name)
    check(pids, "%s has processes" % name)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return old, pids


def gone(pids):
    """Wait until the processes have exited. One still exiting holds its
    port open: a connection it takes then is reset once the request is
    written, which the proxy cannot tell from a request the model read."""
    wait_until(lambda: not any(alive(p) for p in pids), 30, "the processes to exit")


def restarted(s, name, old):
    return wait_until(lambda: (lambda m: m if m["state"] == "ready" and m["pid"] != old
                               else None)(s.status()["models"][name]), 60,
                      "%s restarted" % name)


def all_served(outs, n, what):
    check(len(outs) == n and all(o.kind == "ok" and o.status == 200 for o in outs),
          "%s: all %d answered 200: %r" % (what, n, [o for o in outs if o.kind != "ok"]))


def warm(s, ledger):
    """Kept-alive connections to a in the proxy's pool, then quiet."""
    all_served(flood(s.port, ledger, [dict(model="a")] * 4), 4, "a serves")
    idle(s)


@harness.test
def idle_kill_loses_nothing(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "20", "--fake-engine-process"]},
                    "b": {"eviction": "offload+keep_running"}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("a").kind == "ok", "a awake")
    for rnd in range(scale(1, 5)):
        # The supervisor cannot see a die: the proxy finds it first.
        warm(s, ledger)
        old = s.status()["models"]["a"]["pid"]
        s.sup.proc.signal(signal.SIGSTOP)
        try:
            gone(kill_model(s, "a", old)[1])
            par = Parallel()
            par.run(flood, s.port, ledger, [dict(model="a", max_tokens=4)] * 20)
            wait_until(lambda: s.metric("llmux_queue_depth", model="a") == 20, 60,
                       "the proxy to hold the 20 requests")
            check(s.metric("llmux_in_flight", model="a") == 0, "none is in flight")
        finally:
            s.sup.proc.signal(signal.SIGCONT)
        all_served(par.join(120)[0], 20, "held while the supervisor was stopped")
        m = restarted(s, "a", old)
        say("round %d: a restarted, pid %d -> %d", rnd, old, m["pid"])

        # The same, the supervisor racing the requests.
        warm(s, ledger)
        old, pids = kill_model(s, "a")
        gone(pids)
        all_served(flood(s.port, ledger, [dict(model="a", max_tokens=4)] * 20), 20,
                   "after an idle kill")
        restarted(s, "a", old)

        # Killed mid-stream: that stream ends with the documented error.
        par = Parallel()
        par.run(c.send, "a", stream=True, max_tokens=400)
        wait_until(lambda: s.status()["models"]["a"]["in_flight"] > 0, 20, "a streaming")
        old, pids = kill_model(s, "a")
        o = par.join(60)[0]
        check(o.kind == "error" and o.code == "upstream_closed" and o.status == 200,
              "the stream ends with the error event: %r" % o)
        gone(pids)
        all_served(flood(s.port, ledger, [dict(model="a", max_tokens=4)] * 10), 10,
                   "the requests after it")
        restarted(s, "a", old)
    idle(s)
    ledger.check(allow=[(200, "upstream_closed")])
    check(not ledger.of(code="upstream_error"), "no 502: %s" % ledger.summary())
    log = s.sup_log()
    check("the proxy reports a model unreachable" in log, "the report is logged")
    check(c.send("b").kind == "ok" and c.send("a").kind == "ok", "b and a serve after")
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
