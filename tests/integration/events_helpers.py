"""events_helpers.py -- what the event stream scenarios share: a client of
GET /control/events that parses Server-Sent Events as they arrive, a
raw subscriber on the supervisor's socket, and a generator of events
(the mode flipped back and forth over one admin connection, each call
answered before the next)."""
import json
import socket

from harness import check
from supervisor_helpers import Raw, frame, hello, mp_map, mp_str, mp_type, mp_uint

T_HELLO, T_EVENT, T_REPLY = 1, 206, 400


class Sse:
    """One GET /control/events connection; records parsed as they come."""

    def __init__(self, port, last_id=None, query="", rcvbuf=None, headers=None,
                 timeout=10.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        req = "GET /control/events%s HTTP/1.1\r\nHost: x\r\n" % query
        if last_id is not None:
            req += "Last-Event-ID: %s\r\n" % last_id
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        self.eof = False
        self.status = None
        self.headers = {}

    def head(self):
        """Read the response head; returns the status."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError("no response head: %r" % self.buf[:200])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        return self.status

    def _fill(self):
        try:
            data = self.s.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def record(self):
        """The next record: {"id", "event", "data" (decoded), "comments"};
        None at the end of the stream."""
        if self.status is None:
            self.head()
        while True:
            if b"\n\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n\n", 1)
                rec = {"comments": []}
                for line in raw.decode("utf-8").split("\n"):
                    if line.startswith(":"):
                        rec["comments"].append(line[1:].strip())
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data":
                        rec["data"] = json.loads(v)
                    elif k in ("id", "event", "retry"):
                        rec[k] = v
                    else:
                        raise AssertionError("unexpected SSE line %r" % line)
                return rec
            if not self._fill():
                return None

    def event(self):
        """The next event record (comments and retry skipped), or None."""
        while True:
            r = self.record()
            if r is None or "data" in r:
                return r

    def events_until(self, pred, limit=100000):
        """Events until one satisfies pred (included); fails at EOF."""
        out = []
        for _ in range(limit):
            r = self.event()
            check(r is not None, "the stream ended before the awaited event; "
                  "got %r" % [e["data"] for e in out][-5:])
            out.append(r)
            if pred(r["data"]):
                return out
        raise AssertionError("the awaited event never came")

    def close(self):
        self.s.close()


class Subscriber(Raw):
    """A raw admin peer subscribed to events on the supervisor's socket."""

    def __init__(self, path, since=None, rcvbuf=None):
        Raw.__init__(self, path)
        if rcvbuf is not None:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.send(hello())
        check(mp_type(self.frame()) == T_HELLO, "hello answered")
        pairs = [("t", mp_uint(316)), ("id", mp_uint(1))]
        if since is not None:
            pairs.append(("since", mp_str(since)))
        self.send(frame(mp_map(pairs)))


class Flipper:
    """Makes events: the mode set to manual and back, one call at a time,
    over one admin connection (each flip is a `mode` event)."""

    def __init__(self, path):
        self.r = Raw(path, timeout=30)
        self.r.send(hello())
        check(mp_type(self.r.frame()) == T_HELLO, "hello answered")
        self.id = 1
        self.manual = False

    def flip(self, n=1):
        for _ in range(n):
            self.manual = not self.manual
            self.id += 1
            self.r.send(frame(mp_map([("t", mp_uint(302)), ("id", mp_uint(self.id)),
                                      ("mode", mp_str("manual" if self.manual else "auto"))])))
            while True:
                p = self.r.frame()
                check(p is not None, "the supervisor closed the flipper")
                if mp_type(p) == T_REPLY:
                    break

    def close(self):
        if self.manual:
            self.flip()
        self.r.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Reloader:
    """Makes many bytes of events quickly: the config gains and loses
    `n` models with long names at each reload (a `reload` event listing
    them, and a `state` event for each model added)."""

    def __init__(self, sup, n=40):
        self.sup = sup
        self.base = dict(sup.models)
        self.more = dict(self.base)
        for i in range(n):
            name = "m%03d-%s" % (i, "x" * 100)
            self.more[name] = {}
            # Never started: distinct ports below the ephemeral range.
            sup.ports[name] = 20000 + i
        self.flipper = Flipper(sup.socket)
        self.grown = False

    def reload(self, n=1):
        for _ in range(n):
            self.grown = not self.grown
            self.sup.write_config(self.more if self.grown else self.base, self.sup.extra)
            f = self.flipper
            f.id += 1
            f.r.send(frame(mp_map([("t", mp_uint(313)), ("id", mp_uint(f.id))])))
            while True:
                p = f.r.frame()
                check(p is not None, "the supervisor closed the reloader")
                if mp_type(p) == T_REPLY:
                    check(b"Configuration reloaded" in p, p[:300])
                    break

    def close(self):
        if self.grown:
            self.reload()
        self.flipper.close()
