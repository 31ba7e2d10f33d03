#!/bin/sh
# Builds pidnsd_<version>_<arch>.deb into OUTDIR from a clean checkout of HEAD (git archive, so
# nothing uncommitted or built goes in), then runs lintian on it and fails on any error.
# Usage (Debian 12, root or with sudo for apt-get): packaging/build-deb.sh OUTDIR
set -eu
[ $# -eq 1 ] || { echo "usage: packaging/build-deb.sh OUTDIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p "$1"
OUT=$(cd "$1" && pwd)

./packaging/install-build-deps.sh
need=""
for p in debhelper lintian dpkg-dev fakeroot; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || need="$need $p"
done
if [ -n "$need" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "build-deb: missing packages:$need; run as root (it calls apt-get)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $need
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
git archive --format=tar --prefix=pidnsd/ HEAD | tar -x -C "$WORK"
cp -r "$WORK/pidnsd/packaging/debian" "$WORK/pidnsd/debian"
(cd "$WORK/pidnsd" && dpkg-buildpackage -us -uc -b)
deb=$(ls "$WORK"/pidnsd_*.deb)
cp "$deb" "$OUT/"
echo "build-deb: $OUT/$(basename "$deb")"
# lintian: errors fail the build; warnings are printed.
lintian --fail-on error --tag-display-limit 0 "$OUT/$(basename "$deb")"
echo "build-deb: lintian reports no errors"
