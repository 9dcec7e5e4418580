#!/usr/bin/env python3
"""gen-frame-corpus.py -- write the seed corpus of fuzz_frame: one frame of
each message type, in msgpack encoded by this small writer."""
import os
import struct
import sys

def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)

def frame(d):
    p = mp(d)
    return struct.pack(">I", len(p)) + p

msgs = {
    "hello": {"t": 1, "version": 1, "role": 1, "pid": 10, "program": "llmux-proxyd"},
    "error": {"t": 2, "id": 3, "code": "forbidden", "message": "no"},
    "ping": {"t": 3, "id": 1},
    "config": {"t": 100, "generation": 1, "port": 3000, "admin_port": 3001,
               "models": [{"name": "a", "port": 8001, "aliases": ["x"]},
                          {"name": "b", "port": 8002, "served": "org/b", "max_concurrency": 2}],
               "api_keys": ["k"], "max_body_bytes": 1 << 25, "allow_unauthenticated": False},
    "demand": {"t": 200, "model": "a", "queued": 3, "in_flight": 1, "oldest_ms": 20},
    "state": {"t": 201, "manual": False, "switcher": "active:a",
              "models": [{"name": "a", "state": 2, "port": 8001, "generation": 1, "eviction": "offload+keep_running"},
                         {"name": "b", "state": 7, "reason": "boom"}]},
    "drain": {"t": 202, "model": "a", "drain_id": 1},
    "ready": {"t": 204, "model": "a", "port": 8001, "generation": 2},
    "failed": {"t": 205, "model": "a", "reason": "x"},
    "unreachable": {"t": 207, "model": "a", "port": 8001, "generation": 2},
    "switch": {"t": 305, "id": 9, "model": "b", "authorized": True},
    "sleep": {"t": 308, "id": 9, "model": "b", "eviction": "discard+stop"},
    "validate": {"t": 312, "id": 9, "model": "b", "policies": ["1", "offload+keep_running"]},
    "reply": {"t": 400, "id": 9, "status": 200, "body": {"state": "idle", "models": {"a": {"in_flight": 0}}, "x": [1.5, None, -3]}},
    "progress": {"t": 401, "id": 9, "phase": "wake", "elapsed_ms": 10},
    "event": {"t": 206, "seq": 42, "boot": 1767225600123, "time_ms": 1767225601005,
              "kind": "switch", "model": "b",
              "data": {"from": "a", "to": "b", "phase": "done", "total_ms": 412,
                       "phases": {"cooldown": 0, "drain": 12, "evict": 30, "wake": 370},
                       "victims": ["a"], "reason": None}},
    "event_gap": {"t": 206, "seq": 99, "boot": 1767225600123, "time_ms": 1767225601005,
                  "kind": "gap", "data": {"first_seq": 100}},
    "subscribe": {"t": 316, "id": 4, "since": "1767225600123-41"},
    "subscribe_seq": {"t": 316, "id": 5, "since": 0},
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, d in msgs.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(frame(d))
with open(os.path.join(out, "stream"), "wb") as f:
    f.write(frame(msgs["demand"]) + frame(msgs["reply"]) + frame(msgs["state"]) +
            frame(msgs["event"]))
