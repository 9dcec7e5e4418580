"""test_webui_files.py -- what the admin port serves for the web page,
without a browser: the page's files and Chart.js from their configured
directories (content types, a Content-Security-Policy, ETag and 304, HEAD,
no listing, no path escape by `..`, percent-encoding, symbolic links or
hidden names, no FIFO, a size bound, GET and HEAD only); GET
/control/history (the requests and switches of the last hour); GET
/control/logs (the admin token, then the tail of a model's log); reads
open and changes refused without the token."""
import json
import os
import socket

import harness
from harness import check, test
from proxykit import Stack as ProxyStack
from switch_helpers import Stack

TOKEN = "files-test-token"


def raw_get(port, path, method="GET", headers=""):
    """A request with its path exactly as written: (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
               % (method, path, headers)).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


@test
def page_files_are_served_confined(env):
    ui = env.path("ui")
    js = env.path("js")
    write(os.path.join(ui, "index.html"), b"<!doctype html><title>t</title>")
    write(os.path.join(ui, "app.js"), b"'use strict';\n")
    write(os.path.join(ui, "style.css"), b"body{}\n")
    write(os.path.join(ui, "sp ace.txt"), b"spaced\n")
    write(os.path.join(ui, "blob.bin"), b"\x00\x01")
    write(os.path.join(ui, ".hidden"), b"hidden\n")
    write(os.path.join(ui, "sub", "in.css"), b"p{}\n")
    write(os.path.join(ui, "big.js"), b"x" * (8 << 20 | 1))
    write(env.path("secret"), b"secret\n")
    os.symlink(env.path("secret"), os.path.join(ui, "link.txt"))
    os.symlink(env.path("js"), os.path.join(ui, "linkdir"))
    os.mkfifo(os.path.join(ui, "fifo.js"))
    write(os.path.join(js, "chart.js", "chart.min.js"), b"var Chart = 1;\n")
    st = ProxyStack(env, [("a", 1, [])], ui_dir=ui, javascript_dir=js)
    port = st.admin

    for path in ("/", "/ui", "/ui/"):
        code, h, body = raw_get(port, path)
        check(code == 200 and body == b"<!doctype html><title>t</title>", (path, code, body))
        check(h["content-type"] == "text/html; charset=utf-8", h)
        check("default-src 'none'" in h["content-security-policy"], h)
        check(h["x-content-type-options"] == "nosniff", h)
    for path, ctype, want in (("/ui/app.js", "text/javascript; charset=utf-8", b"'use strict';\n"),
                              ("/ui/style.css", "text/css; charset=utf-8", b"body{}\n"),
                              ("/ui/sub/in.css", "text/css; charset=utf-8", b"p{}\n"),
                              ("/ui/sp%20ace.txt", "text/plain; charset=utf-8", b"spaced\n"),
                              ("/ui/blob.bin", "application/octet-stream", b"\x00\x01"),
                              ("/javascript/chart.js/chart.min.js",
                               "text/javascript; charset=utf-8", b"var Chart = 1;\n")):
        code, h, body = raw_get(port, path)
        check(code == 200 and h["content-type"] == ctype and body == want, (path, code, h, body))
    # HEAD, and a second GET with the ETag: 304.
    code, h, body = raw_get(port, "/ui/app.js", "HEAD")
    check(code == 200 and body == b"" and h.get("etag"), (code, h, body))
    code, h2, body = raw_get(port, "/ui/app.js", headers="If-None-Match: %s\r\n" % h["etag"])
    check(code == 304 and body == b"", (code, h2, body))
    code, _, _ = raw_get(port, "/ui/app.js", "POST")
    check(code == 405, code)
    # No listing, no escape, no link, no hidden file, no FIFO, nothing huge.
    for path in ("/ui/sub", "/ui/sub/", "/javascript/", "/javascript/chart.js",
                 "/ui/../secret", "/ui/sub/../../secret", "/ui/%2e%2e/secret",
                 "/ui/sub%2f..%2f..%2fsecret", "/ui/.hidden", "/ui/%2ehidden",
                 "/ui/link.txt", "/ui/linkdir/chart.js/chart.min.js", "/ui/fifo.js",
                 "/ui/big.js", "/ui//app.js", "/javascript/../ui/app.js", "/ui/nope.js"):
        code, _, body = raw_get(port, path)
        check(code == 404 and b"secret" not in body, (path, code, body))
    for path in ("/ui/%00", "/ui/bad%zz", "/ui/a%5cb", "/ui/%0a"):
        code, _, _ = raw_get(port, path)
        check(code == 400, (path, code))
    # The proxy still answers.
    check(raw_get(port, "/ui/app.js")[0] == 200, "still serving")


@test
def history_logs_and_the_token(env):
    s = Stack(env, {"a": {}, "b": {}},
              extra="proxy:\n  admin_token: %s\n" % TOKEN).start()
    auth = {"Authorization": "Bearer " + TOKEN}
    for m in ("a", "b", "b"):
        s.served(m)

    # Reading is open; a change needs the token.
    check(s.control("GET", "/control/status")[0] == 200, "status is open")
    st, body = s.control("POST", "/control/switch", {"model": "a"})
    check(st == 401, (st, body))
    st, _, _ = harness.http(s.admin, "POST", "/control/switch", {"model": "a"}, auth, 60)
    check(st == 200 and s.state() == "active:a", (st, s.state()))

    def history():
        st, _, data = harness.http(s.admin, "GET", "/control/history")
        check(st == 200, st)
        return json.loads(data)

    def counted():
        h = history()
        got = {m: sum(b["requests"][i] for b in h["buckets"])
               for i, m in enumerate(h["models"])}
        return h if got == {"a": 1, "b": 2} else None
    h = harness.wait_until(counted, 15, "the history to count the requests")
    check(h["bucket_ms"] == 10000 and h["buckets"][-1]["span_ms"] <= 10000, h)
    check(all(b["t"] % 10000 == 0 for b in h["buckets"]), h["buckets"])
    sw = [(x["from"], x["to"], x["ok"]) for x in h["switches"]]
    check(sw == [("", "a", True), ("a", "b", True), ("b", "a", True)], sw)
    check(all(x["ms"] >= 0 and x["t"] <= h["now_ms"] for x in h["switches"]), h["switches"])
    later = h["now_ms"] + 60000
    st, _, data = harness.http(s.admin, "GET", "/control/history?since=%d" % later)
    check(st == 200 and json.loads(data)["buckets"] == [], data)
    check(harness.http(s.admin, "GET", "/control/history?since=x")[0] == 400, "bad since")

    # The tail of a model's log: the token first.
    st, _, body = harness.http(s.admin, "GET", "/control/logs?model=a")
    check(st == 401, (st, body))
    st, hdrs, body = harness.http(s.admin, "GET", "/control/logs?model=a&lines=20", None, auth)
    check(st == 200 and hdrs["content-type"].startswith("text/plain"), (st, hdrs))
    check(b"llmux: starting model a" in body and len(body.splitlines()) <= 21, body[-2000:])
    st, _, body = harness.http(s.admin, "GET", "/control/logs?model=zz", None, auth)
    check(st == 404 and b"Model not found" in body, (st, body))
    for q in ("model=a&lines=0", "model=a&lines=1001", "model=a%01", ""):
        st, _, body = harness.http(s.admin, "GET", "/control/logs?" + q, None, auth)
        check(st == 422, (q, st, body))


if __name__ == "__main__":
    harness.main()
