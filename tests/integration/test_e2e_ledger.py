#!/usr/bin/env python3
"""test_e2e_ledger.py -- the judge of the acceptance scenarios
(e2e_helpers.Response, classify, Ledger.check) on answers written by hand:
each way an answer can be broken (cut short, a stream without [DONE], a
bad chunk, bytes after the answer, too few tokens, an abort, the wrong
model, no answer at all) is called broken, explicit errors are errors, and
whole answers are ok, fed in one piece or byte by byte. The scenarios'
"every request got one complete response or one explicit error" rests on
this."""
import json

import harness
from harness import check
import e2e_helpers as e2e


def req(n=1, model="a", stream=False, max_tokens=3, chat=True):
    return {"n": n, "model": model, "stream": stream, "max_tokens": max_tokens,
            "text": "x", "chat": chat, "raw": None}


def sized(status, obj):
    body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


def chunked(events, end=True):
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for e in events:
        data = b"data: %s\n\n" % (e if isinstance(e, bytes) else json.dumps(e).encode())
        out += b"%x\r\n%s\r\n" % (len(data), data)
    return out + (b"0\r\n\r\n" if end else b"")


def answer(model="a", tokens=3, finish="length", content="hi"):
    return {"model": model, "usage": {"completion_tokens": tokens},
            "choices": [{"message": {"content": content}, "finish_reason": finish}]}


def delta(text, finish=None, model="a"):
    return {"model": model, "choices": [{"delta": {"content": text}, "finish_reason": finish}]}


def judge(r, raw, bytewise=False, eof=True):
    resp = e2e.Response()
    if bytewise:
        for i in range(len(raw)):
            resp.feed(raw[i:i + 1])
    else:
        resp.feed(raw)
    if eof:
        resp.eof()
    return e2e.classify(r, resp)


@harness.test
def whole_answers_are_ok(env):
    for bytewise in (False, True):
        o = judge(req(), sized(200, answer()), bytewise)
        check(o.kind == "ok" and o.served_by == "a" and o.tokens == 3, o)
        o = judge(req(stream=True), chunked([delta("a"), delta("b"), delta("c", "length"),
                                             b"[DONE]"]), bytewise)
        check(o.kind == "ok" and o.tokens == 3, o)
        # A stop before max_tokens is whole too.
        o = judge(req(), sized(200, answer(tokens=1, finish="stop")), bytewise)
        check(o.kind == "ok", o)


@harness.test
def explicit_errors_are_errors(env):
    o = judge(req(), sized(503, {"error": {"message": "no room", "code": "model_failed"}}))
    check(o.kind == "error" and o.status == 503 and o.code == "model_failed" and
          o.detail == "no room", o)
    o = judge(req(stream=True), chunked([delta("a"), {"error": {"message": "gone",
                                                               "code": "upstream_closed"}},
                                         b"[DONE]"]))
    check(o.kind == "error" and o.code == "upstream_closed", o)


@harness.test
def broken_answers_are_broken(env):
    cases = [
        ("cut short", req(), sized(200, answer())[:-5], "cut short"),
        ("nothing at all", req(), b"", "without a response"),
        ("bytes after", req(), sized(200, answer()) + b"HTTP/1.1 200", "bytes after"),
        ("too few tokens", req(), sized(200, answer(tokens=2)), "2 tokens of 3"),
        ("aborted", req(), sized(200, answer(finish="abort")), "abort"),
        ("empty", req(), sized(200, answer(content="")), "empty"),
        ("wrong model", req(), sized(200, answer(model="b")), "not 'a'"),
        ("error without JSON", req(), sized(502, b"<html>bad gateway</html>"), "without a JSON"),
        ("200 not JSON", req(), sized(200, b"{\"choices\": ["), "without a complete answer"),
        ("no [DONE]", req(stream=True), chunked([delta("a"), delta("b"), delta("c", "length")]),
         "without [DONE]"),
        ("no terminating chunk", req(stream=True),
         chunked([delta("a"), delta("b"), delta("c", "length"), b"[DONE]"], end=False),
         "cut short"),
        ("no finish_reason", req(stream=True), chunked([delta("a"), b"[DONE]"]),
         "finish_reason"),
        ("streamed short", req(stream=True), chunked([delta("a"), delta("b", "length"),
                                                      b"[DONE]"]), "2 tokens of 3"),
        ("event not JSON", req(stream=True), chunked([b"{oops", b"[DONE]"]), "not JSON"),
        ("bad chunk", req(stream=True),
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    ]
    for name, r, raw, why in cases:
        o = judge(r, raw)
        check(o.kind == "broken" and why in o.detail, "%s: %r" % (name, o))


@harness.test
def ledger_check_fails_on_broken_missing_or_unallowed(env):
    def ledger(*outcomes, sent=None):
        led = e2e.Ledger()
        for o in outcomes:
            led.begin()
            led.end(o)
        if sent is not None:
            led.sent = sent
        return led

    def fails(led, **kw):
        try:
            led.check(**kw)
        except AssertionError:
            return True
        return False

    ok = judge(req(1), sized(200, answer()))
    err = judge(req(2), sized(503, {"error": {"message": "m", "code": "model_failed"}}))
    broken = judge(req(3), sized(200, answer())[:-5])
    check(not fails(ledger(ok, err), allow=("model_failed",)), "ok and an allowed error pass")
    check(fails(ledger(ok, err)), "an error not allowed fails")
    check(fails(ledger(ok, err, broken), allow=("model_failed",)), "a broken answer fails")
    check(fails(ledger(ok, sent=2)), "a request without an outcome fails")
    check(fails(ledger(ok, judge(req(1), sized(200, answer())))), "two outcomes for one fails")
    check(fails(ledger(ok, err), allow=("model_failed",), models=("b",)),
          "an error for a model not named fails")


if __name__ == "__main__":
    harness.main()
