"""test_proxy_queue.py -- requests for a model that is not ready: queued in
arrival order, demand sent, dispatched on ready, failed with 503 and the
reason, drained (drained answered when in-flight reaches zero), removed
when the client goes away at each stage, a backend killed mid-stream, and
the supervisor going away and coming back."""
import json
import signal
import socket
import threading
import time

import harness
from harness import test, check
from fakesup import READY_S, SLEEPING, WAKING, DRAINED, DEMAND, state_msg
from proxykit import Stack, error_code, post_socket, read_to_close, start_upstub, stub_stats


def post_async(st, body, results, key=None, timeout=60):
    def run():
        r = st.post(body, timeout=timeout)
        results.append((key, r))
    t = threading.Thread(target=run)
    t.start()
    return t


@test
def queued_until_ready_in_order(env):
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}))
    results, threads = [], []
    for i in range(5):
        threads.append(post_async(st, {"model": "a", "i": i}, results, i))
        st.sup.wait_demand("a", lambda m, n=i + 1: m["queued"] == n)
    d = st.sup.last_demand("a")
    check(d["in_flight"] == 0 and d["oldest_ms"] >= 0, repr(d))
    up = start_upstub(env, "a")
    st.sup.ready("a", up, 7)
    for t in threads:
        t.join(30)
    check(sorted(k for k, _ in results) == list(range(5)), repr(results))
    check(all(r[0] == 200 for _, r in results), repr(results))
    st.sup.wait_demand("a", lambda m: m["queued"] == 0 and m["in_flight"] == 0)
    # The metric says they waited.
    text = harness.http(st.admin, "GET", "/metrics")[2].decode()
    check('llmux_requests_total{model="a",waited="true"} 5' in text, text[:2000])
    check('llmux_request_queue_wait_seconds_count{model="a"} 5' in text)


@test
def failed_wake_answers_503_with_reason(env):
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}))
    results = []
    threads = [post_async(st, {"model": "a"}, results) for _ in range(3)]
    st.sup.wait_demand("a", lambda m: m["queued"] == 3)
    st.sup.failed("a", "CUDA out of memory")
    for t in threads:
        t.join(20)
    check(len(results) == 3, repr(results))
    for _, (status, hdrs, obj) in results:
        check(status == 503 and error_code(obj) == "model_failed", repr(obj))
        check("CUDA out of memory" in obj["error"]["message"])


@test
def error_answer_to_a_queued_request_closes_as_asked(env):
    # A client that asked to close (and reads to the end) gets the 503 and
    # then the end of its connection; a kept-alive one can ask again.
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}))
    data = json.dumps({"model": "a"}).encode()
    closing = post_socket(st.port, {"model": "a"}, headers=b"Connection: close\r\n")
    kept = post_socket(st.port, {"model": "a"})
    st.sup.wait_demand("a", lambda m: m["queued"] == 2)
    st.sup.failed("a", "no room")
    got = read_to_close(closing)
    check(got.startswith(b"HTTP/1.1 503") and got.endswith(b"}\n") and b"no room" in got, got)
    got = b""
    while b"}\n" not in got:
        got += kept.recv(65536)
    check(got.startswith(b"HTTP/1.1 503"), got)
    up = start_upstub(env, "a")
    st.sup.ready("a", up, 1)
    kept.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(data), data))
    got = b""
    while b"hello from a" not in got:
        chunk = kept.recv(65536)
        check(chunk, "the kept-alive connection serves again: %r" % got)
        got += chunk
    check(got.startswith(b"HTTP/1.1 200"), got)
    kept.close()


@test
def drain_waits_for_in_flight(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    # A slow stream is in flight when the drain comes.
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 30, "delay_ms": 30})
    st.sup.wait_demand("a", lambda m: m["in_flight"] == 1)
    st.sup.drain("a", 42)
    # New requests queue meanwhile.
    results = []
    t = post_async(st, {"model": "a"}, results)
    st.sup.wait_demand("a", lambda m: m["queued"] == 1)
    check(not st.sup.of_type(DRAINED), "drained only once in-flight is 0")
    got = b""
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        check(chunk, "stream finished")
        got += chunk
    s.close()
    m = st.sup.wait_msg(lambda m: m.get("t") == DRAINED, what="drained")
    check(m["model"] == "a" and m["drain_id"] == 42, repr(m))
    check(not results, "the queued request waited")
    st.sup.ready("a", up, 2)
    t.join(20)
    check(results[0][1][0] == 200, repr(results))


@test
def drain_with_nothing_in_flight_answers_at_once(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    st.sup.drain("a", 7)
    m = st.sup.wait_msg(lambda m: m.get("t") == DRAINED, what="drained")
    check(m["drain_id"] == 7)


@test
def client_gone_while_queued(env):
    st = Stack(env, [("a", 1, [])], state_msg({"a": (SLEEPING, 0, 0)}))
    s = post_socket(st.port, {"model": "a"})
    st.sup.wait_demand("a", lambda m: m["queued"] == 1)
    s.close()
    st.sup.wait_demand("a", lambda m: m["queued"] == 0)
    up = start_upstub(env, "a")
    st.sup.ready("a", up)
    # Nothing was sent for the request that left.
    check(st.post({"model": "a"})[0] == 200)
    check(stub_stats(up)["requests"] == 1, repr(stub_stats(up)))


@test
def client_gone_while_waiting_for_headers(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    s = post_socket(st.port, {"model": "a", "wait_ms": 20000})
    harness.wait_until(lambda: stub_stats(up)["requests"] == 1)
    s.close()
    # The upstream connection is closed, so the model server sees it go.
    harness.wait_until(lambda: stub_stats(up)["aborted_waiting"] == 1, timeout=15,
                       what="the upstream connection to close")
    st.sup.wait_demand("a", lambda m: m["in_flight"] == 0)


@test
def client_gone_mid_stream(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 100000, "delay_ms": 5})
    got = b""
    while b"tok3" not in got:
        got += s.recv(4096)
    s.close()
    harness.wait_until(lambda: stub_stats(up)["aborted"] == 1, timeout=15,
                       what="the model server to see the stream cut")
    st.sup.wait_demand("a", lambda m: m["in_flight"] == 0)
    check(stub_stats(up)["finished"] == 0)


@test
def backend_dies_mid_stream(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    status, events = harness.sse_events(st.port, "/v1/chat/completions",
                                        {"model": "a", "stream": True, "chunks": 10, "die_after": 3})
    check(status == 200, repr(events))
    check(len(events) == 4, repr(events))
    err = json.loads(events[-1])
    check(err["error"]["code"] == "upstream_closed", repr(err))
    check(err["error"]["type"] == "server_error" and err["error"]["param"] is None, repr(err))
    # The same with the model server process killed.
    s = post_socket(st.port, {"model": "a", "stream": True, "chunks": 100000, "delay_ms": 5})
    got = b""
    while b"tok2" not in got:
        got += s.recv(4096)
    env.procs[0].signal(signal.SIGKILL)
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        check(chunk, "the stream ended with its terminating chunk")
        got += chunk
    check(b"upstream_closed" in got)
    s.close()
    text = harness.http(st.admin, "GET", "/metrics")[2].decode()
    check('llmux_upstream_errors_total{model="a",kind="closed"} 2' in text, text)


@test
def backend_cuts_a_sized_body_the_client_sees_the_close(env):
    # The answer had a Content-Length the model server did not honour: the
    # proxy cannot say so in the body, so it closes the client's connection
    # (kept alive, the client would wait for the missing bytes forever).
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    got = read_to_close(post_socket(st.port, {"model": "a", "cut_body": True}))
    head, _, body = got.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200") and b"Content-Length: 1000" in head, got)
    check(len(body) == 500, "the half that came, then the close: %d bytes" % len(body))


@test
def backend_dies_before_headers_is_502(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    status, _, obj = st.post({"model": "a", "die_after": 0})
    check(status == 502 and error_code(obj) == "upstream_error", repr(obj))


@test
def supervisor_loss_and_return(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, []), ("b", up, [])],
               state_msg({"a": (READY_S, up, 1), "b": (SLEEPING, 0, 0)}), request_timeout_secs=2)
    st.sup.stop()
    harness.wait_until(lambda: not harness.http_json(st.port, "GET", "/health")[1]["supervisor"])
    # Known ready: still served.
    check(st.post({"model": "a"})[0] == 200)
    # Not ready: queued, then 503 with Retry-After (not 504) when it times out.
    status, hdrs, obj = st.post({"model": "b"})
    check(status == 503 and error_code(obj) == "model_unavailable", repr(obj))
    check(int(hdrs["retry-after"]) > 0)
    # Control calls fail clearly.
    status, obj = harness.http_json(st.admin, "GET", "/control/status")
    check(status == 503 and "unreachable" in obj["error"], repr(obj))
    # The supervisor comes back with a new state: b is ready now.
    results = []
    t = post_async(st, {"model": "b"}, results)
    harness.wait_until(lambda: "llmux_queue_depth{model=\"b\"} 1" in
                       harness.http(st.admin, "GET", "/metrics")[2].decode())
    st.sup.state = state_msg({"a": (SLEEPING, 0, 0), "b": (READY_S, up, 3)})
    st.sup.start()
    st.sup.wait_connected(timeout=20, hellos=2)
    t.join(20)
    check(results and results[0][1][0] == 200, repr(results))
    # Resynchronised: a is no longer ready, its requests queue and demand.
    results = []
    t = post_async(st, {"model": "a"}, results)
    st.sup.wait_demand("a", lambda m: m["queued"] == 1)
    st.sup.ready("a", up, 4)
    t.join(20)
    check(results and results[0][1][0] == 200, repr(results))


@test
def demand_is_coalesced(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    results = []
    threads = [post_async(st, {"model": "a"}, results) for _ in range(20)]
    for t in threads:
        t.join(30)
    check(len(results) == 20 and all(r[1][0] == 200 for r in results))
    st.sup.wait_demand("a", lambda m: m["in_flight"] == 0)
    # Far fewer than two demands per request, and the last one says idle.
    n = len([m for m in st.sup.of_type(DEMAND) if m["model"] == "a"])
    check(n < 40, "demands: %d" % n)


@test
def more_queued_than_upstream_slots_all_served(env):
    """1100 queued requests (the proxy opens at most 1024 exchanges with a
    model at once): every one is answered, each with its own answer, as
    slots free up."""
    import selectors
    n = 1100
    fv = harness.free_port()
    env.spawn("fakevllm", [harness.binary("llmux-fakevllm"), "serve", "a", "--port", str(fv),
                           "--fake-fast"])
    harness.wait_until(lambda: harness.http(fv, "GET", "/health")[0] == 200)
    st = Stack(env, [("a", fv, [])], state_msg({"a": (SLEEPING, 0, 0)}),
               max_connections=n + 100, max_queue_per_model=n + 100)
    sel = selectors.DefaultSelector()
    for i in range(n):
        body = json.dumps({"model": "a", "max_tokens": 2, "temperature": 0,
                           "messages": [{"role": "user", "content": "question %d" % i}]}).encode()
        s = socket.create_connection(("127.0.0.1", st.port), timeout=30)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b""])
    st.sup.wait_demand("a", lambda m: m["queued"] == n, timeout=60)
    st.sup.ready("a", fv)
    answers = []
    deadline = time.monotonic() + 120
    while len(answers) < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=5):
            d = key.fileobj.recv(65536)
            key.data[0] += d
            if not d:
                answers.append(key.data[0])
                sel.unregister(key.fileobj)
                key.fileobj.close()
    check(len(answers) == n, "answered %d of %d" % (len(answers), n))
    ids = set()
    for a in answers:
        head, _, body = a.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200"), repr(a[:300]))
        obj = json.loads(body)
        check(obj["object"] == "chat.completion", repr(obj))
        ids.add(obj["id"])
    check(len(ids) == n, "each request got its own answer")


if __name__ == "__main__":
    harness.main()
