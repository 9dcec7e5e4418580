"""test_device_run.py -- tests/gpu/device-run.sh --dry: the real-GPU run,
whole, against the bundle's fake GPU libraries, so that the script, the
bundle and the stand-in's --fake-gpu cuda mode cannot rot before a GPU is
lent. It must pass every check and write its figures: three switch runs
of ten switches each (cuda_suspend, offload, discard) whose every answer
was 200 with the weights intact and NVML right, and two models active
together without a switch; and the same judging the models' memory by
the GPU's memory in use, as where NVML lists other pids (a container)."""
import json
import os
import subprocess

import harness
from gpu_helpers import FakeGPU
from harness import check, test


@test
def dry_run_passes_and_writes_its_figures(env):
    bundle = os.path.join(harness.BUILD, "device-bundle")
    check(os.path.isdir(bundle), "no bundle at %s: run make device-bundle" % bundle)
    out = env.path("out")
    p = subprocess.run([os.path.join(harness.ROOT, "tests", "gpu", "device-run.sh"), "--dry",
                        "--bundle", bundle, "--out", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    text = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and "device-run: all checks passed" in text,
          "device-run.sh --dry: exit %d\n%s" % (p.returncode, text[-6000:]))
    with open(os.path.join(out, "device-run.txt")) as f:
        check(f.read().strip().endswith(text.strip().splitlines()[-1]), "the summary is kept")
    with open(os.path.join(out, "device-run.json")) as f:
        fig = json.load(f)
    check(fig["failed"] == [] and fig["machine"]["dry"], fig["failed"])
    check(fig["gpu_module"]["in_place"]["asleep_bytes"] == 0, fig["gpu_module"])
    runs = {r["eviction"]: r for r in fig["switch_runs"]}
    check(sorted(runs) == ["discard+keep_running", "offload+keep_running",
                           "retain+cuda_suspend"], sorted(runs))
    for ev, r in runs.items():
        check(r["switches"] == 10 and len(r["records"]) == 10, (ev, r["switches"]))
        for rec in r["records"]:
            check(rec["status"] == 200 and rec["error"] is None and rec["weights_intact"] and
                  rec["phases_as_asked"], (ev, rec))
            check(rec["nvml_victim_bytes"] <= rec["nvml_target_bytes"] // 10, (ev, rec))
            check(rec["total_ms"] > 0 and rec["wake"], (ev, rec))
    cuda = runs["retain+cuda_suspend"]["records"][0]
    check("cuda_suspend" in cuda["evict"] and "cuda_resume" in cuda["wake"], cuda)
    check("reload_weights" in runs["discard+keep_running"]["records"][0]["wake"], runs)
    together = fig["together"]
    check(together["switches_after_start"] == 0 and together["state"] in ("active:a,b",
                                                                         "active:b,a"), together)
    check(os.path.isfile(os.path.join(out, "logs", "retain+cuda_suspend-0.55",
                                      "supervisord.log")), os.listdir(out))


@test
def dry_run_judging_by_the_gpus_memory(env):
    """As where NVML lists none of the models' processes (a container):
    every check judged by the GPU's memory in use instead."""
    bundle = os.path.join(harness.BUILD, "device-bundle")
    out = env.path("out")
    p = subprocess.run([os.path.join(harness.ROOT, "tests", "gpu", "device-run.sh"), "--dry",
                        "--bundle", bundle, "--out", out, "--requests", "2",
                        "--judge-by-gpu-memory"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    text = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and "device-run: all checks passed" in text,
          "device-run.sh --dry --judge-by-gpu-memory: exit %d\n%s" % (p.returncode,
                                                                     text[-6000:]))
    with open(os.path.join(out, "device-run.json")) as f:
        fig = json.load(f)
    for r in fig["switch_runs"]:
        check(r["switches"] == 2 and all(rec["weights_intact"] for rec in r["records"]), r)
    check(list(fig["together"]["nvml_bytes"]) == ["a+b"], fig["together"])


def gpu_check(bundle, e, pid):
    p = subprocess.run([os.path.join(bundle, "bin", "gpu_check"), "-b", str(64 << 20),
                        str(pid)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=e, timeout=60)
    return p.returncode, p.stdout.decode()


@test
def gpu_check_without_the_process_in_nvml(env):
    """gpu_check when NVML reports other pids (the fake's nvml_pid_offset):
    the suspend and resume judged by the GPU's memory in use."""
    bundle = os.path.join(harness.BUILD, "device-bundle")
    fake = FakeGPU(env, gpus=(("NVIDIA H100 80GB HBM3", 1024),))
    fake.write("nvml_pid_offset", "100000\n")
    e = dict(os.environ, LLMUX_FAKE_GPU_DIR=fake.dir,
             LLMUX_CUDA_LIBRARY=os.path.join(bundle, "fakes", "libcuda.so"),
             LLMUX_NVML_LIBRARY=os.path.join(bundle, "fakes", "libnvidia-ml.so"))
    hold = subprocess.Popen([os.path.join(bundle, "bin", "gpu_copy"), "hold", "64"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=e)
    try:
        ready = hold.stdout.readline().decode()
        check(ready.startswith("READY pid="), ready)
        pid = int(ready.split()[1][4:])
        rc, out = gpu_check(bundle, e, pid)
        check(rc == 0 and "NVML lists no process %d" % pid in out and
              "pid_listed=0" in out and "result=ok" in out, out)
        # A suspend that frees nothing is still caught.
        fake.fault("cuda_checkpoint_fail")
        rc, out = gpu_check(bundle, e, pid)
        freed = [ln for ln in out.splitlines() if ln.startswith("NVML: the memory was freed")]
        check(rc == 1 and freed and freed[0].endswith("FAILED") and "result=failed" in out,
              out)
        hold.stdin.write(b"check\n")
        hold.stdin.flush()
        check(hold.stdout.readline().startswith(b"DATA OK"), "the data survived")
    finally:
        hold.kill()
        hold.wait()


if __name__ == "__main__":

    harness.main()
