"""test_webui.py -- llmux's web page in Debian's chromium (headless, driven
by puppeteer-core from npm, installed into build/npm like the openai
client of test_openai_client.py), against a supervisor of three
llmux-fakevllm models on fake GPUs and a proxy serving the page from the
tree's ui/ and Chart.js from /usr/share/javascript (libjs-chart.js):

  * the page loads with no console error, and no request leaves the
    machine (the browser fails any that is not for loopback);
  * it shows the three models;
  * a switch that a chat request causes shows on the page within a second
    of the request's answer (the page learns it from the event stream),
    and then the GPU memory it moved (from the supervisor's gpu events:
    the target's weights, the victim's context);
  * the charts have data and pixels;
  * a switch button without the admin token shows the refusal, and
    changes nothing; with the token the switch is made and a log is read;
  * a screenshot is written to build/screenshots/webui.png (docs/webui.png
    is a copy, for README.md).

Skipped, saying so, when chromium or Chart.js is not installed
(tools/install-deps.sh installs both)."""
import json
import os
import shutil
import subprocess
import time

import harness
from harness import check, test
from gpu_helpers import FakeGPU, GpuSup
from switch_helpers import Stack

PUPPETEER_VERSION = "24.43.1"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webui-browser.mjs")
CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"
TOKEN = "webui-test-token"


@test
def web_page_in_a_browser(env):
    chromium = shutil.which("chromium")
    if chromium is None:
        harness.skip("chromium is not installed (tools/install-deps.sh installs it)")
    if not os.path.exists(CHARTJS):
        harness.skip("Chart.js is not installed (libjs-chart.js: %s)" % CHARTJS)
    harness.npm_install("puppeteer-core", PUPPETEER_VERSION)

    fake = FakeGPU(env)
    # Names and sizes as in README.md's picture; two sleep, one stops.
    a, b, c = "llama-3.1-8b", "qwen2.5-7b", "mistral-7b"
    models = {a: {"args": fake.args(mb=30000), "eviction": '"offload+keep_running"'},
              b: {"args": fake.args(mb=24000), "eviction": '"offload+keep_running"'},
              c: {"args": fake.args(mb=16000)}}
    extra = ("proxy:\n  ui_dir: %s\n  admin_token: %s\n"
             % (json.dumps(os.path.join(harness.ROOT, "ui")), TOKEN))
    s = Stack(env, models, extra=extra)
    s.sup = GpuSup(env, fake, models, extra="policy:\n  policy_type: fifo\n"
                   "  min_active_secs: 0\n" + extra)
    s.start()
    check(s.served(a) == a, "a serves")
    # LLMUX_WEBUI_WARMUP_S=N: N seconds of requests first, so that the
    # charts (and the screenshot, docs/webui.png) have a history to show.
    warmup = float(os.environ.get("LLMUX_WEBUI_WARMUP_S", "0"))
    end = time.monotonic() + warmup
    i = 0
    while time.monotonic() < end:
        s.served((a, a, b, a, c, c)[i % 6])
        i += 1
    if warmup:
        s.served(a)

    shots = os.path.join(harness.ROOT, "build", "screenshots")
    os.makedirs(shots, exist_ok=True)
    shot = os.path.join(shots, "webui.png")
    if os.path.exists(shot):
        os.unlink(shot)
    script = os.path.join(harness.NPM_DIR, "webui-browser.mjs")
    shutil.copy(SCRIPT, script)  # so that `import 'puppeteer-core'` finds build/npm
    # The page must show the switch within a second of the answer; a
    # sanitizer build runs everything several times slower.
    deadline_ms = 5000 if "asan" in os.environ.get("LLMUX_BUILD", "") else 1000
    p = subprocess.run(["node", script, chromium, "http://127.0.0.1:%d" % s.admin,
                        "http://127.0.0.1:%d" % s.port, TOKEN, shot, str(deadline_ms), a, b, c],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    check(p.returncode == 0, "node failed:\n%s\n%s" % (p.stdout.decode(), p.stderr.decode()))
    out = json.loads(p.stdout.decode().strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in out.items() if k != "log"}, indent=1))
    check("error" not in out, "the browser script failed in step %s: %s"
          % (out["steps"][-1:], out.get("error")))

    check(out["offsite"] == [], "requests left the machine: %r" % out["offsite"])
    # The one console error allowed: the 401 of the refused switch.
    bad = [c for c in out["console"]
           if not (c["phase"] == "refusal" and "401" in c["text"])]
    check(bad == [], "console errors: %r" % bad)
    check(sorted(out["models"]) == sorted([a, b, c]), repr(out["models"]))
    check("default-src 'none'" in (out["csp"] or ""), "CSP: %r" % out["csp"])

    check(out["before"] != "ready" and out["chat_status"] == 200, repr(out))
    print("the page showed b ready %d ms after the chat's answer" % out["switch_seen_ms"])
    check(out["a_after"] == "sleeping", "a left the GPU: %r" % out["a_after"])
    check(out["header"] == "active:" + b, "header: %r" % out["header"])
    # 24000 MiB awake; asleep, the fake keeps a fiftieth as its context.
    check(out["gpu_after_switch"] == {b: "23.4 GiB", a: "600 MiB"},
          repr(out["gpu_after_switch"]))
    check(out["gpu_after_token"] == {c: "15.6 GiB", a: "600 MiB", b: "480 MiB"},
          repr(out["gpu_after_token"]))

    check(out["pixels"] > 1000, "the requests chart has pixels: %r" % out["pixels"])
    check({a, b, c} <= set(out["series"]), repr(out["series"]))

    check("Refused (401)" in out["refusal"] and "admin token" in out["refusal"],
          repr(out["refusal"]))
    check(out["c_after_refusal"] != "ready", repr(out))
    check(s.state() == "active:" + c, "the switch with the token was made: %s" % s.state())
    check("Refused" not in out["log"] and out["log"].strip() != "", repr(out["log"][:300]))
    check(os.path.getsize(shot) > 10000, "a screenshot")


if __name__ == "__main__":
    harness.main()
