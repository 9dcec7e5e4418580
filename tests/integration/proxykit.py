"""proxykit.py -- what the proxy's scenarios share: start llmux-proxyd in
front of a scripted supervisor (fakesup.py) and stand-in model servers
(upstub.py), connect from one loopback address or another, read the
answers of a connection in order, and read a process's memory."""
import http.client
import json
import os
import socket
import sys
import time

import harness
import fakesup
from e2e_helpers import Response

HERE = os.path.dirname(os.path.abspath(__file__))


def start_upstub(env, name):
    port = harness.free_port()
    env.spawn("upstub-" + name, [sys.executable, os.path.join(HERE, "upstub.py"),
                                 "--port", str(port), "--name", name])
    harness.wait_until(lambda: harness.http(port, "GET", "/health")[0] == 200,
                       what="upstub %s to listen" % name)
    return port


def stub_stats(port):
    return json.loads(harness.http(port, "GET", "/stats")[2])


class Stack:
    """A proxy, its scripted supervisor, and the ports."""

    def __init__(self, env, models, state=None, proxy_args=(), start=True, extra_env=None,
                 **config):
        self.env = env
        self.sock = env.path("sup.sock")
        self.port = harness.free_port()
        self.admin = harness.free_port()
        self.sup = fakesup.FakeSup(self.sock, fakesup.config_msg(models, port=self.port, **config),
                                   state)
        self.sup.start()
        self.proxy = None
        self.proxy_args = list(proxy_args)
        self.extra_env = extra_env
        if start:
            self.start_proxy()

    def start_proxy(self, name="proxyd", argv=None, extra_env=None):
        argv = argv or [harness.binary("llmux-proxyd"), "-v", "--socket", self.sock,
                        "--listen", "127.0.0.1:%d" % self.port,
                        "--admin-listen", "127.0.0.1:%d" % self.admin] + self.proxy_args
        # Under ASan, freed memory waits in a quarantine: keep it small so
        # the proxy's RSS still says what it holds.
        e = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                              ":quarantine_size_mb=8:thread_local_quarantine_size_kb=64").lstrip(":")}
        e.update(self.extra_env or {})
        e.update(extra_env or {})
        self.proxy = self.env.spawn(name, argv, extra_env=e)
        self.sup.wait_connected()
        harness.wait_until(self.health_ok, what="the proxy to answer /health")
        return self.proxy

    def health_ok(self):
        st, _, body = harness.http(self.port, "GET", "/health", timeout=2)
        return st == 200 and json.loads(body)["configured"]

    def post(self, body, path="/v1/chat/completions", headers=None, timeout=30):
        st, hdrs, data = harness.http(self.port, "POST", path, body, headers, timeout)
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            obj = data
        return st, hdrs, obj

    def rss_kb(self):
        return rss_kb(self.proxy.pid)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def error_code(obj):
    return obj["error"]["code"] if isinstance(obj, dict) and "error" in obj else None


def connect(port, source="127.0.0.1", timeout=10):
    """A connection to the proxy port from the address source. Every
    127.x.y.z is this machine, but the proxy counts each as a client of
    its own; 127.0.0.1 (like ::1) is in its reserve, free of the
    per-address limits."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def read_answers(s, n=None, timeout=10):
    """The responses the server sends on s, parsed in order, until n are
    whole or it closes the connection: (responses, closed). The last one
    may be incomplete; s stays open unless closed."""
    out = [Response()]
    closed = False
    deadline = time.monotonic() + timeout
    while n is None or sum(r.done for r in out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            out[-1].eof()
            closed = True
            break
        out[-1].feed(data)
        while out[-1].done and out[-1].extra:
            nxt = Response()
            nxt.feed(out[-1].extra)
            out[-1].extra = b""
            out.append(nxt)
        if out[-1].done:
            out.append(Response())
    return [r for r in out if r.status is not None], closed


def answer_code(resp):
    """The error code of a proxy-made answer (a Response), or None."""
    try:
        return json.loads(bytes(resp.body))["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def raw_request(port, data, timeout=10):
    """Send raw bytes, return everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return read_to_close(s)


def post_socket(port, obj, timeout=20, headers=b""):
    """A connection with a chat completion request for obj sent on it
    (headers: more header lines, each ending in CRLF)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    body = json.dumps(obj).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
              b"\r\n%s" % (headers, len(body), body))
    return s


def read_to_close(s):
    """Everything the server sends on s until it closes; s is closed."""
    out = b""
    try:
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()
