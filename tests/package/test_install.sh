#!/bin/bash
# test_install.sh BUILD -- install the built .deb, then the built .rpm, into
# a clean Debian 12 root made with debootstrap, boot systemd in it as PID 1
# with systemd-nspawn, and run inside.sh there: files, users, directories
# and the socket's permissions; the units verified and started as they
# ship (the supervisor as root, the proxy socket-activated as llmux); a
# request through the proxy to llmux-fakevllm, which starts the model on
# demand, by its name and its alias; llmuxctl as root, as an operator and
# as a stranger; restarts that keep the model; a reinstall and an upgrade
# to a newer version that keep it too; removal, which leaves no model.
#
# Run by `make package-check`, as root. The base root is cached in
# BUILD/pkgtest/ (made once from the apt mirror this machine uses).
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(cd "$(dirname "$0")" && pwd)
work=$build/pkgtest
base=$work/bookworm-base.tar
version=$(sed -n 's/^#define LLMUX_VERSION[^"]*"\(.*\)"/\1/p' "$here/../../common/version.h")

if [ "$(id -u)" -ne 0 ]; then
	echo "test_install: needs root (debootstrap, systemd-nspawn)" >&2
	exit 1
fi
for tool in debootstrap systemd-nspawn rpm; do
	command -v $tool >/dev/null || {
		echo "test_install: $tool is missing (tools/install-deps.sh --package)" >&2
		exit 1
	}
done
mkdir -p "$work"

# The mirror apt uses here, for the base root.
mirror=$( { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{ print $2 }'; grep -h '^deb ' /etc/apt/sources.list 2>/dev/null |
    awk '{ print $2 }'; } | grep -v security | head -1) || true
if [ ! -f "$base" ]; then
	echo "  ROOT   debootstrap bookworm from ${mirror:-the default mirror}"
	rm -rf "$work/base"
	debootstrap --variant=minbase \
	    --include=systemd,systemd-sysv,dbus,man-db,acl,curl,ca-certificates,procps \
	    bookworm "$work/base" ${mirror:+"$mirror"} > "$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log" >&2
		exit 1
	}
	chroot "$work/base" apt-get update > /dev/null
	tar -C "$work/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$work/base"
fi

# newer_deb: the .deb again as version VERSION-1+upgrade1 (the same files,
# repacked), for the upgrade.
newer_deb() {
	local dir=$work/deb-upgrade
	rm -rf "$dir"
	mkdir -p "$dir"
	dpkg-deb -R "$deb" "$dir/pkg" &&
	    sed -i "s/^Version: .*/Version: ${version}-1+upgrade1/" \
	    "$dir/pkg/DEBIAN/control" &&
	    dpkg-deb --root-owner-group -b "$dir/pkg" "$dir/" > /dev/null &&
	    ls "$dir"/llmux_"$version"-1+upgrade1_*.deb
}

# newer_rpm: the .rpm rebuilt from its source package as release 1.upgrade1,
# for the upgrade.
newer_rpm() {
	local top=$work/rpm-upgrade
	rm -rf "$top"
	mkdir -p "$top"
	rpmbuild --rebuild --nodeps --define "_topdir $top" \
	    --define "dist .upgrade1" "$srpm" > "$top/build.log" 2>&1 || {
		tail -30 "$top/build.log" >&2
		return 1
	}
	ls "$top"/RPMS/*/llmux-"$version"-1.upgrade1.*.rpm
}

# Free loopback ports for the proxy, its control API and the model.
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')

# run_in KIND PACKAGE NEWER: a fresh root, the packages in it, inside.sh run
# by systemd once booted; prints its log and fails when it failed.
run_in() {
	local kind=$1 pkg=$2 newer=$3 root=$work/root-$1
	# A lock left by an interrupted run would make nspawn refuse the root.
	rm -rf "$root" "$work/.#root-$1.lck"
	mkdir -p "$root"
	tar -C "$root" -xf "$base"
	cp "$pkg" "$newer" "$root/root/"
	cp "$here/inside.sh" "$root/root/inside.sh"
	echo "$kind $(basename "$pkg") $(basename "$newer") $ports" \
	    > "$root/root/inside.args"
	cat > "$root/etc/systemd/system/llmux-install-test.service" <<'UNIT'
[Unit]
Description=llmux install test
After=multi-user.target
[Service]
Type=oneshot
StandardOutput=file:/root/inside.log
StandardError=inherit
ExecStart=/bin/bash /root/inside.sh
ExecStopPost=/bin/systemctl --no-block poweroff
UNIT
	ln -sf /etc/systemd/system/llmux-install-test.service \
	    "$root/etc/systemd/system/multi-user.target.wants/llmux-install-test.service"
	# No console logins, nothing else started that the test does not need.
	rm -f "$root/etc/systemd/system/getty.target.wants/"*
	if [ "$kind" = rpm ]; then
		# rpm knows nothing of Debian's packages: the libraries come
		# from apt, and Debian's rpm, which installs the package
		# (--nodeps) once systemd runs, so that its scriptlets run as
		# on an rpm system.
		chroot "$root" apt-get install -y --no-install-recommends \
		    libevent-2.1-7 libevent-pthreads-2.1-7 libevhtp0 libyajl2 \
		    libyaml-0-2 rpm > "$work/apt-$kind.log" 2>&1 || {
			tail -20 "$work/apt-$kind.log" >&2
			return 1
		}
	fi
	echo "  BOOT   systemd-nspawn -b ($kind: $(basename "$pkg"))"
	timeout 600 systemd-nspawn --quiet --register=no --keep-unit \
	    --console=pipe -D "$root" -b > "$work/console-$kind.log" 2>&1 < /dev/null || true
	if [ ! -f "$root/root/inside.log" ]; then
		echo "test_install: the test did not run; console:" >&2
		tail -30 "$work/console-$kind.log" >&2
		return 1
	fi
	sed 's/^/         /' "$root/root/inside.log"
	grep -q '^RESULT PASS' "$root/root/inside.log"
}

# LLMUX_PKGTEST=deb or rpm runs one of the two.
rc=0
if [ "${LLMUX_PKGTEST:-deb}" = deb ]; then
	deb=$(ls "$build"/deb/llmux_"$version"-1_*.deb)
	newer=$(newer_deb) && run_in deb "$deb" "$newer" || rc=1
fi
if [ "${LLMUX_PKGTEST:-rpm}" = rpm ]; then
	rpm=$(ls "$build"/rpm/RPMS/*/llmux-"$version"-1.*.rpm)
	srpm=$(ls "$build"/rpm/SRPMS/llmux-"$version"-1.src.rpm)
	echo "  RPM    $srpm rebuilt as release 1.upgrade1"
	newer=$(newer_rpm) && run_in rpm "$rpm" "$newer" || rc=1
fi
if [ $rc -eq 0 ]; then
	echo "  PASS   install test (${LLMUX_PKGTEST:-deb and rpm})"
else
	echo "  FAIL   install test" >&2
fi
exit $rc
