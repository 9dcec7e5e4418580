#!/usr/bin/env python3
"""test_gpu_s3.py -- checkpoint images in an S3-compatible object store
(checkpoint.object_store), against tests/integration/s3stub.py, which
checks every request's Signature V4 as S3 does, and the fake criu: a
checkpoint uploads its images (files, manifest, then MODEL/latest; older
checkpoints deleted, over several listing pages); a restore whose images
are missing here downloads and restores them; a lazy restore from a
checkpoint_path that exists only in the store; a damaged download refused;
a 403 reported with S3's code and message (and the secret key never
logged); a 500 tried again; an unreachable store, a missing bucket and a
stalled request; a failed upload keeps the local images; status answers
while a transfer is held."""
import hashlib
import os
import shutil
import signal
import subprocess

import harness
from harness import check
from gpu_helpers import FakeGPU, GpuSup, phases
from supervisor_helpers import NOBODY
from s3_helpers import (IMAGE_FILES, MANIFEST, images, latest_id, no_refusals, read,
                        s3_sup, stub_for, uploaded)
from s3stub import EMPTY_SHA256, signature

@harness.test
def stub_signs_like_aws(env):
    """The stub's check of a signature agrees with AWS's published examples."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    host = "examplebucket.s3.amazonaws.com"
    date = "20130524T000000Z"
    got = signature(secret, "us-east-1", "GET", "/test.txt", "",
                    {"host": host, "range": "bytes=0-9",
                     "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": date},
                    ["host", "range", "x-amz-content-sha256", "x-amz-date"], date,
                    EMPTY_SHA256)
    check(got == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", got)
    body = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    got = signature(secret, "us-east-1", "PUT", "/test$file.text", "",
                    {"date": "Fri, 24 May 2013 00:00:00 GMT", "host": host,
                     "x-amz-content-sha256": body, "x-amz-date": date,
                     "x-amz-storage-class": "REDUCED_REDUNDANCY"},
                    ["date", "host", "x-amz-content-sha256", "x-amz-date",
                     "x-amz-storage-class"], date, body)
    check(got == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd", got)
    got = signature(secret, "us-east-1", "GET", "/", "prefix=J&max-keys=2",
                    {"host": host, "x-amz-content-sha256": EMPTY_SHA256,
                     "x-amz-date": date},
                    ["host", "x-amz-content-sha256", "x-amz-date"], date, EMPTY_SHA256)
    check(got == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", got)


@harness.test
def checkpoint_uploads(env):
    stub = stub_for(env)
    stub.page_size = 2      # pruning reads several pages
    fake, sup = s3_sup(env, stub)
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0, (out, err))
    ident = latest_id(stub)
    url = "s3://llmux-images/a/%s/" % ident
    check("Model a checkpointed to %s and uploaded to %s" % (images(sup), url) in out,
          out)
    check("checkpoint a: upload" in err and
          "uploaded %d bytes in 4 files to %s" % (
              sum(len(read(os.path.join(images(sup), f))) for f in
                  IMAGE_FILES + [MANIFEST]), url) in err, err)
    # Every file, byte for byte; the ID names the manifest's own SHA-256.
    objs = uploaded(stub)
    check(sorted(objs) == sorted(IMAGE_FILES + [MANIFEST]), sorted(objs))
    for f in IMAGE_FILES + [MANIFEST]:
        check(objs[f] == read(os.path.join(images(sup), f)), f)
    check(ident.endswith("-" + hashlib.sha256(objs[MANIFEST]).hexdigest()), ident)
    # The manifest is uploaded after the files, latest last.
    puts = [e[1] for e in stub.requests("PUT")]
    check(puts[-1] == "a/latest" and puts[-2].endswith(MANIFEST), puts)
    no_refusals(stub)
    m = sup.model("a")
    check(m["object_store"] == {"url": url, "error": None}, m)
    check(os.path.isdir(images(sup)), "keep_images: the local copy stays")

    # Another checkpoint replaces the first, whose objects are deleted.
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0 and phases(body) == ["sleep", "criu_dump", "upload"], body)
    second = latest_id(stub)
    check(second != ident, "a new checkpoint")
    check(stub.keys_under("a/%s/" % ident) == [], stub.keys_under("a/"))
    check(len(stub.keys_under("a/")) == 5, stub.keys_under("a/"))
    check(len(stub.requests("GET", "?list-type=2&prefix=a%2F")) >= 1 and
          len([e for e in stub.requests("GET") if "continuation-token" in e[1]]) >= 1,
          "pages: %r" % stub.requests("GET"))
    check(len(stub.requests("DELETE")) == 4, stub.requests("DELETE"))
    no_refusals(stub)


@harness.test
def restore_downloads_missing_images(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False)
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and " and uploaded to s3://" in out, (out, err))
    # keep_images: false: the local copy goes once it is in the store.
    check(not os.path.exists(images(sup)), "removed after the upload")
    check(sup.model("a")["process_state"] == "checkpointed", sup.model("a"))
    rc, out, err = sup.ctl("restore", "a")
    check(rc == 0 and "Model a restored" in out, (out, err))
    check("restore a: download" in err and "downloaded " in err and
          "bytes in 4 files from s3://llmux-images/a/%s/" % latest_id(stub) in err, err)
    # Each byte is hashed once: as it arrives, not again by the restore.
    check("(the checksums were checked as it was downloaded)" in err and
          "the checksums of" not in err, err)
    check(sup.ask("a")[0] == 200, "serving")
    rc, body = sup.ctl_json("sleep", "a")
    check(rc == 0, body)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["download", "criu_restore", "health", "wake_up"],
          body)
    # Restored and removed again (keep_images: false); no temporary left.
    check(not os.path.exists(images(sup)) and
          not os.path.exists(images(sup) + ".download"), os.listdir(sup.images + "/a"))
    no_refusals(stub)


@harness.test
def local_images_are_not_downloaded(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub)
    sup.ctl_ok("checkpoint", "a")
    before = len(stub.requests("GET"))
    rc, out, err = sup.ctl("restore", "a")
    check(rc == 0 and "Model a restored" in out, (out, err))
    check(len(stub.requests("GET")) == before, "nothing fetched")
    # Not downloaded: the restore hashes every file.
    check("restore a: download" not in err and "restore a: criu_restore" in err and
          "checking the manifest and the checksums of " in err and
          "as it was downloaded" not in err, err)


@harness.test
def lazy_restore_from_the_store(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub)
    sup.ctl_ok("checkpoint", "a")
    sup.proc.stop()
    # Another machine: no journal, no images; its checkpoint_path is not
    # there, the store has it.
    shutil.rmtree(sup.state_dir)
    shutil.rmtree(images(sup))
    # The model's eviction says stop; the manifest's (offload) decides
    # the steps after the restore.
    # Its parent: the supervisor's, not writable by others (base/fs.c).
    parent = env.path("elsewhere")
    os.makedirs(parent)
    os.chmod(parent, 0o700)
    if sup.unprivileged:
        os.chown(parent, NOBODY, NOBODY)
    path = os.path.join(parent, "a-images")
    models = {"a": {"args": fake.args(1000), "eviction": "retain+stop",
                    "checkpoint_path": path}}
    _, sup2 = s3_sup(env, stub, models=models, fake=fake, start=False)
    sup2.ports = sup.ports
    sup2.write_config(sup2.models, sup2.extra)
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c",
                        sup2.config_path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(p.returncode == 0 and p.stdout == b"configuration OK\n" and
          b"object_store" not in p.stderr and b"does not exist" not in p.stderr,
          (p.stdout, p.stderr))
    sup2.start(name="supervisord2")
    m = sup2.model("a")
    check(m["process_state"] == "checkpointed" and m["object_store"]["url"] is None, m)
    rc, body = sup2.ctl_json("wake", "a")
    check(rc == 0 and not body["escalated"] and
          phases(body) == ["download", "criu_restore", "health", "wake_up"], body)
    check(sup2.ask("a")[0] == 200, "serving")
    check(sup2.model("a")["object_store"]["url"] ==
          "s3://llmux-images/a/%s/" % latest_id(stub), sup2.model("a"))
    # The operator's path now holds the images, and keeps them.
    check(sorted(os.listdir(path)) == sorted(IMAGE_FILES + [MANIFEST]),
          os.listdir(path))
    no_refusals(stub)


@harness.test
def lazy_restore_without_a_checkpoint_in_the_store(env):
    stub = stub_for(env)
    fake = FakeGPU(env)
    path = env.path("missing-images")
    models = {"a": {"args": fake.args(1000), "checkpoint_path": path}}
    _, sup = s3_sup(env, stub, models=models, fake=fake)
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 1 and body["error"] == "Failed to wake model: download failed: no "
          "checkpoint of this model in the object store: no object a/latest in "
          "bucket llmux-images", body)
    check(phases(body) == ["download"], body)
    m = sup.model("a")
    check(m["process_state"].startswith("failed:") and "no object a/latest" in
          m["object_store"]["error"], m)
    # The next wake is a cold start.
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body) == ["start"], body)


@harness.test
def corrupt_download_refused(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False)
    sup.ctl_ok("checkpoint", "a")
    ident = latest_id(stub)
    stub.corrupt("/pages-1.img")
    before = len(fake.criu_calls())
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and body["error"] == "Restore failed: download failed: downloaded "
          "image file pages-1.img fails its checksum: the copy in the object store "
          "is damaged (s3://llmux-images/a/%s/pages-1.img)" % ident, body)
    check(phases(body) == ["download"], body)
    check(len(fake.criu_calls()) == before, "criu restore did not run")
    check(not os.path.exists(images(sup)) and
          not os.path.exists(images(sup) + ".download"), "nothing half-made left")
    m = sup.model("a")
    check(m["process_state"].startswith("failed:") and "fails its checksum" in
          m["object_store"]["error"] and "fails its checksum" in m["last_error"], m)
    # A damaged manifest is refused too (its ID holds its SHA-256).
    stub.corrupted.clear()
    rc, body = sup.ctl_json("wake", "a")
    check(rc == 0 and phases(body)[0] == "start", body)
    sup.ctl_ok("checkpoint", "a")
    stub.corrupt(MANIFEST)
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and "the manifest s3://llmux-images/a/%s/llmux-manifest fails its "
          "checksum: the copy in the object store is damaged" % latest_id(stub) in
          body["error"], body)


@harness.test
def access_denied_is_reported(env):
    stub = stub_for(env)
    wrong = "Wrong/Secret+Key"
    fake, sup = s3_sup(env, stub, keep=False, secret_key=wrong)
    rc, out, err = sup.ctl("checkpoint", "a")
    # The checkpoint stands; the upload failed and says why.
    check(rc == 0, (out, err))
    check("Model a checkpointed to %s; upload failed, the images stay in place: "
          "access denied by the object store at %s: PUT s3://llmux-images/a/" %
          (images(sup), stub.endpoint) in out, out)
    check("403 SignatureDoesNotMatch: The request signature we calculated does not "
          "match the signature you provided. Check your key and signing method. "
          "(check checkpoint.object_store.access_key and secret_key)" in out, out)
    check(os.path.exists(os.path.join(images(sup), MANIFEST)),
          "keep_images: false, but the upload failed: the images stay")
    check(stub.objects == {}, "nothing stored")
    m = sup.model("a")
    check(m["process_state"] == "checkpointed", m)
    check("403 SignatureDoesNotMatch" in m["object_store"]["error"] and
          m["object_store"]["url"] is None, m)
    check("upload of the checkpoint in %s to the object store failed" % images(sup)
          in m["last_error"], m)
    log = sup.proc.output()
    check('msg="upload failed, the images stay in place" model=a' in log, log[-3000:])
    check(wrong not in log and stub.secret_key not in log, "no secret in the log")
    # The local images restore as ever.
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)

    # An access key the store does not know; then the right keys, after a
    # reload, and the checkpoint call uploads what failed before.
    sup.ctl_ok("sleep", "a")
    stub.keys = {"SOMEONEELSE": "x"}
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0, body)
    check("403 InvalidAccessKeyId" in sup.model("a")["object_store"]["error"],
          sup.model("a"))
    stub.keys = {stub.access_key: stub.secret_key}
    sup.extra = sup.extra.replace('"%s"' % wrong, '"%s"' % stub.secret_key)
    sup.write_config(sup.models, sup.extra)
    sup.ctl_ok("reload")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and phases(body) == ["upload"], body)
    check(" and uploaded to s3://llmux-images/a/" in body["message"], body)
    check(not os.path.exists(images(sup)), "now it is in the store, removed here")
    check(sup.model("a")["object_store"]["error"] is None, sup.model("a"))
    # A store that denies everything fails the download, with its reason.
    stub.deny()
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and "Restore failed: download failed: access denied by the object "
          "store at %s: GET s3://llmux-images/a/latest: 403 AccessDenied: Access "
          "Denied" % stub.endpoint in body["error"], body)


@harness.test
def retry_after_a_500(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False)
    stub.fail(500, "InternalError", "We encountered an internal error. Please try "
              "again.", count=1, method="PUT", key="/pages-1.img")
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and " and uploaded to " in out, (out, err))
    tries = stub.requests("PUT", "/pages-1.img")
    check([e[2] for e in tries] == [500, 200], tries)
    # Twice on a download, and a 503 SlowDown: still fetched.
    stub.fail(500, "InternalError", "We encountered an internal error.", count=1,
              method="GET", key="/inventory.img")
    stub.fail(503, "SlowDown", "Please reduce your request rate.", count=1,
              method="GET", key="/inventory.img")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body)[0] == "download", body)
    tries = stub.requests("GET", "/inventory.img")
    check([e[2] for e in tries] == [500, 503, 200], tries)
    # A 4xx is not tried again.
    sup.ctl_ok("sleep", "a")
    stub.fail(400, "InvalidArgument", "Invalid Argument", count=1, method="GET",
              key="/latest")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 1 and body["error"].endswith("GET s3://llmux-images/a/latest: 400 "
                                             "InvalidArgument: Invalid Argument"), body)
    check([e[2] for e in stub.requests("GET", "/latest")][-1:] == [400],
          stub.requests("GET", "/latest"))


@harness.test
def retries_run_out(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, store_extra="    retries: 2\n")
    stub.fail(503, "ServiceUnavailable", "Service is unable to handle request.",
              count=-1, method="PUT")
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and "upload failed, the images stay in place: PUT "
          "s3://llmux-images/a/" in out and "503 ServiceUnavailable: Service is "
          "unable to handle request. (after 3 attempts)" in out, out)
    check(len(stub.requests("PUT")) == 3, stub.requests("PUT"))


@harness.test
def upload_failure_keeps_local_images(env):
    # Nothing listens there.
    stub = stub_for(env)
    fake = FakeGPU(env)
    dead = harness.free_port()
    extra = ("  keep_images: false\n  object_store:\n    endpoint: http://127.0.0.1:%d\n"
             "    bucket: llmux-images\n    access_key: k\n    secret_key: s\n"
             "    retries: 1\n" % dead)
    sup = GpuSup(env, fake, {"a": {"args": fake.args(1000),
                                   "eviction": "offload+checkpoint"}}, extra)
    sup.start()
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and "; upload failed, the images stay in place: cannot reach the "
          "object store at http://127.0.0.1:%d: " % dead in out and
          "(after 2 attempts)" in out, out)
    check(os.path.exists(os.path.join(images(sup), MANIFEST)), "kept")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body) == ["criu_restore", "health", "wake_up"], body)

    # A bucket that does not exist.
    sup.ctl_ok("stop", "a")
    sup.proc.stop()
    _, sup2 = s3_sup(env, stub, keep=False, bucket="no-such-bucket", fake=fake,
                     start=False)
    sup2.ports = sup.ports
    sup2.write_config(sup2.models, sup2.extra)
    sup2.start(name="supervisord2")
    rc, body = sup2.ctl_json("checkpoint", "a")
    check(rc == 0 and "upload failed, the images stay in place: bucket no-such-bucket "
          "does not exist at %s (404 NoSuchBucket: The specified bucket does not "
          "exist)" % stub.endpoint in body["message"], body)
    check(os.path.exists(os.path.join(images(sup2), MANIFEST)), "kept")


@harness.test
def store_state_survives_a_supervisor_restart(env):
    """Where the last checkpoint is stored and why the last upload failed
    are in the journal: after kill -9 and a restart, status still says
    both, and the failed upload is still made again by the next call."""
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub)
    sup.ctl_ok("checkpoint", "a")
    url = sup.model("a")["object_store"]["url"]
    check(url == "s3://llmux-images/a/%s/" % latest_id(stub), url)
    sup.ctl_ok("restore", "a")
    stub.deny()
    sup.ctl_ok("sleep", "a")
    stub.deny(False)
    before = sup.model("a")["object_store"]
    check(before["url"] == url and "AccessDenied" in (before["error"] or ""), before)

    sup.proc.signal(signal.SIGKILL)
    sup.proc.wait(10)
    sup.start(name="supervisord2")
    m = sup.model("a")
    check(m["process_state"] == "checkpointed" and m["object_store"] == before, m)
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and phases(body) == ["upload"], body)
    after = sup.model("a")["object_store"]
    check(after["error"] is None and after["url"] == "s3://llmux-images/a/%s/"
          % latest_id(stub) and after["url"] != url, after)


@harness.test
def status_answers_during_a_transfer(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False)
    sup.ctl_ok("checkpoint", "a")
    stub.stall("GET", "/pages-1.img")
    argv = [harness.binary("llmuxctl"), "--socket", sup.socket, "restore", "a"]
    restore = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Held in the middle of the download: the supervisor still answers.
        harness.wait_until(lambda: stub.stalled() == 1, 30, "the download to stall")
        m = sup.model("a")
        check(m["phase"] == "download" and m["process_state"] == "checkpointed", m)
        check(restore.poll() is None, "still restoring")
    finally:
        stub.release()
    out, err = restore.communicate(timeout=60)
    check(restore.returncode == 0, (out, err))
    check(sup.model("a")["state"] == "ready", sup.model("a"))


@harness.test
def exit_cancels_a_transfer(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False)
    sup.ctl_ok("checkpoint", "a")
    stub.stall("GET", "/pages-1.img")
    argv = [harness.binary("llmuxctl"), "--socket", sup.socket, "restore", "a"]
    restore = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tmp = images(sup) + ".download"
    try:
        harness.wait_until(lambda: stub.stalled() == 1, 30, "the download to stall")
        check(os.path.isdir(tmp), "downloading into a temporary directory")
        # The supervisor exits: the transfer gives up although the store
        # still holds its request, and cleans up after itself.
        sup.proc.signal(15)
        check(sup.proc.wait(timeout=60) == 0, "exited")
        restore.communicate(timeout=60)
        check(restore.returncode != 0, "the call got no reply")
        check(not os.path.exists(tmp), "the cancelled download cleaned up")
        check(stub.stalled() == 1 and len(stub.requests("GET", "/pages-1.img")) == 1,
              stub.requests("GET"))
        check("exiting with work still running" not in sup.proc.output(),
              sup.proc.output()[-2000:])
    finally:
        stub.release()
    # Still in the store: the next supervisor fetches it.
    sup.start(name="supervisord2")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body)[0] == "download", body)


@harness.test
def stalled_request_is_tried_again(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, keep=False, store_extra="    timeout_secs: 1\n")
    sup.ctl_ok("checkpoint", "a")
    # Held until the test ends: the client gives up and asks again.
    stub.stall("GET", "/pages-1.img")
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and phases(body)[0] == "download", body)
    tries = stub.requests("GET", "/pages-1.img")
    check([e[2] for e in tries] == ["stalled", 200], tries)


def check_config(sup):
    p = subprocess.run([harness.binary("llmux-supervisord"), "--check-config", "-c",
                        sup.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@harness.test
def check_config_checks_the_store_keys(env):
    stub = stub_for(env)
    fake, sup = s3_sup(env, stub, start=False)
    rc, out, err = check_config(sup)
    check(rc == 0 and out == "configuration OK\n" and "object_store" not in err,
          (rc, out, err))
    text = open(sup.config_path).read()
    lines = text.splitlines()
    at = {k: i + 1 for i, line in enumerate(lines) for k in
          ("endpoint", "bucket", "secret_key") if line.strip().startswith(k + ":")}
    bad = (text.replace(stub.endpoint, "ftp://127.0.0.1")
           .replace("bucket: llmux-images", "bucket: Llmux_Images")
           .replace('"%s"' % stub.secret_key, '"top secret"'))
    with open(sup.config_path, "w") as f:
        f.write(bad)
    rc, out, err = check_config(sup)
    check(rc == 1 and out == "", (rc, out, err))
    want = ["%s:%d:15: error: checkpoint.object_store.endpoint: 'ftp://127.0.0.1' is "
            "not an http:// or https:// URL" % (sup.config_path, at["endpoint"]),
            "%s:%d:13: error: checkpoint.object_store.bucket: 'Llmux_Images' may "
            "hold only lowercase letters, digits, '.' and '-' (S3's bucket rules)"
            % (sup.config_path, at["bucket"]),
            "%s:%d:17: error: checkpoint.object_store.secret_key: the value may hold "
            "only printable ASCII without spaces" % (sup.config_path, at["secret_key"])]
    for w in want:
        check(w in err, (w, err))
    check("top secret" not in err, err)


if __name__ == "__main__":
    harness.main()
