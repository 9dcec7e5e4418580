"""harness.py -- what every integration scenario shares: the build's
programs, free loopback ports, child processes that are always cleaned up
(with their logs shown when a test fails), HTTP helpers, and a tiny runner.

A scenario file defines functions decorated with @test and ends with
    if __name__ == "__main__":
        harness.main()
Each test gets a fresh Env (a temp directory and a process list) and passes
when it returns without raising. Waiting is always for a condition, with a
deadline (wait_until), never a bare sleep.
"""
import http.client
import http.client as httpclient  # http() below shadows the package
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("LLMUX_BUILD", os.path.join(ROOT, "build")))
SOAK = bool(os.environ.get("LLMUX_SOAK"))

_tests = []


def test(fn):
    """Register a scenario function taking an Env."""
    _tests.append(fn)
    return fn


def binary(name):
    path = os.path.join(BUILD, "bin", name)
    if not os.access(path, os.X_OK):
        raise AssertionError("missing program %s (run make)" % path)
    return path


def fake(name):
    return os.path.join(BUILD, "fakes", name)


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, what="condition", interval=0.01):
    """Poll pred() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the condition may raise until it holds
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)


class Proc:
    """A child process in its own process group, output to a log file."""

    def __init__(self, env, name, argv, extra_env=None, cwd=None, pass_fds=()):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(env.dir, name + ".log")
        e = dict(os.environ)
        if extra_env:
            e.update(extra_env)
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=e, cwd=cwd or env.dir,
                                  start_new_session=True, pass_fds=pass_fds)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout=10.0):
        return self.p.wait(timeout=timeout)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL the whole group; returns the exit status."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.p.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        return self.p.returncode

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Env:
    """One test's world: a temp directory and the processes it started."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="llmux-%s-" % name)
        self.procs = []

    def spawn(self, name, argv, extra_env=None, cwd=None, pass_fds=()):
        p = Proc(self, name, argv, extra_env, cwd, pass_fds)
        self.procs.append(p)
        return p

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def close(self, failed):
        for p in reversed(self.procs):
            p.stop()
        if failed:
            for p in self.procs:
                out = p.output()
                sys.stdout.write("---- log of %s (%s) ----\n%s\n" % (
                    p.name, " ".join(p.argv), out[-8000:]))
        if not failed or not os.environ.get("LLMUX_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def http(port, method, path, body=None, headers=None, timeout=10.0, host="127.0.0.1"):
    """One HTTP request; returns (status, headers dict lowercased, body bytes)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    c = httpclient.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def http_json(port, method, path, body=None, headers=None, timeout=10.0):
    """Like http() but decodes a JSON body; returns (status, obj)."""
    status, _, data = http(port, method, path, body, headers, timeout)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        raise AssertionError("not JSON (status %d): %r" % (status, data[:200]))


def sse_events(port, path, body, headers=None, timeout=30.0):
    """POST a streaming request; returns (status, [data payload strings])."""
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request("POST", path, body=json.dumps(body).encode(), headers=h)
        r = c.getresponse()
        if r.status != 200:
            return r.status, [r.read().decode("utf-8", "replace")]
        events = []
        for raw in r:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("data: "):
                events.append(line[6:])
        return r.status, events
    finally:
        c.close()


# What systemd does before it execs a socket-activated service: the
# listening socket as descriptor 3, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.
ACTIVATE = """
import os, sys
fd, names = int(sys.argv[1]), sys.argv[2]
os.dup2(fd, 3)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES=names)
os.execv(sys.argv[3], sys.argv[3:])
"""


def activated(argv, fd, names="proxy"):
    """argv run as systemd would run it with the listening socket fd
    (spawn it with pass_fds=(fd,))."""
    return [sys.executable, "-c", ACTIVATE, str(fd), names] + list(argv)


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


class Skip(Exception):
    """Raised by a test that cannot run here (a tool is not installed)."""


def skip(why):
    raise Skip(why)


NPM_DIR = os.path.join(ROOT, "build", "npm")


def npm_install(package, version):
    """node_modules/PACKAGE at VERSION in build/npm (NPM_DIR), from the npm
    registry, installed once and under a lock (tests run two at a time)."""
    import fcntl
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise AssertionError("node and npm are needed for this test (apt install nodejs npm)")
    os.makedirs(NPM_DIR, exist_ok=True)
    with open(os.path.join(NPM_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pkg = os.path.join(NPM_DIR, "node_modules", package, "package.json")
        if os.path.exists(pkg) and json.load(open(pkg))["version"] == version:
            return
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR,
                            "%s@%s" % (package, version)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
        if p.returncode != 0:
            raise AssertionError("npm could not install %s@%s:\n%s"
                                 % (package, version, p.stdout.decode()[-3000:]))


def main():
    only = sys.argv[1:]
    failed = []
    skipped = []
    for fn in _tests:
        if only and fn.__name__ not in only:
            continue
        env = Env(fn.__name__)
        start = time.monotonic()
        ok = False
        try:
            fn(env)
            ok = True
        except Skip as e:
            ok = True
            skipped.append(fn.__name__)
            print("skip %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            traceback.print_exc(file=sys.stdout)
        finally:
            env.close(not ok)
        print("%s %s (%.2fs)" % ("ok  " if ok else "FAIL", fn.__name__, time.monotonic() - start),
              flush=True)
        if not ok:
            failed.append(fn.__name__)
    if failed:
        print("failed: " + " ".join(failed))
        sys.exit(1)
    if skipped:
        sys.exit(77)  # tests/run-tests: passed, with something skipped
