#!/usr/bin/env bash
# Builds the root file system of the booted Debian test host once and caches
# it: a minimal Debian 12 (bookworm) with systemd, sshd, sudo and iproute2,
# made by debootstrap from the mirror this machine's apt uses. Prints the
# root's path. A second run finds the cache and returns at once; parallel runs
# wait on a lock and build it once.
#
#   tests/beds/debian-root.sh [CACHE_DIR]     (default: target/testbed)
#
# Needs root and the packages debootstrap and systemd-container (tests/run.sh
# installs them). About 3 minutes and 280 MB the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${1:-target/testbed}
SUITE=bookworm
ROOT="$CACHE/debian-$SUITE"
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ROOT="$CACHE/debian-$SUITE"

exec 9>"$CACHE/debian-$SUITE.lock"
flock 9
if [ -f "$ROOT/.tomo-testbed-complete" ]; then
    echo "$ROOT"
    exit 0
fi

# The mirror this machine's apt uses (deb822 sources first, then the classic list).
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$MIRROR" ]; then
    MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
        /etc/apt/sources.list 2>/dev/null || true)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

BUILD="$CACHE/debian-$SUITE.build"
rm -rf "$BUILD" "$ROOT"
debootstrap --variant=minbase \
    --include=openssh-server,systemd,systemd-sysv,dbus,iproute2,sudo,ca-certificates \
    "$SUITE" "$BUILD" "$MIRROR" >"$CACHE/debian-$SUITE.log" 2>&1 ||
    { tail -20 "$CACHE/debian-$SUITE.log" >&2; exit 1; }

# The guest's apt sources name the same mirror; the test host points apt at
# its caching proxy (apt-cacher-ng on the host side of the veth).
echo "deb $MIRROR $SUITE main" >"$BUILD/etc/apt/sources.list"
rm -f "$BUILD/etc/apt/sources.list.d/"*.sources
# Nothing but what a test asks for: no apt caches of the build, no timers.
rm -rf "$BUILD/var/cache/apt/archives/"*.deb "$BUILD/var/lib/apt/lists/"*_Packages
ln -sf /dev/null "$BUILD/etc/systemd/system/apt-daily.timer"
ln -sf /dev/null "$BUILD/etc/systemd/system/apt-daily-upgrade.timer"
# The guest's network is set by the test (an address on its veth end);
# its console is not a getty.
ln -sf /dev/null "$BUILD/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$BUILD/etc/systemd/system/systemd-networkd-wait-online.service"
# sshd: root by key only; host keys are made per boot by the test.
rm -f "$BUILD/etc/ssh/ssh_host_"*
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
    >"$BUILD/etc/ssh/sshd_config.d/tomo-test.conf"
echo tomo-debian >"$BUILD/etc/hostname"
touch "$BUILD/.tomo-testbed-complete"
mv "$BUILD" "$ROOT"
echo "$ROOT"
