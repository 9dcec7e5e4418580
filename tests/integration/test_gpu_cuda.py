#!/usr/bin/env python3
"""test_gpu_cuda.py -- CUDA suspend through the driver's checkpoint API,
against the test suite's fake libcuda.so and libnvidia-ml.so: a model's GPU
processes locked and checkpointed (their memory freed) and restored and
unlocked (the same process answering the same), a TP>1 model's several GPU
processes in parallel, a lock that times out and a checkpoint that fails
(escalated to stop), a process left in the FAILED state (stopped and
started afresh, never served), restore onto another GPU of the same kind
when migration is on (and refused when it is off or no such GPU has room),
a driver too old (what it lacks, named), and a model with no GPU process."""
import harness
from harness import check
from gpu_helpers import A100, H100, FakeGPU, GpuSup, phases
from supervisor_helpers import alive


def one_model(env, eviction="retain+cuda_suspend", mb=2000, tp=1, extra="",
              gpus=((H100, 81920), (H100, 81920)), cuda="libcuda.so", engine=True):
    fake = FakeGPU(env, gpus)
    sup = GpuSup(env, fake, {"a": {"args": fake.args(mb, tp, engine),
                                   "eviction": eviction}}, extra, cuda=cuda)
    sup.start()
    return fake, sup


def gpu_pids(fake, pids):
    return sorted(p for p in fake.procs() if p in pids)


@harness.test
def suspend_and_resume(env):
    fake, sup = one_model(env)
    sup.ctl_ok("wake", "a")
    pid = sup.model("a")["pid"]
    status, before = sup.ask("a")
    check(status == 200, before)
    tree = sup.model_pids("a")
    gp = gpu_pids(fake, tree)
    check(len(gp) == 1 and gp[0] != pid, "the engine process holds the GPU: %r" % gp)
    sup.wait_gpu_used(0, 2000)

    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and phases(body) == ["cuda_suspend"] and not body["escalated"], body)
    m = sup.model("a")
    check(m["process_state"] == "sleeping:Retain+CudaSuspend" and m["pid"] == pid, m)
    check(fake.proc_states(gp) == ["checkpointed"], fake.procs())
    check("lock %d" % gp[0] in fake.calls() and "checkpoint %d" % gp[0] in fake.calls(),
          fake.calls())
    check(all(alive(p) for p in tree), "the processes are kept")
    sup.wait_gpu_used(0, 0)
    # A suspended process runs no kernel: the model cannot answer.
    status, err = sup.ask("a")
    check(status == 500 and "checkpointed" in str(err), (status, err))

    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["cuda_resume", "health"], body)
    check(not body["moved"] and body["gpus"] == [0], body)
    check(fake.proc_states(gp) == ["running"], fake.procs())
    check(sup.model("a")["pid"] == pid, "the same process")
    status, after = sup.ask("a")
    check(status == 200 and after == before, (before, after))
    sup.wait_gpu_used(0, 2000)
    st = sup.status()
    check(st["models"]["a"]["gpus"] == [0], st["models"]["a"])
    check(st["models"]["a"]["gpu_memory_bytes"] == 2000 * 1024 * 1024, st["models"]["a"])

    # With the weights offloaded first: sleep, then suspend; wake the other way.
    rc, body = sup.ctl_json("sleep", "a", "--eviction", "offload+cuda_suspend")
    check(rc == 0 and phases(body) == ["sleep", "cuda_suspend"], body)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["cuda_resume", "wake_up", "health"], body)
    check(sup.ask("a") == (200, before), "the same answer again")


@harness.test
def tensor_parallel_processes_in_parallel(env):
    fake, sup = one_model(env, eviction="discard+cuda_suspend", mb=3000, tp=2)
    sup.ctl_ok("wake", "a")
    status, before = sup.ask("a")
    check(status == 200, before)
    gp = gpu_pids(fake, sup.model_pids("a"))
    check(len(gp) == 2, "two GPU processes: %r" % fake.procs())
    check(sorted(fake.procs()[p]["gpu"] for p in gp) == [0, 1], fake.procs())
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and phases(body) == ["discard", "nccl_suspend", "cuda_suspend"], body)
    check(fake.proc_states(gp) == ["checkpointed", "checkpointed"], fake.procs())
    for p in gp:
        check("lock %d" % p in fake.calls(), (p, fake.calls()))
    sup.wait_gpu_used(1, 0)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["cuda_resume", "nccl_resume", "wake_up",
                                       "reload_weights", "reset_prefix_cache", "health"], body)
    check(fake.proc_states(gp) == ["running", "running"], fake.procs())
    check(body["gpus"] == [0, 1], body)
    check(sup.ask("a") == (200, before), "the same answer")


@harness.test
def lock_timeout_escalates(env):
    fake, sup = one_model(env, extra="gpu:\n  lock_timeout_ms: 300\n")
    sup.ctl_ok("wake", "a")
    gp = gpu_pids(fake, sup.model_pids("a"))
    fake.fault("cuda_lock_timeout")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and body["escalated"] and phases(body) == ["cuda_suspend", "stop"], body)
    check("lock of process %d failed after" % gp[0] in body["reason"], body["reason"])
    check("CUDA_ERROR_TIMEOUT (it is left running)" in body["reason"], body["reason"])
    m = sup.model("a")
    check(m["process_state"] == "not_started" and "escalated to stop" in m["last_error"], m)
    check(not any(alive(p) for p in gp), "stopped: GPU memory freed")
    sup.wait_gpu_used(0, 0)
    # The next wake is a cold start.
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["start"], body)


@harness.test
def checkpoint_failures_escalate(env):
    fake, sup = one_model(env)
    for fault, says in (("cuda_checkpoint_fail", "CUDA_ERROR_OUT_OF_MEMORY (it is RUNNING)"),
                        ("cuda_checkpoint_failed", "(it is FAILED)")):
        sup.ctl_ok("wake", "a")
        gp = gpu_pids(fake, sup.model_pids("a"))
        fake.fault(fault)
        rc, body = sup.ctl_json("sleep", "a")
        check(rc == 0 and body["escalated"], body)
        check("checkpoint of process %d failed: " % gp[0] in body["reason"] and
              says in body["reason"], (fault, body["reason"]))
        check(not any(alive(p) for p in gp), fault)


@harness.test
def failed_state_restarts_cleanly(env):
    fake, sup = one_model(env)
    sup.ctl_ok("wake", "a")
    old = sup.model("a")["pid"]
    status, before = sup.ask("a")
    gp = gpu_pids(fake, sup.model_pids("a"))
    sup.ctl_ok("sleep", "a")
    fake.fault("cuda_restore_failed")
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and body["escalated"], body)
    check(phases(body) == ["cuda_resume", "stop", "start"], body)
    check("FAILED state" in body["reason"] and "started afresh" in body["reason"], body)
    check(not any(alive(p) for p in gp), "the FAILED process is gone, never served")
    m = sup.model("a")
    check(m["state"] == "ready" and m["pid"] != old and "FAILED" in m["last_error"], m)
    check(sup.ask("a") == (200, before), "a fresh process answers")


def migration_setup(env, allow, second=H100):
    fake = FakeGPU(env, ((H100, 10000), (second, 10000)))
    extra = "gpu:\n  allow_migration: %s\n" % ("true" if allow else "false")
    sup = GpuSup(env, fake, {"a": {"args": fake.args(6000), "eviction": "retain+cuda_suspend"}},
                 extra)
    sup.start()
    sup.ctl_ok("wake", "a")
    status, before = sup.ask("a")
    gp = gpu_pids(fake, sup.model_pids("a"))
    check(fake.procs()[gp[0]]["gpu"] == 0, fake.procs())
    sup.ctl_ok("sleep", "a")
    # Someone else takes GPU 0 while a sleeps.
    fake.extra(0, 8000)
    return fake, sup, gp[0], before


@harness.test
def migration_onto_another_gpu(env):
    fake, sup, gp, before = migration_setup(env, True)
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 0, (out, err))
    check("restored onto other GPUs: GPU 0 -> GPU 1" in err, err)
    check(fake.procs()[gp]["gpu"] == 1 and fake.procs()[gp]["state"] == "running",
          fake.procs())
    check("restore %d gpu=1" % gp in fake.calls(), fake.calls())
    check(sup.ask("a") == (200, before), "the same process answers on GPU 1")
    sup.wait_gpu_used(1, 6000)
    check(sup.model("a")["gpus"] == [1], sup.model("a"))
    # Suspended again, it comes back where it now lives.
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and not body["escalated"], body)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and not body["moved"] and body["gpus"] == [1], body)


@harness.test
def migration_off_or_nowhere_fails(env):
    fake, sup, gp, _ = migration_setup(env, False)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 1 and phases(body) == ["cuda_resume", "stop"], body)
    check("CUDA_ERROR_OUT_OF_MEMORY" in body["error"] and
          "migration is off: gpu.allow_migration" in body["error"], body)
    check(sup.model("a")["state"] == "failed", sup.model("a"))


@harness.test
def migration_needs_the_same_kind(env):
    fake, sup, gp, _ = migration_setup(env, True, second=A100)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 1, body)
    check("no other %s has" % H100 in body["error"], body)


@harness.test
def old_driver_says_what_is_missing(env):
    fake, sup = one_model(env, cuda="libcudaold.so")
    sup.ctl_ok("wake", "a")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and body["escalated"], body)
    r = body["reason"]
    check("unavailable on this machine" in r and "(API 12.4) lacks cuCheckpointProcessGetState, "
          "cuCheckpointProcessLock, cuCheckpointProcessCheckpoint, "
          "cuCheckpointProcessRestore, cuCheckpointProcessUnlock: CUDA suspend needs driver "
          "570 or later (CUDA 12.8)" in r, r)
    # --check-config says so too, as a warning.
    import subprocess
    e = dict(fake.env("libcudaold.so"))
    import os
    env_all = dict(os.environ)
    env_all.update(e)
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c",
                        sup.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env_all, timeout=30)
    check(p.returncode == 0 and b"configuration OK" in p.stdout, p)
    check(b"warning: gpu.cuda_library: the CUDA driver" in p.stderr and
          b"lacks cuCheckpointProcessGetState" in p.stderr, p.stderr)


@harness.test
def driver_too_old_or_not_ready(env):
    # All the functions, but API 12.4: refused by version.
    fake = FakeGPU(env, driver="550.54.15 12040")
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000), "eviction": "retain+cuda_suspend"}})
    sup.start()
    sup.ctl_ok("wake", "a")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and body["escalated"] and "has API 12.4: CUDA suspend needs driver 570 or "
          "later (CUDA 12.8)" in body["reason"], body)
    sup.proc.stop()
    # cuInit fails (the fake's: no state directory): said as the driver says it.
    sup2 = GpuSup(env, fake, {"a": {"args": fake.args(1000),
                                    "eviction": "retain+cuda_suspend"}})
    sup2.fake = type("NoDir", (), {"env": lambda self, cuda=None: {
        "LLMUX_CUDA_LIBRARY": harness.fake("libcuda.so")}})()
    sup2.start(name="supervisord2")
    sup2.ctl_ok("wake", "a")
    rc, body = sup2.ctl_json("sleep", "a")
    check(rc == 0 and body["escalated"] and "unavailable on this machine: cuInit failed: "
          "CUDA_ERROR_NOT_INITIALIZED" in body["reason"], body)


@harness.test
def no_gpu_process(env):
    fake, sup = one_model(env, engine=False)
    # A model that registers nothing on the fake GPUs.
    sup.write_config({"a": {"args": ["--fake-admin"], "eviction": "retain+cuda_suspend"}})
    sup.ctl_ok("reload")
    sup.ctl_ok("wake", "a")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and body["escalated"], body)
    check("no GPU process found among the model's" in body["reason"], body)


if __name__ == "__main__":
    harness.main()
