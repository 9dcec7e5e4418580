#!/usr/bin/env python3
"""test_completion.py -- the bash completion of llmuxctl
(etc/llmuxctl.bash-completion): verbs from `llmuxctl help`, model names
from a running supervisor (through --socket), evictions, modes, options,
and nothing (no error) when the supervisor is unreachable."""
import os
import subprocess

import harness
from harness import check
from supervisor_helpers import Sup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "etc", "llmuxctl.bash-completion")

# bash-completion's _init_completion, reduced to what the script uses.
STUB = r'''
_init_completion() {
	words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
	cur=${words[cword]}; prev=${words[cword-1]}
}
_filedir() { COMPREPLY=(FILES); }
'''


def complete(line):
    """The completions bash offers for line (the last word is completed)."""
    words = line.split(" ")
    script = STUB + "source %s\n" % SCRIPT
    script += "COMP_WORDS=(%s)\n" % " ".join("'%s'" % w for w in words)
    script += "COMP_CWORD=%d\n_llmuxctl\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (len(words) - 1)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(harness.binary("llmuxctl")) + ":" + env["PATH"]
    env.pop("LLMUX_SOCKET", None)
    p = subprocess.run(["bash", "--norc", "-c", script], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    check(p.returncode == 0 and p.stderr == b"", (line, p.returncode, p.stderr))
    return sorted(w for w in p.stdout.decode().split("\n") if w)


@harness.test
def verbs_options_and_values(env):
    out = subprocess.run([harness.binary("llmuxctl"), "help"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    verbs = sorted(l.split()[0] for l in out.split("commands:")[1].split("\n\n")[0]
                   .split("\n") if l.startswith("  ") and l[2] != " ")
    check(len(verbs) >= 17 and "validate" in verbs, verbs)
    check(complete("llmuxctl ") == verbs, complete("llmuxctl "))
    check(complete("llmuxctl s") == sorted(v for v in verbs if v.startswith("s")))
    check(complete("llmuxctl --json st") == ["status", "stop"], complete("llmuxctl --json st"))
    check(complete("llmuxctl --j") == ["--json"])
    check(complete("llmuxctl mode m") == ["manual"])
    check(complete("llmuxctl help che") == ["checkpoint"])
    check(complete("llmuxctl --socket ") == ["FILES"])
    got = complete("llmuxctl sleep a --eviction off")
    check(got == ["offload+checkpoint", "offload+cuda_suspend", "offload+keep_running",
                  "offload+stop"], got)
    check(complete("llmuxctl logs a -") == ["-f", "-n"])
    check(complete("llmuxctl status ") == [])


@harness.test
def model_names_from_the_supervisor(env):
    sup = Sup(env, {"alpha": {}, "beta": {}, "gamma/x": {}})
    sup.start()
    s = sup.socket
    check(complete("llmuxctl --socket %s wake " % s) == ["alpha", "beta", "gamma/x"])
    check(complete("llmuxctl --socket=%s switch b" % s) == ["beta"])
    check(complete("llmuxctl --socket %s stop " % s) == ["--all", "alpha", "beta", "gamma/x"])
    check(complete("llmuxctl --socket %s eviction alpha d" % s) ==
          ["discard+checkpoint", "discard+cuda_suspend", "discard+keep_running",
           "discard+stop"])
    # Unreachable: no names, and nothing on the terminal.
    check(complete("llmuxctl --socket %s wake " % env.path("none.sock")) == [])


if __name__ == "__main__":
    harness.main()
