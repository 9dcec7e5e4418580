"""test_device_run.py -- tests/gpu/device-run.sh --dry: the real-GPU run,
whole, against the bundle's fake GPU libraries, so that the script, the
bundle and the stand-in's --fake-gpu cuda mode cannot rot before a GPU is
lent. It must pass every check and write its figures: three switch runs
of ten switches each (cuda_suspend, offload, discard) whose every answer
was 200 with the weights intact and NVML right, and two models active
together without a switch."""
import json
import os
import subprocess

import harness
from harness import check, test


@test
def dry_run_passes_and_writes_its_figures(env):
    bundle = os.path.join(harness.BUILD, "device-bundle")
    check(os.path.isdir(bundle), "no bundle at %s: run make device-bundle" % bundle)
    out = env.path("out")
    p = subprocess.run([os.path.join(harness.ROOT, "tests", "gpu", "device-run.sh"), "--dry",
                        "--bundle", bundle, "--out", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    text = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and "device-run: all checks passed" in text,
          "device-run.sh --dry: exit %d\n%s" % (p.returncode, text[-6000:]))
    with open(os.path.join(out, "device-run.txt")) as f:
        check(f.read().strip().endswith(text.strip().splitlines()[-1]), "the summary is kept")
    with open(os.path.join(out, "device-run.json")) as f:
        fig = json.load(f)
    check(fig["failed"] == [] and fig["machine"]["dry"], fig["failed"])
    check(fig["gpu_module"]["in_place"]["asleep_bytes"] == 0, fig["gpu_module"])
    runs = {r["eviction"]: r for r in fig["switch_runs"]}
    check(sorted(runs) == ["discard+keep_running", "offload+keep_running",
                           "retain+cuda_suspend"], sorted(runs))
    for ev, r in runs.items():
        check(r["switches"] == 10 and len(r["records"]) == 10, (ev, r["switches"]))
        for rec in r["records"]:
            check(rec["status"] == 200 and rec["error"] is None and rec["weights_intact"],
                  (ev, rec))
            check(rec["nvml_victim_bytes"] <= rec["nvml_target_bytes"] // 10, (ev, rec))
            check(rec["total_ms"] > 0 and rec["wake"], (ev, rec))
    cuda = runs["retain+cuda_suspend"]["records"][0]
    check("cuda_suspend" in cuda["evict"] and "cuda_resume" in cuda["wake"], cuda)
    check("reload_weights" in runs["discard+keep_running"]["records"][0]["wake"], runs)
    together = fig["together"]
    check(together["switches_after_start"] == 0 and together["state"] in ("active:a,b",
                                                                         "active:b,a"), together)
    check(os.path.isfile(os.path.join(out, "logs", "retain+cuda_suspend-0.55",
                                      "supervisord.log")), os.listdir(out))


if __name__ == "__main__":
    harness.main()
