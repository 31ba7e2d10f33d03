#!/bin/sh
# Runs one bench against another build's pidnsd and this build's, in turn (OLD, NEW, OLD, NEW...),
# on the same host in the same minutes, and prints each pair of runs side by side: a before/after
# for a change that is not a bench option (the benches' bus harness starts PIDNS_BENCH_PIDNSD).
#
#   sudo bench/before-after.sh OLD/pidnsd ROUNDS ./build/me/bench/bench_dbus --reps 3
#
# OLD/pidnsd: e.g. `git worktree add /tmp/old REV && cmake -S /tmp/old -B /tmp/old/b && cmake
# --build /tmp/old/b --target pidnsd` (its daemon only; the bench is this build's). The full
# outputs stay in the directory printed last.
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 OLD_PIDNSD ROUNDS BENCH [ARGS...]" >&2
  exit 2
fi
old=$1 rounds=$2
shift 2
[ -x "$old" ] || { echo "$0: $old is not an executable pidnsd" >&2; exit 2; }
out=$(mktemp -d /tmp/before-after.XXXXXX)
i=1
while [ "$i" -le "$rounds" ]; do
  echo "== round $i of $rounds: $old, then this build's pidnsd ==" >&2
  PIDNS_BENCH_PIDNSD=$old "$@" > "$out/old.$i" 2>&1 || echo "(exit $?)" >> "$out/old.$i"
  PIDNS_BENCH_PIDNSD= "$@" > "$out/new.$i" 2>&1 || echo "(exit $?)" >> "$out/new.$i"
  echo "== round $i: left $old, right this build's ==" 
  pr -m -t -w 220 "$out/old.$i" "$out/new.$i"
  i=$((i + 1))
done
echo "outputs: $out"
