#!/bin/sh
# System test under a real systemd: installs the package built by packaging/build-deb.sh on this
# host, boots a container from the host's /usr (systemd-nspawn --volatile=yes --boot), and checks
# inside it that a bus call starts pidnsd by D-Bus activation and gets a correct answer, that the
# unit reached READY, is in polling mode (no proc connector in a container), keeps answering
# through watchdog periods, holds only the listed capabilities with no_new_privs and seccomp,
# dumps a pid namespace of 64 tasks (DumpPidTree, with its helper thread) under that hardening,
# and that systemd-machined's machine names reach DescribeProcess and pidnsctl, and that
# systemctl stop/start/status behave. Purges the package again if it installed it.
# Usage (root): tests/system/nspawn-test.sh path/to/pidnsd_VERSION_ARCH.deb
set -eu
DEB=$1
[ -f "$DEB" ] || { echo "nspawn-test: no package at $DEB; build it with packaging/build-deb.sh" >&2; exit 2; }
if ! command -v systemd-nspawn >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd-container
fi

installed_before=no
dpkg-query -W -f='${Status}\n' pidnsd 2>/dev/null | grep -q '^install ok installed$' && installed_before=yes
dpkg -i "$DEB" >/dev/null
NSPAWN=""
cleanup() {
  if [ -n "$NSPAWN" ] && kill "$NSPAWN" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$NSPAWN" 2>/dev/null || true
  fi
  [ "$installed_before" = yes ] || dpkg -P pidnsd >/dev/null 2>&1 || true
  rm -rf "$LOG"
}
LOG=$(mktemp -d)
trap cleanup EXIT
fail() { echo "nspawn-test: FAIL: $*" >&2; tail -40 "$LOG/console" >&2 || true; exit 1; }

MACHINE=pidnsd-test-$$
systemd-nspawn -D / --volatile=yes --register=no --keep-unit --boot --machine="$MACHINE" \
  systemd.firstboot=off >"$LOG/console" 2>&1 &
NSPAWN=$!

# The container's systemd: the child of systemd-nspawn.
leader=""
for _ in $(seq 100); do
  nspawn_pid=$(pgrep -P "$NSPAWN" -x systemd-nspawn || echo "$NSPAWN")
  leader=$(pgrep -P "$nspawn_pid" | head -1 || true)
  [ -n "$leader" ] && [ "$(cat /proc/"$leader"/comm 2>/dev/null)" = systemd ] && break
  leader=""
  sleep 0.1
done
[ -n "$leader" ] || fail "the container's systemd did not start"
inside() { nsenter -t "$leader" -m -u -i -n -p -- "$@"; }
state=""
for _ in $(seq 300); do
  state=$(inside systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.1
done
case "$state" in running|degraded) echo "container booted ($state)" ;; *) fail "the container did not boot ($state)" ;; esac

[ "$(inside systemctl is-active pidnsd || true)" = inactive ] || fail "pidnsd runs before anyone called it"
# Watchdog periods short enough to pass several during the test (a drop-in in the volatile /etc).
inside mkdir -p /etc/systemd/system/pidnsd.service.d
inside sh -c 'printf "[Service]\nWatchdogSec=2s\n" > /etc/systemd/system/pidnsd.service.d/test.conf'
inside systemctl daemon-reload

# 1. Activation by a bus call, with a correct answer: pid 1 of the container is itself there.
answer=$(inside busctl call org.pidns /org/pidns org.pidns.Manager1 TranslatePid utt 1 0 0) || fail "the bus call failed"
[ "$answer" = "u 1" ] || fail "TranslatePid 1 0 0 answered '$answer'"
echo "activation: TranslatePid 1 0 0 -> $answer"
[ "$(inside systemctl is-active pidnsd)" = active ] || fail "pidnsd is not active after the call"
inside systemctl status pidnsd --no-pager | head -8
inside systemctl show -p StatusText --value pidnsd | grep -q '^Serving org.pidns' || fail "no READY status text"
src=$(inside busctl get-property org.pidns /org/pidns org.pidns.Manager1 EventSource)
[ "$src" = 's "polling"' ] || fail "EventSource is $src in a container"
echo "event source in the container: $src"
inside journalctl -u pidnsd --no-pager | grep -q 'polling /proc every .* because the proc connector is unavailable' || fail "no log line saying why it polls"

# 2. Polling finds a namespace made inside the container.
before=$(inside busctl call org.pidns /org/pidns org.pidns.Manager1 ListNamespaces s net | awk '{print $2}')
inside systemd-run --quiet --unit=netns-holder unshare -n sleep 300
found=no
for _ in $(seq 50); do
  now=$(inside busctl call org.pidns /org/pidns org.pidns.Manager1 ListNamespaces s net | awk '{print $2}')
  [ "$now" -gt "$before" ] && { found=yes; break; }
  sleep 0.2
done
inside systemctl stop netns-holder
[ "$found" = yes ] || fail "a new net namespace was not found by polling"
echo "polling: net namespaces $before -> $now"

# 3. Hardening in force: capabilities, no_new_privs, seccomp.
main=$(inside systemctl show -p MainPID --value pidnsd)
capeff=$(inside sed -n 's/^CapEff:[[:space:]]*//p' /proc/"$main"/status)
allowed=$(( (1 << 19) | (1 << 2) | (1 << 12) ))   # CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, CAP_NET_ADMIN
[ $(( 0x$capeff & ~allowed )) -eq 0 ] || fail "CapEff $capeff has capabilities beyond the listed three"
[ $(( 0x$capeff & (1 << 19) )) -ne 0 ] || fail "CapEff $capeff lacks CAP_SYS_PTRACE"
inside grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"$main"/status || fail "no_new_privs is not set"
inside grep -q '^Seccomp:[[:space:]]*2' /proc/"$main"/status || fail "no seccomp filter"
echo "hardening: CapEff $capeff, NoNewPrivs 1, Seccomp 2"

# 3b. DumpPidTree under that hardening: 64 tasks in a pid namespace of their own, once polling
# has indexed them (so the dump also reads them ahead on pidnsd's helper thread, which must be
# let through seccomp and the unit's limits): every task once, its init first, pidnsd not restarted.
inside systemd-run --quiet --unit=pidns-holder unshare --pid --fork --mount-proc \
  sh -c 'for i in $(seq 63); do sleep 300 & done; wait'
init=""
for _ in $(seq 50); do
  holder=$(inside systemctl show -p MainPID --value pidns-holder)
  init=$(inside pgrep -P "$holder" -x sh || true)
  [ -n "$init" ] && [ "$(inside pidnsctl list -t pid -o INIT,NPROCS | awk -v p="$init" '$1 == p {print $2}')" = 64 ] && break
  init=""
  sleep 0.2
done
[ -n "$init" ] || fail "the 64 tasks of the new pid namespace were not indexed"
tasks=$(inside pidnsctl --json=short dump @"$init" | grep -o '"rpid":[0-9]*' | cut -d: -f2)
[ "$(echo "$tasks" | wc -l)" = 64 ] || fail "DumpPidTree listed $(echo "$tasks" | wc -l) tasks, not 64"
[ "$(echo "$tasks" | sort -u | wc -l)" = 64 ] || fail "DumpPidTree listed a task twice"
[ "$(echo "$tasks" | head -1)" = "$init" ] || fail "DumpPidTree did not list the namespace's init first"
inside sh -c "cat /proc/$main/task/*/comm" | grep -qx pidns-readahead || fail "pidnsd has no helper thread (pidns-readahead) after a dump of 64 tasks"
[ "$(inside systemctl show -p MainPID --value pidnsd)" = "$main" ] || fail "pidnsd was restarted by the dump"
inside systemctl stop pidns-holder
echo "dump: 64 tasks, init first, under the hardened unit, with pidnsd's pidns-readahead thread"

# 4. The watchdog (2 s here) does not fire: still the same process, no restarts, after 5 s.
sleep 5
[ "$(inside systemctl show -p MainPID --value pidnsd)" = "$main" ] || fail "pidnsd was restarted"
[ "$(inside systemctl show -p NRestarts --value pidnsd)" = 0 ] || fail "pidnsd restarted"
inside journalctl -u pidnsd --no-pager | grep -qi 'watchdog timeout' && fail "the watchdog fired"
echo "watchdog: no timeout over 5 s with WatchdogSec=2s"

# 5. Machine names: a machine registered with the container's own systemd-machined names the
# processes and namespaces of its unit (pidnsd learns of it from machined's MachineNew signal and
# forgets it on MachineRemoved); pidnsctl finds its namespace by machine:NAME.
inside systemd-run --quiet --unit=machine-holder unshare -p -f sleep 300
holder=0
for _ in $(seq 50); do
  holder=$(inside systemctl show -p MainPID --value machine-holder || echo 0)
  [ "${holder:-0}" -gt 0 ] && break
  sleep 0.1
done
inner=""
for _ in $(seq 50); do
  inner=$(inside pgrep -P "$holder" -x sleep || true)
  [ -n "$inner" ] && break
  sleep 0.1
done
[ -n "$inner" ] || fail "the machine's process did not start"
inside busctl call org.freedesktop.machine1 /org/freedesktop/machine1 org.freedesktop.machine1.Manager \
  RegisterMachine sayssus web1 0 pidnsd-test container "$holder" / || fail "machined refused RegisterMachine"
machine_key() {
  inside busctl --json=short call org.pidns /org/pidns org.pidns.Manager1 DescribeProcess u "$1" |
    grep -o '"Machine":{"type":"s","data":"[^"]*"}' || true
}
key=""
for _ in $(seq 50); do
  key=$(machine_key "$inner")
  [ -n "$key" ] && break
  sleep 0.1
done
[ "$key" = '"Machine":{"type":"s","data":"web1"}' ] || fail "DescribeProcess of the machine's process: '$key', not Machine web1"
[ -z "$(machine_key 1)" ] || fail "the container's init, outside the machine's unit, has a Machine key"
tr=$(inside pidnsctl translate 1 --from machine:web1) || fail "pidnsctl did not find machine:web1"
[ "$tr" = "$inner" ] || fail "pid 1 of machine:web1's pid namespace is $tr, not $inner"
inside pidnsctl list -t pid -o ID,MACHINE,COMMAND
echo "machined: DescribeProcess $inner has $key; pidnsctl translate 1 --from machine:web1 -> $tr"
inside busctl call org.freedesktop.machine1 /org/freedesktop/machine1 org.freedesktop.machine1.Manager \
  UnregisterMachine s web1 || fail "machined refused UnregisterMachine"
for _ in $(seq 50); do
  key=$(machine_key "$inner")
  [ -z "$key" ] && break
  sleep 0.1
done
[ -z "$key" ] || fail "Machine is still $key after UnregisterMachine"
inside systemctl stop machine-holder
echo "machined: the key is gone after UnregisterMachine"

# 6. systemctl stop / start / status.
inside systemctl stop pidnsd
[ "$(inside systemctl is-active pidnsd || true)" = inactive ] || fail "stop did not stop it"
inside systemctl start pidnsd
[ "$(inside systemctl is-active pidnsd)" = active ] || fail "start did not start it"
[ "$(inside busctl call org.pidns /org/pidns org.pidns.Manager1 TranslatePid utt 1 0 0)" = "u 1" ] || fail "no answer after start"
inside systemctl status pidnsd --no-pager >/dev/null || fail "status reports a problem"
echo "systemctl stop/start/status: ok"
echo "nspawn-test: all checks passed"
