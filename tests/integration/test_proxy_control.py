"""test_proxy_control.py -- the admin port of llmux-proxyd: the
/control/* paths of llmux 0.7 (Rust), each forwarded to the supervisor
as one control call whose reply (status and JSON body) is passed
through; request validation
(400, 405, 404, 422); the admin token (reads open, the web page and its
history and events included; changes and a model's log 401 without it,
forwarded as authorized with it, reload never forwarded); /metrics with
the proxy's own metrics and the supervisor's."""
import http.client
import json
import os
import signal
import socket

import harness
from harness import test, check
import fakesup as fs
from fakesup import READY_S, SLEEPING, state_msg
from events_helpers import Sse
from proxykit import Stack, start_upstub

STATUS_BODY = {"state": "active:a", "active_model": "a", "mode": {"mode": "auto"},
               "models": {"a": {"in_flight": 0, "queue_depth": 0, "process_state": "running"},
                          "b": {"in_flight": 0, "queue_depth": 0,
                                "process_state": "sleeping:Offload+KeepRunning"}}}


TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": "Bearer " + TOKEN}


def control_stack(env, **kw):
    kw.setdefault("admin_token", TOKEN)
    if kw["admin_token"] is None:
        del kw["admin_token"]
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, []), ("b", up, [])],
               state_msg({"a": (READY_S, up, 1), "b": (SLEEPING, 0, 0)}), **kw)
    sup = st.sup
    sup.handlers[fs.CTL_STATUS] = lambda m: (200, STATUS_BODY)

    def model_call(verb):
        def h(m):
            if m.get("model") not in ("a", "b"):
                return 404, {"error": "Model not found: %s" % m.get("model")}
            return 200, {"message": "%s %s" % (verb, m["model"])}
        return h
    for t, verb in ((fs.CTL_PIN, "Pinned to model:"), (fs.CTL_SWITCH, "Switched to model:"),
                    (fs.CTL_SLEEP, "sleep"), (fs.CTL_WAKE, "wake"),
                    (fs.CTL_EVICTION_SET, "eviction"), (fs.CTL_CHECKPOINT, "checkpoint"),
                    (fs.CTL_RESTORE, "restore"), (fs.CTL_VALIDATE, "validate")):
        sup.handlers[t] = model_call(verb)

    def mode(m):
        if m["mode"] not in ("auto", "manual"):
            return 400, {"message": "Unknown mode: %s. Use 'auto' or 'manual'." % m["mode"]}
        return 200, {"message": "Switched to %s mode" % m["mode"]}
    sup.handlers[fs.CTL_MODE] = mode
    sup.handlers[fs.CTL_UNPIN] = lambda m: (200, {"message": "Unpinned. Switched to auto mode."})
    sup.handlers[fs.CTL_EVICTION_GET] = lambda m: (200, {"models": {"a": {
        "eviction": {"weights": "offload", "process": "keep_running"}, "process_state": "running"}}})
    sup.handlers[fs.CTL_RELOAD] = lambda m: (200, {"message": "reloaded"})

    def logs(m):
        # The tail of a log: log_data chunks on the call's id, then the reply.
        for chunk in (b"line one\n", b"line two\n"):
            sup.send({"t": fs.LOG_DATA, "id": m["id"], "data": chunk})
        return 200, {"message": "end of log"}
    sup.handlers[fs.CTL_LOGS] = logs
    sup.handlers[fs.CTL_METRICS] = lambda m: (200, {"text": "# TYPE llmux_switches_total counter\n"
                                                             "llmux_switches_total{from=\"a\",to=\"b\"} 3\n"})
    return st


def last_call(st, t):
    return st.sup.wait_msg(lambda m: m.get("t") == t, what="call %d" % t)


def ctl(port, method, path, body=None, headers=AUTH):
    """A control call with the admin token (unless headers say otherwise)."""
    return harness.http_json(port, method, path, body, headers=headers)


@test
def status_passes_through(env):
    st = control_stack(env)
    status, obj = harness.http_json(st.admin, "GET", "/control/status")
    check(status == 200 and obj == STATUS_BODY, repr(obj))


@test
def calls_and_codes(env):
    st = control_stack(env)
    a = st.admin
    check(ctl(a, "POST", "/control/mode", {"mode": "manual"}) ==
          (200, {"message": "Switched to manual mode"}))
    m = last_call(st, fs.CTL_MODE)
    check(m["mode"] == "manual" and m["authorized"] is True, m)
    status, obj = ctl(a, "POST", "/control/mode", {"mode": "bogus"})
    check(status == 400 and "Unknown mode" in obj["message"], repr(obj))
    status, obj = ctl(a, "POST", "/control/pin", {"model": "b"})
    check(status == 200 and obj["message"] == "Pinned to model: b", repr(obj))
    status, obj = ctl(a, "POST", "/control/pin", {"model": "zz"})
    check(status == 404 and obj["error"] == "Model not found: zz", repr(obj))
    status, obj = ctl(a, "POST", "/control/unpin")
    check(status == 200 and "auto" in obj["message"], repr(obj))
    status, obj = ctl(a, "POST", "/control/switch", {"model": "a"})
    check(status == 200, repr(obj))
    check(last_call(st, fs.CTL_SWITCH)["model"] == "a")
    status, obj = ctl(a, "GET", "/control/eviction")
    check(status == 200 and obj["models"]["a"]["eviction"]["weights"] == "offload", repr(obj))
    status, obj = ctl(a, "POST", "/control/eviction",
                      {"model": "a", "eviction": {"weights": "retain", "process": "cuda_suspend"}})
    check(status == 200, repr(obj))
    check(last_call(st, fs.CTL_EVICTION_SET)["eviction"] == "retain+cuda_suspend")
    status, obj = ctl(a, "POST", "/control/sleep", {"model": "b", "eviction": 2})
    check(status == 200, repr(obj))
    check(last_call(st, fs.CTL_SLEEP)["eviction"] == "discard+keep_running")
    check(ctl(a, "POST", "/control/wake", {"model": "b"})[0] == 200)
    check(ctl(a, "POST", "/control/checkpoint", {"model": "b"})[0] == 200)
    check(ctl(a, "POST", "/control/restore", {"model": "b"})[0] == 200)
    status, obj = ctl(a, "POST", "/control/validate",
                      {"model": "b", "policies": ["1", "offload+keep_running"]})
    check(status == 200, repr(obj))
    check(last_call(st, fs.CTL_VALIDATE)["policies"] == ["1", "offload+keep_running"])
    # reload is the admin role's alone: never forwarded, even with the token.
    status, obj = ctl(a, "POST", "/control/reload")
    check(status == 403 and obj["error"]["code"] == "admin_role_required", repr(obj))
    check(not st.sup.of_type(fs.CTL_RELOAD), "reload reached the supervisor")


@test
def bad_control_requests(env):
    st = control_stack(env)
    a = st.admin
    check(ctl(a, "GET", "/control/nope")[0] == 404)
    check(ctl(a, "GET", "/control/pin")[0] == 405)
    check(ctl(a, "POST", "/control/status")[0] == 405)
    status, _, _ = harness.http(a, "POST", "/control/pin", b"{not json", headers=AUTH)
    check(status == 400, "bad json %d" % status)
    check(ctl(a, "POST", "/control/pin", {})[0] == 422)
    check(ctl(a, "POST", "/control/pin", {"model": 5})[0] == 422)
    check(ctl(a, "POST", "/control/eviction", {"model": "a"})[0] == 422)
    check(ctl(a, "POST", "/control/eviction",
                            {"model": "a", "eviction": {"weights": "x", "process": "stop"}})[0] == 422)
    check(ctl(a, "POST", "/control/mode", {"mode": 1})[0] == 422)
    check(not st.sup.of_type(fs.CTL_PIN), "nothing bad reached the supervisor")


@test
def supervisor_slow_or_silent(env):
    st = control_stack(env)
    # A call the supervisor answers with an error message instead of a reply.
    st.sup.handlers[fs.CTL_STATUS] = None
    st.sup.handlers[fs.CTL_WAKE] = lambda m: st.sup.send({"t": fs.ERROR, "id": m["id"],
                                                          "code": "bad", "message": "no"})
    status, obj = ctl(st.admin, "POST", "/control/wake", {"model": "a"})
    check(status == 500 and "error" in obj, repr(obj))
    # A refusal by the supervisor's table of roles is a 403.
    st.sup.handlers[fs.CTL_SWITCH] = lambda m: st.sup.send({"t": fs.ERROR, "id": m["id"],
                                                            "code": "forbidden", "message": "no"})
    status, obj = ctl(st.admin, "POST", "/control/switch", {"model": "a"})
    check(status == 403 and "refused" in obj["error"], repr(obj))


STATE_CHANGING = [("POST", "/control/mode", {"mode": "manual"}),
                  ("POST", "/control/pin", {"model": "a"}),
                  ("POST", "/control/unpin", None),
                  ("POST", "/control/switch", {"model": "a"}),
                  ("POST", "/control/eviction", {"model": "a", "eviction": 1}),
                  ("POST", "/control/sleep", {"model": "a"}),
                  ("POST", "/control/wake", {"model": "a"}),
                  ("POST", "/control/checkpoint", {"model": "a"}),
                  ("POST", "/control/restore", {"model": "a"}),
                  ("POST", "/control/validate", {"model": "a"}),
                  ("POST", "/control/reload", None)]
READ_ONLY = [("GET", "/control/status"), ("GET", "/control/models"),
             ("GET", "/control/eviction"), ("GET", "/metrics")]
# The web page's reads: its files, Chart.js, the last hour.
PAGE_READS = [("GET", "/"), ("GET", "/ui/"), ("GET", "/ui/app.js"),
              ("GET", "/javascript/chart.js/chart.min.js"), ("GET", "/control/history")]


def page_dirs(env):
    """A ui_dir and a javascript_dir with a file or two."""
    ui, js = env.path("ui"), env.path("js")
    os.makedirs(os.path.join(js, "chart.js"))
    os.makedirs(ui)
    for path, text in ((os.path.join(ui, "index.html"), "<!doctype html><title>t</title>"),
                       (os.path.join(ui, "app.js"), "'use strict';\n"),
                       (os.path.join(js, "chart.js", "chart.min.js"), "var Chart = 1;\n")):
        with open(path, "w") as f:
            f.write(text)
    return ui, js


def check_denied(status, hdrs, data, code):
    obj = json.loads(data)
    check(status == 401, "%d %r" % (status, obj))
    check(hdrs.get("www-authenticate", "").startswith("Bearer"), repr(hdrs))
    e = obj["error"]
    check(e["type"] == "authentication_error" and e["code"] == code and
          e["param"] is None and e["message"], repr(obj))


@test
def admin_token(env):
    ui, js = page_dirs(env)
    st = control_stack(env, ui_dir=ui, javascript_dir=js)
    st.sup.handlers[fs.CTL_MODELS] = lambda m: (200, {"models": []})
    # Reads: open, with or without a token (the page and its history too).
    for method, path in READ_ONLY + PAGE_READS:
        check(harness.http(st.admin, method, path)[0] == 200, path)
    ev = Sse(st.admin)
    check(ev.head() == 200 and ev.headers["content-type"].startswith("text/event-stream"),
          (ev.status, ev.headers))
    ev.close()
    check(ctl(st.admin, "GET", "/control/status", headers={}) == (200, STATUS_BODY))
    # Changes: 401 without the token and with a wrong one; nothing forwarded.
    for method, path, body in STATE_CHANGING:
        check_denied(*harness.http(st.admin, method, path, body), "admin_token_required")
        check_denied(*harness.http(st.admin, method, path, body,
                                   headers={"Authorization": "Bearer " + TOKEN + "x"}),
                     "invalid_admin_token")
        check_denied(*harness.http(st.admin, method, path, body,
                                   headers={"Authorization": "Bearer " + TOKEN[:-1]}),
                     "invalid_admin_token")
        check_denied(*harness.http(st.admin, method, path, body,
                                   headers={"Authorization": TOKEN}), "admin_token_required")
    check(not [m for m in st.sup.msgs if m.get("t", 0) >= fs.CTL_MODE and
               m.get("t") not in (fs.CTL_MODELS, fs.CTL_EVICTION_GET, fs.CTL_METRICS,
                                  fs.CTL_STATUS, fs.CTL_SUBSCRIBE)],
          "a refused call reached the supervisor")
    # With it: forwarded, and the supervisor is told the caller had it.
    check(ctl(st.admin, "POST", "/control/wake", {"model": "a"})[0] == 200)
    check(last_call(st, fs.CTL_WAKE)["authorized"] is True)
    # Reads are forwarded without it, and say so.
    harness.http(st.admin, "GET", "/control/eviction")
    check(not last_call(st, fs.CTL_EVICTION_GET).get("authorized"))
    # A model's log: 401 without the token or with a wrong one, nothing
    # forwarded; with it, forwarded as authorized, never as a follow.
    for headers, code in (({}, "admin_token_required"),
                          ({"Authorization": "Bearer " + TOKEN + "x"}, "invalid_admin_token")):
        check_denied(*harness.http(st.admin, "GET", "/control/logs?model=a&lines=5",
                                   headers=headers), code)
    check(not st.sup.of_type(fs.CTL_LOGS), "a refused log read reached the supervisor")
    status, hdrs, data = harness.http(st.admin, "GET", "/control/logs?model=a&lines=5",
                                      headers=AUTH)
    check(status == 200 and data == b"line one\nline two\n" and
          hdrs["content-type"].startswith("text/plain"), (status, hdrs, data))
    m = last_call(st, fs.CTL_LOGS)
    check(m["authorized"] is True and m["model"] == "a" and m["lines"] == 5 and
          not m.get("follow"), m)


@test
def no_admin_token_no_changes(env):
    # No token in the config (the admin_token_file is missing): every
    # state-changing call is refused, reads still answer.
    st = control_stack(env, admin_token=None)
    check(ctl(st.admin, "GET", "/control/status", headers={})[0] == 200)
    for method, path, body in STATE_CHANGING + [("GET", "/control/logs?model=a", None)]:
        for headers in ({}, AUTH):
            status, hdrs, data = harness.http(st.admin, method, path, body, headers=headers)
            check_denied(status, hdrs, data, "admin_token_required")
            check("none is set" in json.loads(data)["error"]["message"], data)
    check(not st.sup.of_type(fs.CTL_WAKE) and not st.sup.of_type(fs.CTL_MODE) and
          not st.sup.of_type(fs.CTL_LOGS))


@test
def metrics_content(env):
    st = control_stack(env)
    # The requests below must find a ready (none of them waits), so wait
    # for the proxy to have taken the state that says so.
    harness.wait_until(lambda: 'llmux_model_ready{model="a"} 1' in
                       harness.http(st.admin, "GET", "/metrics")[2].decode(),
                       what="a ready in the proxy")
    for i in range(3):
        check(st.post({"model": "a"})[0] == 200)
    check(st.post({"model": "nope"})[0] == 404)
    status, hdrs, body = harness.http(st.admin, "GET", "/metrics")
    text = body.decode()
    check(status == 200 and hdrs["content-type"].startswith("text/plain"), repr(hdrs))
    for line in ('llmux_requests_total{model="a",waited="false"} 3',
                 'llmux_requests_total{model="b",waited="true"} 0',
                 'llmux_in_flight{model="a"} 0',
                 'llmux_queue_depth{model="b"} 0',
                 'llmux_request_queue_wait_seconds_bucket{model="a",le="+Inf"} 0',
                 'llmux_upstream_errors_total{model="a",kind="connect"} 0',
                 'llmux_proxy_rejected_total{code="model_not_found"} 1',
                 'llmux_model_ready{model="a"} 1',
                 'llmux_supervisor_connected 1',
                 'llmux_switches_total{from="a",to="b"} 3'):
        check(line in text, "missing %r in\n%s" % (line, text))
    check("# TYPE llmux_request_queue_wait_seconds histogram" in text)
    # Without the supervisor: the proxy's own metrics still.
    st.sup.stop()
    harness.wait_until(lambda: "llmux_supervisor_connected 0" in
                       harness.http(st.admin, "GET", "/metrics")[2].decode())
    text = harness.http(st.admin, "GET", "/metrics")[2].decode()
    check("llmux_switches_total" not in text and "llmux_in_flight" in text)


@test
def admin_refuses_public_address(env):
    # --admin-listen on a public address while the config keeps it on loopback.
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    import socket
    public = None
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.1", 9))
        public = s.getsockname()[0]
        s.close()
    except OSError:
        pass
    if public is None or public.startswith("127."):
        return  # no non-loopback address on this machine: nothing to check
    st.proxy_args = []
    st.start_proxy(argv=[harness.binary("llmux-proxyd"), "--socket", st.sock, "--listen",
                         "127.0.0.1:%d" % st.port, "--admin-listen", "%s:%d" % (public, st.admin)])
    harness.wait_until(lambda: "refusing to serve the admin API" in st.proxy.output())
    try:
        harness.http(st.admin, "GET", "/metrics", host=public, timeout=2)
        check(False, "the admin port answered on a public address")
    except OSError:
        pass


@test
def admin_connections_open_at_exit(env):
    # A kept-alive admin connection, and a call the supervisor never
    # answers, when the proxy exits: both are freed (under ASan a leak
    # makes the proxy exit 1).
    st = control_stack(env)
    st.sup.handlers[fs.CTL_SWITCH] = lambda m: None
    kept = http.client.HTTPConnection("127.0.0.1", st.admin, timeout=10)
    kept.request("GET", "/control/status")
    r = kept.getresponse()
    check(r.status == 200 and json.loads(r.read()) == STATUS_BODY)
    waiting = socket.create_connection(("127.0.0.1", st.admin), timeout=10)
    body = b'{"model": "a"}'
    waiting.sendall(b"POST /control/switch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), len(body)) + body)
    last_call(st, fs.CTL_SWITCH)
    st.proxy.signal(signal.SIGTERM)
    check(st.proxy.wait(30) == 0, "the proxy exits cleanly:\n" + st.proxy.output()[-4000:])
    kept.close()
    waiting.close()



if __name__ == "__main__":
    harness.main()
