#!/usr/bin/env python3
"""test_gpu_s3_multipart.py -- an image file larger than
checkpoint.object_store.multipart_threshold_mb goes to the store as a multipart
upload (tests/integration/s3stub.py checks each request's Signature V4 and
each part's SHA-256, and refuses a single PUT over its max_put): a 12 MiB
pages-1.img in parts of 5 MiB is three parts, stored and restored byte for
byte; a part that fails once is tried again alone; parts that keep failing,
and a Complete answering 200 with an Error document, end in an
AbortMultipartUpload that leaves no upload open; a cancel (the supervisor
exits) in the middle of the parts aborts too; without parts (the default
threshold, 5 GiB) the same file is one PUT, which the stub refuses as too
large;
unreadable replies (a Create without UploadId, a part without ETag, a
Complete that is neither result nor error), an abort that fails, a file
whose SHA-256 is no longer its manifest's, and a file over 5 TiB are
reported as such."""
import hashlib
import os
import re
import shutil
import subprocess

import harness
from harness import check
from s3_helpers import images, latest_id, no_refusals, read, s3_sup, stub_for, uploaded

MIB = 1 << 20
PARTS5 = "    part_size_mb: 5\n    multipart_threshold_mb: 5\n"


def big_image(env, stub, mib=12, store_extra=PARTS5, keep=True):
    """A model checkpointed whose upload failed (so `checkpoint` uploads
    again), its pages-1.img replaced by one of mib MiB and its manifest
    told so; the new file's bytes."""
    fake, sup = s3_sup(env, stub, keep=keep, store_extra=store_extra)
    sup.ctl_ok("checkpoint", "a")
    sup.ctl_ok("restore", "a")
    stub.deny()
    sup.ctl_ok("sleep", "a")
    stub.deny(False)
    block = os.urandom(MIB)
    data = b"".join(block[:-8] + i.to_bytes(8, "little") for i in range(mib))
    with open(os.path.join(images(sup), "pages-1.img"), "wb") as f:
        f.write(data)
    mpath = os.path.join(images(sup), "llmux-manifest")
    with open(mpath) as f:
        text = f.read()
    text, n = re.subn(r"file name=pages-1\.img size=\d+ sha256=[0-9a-f]+",
                      "file name=pages-1.img size=%d sha256=%s"
                      % (len(data), hashlib.sha256(data).hexdigest()), text)
    check(n == 1, text)
    with open(mpath, "w") as f:
        f.write(text)
    stub.forget()       # the refusals above were the test's own
    return fake, sup, data


def creates(stub):
    return [e for e in stub.requests("POST") if e[1].endswith("?uploads=")]


def parts(stub, n=None):
    """The UploadPart requests (of part n)."""
    return [e for e in stub.requests("PUT") if "?partNumber=" in e[1] and
            (n is None or "?partNumber=%d&" % n in e[1])]


def completes(stub):
    return [e for e in stub.requests("POST") if "?uploadId=" in e[1]]


def aborts(stub):
    return [e for e in stub.requests("DELETE") if "?uploadId=" in e[1]]


def progress_sane(err):
    """Every progress line counts up, never past the total."""
    last = 0
    for moved, total in re.findall(r"uploading (\d+) of (\d+) bytes", err):
        check(last <= int(moved) <= int(total), err)
        last = int(moved)


@harness.test
def large_file_goes_in_parts(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    stub.max_put = 5 * MIB
    rc, out, err = sup.ctl("checkpoint", "a")
    check(rc == 0 and " and uploaded to s3://llmux-images/a/" in out, (out, err))
    progress_sane(err)
    total = sum(len(read(os.path.join(images(sup), f))) for f in
                os.listdir(images(sup)))
    check("uploaded %d bytes in 4 files" % total in err, err)
    key = "a/%s/pages-1.img" % latest_id(stub)
    # One Create, three parts of that file (5, 5 and 2 MiB), one Complete;
    # its upload ID ('+', '/', '=' in the stub's) encoded in each query.
    check([e[1] for e in creates(stub)] == [key + "?uploads="], creates(stub))
    got = parts(stub)
    check([(e[1].split("?")[0], e[2]) for e in got] == [(key, 200)] * 3, got)
    for n in (1, 2, 3):
        check(len(parts(stub, n)) == 1 and "%2B" in parts(stub, n)[0][1] and
              "%2F%3D" in parts(stub, n)[0][1], got)
    check([e[2] for e in completes(stub)] == [200], completes(stub))
    check(stub.requests("PUT", "/pages-1.img") == [], "not one PUT")
    check(aborts(stub) == [] and stub.unfinished() == [], stub.unfinished())
    check(uploaded(stub)["pages-1.img"] == data, "the object is the file")
    no_refusals(stub)

    # Gone here: the restore downloads it, byte for byte.
    shutil.rmtree(images(sup))
    rc, body = sup.ctl_json("restore", "a")
    check(rc == 0 and body["phases"][0]["phase"] == "download", body)
    check(read(os.path.join(images(sup), "pages-1.img")) == data, "same bytes")


@harness.test
def without_parts_the_put_is_too_large(env):
    # The stub's limit is real: the same file as one PUT is refused.
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub, store_extra="")
    stub.max_put = 5 * MIB
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and "upload failed, the images stay in place: PUT "
          "s3://llmux-images/a/" in body["message"] and "/pages-1.img: 400 "
          "EntityTooLarge: Your proposed upload exceeds the maximum allowed size"
          in body["message"], body)
    check(creates(stub) == [] and parts(stub) == [], stub.requests())


@harness.test
def a_failed_part_is_tried_again_alone(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub, keep=False)
    stub.fail(500, "InternalError", "We encountered an internal error. Please "
              "try again.", count=1, method="PUT", key="/pages-1.img",
              query="partNumber=2&")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and " and uploaded to " in body["message"], body)
    check([e[2] for e in parts(stub, 1)] == [200] and
          [e[2] for e in parts(stub, 2)] == [500, 200] and
          [e[2] for e in parts(stub, 3)] == [200], parts(stub))
    check(len(creates(stub)) == 1 and [e[2] for e in completes(stub)] == [200],
          stub.requests("POST"))
    check(uploaded(stub)["pages-1.img"] == data, "the object is the file")
    check(stub.unfinished() == [] and aborts(stub) == [], stub.unfinished())
    check(not os.path.exists(images(sup)), "uploaded: the local copy went")
    no_refusals(stub)


@harness.test
def failing_parts_abort_the_upload(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub, keep=False,
                                store_extra=PARTS5 + "    retries: 1\n")
    stub.fail(503, "ServiceUnavailable", "Service is unable to handle request.",
              count=-1, method="PUT", query="partNumber=2&")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: UploadPart 2/3 "
        r"s3://llmux-images/a/[0-9TZ]+-[0-9a-f]{64}/pages-1\.img: 503 "
        r"ServiceUnavailable: Service is unable to handle request\. \(after 2 "
        r"attempts\)$", body["message"]), body)
    check([e[2] for e in parts(stub, 2)] == [503, 503] and parts(stub, 3) == [],
          parts(stub))
    check(completes(stub) == [], completes(stub))
    # Aborted: nothing left open (nor billed) in the bucket.
    check([e[2] for e in aborts(stub)] == [204], aborts(stub))
    check(stub.unfinished() == [], stub.unfinished())
    check(os.path.exists(os.path.join(images(sup), "pages-1.img")), "kept")
    no_refusals(stub)


@harness.test
def complete_answering_an_error(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    # 200 with an Error document is a failure; InvalidPart is not retried.
    stub.complete_error("InvalidPart", "One or more of the specified parts "
                        "could not be found.", count=-1)
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: CompleteMultipartUpload "
        r"s3://llmux-images/a/[^ ]+/pages-1\.img: 200 InvalidPart: One or more "
        r"of the specified parts could not be found\.$", body["message"]), body)
    check([(e[2], e[3]) for e in completes(stub)] == [(200, "InvalidPart")],
          completes(stub))
    check([e[2] for e in aborts(stub)] == [204] and stub.unfinished() == [],
          stub.unfinished())
    check(data not in stub.objects.values(), "nothing completed")

    # InternalError is tried again, and the upload succeeds.
    stub.complete_errors.clear()
    stub.complete_error("InternalError", "We encountered an internal error. "
                        "Please try again.", count=1)
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and " and uploaded to " in body["message"], body)
    check([(e[2], e[3]) for e in completes(stub)][1:] ==
          [(200, "InternalError"), (200, "")], completes(stub))
    check(uploaded(stub)["pages-1.img"] == data, "the object is the file")
    check(len(aborts(stub)) == 1 and stub.unfinished() == [], stub.unfinished())
    no_refusals(stub)


@harness.test
def cancel_aborts_a_multipart_upload(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    stub.stall("PUT", "/pages-1.img")
    argv = [harness.binary("llmuxctl"), "--socket", sup.socket, "checkpoint", "a"]
    call = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        harness.wait_until(lambda: stub.stalled() == 1, 60, "a part to stall")
        check(len(stub.unfinished()) == 1, stub.unfinished())
        # The supervisor exits: the upload is cancelled, and aborted
        # although the store still holds the part's request.
        sup.proc.signal(15)
        check(sup.proc.wait(timeout=60) == 0, "exited")
        call.communicate(timeout=60)
        check([e[2] for e in aborts(stub)] == [204], stub.requests())
        check(stub.unfinished() == [], stub.unfinished())
        check(completes(stub) == [] and len(parts(stub)) == 1, stub.requests())
    finally:
        stub.release()


@harness.test
def unreadable_multipart_replies(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    where = r"s3://llmux-images/a/[0-9TZ]+-[0-9a-f]{64}/pages-1\.img"
    # A Create without an UploadId: nothing to send the parts to.
    stub.initiate_reply = b"<html><body>Welcome</body></html>"
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: CreateMultipartUpload %s: "
        r"unreadable reply: not an InitiateMultipartUploadResult at byte \d+$"
        % where, body["message"]), body)
    check(parts(stub) == [] and aborts(stub) == [], stub.requests())
    stub.initiate_reply = None

    # A part answered without an ETag cannot be completed: aborted.
    stub.part_etag = False
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: UploadPart 1/3 %s: the "
        r"store's answer has no usable ETag$" % where, body["message"]), body)
    check(len(parts(stub)) == 1 and [e[2] for e in aborts(stub)] == [204],
          stub.requests())
    check(stub.unfinished() == [], stub.unfinished())
    stub.part_etag = True

    # A Complete answered with something else than its result: aborted.
    stub.complete_reply = b"<Nonsense/>"
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: CompleteMultipartUpload %s: "
        r"unreadable reply: not a CompleteMultipartUploadResult nor an Error "
        r"document at byte \d+$" % where, body["message"]), body)
    check([e[2] for e in aborts(stub)] == [204, 204], aborts(stub))
    check(stub.unfinished() == [], stub.unfinished())
    check(data not in stub.objects.values(), "nothing completed")
    stub.complete_reply = None
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and " and uploaded to " in body["message"], body)
    check(uploaded(stub)["pages-1.img"] == data, "the object is the file")
    no_refusals(stub)


@harness.test
def a_failed_abort_is_reported(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub, store_extra=PARTS5 + "    retries: 0\n")
    stub.fail(400, "InvalidArgument", "Invalid Argument", count=-1, method="PUT",
              query="partNumber=3&")
    stub.fail(500, "InternalError", "We encountered an internal error.",
              count=-1, method="DELETE", query="uploadId=")
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"UploadPart 3/3 s3://llmux-images/a/[^ ]+/pages-1\.img: 400 "
        r"InvalidArgument: Invalid Argument; its parts may stay in the bucket: "
        r"AbortMultipartUpload s3://llmux-images/a/[^ ]+/pages-1\.img: 500 "
        r"InternalError: We encountered an internal error\.$",
        body["message"]), body)
    # The abort is tried once (the upload has failed already).
    check([e[2] for e in aborts(stub)] == [500], aborts(stub))
    check(len(stub.unfinished()) == 1, stub.unfinished())


@harness.test
def a_changed_file_is_not_completed(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    # The file's size is the manifest's, its SHA-256 is not.
    mpath = os.path.join(images(sup), "llmux-manifest")
    with open(mpath) as f:
        text = f.read()
    with open(mpath, "w") as f:
        f.write(text.replace(hashlib.sha256(data).hexdigest(), "0" * 64))
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: UploadPart 3/3 "
        r"s3://llmux-images/a/[^ ]+/pages-1\.img: the file's SHA-256 is not its "
        r"manifest's: it changed since the checkpoint$", body["message"]), body)
    # Found once the last part is read, before it is sent.
    check([e[1].split("?partNumber=")[1][0] for e in parts(stub)] == ["1", "2"],
          parts(stub))
    check(completes(stub) == [] and [e[2] for e in aborts(stub)] == [204],
          stub.requests())
    check(stub.unfinished() == [], stub.unfinished())


@harness.test
def a_file_over_5_tib_is_refused(env):
    stub = stub_for(env)
    fake, sup, data = big_image(env, stub)
    # Sparse: its size is all that is read before the refusal.
    size = (5 << 40) + 1
    os.truncate(os.path.join(images(sup), "pages-1.img"), size)
    mpath = os.path.join(images(sup), "llmux-manifest")
    with open(mpath) as f:
        text = f.read()
    with open(mpath, "w") as f:
        f.write(text.replace("size=%d" % len(data), "size=%d" % size))
    rc, body = sup.ctl_json("checkpoint", "a")
    check(rc == 0 and re.search(
        r"upload failed, the images stay in place: PUT s3://llmux-images/a/[^ ]+/"
        r"pages-1\.img: the file is 5497558138881 bytes, more than an object may "
        r"hold \(5 TiB\)$", body["message"]), body)
    check(creates(stub) == [] and stub.requests("PUT", "/pages-1.img") == [],
          stub.requests())


if __name__ == "__main__":
    harness.main()
