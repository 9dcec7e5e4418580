#!/usr/bin/env python3
"""test_top.py -- `llmuxctl top` on a pseudo-terminal of 80 columns: it
draws every model, shows a switch in progress with its phase and elapsed
time and then in the last switches, redraws from events (not by polling
status), exits cleanly on `q` and on ^C (SIGINT), and gives the terminal
back as it was (termios settings equal before and after, the cursor shown,
the alternate screen left). Without a terminal it prints key=value lines.
`llmuxctl status` shows when each model was last used and its idle-TTL
countdown."""
import json
import re
import signal
import threading

import harness
from harness import check, wait_until
from pty_helpers import Pty
from switch_helpers import Stack

MODELS = {"a": {"eviction": "offload+keep_running", "ttl_secs": 600},
          "b": {"eviction": "offload+keep_running", "args": ["--fake-wake-ms", "2500"]}}


def row(screen, model):
    for line in screen.splitlines():
        if line.startswith(model + " "):
            return line.split()
    return None


def restored(t, what):
    check(t.after() == t.before, "%s: the termios settings are as before" % what)
    check(t.screen.cursor_shown and not t.screen.alternate,
          "%s: the cursor is shown and the main screen back" % what)
    check(t.raw.endswith(b"\x1b[?25h\x1b[?1049l"), "%s: the last bytes give the "
          "terminal back: %r" % (what, t.raw[-40:]))


@harness.test
def top_draws_follows_a_switch_and_quits(env):
    s = Stack(env, MODELS)
    s.start()
    check(s.served("b") == "b" and s.served("a") == "a", "b then a")
    t = Pty(env, "top", [harness.binary("llmuxctl"), "--socket", s.sup.socket, "top"])
    screen = t.wait_screen(lambda x: row(x, "a") and row(x, "b") and
                           row(x, "a")[1] == "ready", what="both models, a ready")
    check(screen.splitlines()[0].startswith("llmux  active:a  mode auto"), screen)
    check(row(screen, "b")[1] == "sleeping" and row(screen, "a")[3] == "off+run", screen)
    check("b -> a" in screen and "last switches" in screen, screen)
    # The TTL of a counts down, on the 1 s tick (a's TTL is 600 s).
    t.wait_screen(lambda x: re.search(r"\b9m5\ds\s*$", [l for l in x.splitlines()
                                                        if l.startswith("a ")][0]),
                  what="a's TTL counting down")
    # A request for b: a switch whose wake takes 2.5 s.
    th = threading.Thread(target=s.served, args=("b",), daemon=True)
    th.start()
    screen = t.wait_screen(lambda x: re.search(r"^switching a -> b  wake  \d", x, re.M),
                           what="the switch in progress, waking b")
    check(re.search(r"^switching a -> b  wake  [0-9.]+m?s \(this phase [0-9.]+m?s\)$",
                    screen, re.M), screen)
    screen = t.wait_screen(lambda x: re.search(r"^ \d\d:\d\d:\d\d  a -> b  [0-9.]+s = "
                                               r"drain \d+ms \+ evict \d+ms \+ wake "
                                               r"[0-9.]+s$", x, re.M) and
                           row(x, "b")[1] == "ready" and row(x, "a")[1] == "sleeping",
                           what="the switch done, b ready, a asleep")
    check("no switch in progress" in screen, screen)
    th.join(30)
    check(t.screen.overflow == 0, "nothing drawn past column 80")
    t.send(b"q")
    check(t.finish() == 0, "q quits with status 0")
    restored(t, "q")


@harness.test
def top_exits_on_sigint(env):
    s = Stack(env, MODELS)
    s.start()
    t = Pty(env, "top", [harness.binary("llmuxctl"), "--socket", s.sup.socket, "top"],
            cols=100, rows=30)
    t.wait_screen(lambda x: row(x, "a") and row(x, "b"), what="the models")
    check(t.screen.alternate and not t.screen.cursor_shown, "full screen, cursor hidden")
    # ^C on the terminal: the line discipline sends SIGINT.
    t.send(b"\x03")
    check(t.finish() == 0, "^C ends it with status 0")
    restored(t, "^C")
    # And SIGTERM from elsewhere.
    t = Pty(env, "top2", [harness.binary("llmuxctl"), "--socket", s.sup.socket, "top"])
    t.wait_screen(lambda x: row(x, "a"), what="the models")
    t.signal(signal.SIGTERM)
    check(t.finish() == 0, "SIGTERM ends it with status 0")
    restored(t, "SIGTERM")


@harness.test
def top_without_a_terminal_prints_lines(env):
    s = Stack(env, MODELS)
    s.start()
    p = env.spawn("top", [harness.binary("llmuxctl"), "--socket", s.sup.socket, "top"])
    wait_until(lambda: "  model=a state=stopped " in p.output(), 20, "a line per model")
    check(s.served("a") == "a", "a serves")
    wait_until(lambda: "  last_switch from=- to=a ok=true " in p.output() and
               "  model=a state=ready " in p.output(), 20, "the switch in the lines")
    check("\x1b" not in p.output(), "no escape sequences: %r" % p.output()[:200])
    p.signal(signal.SIGTERM)
    check(p.wait(10) == 0, "SIGTERM ends it with status 0")


@harness.test
def status_shows_last_use_and_ttl(env):
    s = Stack(env, MODELS)
    s.start()
    check(s.served("a") == "a", "a serves")
    # The countdown runs once the proxy says a has nothing in flight.
    st = s.sup.wait_model("a", lambda m: m["in_flight"] == 0, what="a idle")
    check(st["last_used_ms_ago"] is not None and st["last_used_ms_ago"] < 60000, st)
    check(st["ttl_remaining_s"] is not None and 500 < st["ttl_remaining_s"] <= 600, st)
    check(isinstance(st["requests_per_s"], (int, float)), st)
    b = s.sup.model("b")
    check(b["last_used_ms_ago"] is None and b["ttl_remaining_s"] is None, b)
    out = s.sup.ctl_ok("status")
    head = [l for l in out.splitlines() if l.startswith("MODEL")][0].split()
    check(head[-3:] == ["LAST_USED", "TTL", "NOTE"], head)
    cells = [l for l in out.splitlines() if l.startswith("a ")][0].split()
    used, ttl = cells[head.index("LAST_USED")], cells[head.index("TTL")]
    check(re.match(r"^\d+s$", used) and re.match(r"^(9|10)m\d\ds$", ttl), (used, ttl))
    cells = [l for l in out.splitlines() if l.startswith("b ")][0].split()
    check(cells[head.index("LAST_USED")] == "-" and cells[head.index("TTL")] == "-", cells)


if __name__ == "__main__":
    harness.main()
