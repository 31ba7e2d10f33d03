// What some tests need from the host beyond the suite's own requirements (root, a 6.x kernel), each
// probed for real: "" when present, else why not (for a reported skip, tests/harness/skip.h).
#pragma once

#include <string>

namespace pidns::harness {

// /dev/fuse opens read-write and is the FUSE device (char 10:229), not something mounted over it.
std::string fuse_missing();

// The mount point of the cgroup2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
// host), "" without one.
std::string cgroup2_mount();
// Where pidnsd reads a process's cgroup: the name=systemd v1 hierarchy if mounted, else cgroup2.
std::string systemd_cgroup_mount();

}  // namespace pidns::harness
