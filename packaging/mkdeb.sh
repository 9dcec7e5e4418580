#!/bin/bash
# mkdeb.sh VERSION BUILD -- build the .deb with dpkg-buildpackage: the
# source tarball is unpacked in BUILD/deb/, packaging/debian/ becomes its
# debian/ (with the sysusers.d and tmpfiles.d files from etc/), and the
# packages land in BUILD/deb/.
set -euo pipefail
version=$1
build=$(realpath "$2")
cd "$(dirname "$0")/.."
out=$build/deb
rm -rf "$out"
mkdir -p "$out"
tar -x -C "$out" -f "$build/llmux-$version.tar.gz"
src=$out/llmux-$version
cp -r packaging/debian "$src/debian"
cp etc/llmux.sysusers "$src/debian/llmux.sysusers"
cp etc/llmux.tmpfiles "$src/debian/llmux.tmpfiles"
debver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [ "${debver%-*}" != "$version" ]; then
	echo "mkdeb: debian/changelog says $debver, common/version.h $version" >&2
	exit 1
fi
echo "  DEB    $out (log: $out/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1; then
	tail -30 "$out/build.log" >&2
	exit 1
fi
ls "$out"/*.deb
