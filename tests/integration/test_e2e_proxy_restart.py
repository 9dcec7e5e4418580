#!/usr/bin/env python3
"""test_e2e_proxy_restart.py -- a proxy restart with its socket held. The
listening socket belongs to the test, as it belongs to systemd with
llmux-proxyd.socket; each proxy takes it through LISTEN_FDS. Under a
load of clients for a and b (streams and plain requests, switching),
the proxy is stopped with SIGTERM and a new one started on the same
socket, several times. No connection is refused or reset: what the old
proxy accepted is answered by it (in flight: finished; queued: 503 with
Retry-After), what arrives meanwhile waits in the socket's backlog for
the new one. The supervisor sees each new proxy; the daemons exit
cleanly."""
import signal

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, say, scale
from switch_helpers import Stack


@harness.test
def proxy_restarts_refuse_nothing(env):
    s = Stack(env, {"a": {"eviction": "offload+keep_running", "args": ["--fake-token-ms", "3"]},
                    "b": {"eviction": "offload+keep_running", "args": ["--fake-token-ms", "3"]}})
    s.sup.start()
    lsock = s.listen()
    s.start_proxy_activated(lsock, "proxyd-1")
    ledger = Ledger()
    c = Client(s.port, ledger)
    load = Load(c, mix(["a", "a", "b"], stream=0.4, max_tokens=(4, 30)), clients=6)
    for i in range(scale(3, 20)):
        progress(ledger, 20)
        old = s.proxy
        old.signal(signal.SIGTERM)
        check(old.wait(60) == 0, "the old proxy exits cleanly:\n" + old.output()[-3000:])
        s.start_proxy_activated(lsock, "proxyd-%d" % (i + 2), wait=False)
        progress(ledger, 20, what="requests through the new proxy")
        wait_until(s.proxy_ready, 20, "the new proxy configured")
        say("restart %d: %s", i + 1, ledger.summary())
    load.stop()
    idle(s)
    # Only what the old proxies had queued is refused, explicitly.
    ledger.check(allow=[(503, "model_unavailable")])
    check(c.send("a").kind == "ok" and c.send("b").kind == "ok", "both serve")
    check(s.sup_log().count('msg="proxy connected"') >= 2 * (scale(3, 20) + 1),
          "the supervisor saw each proxy")
    s.stop_clean()
    lsock.close()


if __name__ == "__main__":
    harness.main()
