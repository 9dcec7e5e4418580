#!/usr/bin/env python3
"""device_run.py -- the body of tests/gpu/device-run.sh: llmux on a real
GPU in one short run, with figures (docs/gpu.md, "On a real GPU").

    device_run.py [--bundle DIR] [--dry] [--out DIR] [--budget SECS]
                  [--requests N]

1. The machine: nvidia-smi, the driver, the GPU's memory and PCIe link;
   host<->device copy GB/s (bin/gpu_copy bandwidth).
2. The GPU module: a process holding >= 16 GiB of known data (gpu_copy
   hold) is suspended and resumed with the driver's checkpoint API as the
   supervisor does (bin/gpu_check): NVML must show its memory freed and
   back, every byte must be intact; with two GPUs of one kind, again onto
   the other GPU (UUID remapping).
3. The stack: llmux-supervisord and llmux-proxyd from the bundle with two
   llmux-fakevllm --fake-gpu cuda models claiming 0.55 of the GPU each
   (so one fits), and N requests (10) alternating between them through
   the proxy, for each of retain+cuda_suspend, offload+keep_running and
   discard+keep_running: every answer 200, every wake's weights pattern
   intact, NVML after each switch showing only the active model's memory,
   each switch's phases timed (drain, the victim's eviction, the target's
   wake, first token), and the copy phases compared with the bytes moved
   at the measured PCIe rate.
4. Two models claiming 0.45 each: active together, no switch.

--dry runs all of it against the fake GPU libraries (bundle/fakes/, a
fake GPU of 512 MiB): what `make check` runs so that this script cannot
rot. Figures go to stdout and, with --out (or $OUT), to device-run.txt and
device-run.json there, with the logs. Exit 0 when every check passed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from device_stack import Stack, StackError, fields

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1 << 30
MIB = 1 << 20
EVICTIONS = ["retain+cuda_suspend", "offload+keep_running", "discard+keep_running"]
SWITCH_FRACTION = 0.55      # two do not fit: every request for the other switches
TOGETHER_FRACTION = 0.45    # two fit: both active at once
HOLD_GIB = 16               # the GPU module check's process
DRY_GPU_MIB = 512
DRY_HOLD_MIB = 32
H100 = "NVIDIA H100 80GB HBM3"
def kv_lines(text):
    """key=value output of the GPU tools, one dict for all of it."""
    out = {}
    for line in text.splitlines():
        for k, v in fields(line).items():
            out[k] = v
    return out


class Report:
    """What is printed, the figures kept for the JSON file, the checks."""

    def __init__(self):
        self.lines = []
        self.figures = {}
        self.failed = []
        self.notes = []

    def say(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def check(self, ok, what):
        self.say("  %-66s %s" % (what, "ok" if ok else "FAILED"))
        if not ok:
            self.failed.append(what)
        return ok

    def note(self, text):
        self.notes.append(text)
        self.say("  note: " + text)


class Bundle:
    """The device bundle's programs, run as they are or from a copy that
    an unprivileged model user can read."""

    def __init__(self, path, dry, workdir):
        self.src = os.path.abspath(path)
        self.dry = dry
        self.root = os.geteuid() == 0
        self.path = self.src
        if self.root:
            # Models run without capabilities: they must reach the files.
            self.path = os.path.join(workdir, "bundle")
            shutil.copytree(self.src, self.path, symlinks=True)
            for d, _, _ in os.walk(self.path):
                os.chmod(d, 0o755)
        # CUDA's device 0 is NVML's GPU 0.
        self.env = dict(os.environ, CUDA_DEVICE_ORDER="PCI_BUS_ID")
        self.fakegpu = None
        if dry:
            self.fakegpu = os.path.join(workdir, "fakegpu")
            os.makedirs(self.fakegpu)
            os.chmod(self.fakegpu, 0o777)
            with open(os.path.join(self.fakegpu, "gpus"), "w") as f:
                f.write("GPU-8f6b1a20-1111-2222-3333-004455667788 %d %s\n"
                        % (DRY_GPU_MIB, H100))
            with open(os.path.join(self.fakegpu, "driver"), "w") as f:
                f.write("580.95.05 13000\n")
            open(os.path.join(self.fakegpu, "lock"), "w").close()
            for name in ("gpus", "driver", "lock"):
                os.chmod(os.path.join(self.fakegpu, name), 0o666)
            self.env.update(LLMUX_FAKE_GPU_DIR=self.fakegpu,
                            LLMUX_CUDA_LIBRARY=os.path.join(self.path, "fakes", "libcuda.so"),
                            LLMUX_NVML_LIBRARY=os.path.join(self.path, "fakes",
                                                            "libnvidia-ml.so"))

    def bin(self, name):
        return os.path.join(self.path, "bin", name)

    def run(self, *argv, timeout=120, input=None):
        p = subprocess.run([self.bin(argv[0])] + [str(a) for a in argv[1:]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env, timeout=timeout, input=input)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def nvml(self):
        """{pid: bytes} of every compute process, and the GPUs, per NVML."""
        rc, out = self.run("gpu_check", "procs", timeout=60)
        procs, gpus = {}, []
        for line in out.splitlines():
            f = fields(line)
            if line.startswith("proc "):
                procs[int(f["pid"])] = procs.get(int(f["pid"]), 0) + int(f["bytes"])
            elif line.startswith("gpu "):
                gpus.append(f)
        if rc != 0:
            raise RuntimeError("gpu_check procs: " + out)
        return procs, gpus


# ---- 1. the machine -------------------------------------------------------------

def machine(b, rep, out):
    rep.say("== the machine")
    fig = {"dry": b.dry, "cpus": os.cpu_count()}
    with open("/proc/meminfo") as f:
        mem = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if ":" in l}
    fig["host_memory_bytes"] = mem.get("MemTotal", 0)
    fig["host_available_bytes"] = mem.get("MemAvailable", 0)
    fig["kernel"] = os.uname().release
    smi = shutil.which("nvidia-smi")
    if smi and not b.dry:
        q = ("name,uuid,driver_version,memory.total,pcie.link.gen.current,"
             "pcie.link.gen.max,pcie.link.width.current,pcie.link.width.max")
        p = subprocess.run([smi, "--query-gpu=" + q, "--format=csv,noheader"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        fig["nvidia_smi"] = p.stdout.decode().strip().splitlines()
        for line in fig["nvidia_smi"]:
            rep.say("  gpu: " + line)
        if out:
            full = subprocess.run([smi, "-q"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=60)
            with open(os.path.join(out, "nvidia-smi-q.txt"), "wb") as f:
                f.write(full.stdout)
    else:
        rep.say("  dry run: the fake GPU (%d MiB, %s), no nvidia-smi" % (DRY_GPU_MIB, H100))
    rc, text = b.run("gpu_copy", "info")
    info = kv_lines(text)
    rep.check(rc == 0 and "total_bytes" in info, "the CUDA driver API answers (gpu_copy info)")
    if rc != 0:
        rep.say(text)
        return fig
    fig.update(device=info["device"], devices=int(info["devices"]),
               cuda_api=info["cuda_api"], gpu_total_bytes=int(info["total_bytes"]),
               gpu_free_bytes=int(info["free_bytes"]))
    procs, gpus = b.nvml()
    rep.say("  %s, %.1f GiB (%.1f GiB free), CUDA driver API %s, %d device(s); host: %d CPUs, "
            "%.0f GiB memory (%.0f GiB available)" % (
                info["device"], int(info["total_bytes"]) / GIB,
                int(info["free_bytes"]) / GIB, info["cuda_api"], int(info["devices"]),
                fig["cpus"], fig["host_memory_bytes"] / GIB, fig["host_available_bytes"] / GIB))
    fig["gpus"] = gpus
    rep.check(len(gpus) >= 1, "NVML lists the GPUs (gpu_check procs)")
    rc, text = b.run("gpu_copy", "bandwidth", 16 if b.dry else 2048, timeout=300)
    bw = kv_lines(text)
    ok = rep.check(rc == 0 and "htod_pinned_gbs" in bw, "host<->device copy measured (gpu_copy bandwidth)")
    if ok:
        for k in ("htod_pinned_gbs", "dtoh_pinned_gbs", "htod_pageable_gbs",
                  "dtoh_pageable_gbs", "pinned_alloc_gbs"):
            fig[k] = float(bw[k])
        rep.say("  copy, pinned: host->device %.1f GB/s, device->host %.1f GB/s; pageable: "
                "%.1f and %.1f GB/s; pinning host memory %.1f GB/s (%d MiB buffers)" % (
                    fig["htod_pinned_gbs"], fig["dtoh_pinned_gbs"], fig["htod_pageable_gbs"],
                    fig["dtoh_pageable_gbs"], fig["pinned_alloc_gbs"], int(bw["bytes"]) // MIB))
    else:
        rep.say(text)
    return fig


# ---- 2. the GPU module ---------------------------------------------------------

def module_check(b, rep, mib, to_gpu=None, holder=None):
    """A process holding MIB of known data (gpu_copy hold, or the argv
    holder), suspended and resumed by gpu_check; None when it failed."""
    try:
        return module_check_(b, rep, mib, to_gpu, holder)
    except Exception as e:  # reported; the run goes on
        rep.check(False, "the GPU module check ran: %r" % e)
        return None


def module_check_(b, rep, mib, to_gpu, holder):
    argv = holder or [b.bin("gpu_copy"), "hold", str(mib)]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=b.env)
    try:
        ready = p.stdout.readline().decode()
        while holder and ready and not ready.startswith("READY"):
            ready = p.stdout.readline().decode()   # PyTorch's warnings
        if not ready.startswith("READY"):
            rep.check(False, "the holder process starts: " + ready.strip())
            return None
        pid = int(fields(ready)["pid"])
        cmd = ["gpu_check", "-b", mib * MIB, pid] + ([to_gpu] if to_gpu is not None else [])
        rc, text = b.run(*cmd, timeout=600)
        res = kv_lines(text)
        p.stdin.write(b"check\n")
        p.stdin.flush()
        data = p.stdout.readline().decode()
        p.wait(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    for line in text.splitlines():
        if line.startswith("NVML lists no process"):
            rep.note(line.strip())
        if line.rstrip().endswith(("ok", "FAILED")) and not line.startswith("result"):
            rep.check(line.rstrip().endswith("ok"), line.rsplit(None, 1)[0].strip())
    rep.check(data.startswith("DATA OK"), "every byte intact after the resume (%s)" % data.strip())
    if rc != 0 or "suspend_ms" not in res:
        rep.say(text)
        return None
    fig = {"bytes": int(res["bytes"]), "suspend_ms": int(res["suspend_ms"]),
           "resume_ms": int(res["resume_ms"]), "suspend_gbs": float(res["suspend_gbs"]),
           "resume_gbs": float(res["resume_gbs"]), "asleep_bytes": int(res["asleep_bytes"]),
           "after_bytes": int(res["after_bytes"]),
           "write_gbs": float(fields(ready).get("write_gbs", 0))}
    rep.say("  %.2f GiB: suspend %d ms (%.1f GB/s), resume %d ms (%.1f GB/s); NVML: %.2f GiB "
            "before, %.2f asleep, %.2f after" % (
                fig["bytes"] / GIB, fig["suspend_ms"], fig["suspend_gbs"], fig["resume_ms"],
                fig["resume_gbs"], fig["bytes"] / GIB, fig["asleep_bytes"] / GIB,
                fig["after_bytes"] / GIB))
    return fig


def torch_check(b, rep):
    """The same with a PyTorch process (tests/gpu/holder.py), where torch is."""
    p = subprocess.run([sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if p.returncode != 0:
        rep.note("no PyTorch with CUDA here: the check with a PyTorch process was not run")
        return None
    rep.say("== the GPU module with a PyTorch process (%d GiB, tests/gpu/holder.py)" % HOLD_GIB)
    return module_check(b, rep, HOLD_GIB * 1024, holder=[
        sys.executable, os.path.join(HERE, "holder.py"), str(HOLD_GIB)])


def glibc_check(b, rep):
    """This machine's glibc against the one the bundle needs."""
    need = "0"
    with open(os.path.join(b.src, "MANIFEST")) as f:
        for line in f:
            if line.startswith("needs glibc "):
                need = line.split()[2]
    have = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]

    def version(v):
        return tuple(int(x) for x in v.split(".") if x.isdigit())
    return rep.check(version(have) >= version(need),
                     "glibc %s here, the bundle needs %s or later" % (have, need))


def gpu_module(b, rep, mach):
    rep.say("== the GPU module: CUDA suspend and resume of one process (gpu_check)")
    mib = DRY_HOLD_MIB if b.dry else HOLD_GIB * 1024
    fig = {"in_place": module_check(b, rep, mib)}
    names = [g.get("name") for g in mach.get("gpus", [])]
    if len(names) >= 2 and len(set(names)) == 1:
        rep.say("  -- again, restored onto GPU 1 (UUID remapping)")
        fig["remapped"] = module_check(b, rep, mib, to_gpu=1)
    else:
        rep.note("one GPU (or GPUs of different kinds): the restore onto another GPU "
                 "(UUID remapping) was not exercised")
        fig["remapped"] = None
    return fig


# ---- 3. and 4. the stack -------------------------------------------------------

def sizes(b, rep, mach, module, budget_s, requests):
    """MiB of weights and KV cache per model for the switch runs: the
    whole claim (as vLLM takes it) unless the host's memory or the time
    allowed cannot take it; None means the claim."""
    total = mach["gpu_total_bytes"]
    claim = SWITCH_FRACTION * total
    full = claim * 0.95
    limits = {"claim": full, "host": 0.35 * mach["host_available_bytes"]}
    m = (module or {}).get("in_place") or {}
    if m.get("suspend_ms") and m.get("resume_ms"):
        per_byte = (m["suspend_ms"] + m["resume_ms"]) / 1000.0 / m["bytes"]
        limits["time_cuda_suspend"] = budget_s / (requests * per_byte)
    if mach.get("pinned_alloc_gbs") and mach.get("dtoh_pinned_gbs"):
        per_byte = 0.5 * (1 / mach["pinned_alloc_gbs"] + 1 / mach["dtoh_pinned_gbs"] +
                          1 / mach["htod_pinned_gbs"]) / 1e9
        limits["time_offload"] = budget_s / (requests * per_byte)
    least = min(limits, key=limits.get)
    bytes_ = max(min(limits.values()), 2 * 64 * MIB if b.dry else GIB)
    rep.say("  each model: %.2f GiB of device memory (the limit: %s; claim %.2f GiB, "
            "host %.2f GiB%s)" % (
                bytes_ / GIB, least, full / GIB, limits["host"] / GIB,
                "".join(", %s %.2f GiB" % (k, v / GIB) for k, v in limits.items()
                        if k.startswith("time"))))
    if least == "claim":
        return None, limits
    half = int(bytes_ / 2 / MIB) // 2 * 2
    return (half, half), limits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle")
    ap.add_argument("--dry", action="store_true")
    ap.add_argument("--out", default=os.environ.get("OUT") or None)
    ap.add_argument("--budget", type=float, default=450.0,
                    help="seconds for the whole run (the stack runs shrink to fit)")
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--judge-by-gpu-memory", action="store_true",
                    help="judge the models' memory by the GPU's memory in use, as the run "
                    "does by itself when NVML lists none of their processes")
    args = ap.parse_args()
    start = time.monotonic()
    bundle = args.bundle or (os.path.dirname(os.path.dirname(HERE))
                             if os.path.isdir(os.path.join(HERE, "..", "..", "libexec"))
                             else os.path.join(HERE, "..", "..", "build", "device-bundle"))
    if not os.path.isdir(os.path.join(bundle, "libexec")):
        print("device-run: no bundle at %s (make device-bundle)" % bundle)
        return 2
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="llmux-device-run-")
    os.chmod(work, 0o755)
    rep = Report()
    rc = 1
    try:
        b = Bundle(bundle, args.dry, work)
        rep.say("llmux device run%s: bundle %s, %s" % (
            " (dry, fake GPU)" if args.dry else "", os.path.abspath(bundle),
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())))
        glibc_check(b, rep)
        mach = machine(b, rep, args.out)
        rep.figures["machine"] = mach
        if "gpu_total_bytes" not in mach:
            raise StackError("no GPU to run on")
        module = gpu_module(b, rep, mach)
        rep.figures["gpu_module"] = module
        left = args.budget - (time.monotonic() - start)
        per_run = max(20.0, (left - 60.0) / (len(EVICTIONS) + 0.5))
        rep.say("== the stack: two models on GPU 0, %d requests alternating through "
                "llmux-proxyd" % args.requests)
        size, limits = sizes(b, rep, mach, module, per_run * 0.7, args.requests)
        rep.figures["sizes"] = {"weights_kv_mib": size, "limits_bytes": limits}
        runs = []
        for ev in EVICTIONS:
            if time.monotonic() - start > args.budget - 30:
                rep.note("out of time: %s not run" % ev)
                continue
            s = Stack(b, rep, work, ev, SWITCH_FRACTION, size, args.out,
                      by_gpu=args.judge_by_gpu_memory)
            runs.append(s.switches(args.requests, deadline=time.monotonic() + per_run,
                                   bandwidth=mach))
        rep.figures["switch_runs"] = runs
        if time.monotonic() - start < args.budget - 20:
            s = Stack(b, rep, work, EVICTIONS[0], TOGETHER_FRACTION, None, args.out,
                      by_gpu=args.judge_by_gpu_memory)
            rep.figures["together"] = s.together()
        else:
            rep.note("out of time: the run with two models active together was not run")
        if not args.dry and time.monotonic() - start < args.budget - 90:
            rep.figures["gpu_module_torch"] = torch_check(b, rep)
        summary(rep, mach, module, runs)
        rc = 0 if not rep.failed else 1
    except StackError as e:
        rep.check(False, str(e))
    finally:
        rep.figures["elapsed_s"] = round(time.monotonic() - start, 1)
        rep.figures["failed"] = rep.failed
        rep.figures["notes"] = rep.notes
        rep.say("device-run: %s in %.0f s%s" % (
            "all checks passed" if not rep.failed else "FAILED", time.monotonic() - start,
            "" if not rep.failed else " (%d failed: %s)" % (len(rep.failed),
                                                          "; ".join(rep.failed[:5]))))
        if args.out:
            with open(os.path.join(args.out, "device-run.txt"), "w") as f:
                f.write("\n".join(rep.lines) + "\n")
            with open(os.path.join(args.out, "device-run.json"), "w") as f:
                json.dump(rep.figures, f, indent=1, sort_keys=True)
        shutil.rmtree(work, ignore_errors=True)
    return rc


def summary(rep, mach, module, runs):
    """The figures side by side: switch phases against the copy rate."""
    rep.say("== summary (ms, medians over the switches; ratio: bytes moved at the measured "
            "pinned copy rate, over the time of the phases that move them; whole: over "
            "the whole switch)")
    if mach.get("dry"):
        rep.say("  dry run: the fake driver moves no bytes over PCIe, so these figures "
                "test the script, not a GPU")
    rep.say("  %-22s %5s %8s %7s %8s %8s %8s %8s %9s %7s %7s" % (
        "eviction", "n", "GiB", "drain", "evict", "wake", "first", "total", "copy_min",
        "ratio", "whole"))
    for r in runs:
        rep.say("  %-22s %5d %8.2f %7.0f %8.0f %8.0f %8.0f %8.0f %9.0f %6.0f%% %6.0f%%" % (
            r["eviction"], r["switches"], r["bytes_per_model"] / GIB, r["drain_ms"],
            r["evict_ms"], r["wake_ms"], r["first_token_ms"], r["total_ms"],
            r["copy_floor_ms"], 100 * r["ratio"], 100 * r["ratio_whole"]))
    m = (module or {}).get("in_place")
    if m:
        rep.say("  gpu module, one process of %.2f GiB: suspend %.1f GB/s, resume %.1f GB/s; "
                "pinned copy %.1f / %.1f GB/s" % (
                    m["bytes"] / GIB, m["suspend_gbs"], m["resume_gbs"],
                    mach.get("dtoh_pinned_gbs", 0), mach.get("htod_pinned_gbs", 0)))
    for r in runs:
        if r["eviction"] in ("retain+cuda_suspend", "offload+keep_running") and r["switches"]:
            rep.say("  %s: the copy phases reach %.0f%% of the PCIe rate (goal 80%%)%s" % (
                r["eviction"], 100 * r["ratio"], "" if r["ratio"] >= 0.8 else " -- below"))


if __name__ == "__main__":
    sys.exit(main())
