#!/bin/sh
# The container engines of the engine tests, run privately: containerd (with ctr), dockerd on that
# containerd, podman and LXC, each with its own state directories and sockets under DIR, no
# network (no bridge, no iptables, no CNI: containers get an empty net namespace), and one busybox
# image built from Debian's busybox-static (no registry).
#
#   engines.sh up DIR     start what can start; DIR/engines.env says how to reach each engine
#                         (ENGINE_<name>=ok, or skip:<why> for one that cannot run here)
#   engines.sh down DIR   stop every container and daemon started from DIR, unmount, remove DIR
#
# `up` never waits for long: every engine command runs under `timeout`, and an engine that does
# not answer is recorded as skipped with its reason (the tests print it). `down` is safe to run
# again and after a failed or interrupted `up`. CTest runs them as the fixture of the engine tests
# (tests/CMakeLists.txt); tests/run.sh runs `down` again on exit. Needs root; the packages come
# from packaging/install-build-deps.sh.
set -u
CMD=${1:-}
D=${2:-}
case "$CMD" in up | down) ;; *) echo "usage: $0 up|down DIR" >&2; exit 2 ;; esac
[ -n "$D" ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "engines.sh: run as root (the engines need it)" >&2; exit 2; }
case "$D" in /*) ;; *) D=$(pwd)/$D ;; esac

IMAGE=localhost/busybox:latest
T=timeout
say() { printf 'engines: %s\n' "$*"; }

# -- environment of each engine's client (also written to DIR/engines.env for the tests) --------
export DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$D/docker/client"
export CONTAINERD_ADDRESS="$D/containerd.sock"
export CONTAINERS_CONF="$D/podman/containers.conf" CONTAINERS_STORAGE_CONF="$D/podman/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$D/podman/registries.conf"
LXC_PATH="$D/lxc"

# Rootless podman: a user of its own (made by `up` when absent, removed by `down`), its storage,
# runtime directory and configuration under DIR.
RL_USER=pidns-rootless
as_rootless() {
  $T 60 setpriv --reuid="$RL_USER" --regid="$RL_USER" --init-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="$D/rootless" XDG_RUNTIME_DIR="$D/rootless/run" CONTAINERS_CONF="$D/rootless/containers.conf" \
    CONTAINERS_STORAGE_CONF="$D/rootless/storage.conf" CONTAINERS_REGISTRIES_CONF="$CONTAINERS_REGISTRIES_CONF" "$@"
}

# The pids of processes whose command line names DIR: the daemons, shims and conmons started from
# it (never anything else: DIR is this run's own directory).
own_pids() {
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = $$ ] && continue
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$D/" && echo "$pid"
  done
}

# Mounts at or below DIR, deepest first.
own_mounts() {
  awk -v d="$D" '{ if ($5 == d || index($5, d "/") == 1) print $5 }' /proc/self/mountinfo | sort -r
}

stop_pid() {  # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# Host paths the engines make outside DIR whatever their options (recorded when absent before
# `up`; `down` removes them): dockerd's key, podman's lock memory and image blob cache; and the
# runtime directories runc and containerd's shims use, removed only once empty.
HOST_LEFTOVERS="/etc/docker/key.json /dev/shm/libpod_lock /var/lib/containers/cache"
HOST_RUN_DIRS="/run/containerd /run/runc"

down() {
  [ -d "$D" ] || return 0
  if [ -S "$D/docker.sock" ]; then
    ids=$($T 20 docker ps -aq 2>/dev/null)
    [ -n "$ids" ] && $T 60 docker rm -f $ids >/dev/null 2>&1
  fi
  if [ -f "$CONTAINERS_CONF" ]; then
    $T 60 podman pod rm -af -t 0 >/dev/null 2>&1
    $T 60 podman rm -af -t 0 >/dev/null 2>&1
  fi
  if [ -d "$LXC_PATH" ]; then
    for c in $(lxc-ls -P "$LXC_PATH" 2>/dev/null); do $T 20 lxc-stop -P "$LXC_PATH" -n "$c" -k >/dev/null 2>&1; done
  fi
  if [ -f "$D/rootless/containers.conf" ] && id "$RL_USER" >/dev/null 2>&1; then
    as_rootless podman rm -af -t 0 >/dev/null 2>&1
    # Its pause process (it holds the user namespace), and whatever else runs as that user, ours alone.
    rl_uid=$(id -u "$RL_USER")
    for p in /proc/[0-9]*; do
      [ "$(stat -c %u "$p" 2>/dev/null)" = "$rl_uid" ] && stop_pid "${p#/proc/}"
    done
  fi
  if [ -f "$D/rootless-user-made" ]; then
    userdel "$RL_USER" >/dev/null 2>&1 || say "could not remove the user $RL_USER"
  fi
  if [ -S "$CONTAINERD_ADDRESS" ]; then
    for ns in $($T 10 ctr namespaces ls -q 2>/dev/null); do
      for c in $($T 10 ctr -n "$ns" tasks ls -q 2>/dev/null); do
        $T 10 ctr -n "$ns" tasks kill -s KILL "$c" >/dev/null 2>&1
        $T 10 ctr -n "$ns" tasks rm -f "$c" >/dev/null 2>&1
      done
      for c in $($T 10 ctr -n "$ns" containers ls -q 2>/dev/null); do
        $T 10 ctr -n "$ns" containers rm "$c" >/dev/null 2>&1
      done
    done
  fi
  [ -f "$D/docker.pid" ] && stop_pid "$(cat "$D/docker.pid")"
  [ -f "$D/containerd.pid" ] && stop_pid "$(cat "$D/containerd.pid")"
  # What is left of ours (a shim or conmon whose container would not stop, an interrupted `up`).
  for pid in $(own_pids); do stop_pid "$pid"; done
  for m in $(own_mounts); do umount -l "$m" 2>/dev/null; done
  # Cgroups the engines made as parents of their containers, if `up` found them absent (rmdir
  # leaves any that still hold a process or a child).
  if [ -f "$D/cgroups-made" ]; then
    while read -r cg; do
      for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$h/$cg" ] && find "$h/$cg" -depth -type d -exec rmdir {} + 2>/dev/null
      done
    done <"$D/cgroups-made"
  fi
  if [ -f "$D/leftovers" ]; then
    while read -r f; do rm -rf "$f"; done <"$D/leftovers"
  fi
  if [ -f "$D/run-dirs" ]; then
    while read -r f; do [ -d "$f" ] && find "$f" -depth -type d -empty -delete 2>/dev/null; done <"$D/run-dirs"
  fi
  rm -rf "$D"
  [ ! -e "$D" ] || { say "could not remove $D"; return 1; }
  [ "$(cat "$LOCK/owner" 2>/dev/null)" = "$D" ] && rm -rf "$LOCK"
  return 0
}

# One set of engines per host at a time: they share host names (ctr's /default/NAME cgroups, the
# rootless user, podman's lock memory). `up` waits (10 minutes at most) while another run's
# directory holds the lock, and takes over a lock whose directory is gone.
LOCK=/run/pidns-engines.lock
lock() {
  n=0
  while ! mkdir "$LOCK" 2>/dev/null; do
    owner=$(cat "$LOCK/owner" 2>/dev/null)
    if [ -n "$owner" ] && [ ! -d "$owner" ]; then
      rm -rf "$LOCK"
      continue
    fi
    [ $n -eq 0 ] && say "waiting for the engines of $owner to go (tests/engines/engines.sh down $owner)"
    n=$((n + 1))
    [ $n -le 600 ] || { say "$owner still holds $LOCK after 10 minutes"; return 1; }
    sleep 1
  done
  echo "$D" >"$LOCK/owner"
}

if [ "$CMD" = down ]; then
  down
  exit $?
fi

# ------------------------------------------------------------------------------------------ up
STARTED=$(date +%s.%N)
down  # what an interrupted run left
lock || exit 1
mkdir -p "$D" && chmod 0755 "$D"
: >"$D/leftovers"
for f in $HOST_LEFTOVERS; do [ -e "$f" ] || echo "$f" >>"$D/leftovers"; done
: >"$D/run-dirs"
for f in $HOST_RUN_DIRS; do [ -e "$f" ] || echo "$f" >>"$D/run-dirs"; done
: >"$D/cgroups-made"
for cg in docker libpod_parent default ci kubepods lxc.pivot; do
  [ -e "/sys/fs/cgroup/systemd/$cg" ] || [ -e "/sys/fs/cgroup/unified/$cg" ] || [ -e "/sys/fs/cgroup/$cg" ] ||
    echo "$cg" >>"$D/cgroups-made"
done
STATUS="$D/engines.env.tmp"
: >"$STATUS"
ok() { echo "ENGINE_$1=ok" >>"$STATUS"; say "$1: ready"; }
skip() {
  engine=$1
  shift
  echo "ENGINE_$engine=skip:$*" >>"$STATUS"
  say "$engine: SKIPPED: $*"
}
# The last lines of a log, on one line (for a skip reason).
tail_of() { tail -n "${2:-3}" "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-400; }
wait_socket() {  # wait_socket PATH SECONDS
  n=$(($2 * 10))
  while [ "$n" -gt 0 ]; do [ -S "$1" ] && return 0; sleep 0.1; n=$((n - 1)); done
  return 1
}

# -- the image: busybox-static as a root filesystem, a plain tarball and an OCI archive ---------
R="$D/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/run"
if [ ! -x /bin/busybox ] || ! /bin/busybox --list >/dev/null 2>&1; then
  for e in containerd docker podman lxc; do skip "$e" "/bin/busybox (busybox-static) is not installed"; done
  mv "$STATUS" "$D/engines.env"
  exit 0
fi
cp /bin/busybox "$R/bin/busybox"
for a in sh sleep cat ls ps true kill echo hostname id unshare nsenter; do ln -sf busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
O="$D/oci"
mkdir -p "$O/blobs/sha256"
tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$R" -cf "$D/rootfs.tar" .
blob() {  # blob FILE: moves FILE into the OCI blobs, prints "DIGEST SIZE"
  h=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$O/blobs/sha256/$h"
  echo "$h $s"
}
cp "$D/rootfs.tar" "$O/layer"
set -- $(blob "$O/layer")
L=$1 LS=$2
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$L" >"$O/config"
set -- $(blob "$O/config")
C=$1 CS=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$C" "$CS" "$L" "$LS" >"$O/manifest"
set -- $(blob "$O/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest","io.containerd.image.name":"%s"}}]}' \
  "$1" "$2" "$IMAGE" >"$O/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$O/oci-layout"
tar -C "$O" -cf "$D/busybox-oci.tar" oci-layout index.json blobs

# -- containerd (for ctr, and under dockerd) ----------------------------------------------------
mkdir -p "$D/containerd"
cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CONTAINERD_ADDRESS"
[ttrpc]
  address = "$CONTAINERD_ADDRESS.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
EOF
containerd_ok=no
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
  skip containerd "containerd or ctr is not installed (packaging/install-build-deps.sh installs them)"
else
  containerd --config "$D/containerd/config.toml" </dev/null >"$D/containerd.log" 2>&1 &
  echo $! >"$D/containerd.pid"
  if ! wait_socket "$CONTAINERD_ADDRESS" 20 || ! $T 20 ctr version >/dev/null 2>&1; then
    skip containerd "containerd did not start: $(tail_of "$D/containerd.log")"
  elif ! $T 60 ctr -n default images import "$D/busybox-oci.tar" >"$D/ctr-import.log" 2>&1 ||
    ! $T 60 ctr -n k8s.io images import "$D/busybox-oci.tar" >>"$D/ctr-import.log" 2>&1; then
    # default: ctr's own namespace; k8s.io: Kubernetes' (CRI) one.
    skip containerd "ctr images import failed: $(tail_of "$D/ctr-import.log")"
  elif ! $T 30 ctr -n default run --rm "$IMAGE" pidns-smoke true >"$D/ctr-smoke.log" 2>&1; then
    skip containerd "ctr run failed: $(tail_of "$D/ctr-smoke.log")"
  else
    containerd_ok=yes
    ok containerd
  fi
fi

# -- dockerd, on that containerd ----------------------------------------------------------------
mkdir -p "$D/docker/client"
echo '{}' >"$D/docker/daemon.json"
echo '{}' >"$DOCKER_CONFIG/config.json"  # podman reads it too (registry auth)
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  skip docker "docker.io is not installed (packaging/install-build-deps.sh installs it)"
elif [ "$containerd_ok" != yes ]; then
  skip docker "its containerd did not run (see containerd)"
else
  dockerd --config-file "$D/docker/daemon.json" --data-root "$D/docker/data" --exec-root "$D/docker/exec" \
    -H "$DOCKER_HOST" --pidfile "$D/docker.pid" --containerd "$CONTAINERD_ADDRESS" \
    --iptables=false --ip6tables=false --ip-masq=false --bridge=none --userland-proxy=false \
    --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 </dev/null >"$D/dockerd.log" 2>&1 &
  if ! wait_socket "$D/docker.sock" 30 || ! $T 30 docker version >/dev/null 2>&1; then
    skip docker "dockerd did not start: $(tail_of "$D/dockerd.log")"
  elif ! $T 60 docker import "$D/rootfs.tar" "$IMAGE" >"$D/docker-import.log" 2>&1; then
    skip docker "docker import failed: $(tail_of "$D/docker-import.log")"
  elif ! $T 30 docker run --rm --network none "$IMAGE" true >"$D/docker-smoke.log" 2>&1; then
    skip docker "docker run failed: $(tail_of "$D/docker-smoke.log")"
  else
    ok docker
  fi
fi

# -- podman: no daemon; its configuration, storage and run state under DIR ---------------------
# runc and cgroupfs: crun refuses this machine's hybrid cgroups, and systemd is not pid 1 here.
# The ulimits podman would copy from its own (raised) ones cannot be set without CAP_SYS_RESOURCE.
P="$D/podman"
mkdir -p "$P"
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:32768"]
netns = "none"
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
tmp_dir = "$P/tmp"
static_dir = "$P/libpod"
volume_path = "$P/volumes"
[network]
network_config_dir = "$P/net"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
runroot = "$P/run"
graphroot = "$P/storage"
EOF
: >"$CONTAINERS_REGISTRIES_CONF"
if ! command -v podman >/dev/null; then
  skip podman "podman is not installed (packaging/install-build-deps.sh installs it)"
elif ! $T 60 podman import "$D/rootfs.tar" "$IMAGE" >"$D/podman-import.log" 2>&1; then
  skip podman "podman import failed: $(tail_of "$D/podman-import.log")"
elif ! $T 30 podman run -d --name pidns-smoke "$IMAGE" sleep 60 >"$D/podman-smoke.log" 2>&1 ||
  ! $T 30 podman rm -f -t 0 pidns-smoke >>"$D/podman-smoke.log" 2>&1; then
  # Detached: an attached `podman run` here waits 20 s for conmon's exit file after the
  # container has exited (it then cleans up all the same).
  skip podman "podman run failed: $(tail_of "$D/podman-smoke.log")"
else
  ok podman
fi

# -- rootless podman, as an unprivileged user -------------------------------------------------
if grep -q '^ENGINE_podman=ok' "$STATUS"; then
  if ! id "$RL_USER" >/dev/null 2>&1; then
    # A regular user (useradd gives it subordinate ids for its user namespace), no login.
    if useradd -M -d "$D/rootless" -s /usr/sbin/nologin "$RL_USER" >"$D/rootless.log" 2>&1; then
      : >"$D/rootless-user-made"
    fi
  fi
  mkdir -p "$D/rootless/run"
  cat >"$D/rootless/containers.conf" <<EOF
[containers]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  cat >"$D/rootless/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$D/rootless/run/storage"
graphroot = "$D/rootless/storage"
EOF
  if ! id "$RL_USER" >/dev/null 2>&1; then
    skip podman_rootless "cannot make the user $RL_USER: $(tail_of "$D/rootless.log")"
  elif ! grep -q "^$RL_USER:" /etc/subuid; then
    skip podman_rootless "$RL_USER has no subordinate uids in /etc/subuid (podman needs them for its user namespace)"
  else
    chown -R "$RL_USER:" "$D/rootless"
    chmod 0700 "$D/rootless" "$D/rootless/run"
    if ! as_rootless podman import "$D/rootfs.tar" "$IMAGE" >"$D/rootless-import.log" 2>&1; then
      skip podman_rootless "podman import as $RL_USER failed: $(tail_of "$D/rootless-import.log")"
    elif ! as_rootless podman run -d --name pidns-smoke "$IMAGE" sleep 60 >"$D/rootless-smoke.log" 2>&1 ||
      ! as_rootless podman rm -f -t 0 pidns-smoke >>"$D/rootless-smoke.log" 2>&1; then
      skip podman_rootless "podman run as $RL_USER failed: $(tail_of "$D/rootless-smoke.log")"
    else
      ok podman_rootless
    fi
  fi
else
  skip podman_rootless "podman does not run here (see podman)"
fi

# -- LXC: containers under a private lxcpath, on the busybox root filesystem --------------------
mkdir -p "$LXC_PATH"
if ! command -v lxc-start >/dev/null; then
  skip lxc "lxc is not installed (packaging/install-build-deps.sh installs it)"
else
  mkdir -p "$LXC_PATH/pidns-smoke"
  cat >"$LXC_PATH/pidns-smoke/config" <<EOF
lxc.uts.name = pidns-smoke
lxc.rootfs.path = dir:$R
lxc.net.0.type = empty
lxc.init.cmd = /bin/true
lxc.apparmor.profile = unconfined
lxc.log.file = $LXC_PATH/pidns-smoke/log
EOF
  if ! $T 30 lxc-start -P "$LXC_PATH" -n pidns-smoke -F >"$D/lxc-smoke.log" 2>&1; then
    skip lxc "lxc-start failed: $(tail_of "$D/lxc-smoke.log") $(tail_of "$LXC_PATH/pidns-smoke/log" 2)"
  else
    ok lxc
  fi
  rm -rf "$LXC_PATH/pidns-smoke"
fi

{
  echo "PIDNS_ENGINES_DIR=$D"
  echo "IMAGE=$IMAGE"
  echo "ROOTFS=$R"
  echo "DOCKER_HOST=$DOCKER_HOST"
  echo "DOCKER_CONFIG=$DOCKER_CONFIG"
  echo "DOCKER_ROOT=$D/docker/data"
  echo "CONTAINERD_ADDRESS=$CONTAINERD_ADDRESS"
  echo "CONTAINERD_STATE=$D/containerd/state"
  echo "CONTAINERS_CONF=$CONTAINERS_CONF"
  echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
  echo "CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF"
  echo "PODMAN_ROOT=$P/storage"
  echo "LXC_PATH=$LXC_PATH"
  echo "ROOTLESS_USER=$RL_USER"
  echo "ROOTLESS_HOME=$D/rootless"
  cat "$STATUS"
} >"$D/engines.env"
rm -f "$STATUS"
say "up in $(awk -v a="$STARTED" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; $D/engines.env"
exit 0
