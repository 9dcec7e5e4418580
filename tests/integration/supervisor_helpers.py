"""supervisor_helpers.py -- what the supervisor and llmuxctl scenarios share:
a config with llmux-fakevllm models in a temp directory, a running
llmux-supervisord on a temp socket (unprivileged: as `nobody` when the tests
run as root, as the current user otherwise) with an admin token file of its
own, llmuxctl calls, and a reaper
that kills every model process of the test at the end (the supervisor
leaves them running when it exits, on purpose).
"""
import http.client
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import time

import harness

NOBODY = 65534


def as_root():
    return os.geteuid() == 0


def fakevllm():
    return harness.binary("llmux-fakevllm")


class Reaper:
    """Kills every process whose command line holds the test's marker.

    Registered with the Env like a process, so it runs at cleanup."""

    def __init__(self, marker):
        self.marker = marker
        self.name = "model-reaper"
        self.argv = ["(kills model processes of %s)" % marker]

    def pids(self):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if self.marker.encode() in cmd:
                out.append(int(d))
        return out

    def stop(self, timeout=5.0):
        # The whole group of each: a model's helpers may not carry the marker.
        for pid in self.pids():
            try:
                pgid = os.getpgid(pid)
                if pgid == pid:
                    os.killpg(pgid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return 0

    def output(self):
        return ""


def yaml_quote(s):
    return json.dumps(str(s))


class Sup:
    """A supervisor of fakevllm models in env's temp directory.

    models: {name: {"args": [...], "eviction": "W+P", ...}} (other keys go
    into the model's config as they are)."""

    def __init__(self, env, models, extra="", unprivileged=True, user=None):
        self.env = env
        self.unprivileged = unprivileged and as_root()
        self.run = env.path("run")
        os.makedirs(self.run, exist_ok=True)
        os.chmod(env.dir, 0o755)
        os.chmod(self.run, 0o777)
        self.socket = os.path.join(self.run, "sup.sock")
        self.state_dir = os.path.join(self.run, "state")
        self.log_dir = os.path.join(self.run, "logs")
        self.marker = os.path.join(env.dir, "models")
        self.ports = {}
        self.models = models
        self.extra = extra
        self.user = user
        self.proc = None
        self.config_path = env.path("llmux.yaml")
        self.write_token(secrets.token_hex(32))
        self.write_config(models, extra)
        reaper = Reaper(self.marker)
        # Stopped last: env.close stops processes in reverse order.
        env.procs.insert(0, reaper)

    def write_token(self, token):
        """The admin token file, as the package makes it: root's, mode 0640,
        its group the supervisor's (nobody's, when it runs unprivileged), as
        llmux-admin is in production."""
        self.token = token
        self.token_path = self.env.path("admin-token")
        tmp = self.token_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.chmod(tmp, 0o640)
        if self.unprivileged:
            os.chown(tmp, 0, NOBODY)
        os.rename(tmp, self.token_path)

    def model_path(self, name):
        return "%s/%s" % (self.marker, name)

    def config_text(self, models, extra=""):
        lines = ["vllm_command: %s" % yaml_quote(self.vllm_command()),
                 "supervisor_socket: %s" % yaml_quote(self.socket),
                 "state_dir: %s" % yaml_quote(self.state_dir),
                 "log_dir: %s" % yaml_quote(self.log_dir),
                 "startup_timeout_secs: 60",
                 "admin_port: 0",
                 "metrics_port: 0",
                 "admin_token_file: %s" % yaml_quote(self.token_path)]
        if self.user is not None:
            lines.append("user: %s" % self.user)
        lines.append("models:")
        for name, m in models.items():
            if name not in self.ports:
                self.ports[name] = harness.free_port()
            lines.append("  %s:" % yaml_quote(name))
            lines.append("    model_path: %s" % yaml_quote(self.model_path(name)))
            lines.append("    port: %d" % self.ports[name])
            args = ["--fake-fast"] + list(m.get("args", []))
            lines.append("    extra_args: [%s]" % ", ".join(yaml_quote(a) for a in args))
            for k, v in m.items():
                if k == "args":
                    continue
                lines.append("    %s: %s" % (k, v))
        return "\n".join(lines) + "\n" + extra

    def vllm_command(self):
        return getattr(self, "command", None) or fakevllm()

    def write_config(self, models, extra=""):
        text = self.config_text(models, extra)
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o644)

    def argv(self):
        argv = [harness.binary("llmux-supervisord"), "-c", self.config_path, "-v"]
        if self.unprivileged:
            argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups"] + argv
        return argv

    def start(self, name="supervisord", wait=True):
        self.proc = self.env.spawn(name, self.argv())
        if wait:
            harness.wait_until(lambda: self.ctl("status")[0] == 0, 20,
                               "the supervisor to answer")
        return self.proc

    def ctl(self, *args, as_uid=None, timeout=120):
        """Run llmuxctl; returns (exit status, stdout, stderr)."""
        argv = [harness.binary("llmuxctl"), "--socket", self.socket] + list(args)
        if as_uid is not None:
            argv = ["setpriv", "--reuid=%d" % as_uid, "--regid=%d" % as_uid,
                    "--clear-groups"] + argv
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")

    def ctl_ok(self, *args):
        rc, out, err = self.ctl(*args)
        if rc != 0:
            raise AssertionError("llmuxctl %s: exit %d\n%s%s" % (" ".join(args), rc, out, err))
        return out

    def ctl_json(self, *args):
        """llmuxctl --json ARGS; returns (exit status, decoded body)."""
        rc, out, err = self.ctl("--json", *args)
        try:
            return rc, json.loads(out)
        except ValueError:
            raise AssertionError("llmuxctl --json %s: exit %d, not JSON: %r %r"
                                 % (" ".join(args), rc, out, err))

    def status(self):
        rc, body = self.ctl_json("status")
        harness.check(rc == 0, "status failed: %r" % body)
        return body

    def model(self, name):
        return self.status()["models"][name]

    def wait_model(self, name, pred, timeout=30, what=None):
        """Wait until pred(model status) holds; returns that status."""
        def holds():
            m = self.model(name)
            return m if pred(m) else None
        return harness.wait_until(holds, timeout, what or "model %s" % name)

    def health(self, name, timeout=5.0):
        """The model's own GET /health status, or None when it is down."""
        return self.get(name, "/health", timeout)[0]

    def get(self, name, path, timeout=5.0):
        """GET path from the model itself: (status, body), (None, None) if down."""
        c = http.client.HTTPConnection("127.0.0.1", self.ports[name], timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        except OSError:
            return None, None
        finally:
            c.close()

    def fake_state(self, name):
        """llmux-fakevllm's own view (--fake-admin): sleeping, level, counts."""
        status, body = self.get(name, "/fake/state")
        check_ok = status == 200
        if not check_ok:
            raise AssertionError("GET /fake/state of %s: %r" % (name, status))
        return json.loads(body)

    def model_pids(self, name):
        """Every process of the test's model `name` (leader and engine)."""
        path = self.model_path(name).encode()
        out = []
        for pid in Reaper(self.marker).pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if path in argv:
                out.append(pid)
        return out

    def log_text(self):
        return self.proc.output() if self.proc else ""


def marked(marker):
    """The pids of every process whose command line holds marker."""
    return Reaper(marker).pids()


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def proc_start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[19])


def listen_addresses(port):
    """The addresses on which something listens on TCP port (from
    /proc/net/tcp and tcp6), as "127.0.0.1", "0.0.0.0", "::"..."""
    import ipaddress
    out = set()
    for name, width in (("tcp", 4), ("tcp6", 16)):
        try:
            with open("/proc/net/%s" % name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if fields[3] != "0A" or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            # Each 32-bit word is in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out.add(str(ipaddress.ip_address(raw)))
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] not in "ZX"


# ---- raw protocol, for hostile peers ------------------------------------------

def mp_str(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 32:
        return bytes([0xa0 | len(b)]) + b
    if len(b) < 256:
        return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + struct.pack(">H", len(b)) + b


def mp_uint(n):
    if n < 128:
        return bytes([n])
    if n < 65536:
        return b"\xcd" + struct.pack(">H", n)
    return b"\xce" + struct.pack(">I", n)


def mp_map(pairs):
    """pairs: list of (key, encoded value bytes)."""
    return bytes([0x80 | len(pairs)]) + b"".join(mp_str(k) + v for k, v in pairs)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def hello(role=2, version=1):
    return frame(mp_map([("t", mp_uint(1)), ("version", mp_uint(version)),
                         ("role", mp_uint(role)), ("program", mp_str("test"))]))


class Raw:
    """A raw socket peer that sends bytes and reads frames."""

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def frame(self):
        """The next frame's payload, or None at EOF."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    p = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return p
            data = self.s.recv(65536)
            if not data:
                return None
            self.buf += data

    def closed(self):
        """True when the supervisor closes the connection (after any frames)."""
        while True:
            try:
                if self.frame() is None:
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True

    def close(self):
        self.s.close()


def mp_type(payload):
    """The "t" of a msgpack map payload (enough for the replies we read)."""
    i = payload.find(b"\xa1t")
    if i < 0:
        return None
    b = payload[i + 2]
    if b < 128:
        return b
    if b == 0xcc:
        return payload[i + 3]
    if b == 0xcd:
        return struct.unpack(">H", payload[i + 3:i + 5])[0]
    if b == 0xce:
        return struct.unpack(">I", payload[i + 3:i + 7])[0]
    return None
