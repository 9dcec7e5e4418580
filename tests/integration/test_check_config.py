#!/usr/bin/env python3
"""test_check_config.py -- `llmux-supervisord --check-config -c FILE`:
exit status, `configuration OK` on stdout, FILE:LINE:COL diagnostics on
stderr, for good, bad, missing, directory and empty files; and the
difference between checking and running for facts about the machine."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, test  # noqa: E402

GOOD = """vllm_command: /bin/sh
models:
  chat:
    model_path: Qwen/Qwen2.5-7B-Instruct
    port: 8001
    eviction: offload+keep_running
"""


def supervisord(*args, env=None):
    e = dict(os.environ)
    e.pop("LLMUX_SOCKET", None)
    if env:
        e.update(env)
    p = subprocess.run([harness.binary("llmux-supervisord")] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@test
def good_yaml(env):
    path = env.write("llmux.yaml", GOOD)
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 0, "exit %d: %s" % (rc, err))
    check(out == "configuration OK\n", "stdout: %r" % out)
    check(err == "", "stderr: %r" % err)
    # -n is the short form.
    rc, out, _ = supervisord("-n", "-c", path)
    check(rc == 0 and out == "configuration OK\n", "-n: %d %r" % (rc, out))


@test
def good_seed_json(env):
    for name in ("seed-fifo.json", "seed-cost-aware.json", "seed-time-slice.json"):
        path = os.path.join(harness.ROOT, "tests", "configs", "good", name)
        rc, out, err = supervisord("--check-config", "-c", path)
        check(rc == 0, "%s: exit %d: %s" % (name, rc, err))
        check(out == "configuration OK\n", "%s: stdout %r" % (name, out))
        # Only warnings, if anything (programs this machine lacks).
        for line in err.splitlines():
            check(": warning: " in line, "%s: %s" % (name, line))


@test
def warnings_pass(env):
    path = env.write("w.yaml", GOOD + "prot: 3000\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 0, "exit %d" % rc)
    check(out == "configuration OK\n", "stdout %r" % out)
    check(err == "%s:7:1: warning: prot: unknown key, ignored (did you mean "
          "'port'?)\n" % path, "stderr %r" % err)


@test
def bad_file(env):
    path = env.write("bad.yaml", GOOD + "  code:\n    model_path: q\n    port: 8001\n"
                     "policy:\n  policy_type: lifo\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 1, "exit %d" % rc)
    check(out == "", "stdout %r" % out)
    check(err == ("%s:9:11: error: models.code.port: port 8001 is already used by "
                  "models.chat.port (line 5)\n"
                  "%s:11:16: error: policy.policy_type: unknown policy type 'lifo' "
                  "(expected fifo, cost_aware, time_slice or batch_aware)\n")
          % (path, path), "stderr %r" % err)


@test
def bad_samples(env):
    bad = os.path.join(harness.ROOT, "tests", "configs", "bad")
    for name in sorted(os.listdir(bad)):
        if name.endswith(".expect"):
            continue
        path = os.path.join(bad, name)
        rc, out, err = supervisord("--check-config", "-c", path)
        check(rc == 1, "%s: exit %d" % (name, rc))
        check(out == "", "%s: stdout %r" % (name, out))
        errors = [ln for ln in err.splitlines() if ": error: " in ln]
        check(errors, "%s: no error in %r" % (name, err))
        for line in err.splitlines():
            check(line.startswith(path + ":"), "%s: %r" % (name, line))


@test
def missing_file(env):
    path = env.path("nope.yaml")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 1 and out == "", "exit %d, stdout %r" % (rc, out))
    check(err == "%s: error: cannot open: No such file or directory\n" % path,
          "stderr %r" % err)


@test
def directory(env):
    rc, out, err = supervisord("--check-config", "-c", env.dir)
    check(rc == 1 and out == "", "exit %d, stdout %r" % (rc, out))
    check(err == "%s: error: is a directory, not a configuration file\n" % env.dir,
          "stderr %r" % err)


@test
def empty_file(env):
    path = env.write("empty.yaml", "")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 1 and out == "", "exit %d, stdout %r" % (rc, out))
    check(err == "%s: error: the file is empty: it holds no configuration\n" % path,
          "stderr %r" % err)


@test
def machine_facts(env):
    """A checkpoint_path missing here: a warning to check, an error to run."""
    missing = env.path("no-images")
    path = env.write("ck.yaml", GOOD + "    checkpoint_path: %s\n"
                     "checkpoint: {criu_path: /bin/sh}\n" % missing)
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 0 and out == "configuration OK\n", "check: %d %r %r" % (rc, out, err))
    check(err.startswith("%s:7:22: warning: models.chat.checkpoint_path: %s does not "
                         "exist on this machine" % (path, missing)), "check: %r" % err)
    rc, out, err = supervisord("-c", path)
    check(rc == 1 and out == "", "run: %d %r" % (rc, out))
    check(err == "%s:7:22: error: models.chat.checkpoint_path: %s does not exist "
          "on this machine\n" % (path, missing), "run: %r" % err)


@test
def missing_accounts_as_root(env):
    """As root, a user: (or proxy_user, admin_group) written in the file
    that does not exist is an error of --check-config, not a supervisor
    whose every model start fails later."""
    if os.geteuid() != 0:
        print("skipped: the tests do not run as root")
        return
    path = env.write("u.yaml", GOOD + "user: llmux-no-such-user\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 1 and out == "", "check: %d %r %r" % (rc, out, err))
    check(err == "%s:7:7: error: user: user 'llmux-no-such-user' does not exist on "
          "this machine\n" % path, "stderr %r" % err)
    path = env.write("g.yaml", GOOD + "admin_group: llmux-no-such-group\n"
                     "proxy_user: llmux-no-such-proxy\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 1 and out == "", "check: %d %r %r" % (rc, out, err))
    check(err == ("%s:7:14: error: admin_group: group 'llmux-no-such-group' does "
                  "not exist on this machine\n"
                  "%s:8:13: error: proxy_user: user 'llmux-no-such-proxy' does "
                  "not exist on this machine\n") % (path, path), "stderr %r" % err)
    # The package's own account, written and missing: the package is not
    # installed here; a warning.
    import pwd
    try:
        pwd.getpwnam("llmux-engine")
    except KeyError:
        path = env.write("pkg.yaml", GOOD + "user: llmux-engine\n")
        rc, out, err = supervisord("--check-config", "-c", path)
        check(rc == 0 and err == "%s:7:7: warning: user: user 'llmux-engine' does "
              "not exist on this machine (the package creates it)\n" % path,
              (rc, out, err))
    # Accounts that exist pass.
    path = env.write("ok.yaml", GOOD + "user: nobody\nadmin_group: nogroup\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 0 and out == "configuration OK\n" and err == "", (rc, out, err))


@test
def host_in_extra_args(env):
    """extra_args naming a host replace llmux's --host 127.0.0.1: a warning."""
    path = env.write("h.yaml", GOOD + "    extra_args: [--host, 0.0.0.0]\n")
    rc, out, err = supervisord("--check-config", "-c", path)
    check(rc == 0 and out == "configuration OK\n", (rc, out, err))
    check(err.startswith("%s:7:18: warning: models.chat.extra_args: --host replaces "
                         "llmux's --host 127.0.0.1" % path), "stderr %r" % err)


@test
def run_mode(env):
    """Without --check-config a good file loads and the supervisor serves
    on --socket, or on LLMUX_SOCKET."""
    import signal
    text = GOOD + "state_dir: %s\nlog_dir: %s\n" % (env.path("state"), env.path("logs"))
    path = env.write("llmux.yaml", text)
    for name, args, extra in (("by-option", ["--socket", env.path("s.sock")], {}),
                              ("by-env", [], {"LLMUX_SOCKET": env.path("s.sock2")})):
        sock = args[1] if args else extra["LLMUX_SOCKET"]
        p = env.spawn(name, [harness.binary("llmux-supervisord"), "-c", path] + args,
                      extra_env=extra)
        harness.wait_until(lambda: subprocess.run(
            [harness.binary("llmuxctl"), "--socket", sock, "status"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0,
            20, "the supervisor on %s" % sock)
        check('msg="listening" path=%s' % sock in p.output(), p.output())
        p.signal(signal.SIGTERM)
        check(p.wait(20) == 0, "clean exit: %s" % p.output())


@test
def options(env):
    rc, out, _ = supervisord("--version")
    check(rc == 0 and out.startswith("llmux-supervisord "), "version: %d %r" % (rc, out))
    rc, out, _ = supervisord("--help")
    check(rc == 0 and "--check-config" in out, "help: %d %r" % (rc, out))
    rc, out, err = supervisord("--frobnicate")
    check(rc == 1 and out == "" and "usage:" in err, "bad option: %d %r" % (rc, err))
    rc, out, err = supervisord("-c")
    check(rc == 1 and "usage:" in err, "missing argument: %d %r" % (rc, err))
    rc, out, err = supervisord("extra")
    check(rc == 1 and "usage:" in err, "operand: %d %r" % (rc, err))


if __name__ == "__main__":
    harness.main()
