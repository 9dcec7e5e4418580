"""test_proxy_limits.py -- every bound of llmux-proxyd and its answer:
413 before the body is read, 431, 401 with API keys, 429 + Retry-After on
a full queue, 504 after request_timeout_secs, 503 in manual mode and
before any config, and accept backing off at max_connections while the
streams already open keep flowing."""
import json
import socket
import threading

import harness
from harness import test, check
from fakesup import READY_S, SLEEPING, state_msg
from proxykit import Stack, start_upstub, error_code, raw_request


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
    try:
        return line in harness.http(st.admin, "GET", "/metrics", timeout=2)[2].decode()
    except OSError:
        return False


@test
def connection_limit_backs_off_accept(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), max_connections=3,
               admin_port=0)
    # A stream that keeps flowing on one of the connections.
    stream = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    body = json.dumps({"model": "a", "stream": True, "chunks": 40, "delay_ms": 50}).encode()
    stream.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body), body))
    idle = [socket.create_connection(("127.0.0.1", st.port), timeout=10) for _ in range(2)]
    harness.wait_until(lambda: metrics_has(st, "llmux_proxy_accept_paused 1"), timeout=30,
                       what="accept to pause")
    # The fourth connection is not accepted: its request waits in the backlog.
    late = []
    t = threading.Thread(target=lambda: late.append(st.post({"model": "a"}, timeout=30)))
    t.start()
    got = b""
    while b"[DONE]" not in got:
        chunk = stream.recv(65536)
        check(chunk, "the open stream kept flowing")
        got += chunk
    check(not late, "the fourth connection was not served while at the limit")
    for s in idle:
        s.close()
    t.join(30)
    check(late and late[0][0] == 200, repr(late))
    stream.close()


if __name__ == "__main__":
    harness.main()
