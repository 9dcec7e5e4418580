#!/usr/bin/env python3
"""test_e2e_flood.py -- a flood while a model sleeps: b is asleep (and a
serving a load of its own) when a flood of requests for b arrives at
once, plain and streamed. b is woken, every request of the flood is
answered by b, whole, and a's clients are served before, during (as the
policy switches back for them) and after."""
import harness
from harness import check
from e2e_helpers import Client, Ledger, Load, flood, idle, mix, progress, rss_kb, \
    sanitized, say, scale
from switch_helpers import Stack


@harness.test
def flood_while_asleep(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "2"]},
                    "b": {"eviction": "offload+keep_running",
                          "args": ["--fake-token-ms", "1", "--fake-wake-ms", "500"]}},
              policy={"request_timeout_secs": 300}).start()
    ledger = Ledger()
    c = Client(s.port, ledger, timeout=300)
    check(c.send("b").kind == "ok" and c.send("a").kind == "ok", "b asleep, a active")
    check(s.status()["models"]["b"]["state"] == "sleeping", s.status())
    load = Load(c, mix(["a"], stream=0.3), clients=2)
    progress(ledger, 10, "a")
    n = scale(800, 8000)
    outs = flood(s.port, ledger, [{"model": "b", "stream": i % 4 == 0, "max_tokens": 4}
                                  for i in range(n)], timeout=scale(120, 600))
    bad = [o for o in outs if o.kind != "ok"]
    check(not bad, "%d of the flood not served, the first: %r" % (len(bad), bad[:5]))
    progress(ledger, 10, "a")
    load.stop()
    idle(s)
    ledger.check()
    check(s.sup.fake_state("b")["requests_served"] == n + 1, s.sup.fake_state("b"))
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) >= 1, s.metrics())
    say("flood of %d served; switches a->b %s", n,
        s.metric("llmux_switches_total", **{"from": "a", "to": "b"}))
    if not sanitized(s.proxy.pid):
        say("proxy RSS %d kB", rss_kb(s.proxy.pid))
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
