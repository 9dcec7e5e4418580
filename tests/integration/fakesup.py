"""fakesup.py -- a scripted llmux-supervisord for the proxy's integration
tests: it listens on a Unix socket, answers hello, pushes config and state,
records what the proxy sends (demand, drained, control calls), and lets a
test send ready, failed, drain or state at will, answer control calls, or
drop the proxy and come back."""
import os
import socket
import threading
import time

import mpack

HELLO, ERROR, PING, PONG = 1, 2, 3, 4
CONFIG = 100
DEMAND, STATE, DRAIN, DRAINED, READY, FAILED, UNREACHABLE = 200, 201, 202, 203, 204, 205, 207
CTL_STATUS, CTL_MODELS, CTL_MODE, CTL_PIN, CTL_UNPIN, CTL_SWITCH = 300, 301, 302, 303, 304, 305
CTL_EVICTION_GET, CTL_EVICTION_SET, CTL_SLEEP, CTL_WAKE = 306, 307, 308, 309
CTL_CHECKPOINT, CTL_RESTORE, CTL_VALIDATE, CTL_RELOAD = 310, 311, 312, 313
CTL_LOGS, CTL_METRICS, CTL_SUBSCRIBE = 314, 315, 316
REPLY, PROGRESS, LOG_DATA = 400, 401, 402

# Model states.
STOPPED, STARTING, READY_S, DRAINING, SLEEPING, WAKING, CHECKPOINTED, FAILED_S, EVICTING = range(9)


def config_msg(models, **kw):
    """models: list of (name, port, [aliases][, {more keys: served,
    max_concurrency}])."""
    m = {"t": CONFIG, "generation": kw.pop("generation", 1), "port": kw.pop("port", 3000),
         "admin_port": kw.pop("admin_port", 0), "metrics_port": kw.pop("metrics_port", 0),
         "models": []}
    for e in models:
        info = {"name": e[0], "port": e[1], "aliases": list(e[2])}
        if len(e) > 3:
            info.update(e[3])
        m["models"].append(info)
    m.update(kw)
    return m


def state_msg(models, manual=False, pinned=None, switcher="idle"):
    """models: dict name -> (state, port, generation[, reason])."""
    st = {"t": STATE, "manual": manual, "switcher": switcher, "models": []}
    if pinned is not None:
        st["pinned"] = pinned
    for name, v in models.items():
        e = {"name": name, "state": v[0], "port": v[1], "generation": v[2]}
        if len(v) > 3 and v[3] is not None:
            e["reason"] = v[3]
        st["models"].append(e)
    return st


class FakeSup:
    def __init__(self, path, config=None, state=None):
        self.path = path
        self.config = config
        self.state = state
        # call type -> fn(msg) -> (status, body) or None; the proxy
        # subscribes to events after each hello: an empty ring, as the
        # real supervisor's reply says it.
        self.handlers = {CTL_SUBSCRIBE: lambda m: (200, {
            "message": "Subscribed", "boot": 1, "first_seq": 1, "last_seq": 0,
            "ring_size": 4096})}
        self.msgs = []              # every message received, in order
        self.cond = threading.Condition()
        self.conn = None
        self.hellos = 0
        self.lsock = None
        self.running = False

    # -- lifecycle --------------------------------------------------------
    def start(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(8)
        self.running = True
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        """The supervisor goes away: close the listener and the proxy."""
        self.running = False
        if self.lsock is not None:
            try:
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            self.lsock = None
        self.drop()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def drop(self):
        with self.cond:
            c, self.conn = self.conn, None
            self.cond.notify_all()
        if c is not None:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept_loop(self):
        while self.running:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        while True:
            try:
                m = mpack.read_frame(c)
            except (OSError, ValueError):
                m = None
            if m is None:
                with self.cond:
                    if self.conn is c:
                        self.conn = None
                    self.cond.notify_all()
                return
            self._handle(c, m)

    def _handle(self, c, m):
        t = m.get("t")
        with self.cond:
            self.msgs.append(m)
            self.cond.notify_all()
        if t == HELLO:
            with self.cond:
                self.conn = c
                self.hellos += 1
            self._send(c, {"t": HELLO, "version": 1, "role": 1, "pid": os.getpid(),
                           "program": "fakesup", "unprivileged": True})
            if self.config is not None:
                self._send(c, self.config)
            if self.state is not None:
                self._send(c, self.state)
        elif t == PING:
            self._send(c, {"t": PONG, "id": m.get("id", 0)})
        elif t is not None and 300 <= t < 400:
            h = self.handlers.get(t)
            if h is None:
                return
            r = h(m)
            if r is not None:
                status, body = r
                self._send(c, {"t": REPLY, "id": m["id"], "status": status, "body": body})

    def _send(self, c, msg):
        try:
            c.sendall(mpack.frame(msg))
        except OSError:
            pass

    # -- what tests use ---------------------------------------------------
    def send(self, msg):
        with self.cond:
            c = self.conn
        if c is None:
            raise AssertionError("the proxy is not connected")
        self._send(c, msg)

    def send_raw(self, data):
        with self.cond:
            c = self.conn
        c.sendall(data)

    def connected(self):
        with self.cond:
            return self.conn is not None

    def wait_connected(self, timeout=10.0, hellos=1):
        self.wait(lambda: self.conn is not None and self.hellos >= hellos, timeout,
                  "the proxy to say hello")

    def wait(self, pred, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("fakesup: timed out waiting for " + what)
                self.cond.wait(min(left, 0.2))

    def of_type(self, t):
        with self.cond:
            return [m for m in self.msgs if m.get("t") == t]

    def wait_msg(self, pred, timeout=10.0, what="message"):
        def find():
            for m in self.msgs:
                if pred(m):
                    return m
            return None
        return self.wait(find, timeout, what)

    def last_demand(self, model):
        with self.cond:
            for m in reversed(self.msgs):
                if m.get("t") == DEMAND and m.get("model") == model:
                    return m
        return None

    def wait_demand(self, model, pred, timeout=10.0):
        def ok():
            for m in reversed(self.msgs):
                if m.get("t") == DEMAND and m.get("model") == model:
                    return m if pred(m) else None
            return None
        return self.wait(ok, timeout, "a demand for %s" % model)

    def ready(self, model, port, generation=1):
        self.send({"t": READY, "model": model, "port": port, "generation": generation})

    def failed(self, model, reason):
        self.send({"t": FAILED, "model": model, "reason": reason})

    def drain(self, model, drain_id):
        self.send({"t": DRAIN, "model": model, "drain_id": drain_id})
