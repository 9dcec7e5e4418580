#!/usr/bin/env python3
"""test_supervisor_privileged.py -- llmux-supervisord as root (only when the
tests run as root): the model process runs as the configured user, with no
supplementary groups, no capabilities and no_new_privs; the socket is 0660;
a missing user fails the start with a clear reason."""
import os

import harness
from harness import check
from supervisor_helpers import Sup, as_root, NOBODY


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


@harness.test
def model_runs_as_the_configured_user(env):
    if not as_root():
        print("skipped: the tests do not run as root")
        return
    sup = Sup(env, {"a": {"args": ["--fake-engine-process"]}}, unprivileged=False,
              user="nobody")
    sup.start()
    check("unprivileged" not in sup.ctl_ok("status").split("\n")[0], "runs as root")
    sup.ctl_ok("wake", "a")
    for pid in sup.model_pids("a"):
        st = status_fields(pid)
        check(st["Uid"].split() == [str(NOBODY)] * 4, st["Uid"])
        check(st["Gid"].split() == [str(NOBODY)] * 4, st["Gid"])
        check(st["Groups"] == "", "no supplementary groups: %r" % st["Groups"])
        check(st["NoNewPrivs"] == "1", st["NoNewPrivs"])
        check(int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0 and
              int(st["CapBnd"], 16) == 0, (st["CapEff"], st["CapBnd"]))
    check(oct(os.stat(sup.socket).st_mode & 0o777) == oct(0o660), "socket mode")
    sup.ctl_ok("stop", "a")


@harness.test
def missing_user_fails_the_start(env):
    if not as_root():
        print("skipped: the tests do not run as root")
        return
    sup = Sup(env, {"a": {}}, unprivileged=False, user="llmux-no-such-user")
    sup.start()
    rc, out, err = sup.ctl("wake", "a")
    check(rc == 1 and "user 'llmux-no-such-user' does not exist" in err, (rc, out, err))
    check(sup.model("a")["state"] == "failed", sup.model("a"))


if __name__ == "__main__":
    harness.main()
