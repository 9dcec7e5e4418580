#!/usr/bin/env python3
"""test_supervisor_eviction.py -- the twelve weights x process evictions and
their wakes, with llmux 0.7's sequence of vLLM calls (checked in the reply's
phases and in llmux-fakevllm's own counters), cuda_suspend and checkpoint
through the "unavailable on this machine" path (escalating to stop), the
NCCL steps of a TP>1 model, and the failures: a sleep that fails escalates
to stop, a wake that fails stops the model and says why."""
import harness
from harness import check
from supervisor_helpers import Sup, alive

WEIGHTS = ["retain", "offload", "discard"]
PROCESSES = ["keep_running", "cuda_suspend", "checkpoint", "stop"]
TITLE = {"retain": "Retain", "offload": "Offload", "discard": "Discard",
         "keep_running": "KeepRunning"}
WEIGHT_STEP = {"retain": [], "offload": ["sleep"], "discard": ["discard"]}
WAKE_STEPS = {"retain": ["health"], "offload": ["wake_up", "health"],
              "discard": ["wake_up", "reload_weights", "reset_prefix_cache", "health"]}


def phases(body):
    return [p["phase"] for p in body["phases"]]


def ensure_running(sup, name):
    if sup.model(name)["state"] != "ready":
        rc, body = sup.ctl_json("wake", name)
        check(rc == 0, body)


def one_combination(sup, name, w, p, tp):
    ensure_running(sup, name)
    pid = sup.model(name)["pid"]
    before = sup.fake_state(name)
    rc, body = sup.ctl_json("sleep", name, "--eviction", "%s+%s" % (w, p))
    what = "%s+%s (tp %d): %r" % (w, p, tp, body)
    check(rc == 0, what)
    nccl = ["nccl_suspend"] if tp > 1 else []
    m = sup.model(name)
    if p == "keep_running":
        check(phases(body) == WEIGHT_STEP[w], what)
        check(not body["escalated"], what)
        check(m["process_state"] == "sleeping:%s+KeepRunning" % TITLE[w], (what, m))
        check(m["pid"] == pid and m["state"] == "sleeping", (what, m))
        fs = sup.fake_state(name)
        check(fs["is_sleeping"] == (w != "retain"), (what, fs))
        check(fs["sleep_level"] == {"retain": 0, "offload": 1, "discard": 2}[w] or
              w == "retain", (what, fs))
        check(fs["sleeps"] == before["sleeps"] + (0 if w == "retain" else 1), (what, fs))
    elif p in ("cuda_suspend", "checkpoint"):
        step = "cuda_suspend" if p == "cuda_suspend" else "criu_dump"
        check(phases(body) == WEIGHT_STEP[w] + nccl + [step, "stop"], what)
        check(body["escalated"], what)
        check([x["ok"] for x in body["phases"]][-2:] == [False, True], what)
        check("unavailable on this machine" in body["reason"], what)
        check(body["message"].startswith("Model %s sleeping with policy" % name), what)
        check(m["process_state"] == "not_started" and m["pid"] is None, (what, m))
        check("escalated to stop" in m["last_error"], (what, m))
        check(not alive(pid), what)
    else:
        check(phases(body) == WEIGHT_STEP[w] + ["stop"], what)
        check(not body["escalated"], what)
        check(m["process_state"] == "not_started" and m["pid"] is None, (what, m))
        check(not alive(pid), what)

    rc, body = sup.ctl_json("wake", name)
    what = "wake after %s+%s (tp %d): %r" % (w, p, tp, body)
    check(rc == 0 and body["message"] == "Model %s woken" % name, what)
    m = sup.model(name)
    check(m["state"] == "ready" and m["process_state"] == "running", (what, m))
    check(sup.health(name) == 200, what)
    if p == "keep_running":
        check(phases(body) == WAKE_STEPS[w], what)
        check(m["pid"] == pid, (what, m))
        fs = sup.fake_state(name)
        check(not fs["is_sleeping"], (what, fs))
        check(fs["wakes"] == before["wakes"] + (0 if w == "retain" else 1), (what, fs))
        check(fs["reloads"] == before["reloads"] + (1 if w == "discard" else 0), (what, fs))
        check(fs["prefix_cache_resets"] == before["prefix_cache_resets"] +
              (1 if w == "discard" else 0), (what, fs))
    else:
        check(phases(body) == ["start"], what)
        check(m["pid"] != pid, (what, m))


@harness.test
def twelve_combinations(env):
    sup = Sup(env, {"m": {"args": ["--fake-admin", "--fake-engine-process"]}})
    sup.start()
    for w in WEIGHTS:
        for p in PROCESSES:
            one_combination(sup, "m", w, p, 1)
    st = sup.status()["models"]["m"]
    check(st["escalations"] == 6, st)
    metrics = sup.ctl_ok("metrics")
    check('llmux_supervisor_model_escalations_total{model="m"} 6' in metrics, metrics)
    check('llmux_supervisor_phase_seconds_count{model="m",phase="wake_up"} 2' in metrics,
          metrics)


@harness.test
def tensor_parallel_nccl_steps(env):
    sup = Sup(env, {"tp": {"args": ["--fake-admin", "--tensor-parallel-size", "2"]}})
    sup.start()
    for p in ("cuda_suspend", "checkpoint"):
        for w in ("retain", "discard"):
            one_combination(sup, "tp", w, p, 2)
    # keep_running and stop take no NCCL step.
    one_combination(sup, "tp", "offload", "keep_running", 2)
    one_combination(sup, "tp", "offload", "stop", 2)


@harness.test
def failed_sleep_escalates_to_stop(env):
    sup = Sup(env, {"m": {"args": ["--fake-fail-sleep", "--fake-engine-process"]}})
    sup.start()
    sup.ctl_ok("wake", "m")
    tree = sup.model_pids("m")
    check(len(tree) == 2, tree)
    rc, body = sup.ctl_json("sleep", "m", "--eviction", "offload+keep_running")
    check(rc == 0, body)
    check(phases(body) == ["sleep", "stop"] and body["escalated"], body)
    check("sleep failed: the model answered 500" in body["reason"], body)
    m = sup.model("m")
    check(m["process_state"] == "not_started" and m["escalations"] == 1, m)
    check(not any(alive(p) for p in tree), "GPU memory freed: nothing left")
    # The human form says so too (the new process fails its sleep again).
    sup.ctl_ok("wake", "m")
    rc, out, err = sup.ctl("sleep", "m", "--eviction", "discard+keep_running")
    check(rc == 0 and "escalated to stop: discard failed" in out, (rc, out, err))
    check("discard" in out and "(failed)" in out, out)
    check("sleep m: escalate" in err, err)


@harness.test
def failed_wake_stops_the_model(env):
    sup = Sup(env, {"w": {"args": ["--fake-fail-wake"]},
                    "r": {"args": ["--fake-fail-reload"]}})
    sup.start()
    for name, ev, step in (("w", "offload+keep_running", "wake_up"),
                           ("r", "discard+keep_running", "reload_weights")):
        sup.ctl_ok("wake", name)
        pid = sup.model(name)["pid"]
        sup.ctl_ok("sleep", name, "--eviction", ev)
        rc, out, err = sup.ctl("wake", name)
        check(rc == 1, (rc, out, err))
        check("Failed to wake model: %s failed: the model answered 500" % step in err, err)
        m = sup.model(name)
        check(m["state"] == "failed" and m["pid"] is None, m)
        check(not alive(pid), "the half-woken model was stopped")
        # The next wake starts it afresh.
        rc, body = sup.ctl_json("wake", name)
        check(rc == 0 and phases(body) == ["start"], body)


@harness.test
def warmup_refused_by_a_generating_model(env):
    # Its context is too short for the warm-up (400): the embeddings route
    # is tried as for a pooling model, is missing too (404), and the
    # checkpoint reports the completion's answer, not the 404.
    sup = Sup(env, {"s": {"args": ["--max-model-len", "4"]}})
    sup.start()
    rc, out, err = sup.ctl("checkpoint", "s")
    check(rc == 1 and "the warm-up request failed: the model answered 400" in err,
          (rc, out, err))
    check("answered 400 to /v1/completions" in sup.log_text(), "the fallback was tried")


@harness.test
def sleep_and_wake_errors(env):
    sup = Sup(env, {"a": {}})
    sup.start()
    rc, out, err = sup.ctl("sleep", "a")
    check(rc == 1 and "Model a is not running (not_started)" in err, (rc, out, err))
    rc, out, err = sup.ctl("sleep", "nope")
    check(rc == 1 and "Model not found: nope" in err, (rc, out, err))
    rc, out, err = sup.ctl("wake", "nope")
    check(rc == 1 and "Model not found: nope" in err, (rc, out, err))
    rc, body = sup.ctl_json("wake", "nope")
    check(rc == 1 and body == {"error": "Model not found: nope"}, body)
    sup.ctl_ok("wake", "a")
    sup.ctl_ok("sleep", "a", "--eviction", "offload+keep_running")
    rc, out, err = sup.ctl("sleep", "a", "--eviction", "discard+keep_running")
    check(rc == 1 and "already sleeping with offload+keep_running" in err, (rc, out, err))
    # The same sleep again is no work; a stop goes deeper.
    rc, body = sup.ctl_json("sleep", "a", "--eviction", "offload+keep_running")
    check(rc == 0 and phases(body) == [], body)
    rc, body = sup.ctl_json("sleep", "a", "--eviction", "retain+stop")
    check(rc == 0 and phases(body) == ["stop"], body)
    rc, out, err = sup.ctl("restore", "a")
    check(rc == 1 and "is not checkpointed" in err, (rc, out, err))
    # llmux 0.7's --checkpoint: a model that is not running is started,
    # warmed up, then dumped (here criu is missing: the dump escalates).
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 1 and "Checkpoint failed" in err and "unavailable on this machine" in err,
          (rc, out, err))
    check("checkpoint a: start" in err and "checkpoint a: warmup" in err, err)
    rc, out, err = sup.ctl("checkpoint", "a", "--no-warmup")
    check(rc == 1 and "Checkpoint failed" in err and "unavailable on this machine" in err,
          (rc, out, err))
    check("checkpoint a: start" in err and "warmup" not in err, err)
    # Woken for its own eviction (retain+stop), its log is a pipe CRIU
    # cannot dump: refused, left running.
    sup.ctl_ok("wake", "a")
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 1 and "output is a pipe CRIU cannot dump" in err, (rc, out, err))
    check(sup.model("a")["state"] == "ready", sup.model("a"))


if __name__ == "__main__":
    harness.main()
