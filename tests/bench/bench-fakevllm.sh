#!/bin/sh
# bench-fakevllm.sh -- measure llmux-fakevllm's own cost: start it with
# --fake-fast on a free loopback port, then drive non-streaming ~1 KB chat
# completions with wrk (one connection for latency, several for
# throughput) and print the latency percentiles and requests/s.
#
#   tests/bench/bench-fakevllm.sh [BUILD] [SECONDS]
#
# Needs wrk (tools/install-deps.sh --all installs it).
set -eu

BUILD=${1:-build}
SECS=${2:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN="$BUILD/bin/llmux-fakevllm"

command -v wrk >/dev/null 2>&1 || {
    echo "bench-fakevllm: wrk is missing (tools/install-deps.sh --all)" >&2
    exit 1
}
[ -x "$BIN" ] || { echo "bench-fakevllm: no $BIN (run make)" >&2; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp)
"$BIN" serve bench-model --served-model-name bench --port "$PORT" \
    --fake-fast --disable-uvicorn-access-log >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f "$LOG"' EXIT INT TERM

# Wait (with a deadline) until it answers /health.
i=0
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 500 ]; then
        echo "bench-fakevllm: the server did not start" >&2
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.02
done

echo "llmux-fakevllm --fake-fast, non-streaming chat completion, ${SECS}s per run"
echo "== 1 connection (latency) =="
wrk -t1 -c1 -d"${SECS}s" --latency -s "$HERE/fakevllm-chat.lua" \
    "http://127.0.0.1:$PORT" | sed -n '/^body_bytes/,$p'
echo "== 16 connections (throughput) =="
wrk -t2 -c16 -d"${SECS}s" --latency -s "$HERE/fakevllm-chat.lua" \
    "http://127.0.0.1:$PORT" | sed -n '/^body_bytes/,$p'
