#!/usr/bin/env python3
"""test_gpu_telemetry.py -- NVML telemetry (through the test suite's fake
libnvidia-ml.so): each GPU's memory and processes in `status` (attributed
to the models they belong to), in `llmuxctl status`, in the supervisor's
metrics and in the proxy's /metrics that relays them; a `gpu` event on
the stream when a model's memory moves (with the new figures, as `llmuxctl
events` prints them and `llmuxctl top` shows them), and none for what does
not move or moves too little; and the validation table of a fake-GPU
model, with the GPU memory before, asleep and awake and the time of each
phase."""
import json
import re

import harness
from harness import check, wait_until
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


def gpu_events(proc):
    """The gpu events `llmuxctl events --json` printed so far."""
    return [e for e in (json.loads(l) for l in proc.output().splitlines()
                        if l.startswith("{")) if e["kind"] == "gpu"]


@harness.test
def gpu_events_when_memory_moves(env):
    fake = FakeGPU(env, ((H100, 81920), (H100, 81920)))
    sup = GpuSup(env, fake, {"a": {"args": fake.args(3000), "gpus": "[0]"}})
    sup.start()
    ctl = [harness.binary("llmuxctl"), "--socket", sup.socket]
    js = env.spawn("events-json", ctl + ["events", "--json", "--since", "0"])
    text = env.spawn("events-text", ctl + ["events", "--since", "0"])
    top = env.spawn("top", ctl + ["top"])
    # The first reading is news: the GPUs, nothing on them.
    first = wait_until(lambda: gpu_events(js), 20, "the first gpu event")[0]
    check(first["gpus"] == [{"index": i, "memory_used_bytes": 0,
                             "memory_total_bytes": 81920 * MIB} for i in (0, 1)] and
          first["models"] == {"a": {"gpu_memory_bytes": 0, "gpus": []}} and
          "model" not in first, first)

    # a starts and holds 3000 MiB on GPU 0: told when its wake ends.
    sup.ctl_ok("wake", "a")
    woke = wait_until(lambda: [e for e in gpu_events(js) if
                               e["models"]["a"]["gpu_memory_bytes"] == 3000 * MIB], 20,
                      "a gpu event with a's 3000 MiB")[0]
    check(woke["models"]["a"]["gpus"] == [0] and
          [g["memory_used_bytes"] for g in woke["gpus"]] == [3000 * MIB, 0], woke)
    (pid,) = [p for p, x in fake.procs().items() if x["mib"] == 3000]

    # Moves under 64 MiB are not news: 32 MiB used outside llmux on GPU 1,
    # then 40 MiB more for a. Status shows both (the readings were made)...
    fake.extra(1, 32)
    sup.wait_gpu_used(1, 32)
    fake.set_mib(pid, 3040)
    sup.wait_gpu_used(0, 3040)
    check(sup.status()["models"]["a"]["gpu_memory_bytes"] == 3040 * MIB, sup.status())
    # ... and a's memory doubling is: the next gpu event after a's wake is
    # this one (none came for the small moves, nor for readings of nothing
    # new), with every figure as status has it.
    fake.set_mib(pid, 6000)
    moved = wait_until(lambda: [e for e in gpu_events(js) if e["seq"] > woke["seq"]], 20,
                       "a gpu event after a's memory moved")[0]
    check(moved["models"]["a"] == {"gpu_memory_bytes": 6000 * MIB, "gpus": [0]} and
          [g["memory_used_bytes"] for g in moved["gpus"]] == [6000 * MIB, 32 * MIB], moved)
    check(len([e for e in gpu_events(js) if e["seq"] <= moved["seq"]]) == 3,
          gpu_events(js))

    # As a line: each GPU's used/total and each model's memory @ its GPUs.
    line = wait_until(lambda: [l for l in text.output().splitlines()
                               if " gpu - " in l and "a:6000MiB" in l], 10,
                      "the gpu event as a line")[0]
    check(re.match(r"^\d\d:\d\d:\d\d\.\d{3} gpu - gpus=0:6000/81920MiB,1:32/81920MiB "
                   r"models=a:6000MiB@0$", line), line)
    # llmuxctl top (lines, without a terminal) shows the new memory.
    wait_until(lambda: re.search(r"^  model=a .* gpu=5\.9G ", top.output(), re.M), 10,
               "top showing a's 6000 MiB")


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
