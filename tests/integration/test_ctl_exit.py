#!/usr/bin/env python3
"""test_ctl_exit.py -- llmuxctl's exit statuses, each as llmuxctl(1)
lists them, in text and with --json: 0 (done; VERB --help; a stop of a
model that has no process, as `systemctl stop`), 1 (the supervisor
refused, or the operation failed), 2 (usage), 3 (no supervisor). With
--json, wherever it stands, an error is one {"error": ...} document on
stdout and nothing on stderr."""
import json
import os
import subprocess

import harness
from harness import check
from supervisor_helpers import Sup, as_root


def ctl(*args):
    p = subprocess.run([harness.binary("llmuxctl")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def verbs():
    """The commands, as `llmuxctl help` lists them (from the verb table)."""
    rc, out, err = ctl("help")
    check(rc == 0, (rc, err))
    names = [l.split()[0] for l in out.split("\n\n")[1].split("\n")[1:]
             if l.startswith("  ") and not l.startswith("   ")]
    check("stop" in names and "help" in names, names)
    return names


def json_error(args, rc_want):
    """llmuxctl ARGS with --json: exit rc_want, one {"error"} document on
    stdout, no error on stderr (a long operation's progress may be there);
    returns the error text."""
    rc, out, err = ctl(*args)
    check(rc == rc_want, (args, rc, out, err))
    check("llmuxctl:" not in err and "usage:" not in err,
          "no error on stderr: %r %r" % (args, err))
    try:
        body = json.loads(out)
    except ValueError:
        raise AssertionError("not one JSON document: %r %r" % (args, out))
    check(isinstance(body.get("error"), str), body)
    return body["error"]


@harness.test
def exit_0_verb_help(env):
    # VERB --help (or -h, wherever among its arguments) prints the verb's
    # usage and what it does on stdout, whatever else is on the line.
    for v in verbs():
        for flag in ("--help", "-h"):
            rc, out, err = ctl("--socket", env.path("none.sock"), v, flag)
            check(rc == 0 and err == "", (v, flag, rc, out, err))
            check(out.startswith("usage: llmuxctl %s" % v) and out.count("\n") == 2,
                  (v, out))
    rc, out, err = ctl("logs", "a", "-n", "nonsense", "--help")
    check(rc == 0 and out.startswith("usage: llmuxctl logs MODEL"), (rc, out, err))
    rc, help_out, _ = ctl("help", "stop")
    rc2, out, _ = ctl("stop", "--help")
    check(rc == rc2 == 0 and out == help_out, (help_out, out))


@harness.test
def exit_0_stop_without_process(env):
    sup = Sup(env, {"a": {}, "broken": {"args": ["--fake-exit-during-startup=1"]}})
    sup.start()
    # Never started.
    rc, out, err = sup.ctl("stop", "a")
    check(rc == 0 and out == "Model a is not running (not_started)\n", (rc, out, err))
    rc, body = sup.ctl_json("stop", "a")
    check(rc == 0 and body == {"message": "Model a is not running (not_started)"}, body)
    # Started, stopped, stopped again.
    sup.ctl_ok("wake", "a")
    rc, out, err = sup.ctl("stop", "a")
    check(rc == 0 and out.startswith("Model a stopped\n"), (rc, out, err))
    check(sup.model("a")["state"] == "stopped" and sup.model("a")["pid"] is None,
          sup.model("a"))
    rc, out, err = sup.ctl("stop", "a")
    check(rc == 0 and out.startswith("Model a is not running"), (rc, out, err))
    # Failed to start: no process either.
    rc, out, err = sup.ctl("wake", "broken")
    check(rc == 1, (rc, out, err))
    sup.wait_model("broken", lambda m: m["state"] == "failed", what="broken failed")
    rc, out, err = sup.ctl("stop", "broken")
    check(rc == 0 and out.startswith("Model broken is not running"), (rc, out, err))
    # Nothing runs: --all has nothing to do.
    rc, out, err = sup.ctl("stop", "--all")
    check(rc == 0, (rc, out, err))


@harness.test
def exit_1_refused_or_failed(env):
    sup = Sup(env, {"a": {}, "broken": {"args": ["--fake-exit-during-startup=1"]}})
    sup.start()
    rc, out, err = sup.ctl("stop", "nope")
    check(rc == 1 and out == "" and err == "llmuxctl: Model not found: nope\n",
          (rc, out, err))
    msg = json_error(["--socket", sup.socket, "--json", "stop", "nope"], 1)
    check(msg == "Model not found: nope", msg)
    # An operation that fails.
    msg = json_error(["--socket", sup.socket, "--json", "wake", "broken"], 1)
    check(msg.startswith("Failed to wake model"), msg)
    # A model with a process that refuses the stop is no success.
    sup.ctl_ok("pin", "a")
    rc, out, err = sup.ctl("stop", "a")
    check(rc == 1 and "model a is pinned; unpin it first" in err, (rc, out, err))
    check(sup.model("a")["pid"] is not None, "still running")
    msg = json_error(["--socket", sup.socket, "stop", "a", "--json"], 1)
    check("pinned" in msg, msg)
    if not as_root():
        print("skipped: the supervisor's refusal of a peer (needs root)")
        return
    # The supervisor refuses the connection itself (SO_PEERCRED).
    os.chmod(sup.socket, 0o666)
    rc, out, err = sup.ctl("--json", "status", as_uid=1)
    check(rc == 1 and err == "", (rc, out, err))
    check("uid 1 (daemon) may not use this socket" in json.loads(out)["error"], out)


@harness.test
def exit_2_usage(env):
    sock = env.path("none.sock")
    for args, want in ((["sleep"], "usage: llmuxctl sleep MODEL [--eviction W+P]"),
                       (["wake", "a", "b"], "usage: llmuxctl wake MODEL"),
                       (["mode", "sideways"], "usage: llmuxctl mode auto|manual"),
                       (["stop", "-x"], "usage: llmuxctl stop MODEL|--all"),
                       (["frobnicate"], "unknown command 'frobnicate'"),
                       (["--bogus", "status"], "unknown option '--bogus'"),
                       ([], "no command")):
        rc, out, err = ctl("--socket", sock, *args)
        check(rc == 2 and out == "", (args, rc, out, err))
        for j in {tuple(["--json"] + args), tuple(args[:1] + ["--json"] + args[1:])}:
            msg = json_error(["--socket", sock] + list(j), 2)
            check(want in msg, (j, msg))
    # A bad eviction is one error, not two documents.
    msg = json_error(["--socket", sock, "--json", "sleep", "a", "--eviction", "loud+clear"], 2)
    check(msg.startswith("unknown eviction 'loud+clear'"), msg)
    rc, out, err = ctl("--socket", sock, "sleep", "a", "--eviction", "loud+clear")
    check(rc == 2 and "unknown eviction" in err and
          "usage: llmuxctl sleep MODEL" in err, (rc, out, err))
    msg = json_error(["--json", "--socket"], 2)
    check(msg == "option '--socket' needs a value", msg)


@harness.test
def exit_3_unreachable(env):
    path = env.path("absent.sock")
    want = ("the supervisor is not running (cannot connect to %s: No such file or "
            "directory)" % path)
    rc, out, err = ctl("--socket", path, "status")
    check(rc == 3 and out == "" and err == "llmuxctl: %s\n" % want, (rc, out, err))
    for args in (["--json", "status"], ["status", "--json"], ["--json", "stop", "a"],
                 ["--json", "stop", "--all"], ["logs", "a", "--json"]):
        rc, out, err = ctl("--socket", path, *args)
        check(rc == 3 and err == "" and json.loads(out) == {"error": want}, (args, out, err))


if __name__ == "__main__":
    harness.main()
