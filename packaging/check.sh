#!/bin/bash
# check.sh VERSION BUILD -- the static checks of `make package-check`:
# lintian on the .deb and rpmlint on the .rpm and the spec (no error and
# no warning: what is intended is overridden, with its reason, in
# packaging/debian/llmux.lintian-overrides and packaging/rpm/rpmlint.toml),
# the spec's dependencies against their Fedora names (fedora-deps.txt),
# the man pages (they render without a warning), and the systemd units
# (their security exposure, offline). The units are verified where they
# are installed, by the install test (tests/package/test_install.sh).
set -euo pipefail
version=$1
build=$(realpath "$2")
cd "$(dirname "$0")/.."
fail=0
say() { printf '  %-6s %s\n' "$1" "$2"; }

say LINT "lintian $build/deb/llmux_${version}-1_*.changes"
# lintian warns when run as root; it says nothing else about that.
lintian --pedantic -I "$build"/deb/llmux_"${version}"-1_*.changes \
    2>&1 | { grep -v '^running with root privileges' || true; } |
    tee "$build/lintian.txt"
if grep -q '^[EW]:' "$build/lintian.txt"; then
	echo "package-check: lintian found errors or warnings" >&2
	fail=1
fi

say LINT "rpmlint $build/rpm"
if ! rpmlint -c packaging/rpm/rpmlint.toml "$build"/rpm/RPMS/*/*.rpm \
    "$build"/rpm/SRPMS/*.rpm packaging/rpm/llmux.spec \
    > "$build/rpmlint.txt" 2>&1; then
	:
fi
cat "$build/rpmlint.txt"
if grep -q ': [EW]: ' "$build/rpmlint.txt" ||
    ! grep -q ' 0 errors, 0 warnings' "$build/rpmlint.txt"; then
	echo "package-check: rpmlint found errors or warnings" >&2
	fail=1
fi

# Every dependency of the spec, and every library of the built rpm (by
# soname: the symbol versions are those of the machine it was built on),
# must have its Fedora name in fedora-deps.txt.
say DEPS "packaging/rpm/fedora-deps.txt"
spec=packaging/rpm/llmux.spec
known=$(grep -v '^#' packaging/rpm/fedora-deps.txt | awk 'NF { print $1 }')
{
	rpmspec -q --buildrequires "$spec"
	rpmspec -q --requires "$spec"
	rpmspec -q --qf '[%{SUGGESTS}\n]' "$spec"
	rpm -qp --requires "$build"/rpm/RPMS/*/llmux-"$version"-1.*.rpm
} | sed 's/^(\(.*\))$/\1/; s/ or /\n/g' |
    sed 's/^\(lib[^(]*\.so[.0-9]*\)(.*$/\1/' |
    grep -v -e '^rpmlib(' -e '^rtld(' -e '^config(llmux)' | sort -u > "$build/rpm-deps.txt"
while read -r dep; do
	if ! grep -qxF -- "$dep" <<< "$known"; then
		echo "package-check: $dep is not in packaging/rpm/fedora-deps.txt" >&2
		fail=1
	fi
done < "$build/rpm-deps.txt"
grep -v '^#' packaging/rpm/fedora-deps.txt | awk '$2 == "none:"' |
    while read -r dep _ why; do
	if grep -qxF -- "$dep" "$build/rpm-deps.txt"; then
		echo "         not in Fedora: $dep ($why)"
	fi
done

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
