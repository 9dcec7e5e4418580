#!/usr/bin/env python3
"""test_supervisor_socket.py -- the supervisor's socket: hostile and
malformed messages cost the sending peer only, a peer without rights is
refused with a clear message, calls before hello are refused, a stale
socket is replaced and a live one is not taken over, the proxy role
gets config and state; half-sent frames and silent peers are dropped
without costing memory; a proxy connection that leaves mid-drain does not
hold the switch; a model the proxy reports unreachable is checked at once:
ready again if it answers, killed and restarted if not."""
import os
import signal
import socket
import struct
import time

import harness
import mpack
from harness import check, wait_until
from supervisor_helpers import (NOBODY, Sup, Raw, as_root, frame, hello, mp_map,
                                mp_str, mp_type, mp_uint)

T_ERROR, T_HELLO, T_CONFIG, T_STATE, T_DRAIN, T_EVENT, T_REPLY = 2, 1, 100, 201, 202, 206, 400


def serving(sup):
    rc, out, err = sup.ctl("status")
    return rc == 0


def error_of(payload):
    return mp_type(payload) == T_ERROR


@harness.test
def hostile_messages(env):
    sup = Sup(env, {"a": {}})
    sup.start()
    status_call = frame(mp_map([("t", mp_uint(300)), ("id", mp_uint(7))]))
    cases = [
        # (what, bytes, expect: "error" reply, "closed", or "either")
        ("garbage", b"\xff\xfe hello there \x00\x01", "closed"),
        ("zero length", b"\x00\x00\x00\x00", "closed"),
        ("huge length", b"\x7f\xff\xff\xff" + b"x" * 100, "closed"),
        ("over the limit", struct.pack(">I", (1 << 20) + 1), "closed"),
        ("not a map", frame(b"\x93\x01\x02\x03"), "error"),
        ("no type", frame(mp_map([("id", mp_uint(1))])), "error"),
        ("type is a string", frame(mp_map([("t", mp_str("hello"))])), "error"),
        ("unknown type", frame(mp_map([("t", mp_uint(9999))])), "error"),
        ("truncated map", frame(b"\x85\xa1t\x01"), "error"),
        ("map of 2^32 pairs", frame(b"\xdf\xff\xff\xff\xff"), "error"),
        ("string past the end", frame(b"\x81\xa1t\xdb\xff\xff\xff\xff"), "error"),
        ("deep nesting", frame(b"\x81\xa1x" + b"\x91" * 200 + b"\x00"), "error"),
        ("call before hello", status_call, "closed"),
        ("hello of another version", hello(version=99), "closed"),
        ("hello without a role", hello(role=0), "closed"),
        ("hello with a bad role", hello(role=7), "error"),
    ]
    for what, data, expect in cases:
        r = Raw(sup.socket)
        r.send(data)
        if expect == "closed":
            check(r.closed(), "%s: the peer should be dropped" % what)
        else:
            p = r.frame()
            check(p is not None and error_of(p), "%s: expected an error, got %r" % (what, p))
        r.close()
        check(serving(sup), "still serving after: %s" % what)

    # After hello: wrong types, missing fields, unknown calls cost nothing.
    r = Raw(sup.socket)
    r.send(hello())
    check(mp_type(r.frame()) == T_HELLO, "hello answered")
    bad = [
        frame(mp_map([("t", mp_uint(300))])),                          # no id
        frame(mp_map([("t", mp_uint(305)), ("id", mp_uint(2))])),      # switch, no model
        frame(mp_map([("t", mp_uint(305)), ("id", mp_uint(3)), ("model", mp_uint(5))])),
        frame(mp_map([("t", mp_uint(305)), ("id", mp_uint(4)),
                      ("model", mp_str("x" * 500))])),                 # too long
        frame(mp_map([("t", mp_uint(308)), ("id", mp_uint(5)), ("model", mp_str("a")),
                      ("eviction", mp_str("loud+clear"))])),           # bad eviction
        frame(mp_map([("t", mp_uint(305)), ("id", mp_uint(6)),
                      ("model", mp_str("a\x00b"))])),                  # NUL
        frame(mp_map([("t", mp_uint(200)), ("model", mp_str("a"))])),  # demand from admin
        frame(mp_map([("t", mp_uint(400)), ("id", mp_uint(8)), ("status", mp_uint(200)),
                      ("body", b"\x80")])),                            # a reply to us
        frame(mp_map([("t", mp_uint(1)), ("version", mp_uint(1)), ("role", mp_uint(2))])),
    ]
    for data in bad:
        r.send(data)
        p = r.frame()
        check(p is not None and error_of(p), "expected an error for %r, got %r" % (data, p))
    # The connection still works.
    r.send(frame(mp_map([("t", mp_uint(300)), ("id", mp_uint(9))])))
    p = r.frame()
    check(mp_type(p) == T_REPLY, p)
    r.close()

    # A peer that keeps sending bad messages is dropped.
    r = Raw(sup.socket)
    r.send(hello())
    r.frame()
    r.send(frame(b"\x93\x01\x02\x03") * 80)
    check(r.closed(), "a peer with 64 bad messages is dropped")
    r.close()
    # A peer that sends half a frame and goes away.
    r = Raw(sup.socket)
    r.send(hello()[:7])
    r.close()
    # Many peers at once that never speak.
    idle = [Raw(sup.socket) for _ in range(50)]
    check(serving(sup), "serving with 50 idle peers")
    for x in idle:
        x.close()
    check(serving(sup), "serving at the end")
    check(sup.proc.alive(), "the supervisor lives")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def send_some(sock, data):
    """Send what the socket takes without blocking; the peer may be gone."""
    sock.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent:sent + 65536])
    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
        pass
    sock.settimeout(10.0)
    return sent


def until_closed(r):
    """What the supervisor says before it closes the connection, or None
    if it does not close it."""
    said = b""
    while True:
        try:
            p = r.frame()
        except socket.timeout:
            return None
        except ConnectionResetError:
            return said
        if p is None:
            return said
        said += p


@harness.test
def half_sent_frames(env):
    """300 peers that each start a 1 MiB frame before hello and stop: the
    supervisor drops them (a frame before hello is a few KiB at most) and
    its memory stays put. 70 peers of one uid that leave a hello-sized
    frame half-sent: 64 are held (the limit per uid), the rest refused at
    once, and the 64 dropped at the hello timeout. Status answers
    throughout."""
    sup = Sup(env, {"a": {}})
    sup.start()
    pid = sup.proc.pid
    before = rss_kib(pid)
    peers = []
    for _ in range(300):
        r = Raw(sup.socket)
        send_some(r.s, struct.pack(">I", (1 << 20) - 1) + b"\x81" * (256 << 10))
        peers.append(r)
    check(serving(sup), "status answers with 300 peers sending")
    after = rss_kib(pid)
    for r in peers:
        said = until_closed(r)
        check(said is not None and b"frame length is 0 or over 4096 bytes" in said,
              "dropped for its frame: %r" % said)
        r.close()
    print("supervisor RSS before %d KiB, after 300 half-sent frames %d KiB "
          "(+%d KiB)" % (before, after, after - before))
    check(after - before < 32 * 1024, "RSS grew by %d KiB" % (after - before))

    slow = [Raw(sup.socket, timeout=60) for _ in range(70)]
    for r in slow:
        send_some(r.s, struct.pack(">I", 4000) + b"\x81" * 3999)
    # Another uid (the supervisor's own) is not held back by these.
    if as_root():
        rc, out, err = sup.ctl("status", as_uid=NOBODY)
        check(rc == 0, "status beside 64 slow peers: %d %r" % (rc, err))
    said = [until_closed(r) for r in slow]
    for r in slow:
        r.close()
    refused = [x for x in said if x is not None and b"too_many_connections" in x]
    timed_out = [x for x in said if x is not None and b"no hello within 10 seconds" in x]
    check(len(refused) == 6 and len(timed_out) == 64,
          "refused %d, timed out %d: %r" % (len(refused), len(timed_out), said))
    check(serving(sup), "still serving")
    log = sup.log_text()
    check("refusing a peer over the limit of connections of this uid" in log and
          "dropping a peer that sent no hello" in log, "logged")
    check(sup.proc.alive(), "the supervisor lives")


@harness.test
def peer_without_rights_is_refused(env):
    if not as_root():
        print("skipped: needs root to run a client as another user "
              "(the role logic is covered by tests/unit/test_supervisor.c)")
        return
    sup = Sup(env, {"a": {}})
    sup.start()
    # The socket's mode keeps others out first (exit 3, one line).
    rc, out, err = sup.ctl("status", as_uid=1)
    check(rc == 3 and "Permission denied" in err and err.count("\n") == 1, (rc, out, err))
    # Past the file mode (as a member of the socket's group would be),
    # SO_PEERCRED decides: uid 1 (daemon) is neither root, nor the
    # supervisor's user (nobody), nor the proxy user, nor an admin.
    os.chmod(sup.socket, 0o666)
    rc, out, err = sup.ctl("status", as_uid=1)
    check(rc == 1, (rc, out, err))
    check("uid 1 (daemon) may not use this socket" in err, err)
    check(err.count("\n") == 1, "one line: %r" % err)
    check(serving(sup), "still serving")
    log = sup.log_text()
    check("refusing a peer without rights" in log, "logged")


@harness.test
def stale_socket_and_second_supervisor(env):
    sup = Sup(env, {"a": {}})
    # A stale socket file (nobody listening) is replaced.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sup.socket)
    s.close()
    os.chmod(sup.socket, 0o777)
    os.chmod(os.path.dirname(sup.socket), 0o777)
    sup.start()
    check("removing a stale socket" in sup.log_text(), sup.log_text())
    check(oct(os.stat(sup.socket).st_mode & 0o777) == oct(0o660), "mode 0660")
    # A second supervisor on the same socket refuses to start.
    second = env.spawn("second", sup.argv())
    check(second.wait(20) == 1, "the second one exits 1")
    check("another supervisor is running on %s" % sup.socket in second.output(),
          second.output())
    check(serving(sup), "the first one still serves")


@harness.test
def socket_path_errors(env):
    sup = Sup(env, {"a": {}})
    with open(sup.socket, "w") as f:
        f.write("not a socket")
    p = sup.start("not-a-socket", wait=False)
    check(p.wait(20) == 1, "exit 1")
    check("%s exists and is not a socket" % sup.socket in p.output(), p.output())
    check(open(sup.socket).read() == "not a socket", "the file is left alone")
    # --socket is not checked by the config loader: the supervisor says.
    long_path = env.path("run", "x" * 120 + ".sock")
    p = env.spawn("too-long", sup.argv() + ["--socket", long_path])
    check(p.wait(20) == 1 and "socket path is too long" in p.output(), p.output())


@harness.test
def proxy_role_gets_config_and_state(env):
    sup = Sup(env, {"a": {"aliases": "[alpha]"}, "b": {}})
    sup.start()
    r = Raw(sup.socket)
    r.send(hello(role=1))
    check(mp_type(r.frame()) == T_HELLO, "hello")
    cfg = r.frame()
    check(mp_type(cfg) == T_CONFIG and b"alpha" in cfg, cfg)
    st = r.frame()
    check(mp_type(st) == T_STATE, st)
    # A state push follows a change.
    sup.ctl_ok("wake", "a")
    pushed = [r.frame() for _ in range(1)]
    check(all(mp_type(p) in (T_STATE, 204) for p in pushed), pushed)
    # Demand from the proxy shows in status.
    r.send(frame(mp_map([("t", mp_uint(200)), ("model", mp_str("b")),
                         ("queued", mp_uint(3)), ("in_flight", mp_uint(2))])))
    wait_until(lambda: sup.model("b")["queue_depth"] == 3, 10, "demand recorded")
    check(sup.model("b")["in_flight"] == 2, sup.model("b"))
    # The proxy may not follow a log (it would hold the proxy's link), even
    # for a caller with the admin token...
    r.send(frame(mp_map([("t", mp_uint(314)), ("id", mp_uint(5)), ("model", mp_str("a")),
                         ("follow", b"\xc3"), ("authorized", b"\xc3")])))
    while True:
        p = r.frame()
        if mp_type(p) == T_ERROR:
            check(b"may not follow model logs" in p, p)
            check(b"forbidden" in p and b"only the admin role" in p, p)
            break
    # ...nor read its tail for a caller without the token...
    r.send(frame(mp_map([("t", mp_uint(314)), ("id", mp_uint(7)), ("model", mp_str("a")),
                         ("lines", mp_uint(5))])))
    while True:
        p = r.frame()
        if mp_type(p) == T_ERROR:
            check(b"forbidden" in p and b"admin token" in p, p)
            break
    # ...but may read it for one with it, for the web page: log_data, then
    # the reply.
    r.send(frame(mp_map([("t", mp_uint(314)), ("id", mp_uint(6)), ("model", mp_str("a")),
                         ("lines", mp_uint(5)), ("authorized", b"\xc3")])))
    while True:
        p = r.frame()
        check(mp_type(p) != T_ERROR, p)
        if mp_type(p) == T_REPLY:
            check(b"end of log" in p, p)
            break
    # When the proxy goes, its counts go with it.
    r.close()
    wait_until(lambda: sup.model("b")["queue_depth"] == 0, 10, "demand cleared")


def proxy_peer(sup):
    """A peer with the proxy role, past hello, config and state."""
    r = Raw(sup.socket)
    r.send(hello(role=1))
    check(mp_type(r.frame()) == T_HELLO, "hello")
    check(mp_type(r.frame()) == T_CONFIG, "config")
    return r


def next_drain(r, model):
    """The drain_id of the next drain of model sent to this peer."""
    while True:
        p = r.frame()
        check(p is not None, "the supervisor closed the proxy")
        m = mpack.unpack(p)
        if m.get("t") == T_DRAIN and m.get("model") == model:
            return m["drain_id"]


@harness.test
def proxy_leaving_mid_drain(env):
    """Two proxy connections; a switch drains a; one answers, the other
    leaves without answering: the switch goes on at once (not after the
    300 s drain timeout), and the in-flight requests the departed proxy
    had reported are gone from status."""
    sup = Sup(env, {"a": {}, "b": {}},
              extra="policy:\n  min_active_secs: 0\n  drain_timeout_secs: 300\n")
    sup.start()
    sup.ctl_ok("wake", "a")
    check(sup.status()["state"] == "active:a", sup.status()["state"])
    p1, p2 = proxy_peer(sup), proxy_peer(sup)
    p2.send(mpack.frame({"t": 200, "model": "a", "queued": 0, "in_flight": 3,
                         "oldest_ms": 0}))
    wait_until(lambda: sup.model("a")["in_flight"] == 3, 10, "p2's demand")
    p1.send(mpack.frame({"t": 200, "model": "b", "queued": 1, "in_flight": 0,
                         "oldest_ms": 0}))
    d1, d2 = next_drain(p1, "a"), next_drain(p2, "a")
    check(d1 == d2, (d1, d2))
    # p1 answers (twice: the second does not count for p2); a ping's
    # pong says the supervisor has read both. a is still being drained.
    p1.send(mpack.frame({"t": 203, "model": "a", "drain_id": d1}))
    p1.send(mpack.frame({"t": 203, "model": "a", "drain_id": d1}))
    p1.send(mpack.frame({"t": 3, "id": 77}))
    while mpack.unpack(p1.frame()).get("t") != 4:
        pass
    check(sup.model("a")["state"] == "draining", sup.model("a"))
    p2.close()
    t0 = time.monotonic()
    wait_until(lambda: sup.status()["state"] == "active:b", 20,
               "the switch to end without the proxy that left")
    print("switch done %.2f s after the proxy left mid-drain (drain timeout "
          "300 s)" % (time.monotonic() - t0))
    st = sup.status()["models"]
    check(st["a"]["in_flight"] == 0 and st["a"]["queue_depth"] == 0, st["a"])
    check("the proxy that had not answered left" in sup.log_text(), "logged")
    p1.close()


def next_ready(r, model):
    """The next ready message (204) for model, decoded."""
    while True:
        p = r.frame()
        check(p is not None, "the supervisor closed the proxy's connection")
        if mp_type(p) == 204:
            m = mpack.unpack(p)
            if m["model"] == model:
                return m


def unreachable(r, model, port, generation):
    r.send(frame(mp_map([("t", mp_uint(207)), ("model", mp_str(model)),
                         ("port", mp_uint(port)), ("generation", mp_uint(generation))])))


@harness.test
def proxy_reports_a_model_unreachable(env):
    sup = Sup(env, {"a": {}}, extra="health_check_secs: 2\n")
    sup.start()
    r = Raw(sup.socket, timeout=60)
    r.send(hello(role=1))
    check(mp_type(r.frame()) == T_HELLO, "hello")
    sup.ctl_ok("wake", "a")
    ready = next_ready(r, "a")
    # It answers its check: ready again, the same process.
    unreachable(r, "a", ready["port"], ready["generation"])
    again = next_ready(r, "a")
    check(again["generation"] == ready["generation"] and again["port"] == ready["port"], again)
    log = sup.log_text()
    check('the proxy reports a model unreachable, checking it" model=a' in log, log)
    # Another generation than a's: already replaced, nothing to do.
    unreachable(r, "a", ready["port"], ready["generation"] + 7)
    wait_until(lambda: 'already replaced" model=a' in sup.log_text(), 10, "the stale report")
    # Stopped, it fails the check: killed at once (not after 3 checks),
    # restarted, and ready with a new generation.
    pid = sup.model("a")["pid"]
    for p in sup.model_pids("a"):
        os.kill(p, signal.SIGSTOP)
    unreachable(r, "a", ready["port"], ready["generation"])
    again = next_ready(r, "a")
    check(again["generation"] > ready["generation"], again)
    check(sup.model("a")["pid"] != pid, sup.model("a"))
    check("unreachable (the proxy could not connect, then GET /health" in sup.log_text(),
          sup.log_text())
    r.close()


@harness.test
def subscribe_gets_state_events(env):
    sup = Sup(env, {"a": {}})
    sup.start()
    r = Raw(sup.socket)
    r.send(hello())
    check(mp_type(r.frame()) == T_HELLO, "hello")
    r.send(frame(mp_map([("t", mp_uint(316)), ("id", mp_uint(1))])))
    check(mp_type(r.frame()) == T_REPLY, "subscribed")
    first = r.frame()
    # The state of every model, a stopped (state 0) at first.
    check(mp_type(first) == T_STATE and b"\xa4name\xa1a" in first and
          b"\xa5state\x00" in first, first)
    sup.ctl_ok("wake", "a")
    # Pushes follow the change until the model is ready (state 2); the
    # events of the stream come in between (test_events.py reads them).
    seen = []
    while True:
        p = r.frame()
        check(p is not None and mp_type(p) in (T_STATE, T_EVENT), p)
        if mp_type(p) == T_EVENT:
            continue
        seen.append(p)
        if b"\xa5state\x02" in p:
            break
    check(len(seen) >= 1, seen)
    r.close()


if __name__ == "__main__":
    harness.main()
