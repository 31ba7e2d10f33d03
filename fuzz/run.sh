#!/bin/bash
# Builds the libFuzzer targets (if needed) and runs each for SECONDS; prints, per target, the
# executions, executions per second and crashes; exits non-zero if any target crashed (or did
# not run). See fuzz/README.md.
#
#   fuzz/run.sh SECONDS [TARGET...]     TARGET: proc_status proc_stat mountinfo id_map ns_link
#                                        proc_event options dbus_args caller_view cgroup escape
#                                        engine_state index (default: all)
#
# Environment: PIDNS_FUZZ_BUILD (build directory, default build/fuzz), PIDNS_FUZZ_JOBS (targets
# run at once, default: the number of CPUs, at most 2), CC/CXX (default clang/clang++),
# PIDNS_FUZZ_ARGS (extra libFuzzer flags for every target, e.g. "-fork=2 -ignore_crashes=1").
# Inputs libFuzzer finds go to BUILD/corpus/TARGET (the committed seeds in fuzz/corpus/TARGET are
# only read), crashes to BUILD/artifacts/TARGET/, each run's output to BUILD/logs/TARGET.log.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
seconds=$1
shift
case $seconds in '' | *[!0-9]*) usage ;; esac
[ "$seconds" -ge 1 ] || usage

top=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$top/fuzz
all_targets="proc_status proc_stat mountinfo id_map ns_link proc_event options dbus_args caller_view cgroup escape engine_state index"
targets=()
for t in "${@:-}"; do
    [ -n "$t" ] || continue
    t=${t#fuzz_}
    case " $all_targets " in *" $t "*) targets+=("$t") ;; *) echo "fuzz/run.sh: unknown target '$t' (one of: $all_targets)" >&2; exit 2 ;; esac
done
[ ${#targets[@]} -gt 0 ] || read -r -a targets <<<"$all_targets"

build=${PIDNS_FUZZ_BUILD:-$top/build/fuzz}
case $build in /*) ;; *) build=$top/$build ;; esac
jobs=${PIDNS_FUZZ_JOBS:-$(nproc)}
[ "$jobs" -le 2 ] || jobs=2
[ "$jobs" -ge 1 ] || jobs=1

# Build (configure on first use). clang-14 from Debian 12 under its plain or versioned name.
cc=${CC:-clang}
cxx=${CXX:-clang++}
if ! command -v "$cxx" >/dev/null && command -v clang++-14 >/dev/null; then cc=clang-14; cxx=clang++-14; fi
command -v "$cxx" >/dev/null || { echo "fuzz/run.sh: $cxx not found; run packaging/install-build-deps.sh" >&2; exit 1; }
mkdir -p "$build"
if ! grep -q '^PIDNS_BUILD_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    CC=$cc CXX=$cxx cmake -S "$top" -B "$build" -DPIDNS_BUILD_FUZZ=ON -DPIDNS_BUILD_TESTS=OFF \
        -DPIDNS_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 \
        || { cat "$build/configure.log" >&2; echo "fuzz/run.sh: configure failed" >&2; exit 1; }
else
    # Configured before: regenerate, so that targets added since have build rules.
    cmake "$build" >"$build/configure.log" 2>&1 \
        || { cat "$build/configure.log" >&2; echo "fuzz/run.sh: configure failed" >&2; exit 1; }
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$build" "${build_targets[@]}" -j"$(nproc)" >"$build/build.log" 2>&1 \
    || { tail -50 "$build/build.log" >&2; echo "fuzz/run.sh: build failed (log: $build/build.log)" >&2; exit 1; }

# Readable stacks in crash reports.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && ! command -v llvm-symbolizer >/dev/null; then
    for s in /usr/lib/llvm-14/bin/llvm-symbolizer /usr/bin/llvm-symbolizer-14; do
        [ -x "$s" ] && export ASAN_SYMBOLIZER_PATH=$s && break
    done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-target libFuzzer flags: inputs as long as the files they stand for.
max_len() {
    case $1 in
    proc_status | mountinfo) echo 16384 ;;
    id_map) echo 12288 ;;  # 340 extents of up to 33 bytes: the extent limit is reachable
    proc_stat) echo 2048 ;;
    ns_link) echo 256 ;;
    proc_event) echo 1024 ;;
    options) echo 1024 ;;
    cgroup | escape) echo 8192 ;;  # a cgroup line holds up to PATH_MAX - 1 bytes of path; escaping past its 4096-byte cut
    *) echo 4096 ;;
    esac
}

run_one() {
    local t=$1
    local bin=$build/fuzz/fuzz_$t log=$build/logs/$t.log art=$build/artifacts/$t/
    mkdir -p "$build/corpus/$t" "$art" "$build/logs"
    local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -max_len="$(max_len "$t")" -artifact_prefix="$art")
    [ -f "$fuzz_dir/dict/$t.dict" ] && args+=(-dict="$fuzz_dir/dict/$t.dict")
    # shellcheck disable=SC2206
    [ -n "${PIDNS_FUZZ_ARGS:-}" ] && args+=($PIDNS_FUZZ_ARGS)
    local before after rc=0
    before=$(find "$art" -type f | wc -l)
    # A hard stop well past -max_total_time, in case the target wedges outside libFuzzer's timers.
    timeout --kill-after=30 $((seconds + 120)) "$bin" "${args[@]}" "$build/corpus/$t" "$fuzz_dir/corpus/$t" >"$log" 2>&1 || rc=$?
    after=$(find "$art" -type f | wc -l)
    echo "$rc $((after - before))" >"$build/logs/$t.status"
}

echo "fuzz/run.sh: ${#targets[@]} target(s), ${seconds}s each, $jobs at a time (build: $build)"
start=$(date +%s)
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    rm -f "$build/logs/$t.status"
    run_one "$t" &
    running=$((running + 1))
done
wait || true

failed=0
total_execs=0
printf '%-12s %12s %10s %8s  %s\n' target executions exec/s crashes result
for t in "${targets[@]}"; do
    log=$build/logs/$t.log
    rc=1 crashes=0
    [ -f "$build/logs/$t.status" ] && read -r rc crashes <"$build/logs/$t.status"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" 2>/dev/null | tail -1)
    result=ok
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        [ "$crashes" -ne 0 ] || crashes=1
        result="FAILED (exit $rc; log $log; inputs in $build/artifacts/$t/)"
    fi
    total_execs=$((total_execs + ${execs:-0}))
    printf '%-12s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$crashes" "$result"
done
echo "fuzz/run.sh: $total_execs executions in $(( $(date +%s) - start ))s"
if [ "$failed" -ne 0 ]; then
    for t in "${targets[@]}"; do
        read -r rc crashes <"$build/logs/$t.status" 2>/dev/null || { rc=1; crashes=0; }
        if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
            echo "---- $t: end of $build/logs/$t.log" >&2
            grep -v '^#[0-9]' "$build/logs/$t.log" | tail -40 >&2 || true
        fi
    done
    echo "fuzz/run.sh: a target crashed; reproduce with: $build/fuzz/fuzz_TARGET CRASH_FILE (see fuzz/README.md)" >&2
    exit 1
fi
