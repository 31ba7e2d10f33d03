#!/bin/sh
# Installs, from Debian 12's archive, what pidns needs: to build pidnsd and pidnsctl and try them
# (--build-only: what packaging/try-pidnsd.sh needs), or everything the test suite needs too (the
# default, as tests/run.sh and CI call it: the kernel and D-Bus tests' tools, the fuzzers' clang,
# the shells and tmux of the completion tests, the container engines of tests/engines/; their
# packages' services are not started, the tests run their own).
# Run as root on a fresh Debian 12 machine; safe to run again.
set -eu
# Build: the compilers (clang for the BPF iterator, lib/bpf/), CMake and the libraries. Try: the
# bus (dbus-daemon, dbus-send, and the user messagebus it runs as, from dbus-system-bus-common),
# busctl (systemd), unshare and setpriv (util-linux), pgrep (procps).
BUILD_PKGS="cmake g++ make pkg-config
  libsystemd-dev libsdbus-c++-dev libsdbus-c++-bin libbpf-dev clang
  nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  dbus-daemon dbus-bin dbus-system-bus-common systemd util-linux procps"
# Tests: iproute2 (ip netns), the Python examples' bindings, polkitd, systemd-nspawn, the fuzzers'
# clang, tmux with bash, bash-completion and zsh (completion and terminal tests), gdbus-codegen
# (libglib2.0-dev-bin: the interface's docs), groff and man-db (man page checks), the engines.
TEST_PKGS="iproute2
  python3-dbus python3-gi
  polkitd systemd-container
  clang clang-14 libclang-rt-14-dev llvm-14
  tmux bash-completion zsh libglib2.0-dev-bin groff-base man-db
  docker.io containerd runc podman catatonit uidmap lxc busybox-static"
case "${1:-}" in
  --build-only) PKGS=$BUILD_PKGS ;;
  "") PKGS="$BUILD_PKGS $TEST_PKGS" ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
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
