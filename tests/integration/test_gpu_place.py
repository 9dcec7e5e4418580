#!/usr/bin/env python3
"""test_gpu_place.py -- GPUs as configured, through the fake NVML
(tests/fakes/libnvidia-ml.so) reporting two GPUs: a model with `gpus:`
starts with CUDA_VISIBLE_DEVICES (and CUDA_DEVICE_ORDER=PCI_BUS_ID), which
llmux-fakevllm reports in /fake/state and holds its memory on; two models
on GPUs 0 and 1 are active together and a third on GPU 0 evicts only the
first. Before a wake the free memory NVML reports is read: a neighbour
that uses more than it claims is evicted first, and a GPU that another
program fills fails the wake at once, saying which GPU, what is free and
what is needed, without starting the model."""
import harness
from harness import check
from gpu_helpers import H100, MIB, FakeGPU, GpuSup

OFFLOAD = "offload+keep_running"
GPU_MIB = 81920


def placed(sup, name):
    st = sup.fake_state(name)
    return st["cuda_visible_devices"], st["cuda_device_order"]


@harness.test
def gpus_place_models(env):
    fake = FakeGPU(env, ((H100, GPU_MIB), (H100, GPU_MIB)))
    mib = int(GPU_MIB * 0.9)
    sup = GpuSup(env, fake, {
        "a": {"args": fake.args(mib), "gpus": "[0]", "eviction": OFFLOAD},
        "b": {"args": fake.args(mib), "gpus": "[1]", "eviction": OFFLOAD},
        "c": {"args": fake.args(mib), "gpus": "[0]", "eviction": OFFLOAD}})
    sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    st = sup.status()
    check(st["state"] == "active:a,b", st["state"])
    check(placed(sup, "a") == ("0", "PCI_BUS_ID"), sup.fake_state("a"))
    check(placed(sup, "b") == ("1", "PCI_BUS_ID"), sup.fake_state("b"))
    # Each holds its memory on its own GPU, as NVML (and status) show.
    gpus = sup.wait_gpu_used(1, mib)
    check(gpus[0]["memory_used_bytes"] == mib * MIB, gpus)
    procs = {p["model"]: g["index"] for g in gpus for p in g["processes"]}
    check(procs == {"a": 0, "b": 1}, procs)
    m = sup.status()["models"]
    check(m["a"]["gpus"] == [0] and m["b"]["gpus"] == [1], m)

    # c shares GPU 0 with a: a alone is put to sleep, b serves on.
    b_before = sup.fake_state("b")
    sup.ctl_ok("wake", "c")
    st = sup.status()
    check(st["state"] == "active:b,c", st["state"])
    check(st["models"]["a"]["state"] == "sleeping", st["models"]["a"])
    check(placed(sup, "c") == ("0", "PCI_BUS_ID"), sup.fake_state("c"))
    b_after = sup.fake_state("b")
    check(not b_after["is_sleeping"] and b_after["sleeps"] == b_before["sleeps"] == 0,
          b_after)
    check(b_after["pid"] == b_before["pid"], "b was never restarted")
    check(sup.fake_state("a")["is_sleeping"], sup.fake_state("a"))


@harness.test
def a_neighbour_over_its_claim_is_evicted_first(env):
    fake = FakeGPU(env, ((H100, GPU_MIB), (H100, GPU_MIB)))
    # a claims 0.4 of GPU 0 but holds 0.7; b claims 0.4: by the claims they
    # fit together, by what NVML says b does not fit beside a.
    sup = GpuSup(env, fake, {
        "a": {"args": fake.args(int(GPU_MIB * 0.7)), "gpus": "[0]",
              "gpu_memory_utilization": 0.4, "eviction": OFFLOAD},
        "b": {"args": fake.args(int(GPU_MIB * 0.4)), "gpus": "[0]",
              "gpu_memory_utilization": 0.4, "eviction": OFFLOAD}})
    sup.start()
    sup.ctl_ok("wake", "a")
    rc, out, err = sup.ctl("wake", "b")
    check(rc == 0 and "Model b woken" in out, (rc, out, err))
    st = sup.status()
    check(st["state"] == "active:b", st["state"])
    check(st["models"]["a"]["state"] == "sleeping", st["models"]["a"])
    check(sup.fake_state("a")["is_sleeping"], sup.fake_state("a"))
    # b was started once, and not refused by its GPU first.
    check(st["models"]["b"]["last_error"] is None, st["models"]["b"])
    log = sup.log_text()
    check('msg="wake needs more room, evicting first" model=b victims=1 '
          'reason="not enough free memory on GPU 0 for b:' in log, log[-3000:])
    check("CUDA out of memory" not in log, log[-3000:])
    check("wake b: drain at" in err and "wake a: sleep at" in err, err)


@harness.test
def a_full_gpu_fails_the_wake_at_once(env):
    fake = FakeGPU(env, ((H100, GPU_MIB), (H100, GPU_MIB)))
    # Another program holds 60 GiB of GPU 0; c needs 0.5 of it (40 GiB).
    fake.extra(0, 60 * 1024)
    sup = GpuSup(env, fake, {
        "c": {"args": fake.args(40 * 1024), "gpus": "[0]",
              "gpu_memory_utilization": 0.5, "eviction": OFFLOAD}})
    sup.start()
    rc, out, err = sup.ctl("wake", "c")
    why = ("not enough free memory on GPU 0 for c: %d bytes free (20.0 GiB), "
           "%d needed (40.0 GiB: gpu_memory_utilization 0.50 of 80.0 GiB)"
           % (20 * 1024 * MIB, 40 * 1024 * MIB))
    check(rc == 1 and why in err, (rc, out, err))
    m = sup.model("c")
    check(m["state"] == "stopped" and m["process_state"] == "not_started", m)
    check(m["last_error"] == why, m)
    check(sup.model_pids("c") == [], "the model was never started")
    check(fake.procs() == {}, fake.procs())
    # The other program is gone: the next wake reads NVML again and goes.
    fake.extra(0, 0)
    sup.ctl_ok("wake", "c")
    check(sup.status()["state"] == "active:c", sup.status())
    check(placed(sup, "c") == ("0", "PCI_BUS_ID"), sup.fake_state("c"))


if __name__ == "__main__":
    harness.main()
