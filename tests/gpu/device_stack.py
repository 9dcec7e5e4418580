"""device_stack.py -- the stack half of tests/gpu/device-run.sh
(device_run.py): llmux-supervisord and llmux-proxyd from the device bundle
with two llmux-fakevllm --fake-gpu cuda models, driven through the proxy,
with each switch's phases, the models' own view and NVML's.

Where each figure comes from:
  * the supervisor's log: `phase done model=M op=sleep|wake phase=P ms=N`
    for every step of the victim's eviction and the target's wake, and
    `switch timing from=V to=T total_us= engine_us= llmux_us=`;
  * the proxy's /metrics: llmux_switch_phase_seconds{phase="drain"} (its
    sum grows by each switch's drain);
  * the client: the time to the first token of a streamed request (the
    request that causes the switch), so first token = that - the switch;
  * each model's GET /fake/state: its engine's pid (the CUDA process), its
    device and host bytes, its weights pattern checks;
  * NVML (bin/gpu_check procs): each process's GPU memory after the switch;
    where NVML lists none of the models' processes (in a container it lists
    the host's pids), or with --judge-by-gpu-memory, the GPU's memory in
    use over what it was before the models started.
"""
import http.client
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import tempfile
import time

GIB = 1 << 30
# The phases a switch must have taken: the victim's eviction, the target's
# wake (an eviction that failed and became a stop, or a wake that became a
# cold start, is not what is measured).
EXPECT = {"retain+cuda_suspend": ("cuda_suspend", ("cuda_resume",)),
          "offload+keep_running": ("sleep", ("wake_up",)),
          "discard+keep_running": ("discard", ("wake_up", "reload_weights"))}
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def fields(line):
    """key=value pairs of a log line or of the GPU tools' output."""
    out = {}
    for k, v in FIELD.findall(line):
        out[k] = v[1:-1].replace('\\"', '"') if v.startswith('"') else v
    return out


class StackError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    """Poll pred() until it returns a true value; StackError after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # the condition may raise until it holds
            last = e
        if time.monotonic() > deadline:
            raise StackError("timed out after %.0f s waiting for %s%s" % (
                timeout, what, " (%r)" % last if last else ""))
        time.sleep(0.05)


def call(port, method, path, body=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def steps(phases):
    """ "cuda_resume 812 + health 3" """
    return " + ".join("%s %d" % kv for kv in phases.items()) or "-"


def model_user():
    """Who the models run as: root (every capability dropped by the
    supervisor, as for any user) under a root supervisor, so that they may
    open the GPU's device files whatever their mode; else us."""
    return pwd.getpwuid(os.geteuid()).pw_name


class Stack:
    """One run: a config from etc/device-run.yaml.in, the two daemons."""

    def __init__(self, b, rep, work, eviction, fraction, size, out, by_gpu=False):
        self.b, self.rep, self.eviction, self.out = b, rep, eviction, out
        self.fraction = fraction
        self.by_gpu = by_gpu
        self.baseline = 0
        self.slack = 0
        self.dir = tempfile.mkdtemp(dir=work, prefix="stack-")
        os.chmod(self.dir, 0o755)
        self.run = os.path.join(self.dir, "run")
        os.makedirs(self.run)
        self.socket = os.path.join(self.run, "supervisor.sock")
        self.ports = {"a": free_port(), "b": free_port()}
        self.port, self.admin = free_port(), free_port()
        sizes = ""
        if size is not None:
            sizes = ', --fake-weights-mb, "%d", --fake-kv-mb, "%d"' % size
        with open(os.path.join(b.path, "etc", "device-run.yaml.in")) as f:
            text = f.read()
        for k, v in (("@BUNDLE@", b.path), ("@RUN@", self.run), ("@USER@", model_user()),
                     ("@PORT_A@", str(self.ports["a"])), ("@PORT_B@", str(self.ports["b"])),
                     ("@EVICTION@", eviction), ("@FRACTION@", "%.2f" % fraction),
                     ("@SIZES@", sizes)):
            text = text.replace(k, v)
        self.config = os.path.join(self.dir, "llmux.yaml")
        with open(self.config, "w") as f:
            f.write(text)
        os.chmod(self.config, 0o644)
        self.procs = []
        self.model_pids = {}

    # ---- processes ----------------------------------------------------------------

    def spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=self.b.env, cwd=self.dir,
                             start_new_session=True)
        log.close()
        self.procs.append((name, p))
        return p

    def gpu_used(self):
        """NVML's processes {pid: bytes}, and GPU 0's memory in use."""
        procs, gpus = self.b.nvml()
        return procs, int(gpus[0]["used"]) if gpus else 0

    def start(self):
        procs, self.baseline = self.gpu_used()
        total = int(self.b.nvml()[1][0]["total"])
        # Two CUDA contexts and what the driver rounds up.
        self.slack = 2 * max(total // 100, 16 << 20)
        rc, out = self.b.run("llmux-supervisord", "--check-config", "-c", self.config)
        if rc != 0:
            raise StackError("the configuration is refused:\n" + out)
        self.sup = self.spawn("supervisord", [self.b.bin("llmux-supervisord"), "-c",
                                              self.config])
        wait_until(lambda: self.ctl("status")[0] == 0, 30, "the supervisor to answer")
        self.spawn("proxyd", [self.b.bin("llmux-proxyd"), "--socket", self.socket,
                              "--listen", "127.0.0.1:%d" % self.port,
                              "--admin-listen", "127.0.0.1:%d" % self.admin])

        def configured():
            st, body = call(self.port, "GET", "/health", timeout=5)
            h = json.loads(body) if st == 200 else {}
            return h.get("configured") and h.get("supervisor")
        wait_until(configured, 30, "the proxy to be configured")

    def ctl(self, *args):
        p = subprocess.run([self.b.bin("llmuxctl"), "--socket", self.socket, "--json"] +
                           list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.b.env, timeout=60)
        try:
            return p.returncode, json.loads(p.stdout)
        except ValueError:
            return p.returncode, p.stdout.decode() + p.stderr.decode()

    def status(self):
        rc, body = self.ctl("status")
        if rc != 0:
            raise StackError("llmuxctl status: %r" % body)
        for name, m in body["models"].items():
            if m.get("pid"):
                self.model_pids[name] = m["pid"]
        return body

    def stop(self):
        """The daemons, then the models (the supervisor leaves them running),
        until NVML shows none of their memory."""
        try:
            self.status()
        except Exception:
            pass
        engines = set(getattr(self, "engines", {}).values())
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        for pid in self.model_pids.values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        def released():
            # Their processes gone from NVML, and the GPU's memory back to
            # what it was before they started (the driver frees it after
            # the process is gone, not at the signal).
            procs, used = self.gpu_used()
            return used <= self.baseline + self.slack // 2 and not engines & set(procs)
        try:
            wait_until(released, 60, "the models' GPU memory to be released")
        except StackError as e:
            self.rep.check(False, "%s: %s" % (self.eviction, e))
        finally:
            self.keep_logs()

    def keep_logs(self):
        if not self.out:
            return
        dest = os.path.join(self.out, "logs", "%s-%.2f" % (self.eviction, self.fraction))
        os.makedirs(dest, exist_ok=True)
        logs = [os.path.join(self.dir, n) for n in os.listdir(self.dir) if n.endswith(".log")]
        mdir = os.path.join(self.run, "logs")
        if os.path.isdir(mdir):
            logs += [os.path.join(mdir, n) for n in os.listdir(mdir)]
        for path in logs + [self.config]:
            with open(path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 256 * 1024))
                data = f.read()
            with open(os.path.join(dest, os.path.basename(path)), "wb") as f:
                f.write(data)

    # ---- what the run reads -----------------------------------------------------

    def fake_state(self, model):
        try:
            st, body = call(self.ports[model], "GET", "/fake/state", timeout=30)
        except OSError as e:
            raise StackError("model %s does not answer (stopped?): %s" % (model, e))
        if st != 200:
            raise StackError("GET /fake/state of %s: %d" % (model, st))
        return json.loads(body)

    def metrics(self):
        st, body = call(self.admin, "GET", "/metrics", timeout=30)
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, val = line.rsplit(" ", 1)
            try:
                out[key] = float(val)
            except ValueError:
                pass
        return out

    def drain_s(self, m, victim, target):
        want = 'llmux_switch_phase_seconds_sum{'
        for k, v in m.items():
            if k.startswith(want) and 'phase="drain"' in k and 'from="%s"' % victim in k \
                    and 'to="%s"' % target in k:
                return v
        return 0.0

    def log(self):
        with open(os.path.join(self.dir, "supervisord.log"), errors="replace") as f:
            return f.read()

    def request(self, model, i):
        """A streamed chat request through the proxy, timed."""
        body = json.dumps({"model": model, "max_tokens": 8, "stream": True,
                           "temperature": 0,
                           "messages": [{"role": "user", "content": "device run %d" % i}]})
        t0 = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        res = {"model": model, "status": None, "error": None, "ttft_ms": None, "served": None}
        try:
            c.request("POST", "/v1/chat/completions", body,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            res["status"] = r.status
            if r.status != 200:
                res["error"] = r.read()[:400].decode("utf-8", "replace")
                return res
            for raw in r:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                obj = json.loads(line[6:])
                if "error" in obj:
                    res["error"] = obj["error"].get("message")
                    continue
                if res["ttft_ms"] is None:
                    res["ttft_ms"] = (time.monotonic() - t0) * 1000
                res["served"] = obj.get("model")
        finally:
            c.close()
            res["total_ms"] = (time.monotonic() - t0) * 1000
        return res

    # ---- the runs ----------------------------------------------------------------

    def served(self, model, i, what):
        r = self.request(model, i)
        ok = r["status"] == 200 and r["error"] is None and r["served"] == model
        if not ok:
            self.rep.check(False, "%s: %s answered 200 (%s)" % (what, model, r))
        return ok, r

    def switches(self, n, deadline, bandwidth):
        """n requests alternating between a and b, each one a switch."""
        rep = self.rep
        rep.say("-- %s, two models claiming %.2f of the GPU each" % (
            self.eviction, self.fraction))
        fig = {"eviction": self.eviction, "fraction": self.fraction, "requests": n,
               "switches": 0, "records": []}
        try:
            self.start()
            for i, m in enumerate(("a", "b")):
                ok, r = self.served(m, i, "start")
                if not ok:
                    raise StackError("the models do not start: %s" % r)
            self.engines = {m: self.fake_state(m)["engine_pid"] for m in "ab"}
            weights = {m: self.fake_state(m)["gpu"]["weights_bytes"] for m in "ab"}
            nv, used = self.gpu_used()
            self.judge_by_gpu(nv)
            active = {"b": used - self.baseline if self.by_gpu else
                      nv.get(self.engines["b"], 0),
                      "a": self.fake_state("a")["gpu"]["claim_bytes"]}
            fig["bytes_per_model"] = active["b"]
            recs, all_ok = fig["records"], True
            for i in range(n):
                if time.monotonic() > deadline:
                    rep.note("%s: time is up after %d of %d requests" % (
                        self.eviction, i, n))
                    break
                target = "a" if i % 2 == 0 else "b"
                victim = "b" if target == "a" else "a"
                rec, ok = self.one_switch(i, victim, target, active, weights, bandwidth)
                all_ok = all_ok and ok
                recs.append(rec)
            fig["records"] = recs
            fig["switches"] = len(recs)
            rep.check(all_ok and len(recs) > 0,
                      "%s: %d switches as asked, every answer 200, every wake's weights "
                      "intact, NVML right after each" % (self.eviction, len(recs)))
            self.medians(fig, recs)
        except Exception as e:  # a run that breaks is reported; the next one runs
            rep.check(False, "%s: %s" % (self.eviction, e if isinstance(e, StackError)
                                         else repr(e)))
            self.say_last_warning()
            fig["records"] = fig.get("records") or []
            self.medians(fig, fig["records"])
        finally:
            self.stop()
        return fig

    def one_switch(self, i, victim, target, active, weights, bandwidth):
        rep = self.rep
        m0 = self.metrics()
        st0 = self.fake_state(target)["gpu"]
        offset = len(self.log())
        r = self.request(target, 100 + i)
        ok = r["status"] == 200 and r["error"] is None and r["served"] == target
        wait_until(lambda: 'msg="switch timing"' in self.log()[offset:], 60,
                   "the switch %s->%s to be logged" % (victim, target))
        lines = self.log()[offset:].splitlines()
        timing, phases, failed = {}, {"evict": {}, "wake": {}}, []
        for line in lines:
            if 'msg="switch timing"' in line:
                timing = fields(line)
            if 'msg="phase done"' not in line:
                continue
            f = fields(line)
            side = "evict" if f.get("model") == victim and f.get("op") == "sleep" else \
                "wake" if f.get("model") == target and f.get("op") == "wake" else None
            if side:
                phases[side][f["phase"]] = int(f["ms"])
                if f.get("ok") != "1":
                    failed.append("%s %s" % (f.get("model"), f["phase"]))
        evict, wake = EXPECT[self.eviction]
        taken = not failed and evict in phases["evict"] and \
            "stop" not in phases["evict"] and "start" not in phases["wake"] and \
            all(w in phases["wake"] for w in wake)
        m1 = self.metrics()
        st1 = self.fake_state(target)["gpu"]
        nv, used = self.gpu_used()
        intact = st1["pattern_checks"] > st0["pattern_checks"] and \
            st1["pattern_failures"] == 0 and st1["pattern_error"] is None
        if self.by_gpu:
            # The GPU holds the target's memory, and of the victim a context.
            tb, vb = used - self.baseline, 0
            nvml_ok = 0.95 * st1["device_bytes"] <= tb <= \
                st1["device_bytes"] + 0.1 * active[victim] + self.slack
        else:
            tb, vb = nv.get(self.engines[target], 0), nv.get(self.engines[victim], 0)
            nvml_ok = tb >= 0.95 * st1["device_bytes"] and vb <= 0.1 * active[victim]
        active[target] = tb
        total_ms = int(timing.get("total_us", 0)) / 1000.0
        rec = {"i": i, "from": victim, "to": target, "status": r["status"],
               "error": r["error"], "ttft_ms": r["ttft_ms"], "client_ms": r["total_ms"],
               "total_ms": total_ms, "engine_ms": int(timing.get("engine_us", 0)) / 1000.0,
               "llmux_ms": int(timing.get("llmux_us", 0)) / 1000.0,
               "drain_ms": (self.drain_s(m1, victim, target) -
                            self.drain_s(m0, victim, target)) * 1000,
               "evict": phases["evict"], "wake": phases["wake"],
               "nvml_target_bytes": tb, "nvml_victim_bytes": vb,
               "pattern_checks": st1["pattern_checks"], "weights_intact": intact}
        rec["first_token_ms"] = (r["ttft_ms"] or 0) - total_ms
        self.copy_floor(rec, victim, target, active, weights, bandwidth)
        line = "  %d %s->%s %s: drain %.0f | %s | %s | total %.0f ms, first token +%.0f ms; " \
            "NVML %s %.2f GiB, %s %.2f GiB; weights %s; at the PCIe rate %.0f ms (%.0f%%)" % (
                i, victim, target, r["status"], rec["drain_ms"], steps(phases["evict"]),
                steps(phases["wake"]), total_ms, rec["first_token_ms"], target, tb / GIB,
                victim, vb / GIB, "intact" if intact else "NOT CHECKED OR DAMAGED",
                rec["copy_floor_ms"], 100 * rec["ratio"])
        rep.say(line)
        if not ok:
            rep.say("    the request failed: %s" % r)
        if not nvml_ok and self.by_gpu:
            rep.say("    NVML: the GPU holds %d bytes more than before the models; the "
                    "target has %d on the device, the victim may keep %d" % (
                        tb, st1["device_bytes"], 0.1 * active[victim] + self.slack))
        elif not nvml_ok:
            rep.say("    NVML: %s holds %d bytes (the model has %d on the device), %s holds "
                    "%d (at most %d expected)" % (target, tb, st1["device_bytes"], victim, vb,
                                                 0.1 * active[victim]))
        if not taken:
            rep.say("    not the switch asked for: %s | %s%s" % (
                steps(phases["evict"]), steps(phases["wake"]),
                "; failed: " + ", ".join(failed) if failed else ""))
        rec["phases_as_asked"] = taken
        return rec, ok and intact and nvml_ok and taken and bool(timing)

    def copy_floor(self, rec, victim, target, active, weights, bw):
        """Bytes the switch moves over PCIe, at the measured pinned rate."""
        if self.eviction.endswith("cuda_suspend"):
            out, into = active[victim], rec["nvml_target_bytes"]
            copy = rec["evict"].get("cuda_suspend", 0) + rec["wake"].get("cuda_resume", 0)
        elif self.eviction.startswith("offload"):
            out, into = weights[victim], weights[target]
            copy = rec["evict"].get("sleep", 0) + rec["wake"].get("wake_up", 0)
        else:
            # Nothing goes to the host; the reload writes the weights again.
            out, into = 0, weights[target]
            copy = rec["wake"].get("reload_weights", 0)
        dtoh = bw.get("dtoh_pinned_gbs") or 0
        htod = bw.get("htod_pinned_gbs") or 0
        floor = (out / 1e6 / dtoh if dtoh else 0) + (into / 1e6 / htod if htod else 0)
        rec.update(bytes_out=out, bytes_in=into, copy_ms=copy, copy_floor_ms=floor,
                   ratio=floor / copy if copy else 0.0,
                   ratio_whole=floor / rec["total_ms"] if rec["total_ms"] else 0.0)

    def medians(self, fig, recs):
        def med(f):
            v = [f(r) for r in recs]
            return float(sorted(v)[len(v) // 2]) if v else 0.0
        fig.update(drain_ms=med(lambda r: r["drain_ms"]),
                   evict_ms=med(lambda r: sum(r["evict"].values())),
                   wake_ms=med(lambda r: sum(r["wake"].values())),
                   first_token_ms=med(lambda r: r["first_token_ms"]),
                   total_ms=med(lambda r: r["total_ms"]),
                   copy_ms=med(lambda r: r["copy_ms"]),
                   copy_floor_ms=med(lambda r: r["copy_floor_ms"]),
                   ratio=med(lambda r: r["ratio"]),
                   ratio_whole=med(lambda r: r["ratio_whole"]))
        fig.setdefault("bytes_per_model", 0)

    def say_last_warning(self):
        """The supervisor's last warning: why a run broke, often."""
        try:
            warns = [ln for ln in self.log().splitlines() if "level=warn" in ln]
        except OSError:
            return
        if warns:
            self.rep.say("    the supervisor's last warning: " + warns[-1][:600])

    def judge_by_gpu(self, procs):
        """NVML lists none of the models' processes: judge by the GPU."""
        if not self.by_gpu and not set(self.engines.values()) & set(procs):
            self.by_gpu = True
            self.rep.note("NVML lists no process of the models (a PID namespace?): "
                          "their memory is judged by the GPU's memory in use")

    def together(self):
        """Two models claiming 0.45 each: both active, no switch."""
        rep = self.rep
        rep.say("-- two models claiming %.2f of the GPU each: active together" % self.fraction)
        fig = {"fraction": self.fraction}
        try:
            self.start()
            ok = True
            for i, m in enumerate("ab"):
                ok = self.served(m, i, "start")[0] and ok
            seen = self.log().count('msg="switch timing"')
            for i, m in enumerate("abab"):
                ok = self.served(m, 10 + i, "together")[0] and ok
            later = self.log().count('msg="switch timing"') - seen
            state = self.status()["state"]
            self.engines = {m: self.fake_state(m)["engine_pid"] for m in "ab"}
            nv, used = self.gpu_used()
            self.judge_by_gpu(nv)
            dev = {m: self.fake_state(m)["gpu"]["device_bytes"] for m in "ab"}
            if self.by_gpu:
                both = used - self.baseline >= 0.95 * (dev["a"] + dev["b"])
                held = {"a+b": used - self.baseline}
            else:
                both = all(nv.get(self.engines[m], 0) >= 0.95 * dev[m] for m in "ab")
                held = {m: nv.get(self.engines[m], 0) for m in "ab"}
            fig.update(state=state, switches_after_start=later, nvml_bytes=held)
            rep.say("  state %s; NVML: %s at once; %d switches after both started" % (
                state, ", ".join("%s %.2f GiB" % (k, v / GIB) for k, v in held.items()),
                later))
            rep.check(ok and later == 0 and both and "a" in state and "b" in state and
                      state.startswith("active"),
                      "two models at %.2f: every answer 200, both active, no switch" %
                      self.fraction)
        except Exception as e:  # reported, as for the switch runs
            rep.check(False, "together: %s" % (e if isinstance(e, StackError) else repr(e)))
        finally:
            self.stop()
        return fig
