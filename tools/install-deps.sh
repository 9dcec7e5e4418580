#!/bin/sh
# install-deps.sh -- install every build and test dependency of llmux from
# Debian's archive. A no-op (and silent) when everything is present, so the
# Makefile runs it before every build from a clean tree.
#
#   install-deps.sh             what `make` and `make check` need
#   install-deps.sh --deb       and what `make deb` needs
#   install-deps.sh --rpm       and what `make rpm` needs
#   install-deps.sh --package   and what `make package-check` needs (both
#                               packages, their checks and the install test)
#   install-deps.sh --all       all of it, and the fuzz, sanitizer and
#                               benchmark tools
set -eu

# Debian package name, then a file or command that proves it is installed.
# (libssl-dev: libcrypto, the supervisor's SHA-256; and Debian's
# libevhtp-dev is built with TLS, and evhtp.h includes OpenSSL's headers,
# but it does not depend on libssl-dev. nodejs
# and npm: test_openai_client.py runs the openai npm client, which npm
# installs from the npm registry into build/npm.)
PKGS="
build-essential:/usr/bin/gcc
pkg-config:/usr/bin/pkg-config
clang:/usr/bin/clang
libevent-dev:/usr/include/event2/event.h
libevhtp-dev:/usr/include/evhtp/evhtp.h
libssl-dev:/usr/include/openssl/dh.h
libmsgpack-dev:/usr/include/msgpack.h
libyaml-dev:/usr/include/yaml.h
libyajl-dev:/usr/include/yajl/yajl_parse.h
libsystemd-dev:/usr/include/systemd/sd-daemon.h
libcap-ng-dev:/usr/include/cap-ng.h
libcurl4-openssl-dev:/usr/bin/curl-config
check:/usr/include/check.h
python3:/usr/bin/python3
nodejs:/usr/bin/node
npm:/usr/bin/npm
curl:/usr/bin/curl
procps:/usr/bin/ps
psmisc:/usr/bin/killall
libjs-chart.js:/usr/share/javascript/chart.js/chart.min.js
chromium:/usr/bin/chromium
prometheus:/usr/bin/promtool
"
# Tools for `make fuzz`, `make asan`, `make bench`: installed on request.
EXTRA_PKGS="
libclang-rt-14-dev:/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.asan-x86_64.a
wrk:/usr/bin/wrk
nginx:/usr/sbin/nginx
"

# Tools for `make deb` (debhelper 13 provides dh-sequence-installsysusers
# on Debian 12), for `make rpm`, and for `make package-check`: lintian,
# rpmlint, the man page checkers, and what the install test uses
# (debootstrap builds a Debian root, systemd-nspawn boots it). Installed
# on request.
DEB_PKGS="
debhelper:/usr/bin/dh_installsysusers
dpkg-dev:/usr/bin/dpkg-buildpackage
fakeroot:/usr/bin/fakeroot
"
RPM_PKGS="
rpm:/usr/bin/rpmbuild
"
CHECK_PKGS="
lintian:/usr/bin/lintian
rpmlint:/usr/bin/rpmlint
man-db:/usr/bin/man
groff-base:/usr/bin/groff
mandoc:/usr/bin/mandoc
debootstrap:/usr/sbin/debootstrap
systemd:/usr/bin/systemd-analyze
systemd-container:/usr/bin/systemd-nspawn
acl:/usr/bin/getfacl
"
PACKAGE_PKGS="$DEB_PKGS $RPM_PKGS $CHECK_PKGS"

list="$PKGS"
case "${1:-}" in
--all)		list="$PKGS $EXTRA_PKGS $PACKAGE_PKGS" ;;
--deb)		list="$PKGS $DEB_PKGS" ;;
--rpm)		list="$PKGS $RPM_PKGS" ;;
--package)	list="$PKGS $PACKAGE_PKGS" ;;
"")		;;
*)		echo "usage: install-deps.sh [--deb|--rpm|--package|--all]" >&2
		exit 2 ;;
esac

missing=""
for entry in $list; do
    pkg=${entry%%:*}
    path=${entry#*:}
    [ -e "$path" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "install-deps: need root to install:$missing" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt (`make -j2 deb rpm` runs two of these) is waited for.
apt="$SUDO apt-get -o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086
if ! $apt install -y --no-install-recommends $missing >/dev/null; then
    $apt update >/dev/null
    # shellcheck disable=SC2086
    $apt install -y --no-install-recommends $missing >/dev/null
fi
