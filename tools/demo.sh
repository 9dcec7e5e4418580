#!/bin/sh
# demo.sh -- `make demo`: llmux with three fake models (etc/demo.yaml),
# switching on demand; tools/demo.py does the work and says what it shows.
#
#   tools/demo.sh [BUILD] [--once]
#
# Run by hand from a fresh clone it installs the dependencies and builds
# first (`make` does both); LLMUX_DEMO_ONESHOT=1 or --once runs the
# sequence, tears everything down and exits.
set -eu
cd "$(dirname "$0")/.."
build=build
case "${1:-}" in
""|-*)	;;
*)	build=$1; shift ;;
esac
if [ ! -x "$build/bin/llmux-supervisord" ] || [ ! -x "$build/bin/llmux-proxyd" ]; then
	make BUILD="$build" all
fi
exec python3 tools/demo.py "$@" "$build"
