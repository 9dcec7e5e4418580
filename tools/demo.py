#!/usr/bin/env python3
"""demo.py -- `make demo`: llmux with three fake models, switching on demand.

Starts llmux-supervisord and llmux-proxyd unprivileged (as `nobody` when
run as root) on a temp socket and free loopback ports, with etc/demo.yaml:
three llmux-fakevllm models, each evicted its own way, with the stand-in's
realistic delays. Then it sends a short scripted sequence of requests and
prints, step by step, a timeline: each request and which model answered
it, and each switch with its phases and their times, read from the
supervisor's log (its "switch started", "phase done" and "switch done"
records). Then it stays up, printing the curl and llmuxctl commands to
try, until Ctrl-C; on Ctrl-C (or SIGTERM) it stops the models, the
daemons and anything else it started, and checks that nothing is left.

    tools/demo.py [--once] [BUILD]

--once (or LLMUX_DEMO_ONESHOT=1): run the sequence, print, tear down, exit
0 when every request was answered and nothing is left running, else 1.
BUILD is the build directory (default build/). Standard library only.
"""
import argparse
import datetime
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOBODY = 65534
MARK = "->"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    """Poll pred() until true; raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def secs(ms):
    return "%.2f s" % (ms / 1000.0)


# ---- the configuration --------------------------------------------------------

def demo_config(text, ports, values):
    """etc/demo.yaml with its ports, program and paths replaced.

    ports: {model: port}; values: top-level key -> value (quoted as JSON)."""
    out, seen, section, model = [], set(), None, None
    for line in text.splitlines():
        m = re.match(r"^(\s*)([A-Za-z0-9_.:/@-]+):(.*)$", line)
        if m and not line.lstrip().startswith("#"):
            indent, key = len(m.group(1)), m.group(2)
            if indent == 0:
                section, model = key, None
                if key in values:
                    line = "%s: %s" % (key, json.dumps(values[key]))
                    seen.add(key)
            elif section == "models" and indent == 2:
                model = key
            elif section == "models" and indent == 4 and key == "port" and model in ports:
                line = "%sport: %d" % (m.group(1), ports[model])
        out.append(line)
    for key in values:
        if key not in seen:
            out.append("%s: %s" % (key, json.dumps(values[key])))
    return "\n".join(out) + "\n"


def demo_models(text):
    """The models of etc/demo.yaml, in order: [(name, eviction)]."""
    models, section, name = [], None, None
    for line in text.splitlines():
        m = re.match(r"^(\s*)([A-Za-z0-9_.:/@-]+):\s*(.*?)\s*(#.*)?$", line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent, key, val = len(m.group(1)), m.group(2), m.group(3)
        if indent == 0:
            section = key
        elif section == "models" and indent == 2:
            name = key
            models.append([name, "retain+stop"])
        elif section == "models" and indent == 4 and key == "eviction":
            models[-1][1] = val
    return [tuple(m) for m in models]


# ---- the supervisor's log -----------------------------------------------------

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def log_fields(line):
    out = {}
    for k, v in FIELD.findall(line):
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"')
        out[k] = v
    return out


def log_time(ts):
    """A log line's time, cut to the millisecond (print_timeline cuts the
    requests' times the same way and orders ties by kind)."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


class SupLog:
    """Reads the supervisor's log as it grows; keeps its switch records."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.records = []
        self.partial = b""

    def read(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            f = log_fields(raw.decode("utf-8", "replace"))
            if f.get("msg") in ("switch started", "phase done", "switch done",
                                "switch failed", "switch cancelled",
                                "model process exited unexpectedly") and "ts" in f:
                f["t"] = log_time(f["ts"])
                self.records.append(f)

    def open_switches(self, since):
        """Switches started at or after since that have not ended yet."""
        n = 0
        for r in self.records:
            if r["t"] < since:
                continue
            if r["msg"] == "switch started":
                n += 1
            elif r["msg"] in ("switch done", "switch failed", "switch cancelled"):
                n = max(0, n - 1)
        return n


# ---- the stack -----------------------------------------------------------------

class Demo:
    def __init__(self, build, once):
        self.build = os.path.abspath(build)
        self.once = once
        self.procs = {}
        self.logs = {}
        self.model_pids = set()
        self.requests = []
        self.lock = threading.Lock()
        self.t0 = time.time()
        self.failed = False
        self.interrupted = False
        self.clean = False
        self.as_root = os.geteuid() == 0
        self.dir = tempfile.mkdtemp(prefix="llmux-demo-")
        os.chmod(self.dir, 0o755)
        self.run_dir = os.path.join(self.dir, "run")
        os.makedirs(os.path.join(self.run_dir, "state"))
        os.makedirs(os.path.join(self.run_dir, "logs"))
        if self.as_root:
            for d in ("", "state", "logs"):
                os.chown(os.path.join(self.run_dir, d), NOBODY, NOBODY)
        self.socket = os.path.join(self.run_dir, "supervisor.sock")
        self.port = free_port()
        self.admin = free_port()

    def bin(self, name):
        path = os.path.join(self.build, "bin", name)
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s is missing: run make first" % path)
        return path

    def spawn(self, name, argv):
        if self.as_root:
            argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups"] + argv
        self.logs[name] = os.path.join(self.dir, name + ".log")
        log = open(self.logs[name], "ab")
        # A session of its own: Ctrl-C in the terminal reaches only the demo,
        # which stops everything in order.
        self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            start_new_session=True)
        log.close()
        return self.procs[name]

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def log_tail(self, name, n=15):
        try:
            with open(self.logs[name], "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in lines[-n:])

    def ctl(self, *args, timeout=60):
        p = subprocess.run([self.bin("llmuxctl"), "--socket", self.socket] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    def start(self):
        with open(os.path.join(ROOT, "etc", "demo.yaml")) as f:
            text = f.read()
        self.models = demo_models(text)
        self.model_ports = {name: free_port() for name, _ in self.models}
        self.config = os.path.join(self.dir, "llmux.yaml")
        with open(self.config, "w") as f:
            f.write(demo_config(text, self.model_ports, {
                "vllm_command": self.bin("llmux-fakevllm"),
                "port": self.port,
                "admin_port": self.admin,
                "supervisor_socket": self.socket,
                "state_dir": os.path.join(self.run_dir, "state"),
                "log_dir": os.path.join(self.run_dir, "logs")}))
        os.chmod(self.config, 0o644)
        self.supervisor = self.spawn("supervisord", [self.bin("llmux-supervisord"),
                                                     "-c", self.config])

        def sup_up():
            if not self.alive("supervisord"):
                raise RuntimeError("llmux-supervisord exited:\n" + self.log_tail("supervisord"))
            return self.ctl("status", timeout=10)[0] == 0
        wait_for(sup_up, 30, "llmux-supervisord")
        self.proxy = self.spawn("proxyd", [
            self.bin("llmux-proxyd"), "--socket", self.socket,
            "--listen", "127.0.0.1:%d" % self.port,
            "--admin-listen", "127.0.0.1:%d" % self.admin])

        def proxy_up():
            if not self.alive("proxyd"):
                raise RuntimeError("llmux-proxyd exited:\n" + self.log_tail("proxyd"))
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                c.request("GET", "/health")
                h = json.loads(c.getresponse().read())
                return h.get("configured") and h.get("supervisor")
            finally:
                c.close()
        wait_for(proxy_up, 30, "llmux-proxyd")
        self.suplog = SupLog(self.logs["supervisord"])

    # ---- requests ------------------------------------------------------------

    def at(self, t=None):
        return "%8s" % ("+%.2fs" % ((time.time() if t is None else t) - self.t0))

    def request(self, model, text, max_tokens=16, stream=False):
        """One chat request through the proxy; recorded for the timeline."""
        with self.lock:
            n = len(self.requests) + 1
            r = {"n": n, "model": model, "stream": stream, "sent": time.time(),
                 "status": None, "served_by": None, "tokens": 0, "text": "",
                 "first": None, "done": None, "error": None}
            self.requests.append(r)
        body = {"model": model, "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                      headers={"Content-Type": "application/json"})
            resp = c.getresponse()
            r["status"] = resp.status
            if resp.status != 200:
                data = resp.read()
                try:
                    r["error"] = json.loads(data)["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    r["error"] = data[:200].decode("utf-8", "replace")
            elif not stream:
                obj = json.loads(resp.read())
                r["served_by"] = obj.get("model")
                r["text"] = obj["choices"][0]["message"]["content"]
                r["tokens"] = obj.get("usage", {}).get("completion_tokens", 0)
            else:
                done = False
                for raw in resp:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        done = True
                        break
                    ev = json.loads(data)
                    if "error" in ev:
                        r["error"] = ev["error"].get("message")
                        continue
                    r["served_by"] = ev.get("model", r["served_by"])
                    for ch in ev.get("choices", []):
                        piece = ch.get("delta", {}).get("content")
                        if piece:
                            if r["first"] is None:
                                r["first"] = time.time()
                            r["text"] += piece
                            r["tokens"] += 1
                if not done and r["error"] is None:
                    r["error"] = "the stream ended without [DONE]"
        except (OSError, ValueError, KeyError) as e:
            r["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            c.close()
            r["done"] = time.time()
        if r["status"] != 200 or r["error"] or r["served_by"] != model:
            self.failed = True
        return r

    def step(self, title, calls):
        """Run one step's requests side by side, then print its timeline."""
        print("\n%s" % title, flush=True)
        start = time.time()
        threads = [threading.Thread(target=self.request, kwargs=kw, daemon=True)
                   for kw in calls]
        first = len(self.requests)
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        reqs = self.requests[first:]
        # The switches of this step end before their requests are answered;
        # their records may still be on their way to the log file.
        deadline = time.monotonic() + 10
        while True:
            self.suplog.read()
            if self.suplog.open_switches(start) == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.print_timeline(start, reqs)

    def print_timeline(self, start, reqs):
        # The supervisor's log has milliseconds: the requests' times are
        # cut to the millisecond too, so that a switch that a request
        # caused in the same millisecond is never shown before it.
        def ms(t):
            return math.floor(t * 1000) / 1000
        events = []
        for r in reqs:
            kind = "stream" if r["stream"] else "request"
            events.append((ms(r["sent"]), 0, "%s #%d %s %s" % (kind, r["n"], MARK, r["model"])))
            if r["first"] is not None:
                events.append((ms(r["first"]), 1, "  first token of #%d after %s" % (
                    r["n"], secs((r["first"] - r["sent"]) * 1000))))
            if r["status"] == 200 and not r["error"]:
                what = "answer #%d from %s: %d tokens in %s  \"%s\"" % (
                    r["n"], r["served_by"], r["tokens"],
                    secs((r["done"] - r["sent"]) * 1000), snippet(r["text"]))
            else:
                what = "answer #%d: FAILED (%s) %s" % (r["n"], r["status"], r["error"])
            events.append((ms(r["done"]), 2, what))
        for rec in self.suplog.records:
            if rec["t"] < start - 0.001:
                continue
            msg = rec["msg"]
            if msg == "switch started":
                text = "switch %s %s %s begins" % (rec.get("from"), MARK, rec.get("to"))
            elif msg == "phase done":
                text = "    %-8s %-5s %-18s %s%s" % (
                    rec.get("model"), rec.get("op"), rec.get("phase"),
                    secs(int(rec.get("ms", 0))), "" if rec.get("ok") == "1" else "  FAILED")
            elif msg == "switch done":
                parts = ["%s %s" % (p, secs(int(rec.get(p + "_ms", 0))))
                         for p in ("cooldown", "drain", "sleep", "wake")]
                text = "switch %s %s %s done in %s: %s" % (
                    rec.get("from"), MARK, rec.get("to"), secs(int(rec.get("total_ms", 0))),
                    ", ".join(parts))
            elif msg == "switch failed":
                text = "switch %s %s %s FAILED: %s" % (rec.get("from"), MARK, rec.get("to"),
                                                      rec.get("reason"))
            elif msg == "switch cancelled":
                text = "switch to %s cancelled" % rec.get("to")
            else:
                text = "model %s exited: %s" % (rec.get("model"), rec.get("reason"))
            events.append((rec["t"], 1, text))
        events.sort(key=lambda e: (e[0], e[1]))
        for t, _, text in events:
            print("  %s  %s" % (self.at(t), text))
        sys.stdout.flush()

    def sequence(self):
        (a, _), (b, _), (c, _) = self.models[:3]
        self.step("[1] A request for %s. Nothing runs yet: llmux starts it." % a,
                  [dict(model=a, text="What is a GPU?")])
        self.step("[2] A request for %s. %s is drained and sleeps (weights to host "
                  "memory);\n    %s starts." % (b, a, b),
                  [dict(model=b, text="Name three rivers.")])
        self.step("[3] A burst: three requests for each at once. %s serves its own;\n"
                  "    then %s sleeps (weights dropped) and %s wakes, warm." % (b, b, a),
                  [dict(model=m, text="burst question %d" % i)
                   for i in range(3) for m in (a, b)])
        self.step("[4] A streaming request for %s: it wakes and reloads its weights;\n"
                  "    tokens arrive as they are made." % b,
                  [dict(model=b, text="Tell me a story.", max_tokens=48, stream=True)])
        self.step("[5] A request for %s: %s sleeps again, %s starts cold."
                  % (c, b, c), [dict(model=c, text="What is llmux?")])

    def summary(self):
        done = [r for r in self.suplog.records if r["msg"] == "switch done"]
        total = sum(int(r.get("total_ms", 0)) for r in done)
        ok = sum(1 for r in self.requests if r["status"] == 200 and not r["error"])
        print("\n%d of %d requests answered by the model they asked for; %d switches, "
              "%s in all." % (ok, len(self.requests), len(done), secs(total)))
        rc, out, err = self.ctl("status")
        print("\n$ llmuxctl status\n" + (out or err).rstrip())
        self.remember_models()

    def remember_models(self):
        """The model processes now, so that teardown can check they are gone."""
        rc, out, _ = self.ctl("--json", "status", timeout=10)
        if rc != 0:
            return
        try:
            for m in json.loads(out)["models"].values():
                if m.get("pid"):
                    self.model_pids.add(int(m["pid"]))
        except (ValueError, KeyError):
            pass

    def try_it(self):
        ctl = "%s --socket %s" % (self.bin("llmuxctl"), self.socket)
        names = [n for n, _ in self.models]
        body = json.dumps({"model": names[0], "max_tokens": 16,
                           "messages": [{"role": "user", "content": "Hello"}]})
        sbody = json.dumps({"model": names[1], "max_tokens": 32, "stream": True,
                            "messages": [{"role": "user", "content": "Hello"}]})
        print("""
The stack stays up. Try:

  curl -s http://127.0.0.1:{port}/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{body}'
  curl -sN http://127.0.0.1:{port}/v1/chat/completions -H 'Content-Type: application/json' \\
       -d '{sbody}'
  curl -s http://127.0.0.1:{port}/v1/models
  curl -s http://127.0.0.1:{admin}/control/status
  curl -s http://127.0.0.1:{admin}/metrics | grep '^llmux_switch'
  {ctl} status
  {ctl} switch {c}
  {ctl} sleep {a}
  {ctl} logs {a}
  tail -f {log}

Press Ctrl-C to stop everything.""".format(
            port=self.port, admin=self.admin, body=body, sbody=sbody, ctl=ctl,
            a=names[0], c=names[2], log=self.logs["supervisord"]), flush=True)

    def wait_interrupt(self):
        while True:
            for name in ("supervisord", "proxyd"):
                if not self.alive(name):
                    print("\nllmux-%s exited unexpectedly:\n%s" % (
                        name[:-1] if name.endswith("d") else name, self.log_tail(name)))
                    self.failed = True
                    return
            time.sleep(0.5)

    # ---- teardown ------------------------------------------------------------

    def ours(self):
        """Processes left from the demo: the model processes (by pid, by their
        session, by their ports) and anything whose command line names the
        demo's directory (the daemons and their log keepers)."""
        sessions = set(self.model_pids)
        ports = {str(p) for p in self.model_ports.values()} \
            if hasattr(self, "model_ports") else set()
        left = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            pid = int(d)
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = f.read().decode("utf-8", "replace").split("\0")
                with open("/proc/%d/stat" % pid) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] in "ZX":
                continue
            sid = int(fields[3])
            fake = any(a.endswith("llmux-fakevllm") for a in argv[:1]) and \
                any(argv[i] == "--port" and i + 1 < len(argv) and argv[i + 1] in ports
                    for i in range(len(argv)))
            if pid in self.model_pids or sid in sessions or fake or \
                    any(self.dir in a for a in argv):
                left.append(pid)
        return left

    def stop(self, name, timeout=15):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def stop_models(self):
        """llmuxctl stop --all; a model in the middle of a switch is refused
        until the switch ends, so it is tried again for a while."""
        deadline = time.monotonic() + 60
        while True:
            try:
                rc, out, err = self.ctl("stop", "--all", timeout=60)
            except subprocess.TimeoutExpired:
                rc, out, err = -1, "", "no answer in 60 s"
            if rc == 0:
                return
            if rc != 1 or time.monotonic() > deadline:
                print("  llmuxctl stop --all: %s" % (err or out).strip())
                return
            time.sleep(0.2)

    def teardown(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nStopping llmux-proxyd, the models, then llmux-supervisord ...", flush=True)
        # The proxy first: no new request can wake a model, and without a
        # proxy the supervisor starts no switch of its own.
        self.stop("proxyd")
        if self.alive("supervisord"):
            self.remember_models()
            self.stop_models()
        self.stop("supervisord")
        left = []
        deadline = time.monotonic() + 10
        while True:
            left = self.ours()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if left:
            print("  still running, killed: %s" % ", ".join(map(str, left)))
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.failed = True
        codes = {n: p.returncode for n, p in self.procs.items()}
        bad = {n: c for n, c in codes.items() if c not in (0, None)}
        if bad:
            print("  exit statuses: %s" % ", ".join("%s %s" % kv for kv in bad.items()))
            self.failed = True
        if self.failed and (os.environ.get("LLMUX_DEMO_KEEP") or self.once):
            print("  logs kept in %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if not left:
            print("Stopped: nothing left running.")
        self.clean = not left and not bad


def snippet(text, n=40):
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description="llmux demo with three fake models")
    ap.add_argument("--once", action="store_true",
                    help="run the sequence, print, tear down and exit")
    ap.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    once = args.once or os.environ.get("LLMUX_DEMO_ONESHOT", "") not in ("", "0")
    # Explicitly: a shell's background job starts with SIGINT ignored.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    demo = Demo(args.build, once)
    try:
        try:
            demo.start()
            print("llmux demo: llmux-supervisord (pid %d) and llmux-proxyd (pid %d), "
                  "unprivileged%s" % (demo.supervisor.pid, demo.proxy.pid,
                                      " (as nobody)" if demo.as_root else ""))
            print("  OpenAI API   http://127.0.0.1:%d/v1/   control API and /metrics "
                  "http://127.0.0.1:%d" % (demo.port, demo.admin))
            print("  socket       %s" % demo.socket)
            print("  models (llmux-fakevllm, etc/demo.yaml):")
            for name, ev in demo.models:
                print("    %-8s %-22s port %d" % (name, ev, demo.model_ports[name]))
            print("Times are from the start of the demo; a switch's phases come from "
                  "the supervisor's log.")
            demo.sequence()
            demo.summary()
            if not once:
                demo.try_it()
                demo.wait_interrupt()
        except KeyboardInterrupt:
            print("\nInterrupted.")
            demo.interrupted = True
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            print("\nllmux demo failed: %s" % e)
            demo.failed = True
    finally:
        demo.teardown()
    if demo.interrupted:
        return 0 if demo.clean else 1
    return 1 if demo.failed or not demo.clean else 0


if __name__ == "__main__":
    sys.exit(main())
