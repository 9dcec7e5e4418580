"""e2e_helpers.py -- what the acceptance and chaos scenarios (test_e2e_*.py)
share, on top of switch_helpers.Stack (the real supervisor, the real proxy,
llmux-fakevllm models):

* Client: one request per connection (`Connection: close`) on a raw
  socket, so that everything the proxy sends is seen: the answer is read
  to the end of the connection and classified as one complete response
  (JSON that parses and says it came from the model asked for; a stream
  whose events parse and end with [DONE]) or one explicit error (an
  OpenAI-style error body, or an error event in a stream), or else it is
  "broken": refused, reset, cut short, silent past its deadline, bytes
  after the answer, a truncated stream, the wrong model.
* Ledger: every request a scenario sends and its outcome; `check` says
  that each one has exactly one outcome (nothing hung) and that nothing
  is broken, with the error codes the scenario allows.
* Load: clients sending requests back to back from threads; flood: many
  requests at once from one thread (selectors), each on its own socket.
* Figures of the daemons from /proc (VmRSS, open descriptors), and
  `scale(quick, soak)`: LLMUX_SOAK (`make soak`) runs the longer forms.
"""
import json
import os
import random
import selectors
import socket
import sys
import threading
import time

import harness
from harness import check, wait_until

SOAK = harness.SOAK


def scale(quick, soak):
    """The quick figure under `make check`, the long one under `make soak`."""
    return soak if SOAK else quick


def say(fmt, *args):
    """A line in the scenario's output (shown when it fails)."""
    sys.stdout.write((fmt % args if args else fmt) + "\n")
    sys.stdout.flush()


# ---- one HTTP/1.1 response, read as it arrives -----------------------------------

class Response:
    """Parses one response fed in pieces; `extra` is anything after it."""

    def __init__(self):
        self.buf = b""
        self.status = None
        self.headers = {}
        self.mode = None		# "length", "chunked", "close"
        self.left = 0
        self.body = bytearray()
        self.done = False
        self.bad = None			# a framing error
        self.extra = b""
        self.chunk_state = "size"

    def feed(self, data):
        if self.done:
            self.extra += data
            return
        self.buf += data
        while not self.done and not self.bad:
            if self.status is None:
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    if len(self.buf) > 65536:
                        self.bad = "response head too large"
                    return
                self._head(self.buf[:i].decode("latin-1"))
                self.buf = self.buf[i + 4:]
                continue
            if self.mode == "length":
                take = self.buf[:self.left]
                self.body += take
                self.left -= len(take)
                self.buf = self.buf[len(take):]
                if self.left == 0:
                    self._finish()
                return
            if self.mode == "close":
                self.body += self.buf
                self.buf = b""
                return
            if not self._chunk():
                return

    def _head(self, text):
        lines = text.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            self.bad = "bad status line %r" % lines[0][:80]
            return
        self.status = int(parts[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in self.headers:
            self.mode = "length"
            self.left = int(self.headers["content-length"])
            if self.left == 0:
                self._finish()
        elif self.status in (204, 304):
            self._finish()
        else:
            self.mode = "close"

    def _chunk(self):
        """One step of chunked decoding; False when more bytes are needed."""
        if self.chunk_state == "size":
            i = self.buf.find(b"\r\n")
            if i < 0:
                return False
            try:
                self.left = int(self.buf[:i].split(b";")[0], 16)
            except ValueError:
                self.bad = "bad chunk size %r" % self.buf[:i][:20]
                return False
            self.buf = self.buf[i + 2:]
            self.chunk_state = "data" if self.left > 0 else "trailer"
            return True
        if self.chunk_state == "data":
            if len(self.buf) < self.left + 2:
                return False
            if self.buf[self.left:self.left + 2] != b"\r\n":
                self.bad = "chunk not followed by CRLF"
                return False
            self.body += self.buf[:self.left]
            self.buf = self.buf[self.left + 2:]
            self.chunk_state = "size"
            return True
        i = self.buf.find(b"\r\n")		# trailer: empty line ends it
        if i < 0:
            return False
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        if line == b"":
            self._finish()
        return True

    def _finish(self):
        self.done = True
        self.extra, self.buf = self.buf, b""

    def eof(self):
        """The connection ended: a body read to the close is complete."""
        if self.mode == "close" and self.status is not None and not self.done:
            self.done = True

    def events(self):
        """The SSE data payloads of the body so far."""
        out = []
        for block in bytes(self.body).split(b"\n\n"):
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    out.append(line[6:].decode("utf-8", "replace"))
        return out


# ---- outcomes ------------------------------------------------------------------------

class Outcome:
    """What became of one request.

    kind: "ok" (one complete response from the right model), "error" (one
    explicit error: status and code), "abandoned" (the client left on
    purpose), "broken" (anything else: the scenario fails)."""

    def __init__(self, req):
        self.req = req
        self.kind = None
        self.status = None
        self.code = None
        self.detail = ""
        self.served_by = None
        self.tokens = 0
        self.t_end = None

    def __repr__(self):
        return "<%s #%d %s%s: %s %s %s%s>" % (
            self.kind, self.req["n"], self.req["model"], " stream" if self.req["stream"] else "",
            self.status, self.code or "", self.detail[:200],
            "" if self.served_by in (None, self.req["model"]) else " by " + str(self.served_by))


def classify(req, resp, exc=None):
    """The outcome of req from its Response (or the exception that ended it)."""
    o = Outcome(req)
    o.t_end = time.monotonic()
    o.status = resp.status if resp is not None else None
    if exc is not None:
        o.kind = "broken"
        o.detail = "%s: %s (status %s, %d bytes of body)" % (
            type(exc).__name__, exc, o.status, len(resp.body) if resp else 0)
        return o
    if resp.bad:
        o.kind, o.detail = "broken", resp.bad
        return o
    if resp.status is None:
        o.kind, o.detail = "broken", "connection closed without a response"
        return o
    if not resp.done:
        o.kind, o.detail = "broken", "response cut short (%d bytes of body)" % len(resp.body)
        return o
    if resp.extra:
        o.kind, o.detail = "broken", "bytes after the response: %r" % resp.extra[:80]
        return o
    if resp.status != 200:
        try:
            error_outcome(o, json.loads(bytes(resp.body))["error"])
        except (ValueError, KeyError, TypeError):
            o.kind, o.detail = "broken", "error %d without a JSON error body: %r" % (
                resp.status, bytes(resp.body[:200]))
        return o
    if req["stream"]:
        return classify_stream(o, req, resp)
    try:
        obj = json.loads(bytes(resp.body))
        choice = obj["choices"][0]
        content = choice["message"]["content"] if req["chat"] else choice["text"]
        o.served_by = obj["model"]
        o.tokens = obj["usage"]["completion_tokens"]
        finish = choice["finish_reason"]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        o.kind, o.detail = "broken", "200 without a complete answer (%s): %r" % (
            e, bytes(resp.body[:200]))
        return o
    return finish_outcome(o, req, finish, None if content else "an empty answer")


def classify_stream(o, req, resp):
    events = resp.events()
    done = bool(events) and events[-1] == "[DONE]"
    finish = None
    for e in events:
        if e == "[DONE]":
            continue
        try:
            ev = json.loads(e)
        except ValueError:
            o.kind, o.detail = "broken", "an event that is not JSON: %r" % e[:100]
            return o
        if "error" in ev:
            # An explicit error in the stream: the model or the proxy says
            # why the answer ends here.
            return error_outcome(o, ev["error"])
        o.served_by = ev.get("model", o.served_by)
        for ch in ev.get("choices", []):
            piece = ch.get("delta", {}).get("content") if req["chat"] else ch.get("text")
            if piece:
                o.tokens += 1
            if ch.get("finish_reason"):
                finish = ch["finish_reason"]
    if not done:
        o.kind, o.detail = "broken", "stream ended without [DONE] after %d events" % len(events)
        return o
    return finish_outcome(o, req, finish,
                          "stream without a finish_reason" if finish is None else None)


def error_outcome(o, err):
    """An explicit error (a JSON error body, or an error event in a stream):
    the model or the proxy says why there is no answer."""
    o.kind = "error"
    if isinstance(err, dict):
        o.code = err.get("code") or err.get("type") or "error"
        o.detail = err.get("message", "")
    else:
        o.code, o.detail = "error", str(err)
    return o


def finish_outcome(o, req, finish, missing):
    """A whole answer: ok unless it was aborted, cut short of max_tokens,
    missing something (missing says what), or answered by another model."""
    o.kind = "ok"
    if finish == "abort":
        o.kind, o.code, o.detail = "broken", "aborted", "finish_reason abort"
    elif finish == "length" and o.tokens != req["max_tokens"]:
        o.kind, o.detail = "broken", "%d tokens of %d" % (o.tokens, req["max_tokens"])
    elif missing:
        o.kind, o.detail = "broken", missing
    check_model(o, req)
    return o


def check_model(o, req):
    want = req.get("served_by", req["model"])
    if o.kind == "ok" and o.served_by != want:
        o.kind, o.detail = "broken", "answered by %r, not %r" % (o.served_by, want)


class Ledger:
    """Every request sent and its one outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.outcomes = []

    def begin(self):
        with self.lock:
            self.sent += 1
            return self.sent

    def end(self, o):
        with self.lock:
            self.outcomes.append(o)

    def of(self, kind=None, model=None, code=None):
        with self.lock:
            return [o for o in self.outcomes if (kind is None or o.kind == kind) and
                    (model is None or o.req["model"] == model) and
                    (code is None or o.code == code)]

    def count(self, kind="ok", model=None):
        return len(self.of(kind, model))

    def summary(self):
        with self.lock:
            kinds = {}
            for o in self.outcomes:
                key = o.kind if o.kind != "error" else "error %s %s" % (o.status, o.code)
                kinds[key] = kinds.get(key, 0) + 1
        return "%d sent: %s" % (self.sent, ", ".join(
            "%s %d" % kv for kv in sorted(kinds.items())))

    def check(self, allow=(), models=None):
        """Each request has exactly one outcome and none is broken; errors
        only with the (status, code) pairs in allow (a code alone matches any
        status; models: errors allowed only for those models)."""
        say("requests: %s", self.summary())
        with self.lock:
            outs = list(self.outcomes)
            sent = self.sent
        check(len(outs) == sent, "every request has an outcome: %d of %d" % (len(outs), sent))
        seen = set()
        for o in outs:
            check(o.req["n"] not in seen, "one outcome per request: %r" % o)
            seen.add(o.req["n"])
        broken = [o for o in outs if o.kind == "broken"]
        check(not broken, "%d broken, the first: %r" % (len(broken), broken[:5]))
        for o in outs:
            if o.kind != "error":
                continue
            ok = (o.status, o.code) in allow or o.code in allow
            if models is not None:
                ok = ok and o.req["model"] in models
            check(ok, "an error not allowed here: %r" % o)
        return outs


# ---- the client ----------------------------------------------------------------------

def request_bytes(req):
    if req["chat"]:
        body = {"model": req["model"], "max_tokens": req["max_tokens"], "temperature": 0,
                "messages": [{"role": "user", "content": req["text"]}]}
        path = "/v1/chat/completions"
    else:
        body = {"model": req["model"], "max_tokens": req["max_tokens"], "temperature": 0,
                "prompt": req["text"]}
        path = "/v1/completions"
    if req["stream"]:
        body["stream"] = True
    data = json.dumps(body).encode() if req.get("raw") is None else req["raw"]
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(data))) + data


class Client:
    """Requests through the proxy port, each recorded in the ledger.

    source: the loopback address to connect from (127.0.0.1 when None); the
    proxy counts each 127.x.y.z as a client of its own."""

    def __init__(self, port, ledger, timeout=60, source=None):
        self.port = port
        self.ledger = ledger
        self.timeout = timeout
        self.source = (source, 0) if source else None

    def new(self, model, stream=False, max_tokens=8, text=None, chat=True, served_by=None,
            raw=None):
        n = self.ledger.begin()
        req = {"n": n, "model": model, "stream": stream, "max_tokens": max_tokens,
               "text": text or "request %d for %s" % (n, model), "chat": chat, "raw": raw}
        if served_by is not None:
            req["served_by"] = served_by
        return req

    def send(self, model, stream=False, max_tokens=8, text=None, chat=True, abandon_after=None,
             timeout=None, served_by=None, on_sent=None, raw=None):
        """One request; its Outcome (also in the ledger). abandon_after: for
        a stream, leave after that many events; 0 leaves as soon as it is
        sent (queued requests), after on_sent() if given. raw: these bytes
        as the body instead of a request for model."""
        req = self.new(model, stream, max_tokens, text, chat, served_by, raw)
        deadline = time.monotonic() + (timeout or self.timeout)
        resp = Response()
        exc = None
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                         source_address=self.source)
            s.sendall(request_bytes(req))
            if on_sent is not None:
                on_sent()
            if abandon_after == 0:
                return self.abandon(req, s)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no complete answer within %ss" % (timeout or self.timeout))
                s.settimeout(left)
                data = s.recv(65536)
                if not data:
                    resp.eof()
                    break
                resp.feed(data)
                if abandon_after is not None and len(resp.events()) >= abandon_after \
                        and not resp.done:
                    return self.abandon(req, s)
        except OSError as e:
            exc = e
        finally:
            if s is not None:
                s.close()
        o = classify(req, resp, exc)
        self.ledger.end(o)
        return o

    def abandon(self, req, s):
        s.close()
        o = Outcome(req)
        o.kind = "abandoned"
        o.t_end = time.monotonic()
        self.ledger.end(o)
        return o


def flood(port, ledger, reqs, timeout=120):
    """Send many requests at once (reqs: kwargs for Client.new), one socket
    each, all from this thread; returns their outcomes."""
    client = Client(port, ledger, timeout)
    sel = selectors.DefaultSelector()
    live = {}
    outs = []
    for kw in reqs:
        req = client.new(**kw)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(request_bytes(req))
        except OSError as e:
            o = classify(req, None, e)
            ledger.end(o)
            outs.append(o)
            continue
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        live[s] = (req, Response())
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            req, resp = live[s]
            exc = None
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data, exc = b"", e
            if data:
                resp.feed(data)
                continue
            resp.eof()
            sel.unregister(s)
            s.close()
            del live[s]
            o = classify(req, resp, exc)
            ledger.end(o)
            outs.append(o)
    for s, (req, resp) in live.items():
        sel.unregister(s)
        s.close()
        o = classify(req, resp, TimeoutError("no complete answer within %ss" % timeout))
        ledger.end(o)
        outs.append(o)
    sel.close()
    return outs


class Load:
    """Clients sending requests back to back until stopped.

    pick(rng) returns the kwargs of the next request (Client.send)."""

    def __init__(self, client, pick, clients=4, seed=1):
        self.client = client
        self.pick = pick
        self.stop_ev = threading.Event()
        self.threads = []
        for i in range(clients):
            t = threading.Thread(target=self.loop, args=(random.Random(seed * 1000 + i),),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def loop(self, rng):
        while not self.stop_ev.is_set():
            self.client.send(**self.pick(rng))

    def stop(self, timeout=120):
        self.stop_ev.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
            check(not t.is_alive(), "a client of the load is stuck")


def mix(models, stream=0.3, max_tokens=(4, 16), chat=0.8):
    """A pick function for Load: a model from models (a list, repeats weigh
    more), streaming with probability stream."""
    def pick(rng):
        return {"model": rng.choice(models), "stream": rng.random() < stream,
                "max_tokens": rng.randint(*max_tokens), "chat": rng.random() < chat}
    return pick


def progress(ledger, n, model=None, timeout=30, what=None):
    """Wait until n more requests (of model) have been answered ok."""
    base = ledger.count("ok", model)
    wait_until(lambda: ledger.count("ok", model) >= base + n, timeout,
               what or "%d more answers%s" % (n, " from " + model if model else ""))


# ---- the daemons ----------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def sanitized(pid):
    """Is pid built with AddressSanitizer (its RSS then says little)?"""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def idle(stack, timeout=30):
    """Wait until the proxy holds nothing: no request queued or in flight."""
    def quiet():
        text = stack.metrics()
        for line in text.splitlines():
            if line.startswith(("llmux_in_flight{", "llmux_queue_depth{")) and \
                    float(line.split()[-1]) != 0:
                return False
        return True
    wait_until(quiet, timeout, "the proxy to be idle")
