#!/bin/bash
# The first ten minutes, scripted: packaging/try-pidnsd.sh --private-bus with prebuilt binaries
# (its install and build steps are the ones not run here; their time is measured by hand, see the
# README), then every line it prints run as printed, its answers compared with what it says they
# are; nothing alarming on the terminal; everything gone after SIGTERM. Then pidnsd(8)'s recipe
# for a private bus by hand, run line by line as printed there.
# Usage: check-try-pidnsd.sh BUILD_DIR   (a build with daemon/pidnsd and ctl/pidnsctl; as root)
# shellcheck disable=SC2015  # "test && ok || bad": ok never fails
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$1" && pwd)
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
ok() { echo "ok: $*"; }
OUT=$(mktemp /tmp/check-try.XXXXXX)
TRY=""
# shellcheck disable=SC2317
cleanup() {
  [ -n "$TRY" ] && kill -TERM "$TRY" 2>/dev/null && wait "$TRY" 2>/dev/null
  rm -f "$OUT"
}
trap cleanup EXIT

cd "$SRC" || exit 1
setsid ./packaging/try-pidnsd.sh --private-bus --prebuilt="$BUILD" >"$OUT" 2>&1 &
TRY=$!
for _ in $(seq 300); do
  grep -q "serving org.pidns" "$OUT" && break
  kill -0 "$TRY" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "serving org.pidns" "$OUT"; then
  cat "$OUT" >&2
  echo "FAIL: try-pidnsd.sh did not get pidnsd serving within 30 s" >&2
  exit 1
fi
cat "$OUT"
echo "----"
# Nothing alarming: no dbus-daemon message, no warning.
if grep -qiE "fd limit|dbus-daemon\[|warn|error" "$OUT"; then bad "try-pidnsd.sh printed: $(grep -iE 'fd limit|dbus-daemon\[|warn|error' "$OUT")"; else ok "no dbus-daemon noise, no warning"; fi
ADDRESS=$(sed -n 's|.*pidnsctl --address=\(unix:path=[^ ]*\) list$|\1|p' "$OUT" | head -1)
SOCKET=${ADDRESS#unix:path=}
[ -S "$SOCKET" ] && ok "the address it prints, $ADDRESS, is the bus's socket" || bad "no socket at $SOCKET (address '$ADDRESS')"
TMPD=$(dirname "$(dirname "$SOCKET")")

# Each pasted line (two spaces, then a command) as printed; the comment before it may say what it
# answers.
answer=""
lines=0
while IFS= read -r line; do
  case "$line" in
    "  # "*answers:*) answer=${line##*answers: } ;;
    "  # "*) answer="" ;;
    "  $BUILD/ctl/pidnsctl"*monitor)
      # shellcheck disable=SC2086  # the line as printed, split as a shell would
      timeout --preserve-status -s INT 2 ${line#  } --no-pager >/dev/null 2>&1
      rc=$?
      [ "$rc" -eq 0 ] && ok "monitor, stopped by Ctrl-C: exit 0" || bad "${line#  }: exit $rc after SIGINT"
      lines=$((lines + 1))
      ;;
    "  $BUILD/ctl/pidnsctl"*|"  busctl "*|"  dbus-send "*)
      got=$(sh -c "${line#  }" 2>&1 </dev/null)
      rc=$?
      lines=$((lines + 1))
      if [ "$rc" -ne 0 ]; then
        bad "${line#  }: exit $rc: $got"
      elif [ -n "$answer" ]; then
        case "$(echo "$got" | tr -s ' \n' '  ' | sed 's/ $//')" in
          "$answer"|*" $answer"|"$answer "*|*" $answer "*) ok "${line#  } answers $answer" ;;
          *) bad "${line#  }: said it answers '$answer', answered '$got'" ;;
        esac
      else
        ok "${line#  }"
      fi
      answer=""
      ;;
    "  export "*)
      ENV_LINE=${line#  } ;;
    "  . "*completion/pidnsctl.bash)
      COMPLETION=${line#  . } ;;
    "  pidnsctl "*)
      SHELL_LINE=${line#  } ;;
  esac
done <"$OUT"
[ "$lines" -ge 10 ] && ok "$lines lines run as printed" || bad "only $lines command lines found"
# The shell set up as it shows: the bus and pidnsctl from the environment, completion loaded.
got=$(bash -c "${ENV_LINE:-false}; . ${COMPLETION:-/nonexistent}; complete -p pidnsctl >/dev/null && ${SHELL_LINE:-false} --no-pager" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && echo "$got" | grep -q "1 process listed." && ok "the shell line: ${SHELL_LINE:-}" || bad "the shell lines (${ENV_LINE:-none}, ${SHELL_LINE:-none}): exit $rc: $got"

# SIGTERM: pidnsd exits 0, and what the script made goes away.
SLEEP=$(sed -n 's/^A process to look at: host pid \([0-9]*\) .*/\1/p' "$OUT")
kill -TERM "$TRY"
wait "$TRY"
rc=$?
TRY=""
[ "$rc" -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: try-pidnsd.sh exited $rc"
grep -q "pidnsd exited (0); cleaning up" "$OUT" && ok "it says it cleans up" || bad "no clean-up line: $(tail -3 "$OUT")"
[ ! -e "$TMPD" ] && ok "$TMPD removed" || bad "$TMPD is still there"
# Its end is the kernel's (SIGKILL by unshare --kill-child, then reaped by whoever inherits it).
for _ in $(seq 50); do [ -d "/proc/$SLEEP" ] || break; sleep 0.1; done
[ -n "$SLEEP" ] && [ ! -d "/proc/$SLEEP" ] && ok "the namespace's process is gone" || bad "process $SLEEP is still there"
! pgrep -f "dbus-daemon --config-file=$TMPD/bus.conf" >/dev/null && ok "the private bus is gone" || bad "its dbus-daemon still runs"

# pidnsd(8), RUNNING ON A PRIVATE BUS: the recipe's lines as printed (troff escapes undone,
# BUILD filled in), run by bash one by one; pidnsd needs a moment to be ready, so the lines after
# it are tried again for up to 10 s.
RECIPE=$(sed -n '/^\.SH RUNNING ON A PRIVATE BUS/,/^\.SH /p' doc/pidnsd.8 | sed -n '/^\.nf/,/^\.fi/p' | sed '1d;$d' |
  sed -e 's/\\-/-/g' -e 's/\\e/\\/g' -e "s|BUILD/|$BUILD/|g")
SCRIPT=$(mktemp /tmp/check-recipe.XXXXXX)
LOG=$(mktemp /tmp/check-recipe-log.XXXXXX)
{
  echo 'set -u'
  # Whatever line fails, what the recipe started goes (its own last line does that otherwise).
  # shellcheck disable=SC2016
  echo 'trap '"'"'kill $(jobs -p) 2>/dev/null; if [ -n "${D:-}" ]; then [ -f "$D/bus.pid" ] && kill "$(cat "$D/bus.pid")" 2>/dev/null; rm -rf "$D"; fi'"'"' EXIT'
  # Continuation lines joined to their line first.
  printf '%s\n' "$RECIPE" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | while IFS= read -r l; do
    # shellcheck disable=SC2016  # the $ are for the script written
    case "$l" in
      *pidnsctl*|*busctl*) printf 'n=0; until %s; do n=$((n + 1)); [ $n -lt 100 ] || exit 1; sleep 0.1; done\n' "$l" ;;
      *"daemon/pidnsd"*) printf '%s\n' "$l" ;;
      *) printf '%s || exit 1\n' "$l" ;;
    esac
  done
} >"$SCRIPT"
timeout 60 bash "$SCRIPT" >"$LOG" 2>&1
rc=$?
got=$(cat "$LOG")
rm -f "$SCRIPT" "$LOG"
if [ "$rc" -eq 0 ] && echo "$got" | grep -q "namespaces listed." && echo "$got" | grep -q "TranslatePid"; then
  ok "pidnsd(8)'s private-bus recipe runs as printed"
else
  bad "pidnsd(8)'s recipe: exit $rc: $got"
fi
if echo "$got" | grep -qi "fd limit"; then bad "the recipe's dbus-daemon complained: $got"; fi
exit $fail
