#!/bin/bash
# check.sh VERSION BUILD -- the static checks of `make package-check`:
# lintian on the .deb, rpmlint on the .rpm (both: no errors), the man
# pages (they render without a warning), and the systemd units (their
# security exposure, offline). The units are verified where they are
# installed, by the install test (tests/package/test_install.sh).
set -euo pipefail
version=$1
build=$(realpath "$2")
cd "$(dirname "$0")/.."
fail=0
say() { printf '  %-6s %s\n' "$1" "$2"; }

say LINT "lintian $build/deb/llmux_${version}-1_*.changes"
# lintian warns when run as root; it says nothing else about that.
lintian --pedantic -I "$build"/deb/llmux_"${version}"-1_*.changes \
    2>&1 | grep -v '^running with root privileges' | tee "$build/lintian.txt"
if grep -q '^E:' "$build/lintian.txt"; then
	echo "package-check: lintian found errors" >&2
	fail=1
fi

say LINT "rpmlint $build/rpm"
if ! rpmlint -c packaging/rpm/rpmlint.toml "$build"/rpm/RPMS/*/*.rpm \
    "$build"/rpm/SRPMS/*.rpm packaging/rpm/llmux.spec \
    > "$build/rpmlint.txt" 2>&1; then
	:
fi
cat "$build/rpmlint.txt"
if grep -q ': E: ' "$build/rpmlint.txt" ||
    ! grep -q ' 0 errors' "$build/rpmlint.txt"; then
	echo "package-check: rpmlint found errors" >&2
	fail=1
fi

for page in docs/man/*.[0-9]; do
	say MAN "$page"
	out=$( { LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" \
	    >/dev/null; groff -ww -mandoc -z "$page"; mandoc -Tlint -W warning \
	    "$page"; } 2>&1) || true
	if [ -n "$out" ]; then
		echo "$out"
		fail=1
	fi
done

for unit in llmux-proxyd.service llmux-supervisord.service; do
	say UNIT "systemd-analyze security --offline=yes etc/$unit"
	score=$(cd etc && systemd-analyze security --offline=yes --no-pager \
	    "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	echo "         exposure $score"
	case $unit in
	llmux-proxyd.service)
		if ! awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }'; then
			echo "package-check: the proxy's exposure is above 2.0" >&2
			fail=1
		fi
		;;
	esac
done
exit $fail
