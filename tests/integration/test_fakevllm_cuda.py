"""test_fakevllm_cuda.py -- llmux-fakevllm --fake-gpu cuda against the test
suite's fake libcuda.so (tests/fakes/libcuda.c): the claim of
--gpu-memory-utilization as device memory, sleep level 1 (the weights to
pinned host memory, the rest freed), level 2 and reload_weights, the
weights pattern checked at each wake and request (and a damaged copy or
restore found, answering 500 with the reason), vLLM's refusals at start,
and a CUDA suspend driven by the supervisor."""
import os

import harness
from harness import check, test, wait_until
import fakevllm_helpers as fv
from gpu_helpers import FakeGPU, GpuSup, MIB

GPU_MIB = 1024


def cuda_env(fake):
    return {"LLMUX_FAKE_GPU_DIR": fake.dir,
            "LLMUX_CUDA_LIBRARY": harness.fake("libcuda.so")}


def start(env, fake, *args, wait=True):
    old = dict(os.environ)
    os.environ.update(cuda_env(fake))
    try:
        return fv.start(env, "--fake-gpu", "cuda", "--fake-engine-process", *args,
                        wait=wait)
    finally:
        os.environ.clear()
        os.environ.update(old)


def gpu(port):
    return fv.state(port)["gpu"]


def held_mib(fake, pid):
    """What the fake driver (and so the fake NVML) says pid holds."""
    p = fake.procs().get(pid)
    return p["mib"] if p and p["state"] != "checkpointed" else 0


def ask(port):
    return harness.http_json(port, "POST", "/v1/completions",
                             {"model": "alpha", "prompt": "Hi", "max_tokens": 4,
                              "temperature": 0}, timeout=30)


@test
def claim_offload_discard_reload(env):
    fake = FakeGPU(env, gpus=(("NVIDIA H100 80GB HBM3", GPU_MIB),))
    p, port = start(env, fake, "--gpu-memory-utilization", "0.5")
    s = fv.state(port)
    g, pid = s["gpu"], s["engine_pid"]
    claim = GPU_MIB * MIB // 2
    check(g["mode"] == "cuda" and g["device"] == "NVIDIA H100 80GB HBM3", g)
    check(g["total_bytes"] == GPU_MIB * MIB and g["claim_bytes"] == claim, g)
    # As vLLM: the weights, then the KV cache takes the claim less 5 %.
    check(g["weights_bytes"] == claim // 2, g)
    check(g["kv_cache_bytes"] == claim - claim // 2 - (claim // 20 + (2 << 20) - 1)
          // (2 << 20) * (2 << 20), g)
    check(g["device_bytes"] == g["weights_bytes"] + g["kv_cache_bytes"], g)
    check(g["pattern_checks"] == 1 and g["pattern_failures"] == 0 and
          g["pattern_error"] is None, g)
    ctx = GPU_MIB // 160
    check(held_mib(fake, pid) == ctx + g["device_bytes"] // MIB, (fake.procs(), pid))
    check(pid != p.pid and fake.procs()[pid]["owner"] == pid, "the engine is the CUDA process")

    status, obj = ask(port)
    check(status == 200, obj)
    check(gpu(port)["pattern_checks"] == 2, "a request checks the weights first")

    # Level 1: the weights to host memory, every allocation freed.
    check(fv.post(port, "/sleep?level=1")[0] == 200)
    g = gpu(port)
    check(g["device_bytes"] == 0 and g["host_bytes"] == g["weights_bytes"], g)
    check(held_mib(fake, pid) == ctx, fake.procs())
    check(fv.post(port, "/wake_up")[0] == 200)
    g = gpu(port)
    check(g["device_bytes"] == g["weights_bytes"] + g["kv_cache_bytes"] and
          g["host_bytes"] == 0 and g["pattern_checks"] == 3 and g["pattern_failures"] == 0, g)
    check(ask(port)[0] == 200)

    # Level 2: nothing kept; the wake maps empty memory until the reload.
    check(fv.post(port, "/sleep?level=2")[0] == 200)
    g = gpu(port)
    check(g["device_bytes"] == 0 and g["host_bytes"] == 0, g)
    check(held_mib(fake, pid) == ctx, fake.procs())
    check(fv.post(port, "/wake_up")[0] == 200)
    checks = gpu(port)["pattern_checks"]
    status, obj = ask(port)
    check(status == 500 and "discarded" in obj["error"]["message"], obj)
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    g = gpu(port)
    check(g["pattern_checks"] == checks + 1 and g["pattern_error"] is None, g)
    check(ask(port)[0] == 200)
    check(held_mib(fake, pid) == ctx + g["device_bytes"] // MIB, fake.procs())


@test
def a_damaged_copy_fails_the_wake_and_the_requests(env):
    fake = FakeGPU(env, gpus=(("NVIDIA H100 80GB HBM3", GPU_MIB),))
    p, port = start(env, fake, "--gpu-memory-utilization", "0.4")
    check(fv.post(port, "/sleep?level=1")[0] == 200)
    fake.fault("cuda_copy_corrupt")
    status, obj = fv.post(port, "/wake_up")
    check(status == 500, (status, obj))
    why = obj["error"]["message"]
    check(why.startswith("the weights are corrupt: allocation ") and
          "holds 0x0000000000000000, expected 0x" in why, why)
    check(fake.fault_left("cuda_copy_corrupt") == 0, "the fault fired once")
    g = gpu(port)
    check(g["pattern_failures"] == 1 and g["pattern_error"] == why, g)
    # Every request says so (each checks the weights again).
    status, obj = ask(port)
    check(status == 500 and obj["error"]["message"] == why, obj)
    # A reload writes them again: served once more.
    check(fv.post(port, "/collective_rpc", {"method": "reload_weights"})[0] == 200)
    check(ask(port)[0] == 200 and gpu(port)["pattern_error"] is None)


@test
def vllm_refusals_at_start(env):
    fake = FakeGPU(env, gpus=(("NVIDIA H100 80GB HBM3", GPU_MIB),))
    # Something else holds most of the GPU.
    fake.extra(0, 800)
    p, port = start(env, fake, "--gpu-memory-utilization", "0.5", wait=False)
    check(p.wait(30) == 1, "exit 1")
    check("Free memory on device" in p.output() and
          "is less than desired GPU memory utilization (0.50" in p.output(), p.output())
    fake.extra(0, 0)
    p, port = start(env, fake, "--gpu-memory-utilization", "0.2", "--fake-weights-mb", "400",
                    wait=False)
    check(p.wait(30) == 1 and "No available memory for the cache blocks" in p.output(),
          p.output())
    # No driver.
    old = harness.fake
    harness.fake = lambda name: "/nonexistent/" + name
    try:
        p, port = start(env, fake, wait=False)
    finally:
        harness.fake = old
    check(p.wait(30) == 1 and "--fake-gpu cuda: cannot load /nonexistent/libcuda.so" in
          p.output(), p.output())


@test
def cuda_suspend_by_the_supervisor(env):
    fake = FakeGPU(env, gpus=(("NVIDIA H100 80GB HBM3", GPU_MIB),))
    args = ["--fake-gpu", "cuda", "--gpu-memory-utilization", "0.4", "--fake-engine-process",
            "--fake-admin"]
    sup = GpuSup(env, fake, {"a": {"args": args, "eviction": "retain+cuda_suspend"}})
    sup.start()
    sup.ctl_ok("wake", "a")
    pid = sup.fake_state("a")["engine_pid"]
    held = held_mib(fake, pid)
    check(held >= 0.9 * 0.4 * GPU_MIB, fake.procs())
    for damaged in (False, True):
        sup.ctl_ok("sleep", "a")
        check(fake.proc_states([pid]) == ["checkpointed"] and held_mib(fake, pid) == 0,
              fake.procs())
        if damaged:
            fake.fault("cuda_restore_corrupt")
        checks = sup.fake_state("a")["gpu"]["pattern_checks"]
        sup.ctl_ok("wake", "a")
        check(fake.proc_states([pid]) == ["running"] and held_mib(fake, pid) == held,
              fake.procs())
        status, text = sup.ask("a")
        g = sup.fake_state("a")["gpu"]
        check(g["pattern_checks"] == checks + 1, "the request checked the weights: %r" % g)
        if not damaged:
            check(status == 200, (status, text))
        else:
            why = text["error"]["message"]
            check(status == 500 and why.startswith("the weights are corrupt"), (status, text))
            check(g["pattern_error"] == why, g)
    wait_until(lambda: "restore %d corrupts its memory" % pid in fake.calls(), 5,
               "the fake restore's damage to be logged")


if __name__ == "__main__":
    harness.main()
