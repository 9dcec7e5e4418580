#!/bin/bash
# fresh-root.sh DIR [TARGET...] -- build and test llmux as a new user would
# on a fresh Debian 12: a root made with `debootstrap --variant=minbase
# bookworm`, plus make and git and nothing else, a fresh clone of this
# repository's committed HEAD in it (/src/llmux), and `make check deb rpm
# package-check` (or the TARGETs) run there. The root is entered in a
# mount namespace of its own with pivot_root, not chroot: the kernel
# refuses user namespaces to a chrooted process, and the install test's
# containers (systemd-nspawn, inside this root) give the proxy one
# (PrivateUsers=yes). /proc, /sys and /dev are the host's; the mounts
# vanish with the namespace.
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
	echo "fresh-root: needs root (debootstrap, unshare, mount)" >&2
	exit 1
fi
command -v debootstrap >/dev/null || {
	echo "fresh-root: debootstrap is missing (apt-get install debootstrap)" >&2
	exit 1
}
mkdir -p "$dir"
exec > >(tee "$dir/run.log") 2>&1

# mounted ROOT: the host's mounts below ROOT (there should be none).
mounted() {
	awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts
}

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

echo "fresh-root: make $targets"
start=$(date +%s)
rc=0
# shellcheck disable=SC2016
unshare --mount --propagation private env ROOT="$root" TARGETS="$targets" \
    TERM="${TERM:-dumb}" SITE_ENV="$site_env" sh -ec '
	mount --bind "$ROOT" "$ROOT"
	mount -t proc proc "$ROOT/proc"
	mount --rbind /sys "$ROOT/sys"
	mount --rbind /dev "$ROOT/dev"
	cd "$ROOT"
	mkdir -p .old-root
	pivot_root . .old-root
	umount -l /.old-root
	rmdir /.old-root
	exec /usr/bin/env -i HOME=/root TERM="$TERM" $SITE_ENV \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    sh -c "cd /src/llmux && make $TARGETS"' || rc=$?
end=$(date +%s)
echo "fresh-root: make $targets: exit $rc after $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s"
exit $rc
