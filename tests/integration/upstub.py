#!/usr/bin/env python3
"""upstub.py -- a small model-server stand-in for the proxy's tests (run as
its own process): OpenAI-looking answers whose behaviour the request body
chooses, and counters a test can read.

    upstub.py --port P --name NAME

POST /v1/* with a JSON body:
  {"stream": true, "chunks": N, "chunk_bytes": B, "delay_ms": D}   SSE stream
  {"die_after": K}      close the socket after K chunks (or before headers: 0)
  {"wait_ms": W}        wait W ms before the headers, watching for the client
  {"status": S}         answer with status S
  {"length": false}     a non-streaming body without Content-Length (close)
  {"cut_body": true}    a Content-Length body cut off halfway (then close)
Otherwise a JSON answer with the sha256 and length of the body it got
(the body itself, as latin-1, when it is at most 4 KiB), the headers it
saw and the model of a JSON body. GET /stats answers the counters; GET
/health 200.
"""
import argparse
import hashlib
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATS = {"requests": 0, "bytes_sent": 0, "aborted": 0, "finished": 0,
         "open": 0, "connections": 0, "aborted_waiting": 0}
LOCK = threading.Lock()
NAME = "stub"


def bump(k, n=1):
    with LOCK:
        STATS[k] += n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        bump("connections")
        bump("open")

    def finish(self):
        try:
            super().finish()
        finally:
            bump("open", -1)

    def send_json(self, status, obj, length=True, count=True):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        if count:
            bump("bytes_sent", len(data))

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                s = dict(STATS)
            self.send_json(200, s, count=False)
        elif self.path == "/health":
            self.send_json(200, {"ok": True}, count=False)
        else:
            self.send_json(404, {"error": "no"})

    def client_gone(self):
        r, _, _ = select.select([self.connection], [], [], 0)
        if r:
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True
        return False

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        bump("requests")
        try:
            req = json.loads(body) if body else {}
        except ValueError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        wait = req.get("wait_ms", 0)
        if wait:
            end = time.monotonic() + wait / 1000.0
            while time.monotonic() < end:
                if self.client_gone():
                    bump("aborted_waiting")
                    self.close_connection = True
                    return
                time.sleep(0.01)
        die = req.get("die_after")
        if die == 0:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            bump("aborted")
            return
        if req.get("stream"):
            self.stream(req, die)
            return
        if req.get("cut_body"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"{" + b" " * 499)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            bump("aborted")
            return
        info = {"id": "cmpl-1", "object": "chat.completion", "served_by": NAME,
                "model": req.get("model"), "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body), "path": self.path,
                "body": body.decode("latin-1") if len(body) <= 4096 else None,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from " + NAME},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}
        self.send_json(req.get("status", 200), info, req.get("length", True))
        bump("finished")

    def stream(self, req, die):
        chunks = req.get("chunks", 3)
        size = req.get("chunk_bytes", 0)
        delay = req.get("delay_ms", 0) / 1000.0
        self.send_response(req.get("status", 200))
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i in range(chunks):
                if die is not None and i == die:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    bump("aborted")
                    return
                ev = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "served_by": NAME,
                      "choices": [{"index": 0, "delta": {"content": "tok%d " % i}}]}
                if size:
                    ev["pad"] = "x" * size
                data = ("data: %s\n\n" % json.dumps(ev)).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                bump("bytes_sent", len(data))
                if delay:
                    time.sleep(delay)
            done = b"data: [DONE]\n\n"
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
            self.wfile.flush()
            bump("finished")
        except OSError:
            bump("aborted")
            self.close_connection = True


def main():
    global NAME
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="stub")
    a = ap.parse_args()
    NAME = a.name
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print("upstub %s listening on %d" % (NAME, a.port), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
