"""test_proxy_stream.py -- streaming through llmux-proxyd: chunks are
relayed as they arrive (never buffered whole), and a client that stops
reading stops the proxy from reading the model (memory stays bounded);
when it reads again, every byte arrives; a model server silent for
upstream_timeout_secs ends the request explicitly."""
import socket

import harness
from harness import test, check
from fakesup import READY_S, state_msg
from proxykit import Stack, error_code, post_socket, start_upstub, stub_stats


@test
def chunks_are_relayed_as_they_arrive(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 5, "delay_ms": 300},
                    timeout=60)
    got = b""
    while b"tok0" not in got:
        got += s.recv(4096)
    # The first token reached us while the model was still generating.
    check(stub_stats(up)["finished"] == 0, "the stream was not buffered whole")
    check(b"transfer-encoding: chunked" in got.lower())
    while not got.endswith(b"0\r\n\r\n"):
        got += s.recv(65536)
    check(got.count(b"data: ") == 6)
    s.close()


class Dechunk:
    """An incremental decoder of a chunked body that counts SSE events."""

    def __init__(self):
        self.raw = b""
        self.left = None        # bytes left in the current chunk
        self.tail = b""
        self.events = 0
        self.done = False

    def feed(self, data):
        self.raw += data
        while not self.done:
            if self.left is None:
                i = self.raw.find(b"\r\n")
                if i < 0:
                    return
                self.left = int(self.raw[:i], 16)
                self.raw = self.raw[i + 2:]
                if self.left == 0:
                    self.done = True
                    return
            take = self.raw[:self.left]
            self.events += (self.tail + take).count(b"data: ")
            self.tail = (self.tail + take)[-5:]
            self.left -= len(take)
            self.raw = self.raw[len(take):]
            if self.left > 0 or len(self.raw) < 2:
                return
            self.raw = self.raw[2:]
            self.left = None


class Stable:
    """True once f() has returned the same value n times in a row."""

    def __init__(self, f, n=8):
        self.f, self.n, self.last, self.same = f, n, None, 0

    def __call__(self):
        v = self.f()
        self.same = self.same + 1 if v == self.last else 0
        self.last = v
        return self.same >= self.n


@test
def slow_reader_stops_upstream_reading(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    chunks, size = 3000, 64000
    total = chunks * size
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": chunks,
                              "chunk_bytes": size}, timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    # We read nothing: the model server must block once buffers are full.
    harness.wait_until(Stable(lambda: stub_stats(up)["bytes_sent"]), timeout=60, interval=0.1,
                       what="the model server to stop sending")
    sent = stub_stats(up)["bytes_sent"]
    check(sent < total // 3, "the proxy kept reading: %d of %d bytes sent" % (sent, total))
    rss = st.rss_kb()
    check(rss < 64 * 1024, "proxy memory bounded: %d kB" % rss)
    # Now read it all: nothing was lost.
    s.settimeout(60)
    d, head, peak, reads = Dechunk(), b"", rss, 0
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    head, _, rest = head.partition(b"\r\n\r\n")
    d.feed(rest)
    while not d.done:
        chunk = s.recv(1 << 20)
        check(chunk, "stream ended early")
        d.feed(chunk)
        reads += 1
        if reads % 200 == 0:
            peak = max(peak, st.rss_kb())
    s.close()
    check(d.events == chunks + 1, "events %d" % d.events)
    check(peak < 64 * 1024, "proxy memory bounded while draining: %d kB" % peak)
    check(stub_stats(up)["finished"] == 1)


def read_to_end(s):
    got = b""
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        check(chunk, "the stream ended properly: %r" % got[-300:])
        got += chunk
    return got


@test
def silent_model_server_times_out(env):
    # upstream_timeout_secs: the model server must send something at least
    # this often while a request is forwarded.
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}),
               upstream_timeout_secs=1)
    # Silent before its head: 504, and the model server sees the client go.
    status, _, obj = st.post({"model": "a", "wait_ms": 8000})
    check(status == 504 and error_code(obj) == "upstream_timeout", (status, obj))
    check("sent nothing for 1 s" in obj["error"]["message"], obj)
    harness.wait_until(lambda: stub_stats(up)["aborted_waiting"] == 1, 10,
                       "the model server to see the client go")
    # Silent in the middle of a stream: an error event ends it.
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 3, "delay_ms": 8000},
                    timeout=60)
    got = read_to_end(s)
    s.close()
    check(b"tok0" in got and b"tok1" not in got, got)
    check(b'"code":"upstream_timeout"' in got and b"stopped sending" in got, got)
    # Slow but never silent that long: whole.
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 5, "delay_ms": 400},
                    timeout=60)
    got = read_to_end(s)
    s.close()
    check(got.count(b"data: ") == 6 and b"[DONE]" in got and b"error" not in got, got)
    metrics = harness.http(st.admin, "GET", "/metrics")[2].decode()
    check('llmux_upstream_errors_total{model="a",kind="timeout"} 2' in metrics, metrics)
    check('llmux_proxy_rejected_total{code="upstream_timeout"} 1' in metrics, metrics)


if __name__ == "__main__":
    harness.main()
