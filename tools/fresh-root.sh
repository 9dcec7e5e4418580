#!/bin/bash
# fresh-root.sh DIR [TARGET...] -- build and test llmux as a new user would
# on a fresh Debian 12: a root made with `debootstrap --variant=minbase
# bookworm`, plus make and git and nothing else, a fresh clone of this
# repository's committed HEAD in it (/src/llmux), and `make check deb rpm
# package-check` (or the TARGETs) run there, in a chroot with /proc, /sys
# and /dev mounted (the install test boots its own roots inside it with
# systemd-nspawn).
#
# The pristine root is kept as DIR/minbase.tar and unpacked afresh for
# every run; the log is DIR/run.log. Needs root, debootstrap and the
# network access to Debian's archive that debootstrap and apt need.
#
#   tools/fresh-root.sh /var/tmp/llmux-fresh
#   LLMUX_MIRROR=http://deb.debian.org/debian tools/fresh-root.sh DIR check
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: fresh-root.sh DIR [TARGET...]" >&2
	exit 2
fi
dir=$(realpath -m "$1")
shift
targets=${*:-check deb rpm package-check}
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse HEAD)
mirror=${LLMUX_MIRROR:-http://deb.debian.org/debian}
root=$dir/root
base=$dir/minbase.tar

if [ "$(id -u)" -ne 0 ]; then
	echo "fresh-root: needs root (debootstrap, chroot, mount)" >&2
	exit 1
fi
command -v debootstrap >/dev/null || {
	echo "fresh-root: debootstrap is missing (apt-get install debootstrap)" >&2
	exit 1
}
mkdir -p "$dir"
exec > >(tee "$dir/run.log") 2>&1

# mounted ROOT: the mounts below ROOT, deepest first.
mounted() {
	awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts |
	    sort -r
}
cleanup() {
	for m in $(mounted "$root"); do
		umount -l "$m" 2>/dev/null || true
	done
}
trap cleanup EXIT

if [ ! -f "$base" ]; then
	echo "fresh-root: debootstrap --variant=minbase bookworm ($mirror)"
	rm -rf "$dir/base"
	debootstrap --variant=minbase bookworm "$dir/base" "$mirror" \
	    > "$dir/debootstrap.log" 2>&1 || {
		tail -20 "$dir/debootstrap.log"
		exit 1
	}
	chroot "$dir/base" apt-get update > /dev/null
	chroot "$dir/base" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends make git > /dev/null
	chroot "$dir/base" apt-get clean
	tar -C "$dir/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$dir/base"
fi

echo "fresh-root: a fresh root in $root, llmux $commit in /src/llmux"
cleanup
if [ -n "$(mounted "$root")" ]; then
	echo "fresh-root: still mounted below $root: $(mounted "$root" | tr '\n' ' ')" >&2
	exit 1
fi
rm -rf --one-file-system "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
git clone --quiet --no-local "$repo" "$root/src/llmux"
git -C "$root/src/llmux" checkout --quiet --detach "$commit"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Where TLS goes through an intercepting proxy, node is given the site's
# certificate authorities in NODE_EXTRA_CA_CERTS (npm fetches the openai
# client for test_openai_client.py): the root gets the same. Nothing else
# of the caller's environment goes in.
site_env=
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
	cp "$NODE_EXTRA_CA_CERTS" "$root/etc/node-extra-ca.pem"
	site_env=NODE_EXTRA_CA_CERTS=/etc/node-extra-ca.pem
	echo "fresh-root: NODE_EXTRA_CA_CERTS ($NODE_EXTRA_CA_CERTS) copied in"
fi

mount -t proc proc "$root/proc"
for m in sys dev; do
	mount --rbind "/$m" "$root/$m"
	mount --make-rslave "$root/$m"
done

echo "fresh-root: make $targets"
start=$(date +%s)
rc=0
# shellcheck disable=SC2086
chroot "$root" env -i HOME=/root TERM="${TERM:-dumb}" $site_env \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    sh -c "cd /src/llmux && make $targets" || rc=$?
end=$(date +%s)
echo "fresh-root: make $targets: exit $rc after $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
exit $rc
