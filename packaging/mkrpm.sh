#!/bin/bash
# mkrpm.sh VERSION BUILD -- build the .rpm with rpmbuild from
# packaging/rpm/llmux.spec and the source tarball, in BUILD/rpm/ (the
# packages land in BUILD/rpm/RPMS/). The BuildRequires are Fedora's names;
# where rpm's database does not hold them (Debian), --nodeps is used and
# the Debian packages that install-deps.sh installs stand for them.
set -euo pipefail
version=$1
build=$(realpath "$2")
cd "$(dirname "$0")/.."
top=$build/rpm
rm -rf "$top"
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,BUILDROOT}
specver=$(sed -n 's/^Version: *//p' packaging/rpm/llmux.spec)
if [ "$specver" != "$version" ]; then
	echo "mkrpm: llmux.spec says $specver, common/version.h $version" >&2
	exit 1
fi
cp "$build/llmux-$version.tar.gz" etc/llmux.sysusers "$top/SOURCES/"
cp packaging/rpm/llmux.spec "$top/SPECS/"
nodeps=
if ! rpm -q glibc >/dev/null 2>&1; then
	nodeps=--nodeps
fi
echo "  RPM    $top (log: $top/build.log)"
if ! rpmbuild -ba $nodeps --define "_topdir $top" \
    "$top/SPECS/llmux.spec" > "$top/build.log" 2>&1; then
	tail -30 "$top/build.log" >&2
	exit 1
fi
find "$top/RPMS" "$top/SRPMS" -name '*.rpm' | sort
