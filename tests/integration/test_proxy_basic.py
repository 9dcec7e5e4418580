"""test_proxy_basic.py -- llmux-proxyd forwards to a ready model: bodies
byte for byte, answers relayed (sized and streamed), aliases and the
model-override header (the body's model rewritten to the target's served
name, nothing else changed), vLLM's routes outside /v1/ and multipart
forms routed by their model field, /health and /v1/models, a model
server that refuses connections (the request held until the model is
ready again), and the 400/404 answers for requests it cannot route."""
import hashlib
import http.client
import json

import harness
from harness import test, check
from fakesup import READY_S, SLEEPING, UNREACHABLE, state_msg
from proxykit import Stack, start_upstub, error_code, stub_stats
from switch_helpers import Parallel


def ready_stack(env, **kw):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, ["alias-a"]), ("b", up + 1, []),
                     ("c", up, [], {"served": "org/c-served"})],
               state_msg({"a": (READY_S, up, 1), "b": (SLEEPING, 0, 0),
                          "c": (READY_S, up, 1)}), **kw)
    return st, up


def form(fields, boundary="----llmuxB0undary"):
    """A multipart/form-data body of (name, value[, filename]) parts."""
    out = b""
    for f in fields:
        disp = b'form-data; name="%s"' % f[0].encode()
        if len(f) > 2:
            disp += b'; filename="%s"' % f[2].encode()
        out += b"--%s\r\nContent-Disposition: %s\r\n" % (boundary.encode(), disp)
        if len(f) > 2:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + f[1] + b"\r\n"
    return out + b"--%s--\r\n" % boundary.encode(), \
        "multipart/form-data; boundary=%s" % boundary


@test
def forwards_body_byte_for_byte(env):
    st, up = ready_stack(env)
    body = json.dumps({"model": "a", "messages": [{"role": "user", "content": "h\u00e9llo \"x\""}],
                       "x": list(range(2000))}, separators=(",", ":")).encode()
    status, hdrs, obj = st.post(body, headers={"Content-Type": "application/json",
                                               "X-Trace": "t1"})
    check(status == 200, "status %d %r" % (status, obj))
    check(obj["sha256"] == hashlib.sha256(body).hexdigest(), "body changed on the way")
    check(obj["length"] == len(body))
    check(obj["headers"]["x-trace"] == "t1", "headers forwarded")
    check(obj["headers"]["host"].startswith("127.0.0.1:"), "host rewritten")
    check(hdrs["content-type"] == "application/json")
    check(obj["path"] == "/v1/chat/completions")


@test
def query_string_and_other_paths(env):
    st, up = ready_stack(env)
    status, _, obj = st.post({"model": "a"}, path="/v1/embeddings?x=1&y=2")
    check(status == 200 and obj["path"] == "/v1/embeddings?x=1&y=2", repr(obj))


@test
def keepalive_reuses_connections(env):
    st, up = ready_stack(env)
    c = http.client.HTTPConnection("127.0.0.1", st.port, timeout=10)
    for i in range(20):
        c.request("POST", "/v1/completions", body=json.dumps({"model": "a", "i": i}))
        r = c.getresponse()
        data = json.loads(r.read())
        check(r.status == 200 and data["served_by"] == "a")
    c.close()
    # Twenty requests over a handful of upstream connections, not twenty.
    check(stub_stats(up)["connections"] < 20, "upstream connections were kept alive")


@test
def streaming_is_relayed(env):
    st, up = ready_stack(env)
    status, events = harness.sse_events(st.port, "/v1/chat/completions",
                                        {"model": "a", "stream": True, "chunks": 5})
    check(status == 200, "status %d %r" % (status, events))
    check(events[-1] == "[DONE]", repr(events))
    toks = [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]]
    check(toks == ["tok%d " % i for i in range(5)], repr(toks))


@test
def alias_and_override(env):
    st, up = ready_stack(env)
    status, _, obj = st.post({"model": "alias-a"})
    check(status == 200 and obj["served_by"] == "a", repr(obj))
    # The header wins over the body, whatever the body is.
    status, _, obj = st.post(b"this is not json", headers={"model-override": "a"})
    check(status == 200 and obj["length"] == len(b"this is not json"), repr(obj))


@test
def override_rewrites_the_body_model(env):
    st, up = ready_stack(env)
    # Another model, or an alias, becomes the target's name; nothing else
    # of the body changes (spacing, key order, escapes, what follows).
    for body, target, served in (
            (b'{"model":"b","x":[1,2,{"model":"b"}]}', "a", "a"),
            (b'{ "messages": [], "model" : "alias-a" , "n":1}', "a", "a"),
            (b'{"model":"\\u0062","stream":false}', "c", "org/c-served"),
            (b'{"model":"b"}', "alias-a", "a")):
        status, _, obj = st.post(body, headers={"model-override": target})
        i = body.index(b'"model"') + 7
        j = body.index(b'"', body.index(b'"', i) + 1) + 1
        want = body[:body.index(b'"', i)] + json.dumps(served).encode() + body[j:]
        check(status == 200 and obj["model"] == served, "%r: %r" % (body, obj))
        check(obj["body"].encode("latin-1") == want and obj["length"] == len(want),
              "only the model changed: %r -> %r" % (body, obj["body"]))
    # No model in the body, or not JSON: forwarded as it is.
    status, _, obj = st.post(b'{"prompt":"x"}', headers={"model-override": "a"})
    check(status == 200 and obj["body"] == '{"prompt":"x"}', repr(obj))
    # A form's model field too, after a file part.
    body, ctype = form([("file", b"RIFF\x00\x01--x\r\n" * 50, "a.wav"), ("model", b"b"),
                        ("language", b"en")])
    status, _, obj = st.post(body, path="/v1/audio/transcriptions",
                             headers={"model-override": "c", "Content-Type": ctype})
    want = body.replace(b"\r\n\r\nb\r\n", b"\r\n\r\norg/c-served\r\n")
    check(status == 200 and obj["body"].encode("latin-1") == want, repr(obj))


@test
def model_routes_outside_v1_and_forms(env):
    st, up = ready_stack(env)
    for path in ("/tokenize", "/detokenize", "/v1/embeddings", "/v1/rerank", "/v1/score",
                 "/pooling", "/rerank", "/v2/rerank"):
        status, _, obj = st.post({"model": "alias-a", "prompt": "x"}, path=path)
        check(status == 200 and obj["served_by"] == "a" and obj["path"] == path,
              "%s: %d %r" % (path, status, obj))
    status, _, obj = harness.http(st.port, "GET", "/tokenize")[:3]
    check(status == 404, "GET /tokenize: %d" % status)
    # A form names its model in a field: here after a file of 1 MiB.
    audio = bytes(range(256)) * 4096
    body, ctype = form([("file", audio, "a.wav"), ("model", b"alias-a"), ("language", b"en")])
    status, _, obj = st.post(body, path="/v1/audio/transcriptions",
                             headers={"Content-Type": ctype})
    check(status == 200 and obj["served_by"] == "a", repr(obj))
    check(obj["sha256"] == hashlib.sha256(body).hexdigest(), "the form is forwarded unchanged")
    for fields, ctype2, why in (
            ([("file", audio[:100], "a.wav")], None, "no model field"),
            ([("model", b"")], None, "empty model"),
            ([("model", b"a")], "multipart/form-data", "no boundary"),
            ([("model", b"a")], "multipart/form-data; boundary=" + "x" * 71, "long boundary")):
        body, ctype = form(fields)
        status, _, obj = st.post(body, path="/v1/audio/transcriptions",
                                 headers={"Content-Type": ctype2 or ctype})
        check(status == 400 and error_code(obj) == "invalid_request", "%s: %d %r" % (
            why, status, obj))
    status, _, obj = st.post(b"--zz\r\nContent-Disposition: form-data; name=model\r\n\r\nnope",
                             path="/v1/audio/transcriptions",
                             headers={"Content-Type": "multipart/form-data; boundary=zz"})
    check(status == 400 and "ends before" in obj["error"]["message"], repr(obj))


@test
def bad_requests(env):
    st, up = ready_stack(env)
    for body, why in ((b"{not json", "malformed"), (b"{}", "no model"), (b"[1]", "not an object"),
                      (b'{"model": 3}', "model not a string"), (b"", "empty")):
        status, _, obj = st.post(body)
        check(status == 400, "%s: status %d" % (why, status))
        check(error_code(obj) == "invalid_request", "%s: %r" % (why, obj))
        # OpenAI's error object: message, type, param, code.
        check(obj["error"]["type"] == "invalid_request_error" and "param" in obj["error"]
              and obj["error"]["param"] is None, repr(obj))
    status, _, obj = st.post({"model": "nope"})
    check(status == 404 and error_code(obj) == "model_not_found", repr(obj))
    check("nope" in obj["error"]["message"])
    check(obj["error"]["type"] == "invalid_request_error" and obj["error"]["param"] == "model",
          repr(obj))
    check(sorted(obj["error"]) == ["code", "message", "param", "type"], repr(obj))
    status, _, obj = st.post({"model": "a"}, path="/other")
    check(status == 404 and error_code(obj) == "not_found", repr(obj))
    status, _, obj = st.post(None, headers={"model-override": "x" * 200})
    check(status == 400, "bad override %d" % status)


@test
def health_and_models(env):
    st, up = ready_stack(env)
    status, obj = harness.http_json(st.port, "GET", "/health")
    check(status == 200 and obj["status"] == "ok" and obj["supervisor"] is True, repr(obj))
    status, obj = harness.http_json(st.port, "GET", "/v1/models")
    check(status == 200 and obj["object"] == "list", repr(obj))
    ids = {m["id"]: m for m in obj["data"]}
    check(set(ids) == {"a", "alias-a", "b", "c"}, repr(ids))
    check(ids["a"]["state"] == "ready" and ids["b"]["state"] == "sleeping", repr(ids))
    check(ids["alias-a"]["alias_of"] == "a")
    check(all(m["object"] == "model" for m in obj["data"]))
    status, obj = harness.http_json(st.port, "GET", "/v1/models/alias-a")
    check(status == 200 and obj["id"] == "alias-a", repr(obj))
    status, obj = harness.http_json(st.port, "GET", "/v1/models/zzz")
    check(status == 404 and obj["error"]["code"] == "model_not_found", repr(obj))


@test
def upstream_status_and_unsized_body(env):
    st, up = ready_stack(env)
    status, _, obj = st.post({"model": "a", "status": 404})
    check(status == 404 and obj["served_by"] == "a", "upstream status passes through")
    status, hdrs, obj = st.post({"model": "a", "length": False})
    check(status == 200 and obj["served_by"] == "a", repr(obj))


@test
def upstream_refused_is_held_until_ready(env):
    # The model's port refuses the connection: nothing reached the model,
    # so the request waits, the supervisor is told, and no other request
    # is sent there until it says ready.
    dead = harness.free_port()
    st = Stack(env, [("a", dead, [])], state_msg({"a": (READY_S, dead, 1)}))
    par = Parallel()
    for i in range(3):
        par.run(st.post, {"model": "a", "i": i})
    u = st.sup.wait_msg(lambda m: m.get("t") == UNREACHABLE, what="the unreachable report")
    check(u["model"] == "a" and u["port"] == dead and u["generation"] == 1, repr(u))
    st.sup.wait_demand("a", lambda m: m["queued"] == 3 and m["in_flight"] == 0)
    # A state push that does not move the model changes nothing.
    st.sup.send(state_msg({"a": (READY_S, dead, 1)}))
    up = start_upstub(env, "a")
    st.sup.ready("a", up, 2)
    for status, _, obj in par.join(30):
        check(status == 200 and obj["served_by"] == "a", repr(obj))
    check(len(st.sup.of_type(UNREACHABLE)) == 1, "reported once")
    text = harness.http(st.admin, "GET", "/metrics")[2].decode()
    check('llmux_upstream_errors_total{model="a",kind="connect"}' in text, text)
    sent = sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('llmux_requests_total{model="a",'))
    check(sent == 3, "each request counted once: %s" % text)


def raw(port, data, until):
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(data)
    out = b""
    while not until(out):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def post_bytes(body, extra=b"", version=b"1.1"):
    return (b"POST /v1/chat/completions HTTP/" + version + b"\r\nHost: x\r\n" + extra +
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


@test
def pipelined_requests_answered_in_order(env):
    st, up = ready_stack(env)
    reqs = b"".join(post_bytes(json.dumps({"model": "a", "n": i}).encode()) for i in range(3))
    out = raw(st.port, reqs, lambda o: o.count(b"HTTP/1.1 200") == 3 and o.endswith(b"}"))
    bodies = [json.loads(b.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])
              for b in out.split(b"HTTP/1.1 200")[1:]]
    check([b["length"] for b in bodies] == [len(json.dumps({"model": "a", "n": i}))
                                           for i in range(3)], repr(bodies))


@test
def expect_continue_and_http10(env):
    st, up = ready_stack(env)
    import socket
    s = socket.create_connection(("127.0.0.1", st.port), timeout=20)
    body = json.dumps({"model": "a"}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    got = s.recv(4096)
    check(got.startswith(b"HTTP/1.1 100"), repr(got))
    s.sendall(body)
    while b'"sha256"' not in got or not got.endswith(b"}"):
        got += s.recv(65536)
    obj = json.loads(got.split(b"\r\n\r\n")[-1])
    check("expect" not in obj["headers"], "Expect is not forwarded")
    s.close()
    # An HTTP/1.0 client gets a stream without chunked framing, ended by close.
    out = raw(st.port, post_bytes(json.dumps({"model": "a", "stream": True, "chunks": 3}).encode(),
                                  version=b"1.0"), lambda o: False)
    head, _, rest = out.partition(b"\r\n\r\n")
    check(b"chunked" not in head.lower() and b"connection: close" in head.lower(), repr(head))
    check(rest.count(b"data: ") == 4 and rest.endswith(b"data: [DONE]\n\n"), repr(rest[-80:]))


if __name__ == "__main__":
    harness.main()
