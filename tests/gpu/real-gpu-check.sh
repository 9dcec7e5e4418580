#!/bin/sh
# real-gpu-check.sh -- the GPU module on a real GPU (a few minutes).
#
# Builds llmux and tests/gpu/gpu_check.c, starts a PyTorch process holding
# $GB GiB (default 8) of known data on GPU 0, suspends and resumes it with
# the CUDA driver's checkpoint API as llmux-supervisord does, checks with
# NVML that the memory was freed and restored and that the data survived,
# and prints the times and GB/s. With two GPUs of the same kind it does it
# again, restoring onto GPU 1 (UUID remapping). Needs root (or
# CAP_SYS_ADMIN + CAP_SYS_PTRACE), driver 570 or later, python3 with torch.
# Exit 0 when every check passed.
set -eu

GB=${GB:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
make -s all BUILD="$BUILD" >/dev/null
cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -I. -Icommon -Iproto \
    -o "$BUILD/gpu_check" tests/gpu/gpu_check.c \
    "$BUILD/lib/libsupervisord.a" "$BUILD/lib/libllmux.a" -ldl -lpthread -lm
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true

TMP=$(mktemp -d)
trap 'kill $HOLDER 2>/dev/null || true; rm -rf "$TMP"' EXIT INT TERM
rc=0

# One holder per run: its stdin is a fifo we write "check" to at the end.
cycle() {
	mkfifo "$TMP/in.$1"
	python3 tests/gpu/holder.py "$GB" <"$TMP/in.$1" >"$TMP/out.$1" 2>&1 &
	HOLDER=$!
	exec 3>"$TMP/in.$1"
	i=0
	until grep -q READY "$TMP/out.$1"; do
		i=$((i + 1))
		if [ $i -gt 600 ] || ! kill -0 $HOLDER 2>/dev/null; then
			echo "the PyTorch process did not start:"
			cat "$TMP/out.$1"
			return 1
		fi
		sleep 0.5
	done
	echo "== $2"
	"$BUILD/gpu_check" "$HOLDER" $3 || rc=1
	echo check >&3
	exec 3>&-
	wait $HOLDER || rc=1
	grep DATA "$TMP/out.$1" || rc=1
}

cycle 0 "suspend and resume in place, $GB GiB" ""
NGPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | wc -l)
SAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sort -u | wc -l)
if [ "$NGPU" -ge 2 ] && [ "$SAME" -eq 1 ]; then
	cycle 1 "suspend on GPU 0, resume onto GPU 1, $GB GiB" 1
fi
[ $rc -eq 0 ] && echo "real-gpu-check: all checks passed" ||
    echo "real-gpu-check: FAILED"
exit $rc
