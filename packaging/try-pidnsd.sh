#!/bin/sh
# Try pidnsd on this machine: installs the build dependencies, builds, puts a process in a fresh
# pid namespace, prints busctl commands to try against it, and runs pidnsd in the foreground of
# this script until Ctrl-C. Run as root from a Debian 12 clone: ./packaging/try-pidnsd.sh
#
# Bus: the system bus when one is running (this installs dbus/org.pidns.conf into
# /usr/share/dbus-1/system.d and reloads the bus; the file is removed again on exit if it was not
# there before), else a private bus started from tests/dbus/system-bus.conf.in in a temp dir.
# On exit (pidnsd stopped by Ctrl-C, SIGTERM, a hangup or an error) the namespace process, the
# private bus and the temp dir go away; the exit code is pidnsd's.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf 'try-pidnsd: %s\n' "$*"; }
die() { printf 'try-pidnsd: %s\n' "$*" >&2; exit 1; }

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

# 1. Build dependencies (they include dbus-daemon, dbus-send, busctl, unshare and pgrep).
./packaging/install-build-deps.sh

# 2. Build.
cmake -S . -B build && cmake --build build -j2
PIDNSD="$ROOT/build/daemon/pidnsd"
[ -x "$PIDNSD" ] || die "the build did not produce $PIDNSD"

TMPD=$(mktemp -d /tmp/try-pidnsd.XXXXXX)

# 3. A bus: the system bus if one answers, else a private one shaped like it.
system_bus_answers() {
  [ -S "$SYSTEM_SOCKET" ] || return 1
  timeout 10 dbus-send --system --print-reply --reply-timeout=5000 --dest=org.freedesktop.DBus \
    / org.freedesktop.DBus.GetId >/dev/null 2>&1
}

if system_bus_answers; then
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
  BUSCTL="busctl"
  DBUS_SEND="dbus-send --system"
  MONITOR="$ROOT/build/tests/pidns-signal-listener unix:path=$SYSTEM_SOCKET 600"
  WHERE="the system bus"
else
  SOCKET="$TMPD/system_bus_socket"
  POLICY="$ROOT/dbus/org.pidns.conf"
  case "$POLICY" in
    # Characters sed or the XML file would misread: use a copy at a plain path instead.
    *[\|\&\<\>\\\"\']*) cp dbus/org.pidns.conf "$TMPD/org.pidns.conf"; POLICY="$TMPD/org.pidns.conf" ;;
  esac
  chmod 0755 "$TMPD"  # so that users other than root can try it too (the socket is 0777)
  sed -e "s|@SOCKET@|$SOCKET|" -e "s|@POLICY@|$POLICY|" tests/dbus/system-bus.conf.in >"$TMPD/bus.conf"
  say "no system bus answers at $SYSTEM_SOCKET: starting a private one at $SOCKET (config $TMPD/bus.conf)"
  dbus-daemon --config-file="$TMPD/bus.conf" --nofork --nopidfile &
  BUS_PID=$!
  ADDRESS="unix:path=$SOCKET"
  i=0
  until [ -S "$SOCKET" ] && dbus-send --bus="$ADDRESS" --print-reply --reply-timeout=2000 \
          --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId >/dev/null 2>&1; do
    kill -0 "$BUS_PID" 2>/dev/null || die "the private dbus-daemon exited (its messages are above)"
    i=$((i + 1))
    [ "$i" -lt 100 ] || die "the private dbus-daemon did not answer within 10 s"
    sleep 0.1
  done
  BUS_ARG="$ADDRESS"
  BUSCTL="busctl --address=$ADDRESS"
  DBUS_SEND="dbus-send --bus=$ADDRESS"
  MONITOR="$ROOT/build/tests/pidns-signal-listener $ADDRESS 600"
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

# 5. What to try.
C="$BUSCTL call org.pidns /org/pidns org.pidns.Manager1"
cat <<EOF

== try pidnsd on $WHERE ==
A process to look at: host pid $SLEEP_PID (sleep infinity), pid 1 in a fresh pid namespace
whose nsfs inode is $INODE (stat -L -c %i /proc/$SLEEP_PID/ns/pid).
Once pidnsd below logs "serving org.pidns", run these from another shell (as root; any user may
call pidnsd, and sees only its own pid namespace and those below it):

  # its pid in its own namespace (0 = your pid namespace); answers: u 1
  $C TranslatePid utt $SLEEP_PID 0 $INODE
  # and back: pid 1 of that namespace, in yours; answers: u $SLEEP_PID
  $C TranslatePid utt 1 $INODE 0
  # several at once (0 where a pid has no process); answers: au 2 1 0
  $C TranslatePids autt 2 $SLEEP_PID 4194304 0 $INODE
  # the pid namespaces you can see: id, inode, type, parent, owner, level, init_pid, nprocs, owner_uid
  $BUSCTL --json=short call org.pidns /org/pidns org.pidns.Manager1 ListNamespaces s pid
  # that namespace alone, by its inode (or by the id ListNamespaces shows)
  $C GetNamespace t $INODE
  # NSpid/NStgid/NSpgid/NSsid chains and the ids of its 8 namespaces; nspid answers: au 2 $SLEEP_PID 1
  $C GetProcess u $SLEEP_PID
  # the processes in that namespace, as pids in yours; answers: au 1 $SLEEP_PID
  $C ListProcesses t $INODE
  # the properties
  $BUSCTL get-property org.pidns /org/pidns org.pidns.Manager1 Version Namespaces Processes EventSource KernelNamespaceIds
  # the same translation with dbus-send; answers: uint32 1
  $DBUS_SEND --print-reply --dest=org.pidns /org/pidns org.pidns.Manager1.TranslatePid uint32:$SLEEP_PID uint64:0 uint64:$INODE
  # NamespaceAdded/NamespaceRemoved as they happen, for 10 minutes (then e.g. unshare --pid --fork
  # true elsewhere); signals go only to connections that call Subscribe, as this listener does
  $MONITOR

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
  # Above 128 with pidnsd still there: a signal interrupted `wait`; the trap has passed it on.
  if [ "$rc" -gt 128 ] && kill -0 "$DAEMON_PID" 2>/dev/null; then continue; fi
  break
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
