"""test_proxy_systemd.py -- llmux-proxyd takes its listening socket from
systemd (LISTEN_FDS), and a restart (SIGTERM, then a new process on the
same socket) refuses no connection and finishes the streams in flight;
at SIGTERM every connection accepted is answered before the proxy exits
(queued requests with 503, a request that comes after the signal on a
connection accepted before it as usual)."""
import json
import signal
import socket
import threading

import harness
from harness import test, check
from fakesup import READY_S, WAKING, state_msg
from proxykit import Stack, post_socket, read_to_close, start_upstub


def spawn_activated(env, st, name, lsock, names="proxy"):
    fd = lsock.fileno()
    argv = harness.activated([harness.binary("llmux-proxyd"), "-v", "--socket", st.sock],
                             fd, names)
    return env.spawn(name, argv, pass_fds=(fd,))


def client_loop(port, stop, results):
    while not stop.is_set():
        try:
            status, _, _ = harness.http(port, "POST", "/v1/chat/completions", {"model": "a"},
                                        timeout=30)
            results.append(status)
        except OSError as e:
            results.append(type(e).__name__)


@test
def restart_on_the_same_socket_refuses_nothing(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    a = spawn_activated(env, st, "proxyd-a", lsock)
    st.sup.wait_connected()
    harness.wait_until(lambda: harness.http(port, "GET", "/health")[0] == 200)
    check("sockets from systemd" in a.output())

    stop, results = threading.Event(), []
    t = threading.Thread(target=client_loop, args=(port, stop, results))
    t.start()
    # A stream in flight on the old process.
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = json.dumps({"model": "a", "stream": True, "chunks": 20, "delay_ms": 50}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    got = s.recv(4096)
    harness.wait_until(lambda: len(results) >= 5, what="requests to flow")
    a.signal(signal.SIGTERM)
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        check(chunk, "the stream in flight was finished")
        got += chunk
    s.close()
    check(got.count(b"data: ") == 21, "every event arrived")
    check(a.wait(30) == 0, "the old process exits cleanly")
    n_before = len(results)
    b = spawn_activated(env, st, "proxyd-b", lsock)
    st.sup.wait_connected(hellos=2)
    harness.wait_until(lambda: len(results) >= n_before + 5, timeout=30,
                       what="requests to flow through the new process")
    stop.set()
    t.join(30)
    bad = [r for r in results if r != 200]
    check(not bad, "refused or failed: %r" % bad[:10])
    check(b.alive())


@test
def sigterm_with_nothing_in_flight_exits_at_once(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}))
    check(st.post({"model": "a"})[0] == 200)
    st.proxy.signal(signal.SIGTERM)
    check(st.proxy.wait(10) == 0)
    check("exiting" in st.proxy.output())


@test
def sigterm_answers_every_accepted_connection(env):
    # At SIGTERM: requests queued for a model that is not ready get their
    # 503 before the proxy exits, and a connection accepted before the
    # signal whose request comes after it is answered too.
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, []), ("b", up, [])],
               state_msg({"a": (READY_S, up, 1), "b": (WAKING, 0, 0)}))
    queued = [post_socket(st.port, {"model": "b"}) for i in range(3)]
    st.sup.wait_demand("b", lambda d: d.get("queued") == 3)
    fresh = socket.create_connection(("127.0.0.1", st.port), timeout=30)
    harness.wait_until(lambda: metric(st, "llmux_proxy_connections") == 4, 10,
                       "the fresh connection accepted")
    st.proxy.signal(signal.SIGTERM)
    for s in queued:
        got = read_to_close(s)
        check(got.startswith(b"HTTP/1.1 503") and b"model_unavailable" in got, got)
    check(st.proxy.alive(), "the proxy waits for the connection it accepted")
    body = json.dumps({"model": "a"}).encode()
    fresh.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                  b"\r\n%s" % (len(body), body))
    got = read_to_close(fresh)
    check(got.startswith(b"HTTP/1.1 200") and b"hello from a" in got, got)
    check(st.proxy.wait(30) == 0, "then it exits cleanly")


def metric(st, name):
    for line in harness.http(st.admin, "GET", "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@test
def systemd_sockets_by_position(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    spawn_activated(env, st, "proxyd", lsock, names="")
    st.sup.wait_connected()
    harness.wait_until(lambda: harness.http(port, "POST", "/v1/chat/completions",
                                            {"model": "a"})[0] == 200)


if __name__ == "__main__":
    harness.main()
