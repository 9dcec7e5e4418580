"""test_proxy_cli.py -- llmux-proxyd's command line: --help, --version, bad
arguments, and LLMUX_SOCKET naming the supervisor's socket."""
import subprocess

import harness
from harness import test, check
from fakesup import READY_S, state_msg
from proxykit import Stack, start_upstub


def run(*args):
    p = subprocess.run([harness.binary("llmux-proxyd")] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@test
def help_version_and_bad_arguments(env):
    rc, out, _ = run("--help")
    check(rc == 0 and "--listen ADDR:PORT" in out and "--admin-listen" in out, out)
    rc, out, _ = run("--version")
    check(rc == 0 and out.startswith("llmux-proxyd "), out)
    rc, _, err = run("--bogus")
    check(rc == 1 and "usage" in err, err)
    rc, _, err = run("extra-argument")
    check(rc == 1, err)
    rc, _, err = run("--listen", "no-port-here")
    check(rc != 0 and "ADDR:PORT" in err, err)
    rc, _, err = run("--listen", "127.0.0.1:99999")
    check(rc != 0, err)


@test
def llmux_socket_environment(env):
    up = start_upstub(env, "a")
    st = Stack(env, [("a", up, [])], state_msg({"a": (READY_S, up, 1)}), start=False)
    st.start_proxy(argv=[harness.binary("llmux-proxyd"), "--listen", "127.0.0.1:%d" % st.port],
                   extra_env={"LLMUX_SOCKET": st.sock})
    check(st.post({"model": "a"})[0] == 200)


if __name__ == "__main__":
    harness.main()
