#!/bin/sh
# device-run.sh -- llmux on a real GPU in one run of under 8 minutes, with
# figures. How to run it, on a machine with an NVIDIA GPU (driver 570 or
# later), as root, with python3 and nothing else installed:
#
#     make device-bundle                       (here: build/device-bundle)
#     tests/gpu/device-run.sh --bundle build/device-bundle
#
# carrying build/device-bundle (under 60 MiB) with the source tree; or run
# DIR/tests/gpu/device-run.sh from a copy of the bundle alone. Figures go
# to stdout and, with OUT set (or --out DIR), to $OUT/device-run.txt and
# $OUT/device-run.json, with the logs under $OUT/logs. Allow 8 minutes
# (--budget SECS, default 450, is what the run plans for).
#
# --dry runs the same here against the fake GPU libraries of the bundle
# (`make check` does, so this cannot rot). What the run does and proves:
# tests/gpu/device_run.py and docs/gpu.md, "On a real GPU". Exit 0 when
# every check passed.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v python3 >/dev/null 2>&1; then
	echo "device-run: python3 is needed" >&2
	exit 2
fi
exec python3 "$HERE/device_run.py" "$@"
