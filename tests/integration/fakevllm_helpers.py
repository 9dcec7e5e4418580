"""fakevllm_helpers.py -- what the llmux-fakevllm scenarios share: start
the program the way the supervisor does, talk to it, read a stream as it
arrives (in a thread), read a process's RSS, count tokens the way the
stand-in does."""
import http.client
import json
import re
import socket
import threading

import harness
from harness import check, free_port, wait_until


def health(port):
    return harness.http(port, "GET", "/health", timeout=5)[0]


def start(env, *args, dev=True, fast=True, names=("alpha",), model="org/model-1b",
          wait=True, name="fakevllm", sleep_mode=True):
    """Start llmux-fakevllm; returns (Proc, port). Waits for /health 200."""
    port = free_port()
    argv = [harness.binary("llmux-fakevllm"), "serve", model, "--port", str(port)]
    if sleep_mode:
        argv.append("--enable-sleep-mode")
    if names:
        argv += ["--served-model-name"] + list(names)
    if fast:
        argv.append("--fake-fast")
    argv += [str(a) for a in args]
    extra = {"NO_COLOR": "1", "VLLM_SERVER_DEV_MODE": "1" if dev else "0"}
    p = env.spawn(name, argv, extra_env=extra)
    if wait:
        def up():
            check(p.alive(), "llmux-fakevllm exited early:\n" + p.output())
            return health(port) == 200
        wait_until(up, timeout=30, what="llmux-fakevllm /health")
    return p, port


def state(port):
    status, obj = harness.http_json(port, "GET", "/fake/state")
    check(status == 200, "GET /fake/state: %d" % status)
    return obj


def post(port, path, body=None):
    """POST with an optional JSON body; returns (status, decoded or raw body)."""
    status, _, data = harness.http(port, "POST", path, body=body, timeout=30)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data


def chat_body(content, max_tokens=8, model="alpha", **kw):
    body = {"model": model, "messages": [{"role": "user", "content": content}],
            "temperature": 0}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body.update(kw)
    return body


def chat(port, content, max_tokens=8, **kw):
    return harness.http_json(port, "POST", "/v1/chat/completions",
                             chat_body(content, max_tokens, **kw), timeout=30)


def content_of(obj):
    return obj["choices"][0]["message"]["content"]


def count_tokens(text):
    """The stand-in's tokenizer: word runs (8 characters a token), others 1."""
    n = 0
    for m in re.finditer(r"[A-Za-z0-9']+|\S", text):
        tok = m.group(0)
        if re.fullmatch(r"[A-Za-z0-9']+", tok):
            n += 1 + (len(tok) - 1) // 8
        else:
            n += 1
    return n


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def gone(pid):
    """True once pid has exited (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class Stream(threading.Thread):
    """POST a streaming request and collect its SSE data lines as they come."""

    def __init__(self, port, body, path="/v1/chat/completions", timeout=120):
        super().__init__(daemon=True)
        self.port, self.body, self.path, self.timeout = port, body, path, timeout
        self.events = []
        self.status = None
        self.done = threading.Event()
        self.error = None
        self.conn = None
        self.start()

    def run(self):
        try:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.timeout)
            self.conn.request("POST", self.path, body=json.dumps(self.body).encode(),
                              headers={"Content-Type": "application/json"})
            r = self.conn.getresponse()
            self.status = r.status
            self.headers = {k.lower(): v for k, v in r.getheaders()}
            if r.status != 200:
                self.events.append(r.read().decode("utf-8", "replace"))
                return
            for raw in r:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data: "):
                    self.events.append(line[6:])
        except Exception as e:  # a server that dies mid-stream
            self.error = e
        finally:
            self.done.set()

    def chunks(self):
        """Decoded JSON events (everything but [DONE])."""
        return [json.loads(e) for e in list(self.events) if e != "[DONE]"]

    def tokens(self):
        """The generated pieces, in order (role and finish-only chunks skipped)."""
        out = []
        for c in self.chunks():
            for ch in c.get("choices", []):
                piece = ch["delta"].get("content") if "delta" in ch else ch.get("text")
                if piece:
                    out.append(piece)
        return out

    def finish_reasons(self):
        return [ch.get("finish_reason") for c in self.chunks()
                for ch in c.get("choices", []) if ch.get("finish_reason")]

    def ended_with_done(self):
        return bool(self.events) and self.events[-1] == "[DONE]"

    def wait(self, timeout=60):
        check(self.done.wait(timeout), "stream did not end within %ss" % timeout)

    def close(self):
        """Drop the connection from the client's side."""
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass


def exit_code(proc, timeout=20):
    """Wait (with a deadline) for a process to exit; returns its status."""
    return proc.wait(timeout=timeout)


def port_refuses(port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        return True
    finally:
        s.close()
    return False


def log_has(proc, text):
    return text in proc.output()

