#!/usr/bin/env python3
"""test_gpu_telemetry.py -- NVML telemetry (through the test suite's fake
libnvidia-ml.so): each GPU's memory and processes in `status` (attributed
to the models they belong to), in `llmuxctl status`, in the supervisor's
metrics and in the proxy's /metrics that relays them; and the validation
table of a fake-GPU model, with the GPU memory before, asleep and awake and
the time of each phase."""
import harness
from harness import check
from gpu_helpers import A100, H100, MIB, FakeGPU, GpuSup


@harness.test
def status_and_metrics(env):
    fake = FakeGPU(env, ((H100, 81920), (A100, 40960)))
    fake.extra(1, 512)
    # One model on each GPU, so both are awake at once (gpus: places b on
    # GPU 1 through CUDA_VISIBLE_DEVICES).
    sup = GpuSup(env, fake, {"a": {"args": fake.args(3000), "gpus": "[0]"},
                             "b": {"args": fake.args(1500), "gpus": "[1]"}})
    sup.start()
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("wake", "b")
    g = sup.wait_gpu_used(1, 2012)
    check([x["name"] for x in g] == [H100, A100], g)
    check(g[0]["memory_total_bytes"] == 81920 * MIB and g[1]["memory_total_bytes"] == 40960 * MIB,
          g)
    check(g[0]["uuid"].startswith("GPU-8f6b1a20-") and g[0]["memory_used_bytes"] == 3000 * MIB,
          g)
    check(g[0]["memory_free_bytes"] == (81920 - 3000) * MIB, g)
    procs = {p["model"]: p for x in g for p in x["processes"]}
    check(procs["a"]["memory_bytes"] == 3000 * MIB and procs["b"]["memory_bytes"] == 1500 * MIB,
          procs)
    check(procs["a"]["pid"] in sup.model_pids("a"), procs)
    st = sup.status()["models"]
    check(st["a"]["gpus"] == [0] and st["b"]["gpus"] == [1], st)

    rc, out, err = sup.ctl("status")
    check(rc == 0, err)
    lines = out.split("\n\n")[1].splitlines()
    check(lines[0].split() == ["GPU", "NAME", "USED_MIB", "TOTAL_MIB", "FREE_MIB", "PROCESSES"],
          out)
    check(lines[1].startswith("0    NVIDIA H100 80GB HBM3") and " 3000 " in lines[1] and
          "a:%d(3000 MiB)" % procs["a"]["pid"] in lines[1], out)

    text = sup.ctl_ok("metrics")
    for line in ('llmux_gpu_memory_total_bytes{gpu="0"} %d' % (81920 * MIB),
                 'llmux_gpu_memory_used_bytes{gpu="0"} %d' % (3000 * MIB),
                 'llmux_gpu_memory_used_bytes{gpu="1"} %d' % (2012 * MIB),
                 'llmux_gpu_memory_free_bytes{gpu="1"} %d' % ((40960 - 2012) * MIB),
                 'llmux_gpu_process_memory_bytes{gpu="0",model="a"} %d' % (3000 * MIB),
                 'llmux_gpu_process_memory_bytes{gpu="1",model="b"} %d' % (1500 * MIB),
                 'llmux_gpu_info{gpu="1",name="%s",uuid="%s"} 1' % (A100, g[1]["uuid"])):
        check(line in text, (line, text[-3000:]))

    # The proxy serves the supervisor's metrics on its /metrics.
    port, admin = harness.free_port(), harness.free_port()
    env.spawn("proxyd", [harness.binary("llmux-proxyd"), "-v", "--socket", sup.socket,
                         "--listen", "127.0.0.1:%d" % port,
                         "--admin-listen", "127.0.0.1:%d" % admin])

    def scraped():
        status, _, body = harness.http(admin, "GET", "/metrics")
        return body.decode() if status == 200 and b"llmux_gpu_memory_used_bytes" in body \
            else None
    body = harness.wait_until(scraped, 20, "the proxy's /metrics with GPU lines")
    check('llmux_gpu_memory_used_bytes{gpu="0"} %d' % (3000 * MIB) in body, body[-2000:])
    check('llmux_gpu_process_memory_bytes{gpu="1",model="b"}' in body, body[-2000:])


@harness.test
def no_telemetry_without_nvml(env):
    fake = FakeGPU(env)
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000)}})
    # No fake NVML: status has no GPUs, metrics no GPU lines.
    sup.fake = type("NoNvml", (), {"env": lambda self, cuda=None: {
        "LLMUX_NVML_LIBRARY": env.path("no-such-libnvidia-ml.so")}})()
    sup.start()
    sup.ctl_ok("wake", "a")
    st = sup.status()
    check(st["gpus"] is None and st["models"]["a"]["gpus"] == [], st)
    check("llmux_gpu_" not in sup.ctl_ok("metrics"), "no GPU metrics")


@harness.test
def validation_table(env):
    fake = FakeGPU(env)
    sup = GpuSup(env, fake, {"a": {"args": fake.args(4000)}})
    sup.start()
    rc, out, err = sup.ctl("validate", "a", "--policies",
                           "offload+keep_running,retain+cuda_suspend,discard+cuda_suspend")
    check(rc == 0 and "Model a: 3 of 3 evictions passed" in out, (rc, out, err))
    table, phases = out.split("\n\n")[:2]
    rows = {l.split()[0]: l.split() for l in table.splitlines()[2:]}
    # EVICTION SLEEP(2) WAKE(2) BEFORE ASLEEP AWAKE MATCH PASS ERROR
    check(rows["offload+keep_running"][5:8] == ["4000", "80", "4000"], table)
    check(rows["retain+cuda_suspend"][5:8] == ["4000", "0", "4000"], table)
    check(rows["discard+cuda_suspend"][5:8] == ["4000", "0", "4000"], table)
    for r in rows.values():
        check(r[-3:] == ["yes", "PASS", "-"], table)
    check("  retain+cuda_suspend: sleep: cuda_suspend " in phases and
          "; wake: cuda_resume " in phases, phases)
    check("  discard+cuda_suspend: sleep: discard " in phases and ", cuda_suspend " in phases,
          phases)
    rc, body = sup.ctl_json("validate", "a", "--policies", "retain+cuda_suspend")
    r = body["results"][0]
    check(r["gpu_mib_before"] == 4000 and r["gpu_mib_asleep"] == 0 and
          r["gpu_mib_awake"] == 4000, r)
    check([p["phase"] for p in r["phases"]] == ["cuda_suspend", "cuda_resume", "health"] and
          [p["op"] for p in r["phases"]] == ["sleep", "wake", "wake"], r)


if __name__ == "__main__":
    harness.main()
