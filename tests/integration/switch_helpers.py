"""switch_helpers.py -- what the switching scenarios share: the whole stack
on loopback (a real llmux-supervisord running llmux-fakevllm models, a real
llmux-proxyd in front of it), requests through the proxy, the control HTTP
API and /metrics, and requests sent side by side from threads.
"""
import json
import re
import signal
import socket
import threading

import harness
from harness import check, wait_until
from supervisor_helpers import Sup

# Quick switches: no minimum time active unless a scenario asks for one.
POLICY = {"policy_type": "fifo", "min_active_secs": 0}


class Stack:
    """A supervisor of fakevllm models and a proxy in front of it.

    models: as for Sup; policy: keys of the config's policy section."""

    def __init__(self, env, models, policy=None, extra="", verbose=True):
        self.env = env
        pol = dict(POLICY)
        pol.update(policy or {})
        text = "policy:\n" + "".join("  %s: %s\n" % (k, v) for k, v in pol.items())
        self.sup = Sup(env, models, extra=text + extra)
        self.port = harness.free_port()
        self.admin = harness.free_port()
        self.proxy = None
        # Without -v (benchmarks): info logs only, as in production.
        self.verbose = ["-v"] if verbose else []
        if not verbose:
            argv = self.sup.argv
            self.sup.argv = lambda: [a for a in argv() if a != "-v"]

    def start(self):
        self.sup.start()
        self.start_proxy()
        return self

    def start_proxy(self, name="proxyd"):
        argv = [harness.binary("llmux-proxyd")] + self.verbose + ["--socket", self.sup.socket,
                "--listen", "127.0.0.1:%d" % self.port,
                "--admin-listen", "127.0.0.1:%d" % self.admin]
        self.proxy = self.env.spawn(name, argv)
        wait_until(self.proxy_ready, 20, "the proxy to be configured")
        return self.proxy

    def listen(self):
        """A listening socket on the proxy port, held by the test as systemd
        holds it: proxies started with start_proxy_activated take it."""
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", self.port))
        lsock.listen(1024)
        return lsock

    def start_proxy_activated(self, lsock, name="proxyd", wait=True):
        """The proxy on lsock (LISTEN_FDS), as after a systemd restart."""
        argv = [harness.binary("llmux-proxyd")] + self.verbose + [
            "--socket", self.sup.socket, "--admin-listen", "127.0.0.1:%d" % self.admin]
        self.proxy = self.env.spawn(name, harness.activated(argv, lsock.fileno()),
                                    pass_fds=(lsock.fileno(),))
        if wait:
            wait_until(self.proxy_ready, 20, "the proxy to be configured")
        return self.proxy

    def stop_clean(self, timeout=60):
        """SIGTERM the proxy, then the supervisor; each must still be
        running and exit 0 (under ASan an error or a leak found at exit
        makes it exit otherwise)."""
        for p, what in ((self.proxy, "llmux-proxyd"), (self.sup.proc, "llmux-supervisord")):
            if p is None:
                continue
            check(p.alive(), "%s is still running:\n%s" % (what, p.output()[-3000:]))
            p.signal(signal.SIGTERM)
            rc = p.wait(timeout)
            check(rc == 0, "%s exits 0, not %r:\n%s" % (what, rc, p.output()[-6000:]))

    def proxy_ready(self):
        st, _, body = harness.http(self.port, "GET", "/health", timeout=2)
        if st != 200:
            return False
        h = json.loads(body)
        return h["configured"] and h["supervisor"]

    # ---- requests ---------------------------------------------------------

    def chat(self, model, text="hello", max_tokens=4, timeout=60, headers=None):
        """One chat request through the proxy: (status, decoded body)."""
        body = {"model": model, "messages": [{"role": "user", "content": text}],
                "max_tokens": max_tokens, "temperature": 0}
        st, _, data = harness.http(self.port, "POST", "/v1/chat/completions", body,
                                   headers, timeout)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data

    def served(self, model, **kw):
        """A request that must be answered 200; returns the model that served it."""
        st, body = self.chat(model, **kw)
        check(st == 200, "request for %s: %d %r" % (model, st, body))
        check(body["choices"][0]["message"]["content"], "an answer: %r" % body)
        return body["model"]

    def control(self, method, path, body=None, timeout=60, token=True):
        """A control API call, with the admin token unless token is False
        (or another token, a string)."""
        headers = {}
        if token:
            headers["Authorization"] = "Bearer %s" % (
                self.sup.token if token is True else token)
        return harness.http_json(self.admin, method, path, body, headers=headers,
                                 timeout=timeout)

    def status(self):
        st, body = self.control("GET", "/control/status")
        check(st == 200, "status: %d %r" % (st, body))
        return body

    def metrics(self):
        st, _, data = harness.http(self.admin, "GET", "/metrics")
        check(st == 200, "metrics: %d" % st)
        return data.decode()

    def metric(self, name, **labels):
        """The value of one sample of /metrics, or None."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
            if not m or m.group(1) != name:
                continue
            got = ",".join(sorted((m.group(2) or "{}")[1:-1].split(","))) \
                if m.group(2) else ""
            if got == want:
                return float(m.group(3))
        return None

    def state(self):
        return self.status()["state"]

    def wait_state(self, want, timeout=30):
        return wait_until(lambda: self.state() == want, timeout,
                          "the switcher to be %s (now %s)" % (want, self.state()))

    def sup_log(self):
        return self.sup.log_text()


class Parallel:
    """Run functions in threads; results (or exceptions) in start order."""

    def __init__(self):
        self.threads = []
        self.results = []

    def run(self, fn, *args, **kw):
        i = len(self.results)
        self.results.append(None)

        def body():
            try:
                self.results[i] = ("ok", fn(*args, **kw))
            except Exception as e:  # reported by join()
                self.results[i] = ("error", e)
        t = threading.Thread(target=body, daemon=True)
        self.threads.append(t)
        t.start()
        return i

    def join(self, timeout=120):
        for t in self.threads:
            t.join(timeout)
            check(not t.is_alive(), "a request thread did not end")
        out = []
        for kind, v in self.results:
            if kind == "error":
                raise v
            out.append(v)
        return out


def give_up_request(port, model, text="hello"):
    """Send a request and return its socket, unanswered (close it to give up)."""
    body = json.dumps({"model": model, "max_tokens": 4,
                       "messages": [{"role": "user", "content": text}]}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    return s
