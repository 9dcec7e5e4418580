#!/bin/bash
# mkdist.sh VERSION OUT -- the source tarball llmux-VERSION.tar.gz that the
# deb and the rpm are built from: the files git knows of in this tree
# (committed or not, less the ignored ones), or, outside git, every file
# but build/.
set -eu
version=$1
out=$2
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/llmux-$version" "$(dirname "$out")"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked files deleted in the tree are left out.
	git ls-files -z --cached --others --exclude-standard |
	    while IFS= read -r -d '' f; do
		if [ -e "$f" ]; then printf '%s\0' "$f"; fi
	    done > "$tmp/files"
else
	find . -path ./build -prune -o -path ./.git -prune -o -type f -print0 |
	    sed -z 's|^\./||' > "$tmp/files"
fi
tar -c --null -T "$tmp/files" | tar -x -C "$tmp/llmux-$version"
# Reproducible: fixed owner, order and times.
tar -c --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime=@"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}" -C "$tmp" "llmux-$version" |
    gzip -n9 > "$out.tmp"
mv "$out.tmp" "$out"
echo "  DIST   $out"
