#!/usr/bin/env python3
"""test_proxy_hostile.py -- the proxy's front door under attack: a real
supervisor with two llmux-fakevllm models, both resident, and a steady load
of ordinary requests from one address, while clients from other addresses
attack the proxy port all at once for a few seconds:

  idle connections beyond the per-address cap     503 + Retry-After
  slowloris heads, one byte at a time             408
  bodies that stop                                408
  half-sent large bodies beyond the address's
  share of max_buffered_body_mb                   503 + Retry-After
  Content-Length with Transfer-Encoding           400, closed
  two different Content-Lengths                   400, closed
  an unknown transfer coding                      501, closed
  a declared length over max_body_bytes           413, before the body
  a 16 MiB body with "model" last                 200, from that model
  requests pipelined after /health                each answered, in order

The per-address slots are held by requests to a third model that never
answers (so that no time limit frees one meanwhile). The load loses
nothing (every request whole, no error), each attack gets
its status, and the proxy's RSS comes back to within 50 MB of where it
started (not checked under ASan, whose allocator keeps freed memory).
Limits and timeouts are lowered in the config, so that it runs in
seconds; the supervisor passes them on to the proxy.
"""
import json
import socket
import threading
import time

import harness
from harness import check, wait_until
from e2e_helpers import Client, Ledger, Load, idle, mix, progress, rss_kb, sanitized, say
from proxykit import answer_code, connect, read_answers
from switch_helpers import Stack

PROXY = """proxy:
  max_connections: 200
  max_connections_per_ip: 16
  max_buffered_body_mb: 48
  max_body_bytes: 20MiB
  header_timeout_ms: 1000
  body_timeout_ms: 1000
  keepalive_timeout_secs: 2
"""
PER_IP = 16
MIB = 1 << 20
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"


def chat(model, extra=b"", close=False, text="hello", stream=False):
    body = json.dumps({"model": model, "max_tokens": 4, "stream": stream,
                       "messages": [{"role": "user", "content": text}]}).encode()
    return (HEAD + extra + (b"Connection: close\r\n" if close else b"") +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


class Attacks:
    """Each attack runs in its own thread, from its own address; what each
    connection got is recorded as (attack, what it expected, what came)."""

    def __init__(self, stack):
        self.port = stack.port
        self.metric = stack.metric
        self.lock = threading.Lock()
        self.seen = []
        self.threads = []

    def got(self, name, want, statuses):
        with self.lock:
            self.seen.append((name, want, statuses))

    def run(self, fn, source):
        t = threading.Thread(target=self.guard, args=(fn, source), daemon=True)
        self.threads.append(t)
        t.start()

    def guard(self, fn, source):
        try:
            fn(source)
        except Exception as e:  # recorded: the test fails on it
            self.got(fn.__name__, "no exception", ["%s: %s" % (type(e).__name__, e)])

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
            check(not t.is_alive(), "an attack is stuck")

    def statuses(self, s, n=None, timeout=15):
        answers, closed = read_answers(s, n, timeout)
        s.close()
        return [a.status for a in answers], answers, closed

    # ---- the attacks ----------------------------------------------------

    def beyond_cap(self, src):
        # The address's slots are held by streams of model c, which stall
        # after their first token: no time limit frees one meanwhile.
        held = []
        for _ in range(PER_IP):
            s = connect(self.port, src)
            s.sendall(chat("c", stream=True))
            held.append(s)
        wait_until(lambda: self.metric("llmux_in_flight", model="c") == PER_IP, 30,
                   "the streams of c to hold their slots")
        for _ in range(8):
            st, answers, closed = self.statuses(connect(self.port, src), 1)
            ok = st == [503] and int(answers[0].headers.get("retry-after", 0)) > 0 and \
                answer_code(answers[0]) == "too_many_connections"
            self.got("idle connections beyond the per-address cap", [503],
                     st if not ok else [503])
        for s in held:
            s.close()

    def idle(self, src):
        # Idle connections are closed after header_timeout_ms, unanswered.
        for s in [connect(self.port, src) for _ in range(6)]:
            st, _, closed = self.statuses(s)
            self.got("idle connections", ["closed"], st + (["closed"] if closed else []))

    def slowloris(self, src):
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
        conns = [connect(self.port, src) for _ in range(10)]
        done = {}
        i = 0
        deadline = time.monotonic() + 10
        while len(done) < len(conns) and time.monotonic() < deadline:
            for s in conns:
                if s in done:
                    continue
                try:
                    s.sendall(head[i:i + 1])
                except OSError:
                    pass
                s.setblocking(False)
                try:
                    data = s.recv(65536)
                    done[s] = data
                except BlockingIOError:
                    pass
                except OSError:
                    done[s] = b""
                s.setblocking(True)
            i = min(i + 1, len(head) - 1)
            time.sleep(0.1)
        for s in conns:
            st, _, _ = self.statuses(s) if s not in done else ([], None, None)
            data = done.get(s, b"")
            status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None
            self.got("slowloris", [408], [status] if status else st)

    def slow_bodies(self, src):
        conns = []
        for _ in range(8):
            s = connect(self.port, src)
            s.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{\"model\":")
            conns.append(s)
        for s in conns:
            s.sendall(b"\"a\",")		# a little more, then nothing
        for s in conns:
            self.got("a body that stops", [408], self.statuses(s)[0])

    def half_sent_bodies(self, src):
        first = connect(self.port, src, timeout=30)
        first.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % (8 * MIB) + b"x" * (4 * MIB))
        # Counted: the address holds 8 MiB, the others are over its share.
        wait_until(lambda: self.metric("llmux_proxy_buffered_body_bytes") >= 8 * MIB, 30,
                   "the first body to be counted")
        for _ in range(4):
            s = connect(self.port, src, timeout=30)
            s.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % (8 * MIB))
            st, answers, _ = self.statuses(s, 1)
            ok = st == [503] and answer_code(answers[0]) == "request_buffers_full"
            self.got("half-sent bodies beyond the share", [503], st if not ok else [503])
        self.got("the half-sent body", [408], self.statuses(first)[0])
        self.model_last("127.0.0.7")

    def framing(self, src):
        cases = [
            ("CL+TE", 400, b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"0\r\n\r\nGET /health HTTP/1.1\r\n\r\n"),
            ("two CLs", 400, b"Content-Length: 13\r\nContent-Length: 2\r\n\r\n"
                             b"{\"model\":\"a\"}"),
            ("unknown coding", 501, b"Transfer-Encoding: xchunked\r\n\r\n"
                                    b"d\r\n{\"model\":\"a\"}\r\n0\r\n\r\n"),
        ]
        for name, status, rest in cases:
            s = connect(self.port, src)
            s.sendall(HEAD + rest)
            st, answers, closed = self.statuses(s)
            self.got(name, [status, "closed"], st + (["closed"] if closed else []))
        # Declared too large: answered before one byte of the body.
        s = connect(self.port, src)
        s.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % (100 * MIB))
        self.got("an oversized declared length", [413], self.statuses(s, 1)[0])

    def model_last(self, src):
        text = "x" * (16 * MIB)
        s = connect(self.port, src, timeout=60)
        # The long string is "user" (a field models ignore), not the prompt,
        # which would be too long for the model's context.
        body = b'{"user":"' + text.encode() + \
            b'","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"model":"b"}'
        s.sendall(HEAD + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        st, answers, _ = self.statuses(s, 1, timeout=60)
        ok = st == [200] and json.loads(bytes(answers[0].body))["model"] == "b"
        self.got("16 MiB with the model last", [200], st if not ok else [200])

    def pipelined(self, src):
        s = connect(self.port, src)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + chat("a") +
                  b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" + chat("b", close=True))
        self.got("pipelined after /health", [200, 200, 200, 404, 200],
                 self.statuses(s, 5, timeout=30)[0])


@harness.test
def hostile_clients(env):
    s = Stack(env, {"a": {"gpu_memory_utilization": 0.3},
                    "b": {"gpu_memory_utilization": 0.3},
                    "c": {"gpu_memory_utilization": 0.3,
                          "args": ["--fake-fault", "stall_stream:-1:1"]}},
              extra=PROXY).start()
    ledger = Ledger()
    c = Client(s.port, ledger, timeout=60, source="127.0.0.9")
    check(c.send("a").kind == "ok" and c.send("b").kind == "ok", "both models answer")
    base = rss_kb(s.proxy.pid)
    load = Load(c, mix(["a", "b"], stream=0.3), clients=3)
    progress(ledger, 10)

    a = Attacks(s)
    for fn, src in ((a.beyond_cap, "127.0.0.2"), (a.idle, "127.0.0.10"),
                    (a.slowloris, "127.0.0.3"), (a.slow_bodies, "127.0.0.4"),
                    (a.half_sent_bodies, "127.0.0.5"), (a.framing, "127.0.0.6"),
                    (a.pipelined, "127.0.0.8")):
        a.run(fn, src)
    a.join(90)
    progress(ledger, 10)
    load.stop()
    ledger.check()
    for name, want, got in a.seen:
        check(got == want, "%s: wanted %r, got %r" % (name, want, got))
    say("attacks: %d connections, each answered as it should be", len(a.seen))
    for code in ("too_many_connections", "request_timeout", "request_buffers_full",
                 "unsupported_transfer_coding", "request_too_large"):
        check(s.metric("llmux_proxy_rejected_total", code=code) > 0, code)
    idle(s)
    wait_until(lambda: s.metric("llmux_proxy_buffered_body_bytes") == 0, 30,
               "the proxy to hold no body")
    if not sanitized(s.proxy.pid):
        wait_until(lambda: rss_kb(s.proxy.pid) < base + 50 * 1024, 30,
                   "the proxy's RSS to come back (it started at %d kB, is at %d kB)"
                   % (base, rss_kb(s.proxy.pid)))
        say("proxy RSS %d kB before, %d kB after", base, rss_kb(s.proxy.pid))
    s.stop_clean()


if __name__ == "__main__":
    harness.main()
