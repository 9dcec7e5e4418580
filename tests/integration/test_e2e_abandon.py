#!/usr/bin/env python3
"""test_e2e_abandon.py -- clients that abandon their requests: streams
left half read while a switch waits to drain their model (the drain does
not wait for them: the proxy closes their upstream and the model server
stops generating), and requests left while queued for a model being
woken (they leave the queue). Under a load of clients that stay, every
other request is answered whole, the counts of the proxy, the supervisor
and the model servers come back to zero, and the daemons exit cleanly."""
import threading

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack, give_up_request


def running(s, m):
    return s.sup.fake_state(m)["requests_running"]


@harness.test
def abandoned_streams_and_queued_requests(env):
    fast = ["--fake-admin", "--fake-token-ms", "20"]
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": fast},
                    "b": {"eviction": "offload+keep_running",
                          "args": fast + ["--fake-wake-ms", "1500"]},
                    "c": {"eviction": "discard+keep_running", "args": fast}}).start()
    ledger = Ledger()
    c = Client(s.port, ledger)
    check(c.send("a").kind == "ok", "a awake")

    # Streams for a, abandoned after a few events, while b waits for a's
    # drain: the switch goes on once they are gone.
    threads = []
    for i in range(6):
        t = threading.Thread(target=c.send, args=("a",),
                             kwargs={"stream": True, "max_tokens": 500, "abandon_after": 3},
                             daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(30)
    check(ledger.count("abandoned") == 6, ledger.summary())
    wait_until(lambda: running(s, "a") == 0, 10, "a stopped generating for them")
    check(c.send("b").kind == "ok", "b served after a's abandoned streams")
    # Each stopped after a few of its 500 tokens.
    check(s.sup.fake_state("a")["tokens_generated"] < 100, s.sup.fake_state("a"))

    # Requests for b queued behind its (slow) wake, abandoned there; the
    # one that stays is served.
    check(c.send("a").kind == "ok", "a again")
    keeper = threading.Thread(target=c.send, args=("b",), kwargs={"max_tokens": 3},
                              daemon=True)
    keeper.start()
    wait_until(lambda: s.status()["models"]["b"]["state"] == "waking", 10, "b waking")
    quitters = [give_up_request(s.port, "b") for i in range(5)]
    wait_until(lambda: s.status()["models"]["b"]["queue_depth"] == 6, 10, "six queued for b")
    for q in quitters:
        q.close()
    wait_until(lambda: s.status()["models"]["b"]["queue_depth"] <= 1, 10, "five left the queue")
    keeper.join(30)
    check(ledger.count("ok", "b") == 2, ledger.summary())

    # The same, mixed into a load that switches back and forth.
    pick_ok = mix(["a", "c"], stream=0.5, max_tokens=(2, 10))

    def pick(r):
        kw = pick_ok(r)
        x = r.random()
        if x < 0.2:
            kw.update(stream=True, max_tokens=200, abandon_after=r.randint(1, 5))
        elif x < 0.3:
            kw.update(abandon_after=0)
        return kw
    load = Load(c, pick, clients=5, seed=7)
    progress(ledger, scale(60, 1500), timeout=scale(90, 900))
    load.stop()
    idle(s)
    for m in ("a", "b", "c"):
        wait_until(lambda: running(s, m) == 0 and
                   s.sup.fake_state(m)["requests_waiting"] == 0, 10, "%s idle" % m)
        wait_until(lambda: s.status()["models"][m]["in_flight"] == 0 and
                   s.status()["models"][m]["queue_depth"] == 0, 10,
                   "the supervisor sees %s idle" % m)
    say("abandoned: %d", ledger.count("abandoned"))
    ledger.check()
    check(all(c.send(m).kind == "ok" for m in "abc"), "every model serves on")
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
