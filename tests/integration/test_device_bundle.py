"""test_device_bundle.py -- `make device-bundle` (tools/device-bundle.sh):
the bundle is under 60 MiB, needs no glibc newer than this machine's, and
its programs start in a minimal root holding only glibc's files, a
/bin/sh and the bundle (chroot; in a user namespace when not root), with
every symbol bound at start (LD_BIND_NOW). There the GPU tools also load
the bundle's fake libcuda and answer from a fake GPU.

`make check` builds the bundle before the tests run."""
import os
import re
import shutil
import subprocess

import harness
from harness import check, test

LIMIT = 60 * 1024 * 1024
GLIBC = re.compile(r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libnsl|"
                   r"libanl|libmvec)\.so")


def bundle():
    path = os.path.join(harness.BUILD, "device-bundle")
    check(os.path.isfile(os.path.join(path, "MANIFEST")),
          "no bundle at %s: run make device-bundle" % path)
    return path


def ldd(path):
    """{soname: resolved path or None} of an ELF file."""
    p = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, LD_LIBRARY_PATH=""))
    out = {}
    for line in p.stdout.decode().splitlines():
        m = re.match(r"\s*(\S+) => (\S+|not found)", line)
        if m:
            out[m.group(1)] = None if m.group(2) == "not found" else m.group(2)
        m = re.match(r"\s*(/\S+ld-linux\S*) ", line)
        if m:
            out[os.path.basename(m.group(1))] = m.group(1)
    return out


def elf_files(b):
    for d in ("libexec", "lib", "fakes"):
        for n in sorted(os.listdir(os.path.join(b, d))):
            yield os.path.join(b, d, n)


@test
def bundle_is_small_and_whole(env):
    b = bundle()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(b) for f in fs)
    check(size < LIMIT, "the bundle is %d bytes" % size)
    for n in ("llmux-supervisord", "llmux-proxyd", "llmuxctl", "llmux-fakevllm", "llmux-sim",
              "gpu_check", "gpu_copy"):
        check(os.access(os.path.join(b, "bin", n), os.X_OK), "bin/" + n)
        check(os.path.isfile(os.path.join(b, "libexec", n)), "libexec/" + n)
    for n in ("etc/device-run.yaml.in", "tests/gpu/device-run.sh", "tests/gpu/device_run.py",
              "tests/gpu/device_stack.py", "fakes/libcuda.so", "fakes/libnvidia-ml.so"):
        check(os.path.isfile(os.path.join(b, n)), n)
    # Everything the programs need is in lib/, but glibc.
    libs = set(os.listdir(os.path.join(b, "lib")))
    for f in elf_files(b):
        for name, path in ldd(f).items():
            check(GLIBC.match(name) or name in libs,
                  "%s needs %s (%s), which is neither glibc's nor in lib/" % (f, name, path))
    with open(os.path.join(b, "MANIFEST")) as f:
        need = re.search(r"needs glibc (\S+)", f.read()).group(1)
    have = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    check([int(x) for x in need.split(".")] <= [int(x) for x in have.split(".")],
          "the bundle needs glibc %s, this machine has %s" % (need, have))


def minimal_root(env, b):
    """A root with glibc's files, /bin/sh and the bundle at /bundle."""
    root = env.path("root")
    glibc = {}
    for f in list(elf_files(b)) + ["/bin/sh"]:
        for name, path in ldd(os.path.realpath(f)).items():
            if GLIBC.match(name) and path:
                glibc[path] = name
    for path in glibc:
        for dest in (path, os.path.realpath(path)):
            d = os.path.join(root, dest.lstrip("/"))
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy(os.path.realpath(path), d)
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(os.path.realpath("/bin/sh"), os.path.join(root, "bin", "sh"))
    for d in ("tmp", "dev"):
        os.makedirs(os.path.join(root, d))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copytree(b, os.path.join(root, "bundle"), symlinks=True)
    return root


def sanitized(b):
    """A sanitizer build's bundle: its runtime needs /proc."""
    return any(n.startswith(("libasan", "libubsan")) for n in os.listdir(os.path.join(b, "lib")))


def in_root_(root, argv, extra=None, proc=False):
    """Run argv (paths inside root) chrooted; (exit status, output). With
    proc, in a mount namespace of its own with /proc mounted in the root."""
    e = {"PATH": "/bin", "LD_BIND_NOW": "1"}
    e.update(extra or {})
    tool = shutil.which("chroot") or "/usr/sbin/chroot"
    cmd = [tool, root] + argv
    if proc:
        cmd = [shutil.which("unshare") or "unshare", "-m", "--propagation", "private",
               "/bin/sh", "-c", 'mount -t proc proc "$0/proc" && exec "$@"', root] + cmd
    elif os.geteuid() != 0:
        cmd = [shutil.which("unshare") or "unshare", "-r"] + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace")


@test
def programs_start_with_only_glibc_and_the_bundle(env):
    b = bundle()
    root = minimal_root(env, b)
    proc = sanitized(b)
    if proc and os.geteuid() != 0:
        print("SKIP: a sanitizer build's programs need /proc, which only root mounts here")
        return
    if proc:
        os.makedirs(os.path.join(root, "proc"))

    def in_root(root, argv, extra=None):
        return in_root_(root, argv, extra, proc)
    rc, out = in_root(root, ["/bin/sh", "-c", "echo ready"])
    if os.geteuid() != 0 and rc != 0:
        print("SKIP: no chroot here (not root, and no user namespace): %s" % out.strip())
        return
    check(rc == 0 and "ready" in out, "the minimal root runs /bin/sh: %d %s" % (rc, out))
    # Nothing else is there: not even coreutils.
    check(sorted(os.listdir(os.path.join(root, "bin"))) == ["sh"], os.listdir(root))
    check(set(os.listdir(root)) <= {"bin", "bundle", "dev", "lib", "lib64", "tmp", "usr",
                                    "proc"}, os.listdir(root))
    for name in ("llmux-supervisord", "llmux-proxyd", "llmuxctl", "llmux-fakevllm",
                 "llmux-sim"):
        rc, out = in_root(root, ["/bundle/bin/" + name, "--version"])
        check(rc == 0 and name in out and "0." in out,
              "%s --version in the minimal root: %d %s" % (name, rc, out))
    # The wrappers are found through PATH too.
    rc, out = in_root(root, ["/bin/sh", "-c", "PATH=/bundle/bin; llmuxctl --version"])
    check(rc == 0 and "llmuxctl" in out, (rc, out))
    rc, out = in_root(root, ["/bundle/bin/gpu_copy"])
    check(rc == 2 and "usage: gpu_copy" in out, (rc, out))
    rc, out = in_root(root, ["/bundle/bin/gpu_check"])
    check(rc == 2 and "usage: gpu_check" in out, (rc, out))
    # The GPU tools load a CUDA library with dlopen: the bundle's fake here.
    gpu = os.path.join(root, "tmp", "fakegpu")
    os.makedirs(gpu)
    with open(os.path.join(gpu, "gpus"), "w") as f:
        f.write("GPU-8f6b1a20-1111-2222-3333-004455667788 1024 NVIDIA H100 80GB HBM3\n")
    fake = {"LLMUX_FAKE_GPU_DIR": "/tmp/fakegpu",
            "LLMUX_CUDA_LIBRARY": "/bundle/fakes/libcuda.so",
            "LLMUX_NVML_LIBRARY": "/bundle/fakes/libnvidia-ml.so"}
    rc, out = in_root(root, ["/bundle/bin/gpu_copy", "info"], fake)
    check(rc == 0 and 'device="NVIDIA H100 80GB HBM3"' in out and
          "total_bytes=%d" % (1024 << 20) in out, (rc, out))
    rc, out = in_root(root, ["/bundle/bin/gpu_check", "procs"], fake)
    check(rc == 0 and "gpu index=0" in out, (rc, out))
    # Without a driver, a clear refusal.
    rc, out = in_root(root, ["/bundle/bin/gpu_copy", "info"])
    check(rc == 1 and "cannot load libcuda.so.1" in out, (rc, out))


if __name__ == "__main__":
    harness.main()
