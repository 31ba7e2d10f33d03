#!/bin/sh
# Installs, from Debian 12's archive, everything pidns needs to build and test (the container
# engines of tests/engines/ too: their packages' services are not started, the tests run their own).
# Run as root on a fresh Debian 12 machine; safe to run again.
set -eu
PKGS="cmake g++ make pkg-config
  libsystemd-dev libsdbus-c++-dev libsdbus-c++-bin
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev catch2
  util-linux iproute2 procps
  python3-dbus python3-gi
  dbus-daemon dbus-bin systemd polkitd systemd-container
  clang clang-14 libclang-rt-14-dev llvm-14
  docker.io containerd runc podman catatonit uidmap lxc busybox-static"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-build-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-build-deps: missing packages:$missing; run this script as root (it calls apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The engines' packages would start their system services (docker.service, containerd, lxc-net
# with its bridge and dnsmasq): a policy-rc.d that refuses them for this install, if none is there.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# install-build-deps.sh: no service starts during this install\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
