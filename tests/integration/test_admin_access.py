#!/usr/bin/env python3
"""test_admin_access.py -- who may change state (issue 13): a local user
who is neither root nor in the admin group, running as another uid
(setpriv) without the admin token, gets 401 from every state-changing
route of the control API and 200 from every read-only one, and changes
nothing; with the token each call works; a new token takes effect at a
reload. On the supervisor's socket, a proxy-role peer forwarding a
state-changing call without `authorized` is refused, one with it is
served, and reload and a followed log are refused to the proxy role even
with it; a model's log is read only with the token (through the proxy)
or `authorized` (on the socket).
Then the API port: a proxy told to listen on 0.0.0.0 with no api_keys
refuses to start with one line, and starts with allow_unauthenticated;
and the packaged config listens on loopback."""
import json
import os
import secrets
import socket
import subprocess
import sys

import harness
import mpack
import fakesup as fs
from harness import check, wait_until
from proxykit import Stack as ProxyStack
from supervisor_helpers import Raw, as_root
from switch_helpers import Stack

OFFLOAD = "offload+keep_running"
# A local user with no group of llmux's: not root, not the supervisor's.
STRANGER = 4242

# Every route of the control API that changes state, with a body that is
# valid for it, and the one that reads a model's log: each must answer 401
# without the token.
STATE_CHANGING = [
    ("POST", "/control/mode", {"mode": "manual"}),
    ("POST", "/control/pin", {"model": "b"}),
    ("POST", "/control/unpin", None),
    ("POST", "/control/switch", {"model": "b"}),
    ("POST", "/control/eviction", {"model": "a", "eviction": "discard+keep_running"}),
    ("POST", "/control/sleep", {"model": "a"}),
    ("POST", "/control/wake", {"model": "b"}),
    ("POST", "/control/checkpoint", {"model": "a"}),
    ("POST", "/control/restore", {"model": "a"}),
    ("POST", "/control/validate", {"model": "a"}),
    ("POST", "/control/reload", None),
    # Not a change, but a model's log may hold what clients sent.
    ("GET", "/control/logs?model=a&lines=5", None),
]
# Every read-only route, on the admin port and on the API port (the web
# page's files are reads too: test_proxy_control serves them).
READ_ONLY = [("admin", "/control/status"), ("admin", "/control/models"),
             ("admin", "/control/eviction"), ("admin", "/metrics"),
             ("admin", "/control/history"),
             ("api", "/v1/models"), ("api", "/health")]

# The client a stranger runs: each request of argv[1] (JSON), answered as
# [status, WWW-Authenticate, body]; and whether it could read the token.
CLIENT = r"""
import http.client, json, sys
reqs, token_path = json.loads(sys.argv[1]), sys.argv[2]
out = {"answers": []}
for port, method, path, body in reqs:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    c.request(method, path, body=data,
              headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    out["answers"].append([r.status, r.getheader("WWW-Authenticate"),
                           r.read().decode("utf-8", "replace")])
    c.close()
try:
    open(token_path).read()
    out["token_read"] = True
except OSError:
    out["token_read"] = False
print(json.dumps(out))
"""


def as_stranger(reqs, token_path):
    """Run the client as uid STRANGER (when root; else as this user)."""
    argv = [sys.executable, "-c", CLIENT, json.dumps(reqs), token_path]
    if as_root():
        argv = ["setpriv", "--reuid=%d" % STRANGER, "--regid=%d" % STRANGER,
                "--clear-groups"] + argv
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    check(p.returncode == 0, "client: %s" % p.stderr.decode())
    return json.loads(p.stdout)


def snapshot(s):
    """What a state change would change: mode, pin, each model's state and
    eviction."""
    st = s.status()
    return (json.dumps(st["mode"], sort_keys=True),
            {n: (m["state"], json.dumps(m.get("eviction"), sort_keys=True))
             for n, m in st["models"].items()})


@harness.test
def stranger_reads_but_changes_nothing(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    check(s.served("a") == "a", "a served")
    before = snapshot(s)
    reqs = [[s.admin, m, p, b] for m, p, b in STATE_CHANGING]
    reqs += [[s.admin if where == "admin" else s.port, "GET", p, None] for where, p in READ_ONLY]
    got = as_stranger(reqs, s.sup.token_path)
    if as_root():
        check(not got["token_read"], "the stranger read the token file")
    answers = got["answers"]
    for (method, path, _), (status, auth, body) in zip(STATE_CHANGING, answers):
        err = json.loads(body)["error"]
        check(status == 401 and err["type"] == "authentication_error" and
              err["code"] == "admin_token_required" and err["param"] is None,
              "%s %s: %d %s" % (method, path, status, body))
        check(auth is not None and auth.startswith("Bearer"), "%s: %r" % (path, auth))
    for (where, path), (status, _, body) in zip(READ_ONLY, answers[len(STATE_CHANGING):]):
        check(status == 200, "%s %s: %d %s" % (where, path, status, body))
    check(snapshot(s) == before, "nothing changed: %r -> %r" % (before, snapshot(s)))
    check(s.control("GET", "/control/status", token=False)[1]["mode"] == {"mode": "auto"})
    check("refusing a control call" not in s.sup_log(),
          "nothing refused reached the supervisor: the proxy answered")


@harness.test
def with_the_token_each_call_works(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    check(s.served("a") == "a", "a served")
    wrong = "x" * len(s.sup.token)
    code, body = s.control("POST", "/control/switch", {"model": "b"}, token=wrong)
    check(code == 401 and body["error"]["code"] == "invalid_admin_token", body)
    code, body = s.control("POST", "/control/switch", {"model": "b"})
    check(code == 200 and body["message"] == "Switched to model: b", (code, body))
    check(s.state() == "active:b", s.status())
    code, body = s.control("POST", "/control/eviction",
                           {"model": "a", "eviction": "discard+keep_running"})
    check(code == 200, (code, body))
    code, body = s.control("POST", "/control/wake", {"model": "a"})
    check(code == 200 and s.state() == "active:a", (code, body, s.state()))
    code, body = s.control("POST", "/control/sleep", {"model": "a"})
    check(code == 200 and s.status()["models"]["a"]["state"] == "sleeping", (code, body))
    code, body = s.control("POST", "/control/pin", {"model": "b"})
    check(code == 200 and s.status()["mode"] == {"mode": "manual", "pinned": "b"}, (code, body))
    code, body = s.control("POST", "/control/unpin")
    check(code == 200 and s.status()["mode"] == {"mode": "auto"}, (code, body))
    code, body = s.control("POST", "/control/mode", {"mode": "manual"})
    check(code == 200 and s.status()["mode"]["mode"] == "manual", (code, body))
    code, body = s.control("POST", "/control/mode", {"mode": "auto"})
    check(code == 200, (code, body))
    code, body = s.control("POST", "/control/validate",
                           {"model": "a", "policies": ["offload+keep_running"]})
    check(code == 200 and body["results"][0]["pass"], (code, body))
    # No CRIU is configured: the supervisor itself answers, not the guard.
    for path in ("/control/checkpoint", "/control/restore"):
        code, body = s.control("POST", path, {"model": "a"})
        check(code not in (401, 403) and "error" in body, (path, code, body))
    # A model's log, with the token: its last lines, as text.
    st, hdrs, data = harness.http(s.admin, "GET", "/control/logs?model=a&lines=5",
                                  headers={"Authorization": "Bearer %s" % s.sup.token})
    check(st == 200 and hdrs["content-type"].startswith("text/plain") and
          len(data.splitlines()) <= 5, (st, hdrs, data[-2000:]))
    # Reload is llmuxctl's: 403 through the proxy even with the token.
    code, body = s.control("POST", "/control/reload")
    check(code == 403 and body["error"]["code"] == "admin_role_required", (code, body))
    check(s.sup.ctl("reload")[0] == 0, "llmuxctl reload")


@harness.test
def a_new_token_takes_effect_at_reload(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}}).start()
    old = s.sup.token
    s.sup.write_token(secrets.token_hex(32))
    check(s.sup.ctl("reload")[0] == 0, "reload")
    wait_until(lambda: s.control("POST", "/control/mode", {"mode": "auto"},
                                 token=old)[0] == 401, 10, "the old token refused")
    code, body = s.control("POST", "/control/mode", {"mode": "manual"})
    check(code == 200, (code, body))
    # A token file others may read stops the reload; the token in force stays.
    os.chmod(s.sup.token_path, 0o644)
    rc, out, err = s.sup.ctl("reload")
    check(rc != 0 and "admin_token_file" in out + err and "readable by others" in out + err,
          (rc, out, err))
    check(s.control("POST", "/control/mode", {"mode": "auto"})[0] == 200, "token kept")


def call(r, t, cid, **fields):
    r.send(mpack.frame(dict({"t": t, "id": cid}, **fields)))
    while True:
        m = mpack.unpack(r.frame())
        if m.get("id") == cid and m["t"] in (fs.REPLY, fs.ERROR):
            return m


@harness.test
def proxy_role_needs_authorized(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    r = Raw(s.sup.socket)
    r.send(mpack.frame({"t": fs.HELLO, "version": 1, "role": 1, "program": "test"}))
    check(mpack.unpack(r.frame())["t"] == fs.HELLO, "hello")
    # A state-changing call forwarded without authorized: refused.
    m = call(r, fs.CTL_SWITCH, 10, model="b")
    check(m["t"] == fs.ERROR and m["code"] == "forbidden" and
          "admin token" in m["message"], m)
    check(s.state() != "active:b", "no switch")
    check("refusing a control call" in s.sup_log(), "logged")
    m = call(r, fs.CTL_MODE, 11, mode="manual", authorized=False)
    check(m["t"] == fs.ERROR and m["code"] == "forbidden", m)
    # Reads need nothing.
    m = call(r, fs.CTL_STATUS, 12)
    check(m["t"] == fs.REPLY and m["status"] == 200, m)
    # With authorized: served.
    m = call(r, fs.CTL_SWITCH, 13, model="b", authorized=True)
    check(m["t"] == fs.REPLY and m["status"] == 200, m)
    check(s.state() == "active:b", s.status())
    # What only the admin role may do: refused to the proxy role even so
    # (reload; a log followed, which would hold the proxy's link).
    for t, f in ((fs.CTL_RELOAD, {}), (fs.CTL_LOGS, {"model": "a", "follow": True})):
        m = call(r, t, 20 + t, authorized=True, **f)
        check(m["t"] == fs.ERROR and m["code"] == "forbidden" and
              "only the admin role" in m["message"], m)
    check("configuration reloaded" not in s.sup_log(), "no reload happened")
    # A log's tail (the web page's): refused without authorized, served
    # with it (log_data, then the reply).
    m = call(r, fs.CTL_LOGS, 30, model="a", lines=5)
    check(m["t"] == fs.ERROR and m["code"] == "forbidden" and "admin token" in m["message"], m)
    m = call(r, fs.CTL_LOGS, 31, model="a", lines=5, authorized=True)
    check(m["t"] == fs.REPLY and m["status"] == 200, m)
    r.close()


# ---- the API port without api_keys ----------------------------------------

def config_with(**kw):
    return fs.config_msg([("a", 8001, [])], **kw)


@harness.test
def public_port_without_keys_refused(env):
    # --listen on every address, and a config with no api_keys.
    st = ProxyStack(env, [("a", 8001, [])], start=False)
    st.sup.config = config_with(port=st.port, listen_address="0.0.0.0")
    p = env.spawn("proxyd", [
        harness.binary("llmux-proxyd"), "--socket", st.sock,
        "--listen", "0.0.0.0:%d" % st.port])
    check(p.wait(20) == 78, "exit 78: %s" % p.output()[-2000:])
    lines = [ln for ln in p.output().splitlines() if "refusing to serve the API" in ln]
    check(len(lines) == 1 and "level=error" in lines[0] and
          "0.0.0.0:%d with no api_keys" % st.port in lines[0] and
          "allow_unauthenticated" in lines[0], p.output()[-2000:])
    # Told to bind it from the config: the same refusal, and no bind.
    p = env.spawn("proxyd-config", [harness.binary("llmux-proxyd"), "--socket", st.sock])
    check(p.wait(20) == 78 and "refusing to serve the API on 0.0.0.0 with no api_keys"
          in p.output(), p.output()[-2000:])
    # With allow_unauthenticated it starts and serves.
    st.sup.config = config_with(port=st.port, listen_address="0.0.0.0",
                                allow_unauthenticated=True)
    p = env.spawn("proxyd-open", [harness.binary("llmux-proxyd"), "--socket", st.sock,
                                  "--listen", "0.0.0.0:%d" % st.port])
    wait_until(lambda: harness.http(st.port, "GET", "/health", timeout=2)[0] == 200, 20,
               "the proxy to serve")
    check(p.alive(), "running")
    p.stop()
    # Or with api_keys.
    st.sup.config = config_with(port=st.port, listen_address="0.0.0.0", api_keys=["k1"])
    p = env.spawn("proxyd-keys", [harness.binary("llmux-proxyd"), "--socket", st.sock,
                                  "--listen", "0.0.0.0:%d" % st.port])
    wait_until(lambda: harness.http(st.port, "GET", "/health", timeout=2)[0] == 200, 20,
               "the proxy with keys to serve")
    check(p.alive() and "refusing" not in p.output(), p.output()[-2000:])


@harness.test
def systemd_socket_on_every_address_refused(env):
    # The socket systemd would hand over, bound to every address, while the
    # config (the default) says loopback: the proxy checks what it has.
    st = ProxyStack(env, [("a", 8001, [])], start=False)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", st.port))
    lsock.listen(16)
    p = env.spawn("proxyd", harness.activated(
        [harness.binary("llmux-proxyd"), "--socket", st.sock], lsock.fileno()),
        pass_fds=(lsock.fileno(),))
    check(p.wait(20) == 78, "exit 78: %s" % p.output()[-2000:])
    check("refusing to serve the API on 0.0.0.0:%d with no api_keys" % st.port in p.output(),
          p.output()[-2000:])
    lsock.close()


@harness.test
def packaged_config_listens_on_loopback(env):
    # etc/llmux.yaml is what make install puts in /etc/llmux/llmux.yaml.
    path = os.path.join(harness.ROOT, "etc", "llmux.yaml")
    text = open(path).read()
    check("\n  listen_address: 127.0.0.1 " in text, "listen_address in the file")
    check("\n  api_keys: []" in text and "\n  allow_unauthenticated: false" in text, text)
    unit = open(os.path.join(harness.ROOT, "etc", "llmux-proxyd.socket")).read()
    check("\nListenStream=127.0.0.1:3000\n" in unit, "the socket unit: loopback")
    # As the supervisor reads it: checked, and the address bound.
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(p.returncode == 0 and "listen_address" not in p.stderr.decode(),
          p.stderr.decode())
    # The same file told to listen on every address: --check-config says so.
    bad = env.write("public.yaml", text.replace("  listen_address: 127.0.0.1 ",
                                                "  listen_address: 0.0.0.0 "))
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c", bad],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    err = p.stderr.decode()
    check(p.returncode == 1 and "error: proxy.listen_address: the API would listen on "
          "0.0.0.0 with no api_keys" in err and "allow_unauthenticated: true" in err, err)


if __name__ == "__main__":
    harness.main()
