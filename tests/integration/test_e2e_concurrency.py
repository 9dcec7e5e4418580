#!/usr/bin/env python3
"""test_e2e_concurrency.py -- max_concurrency: a model configured with
max_concurrency 2 is sent 10 requests at once. Its processes are stopped
(SIGSTOP) first, so that nothing ends while the test looks: the proxy has
2 forwarded and holds the other 8 in a's queue, which its metrics show
and the supervisor's demand counts as waiting. Then a runs again: all 10
are answered, the stand-in never held more than 2 at once (its /metrics
peak), and the 8 are counted as having waited. Model b, without a limit,
is sent 10 at once too and holds them all together."""
import os
import re
import signal

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, flood, idle
from switch_helpers import Parallel, Stack


def stand_in_metric(port, name):
    st, _, data = harness.http(port, "GET", "/metrics")
    check(st == 200, "the stand-in's /metrics: %d" % st)
    m = re.search(r"^%s\{[^}]*\} (\d+)$" % name, data.decode(), re.M)
    check(m, "%s in %r" % (name, data))
    return int(m.group(1))


def stopped(s, name, sig):
    for pid in s.sup.model_pids(name):
        os.kill(pid, sig)


@harness.test
def max_concurrency_holds_the_rest_in_the_queue(env):
    slow = ["--fake-token-ms", "20", "--fake-engine-process"]
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "max_concurrency": 2,
                          "args": slow},
                    "b": {"eviction": "offload+keep_running", "args": slow}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("a").kind == "ok", "a awake")
    port = s.status()["models"]["a"]["port"]
    waited = s.metric("llmux_requests_total", model="a", waited="true")

    stopped(s, "a", signal.SIGSTOP)
    try:
        par = Parallel()
        par.run(flood, s.port, ledger, [dict(model="a", max_tokens=10)] * 10)
        wait_until(lambda: s.metric("llmux_in_flight", model="a") == 2 and
                   s.metric("llmux_queue_depth", model="a") == 8, 60,
                   "2 forwarded to a and 8 in its queue")
        # The policy sees them as waiting: the demand the supervisor has.
        wait_until(lambda: s.status()["models"]["a"]["queue_depth"] == 8, 30,
                   "the supervisor to see 8 waiting")
    finally:
        stopped(s, "a", signal.SIGCONT)
    outs = par.join(120)[0]
    check(len(outs) == 10 and all(o.kind == "ok" for o in outs),
          "all 10 answered: %r" % [o for o in outs if o.kind != "ok"])
    peak = stand_in_metric(port, "fakevllm_requests_in_flight_peak")
    check(1 <= peak <= 2, "the stand-in held at most 2 at once, not %d" % peak)
    check(s.metric("llmux_requests_total", model="a", waited="true") == waited + 8,
          "8 of a's requests waited: %s" % s.metrics())

    # Without a limit, b's server holds all of them at once.
    check(c.send("b").kind == "ok", "b awake")
    port = s.status()["models"]["b"]["port"]
    stopped(s, "b", signal.SIGSTOP)
    try:
        par = Parallel()
        par.run(flood, s.port, ledger, [dict(model="b", max_tokens=10)] * 10)
        wait_until(lambda: s.metric("llmux_in_flight", model="b") == 10, 60,
                   "10 forwarded to b")
    finally:
        stopped(s, "b", signal.SIGCONT)
    check(all(o.kind == "ok" for o in par.join(120)[0]), "b answers all 10")
    check(stand_in_metric(port, "fakevllm_requests_in_flight_peak") <= 10, "b's peak")
    idle(s)
    ledger.check()
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
