#!/bin/bash
# Regenerates the seed corpora of the parser targets (fuzz/corpus/*/) from this machine's /proc and
# its proc connector, as root: ./fuzz/tools/collect_seeds.sh [BUILD_DIR] (default build/fuzz, where
# fuzz/run.sh builds pidns-capture-proc-events). Makes a few namespaces and processes of unusual
# shapes first (nested pid and user namespaces, a multi-extent uid_map, an unmapped user namespace,
# a zombie, threads, a comm with spaces and parentheses, an nsfs bind mount, escaped mount paths),
# reads their files, then removes them. The dbus_args, caller_view and options seeds are written by
# fuzz/tools/make_seeds.py (structured inputs, not files of this machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/fuzz}
out=fuzz/corpus
[ "$(id -u)" -eq 0 ] || { echo "collect_seeds: run as root" >&2; exit 1; }

work=$(mktemp -d /tmp/pidns-seeds.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del pidns-fuzz-seed 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The first child of $1 (the process unshare --fork starts), waiting for it to appear.
child_of() {
    local c=""
    for _ in $(seq 100); do
        c=$(pgrep -P "$1" | head -1 || true)
        [ -n "$c" ] && break
        sleep 0.05
    done
    echo "$c"
}

# A process two pid namespaces and two user namespaces down (root mapped at each level).
unshare --user --map-root-user --pid --fork --kill-child \
    unshare --user --map-root-user --pid --fork --mount-proc --kill-child sleep 600 &
pids+=($!)
outer=$(child_of $!)
nested=$(child_of "$outer")
# A user namespace with a three-extent uid_map and gid_map written from outside, and one left unmapped.
unshare --user --pid --fork --kill-child sleep 600 &
mapped=$!
pids+=($mapped)
sleep 0.2
# (each map must arrive in one write(): bash's printf writes line by line, cat in one go)
printf '0 100000 65536\n65536 0 1\n100000 200000 10\n' > "$work/uid_map"
printf '0 100000 65536\n' > "$work/gid_map"
cat "$work/uid_map" > /proc/$mapped/uid_map
cat "$work/gid_map" > /proc/$mapped/gid_map
unshare --user --fork --kill-child sleep 600 &
unmapped=$!
pids+=($unmapped)
# A zombie: the child of a process that never waits.
sh -c 'sleep 0 & exec sleep 600' &
pids+=($!)
zparent=$!
sleep 0.3
zombie=$(pgrep -P "$zparent" | head -1 || true)
# A comm with spaces and parentheses (stat's field 2 ends at the last ')').
ln -s /bin/sleep "$work/a) (b c"
"$work/a) (b c" 600 &
pids+=($!)
weird=$!
# An nsfs bind mount, and mount points that need escapes, in a mount namespace of their own.
ip netns add pidns-fuzz-seed
mkdir -p "$work/with space" "$work/tab	and\\backslash"
touch "$work/ns file"
unshare --mount --propagation private sh -c "
    mount -t tmpfs 'src with space' '$work/with space'
    mount -t tmpfs none '$work/tab	and\\backslash'
    mount --bind /run/netns/pidns-fuzz-seed '$work/ns file'
    cat /proc/self/mountinfo > '$work/mountinfo-escaped'
"
sleep 0.2

# A multithreaded process, if the machine has one.
threaded=""
for s in /proc/[0-9]*/status; do
    if [ "$(awk '/^Threads:/ {print $2}' "$s" 2>/dev/null || echo 1)" -gt 1 ]; then
        threaded=$(basename "$(dirname "$s")")
        break
    fi
done

mkdir -p $out/{proc_status,proc_stat,mountinfo,id_map,ns_link,proc_event}
# Replaces the seeds, but keeps the inputs of past crashes (regress-*).
find $out/{proc_status,proc_stat,mountinfo,id_map,ns_link,proc_event} -type f ! -name 'regress-*' -delete

copy() {  # copy SRC DST: a /proc file read in one go (missing ones are skipped)
    cat "$1" > "$2.tmp" 2>/dev/null && mv "$2.tmp" "$2" || rm -f "$2.tmp"
}
for f in status stat; do
    d=$out/proc_$f
    copy /proc/self/$f $d/self
    copy /proc/1/$f $d/init
    copy /proc/2/$f $d/kthreadd
    copy /proc/$outer/$f $d/pidns-level1
    copy /proc/$nested/$f $d/pidns-level2
    # Read inside its namespaces (its own /proc): chains of one element, pids as it sees them.
    nsenter -t "$nested" -a cat /proc/1/$f > $d/pidns-level2-own-view 2>/dev/null || rm -f $d/pidns-level2-own-view
    nsenter -t "$nested" -a cat /proc/self/$f > $d/pidns-level2-reader 2>/dev/null || rm -f $d/pidns-level2-reader
    copy /proc/$mapped/$f $d/userns-mapped
    copy /proc/$weird/$f $d/comm-parentheses
    [ -n "$zombie" ] && copy /proc/$zombie/$f $d/zombie
    if [ -n "$threaded" ]; then
        copy /proc/$threaded/$f $d/threaded-leader
        tid=$(ls /proc/$threaded/task | grep -vx "$threaded" | head -1 || true)
        [ -n "$tid" ] && copy /proc/$threaded/task/$tid/$f $d/thread
    fi
done

copy /proc/1/mountinfo $out/mountinfo/init
copy /proc/self/mountinfo $out/mountinfo/self-with-netns
copy /proc/$nested/mountinfo $out/mountinfo/pidns-level2
cp "$work/mountinfo-escaped" $out/mountinfo/escaped-paths

for m in uid_map gid_map; do
    copy /proc/1/$m $out/id_map/init-$m
    copy /proc/$outer/$m $out/id_map/level1-$m
    copy /proc/$nested/$m $out/id_map/level2-$m
    copy /proc/$mapped/$m $out/id_map/extents-$m
    copy /proc/$unmapped/$m $out/id_map/unmapped-$m
    # The same maps read from inside (the kernel prints them relative to the reader).
    nsenter -t "$nested" -U --preserve-credentials cat /proc/$$/$m > $out/id_map/level2-reads-host-$m 2>/dev/null \
        || rm -f $out/id_map/level2-reads-host-$m
done

for l in /proc/self/ns/*; do
    printf '%s' "$(readlink "$l")" > $out/ns_link/"$(basename "$l")"
done
printf '%s' "$(readlink /proc/$nested/ns/pid)" > $out/ns_link/pid-level2
printf '%s' "$(readlink /proc/$nested/ns/user)" > $out/ns_link/user-level2
printf '%s' "$(readlink /proc/$mapped/ns/user)" > $out/ns_link/user-extents
# Targets of /proc/PID/fd/N links that are not namespaces: the parser must refuse them.
printf '%s' "$(readlink /proc/self/fd/0 < /dev/null)" > $out/ns_link/fd-dev-null
printf '%s' "$(true | readlink /proc/self/fd/0)" > $out/ns_link/fd-pipe
for f in /proc/[0-9]*/fd/*; do
    t=$(readlink "$f" 2>/dev/null || true)
    case $t in
    socket:*) [ -e $out/ns_link/fd-socket ] || printf '%s' "$t" > $out/ns_link/fd-socket ;;
    anon_inode:*) [ -e $out/ns_link/fd-anon-inode ] || printf '%s' "$t" > $out/ns_link/fd-anon-inode ;;
    esac
done
# The root field of the nsfs bind mount's mountinfo entry.
awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "nsfs") { print $4; exit } break }}' /proc/self/mountinfo | tr -d '\n' > $out/ns_link/mountinfo-root
[ -s $out/ns_link/mountinfo-root ] || rm -f $out/ns_link/mountinfo-root

capture=$build/fuzz/pidns-capture-proc-events
[ -x "$capture" ] || cmake --build "$build" --target pidns-capture-proc-events
"$capture" $out/proc_event

for d in $out/*/; do echo "$(ls "$d" | wc -l) files, $(du -sk "$d" | cut -f1) KiB: $d"; done
