#!/usr/bin/env python3
"""test_gpu_criu.py -- the checkpoint strategy through the test suite's
fake criu: `llmuxctl checkpoint` (start, warm up, dump with llmux 0.7's
flags) and `llmuxctl restore` (restore detached, re-adopted, the post-
restore wake steps, the same answer), images renamed into place only when
the dump succeeded, the manifest (model, eviction, driver, GPUs, checksums),
keep_images, refusals (another driver, another GPU count, a changed image
file, no manifest), a dump that runs out of disk, an image criu cannot
read, TP>1, a lazy restore from a model's checkpoint_path,
--check-config on a criu too old, and the planted-directory attack of a
local user on a supervisor running as root (refused, with the path and
why)."""
import hashlib
import os
import signal
import shutil
import subprocess

import harness
from harness import check
from gpu_helpers import H100, FakeGPU, GpuSup, phases
from supervisor_helpers import NOBODY, alive, as_root

SEED_DUMP_FLAGS = ["--shell-job", "--ext-unix-sk", "--tcp-established", "--link-remap",
                   "--enable-external-masters", "-L"]


def ckpt_sup(env, eviction="offload+checkpoint", tp=1, extra="", keep=True, fake=None):
    fake = fake or FakeGPU(env, ((H100, 81920), (H100, 81920)))
    if not keep:
        extra += ""
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000, tp), "eviction": eviction}}, extra)
    if not keep:
        # keep_images belongs in the checkpoint section GpuSup writes.
        sup.extra = sup.extra.replace("checkpoint:\n", "checkpoint:\n  keep_images: false\n", 1)
        sup.write_config(sup.models, sup.extra)
    sup.start()
    return fake, sup


def images(sup, name="a"):
    return os.path.join(sup.images, name, "images")


def manifest(sup, name="a"):
    with open(os.path.join(images(sup, name), "llmux-manifest")) as f:
        return f.read()


@harness.test
def checkpoint_and_restore(env):
    fake, sup = ckpt_sup(env)
    # Not running: started, warmed up, dumped (llmux 0.7's --checkpoint).
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and "Model a checkpointed to %s" % images(sup) in out, (out, err))
    check("checkpoint a: start" in err and "checkpoint a: warmup" in err and
          "checkpoint a: criu_dump" in err, err)
    m = sup.model("a")
    check(m["process_state"] == "checkpointed" and m["pid"] is None, m)
    dump = [c for c in fake.criu_calls() if c.startswith("dump")]
    check(len(dump) == 1, fake.criu_calls())
    for flag in SEED_DUMP_FLAGS:
        check(flag in dump[0].split(), (flag, dump[0]))
    files = sorted(os.listdir(images(sup)))
    check(files == ["fake-image.txt", "inventory.img", "llmux-manifest", "pages-1.img"], files)
    check(not os.path.exists(images(sup) + ".tmp"), "the temp dir was renamed")
    text = manifest(sup)
    check(text.splitlines()[1] == "llmux-checkpoint 1", text)
    check("model name=a path=%s port=%d tp=1 eviction=offload+checkpoint" %
          (sup.model_path("a"), sup.ports["a"]) in text, text)
    check("machine driver=570.86.15 cuda=12080 gpus=2" in text, text)
    check("gpu index=1 name=NVIDIA%20H100%2080GB%20HBM3 uuid=GPU-" in text, text)
    check(text.count("\nfile name=") == 3 and "sha256=" in text, text)

    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and body["message"] == "Model a restored", body)
    # Dumped offloaded: restore, health, then wake_up (llmux 0.7's order).
    check(phases(body) == ["criu_restore", "health", "wake_up"], body)
    m = sup.model("a")
    check(m["state"] == "ready" and m["pid"] is not None, m)
    restore = [c for c in fake.criu_calls() if c.startswith("restore")]
    check(len(restore) == 1 and "--restore-detached" in restore[0] and
          "--pidfile" in restore[0], fake.criu_calls())
    status, text = sup.ask("a")
    check(status == 200, text)
    # The restored process came back asleep, as it was dumped.
    rc, out, err = sup.ctl("logs", "a", "-n", "200")
    check('msg="restored from a checkpoint" level=1' in out, out[-2000:])
    # keep_images (the default): still there.
    check(os.path.exists(os.path.join(images(sup), "llmux-manifest")), "kept")
    # Sleeping with the model's eviction is a checkpoint again, and back.
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and phases(body) == ["sleep", "criu_dump"], body)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)
    check(sup.ask("a") == (200, text), "the same answer")


@harness.test
def checkpoint_of_a_checkpointed_model(env):
    """Nothing to do, and the images it has are kept."""
    fake, sup = ckpt_sup(env)
    sup.ctl_ok("checkpoint", "a")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and body["message"] == "Model a checkpointed to %s" % images(sup) and
          phases(body) == [], body)
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)


@harness.test
def checkpoint_after_a_supervisor_restart(env):
    """A model started for a checkpoint eviction writes its log to a file
    (CRIU cannot dump a pipe). Adopted by a new supervisor after kill -9,
    it is still known as one: it can be checkpointed. One whose output is
    the log keeper's pipe is still refused, with the reason."""
    fake = FakeGPU(env, ((H100, 81920), (H100, 81920)))
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000), "eviction": "offload+checkpoint"},
                             "b": {"args": fake.args(1000), "eviction": "offload+keep_running"}})
    proc = sup.start()
    sup.ctl_ok("wake", "a")
    pid = sup.model("a")["pid"]
    proc.signal(signal.SIGKILL)
    proc.wait(10)
    sup.start("supervisord-2")
    check(sup.model("a")["pid"] == pid, "adopted, not restarted")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and phases(body) == ["sleep", "criu_dump"], body)
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and sup.model("a")["state"] == "ready", body)

    sup.ctl_ok("wake", "b")
    proc = sup.proc
    proc.signal(signal.SIGKILL)
    proc.wait(10)
    sup.start("supervisord-3")
    rc, body = sup.ctl_json("checkpoint", "b")
    check(rc != 0 and "its output is a pipe CRIU cannot dump" in body["error"], body)


@harness.test
def checkpoint_options(env):
    fake, sup = ckpt_sup(env, eviction="discard+stop")
    rc, body = sup.ctl_json("checkpoint", "a", "--eviction", "offload+stop")
    check(rc == 1 and "checkpoint needs an eviction whose process is checkpoint" in
          body["error"], body)
    rc, out, err = sup.ctl("checkpoint", "a", "--eviction", "retain+checkpoint",
                           "--no-warmup")
    check(rc == 0 and "warmup" not in err, (out, err))
    check("eviction=retain+checkpoint" in manifest(sup), manifest(sup))
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health"], body)
    rc, out, err = sup.ctl("restore", "a")
    check(rc == 1 and "is not checkpointed" in err, err)
    # Started for its own eviction (discard+stop), its output is a pipe:
    # refused before anything is done to it.
    sup.ctl_ok("stop", "a")
    sup.ctl_ok("wake", "a")
    pid = sup.model("a")["pid"]
    rc, body = sup.ctl_json("checkpoint", "a", "--eviction", "retain+checkpoint")
    check(rc == 1 and "its output is a pipe CRIU cannot dump" in body["error"], body)
    check(sup.model("a")["pid"] == pid and alive(pid), "left running")


@harness.test
def keep_images_false(env):
    fake, sup = ckpt_sup(env, keep=False)
    sup.ctl_ok("checkpoint", "a")
    check(os.path.isdir(images(sup)), "dumped")
    sup.ctl_ok("restore", "a")
    check(not os.path.exists(images(sup)), "removed after the restore")


def refused(sup, fake, says):
    """restore fails with a refusal; criu restore never runs; cold start."""
    before = len(fake.criu_calls())
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and body["error"].startswith("Restore failed: criu_restore failed, cold "
                                               "start instead: image refused: "), body)
    check(says in body["error"], (says, body["error"]))
    check(phases(body) == ["criu_restore", "start"], body)
    check(len(fake.criu_calls()) == before, "criu restore did not run")
    check(sup.model("a")["state"] == "ready", "started afresh")


@harness.test
def refusals(env):
    fake, sup = ckpt_sup(env)
    sup.ctl_ok("checkpoint", "a")
    fake.write("driver", "575.51.03 12090\n")
    refused(sup, fake, "it was made with NVIDIA driver 570.86.15, this machine has 575.51.03")
    fake.write("driver", "570.86.15 12080\n")

    sup.ctl_ok("checkpoint", "a")
    fake.set_gpus([(H100, 81920)] * 3)
    refused(sup, fake, "it was made on a machine with 2 GPUs, this one has 3")
    fake.set_gpus([(H100, 81920)] * 2)

    sup.ctl_ok("checkpoint", "a")
    with open(os.path.join(images(sup), "pages-1.img"), "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xff]))
    refused(sup, fake, "image file pages-1.img fails its checksum")

    sup.ctl_ok("checkpoint", "a")
    os.unlink(os.path.join(images(sup), "inventory.img"))
    refused(sup, fake, "image file inventory.img is missing")

    # The manifest itself: for another port, or another model.
    mpath = os.path.join(images(sup), "llmux-manifest")
    for old, new, says in ((" port=%d " % sup.ports["a"], " port=1 ",
                            "it serves port 1, model a is configured on port %d"
                            % sup.ports["a"]),
                           (" path=", " path=x", "it holds x%s, model a is %s"
                            % (sup.model_path("a"), sup.model_path("a")))):
        sup.ctl_ok("checkpoint", "a")
        with open(mpath) as f:
            text = f.read()
        with open(mpath, "w") as f:
            f.write(text.replace(old, new, 1))
        refused(sup, fake, says)

    sup.ctl_ok("checkpoint", "a")
    os.unlink(mpath)
    refused(sup, fake, "it has no llmux manifest")


@harness.test
def dump_out_of_space_keeps_the_old_images(env):
    fake, sup = ckpt_sup(env)
    sup.ctl_ok("checkpoint", "a")
    good = manifest(sup)
    sup.ctl_ok("restore", "a")
    pids = sup.model_pids("a")
    fake.fault("criu_enospc")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 1, body)
    check(body["error"].startswith("Checkpoint failed: criu_dump failed: criu dump exited "
                                   "with status 1: "), body)
    check("No space left on device" in body["error"] and
          "(the model was stopped)" in body["error"], body)
    check(phases(body)[-2:] == ["criu_dump", "stop"], body)
    check(not any(alive(p) for p in pids), "stopped: GPU memory freed")
    check(not os.path.exists(images(sup) + ".tmp"), "the partial dump was removed")
    check(manifest(sup) == good, "the earlier images are untouched")


@harness.test
def checkpoint_call_failures(env):
    fake = FakeGPU(env)
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000), "eviction": "offload+checkpoint"},
                             "b": {"args": ["--fake-exit-during-startup=3"],
                                   "eviction": "offload+checkpoint"},
                             "c": {"args": fake.args(1000), "eviction": "offload+checkpoint"}})
    # images_dir where nothing can be created.
    sup.extra = sup.extra.replace("images_dir: %s" % sup.images, "images_dir: /proc/llmux-no")
    sup.write_config(sup.models, sup.extra)
    sup.start()
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 1 and "cannot create /proc/llmux-no" in body["error"] and
          "(the model was stopped)" in body["error"], body)
    # A model that does not start.
    rc, body = sup.ctl_json("checkpoint", "b")
    check(rc == 1 and body["error"].startswith("Checkpoint failed: the model did not start: ") and
          "exited with status 3" in body["error"], body)
    # A model that cannot answer its warm-up (its GPU process is locked):
    # left running, not dumped.
    sup.ctl_ok("wake", "c")
    gp = [p for p in fake.procs() if p in sup.model_pids("c")]
    check(len(gp) == 1, fake.procs())
    fake.write("proc.%d" % gp[0], "gpu=0 mib=1000 state=locked owner=0\n")
    rc, body = sup.ctl_json("checkpoint", "c")
    check(rc == 1 and body["error"] == "Checkpoint failed: the warm-up request failed: the "
          "model answered 500", body)
    check(sup.model("c")["state"] == "ready", "left running")
    check(not any(c.startswith("dump") for c in fake.criu_calls()), fake.criu_calls())


@harness.test
def corrupt_image_falls_back_to_a_cold_start(env):
    fake, sup = ckpt_sup(env)
    fake.fault("criu_corrupt")
    sup.ctl_ok("checkpoint", "a")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and "criu restore exited with status 1" in body["error"] and
          "corrupted image" in body["error"], body)
    check(phases(body) == ["criu_restore", "start"], body)
    check(sup.model("a")["state"] == "ready", sup.model("a"))


@harness.test
def tensor_parallel_checkpoint(env):
    fake, sup = ckpt_sup(env, eviction="retain+checkpoint", tp=2)
    sup.ctl_ok("wake", "a")
    tree = sup.model_pids("a")
    status, before = sup.ask("a")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and phases(body) == ["nccl_suspend", "criu_dump"], body)
    check(not any(alive(p) for p in tree), "the whole tree was dumped and is gone")
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "nccl_resume"], body)
    check(sup.ask("a") == (200, before), "the same answer")
    gp = [p for p in fake.procs() if alive(p)]
    check(len(gp) == 2, "both ranks back: %r" % fake.procs())


@harness.test
def lazy_restore_from_checkpoint_path(env):
    fake, sup = ckpt_sup(env)
    sup.ctl_ok("checkpoint", "a")
    saved = env.path("saved-images")
    shutil.copytree(images(sup), saved)
    sup.proc.stop()
    # A new supervisor whose model starts from those images, with its own
    # eviction: the manifest's (offload) decides the wake's steps.
    fake2 = fake
    sup2 = GpuSup(env, fake2, {"a": {"args": fake.args(1000),
                                     "eviction": "retain+stop",
                                     "checkpoint_path": saved}})
    sup2.ports = sup.ports
    sup2.write_config(sup2.models, sup2.extra)
    sup2.start(name="supervisord2")
    m = sup2.model("a")
    check(m["process_state"] == "checkpointed" and m["pid"] is None, m)
    rc, body = sup2.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)
    check(sup2.ask("a")[0] == 200, "serving")
    # The operator's images are never removed.
    check(os.path.exists(os.path.join(saved, "llmux-manifest")), "kept")


def as_nobody(*argv):
    p = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                        "--clear-groups"] + list(argv),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "as nobody: %r: %s" % (argv, p.stdout))


def planted_images(sup, good, marker):
    """A copy of good images whose process is a shell of the attacker's,
    with a manifest that matches it (model, port, machine, checksums)."""
    plant = sup.env.path("plant")
    shutil.copytree(good, plant)
    enc = "".join(c if "!" <= c <= "~" and c != "%" else "%%%02X" % ord(c)
                  for c in "id -u > %s; exec sleep 600" % marker)
    image = ("fake-criu-image 1\ncwd /\nout /dev/null\narg /bin/sh\narg -c\narg %s\n"
             % enc).encode()
    with open(os.path.join(plant, "fake-image.txt"), "wb") as f:
        f.write(image)
    lines = []
    with open(os.path.join(plant, "llmux-manifest")) as f:
        for line in f.read().splitlines():
            if line.startswith("file name=fake-image.txt "):
                line = "file name=fake-image.txt size=%d sha256=%s" % (
                    len(image), hashlib.sha256(image).hexdigest())
            lines.append(line)
    with open(os.path.join(plant, "llmux-manifest"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for root, dirs, files in os.walk(plant):
        os.chmod(root, 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    return plant


@harness.test
def planted_checkpoint_directory(env):
    """A local user (nobody) against a supervisor running as root: a model
    directory made first where the images go (then a symbolic link
    there), and images and a manifest planted where a checkpoint was made
    in a directory left writable to others. Each checkpoint and restore
    is refused with the path and why; nothing planted runs."""
    if not as_root():
        print("skipped: the supervisor must run as root, the attacker as nobody")
        return
    fake = FakeGPU(env)
    tmp = env.path("tmp")               # a /tmp of the test's own
    os.makedirs(tmp)
    os.chmod(tmp, 0o1777)
    ckpts = os.path.join(tmp, "llmux-checkpoints")
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000), "eviction": "offload+checkpoint"}},
                 unprivileged=False, user="nobody")
    os.chmod(sup.run, 0o755)
    sup.extra = sup.extra.replace("images_dir: %s" % sup.images, "images_dir: %s" % ckpts)
    sup.write_config(sup.models, sup.extra)
    # The model's directory, made by nobody before any checkpoint.
    as_nobody("mkdir", "-m", "0777", ckpts, os.path.join(ckpts, "a"))
    sup.start()
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 1 and "checkpoint refused: %s is owned by uid %d, not by root" % (ckpts, NOBODY)
          in body["error"], body)
    check(not any(c.startswith("dump") for c in fake.criu_calls()), fake.criu_calls())
    check(os.listdir(os.path.join(ckpts, "a")) == [], "nothing written there")
    # A symbolic link where the images would go, to nobody's directory.
    as_nobody("sh", "-c", "rm -r %s && mkdir -m 0777 %s/mine && ln -s %s/mine %s"
              % (ckpts, tmp, tmp, ckpts))
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 1 and "checkpoint refused: %s is a symbolic link" % ckpts in body["error"], body)
    check(os.listdir(os.path.join(tmp, "mine")) == [], "nothing written through the link")

    # A directory of root's: the checkpoint is made.
    as_nobody("rm", ckpts)
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0, body)
    check(os.stat(ckpts).st_uid == 0 and os.stat(ckpts).st_mode & 0o777 == 0o700,
          oct(os.stat(ckpts).st_mode))
    model_dir = os.path.join(ckpts, "a")
    good = os.path.join(model_dir, "images")
    marker = os.path.join(tmp, "planted-ran")
    plant = planted_images(sup, good, marker)
    # Left writable to others (a mistake): nobody swaps the images.
    os.chmod(ckpts, 0o755)
    os.chmod(model_dir, 0o777)
    as_nobody("sh", "-c", "mv %s %s/gone && cp -r %s %s" % (good, model_dir, plant, good))
    calls = len(fake.criu_calls())
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and "restore refused: %s is writable by others (mode 0777)" % model_dir
          in body["error"], body)
    check(not any(c.startswith("restore") for c in fake.criu_calls()[calls:]),
          "criu restore never ran: %r" % fake.criu_calls())
    # (A refused restore starts the model afresh.) Checkpointed again in
    # root's directory; then its parent left writable, and the model's
    # directory made a link to nobody's images: refused.
    os.chmod(model_dir, 0o700)
    os.chmod(ckpts, 0o700)
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0, body)
    calls = len(fake.criu_calls())
    os.chmod(ckpts, 0o777)
    as_nobody("sh", "-c", "mv %s %s.old && ln -s %s/planted-model %s && mkdir %s/planted-model "
              "&& cp -r %s %s/planted-model/images" % (model_dir, model_dir, tmp, model_dir,
                                                      tmp, plant, tmp))
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and "restore refused: %s is writable by others (mode 0777)" % ckpts
          in body["error"], body)
    check(not any(c.startswith("restore") for c in fake.criu_calls()[calls:]),
          "criu restore never ran: %r" % fake.criu_calls())
    check(not os.path.exists(marker), "the planted process did not run")
    check("restore refused" in sup.log_text(), "logged")


@harness.test
def checkpoint_path_without_manifest(env):
    fake = FakeGPU(env)
    bare = env.path("bare")
    os.makedirs(bare)
    with open(os.path.join(bare, "inventory.img"), "w") as f:
        f.write("made elsewhere\n")
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000), "checkpoint_path": bare}})
    sup.start()
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and body["escalated"], body)
    check("image refused: it has no llmux manifest (llmux-manifest): it was not made by "
          "llmux" in body["reason"], body)
    check(phases(body) == ["criu_restore", "start"], body)


def check_config(sup, version):
    e = dict(os.environ)
    e["LLMUX_FAKE_CRIU_VERSION"] = version
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c",
                        sup.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@harness.test
def check_config_criu_version(env):
    fake = FakeGPU(env)
    sup = GpuSup(env, fake, {"a": {"args": [], "eviction": "offload+checkpoint"}})
    rc, out, err = check_config(sup, "3.17.1")
    check(rc == 0 and out == "configuration OK\n", (rc, out, err))
    check("%s: warning: checkpoint.criu_path: %s is CRIU 3.17, too old: model a needs CRIU 4 "
          "or later with its CUDA plugin" % (sup.config_path, harness.fake("criu")) in err, err)
    rc, out, err = check_config(sup, "4.1")
    check(rc == 0 and "criu" not in err, (rc, err))


if __name__ == "__main__":
    harness.main()
