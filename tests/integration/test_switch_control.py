#!/usr/bin/env python3
"""test_switch_control.py -- the operator's side of switching, through the
whole stack: a switch ordered by llmuxctl while the policy wants another
model; pin, unpin and manual mode (503 for the other models); the control
HTTP API's JSON shapes through the proxy, in the middle of a switch too;
an operator's sleep drains the model first; the switch metrics on
/metrics."""
import os
import pty
import re
import subprocess

import harness
from harness import check, wait_until
from switch_helpers import Parallel, Stack

OFFLOAD = "offload+keep_running"


@harness.test
def ctl_switch_while_the_policy_wants_another(env):
    s = Stack(env, {"a": {}, "b": {}, "c": {}}, policy={"min_active_secs": 2}).start()
    s.served("a")
    p = Parallel()
    p.run(s.chat, "b", text="for b")
    wait_until(lambda: s.state() == "switching:a->b", 10, "the policy's switch to b")
    # The operator's order goes first and cancels the switch in cooldown.
    p.run(s.sup.ctl, "switch", "c")
    wait_until(lambda: s.state() == "switching:a->c", 10, "the ordered switch to c")
    (st, body), (rc, out, err) = p.join()
    check(rc == 0 and "Switched to model: c" in out, (rc, out, err))
    check("switch c: cooldown" in err and "switch c: wake" in err,
          "progress lines: %r" % err)
    check(st == 200 and body["model"] == "b", "b served after c: %r" % (body,))
    check('msg="switch cancelled" to=b' in s.sup_log(), "the policy's switch cancelled")
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "c"}) == 1, s.metrics())
    check(s.metric("llmux_switches_total", **{"from": "c", "to": "b"}) == 1, s.metrics())
    check(s.metric("llmux_switches_total", **{"from": "a", "to": "b"}) is None, s.metrics())


def ctl_on_a_terminal(s, *args):
    """llmuxctl ARGS with stderr on a pseudo-terminal: its exit status and
    every line it drew there (each redraw of the progress line)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([harness.binary("llmuxctl"), "--socket", s.sup.socket] +
                         list(args), stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:         # EIO: the other end is closed
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    rc = p.wait(timeout=60)
    return rc, [d for d in data.decode("utf-8", "replace").split("\r\033[K") if d]


def duration_ms(text):
    m = re.match(r"(\d+) ms$|(\d+\.\d) s$", text)
    check(m, "a duration: %r" % text)
    return int(m.group(1)) if m.group(1) else float(m.group(2)) * 1000


@harness.test
def ctl_switch_names_its_cooldown(env):
    # A switch that waits out min_active_secs says so: cooldown, then a
    # drain that is not given the cooldown's time.
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}},
              policy={"min_active_secs": 2}).start()
    s.served("a")
    rc, out, err = s.sup.ctl("switch", "b")
    check(rc == 0 and "Switched to model: b" in out, (rc, out, err))
    lines = err.splitlines()
    cool = [l for l in lines if l.startswith("switch b: cooldown at ")]
    check(len(cool) == 1 and cool[0].endswith(
        "(a -> b, waiting out min_active_secs)"), err)
    check(any(l.startswith("switch b: drain at ") for l in lines), err)
    check(lines.index(cool[0]) < [l.split(" at ")[0] for l in lines].index(
        "switch b: drain"), err)
    # On a terminal the line shows the time spent in the phase.
    rc, drawn = ctl_on_a_terminal(s, "switch", "a")
    check(rc == 0, drawn)
    shown = {}
    for d in drawn:
        m = re.match(r"switch a: (\w+) (.+?) \((.*)\)$", d)
        if m and m.group(1) not in shown:
            shown[m.group(1)] = (m.group(2), m.group(3))
    check("cooldown" in shown and shown["cooldown"][1] ==
          "b -> a, waiting out min_active_secs", drawn)
    check("drain" in shown and duration_ms(shown["drain"][0]) < 2000,
          "the drain is drawn with its own time, not the cooldown's: %r" % drawn)


@harness.test
def pin_unpin_and_manual_mode(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    s.served("b")
    st, body = s.control("POST", "/control/pin", {"model": "a"})
    check(st == 200 and body == {"message": "Pinned to model: a"}, (st, body))
    st = s.status()
    check(st["mode"] == {"mode": "manual", "pinned": "a"} and st["state"] == "active:a", st)
    # Manual mode: other models are refused, the pinned one served.
    code, body = s.chat("b")
    check(code == 503 and body["error"]["code"] == "manual_mode", (code, body))
    check(s.served("a") == "a", "the pinned model serves")
    # The pinned model is never put to sleep.
    st, body = s.control("POST", "/control/sleep", {"model": "a"})
    check(st == 409 and "pinned" in body["error"], (st, body))
    # switch in manual mode moves the pin.
    st, body = s.control("POST", "/control/switch", {"model": "b"})
    check(st == 200 and body == {"message": "Switched to model: b"}, (st, body))
    check(s.status()["mode"] == {"mode": "manual", "pinned": "b"}, s.status())
    check(s.served("b") == "b", "b pinned now")
    st, body = s.control("POST", "/control/unpin")
    check(st == 200 and body == {"message": "Unpinned. Switched to auto mode."}, (st, body))
    check(s.status()["mode"] == {"mode": "auto"}, s.status())
    check(s.served("a") == "a", "auto again: a is switched to")
    # mode manual without a pin: the active model only.
    st, body = s.control("POST", "/control/mode", {"mode": "manual"})
    check(st == 200 and body == {"message": "Switched to manual mode"}, (st, body))
    check(s.status()["mode"] == {"mode": "manual", "pinned": None}, s.status())
    check(s.served("a") == "a", "the active model serves")
    code, body = s.chat("b")
    check(code == 503 and body["error"]["code"] == "manual_mode", (code, body))
    st, body = s.control("POST", "/control/mode", {"mode": "sideways"})
    check(st == 400 and body == {"message": "Unknown mode: sideways. Use 'auto' or "
                                            "'manual'."}, (st, body))
    st, body = s.control("POST", "/control/mode", {"mode": "auto"})
    check(st == 200 and s.served("b") == "b", "auto: b switched to")
    # A pin that cannot be carried out puts the mode back.
    st, body = s.control("POST", "/control/pin", {"model": "nope"})
    check(st == 404 and body == {"error": "Model not found: nope"}, (st, body))
    check(s.status()["mode"] == {"mode": "auto"}, s.status())


@harness.test
def status_shapes_through_the_proxy(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD},
                    "b": {"eviction": OFFLOAD, "args": ["--fake-wake-ms", "1500"]}}).start()
    st = s.status()
    check(set(st) == {"state", "active_model", "mode", "models", "gpus", "supervisor"}, st)
    check(st["state"] == "idle" and st["active_model"] is None, st)
    check(st["mode"] == {"mode": "auto"}, st)
    check(sorted(st["models"]) == ["a", "b"], st)
    for k in ("in_flight", "queue_depth", "process_state", "state", "port", "pid",
              "eviction", "phase", "last_error"):
        check(k in st["models"]["a"], (k, st["models"]["a"]))
    check(st["models"]["a"]["process_state"] == "not_started", st)
    s.served("b")
    s.served("a")
    # In the middle of a switch (b wakes slowly): llmux 0.7's strings.
    p = Parallel()
    p.run(s.chat, "b")
    wait_until(lambda: s.status()["models"]["b"]["state"] == "waking", 10, "b waking")
    st = s.status()
    check(st["state"] == "switching:a->b" and st["active_model"] is None, st)
    check(st["models"]["b"]["state"] == "waking" and st["models"]["b"]["queue_depth"] == 1,
          st["models"]["b"])
    check(st["models"]["a"]["state"] == "sleeping", st["models"]["a"])
    p.join()
    st = s.status()
    check(st["state"] == "active:b" and st["active_model"] == "b", st)
    code, body = s.control("GET", "/control/models")
    check(code == 200 and [m["name"] for m in body["models"]] == ["a", "b"], body)
    code, body = s.control("GET", "/control/eviction")
    check(code == 200 and body["models"]["a"] == {
        "eviction": {"weights": "offload", "process": "keep_running"},
        "process_state": "sleeping:Offload+KeepRunning"}, body)
    code, body = s.control("POST", "/control/eviction",
                           {"model": "a", "eviction": {"weights": "discard",
                                                       "process": "keep_running"}})
    check(code == 200 and body == {"message": "Eviction policy for a set to EvictionPolicy "
                                              "{ weights: Discard, process: KeepRunning }"},
          body)
    code, body = s.control("POST", "/control/wake", {"model": "a"})
    check(code == 200 and body["message"] == "Model a woken", body)
    check([x["phase"] for x in body["phases"]] == ["wake_up", "health"], body)
    code, body = s.control("POST", "/control/sleep", {"model": "a"})
    check(code == 200 and body["message"] == "Model a sleeping with policy EvictionPolicy "
          "{ weights: Discard, process: KeepRunning }", body)
    check([x["phase"] for x in body["phases"]] == ["discard"], body)
    # Asleep: the same sleep again is no work; another must wake it first.
    code, body = s.control("POST", "/control/sleep", {"model": "a"})
    check(code == 200 and body["phases"] == [], (code, body))
    code, body = s.control("POST", "/control/sleep",
                           {"model": "a", "eviction": "offload+keep_running"})
    check(code == 409 and "already sleeping with discard+keep_running" in body["error"],
          (code, body))
    code, body = s.control("POST", "/control/switch", {"model": "zz"})
    check(code == 404 and body == {"error": "Model not found: zz"}, (code, body))


@harness.test
def operator_sleep_drains_first(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD, "args": ["--fake-token-ms", "100"]},
                    "b": {}}).start()
    s.served("a", max_tokens=1)
    p = Parallel()
    p.run(lambda: s.chat("a", text="long", max_tokens=15))
    wait_until(lambda: s.status()["models"]["a"]["in_flight"] == 1, 10, "in flight")
    p.run(lambda: s.control("POST", "/control/sleep", {"model": "a"}))
    (st, body), (code, reply) = p.join()
    # The model's sleep aborts what is in flight (vLLM's default mode), so
    # a whole answer proves the sleep waited for the drain.
    check(st == 200 and body["usage"]["completion_tokens"] == 15 and
          body["choices"][0]["finish_reason"] == "length", "finished: %r" % (body,))
    check(code == 200 and reply["message"].startswith("Model a sleeping"), reply)
    check(s.sup.fake_state("a")["is_sleeping"], "a asleep")
    check(s.status()["models"]["a"]["state"] == "sleeping", s.status())


@harness.test
def validate_wakes_through_the_switcher(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    s.served("a")
    # b is woken the way a switch would: a is put to sleep first.
    rc, out, err = s.sup.ctl("validate", "b")
    check(rc == 0 and "Model b: 2 of 2 evictions passed" in out, (rc, out, err))
    check("validate b: wake" in err, "the switch's phases as progress: %r" % err)
    st = s.status()
    check(st["state"] == "active:b" and st["models"]["a"]["state"] == "sleeping", st)
    check(s.sup.fake_state("a")["is_sleeping"], "a never awake beside b")
    check(s.served("a") == "a" and s.served("b") == "b", "switching goes on")


@harness.test
def switch_metrics(env):
    s = Stack(env, {"a": {"eviction": OFFLOAD}, "b": {"eviction": OFFLOAD}}).start()
    for m in ("a", "b", "a", "b"):
        s.served(m)
    ab = {"from": "a", "to": "b"}
    check(s.metric("llmux_switches_total", **ab) == 2, s.metrics())
    # The histograms are by target alone: both switches into b.
    to_b = {"to": "b"}
    check(s.metric("llmux_switch_total_seconds_count", **to_b) == 2, s.metrics())
    check(s.metric("llmux_switch_total_seconds_bucket", le="+Inf", **to_b) == 2, s.metrics())
    for phase in ("cooldown", "drain", "sleep", "wake"):
        check(s.metric("llmux_switch_phase_seconds_count", phase=phase, **to_b) == 2,
              (phase, s.metrics()))
    check(s.metric("llmux_switch_phase_seconds_bucket", phase="wake", le="600", **to_b) == 2,
          s.metrics())
    check(not any(line.startswith("llmux_switch_") and "from=" in line
                  for line in s.metrics().splitlines()), s.metrics())
    check(s.metric("llmux_active_model_info", model="b") == 1, s.metrics())
    check(s.metric("llmux_active_model_info", model="a") is None, s.metrics())
    check("# TYPE llmux_switch_phase_seconds histogram" in s.metrics(), s.metrics())
    # The proxy's own metrics are there too.
    check(s.metric("llmux_requests_total", model="b", waited="true") == 2, s.metrics())


if __name__ == "__main__":
    harness.main()
