#!/usr/bin/env python3
"""bench-store.py -- how fast a checkpoint's images go to an object store
and come back, through the real supervisor against the test suite's S3
stub (tests/integration/s3stub.py, on loopback, in memory) and the fake
criu; and the SHA-256 that every byte of them goes through.

A model is checkpointed; its image file pages-1.img is then replaced by
one of SIZE MiB (and its manifest told so), the upload is run again
(`llmuxctl checkpoint`, whose only phase is then `upload`; with
--part-mib PART, part_size_mb and multipart_threshold_mb are PART, so a
larger file goes as a multipart upload; by default it is one PUT), the local
copy is removed and the model restored (`download`, which hashes each
file as it arrives, then `criu_restore`, which checks names and sizes).
Then it is checkpointed again, its file made SIZE MiB again, and restored
from these local images (`criu_restore` alone, which hashes every file).
The phase times come from the replies. Last, build/bench/bench_sha256
hashes SIZE MiB (at most 256) in memory with the supervisor's SHA-256
(libcrypto) and with the portable C it replaced, in turns, best of 3.
The figures are printed, nothing is asserted. Both ends run on this
machine, and the stub is Python: the figures are an upper bound on
llmux's own cost (read, SHA-256, libcurl), not a store's speed.

    tests/bench/bench-store.py BUILD [--mib SIZE] [--part-mib PART] [--markdown]

--markdown prints its section of docs/benchmarks.md (tests/bench/bench-all.py).
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))

INTRO = """
`make bench-store` (`tests/bench/bench-store.py BUILD [--mib N]
[--part-mib P]`, default 512 MiB and the default config): a real
llmux-supervisord checkpoints a model with the fake criu, the image file
`pages-1.img` is replaced by one of %d MiB (its manifest told so), the
upload runs again (`llmuxctl checkpoint`, whose only phase is then
`upload`; %s), the local copy is removed and the model restored (`download`,
which hashes each file as it arrives, then `criu_restore`, whose manifest
check then takes names and sizes only), then checkpointed again and
restored from local images (`criu_restore` alone: the manifest check
hashes every file). The store is the test suite's S3 stub
(`tests/integration/s3stub.py`: Python, in memory, checking each
request's Signature V4 and each body's SHA-256) on loopback, so both ends
share the machine: the figures bound llmux's own cost from above, they
are not a store's speed. Last, `build/bench/bench_sha256`
(`tests/bench/bench_sha256.c`) hashes %d MiB in memory, in 1 MiB pieces,
with the supervisor's SHA-256 (`supervisord/store/sha256.c`, libcrypto's
EVP) and with the portable C it replaced (kept in the benchmark only),
in turns, the best of 3 rounds each, in the same run.
"""


def big_image(images, mib):
    """pages-1.img made mib MiB, and the manifest told so."""
    block = os.urandom(1 << 20)
    h = hashlib.sha256()
    with open(os.path.join(images, "pages-1.img"), "wb") as f:
        for i in range(mib):
            chunk = block[:-8] + i.to_bytes(8, "little")
            f.write(chunk)
            h.update(chunk)
    mpath = os.path.join(images, "llmux-manifest")
    with open(mpath) as f:
        text = f.read()
    text = re.sub(r"file name=pages-1\.img size=\d+ sha256=[0-9a-f]+",
                  "file name=pages-1.img size=%d sha256=%s" % (mib << 20, h.hexdigest()),
                  text)
    with open(mpath, "w") as f:
        f.write(text)


def hash_figures(build, mib):
    """bench_sha256's figures (name -> value), or exit if it failed."""
    p = subprocess.run([os.path.join(build, "bench", "bench_sha256"), str(mib), "3"],
                       stdout=subprocess.PIPE, universal_newlines=True)
    figures = dict(line.split(" ", 1) for line in p.stdout.splitlines() if " " in line)
    if p.returncode != 0 or "new_mib_s" not in figures:
        sys.exit("bench-store: bench_sha256 failed: %s" % p.stdout)
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--part-mib", type=int, default=0,
                    help="part_size_mb and multipart_threshold_mb (0: the defaults)")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    os.environ["LLMUX_BUILD"] = os.path.abspath(args.build)

    import harness
    from gpu_helpers import FakeGPU, GpuSup
    from s3stub import S3Stub

    env = harness.Env("bench-store")
    ok = False
    try:
        stub = S3Stub()
        env.procs.append(stub)
        fake = FakeGPU(env)
        sup = GpuSup(env, fake, {"a": {"args": fake.args(1000),
                                       "eviction": "offload+checkpoint"}},
                     stub.config(extra="    part_size_mb: %d\n    multipart_threshold_mb: %d\n"
                                 % (args.part_mib, args.part_mib) if args.part_mib else ""))
        sup.start()
        sup.ctl_ok("checkpoint", "a")
        sup.ctl_ok("restore", "a")
        # A checkpoint whose upload failed, so the next call uploads again.
        stub.deny()
        sup.ctl_ok("sleep", "a")
        stub.deny(False)

        images = os.path.join(sup.images, "a", "images")
        big_image(images, args.mib)

        rc, up = sup.ctl_json("checkpoint", "a")
        harness.check(rc == 0 and [p["phase"] for p in up["phases"]] == ["upload"], up)
        harness.check(" and uploaded to " in up["message"], up)
        for name in os.listdir(images):
            os.unlink(os.path.join(images, name))
        os.rmdir(images)
        rc, down = sup.ctl_json("restore", "a")
        harness.check(rc == 0 and [p["phase"] for p in down["phases"]][:2] ==
                      ["download", "criu_restore"], down)
        ms = {p["phase"]: p["ms"] for p in down["phases"]}
        up_ms = up["phases"][0]["ms"]
        # Again from local images: nothing to download, the restore hashes.
        sup.ctl_ok("sleep", "a")
        big_image(images, args.mib)
        rc, local = sup.ctl_json("restore", "a")
        harness.check(rc == 0 and local["phases"][0]["phase"] == "criu_restore", local)
        local_ms = local["phases"][0]["ms"]
        hash_mib = min(args.mib, 256)
        hf = hash_figures(harness.BUILD, hash_mib)
        if args.markdown:
            import benchmd
            benchmd.section("store", "Object store", "tests/bench/bench-store.py",
                            INTRO % (args.mib, "in parts of %d MiB, each read once to hash "
                                     "it and once to send it" % args.part_mib
                                     if args.part_mib else "one PUT, the default up "
                                     "to 5 GiB (`multipart_threshold_mb`)", hash_mib))
            print("```")
        print("object store, %d MiB image file, loopback stub:" % args.mib)
        how = "(one PUT)" if not args.part_mib or args.mib <= args.part_mib else \
            "(%d parts of %d MiB)" % (-(-args.mib // args.part_mib), args.part_mib)
        print("  upload        %6d ms  %7.0f MiB/s  %s"
              % (up_ms, args.mib * 1000.0 / max(up_ms, 1), how))
        print("  download      %6d ms  %7.0f MiB/s" % (ms["download"], args.mib *
                                                       1000.0 / max(ms["download"], 1)))
        print("  criu_restore  %6d ms  (names and sizes: the download hashed every byte)"
              % ms["criu_restore"])
        print("  criu_restore  %6d ms  from local images (the manifest check hashes "
              "%d MiB: %.0f MiB/s)" % (local_ms, args.mib,
                                      args.mib * 1000.0 / max(local_ms, 1)))
        print("SHA-256 of %d MiB in memory, 1 MiB pieces, best of 3, same run:" % hash_mib)
        print("  portable C (before)   %6s MiB/s" % hf["old_mib_s"])
        print("  libcrypto EVP (now)   %6s MiB/s  (%sx)" % (hf["new_mib_s"], hf["speedup"]))
        if args.markdown:
            print("```\n")
        ok = True
    finally:
        env.close(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
