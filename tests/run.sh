#!/bin/sh
# The whole test suite: installs build dependencies (apt-get), builds with -Werror, runs every
# test with CTest (the D-Bus tests again as on Linux 5.14 and 6.1: --assume-kernel, the 5.14 pass
# without the BPF iterator: --no-bpf; the engine tests against docker, podman, containerd and LXC
# started privately, tests/engines/), then builds again with ASan+UBSan and runs the suite under the sanitizers, runs every libFuzzer target for 20 s,
# then builds the Debian package from HEAD, runs lintian on it, and tests it installed under a
# booted systemd (tests/system/nspawn-test.sh).
# Needs root (apt-get, and the kernel tests make real pid and user namespaces).
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)

./packaging/install-build-deps.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: the kernel tests create pid and user namespaces: run as root" >&2
  exit 1
fi

# The engine tests' fixture stops its engines itself (CTest runs `engines.sh down` after the last
# engine test); this covers a run interrupted before that.
trap 'for b in build/ci build/sanitize; do ./tests/engines/engines.sh down "$b/engines" >/dev/null 2>&1; done' EXIT

echo "== build (-Werror) =="
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPIDNS_WERROR=ON
cmake --build build/ci -j "$JOBS"

echo "== build (ASan+UBSan) =="
cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug -DPIDNS_WERROR=ON -DPIDNS_SANITIZE=ON -DPIDNS_BUILD_BENCH=OFF
cmake --build build/sanitize -j "$JOBS"

# ctest in build dir $1 (more ctest arguments after it); then the tests CTest skipped, each with
# the reason it printed (tests/harness/skip.h: a prerequisite this host lacks), since CTest's
# summary names a skipped test without its reason.
run_ctest() {
  dir=$1
  shift
  rc=0
  (cd "$dir" && ctest --output-on-failure "$@") || rc=$?
  grep -h '^SKIPPED: ' "$dir/Testing/Temporary/LastTest.log" 2>/dev/null | sort -u || true
  return "$rc"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp

echo "== tests under ASan+UBSan =="
run_ctest build/sanitize

echo "== tests =="
run_ctest build/ci

# The hosts pidnsd runs on mostly have older kernels (Debian 12: 6.1, RHEL 9: 5.14): the D-Bus
# tests again with pidnsd using only the kernel interfaces those have (pidnsd(8), KERNELS).
# The 5.14 pass also lists every /proc/PID/fd in rescans (--no-bpf), as on a kernel that does not
# load the BPF iterator (no BTF, lockdown); the 6.1 pass uses the iterator, as the default does.
for args in "--assume-kernel=5.14 --no-bpf" "--assume-kernel=6.1"; do
  echo "== D-Bus tests as on Linux ${args#--assume-kernel=} (pidnsd $args) =="
  (export PIDNS_TEST_DAEMON_ARGS="$args" && run_ctest build/ci -R 'dbus:' -E 'soak|hostile: |fork storm')
done

echo "== fuzz targets, 20 s each (fuzz/run.sh; fuzz/README.md runs them for hours) =="
./fuzz/run.sh 20

echo "== Debian package (packaging/build-deb.sh, from HEAD) =="
./packaging/build-deb.sh build/deb

echo "== system test under systemd (systemd-nspawn boot, the package installed) =="
./tests/system/nspawn-test.sh build/deb/pidnsd_*.deb
