#!/bin/sh
# Try pidnsd on this machine: installs the build dependencies (only those: not the test suite's),
# builds pidnsd and pidnsctl alone in build/try, puts a process in a fresh pid namespace, prints
# pidnsctl, busctl and dbus-send lines to paste into another shell (the bus address, that
# process's pid and its namespace's inode filled in), and runs pidnsd in the foreground of this
# script until Ctrl-C. Run as root from a Debian 12 clone: ./packaging/try-pidnsd.sh
#
# Options:
#   --private-bus        never the system bus: always a private one (below)
#   --prebuilt=BUILDDIR  take BUILDDIR/daemon/pidnsd and BUILDDIR/ctl/pidnsctl as they are: no
#                        packages installed, nothing built (the test suite runs it so)
#
# Bus: the system bus when one is running (this installs dbus/org.pidns.conf into
# /usr/share/dbus-1/system.d and reloads the bus; the file is removed again on exit if it was not
# there before), else a private bus started from tests/dbus/system-bus.conf.in in a temp dir, run
# as the user messagebus as Debian's system bus runs (a dbus-daemon started as root tries to raise
# its fd limit to 65536, which fails where root lacks CAP_SYS_RESOURCE, as in a container: it then
# works on with the limit it has); its messages go to a log file, shown if it fails.
# On exit (pidnsd stopped by Ctrl-C, SIGTERM, a hangup or an error) the namespace process, the
# private bus and the temp dir go away; the exit code is pidnsd's.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf 'try-pidnsd: %s\n' "$*"; }
die() { printf 'try-pidnsd: %s\n' "$*" >&2; exit 1; }

PRIVATE="" PREBUILT=""
for arg in "$@"; do
  case "$arg" in
    --private-bus) PRIVATE=1 ;;
    --prebuilt=*) PREBUILT=${arg#--prebuilt=} ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (see $0 --help)" ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  die "run as root: it installs packages, makes a pid namespace, and pidnsd needs root for the kernel's process events"
fi

TMPD="" BUS_PID="" UNSHARE_PID="" DAEMON_PID="" POLICY_UNDO=""
POLICY_DST=/usr/share/dbus-1/system.d/org.pidns.conf
SYSTEM_SOCKET=/run/dbus/system_bus_socket

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  trap - EXIT INT TERM HUP
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  # unshare runs with --kill-child: killing it kills the sleep, and with it the pid namespace.
  if [ -n "$UNSHARE_PID" ]; then
    kill -KILL "$UNSHARE_PID" 2>/dev/null || true
    wait "$UNSHARE_PID" 2>/dev/null || true
  fi
  if [ -n "$BUS_PID" ]; then
    kill -TERM "$BUS_PID" 2>/dev/null || true
    wait "$BUS_PID" 2>/dev/null || true
  fi
  case "$POLICY_UNDO" in
    remove)
      rm -f "$POLICY_DST"
      say "removed $POLICY_DST again"
      ;;
    restore)
      cp "$TMPD/org.pidns.conf.orig" "$POLICY_DST"
      say "restored the previous $POLICY_DST"
      ;;
  esac
  if [ -n "$POLICY_UNDO" ]; then
    dbus-send --system --print-reply --reply-timeout=5000 --type=method_call --dest=org.freedesktop.DBus \
      / org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || say "could not ask the system bus to reload its config"
  fi
  if [ -n "$TMPD" ]; then rm -rf "$TMPD"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ -n "$PREBUILT" ]; then
  BUILD=$(cd "$PREBUILT" && pwd)
else
  # 1. Build dependencies (they include dbus-daemon, dbus-send, busctl, unshare, setpriv, pgrep).
  ./packaging/install-build-deps.sh --build-only
  # 2. Build pidnsd and pidnsctl only (no tests, benchmarks or examples), in a directory of their
  #    own, optimized without debug information (which a try does not need: -g costs a third of
  #    the compile time), as one goal (pidns-try) so that both cores stay busy to the end.
  BUILD="$ROOT/build/try"
  say "building pidnsd and pidnsctl in $BUILD ($(nproc) jobs)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DPIDNS_BUILD_TESTS=OFF -DPIDNS_BUILD_BENCH=OFF >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target pidns-try
fi
PIDNSD="$BUILD/daemon/pidnsd"
PIDNSCTL="$BUILD/ctl/pidnsctl"
[ -x "$PIDNSD" ] || die "no $PIDNSD: the build did not make it"
[ -x "$PIDNSCTL" ] || die "no $PIDNSCTL: the build did not make it"

TMPD=$(mktemp -d /tmp/try-pidnsd.XXXXXX)
chmod 0755 "$TMPD"  # so that users other than root can try it too (the socket is 0777)

# 3. A bus: the system bus if one answers, else a private one shaped like it.
system_bus_answers() {
  [ -S "$SYSTEM_SOCKET" ] || return 1
  timeout 10 dbus-send --system --print-reply --reply-timeout=5000 --dest=org.freedesktop.DBus \
    / org.freedesktop.DBus.GetId >/dev/null 2>&1
}

if [ -z "$PRIVATE" ] && system_bus_answers; then
  if timeout 10 dbus-send --system --print-reply --reply-timeout=5000 --dest=org.freedesktop.DBus \
       / org.freedesktop.DBus.NameHasOwner string:org.pidns 2>/dev/null | grep -q 'boolean true'; then
    die "org.pidns already has an owner on the system bus (another pidnsd? see: busctl status org.pidns); stop it first"
  fi
  if [ -f "$POLICY_DST" ] && cmp -s dbus/org.pidns.conf "$POLICY_DST"; then
    say "the bus policy $POLICY_DST is already installed"
  else
    if [ -f "$POLICY_DST" ]; then
      cp "$POLICY_DST" "$TMPD/org.pidns.conf.orig"
      POLICY_UNDO=restore
    else
      POLICY_UNDO=remove
    fi
    say "installing (as root) the bus policy dbus/org.pidns.conf as $POLICY_DST: root may own org.pidns, everyone may call it; undone on exit"
    install -m 0644 dbus/org.pidns.conf "$POLICY_DST"
  fi
  say "asking the system bus to reload its config"
  dbus-send --system --print-reply --reply-timeout=10000 --type=method_call --dest=org.freedesktop.DBus \
    / org.freedesktop.DBus.ReloadConfig >/dev/null
  BUS_ARG=system
  ADDRESS=""
  WHERE="the system bus"
else
  # The bus's files in the temp dir: its config, the policy (a copy: the clone may sit in a
  # directory the bus's user may not read) and a directory of its own for the socket.
  mkdir "$TMPD/bus"
  SOCKET="$TMPD/bus/system_bus_socket"
  cp dbus/org.pidns.conf "$TMPD/org.pidns.conf"
  sed -e "s|@SOCKET@|$SOCKET|" -e "s|@POLICY@|$TMPD/org.pidns.conf|" tests/dbus/system-bus.conf.in >"$TMPD/bus.conf"
  chmod 0644 "$TMPD/bus.conf" "$TMPD/org.pidns.conf"
  AS_BUS=""
  if id messagebus >/dev/null 2>&1; then
    chown messagebus "$TMPD/bus"
    AS_BUS="setpriv --reuid=messagebus --regid=messagebus --init-groups --"
  fi
  say "${PRIVATE:+--private-bus: }starting a private bus at $SOCKET (config $TMPD/bus.conf, log $TMPD/dbus-daemon.log)"
  # shellcheck disable=SC2086  # AS_BUS is a command prefix
  $AS_BUS dbus-daemon --config-file="$TMPD/bus.conf" --nofork --nopidfile 2>"$TMPD/dbus-daemon.log" &
  BUS_PID=$!
  ADDRESS="unix:path=$SOCKET"
  i=0
  until [ -S "$SOCKET" ] && dbus-send --bus="$ADDRESS" --print-reply --reply-timeout=2000 \
          --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1; do
    if ! kill -0 "$BUS_PID" 2>/dev/null; then
      cat "$TMPD/dbus-daemon.log" >&2
      die "the private dbus-daemon exited (its log is above)"
    fi
    i=$((i + 1))
    [ "$i" -lt 100 ] || { cat "$TMPD/dbus-daemon.log" >&2; die "the private dbus-daemon did not answer within 10 s"; }
    sleep 0.1
  done
  if grep -q 'Failed to set fd limit' "$TMPD/dbus-daemon.log"; then
    say "note: dbus-daemon, started as root, could not raise its fd limit to 65536 (root lacks CAP_SYS_RESOURCE here, as in a container): harmless, it keeps the limit it has"
  fi
  BUS_ARG="$ADDRESS"
  WHERE="a private bus ($ADDRESS)"
fi

# 4. Something to look at: `sleep infinity` as pid 1 of a fresh pid namespace. $! is unshare;
#    the sleep is its child, once it has exec'd.
unshare --pid --fork --kill-child --mount-proc sleep infinity &
UNSHARE_PID=$!
SLEEP_PID=""
i=0
while :; do
  SLEEP_PID=$(pgrep -P "$UNSHARE_PID" -x sleep || true)
  [ -z "$SLEEP_PID" ] || break
  kill -0 "$UNSHARE_PID" 2>/dev/null || die "unshare --pid --fork --mount-proc sleep infinity failed"
  i=$((i + 1))
  [ "$i" -lt 100 ] || die "the sleep in the new pid namespace did not start within 10 s"
  sleep 0.1
done
NSPID=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$SLEEP_PID/status" | tr '\t' ' ')
[ "$NSPID" = "$SLEEP_PID 1" ] || die "process $SLEEP_PID has NSpid '$NSPID', expected '$SLEEP_PID 1'"
INODE=$(stat -L -c %i "/proc/$SLEEP_PID/ns/pid")

# 5. What to try: each line ready to paste, the bus named on it.
if [ -n "$ADDRESS" ]; then
  CTL="$PIDNSCTL --address=$ADDRESS"
  BUSCTL="busctl --address=$ADDRESS"
  DBUS_SEND="dbus-send --bus=$ADDRESS"
  ENV_LINE="export DBUS_SYSTEM_BUS_ADDRESS=$ADDRESS PATH=$BUILD/ctl:\$PATH"
else
  CTL="$PIDNSCTL"
  BUSCTL="busctl"
  DBUS_SEND="dbus-send --system"
  ENV_LINE="export PATH=$BUILD/ctl:\$PATH"
fi
C="$BUSCTL call org.pidns /org/pidns org.pidns.Manager1"
cat <<EOF

== try pidnsd on $WHERE ==
A process to look at: host pid $SLEEP_PID (sleep infinity), pid 1 in a fresh pid namespace
whose nsfs inode is $INODE (stat -L -c %i /proc/$SLEEP_PID/ns/pid).
Once pidnsd below logs "serving org.pidns", run these from another shell (as root; any user may
ask pidnsd, and sees only the processes the kernel lets it inspect):

  # the namespaces you may see, the pid namespace tree, and that process
  $CTL list
  $CTL tree
  $CTL status $SLEEP_PID
  # pid 1 of its namespace, in yours; answers: $SLEEP_PID
  $CTL translate 1 --from @$SLEEP_PID
  # and back; answers: 1
  $CTL translate $SLEEP_PID --to pid:[$INODE]
  # namespaces as they come and go, until Ctrl-C (then e.g. unshare -n true elsewhere)
  $CTL monitor

  # or with the bus and pidnsctl set for this shell, and TAB completion:
  $ENV_LINE
  . $ROOT/completion/pidnsctl.bash
  pidnsctl ps @$SLEEP_PID

The D-Bus interface itself (busctl introspect org.pidns /org/pidns lists it):

  # its pid in its own namespace (0 = your pid namespace); answers: u 1
  $C TranslatePid utt $SLEEP_PID 0 $INODE
  # the pid namespaces you can see: id, inode, type, parent, owner, level, init_pid, nprocs, owner_uid
  $BUSCTL --json=short call org.pidns /org/pidns org.pidns.Manager1 ListNamespaces s pid
  # its NSpid, NStgid, NSpgid and NSsid chains, the ids of its 8 namespaces; answers: auauauaua{st} 2 $SLEEP_PID 1
  $C GetProcess u $SLEEP_PID
  # the same translation with dbus-send; answers: uint32 1
  $DBUS_SEND --print-reply --dest=org.pidns /org/pidns org.pidns.Manager1.TranslatePid uint32:$SLEEP_PID uint64:0 uint64:$INODE

Ctrl-C here stops pidnsd; this script then removes what it set up.

EOF

# 6. pidnsd in the foreground of this script: started with & and waited for, so that a SIGTERM
#    or a hangup of this script is passed on as SIGTERM (pidnsd itself takes SIGHUP as "rescan").
#    Ctrl-C reaches it directly (same process group) and it exits 0. env --default-signal undoes
#    the SIGINT-ignored that sh gives a command started with &.
# pidnsd logs to the journal whenever JOURNAL_STREAM is set; keep its log on this terminal unless
# stderr really is that journal stream.
if [ -n "${JOURNAL_STREAM:-}" ] && [ "$(stat -L -c %d:%i "/proc/$$/fd/2" 2>/dev/null || true)" != "$JOURNAL_STREAM" ]; then
  unset JOURNAL_STREAM
fi
say "starting $PIDNSD --bus=$BUS_ARG"
env --default-signal=INT "$PIDNSD" --bus="$BUS_ARG" &
DAEMON_PID=$!
trap ':' INT  # Ctrl-C: pidnsd has it already; wait for it to exit, then clean up
trap 'kill -TERM "$DAEMON_PID" 2>/dev/null || true' TERM HUP
while :; do
  rc=0
  wait "$DAEMON_PID" || rc=$?
  [ "$rc" -gt 128 ] || break
  # Above 128: pidnsd was killed, or a signal interrupted `wait` (the trap has passed it on).
  # Waiting again tells which: pidnsd's own status once it has exited (the shell keeps it), or
  # 127 when that was it (no such job any more).
  rc2=0
  wait "$DAEMON_PID" || rc2=$?
  if [ "$rc2" -ne 127 ]; then rc=$rc2; fi
  if ! kill -0 "$DAEMON_PID" 2>/dev/null; then break; fi
done
DAEMON_PID=""
if [ "$rc" -eq 0 ]; then
  say "pidnsd exited (0); cleaning up"
elif [ "$rc" -gt 128 ]; then
  say "pidnsd was killed by signal $((rc - 128)); cleaning up"
else
  say "pidnsd exited with $rc (1: start-up failed or the bus connection was lost; see its log above); cleaning up"
fi
exit "$rc"
