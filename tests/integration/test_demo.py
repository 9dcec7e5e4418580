#!/usr/bin/env python3
"""test_demo.py -- `make demo` (tools/demo.sh, tools/demo.py) with the
models' realistic delays: the scripted sequence runs, its timeline shows
each request answered by its model and each switch with its phases, and
the teardown leaves nothing running, whether the demo ends by itself
(--once), is interrupted with Ctrl-C in the middle of a switch, or (soak)
stays up and is interrupted after its commands were tried."""
import os
import re
import signal
import subprocess

import harness
from harness import check, wait_until
from supervisor_helpers import alive

DEMO = os.path.join(harness.ROOT, "tools", "demo.sh")


def run_demo(env, *args):
    return env.spawn("demo", [DEMO, harness.BUILD] + list(args))


class Printed:
    """What the demo printed about itself: pids, ports, its directory."""

    def __init__(self, out):
        m = re.search(r"llmux-supervisord \(pid (\d+)\) and llmux-proxyd \(pid (\d+)\)", out)
        check(m, "the daemons' pids are printed:\n" + out)
        self.pids = [int(m.group(1)), int(m.group(2))]
        self.ports = {name: int(port) for name, port in
                      re.findall(r"^    (\w+)\s+\S+\s+port (\d+)$", out, re.M)}
        check(set(self.ports) == {"qwen", "llama", "mistral"}, "the models: %r" % self.ports)
        m = re.search(r"socket\s+(/\S+)/run/supervisor\.sock", out)
        check(m, "the socket is printed")
        self.dir = m.group(1)


def fakevllm_on(port):
    """Pids of llmux-fakevllm processes serving port."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if argv[0].endswith("llmux-fakevllm") and "--port" in argv and \
                argv[argv.index("--port") + 1:][:1] == [str(port)]:
            out.append(int(d))
    return out


def check_nothing_left(printed):
    for pid in printed.pids:
        check(not alive(pid), "daemon %d is gone" % pid)
    for name, port in printed.ports.items():
        check(not fakevllm_on(port), "model %s (port %d) is gone" % (name, port))
    check(not os.path.exists(printed.dir), "the demo's directory is removed")


def block(out, n):
    """The timeline of step n."""
    m = re.search(r"^\[%d\] .*?(?=^\[%d\] |^\d+ of \d+ requests|\Z)" % (n, n + 1), out,
                  re.M | re.S)
    check(m, "step %d is printed:\n%s" % (n, out))
    return m.group(0)


def in_order(text, *patterns):
    """Each pattern matches a line of text, in this order."""
    pos = 0
    for p in patterns:
        m = re.compile(p, re.M).search(text, pos)
        check(m, "%r after position %d in:\n%s" % (p, pos, text))
        pos = m.end()


@harness.test
def once(env):
    p = run_demo(env, "--once")
    rc = p.wait(timeout=180)
    out = p.output()
    check(rc == 0, "the demo exits 0:\n" + out)
    printed = Printed(out)
    # [1] a cold start.
    in_order(block(out, 1), r"request #1 -> qwen$", r"switch none -> qwen begins",
             r"qwen +wake +start +\d+\.\d\d s$",
             r"switch none -> qwen done in \d+\.\d\d s: cooldown .*wake \d",
             r"answer #1 from qwen: 16 tokens")
    # [2] qwen drained and put to sleep (level 1), llama started.
    in_order(block(out, 2), r"request #2 -> llama|switch qwen -> llama begins",
             r"qwen +sleep +sleep ", r"llama +wake +start ",
             r"switch qwen -> llama done", r"answer #2 from llama: 16 tokens")
    # [3] the burst: llama serves its three, then is discarded; qwen wakes.
    b3 = block(out, 3)
    check(len(re.findall(r"answer #\d from llama: 16 tokens", b3)) == 3, b3)
    check(len(re.findall(r"answer #\d from qwen: 16 tokens", b3)) == 3, b3)
    in_order(b3, r"answer #\d from llama", r"llama +sleep +discard ",
             r"qwen +wake +wake_up ", r"switch llama -> qwen done", r"answer #\d from qwen")
    # [4] the stream: llama woken, its weights reloaded, tokens streamed.
    in_order(block(out, 4), r"stream #9 -> llama", r"qwen +sleep +sleep ",
             r"llama +wake +wake_up ", r"llama +wake +reload_weights ",
             r"switch qwen -> llama done", r"first token of #9 after",
             r"answer #9 from llama: 48 tokens")
    # [5] llama discarded, mistral's cold start.
    in_order(block(out, 5), r"llama +sleep +discard ", r"mistral +wake +start ",
             r"switch llama -> mistral done", r"answer #10 from mistral")
    check("FAILED" not in out, out)
    check("10 of 10 requests answered by the model they asked for; 5 switches" in out, out)
    check(re.search(r"^mistral +ready +running", out, re.M), "llmuxctl status is shown")
    check("Stopped: nothing left running." in out, out)
    check_nothing_left(printed)


@harness.test
def ctrl_c_in_the_middle_of_a_switch(env):
    p = run_demo(env)
    wait_until(lambda: "[2] A request for llama" in p.output(), 90, "step 2")
    printed = Printed(p.output())
    # llama's process is starting (3 s): interrupt the switch there.
    wait_until(lambda: fakevllm_on(printed.ports["llama"]), 30, "llama starting")
    p.signal(signal.SIGINT)
    rc = p.wait(timeout=90)
    out = p.output()
    check(rc == 0, "a clean teardown exits 0:\n" + out)
    check("Interrupted." in out and "Stopped: nothing left running." in out, out)
    check("[3]" not in out, "the sequence stopped there:\n" + out)
    check_nothing_left(printed)


if harness.SOAK:
    @harness.test
    def stays_up_until_ctrl_c(env):
        p = run_demo(env)
        wait_until(lambda: "Press Ctrl-C to stop everything." in p.output(), 120,
                   "the demo to stay up")
        out = p.output()
        printed = Printed(out)
        # The commands it prints work as printed.
        ctl = re.search(r"^  (\S+/llmuxctl --socket \S+) status$", out, re.M)
        check(ctl, out)
        r = subprocess.run(ctl.group(1).split() + ["switch", "qwen"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        check(r.returncode == 0, r.stdout)
        curl = re.search(r"^  (curl -s http://127\.0\.0\.1:\d+/v1/models)$", out, re.M)
        check(curl, out)
        r = subprocess.run(curl.group(1).split(), stdout=subprocess.PIPE, timeout=30)
        check(r.returncode == 0 and b'"qwen"' in r.stdout, r.stdout)
        p.signal(signal.SIGINT)
        check(p.wait(timeout=90) == 0, p.output())
        check("Stopped: nothing left running." in p.output(), p.output())
        check_nothing_left(printed)


if __name__ == "__main__":
    harness.main()
