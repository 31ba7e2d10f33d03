#!/bin/sh
# Installs the build into a temporary DESTDIR and checks what a host gets: every file in its
# place (pidnsd's and pidnsctl's), a unit that `systemd-analyze verify` accepts, and `systemd-analyze security` exposure
# <= 4.0 (the table is printed). Usage: check-install.sh BUILD_DIR
set -eu
BUILD=$1
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
DESTDIR="$D/root" cmake --install "$BUILD" >/dev/null
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
unit=$(find "$D/root" -name pidnsd.service -path '*systemd/system*')
for f in "$D/root$prefix/sbin/pidnsd" "$unit" \
         "$D/root$prefix/share/dbus-1/system.d/org.pidns.conf" \
         "$D/root$prefix/share/dbus-1/system-services/org.pidns.service" \
         "$D/root$prefix/share/polkit-1/actions/org.pidns.policy" \
         "$D/root$prefix/share/man/man8/pidnsd.8" \
         "$D/root$prefix/bin/pidnsctl" \
         "$D/root$prefix/share/man/man1/pidnsctl.1" \
         "$D/root$prefix/share/bash-completion/completions/pidnsctl" \
         "$D/root$prefix/share/zsh/vendor-completions/_pidnsctl" \
         "$D/root$prefix/share/dbus-1/interfaces/org.pidns.Manager1.xml"; do
  [ -f "$f" ] || { echo "check-install: missing ${f#"$D/root"}" >&2; exit 1; }
  echo "installed ${f#"$D/root"}"
done
[ -x "$D/root$prefix/bin/pidnsctl" ] || { echo "check-install: pidnsctl is not executable" >&2; exit 1; }
"$D/root$prefix/bin/pidnsctl" --version >/dev/null
bash -n "$D/root$prefix/share/bash-completion/completions/pidnsctl"
if command -v zsh >/dev/null; then zsh -n "$D/root$prefix/share/zsh/vendor-completions/_pidnsctl"; fi
if command -v groff >/dev/null; then
  groff -man -t -ww -z "$D/root$prefix/share/man/man1/pidnsctl.1" 2>"$D/man.err" || true
  if [ -s "$D/man.err" ]; then cat "$D/man.err" >&2; echo "check-install: pidnsctl.1 has troff warnings" >&2; exit 1; fi
fi
grep -q "^ExecStart=$prefix/sbin/pidnsd --bus=system\$" "$unit" || { echo "check-install: ExecStart does not name $prefix/sbin/pidnsd" >&2; exit 1; }
grep -q '^SystemdService=pidnsd.service$' "$D/root$prefix/share/dbus-1/system-services/org.pidns.service"
grep -q '^BusName=org.pidns$' "$unit"
# Verify the unit as installed, pointing ExecStart at the DESTDIR copy of the binary and man at
# the DESTDIR man pages (systemd-analyze checks both exist).
mkdir -p "$D/check"
sed "s|^ExecStart=$prefix/sbin/pidnsd|ExecStart=$D/root$prefix/sbin/pidnsd|" "$unit" > "$D/check/pidnsd.service"
MANPATH="$D/root$prefix/share/man:/usr/share/man" systemd-analyze verify "$D/check/pidnsd.service"
echo "systemd-analyze verify: ok"
systemd-analyze security --offline=yes --no-pager "$D/check/pidnsd.service" > "$D/security.txt" 2>&1 || true
cat "$D/security.txt"
exposure=$(sed -n 's/.*Overall exposure level for pidnsd.service: \([0-9.]*\).*/\1/p' "$D/security.txt")
[ -n "$exposure" ] || { echo "check-install: no exposure figure from systemd-analyze security" >&2; exit 1; }
awk -v e="$exposure" 'BEGIN { exit !(e <= 4.0) }' || { echo "check-install: exposure $exposure > 4.0" >&2; exit 1; }
echo "exposure $exposure <= 4.0: ok"
