"""gpu_helpers.py -- what the GPU scenarios share: a fake GPU state
directory (tests/fakes/fakegpu.h, docs/gpu.md) with the fake libcuda.so,
libnvidia-ml.so and criu built by the test suite, and a supervisor that
finds them through its environment (LLMUX_CUDA_LIBRARY,
LLMUX_NVML_LIBRARY, LLMUX_FAKE_GPU_DIR) and its config (criu_path)."""
import fcntl
import json
import os

import harness
from supervisor_helpers import NOBODY, Sup

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
MIB = 1024 * 1024


def uuid(i):
    return "GPU-%08x-1111-2222-3333-%012x" % (0x8f6b1a20 + i, 0x4455667788 + i)


class FakeGPU:
    """The fake GPUs of one test: names and sizes, driver, faults."""

    def __init__(self, env, gpus=((H100, 81920), (H100, 81920)),
                 driver="570.86.15 12080"):
        self.dir = env.path("fakegpu")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.set_gpus(gpus)
        self.write("driver", driver + "\n")
        self.write("lock", "")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o666)

    def read(self, name):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()
        except OSError:
            return None

    def set_gpus(self, gpus):
        self.gpus = list(gpus)
        self.write("gpus", "".join("%s %d %s\n" % (uuid(i), mib, name)
                                   for i, (name, mib) in enumerate(self.gpus)))

    def fault(self, name, count=1):
        self.write("fault." + name, "%d\n" % count)

    def fault_left(self, name):
        text = self.read("fault." + name)
        return int(text) if text else 0

    def extra(self, gpu, mib):
        """Memory of GPU gpu held by something outside llmux."""
        self.write("extra.%d" % gpu, "%d\n" % mib)

    def procs(self):
        """{pid: {gpu, mib, state, owner}} of every registered process."""
        out = {}
        for name in os.listdir(self.dir):
            if not name.startswith("proc.") or name.endswith(".tmp"):
                continue
            try:
                pid = int(name[5:])
            except ValueError:
                continue
            text = self.read(name) or ""
            kv = dict(w.split("=", 1) for w in text.split() if "=" in w)
            if kv:
                out[pid] = {"gpu": int(kv["gpu"]), "mib": int(kv["mib"]),
                            "state": kv["state"], "owner": int(kv.get("owner", 0))}
        return out

    def set_mib(self, pid, mib):
        """What a registered GPU process holds, changed as the fakes change
        it: under the lock, the file replaced whole (a reader never sees
        it half written)."""
        path = os.path.join(self.dir, "proc.%d" % pid)
        with open(os.path.join(self.dir, "lock")) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(path) as f:
                kv = [w.split("=", 1) for w in f.read().split()]
            text = " ".join("%s=%s" % (k, mib if k == "mib" else v) for k, v in kv)
            tmp = os.path.join(self.dir, ".proc.%d.test" % pid)
            with open(tmp, "w") as f:
                f.write(text + "\n")
            os.chmod(tmp, 0o666)
            os.rename(tmp, path)

    def proc_states(self, pids):
        p = self.procs()
        return [p[x]["state"] if x in p else None for x in pids]

    def calls(self):
        return (self.read("calls") or "").splitlines()

    def criu_calls(self):
        return (self.read("criu.calls") or "").splitlines()

    def env(self, cuda="libcuda.so"):
        return {"LLMUX_FAKE_GPU_DIR": self.dir,
                "LLMUX_CUDA_LIBRARY": harness.fake(cuda),
                "LLMUX_NVML_LIBRARY": harness.fake("libnvidia-ml.so")}

    def args(self, mb=1000, tp=1, engine=True):
        """llmux-fakevllm options of a model holding mb MiB per rank."""
        a = ["--fake-admin", "--fake-gpu-dir", self.dir, "--fake-gpu-mb", str(mb)]
        if engine:
            a.append("--fake-engine-process")
        if tp > 1:
            a += ["-tp", str(tp), "--enforce-eager", "--disable-custom-all-reduce"]
        return a


class GpuSup(Sup):
    """A supervisor whose GPU libraries and criu are the fakes."""

    def __init__(self, env, fake, models, extra="", cuda="libcuda.so", **kw):
        self.fake = fake
        self.cuda = cuda
        self.images = env.path("images")
        os.makedirs(self.images, exist_ok=True)
        extra = ("checkpoint:\n  criu_path: %s\n  images_dir: %s\n"
                 % (harness.fake("criu"), self.images)) + extra
        super().__init__(env, models, extra, **kw)
        # The supervisor's own, not writable by others (base/fs.c).
        os.chmod(self.images, 0o700)
        if self.unprivileged:
            os.chown(self.images, NOBODY, NOBODY)

    def start(self, name="supervisord", wait=True):
        self.proc = self.env.spawn(name, self.argv(), extra_env=self.fake.env(self.cuda))
        if wait:
            harness.wait_until(lambda: self.ctl("status")[0] == 0, 20,
                               "the supervisor to answer")
        return self.proc

    def gpus(self):
        return self.status()["gpus"]

    def wait_gpu_used(self, gpu, mib, timeout=20):
        """Wait until the supervisor's telemetry shows mib MiB used on gpu."""
        def holds():
            g = self.gpus()
            return g if g and g[gpu]["memory_used_bytes"] == mib * MIB else None
        return harness.wait_until(holds, timeout, "GPU %d to show %d MiB used" % (gpu, mib))

    def ask(self, name, prompt="Name three primary colours.", max_tokens=12):
        """A deterministic completion straight from the model: (status, text)."""
        status, _, body = harness.http(self.ports[name], "POST", "/v1/completions",
                                       {"model": name, "prompt": prompt,
                                        "max_tokens": max_tokens, "temperature": 0},
                                       timeout=30)
        try:
            obj = json.loads(body)
        except ValueError:
            return status, body
        if status == 200:
            return status, obj["choices"][0]["text"]
        return status, obj


def phases(body):
    return [p["phase"] for p in body["phases"]]
