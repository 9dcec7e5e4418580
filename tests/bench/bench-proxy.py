#!/usr/bin/env python3
"""bench-proxy.py -- what llmux-proxyd costs in front of a model server.

    tests/bench/bench-proxy.py [--build DIR] [--fakevllm PATH] [--duration S]
                               [--connections N] [--queued N] [--quick]
                               [--markdown]
    tests/bench/bench-proxy.py --against OTHER_PROXYD [--rounds N] ...

In one run, against the same llmux-fakevllm (--fake-fast):
  1. wrk, non-streaming ~1 KB chat completions: (a) fakevllm directly,
     (b) through llmux-proxyd, (c) through nginx as a keep-alive reverse
     proxy (one worker, like the proxy's one thread; config generated into
     a temp dir, run in the foreground as the current user); requests/s and
     latency percentiles side by side, at N connections and at one.
  2. streaming relay delay: a source stamps each SSE chunk with
     CLOCK_MONOTONIC; the delay from stamp to arrival, directly and through
     the proxy. The CPU time each proxy spends per request is printed too:
     unlike throughput on a small shared machine, it does not depend on
     what else runs there.
  3. memory of N requests (10 000) queued on a model that is switching, and
     that all of them are served once it is ready.
--against runs another llmux-proxyd (an older build: a worktree of an
earlier commit) side by side with this one instead, each with its own
scripted supervisor, against the same llmux-fakevllm: wrk runs of
--duration alternate between the two (--rounds each, in turns, the order
swapped every round), at N connections and at one, then the memory of
--queued requests queued in each; medians are printed, so that a change
of the proxy can be told from a change of the machine.
The supervisor is the scripted one of the integration tests. This is a
benchmark, not a test: it prints figures (and exits non-zero only when
something did not work at all). --markdown prints its section of
docs/benchmarks.md (tests/bench/bench-all.py).
"""
import argparse
import json
import os
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import fakesup  # noqa: E402

PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv, log):
    p = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    return p


def wait_port(port, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench-proxy: %s did not start" % what)


def cpu_s(pids):
    """User plus system CPU seconds of these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def http_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    return out.partition(b"\r\n\r\n")[2].decode()


# ---- wrk ----------------------------------------------------------------

BODY = json.dumps({"model": "a", "max_tokens": 16, "temperature": 0,
                   "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": "Tell me about " + "llamas " * 120}]})

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(port, tmp, duration, conns, threads, pids=()):
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                'wrk.body = %s\n' % json.dumps(BODY))
    c0 = cpu_s(pids)
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
                          "--latency", "-s", lua, "http://127.0.0.1:%d/v1/chat/completions" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT).stdout.decode()
    r = {"rps": 0.0, "errors": 0, "cpu_us": None}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m and pids and int(m.group(1)) > 0:
        r["cpu_us"] = (cpu_s(pids) - c0) * 1e6 / int(m.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s|m)\b" % pct, out)
        if m:
            r["p" + pct] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    if r["rps"] == 0.0:
        print(out)
    return r


def nginx_conf(tmp, port, upstream):
    user = ""
    if os.geteuid() == 0:
        import grp
        import pwd
        user = "user %s %s;" % (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""%(user)s
worker_processes 1;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    upstream model { server 127.0.0.1:%(up)d; keepalive 256; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
""" % {"user": user, "tmp": tmp, "up": upstream, "port": port})
    return conf


def fmt_ms(v):
    return "%8.3f" % (v * 1000) if v is not None else "       -"


def print_table(title, rows):
    base = rows[0][1]["rps"] or 1
    print("\n%s" % title)
    print("  %-22s %12s %8s %9s %9s %9s %9s %7s %11s" % (
        "", "requests/s", "ratio", "p50 ms", "p75 ms", "p90 ms", "p99 ms", "errors",
        "CPU us/req"))
    for name, r in rows:
        print("  %-22s %12.0f %7.2fx %s  %s  %s  %s %7d %11s" % (
            name, r["rps"], r["rps"] / base, fmt_ms(r.get("p50")), fmt_ms(r.get("p75")),
            fmt_ms(r.get("p90")), fmt_ms(r.get("p99")), r["errors"],
            "%.1f" % r["cpu_us"] if r["cpu_us"] is not None else "-"))


# ---- streaming delay ----------------------------------------------------

STAMP_SERVER = r"""
import socket, sys, time, threading
port, n, gap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(64)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        n_body = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n_body = int(line.split(b":")[1])
        while len(buf) < n_body:
            buf += c.recv(65536)
        buf = buf[n_body:]
        if head.startswith(b"GET"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            continue
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(n):
            time.sleep(gap)
            ev = b"data: %d\n\n" % time.monotonic_ns()
            c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
        c.sendall(b"0\r\n\r\n")
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def stream_delays(port, n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = b'{"model":"s","stream":true}'
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    delays, buf = [], b""
    while len(delays) < n:
        d = s.recv(65536)
        now = time.monotonic_ns()
        if not d:
            break
        buf += d
        for m in re.finditer(rb"data: (\d+)\n\n", buf):
            delays.append((now - int(m.group(1))) / 1e3)
        buf = buf[buf.rfind(b"\n\n") + 2:] if b"\n\n" in buf else buf
    s.close()
    return delays


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


# ---- 10 000 queued ------------------------------------------------------

def queued_memory(proxy_port, admin_port, sup, proxy_pid, fv_port, n):
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY.replace('"a"', '"b"', 1)),
                                              BODY.replace('"a"', '"b"', 1).encode()))
    base = rss_kb(proxy_pid)
    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.socket()
        s.setblocking(True)
        s.connect(("127.0.0.1", proxy_port))
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, [b"", i])
    depth_re = re.compile(r'llmux_queue_depth\{model="b"\} (\d+)')
    while True:
        m = depth_re.search(http_get(admin_port, "/metrics"))
        if m and int(m.group(1)) >= n:
            break
        time.sleep(0.1)
    queued_s = time.monotonic() - t0
    rss = rss_kb(proxy_pid)
    t1 = time.monotonic()
    sup.ready("b", fv_port, 1)
    done, ok = 0, 0
    while done < n:
        for key, _ in sel.select(timeout=60):
            s, st = key.fileobj, key.data
            d = s.recv(65536)
            if d:
                st[0] += d
            head, sep, body = st[0].partition(b"\r\n\r\n")
            if not sep and d:
                continue
            m = re.search(rb"content-length: (\d+)", head, re.I)
            if d and (m is None or len(body) < int(m.group(1))):
                continue
            if head.startswith(b"HTTP/1.1 200"):
                ok += 1
            done += 1
            sel.unregister(s)
            s.close()
    served_s = time.monotonic() - t1
    return base, rss, ok, queued_s, served_s


# ---- model lookup -------------------------------------------------------

def model_lookup(port, pid, shape, runs):
    """CPU seconds of the proxy for a 16 MiB body whose model comes last,
    and the body's megabytes per CPU second of the proxy (the model scan,
    reading and forwarding together); the median of runs."""
    if shape == "string":	# one long string before "model"
        body = b'{"user":"' + b"x" * (16 << 20) + b'",'
    else:			# many small tokens before "model"
        body = b'{"llmux_bench":[' + b"0," * (8 << 20) + b'0],'
    body += b'"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"model":"a"}'
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    cpus, status = [], None
    for _ in range(runs):
        c0 = cpu_s([pid])
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(req)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        cpus.append(cpu_s([pid]) - c0)
        status = out[9:12].decode("latin-1")
    cpu = statistics.median(cpus)
    return len(body), cpu, status


# ---- main ---------------------------------------------------------------

INTRO = """
`make bench-proxy` (`tests/bench/bench-proxy.py`; `BENCH_ARGS=--quick` for
3 s runs and 1 000 queued requests; `FAKEVLLM=path` for another
llmux-fakevllm). In one run, against the same `llmux-fakevllm --fake-fast`:

1. wrk (`-t2`, %(duration)d s, after a 1 s warm-up) sends a %(body)d-byte chat
   request (`max_tokens` 16, an answer of about 500 bytes) to (a)
   llmux-fakevllm directly, (b) llmux-proxyd, (c) nginx as a keep-alive
   reverse proxy (`proxy_http_version 1.1`, `keepalive 256`,
   `proxy_buffering off` as SSE needs, access log off, **one worker**, like
   the proxy's one thread; config generated into a temp dir, run in the
   foreground as the current user), at %(conns)d connections and at one.
   Besides wrk's figures it prints the CPU time each proxy spends per
   request (user + system, from `/proc/PID/stat`), a figure that does not
   depend on what else runs on the machine; the ratios are to the direct
   figures of the same run.
2. Streaming relay delay: a source sends 200 SSE chunks 5 ms apart, each
   stamped with `CLOCK_MONOTONIC`; the reader computes stamp-to-arrival
   delays, directly and through the proxy.
3. %(queued)d requests sent to a model in the `waking` state: the proxy's
   RSS once all are queued, then `ready` is sent and every answer is read.
4. Model lookup: a 16 MiB body whose `"model"` comes last, after one long
   string, then after 8 million small tokens; the proxy's CPU seconds for
   it (median of 5, from `/proc/PID/stat`: the model scan, reading and
   forwarding the body) and the body's megabytes per CPU second.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("LLMUX_BUILD", os.path.join(ROOT, "build")))
    ap.add_argument("--fakevllm", default=os.environ.get("FAKEVLLM"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--queued", type=int, default=10000)
    ap.add_argument("--lookups", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 s runs, 1000 queued")
    ap.add_argument("--against", metavar="PROXYD",
                    help="another llmux-proxyd, measured side by side with this one")
    ap.add_argument("--rounds", type=int, default=6, help="--against: runs of each")
    ap.add_argument("--markdown", action="store_true",
                    help="print the section of docs/benchmarks.md")
    a = ap.parse_args()
    if a.quick:
        a.duration, a.queued, a.lookups = 3, 1000, 3
    if a.against:
        return against(a)
    if a.markdown:
        sys.path.insert(0, HERE)
        import benchmd
        benchmd.section("proxy", "Proxy", "tests/bench/bench-proxy.py", INTRO % {
            "duration": a.duration, "body": len(BODY), "conns": a.connections,
            "queued": a.queued})
        print("```", flush=True)
        try:
            return bench(a)
        finally:
            print("```\n", flush=True)
    return bench(a)


def stop_all(tmp):
    for p in reversed(PROCS):
        try:
            os.killpg(p.pid, 15)
            p.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
    if not os.environ.get("LLMUX_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept", tmp)


def against(a):
    """This build's proxy and another, side by side, in alternating runs."""
    build = os.path.abspath(a.build)
    fv = a.fakevllm or os.path.join(build, "bin", "llmux-fakevllm")
    proxies = (("this", os.path.join(build, "bin", "llmux-proxyd")),
               ("other", os.path.abspath(a.against)))
    for what, path in (("llmux-fakevllm", fv),) + proxies:
        if not os.access(path, os.X_OK):
            raise SystemExit("bench-proxy: %s not found at %s" % (what, path))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="llmux-bench-proxy-")
    try:
        p_fv = free_port()
        spawn([fv, "serve", "a", "--port", str(p_fv), "--fake-fast"], os.path.join(tmp, "fv-a.log"))
        wait_port(p_fv, "fakevllm a")
        run = {}
        for name, path in proxies:
            p_fvb, p_proxy, p_admin = free_port(), free_port(), free_port()
            spawn([fv, "serve", "b", "--port", str(p_fvb), "--fake-fast"],
                  os.path.join(tmp, "fv-b-%s.log" % name))
            wait_port(p_fvb, "fakevllm b")
            sock = os.path.join(tmp, "sup-%s.sock" % name)
            sup = fakesup.FakeSup(sock, fakesup.config_msg(
                [("a", p_fv, []), ("b", p_fvb, [])], port=p_proxy,
                max_connections=a.queued + 2000, max_queue_per_model=a.queued + 1000,
                request_timeout_secs=600),
                fakesup.state_msg({"a": (fakesup.READY_S, p_fv, 1),
                                   "b": (fakesup.WAKING, 0, 0)})).start()
            proxy = spawn([path, "--socket", sock, "--listen", "127.0.0.1:%d" % p_proxy,
                           "--admin-listen", "127.0.0.1:%d" % p_admin],
                          os.path.join(tmp, "proxyd-%s.log" % name))
            sup.wait_connected()
            wait_port(p_admin, "llmux-proxyd (%s) admin port" % name)
            run[name] = (p_proxy, p_admin, proxy.pid, sup, p_fvb)
        print("llmux-proxyd side by side: this build's (%s) and another (%s)\n"
              "%d s wrk runs, %d of each in turns, wrk -t%d, %d-byte chat request, %d CPUs"
              % (proxies[0][1], proxies[1][1], a.duration, a.rounds, a.threads, len(BODY),
                 os.cpu_count()))
        names = [n for n, _ in proxies]
        for conns in (a.connections, 1):
            got = {n: [] for n in names}
            for n in names:
                wrk(run[n][0], tmp, 1, conns, min(a.threads, conns))  # warm up
            for i in range(a.rounds):
                for n in (names if i % 2 == 0 else names[::-1]):
                    got[n].append(wrk(run[n][0], tmp, a.duration, conns,
                                      min(a.threads, conns), (run[n][2],)))
            print("\n%d connection%s          requests/s  CPU us/req   p50 ms  errors"
                  % (conns, "s" if conns > 1 else " "))
            med = {}
            for n in names:
                rs = got[n]
                med[n] = (statistics.median(r["rps"] for r in rs),
                          statistics.median(r["cpu_us"] or 0 for r in rs))
                print("  %-22s %10.0f  %10.1f  %7.3f  %6d" % (
                    n, med[n][0], med[n][1],
                    statistics.median(r.get("p50", 0) for r in rs) * 1e3,
                    sum(r["errors"] for r in rs)))
            print("  this / other: %.2fx requests/s, %.2fx CPU per request" % (
                med["this"][0] / (med["other"][0] or 1), med["this"][1] / (med["other"][1] or 1)))
        print("\n%d requests queued on a switching model" % a.queued)
        for n in names:
            p_proxy, p_admin, pid, sup, p_fvb = run[n]
            base, rss, ok, qs, ss = queued_memory(p_proxy, p_admin, sup, pid, p_fvb, a.queued)
            print("  %-6s RSS %.1f MB before, %.1f MB with all queued (%.1f kB each); "
                  "served %d of %d" % (n, base / 1024, rss / 1024, (rss - base) / a.queued,
                                       ok, a.queued))
        return 0
    finally:
        stop_all(tmp)


def bench(a):
    build = os.path.abspath(a.build)
    fv = a.fakevllm or os.path.join(build, "bin", "llmux-fakevllm")
    proxyd = os.path.join(build, "bin", "llmux-proxyd")
    for path, what in ((fv, "llmux-fakevllm"), (proxyd, "llmux-proxyd")):
        if not os.access(path, os.X_OK):
            raise SystemExit("bench-proxy: %s not found at %s (make; or FAKEVLLM=path)" % (what, path))
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            raise SystemExit("bench-proxy: %s is needed (tools/install-deps.sh --all)" % tool)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = tempfile.mkdtemp(prefix="llmux-bench-proxy-")
    try:
        p_fv, p_fvb, p_proxy, p_admin, p_nginx, p_stamp = (free_port() for _ in range(6))
        spawn([fv, "serve", "a", "--port", str(p_fv), "--fake-fast"], os.path.join(tmp, "fv-a.log"))
        spawn([fv, "serve", "b", "--port", str(p_fvb), "--fake-fast"], os.path.join(tmp, "fv-b.log"))
        n_stream = 200
        spawn([sys.executable, "-c", STAMP_SERVER, str(p_stamp), str(n_stream), "0.005"],
              os.path.join(tmp, "stamp.log"))
        for port, what in ((p_fv, "fakevllm a"), (p_fvb, "fakevllm b"), (p_stamp, "stamp server")):
            wait_port(port, what)
        sock = os.path.join(tmp, "sup.sock")
        sup = fakesup.FakeSup(sock, fakesup.config_msg(
            [("a", p_fv, []), ("b", p_fvb, []), ("s", p_stamp, [])], port=p_proxy,
            max_connections=a.queued + 2000, max_queue_per_model=a.queued + 1000,
            request_timeout_secs=600),
            fakesup.state_msg({"a": (fakesup.READY_S, p_fv, 1), "b": (fakesup.WAKING, 0, 0),
                               "s": (fakesup.READY_S, p_stamp, 1)})).start()
        proxy = spawn([proxyd, "--socket", sock, "--listen", "127.0.0.1:%d" % p_proxy,
                       "--admin-listen", "127.0.0.1:%d" % p_admin], os.path.join(tmp, "proxyd.log"))
        sup.wait_connected()
        wait_port(p_admin, "llmux-proxyd admin port")
        conf = nginx_conf(tmp, p_nginx, p_fv)
        nginx = spawn(["nginx", "-p", tmp, "-c", conf, "-g", "daemon off;"],
                      os.path.join(tmp, "nginx.log"))
        wait_port(p_nginx, "nginx")
        nginx_pids = [nginx.pid] + children(nginx.pid)

        print("llmux-proxyd benchmark: %d s per run, wrk -t%d, %d-byte chat request, "
              "%d CPUs" % (a.duration, a.threads, len(BODY), os.cpu_count()))
        # CPU per request: of the proxy itself (the model server's is not counted).
        targets = (("fakevllm (direct)", p_fv, ()), ("llmux-proxyd", p_proxy, (proxy.pid,)),
                   ("nginx (1 worker)", p_nginx, nginx_pids))
        for conns in (a.connections, 1):
            rows = []
            for name, port, pids in targets:
                wrk(port, tmp, 1, conns, min(a.threads, conns))  # warm up
                rows.append((name, wrk(port, tmp, a.duration, conns, min(a.threads, conns),
                                       pids)))
            print_table("non-streaming, %d connection%s" % (conns, "s" if conns > 1 else ""), rows)
            d, p, n = rows[0][1], rows[1][1], rows[2][1]
            if d.get("p50") and p.get("p50"):
                print("  llmux-proxyd: %.0f%% of direct, %.2fx nginx; added p50 %.0f us "
                      "(nginx %.0f us)" % (100 * p["rps"] / d["rps"], p["rps"] / (n["rps"] or 1),
                                           (p["p50"] - d["p50"]) * 1e6, (n["p50"] - d["p50"]) * 1e6))

        direct = stream_delays(p_stamp, n_stream)
        proxied = stream_delays(p_proxy, n_stream)
        print("\nstreaming relay delay (stamp to arrival, %d chunks 5 ms apart)" % n_stream)
        for name, v in (("direct", direct), ("llmux-proxyd", proxied)):
            print("  %-14s p50 %7.0f us  p90 %7.0f us  p99 %7.0f us" % (
                name, pct(v, 50), pct(v, 90), pct(v, 99)))
        print("  added by the proxy: p50 %.0f us, p99 %.0f us" % (
            pct(proxied, 50) - pct(direct, 50), pct(proxied, 99) - pct(direct, 99)))

        print("\nmodel lookup, a 16 MiB body with \"model\" last (median of %d)" % a.lookups)
        for shape, what in (("string", "after one long string"),
                            ("tokens", "after 8 million small tokens")):
            size, cpu, status = model_lookup(p_proxy, proxy.pid, shape, a.lookups)
            print("  %-30s proxy CPU %.3f s, %5.0f MB/s of body (answer %s)" % (
                what, cpu, size / 1e6 / cpu if cpu > 0 else float("inf"), status))

        base, rss, ok, qs, ss = queued_memory(p_proxy, p_admin, sup, proxy.pid, p_fvb, a.queued)
        print("\n%d requests queued on a switching model" % a.queued)
        print("  proxy RSS %.1f MB before, %.1f MB with all queued (%.1f kB each); "
              "queued in %.1f s" % (base / 1024, rss / 1024, (rss - base) / a.queued, qs))
        print("  served once ready: %d of %d in %.1f s" % (ok, a.queued, ss))
        if ok != a.queued:
            return 1
        return 0
    finally:
        stop_all(tmp)


if __name__ == "__main__":
    sys.exit(main())
