"""test_proxy_limits.py -- every bound of llmux-proxyd and its answer:
413 before the body is read, 431, 401 with API keys, 429 + Retry-After on
a full queue, 504 after request_timeout_secs, 503 in manual mode and
before any config; the connection caps (per address, in all, the oldest
idle connection closed for a newcomer, loopback in reserve) while the
streams already open keep flowing; the time limits of heads, bodies and
idle connections; strict framing (each smuggling input refused); answers
to pipelined requests in order; the cap on buffered bodies; and
accepting again after running out of file descriptors."""
import json
import os
import resource
import socket
import threading

import harness
from harness import test, check
from fakesup import CTL_METRICS, READY_S, SLEEPING, state_msg
from proxykit import Stack, answer_code, connect, error_code, raw_request, read_answers, \
    start_upstub


def answer(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1").lower(), body


@test
def body_too_large_is_413_before_reading(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), max_body_bytes=1000)
    # Announced too large: answered at once, although no body byte was sent.
    s = socket.create_connection(("127.0.0.1", st.port), timeout=10)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    raw = b""
    while b"\r\n\r\n" not in raw or not raw.endswith(b"}\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        raw += chunk
    s.close()
    status, head, body = answer(raw)
    check(status == 413, repr(raw[:200]))
    check("connection: close" in head)
    check(json.loads(body)["error"]["code"] == "request_too_large")
    # Chunked and too large: refused once the limit is passed.
    chunks = b"".join(b"%x\r\n%s\r\n" % (300, b"x" * 300) for _ in range(5)) + b"0\r\n\r\n"
    raw = raw_request(st.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    check(answer(raw)[0] == 413, repr(raw[:200]))
    # Under the limit, chunked: forwarded with a Content-Length.
    body = json.dumps({"model": "a"}).encode()
    raw = raw_request(st.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    status, _, rbody = answer(raw)
    check(status == 200 and json.loads(rbody)["length"] == len(body), repr(raw[:300]))


@test
def headers_too_large_is_431(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), max_header_bytes=2048)
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(40))
    raw = raw_request(st.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + many +
                      b"Content-Length: 2\r\n\r\n{}")
    status, head, body = answer(raw)
    check(status == 431, repr(raw[:200]))
    check(json.loads(body)["error"]["code"] == "headers_too_large")
    # One header larger than the parser takes: 431 too, not a silent close.
    raw = raw_request(st.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 +
                      b"\r\n\r\n")
    check(answer(raw)[0] == 431, repr(raw[:200]))
    # A malformed request line: 400.
    raw = raw_request(st.port, b"NONSENSE\x01\x02 / HTTP/9.9\r\n\r\n")
    check(answer(raw)[0] == 400, repr(raw[:200]))
    # The proxy is still fine.
    check(st.post({"model": "a"})[0] == 200)


@test
def api_keys_are_checked(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}),
               api_keys=["sk-one", "sk-two"])
    status, hdrs, obj = st.post({"model": "a"})
    check(status == 401 and error_code(obj) == "invalid_api_key", repr(obj))
    status, _, obj = st.post({"model": "a"}, headers={"Authorization": "Bearer sk-wrong"})
    check(status == 401, "wrong key %d" % status)
    status, _, obj = st.post({"model": "a"}, headers={"Authorization": "Bearer sk-two"})
    check(status == 200 and obj["served_by"] == "a", repr(obj))
    status, obj = harness.http_json(st.port, "GET", "/v1/models")
    check(status == 401, "models needs a key too")
    status, obj = harness.http_json(st.port, "GET", "/health")
    check(status == 200, "health is open")


@test
def full_queue_is_429_with_retry_after(env):
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}), max_queue_per_model=2)
    results = []

    def one():
        results.append(st.post({"model": "a"}, timeout=30))
    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    st.sup.wait_demand("a", lambda m: m["queued"] == 2)
    status, hdrs, obj = st.post({"model": "a"})
    check(status == 429 and error_code(obj) == "queue_full", repr(obj))
    check(int(hdrs["retry-after"]) > 0)
    up = start_upstub(env, "a")
    st.sup.ready("a", up)
    for t in threads:
        t.join(30)
    check([r[0] for r in results] == [200, 200], repr(results))


@test
def waiting_too_long_is_504(env):
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}), request_timeout_secs=1)
    status, hdrs, obj = st.post({"model": "a"})
    check(status == 504 and error_code(obj) == "queue_timeout", repr(obj))
    st.sup.wait_demand("a", lambda m: m["queued"] == 0)


@test
def manual_mode_refuses_other_models(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, []), ("b", up, [])],
               state_msg({"a": (READY_S, up, 1), "b": (SLEEPING, 0, 0)}, manual=True, pinned="a"))
    status, _, obj = st.post({"model": "b"})
    check(status == 503 and error_code(obj) == "manual_mode", repr(obj))
    check(st.post({"model": "a"})[0] == 200)


@test
def before_config_requests_wait_then_route(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    cfg, st.sup.config = st.sup.config, None
    proxy = env.spawn("proxyd", [harness.binary("llmux-proxyd"), "--socket", st.sock,
                                 "--listen", "127.0.0.1:%d" % st.port])
    st.proxy = proxy
    st.sup.wait_connected()
    harness.wait_until(lambda: harness.http(st.port, "GET", "/health")[0] == 200)
    status, obj = harness.http_json(st.port, "GET", "/v1/models")
    check(status == 503, "no config yet: %d" % status)
    result = []
    t = threading.Thread(target=lambda: result.append(st.post({"model": "a"})))
    t.start()
    harness.wait_until(lambda: harness.http_json(st.port, "GET", "/health")[1]
                       ["waiting_for_config"] == 1, what="the request to be held")
    st.sup.send(cfg)
    st.sup.send(state_msg({"a": (READY_S, up, 1)}))
    t.join(20)
    check(result and result[0][0] == 200, repr(result))


@test
def before_config_the_holding_is_bounded(env):
    import selectors
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    cfg, st.sup.config = st.sup.config, None
    st.proxy = env.spawn("proxyd", [harness.binary("llmux-proxyd"), "--socket", st.sock,
                                    "--listen", "127.0.0.1:%d" % st.port])
    st.sup.wait_connected()
    harness.wait_until(lambda: harness.http(st.port, "GET", "/health")[0] == 200)
    held = 1024
    sel = selectors.DefaultSelector()
    body = json.dumps({"model": "a"}).encode()
    for i in range(held):
        s = socket.create_connection(("127.0.0.1", st.port), timeout=30)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b""])
    harness.wait_until(lambda: harness.http_json(st.port, "GET", "/health")[1]
                       ["waiting_for_config"] == held, timeout=30)
    status, hdrs, obj = st.post({"model": "a"})
    check(status == 503 and error_code(obj) == "model_unavailable", repr(obj))
    check(int(hdrs["retry-after"]) > 0)
    st.sup.send(cfg)
    st.sup.send(state_msg({"a": (READY_S, up, 1)}))
    done = 0
    while done < held:
        events = sel.select(timeout=30)
        check(events, "answers keep coming")
        for key, _ in events:
            d = key.fileobj.recv(65536)
            key.data[0] += d
            if not d:
                check(key.data[0].startswith(b"HTTP/1.1 200"), repr(key.data[0][:200]))
                done += 1
                sel.unregister(key.fileobj)
                key.fileobj.close()


def metrics_has(st, line):
    # The scripted supervisor adds no metrics of its own, at once.
    st.sup.handlers.setdefault(CTL_METRICS, lambda m: (200, {"text": ""}))
    try:
        text = harness.http(st.admin, "GET", "/metrics", timeout=2)[2].decode()
    except OSError:
        return False
    return line in text


def chat_bytes(model="a", extra=None, close=False):
    body = {"model": model}
    body.update(extra or {})
    data = json.dumps(body).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s"
            % (b"Connection: close\r\n" if close else b"", len(data), data))


def refused_503(s, code):
    """s gets a 503 with Retry-After and the error code, then is closed."""
    answers, closed = read_answers(s, 1)
    s.close()
    check(answers and answers[0].status == 503, repr([a.status for a in answers]))
    check(int(answers[0].headers["retry-after"]) > 0, answers[0].headers)
    check(answer_code(answers[0]) == code, bytes(answers[0].body))
    check(answers[0].headers.get("connection") == "close")


@test
def connection_caps(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), max_connections=4,
               max_connections_per_ip=2, header_timeout_ms=60000, keepalive_timeout_secs=60)
    # One address: two connections, the third is refused at once.
    idle = [connect(st.port, "127.0.0.2") for _ in range(2)]
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_connections 2\n"))
    refused_503(connect(st.port, "127.0.0.2"), "too_many_connections")
    # A stream keeps one slot busy, a partial head another: 4 of 4.
    stream = connect(st.port, "127.0.0.3", timeout=30)
    stream.sendall(chat_bytes(extra={"stream": True, "chunks": 100000, "delay_ms": 20}))
    busy = connect(st.port, "127.0.0.4")
    busy.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_connections 4\n"))
    # Full: the oldest idle connection is closed for a newcomer, served.
    late = connect(st.port, "127.0.0.5")
    late.sendall(chat_bytes(close=True))
    answers, _ = read_answers(late, 1)
    check(answers and answers[0].status == 200, repr(answers))
    check(read_answers(idle[0], timeout=10) == ([], True), "the oldest idle one was closed")
    # Full again, nothing idle (heads under way): a newcomer gets 503.
    idle[1].sendall(b"GET /health HTTP/1.1\r\n")
    other = connect(st.port, "127.0.0.6")
    other.sendall(b"GET /health HTTP/1.1\r\n")
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_connections 4\n"))
    refused_503(connect(st.port, "127.0.0.7"), "too_many_connections")
    # Loopback has its reserve: the operator still gets in.
    check(st.post({"model": "a"})[0] == 200)
    answers, closed = read_answers(stream, timeout=1)
    check(answers and answers[0].status == 200 and len(answers[0].events()) > 5,
          "the stream flowed while the proxy was full")
    for s in (stream, busy, idle[1], other):
        s.close()


@test
def accept_resumes_after_running_out_of_descriptors(env):
    """accept() failing with EMFILE pauses accepting for a second, as tmux
    does, and then accepting starts again."""
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    pid = st.proxy.pid
    limit = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    held = len(os.listdir("/proc/%d/fd" % pid))
    # Room for two connections: the third accept() fails with EMFILE.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (held + 2, limit[1]))
    flood = [connect(st.port) for _ in range(6)]
    harness.wait_until(lambda: "accept failed, pausing accept" in st.proxy.output(),
                       what="the proxy to run out of descriptors")
    for s in flood:
        s.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, limit)

    def served():
        try:
            return st.post({"model": "a"}, timeout=2)[0] == 200
        except OSError:
            return False
    harness.wait_until(served, what="the proxy to accept again")
    check(metrics_has(st, "llmux_proxy_accept_paused 0\n"))


@test
def time_limits(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}),
               header_timeout_ms=300, body_timeout_ms=300, keepalive_timeout_secs=1)
    # A head that does not come whole: 408, closed.
    s = connect(st.port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    answers, closed = read_answers(s, timeout=30)
    check(closed and [a.status for a in answers] == [408], repr(answers))
    check(answer_code(answers[0]) == "request_timeout")
    # A connection that sends nothing: closed without an answer.
    check(read_answers(connect(st.port), timeout=30) == ([], True))
    # A body that stops: 408.
    s = connect(st.port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
              b"\r\n{\"model\":")
    answers, closed = read_answers(s, timeout=30)
    check(closed and [a.status for a in answers] == [408], repr(answers))
    # Kept alive, then idle: closed after keepalive_timeout_secs.
    s = connect(st.port)
    s.sendall(chat_bytes())
    answers, closed = read_answers(s, timeout=30)
    check([a.status for a in answers] == [200] and closed, repr(answers))
    # A stream longer than every limit is not cut.
    s = connect(st.port, timeout=30)
    s.sendall(chat_bytes(extra={"stream": True, "chunks": 20, "delay_ms": 100}, close=True))
    answers, closed = read_answers(s, 1, timeout=30)
    check(answers and answers[0].done and "[DONE]" in answers[0].events(), repr(answers))
    s.close()
    check(metrics_has(st, 'llmux_proxy_rejected_total{code="request_timeout"} 2\n'))


# Each input that could frame a request two ways, and its answer.
SMUGGLING = [
    ("CL and TE", 400, b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE and CL", 400, b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    ("xchunked and CL", 400, b"Transfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}"),
    ("two CLs", 400, b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"),
    ("a CL list", 400, b"Content-Length: 2, 2\r\n\r\n{}"),
    ("a signed CL", 400, b"Content-Length: +2\r\n\r\n{}"),
    ("unknown coding", 501, b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("gzip, chunked", 501, b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("chunked twice", 400, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"0\r\n\r\n"),
    ("CHUNKED", 400, b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"),
    ("a bad chunk size", 400, b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    ("a chunk size of 17 digits", 400,
     b"Transfer-Encoding: chunked\r\n\r\n10000000000000002\r\n{}\r\n0\r\n\r\n"),
    ("a chunk extension", 400, b"Transfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\n\r\n"),
    ("a trailer field", 400, b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX: y\r\n\r\n"),
    ("a folded field", 400, b"X-A: b\r\n c\r\nContent-Length: 2\r\n\r\n{}"),
    ("space before a colon", 400, b"Content-Length : 2\r\n\r\n{}"),
    ("a bare LF", 400, b"Content-Length: 2\n\r\n{}"),
]


@test
def framing_is_strict(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
    for name, status, rest in SMUGGLING:
        # Followed by a request that must never be answered.
        s = connect(st.port)
        s.sendall(head + rest + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answers, closed = read_answers(s, timeout=10)
        check([a.status for a in answers] == [status] and closed,
              "%s: %r" % (name, [(a.status, bytes(a.body)) for a in answers]))
        check(answers[0].headers.get("connection") == "close", name)
    s = connect(st.port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"2\r\n{}\r\n0\r\n\r\n")
    check([a.status for a in read_answers(s)[0]] == [400], "TE in HTTP/1.0")
    # What is plain passes: the same Content-Length twice, chunked.
    body = json.dumps({"model": "a"}).encode()
    for rest in (b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (len(body), len(body), body),
                 b"Transfer-Encoding: Chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)):
        s = connect(st.port)
        s.sendall(head + rest)
        answers, _ = read_answers(s, 1)
        check([a.status for a in answers] == [200], repr(rest))
        s.close()


@test
def pipelined_requests_are_answered_in_order(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    s = connect(st.port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n" + chat_bytes() +
              b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /v1/models/zz HTTP/1.1\r\nHost: x\r\n\r\n" + chat_bytes(close=True))
    answers, closed = read_answers(s, 6, timeout=30)
    check([a.status for a in answers] == [200, 200, 200, 404, 404, 200],
          repr([(a.status, bytes(a.body)[:80]) for a in answers]))
    check(json.loads(bytes(answers[0].body))["status"] == "ok")
    check(json.loads(bytes(answers[1].body))["object"] == "list")
    check(answer_code(answers[3]) == "not_found" and answer_code(answers[4]) == "model_not_found")
    check(json.loads(bytes(answers[5].body))["length"] > 0)
    s.close()


@test
def body_memory_is_capped(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), max_buffered_body_mb=1,
               body_timeout_ms=60000)
    k = 1024
    # An address holding a body may take up to a quarter (256 KiB) more.
    first = connect(st.port, "127.0.0.2")
    first.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (200 * k) + b"x" * (100 * k))
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_buffered_body_bytes %d\n" % (200 * k)))
    s = connect(st.port, "127.0.0.2")
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % (100 * k))
    refused_503(s, "request_buffers_full")
    # Another address may start one, while the total stays under 1 MiB.
    s = connect(st.port, "127.0.0.3")
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % (900 * k))
    refused_503(s, "request_buffers_full")
    second = connect(st.port, "127.0.0.3")
    second.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(8):
        second.sendall(b"%x\r\n%s\r\n" % (100 * k, b"y" * (100 * k)))
    refused_503(second, "request_buffers_full")
    # Small requests still pass; once the big ones go, nothing is held.
    check(st.post({"model": "a"})[0] == 200)
    first.close()
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_buffered_body_bytes 0\n"))


if __name__ == "__main__":
    harness.main()
