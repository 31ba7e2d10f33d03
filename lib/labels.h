// What an admin recognises a process by: its command, its cgroup with systemd's unit and slice,
// the container it runs in, its user's name. Read from /proc at the time of a request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cgroup.h"
#include "cgroup_owner.h"
#include "result.h"

namespace pidns {

// Raw bytes as the kernel gives them (any byte but NUL, invalid UTF-8 included): escape them
// (escape.h) wherever they leave pidnsd.
struct Labels {
    std::string command;  // comm (/proc/PID/comm), at most 15 bytes
    std::string cgroup;   // the systemd cgroup path (cgroup.h systemd_cgroup_path), "" if unknown
    std::string unit, slice;
    std::optional<ContainerLabel> container;
    // Who could have chosen the names unit/slice and container were read from (cgroup_owner.h,
    // a host uid): nullopt when only root could.
    std::optional<std::uint32_t> unit_owner, container_owner;
};

// Reads /proc/PID/comm and /proc/PID/cgroup through `proc_fd`, and the owners of the cgroup
// directories above its unit and container below `cgroup_root_fd` (the systemd hierarchy; -1:
// unknown owners, kOverflowId). Never /proc/PID/cmdline or environ: reading those takes the
// target's mmap lock, which its owner can hold (a FUSE-backed page), and pidnsd never waits on a
// user. Errc::not_found if the process is gone, or its start time (stat field 22) is no longer
// `start_time` (the pid names another process).
Result<Labels> read_labels(int proc_fd, std::int32_t pid, std::uint64_t start_time,
                           int cgroup_root_fd = systemd_hierarchy_fd());

// The systemd cgroup path of a process (/proc/PID/cgroup, as Labels::cgroup), "" if unreadable.
std::string read_cgroup_path(int proc_fd, std::int32_t pid);

// Whether a cgroup path lies at or below `container_path` (a path prefix ending at a component).
bool cgroup_within(std::string_view path, std::string_view container_path);

// The cgroup path up to and including the container's own component (`depth` components).
std::string cgroup_prefix(std::string_view path, std::size_t depth);

// The cgroup path up to and including the first component named `component` (a systemd unit's
// own cgroup), "" when no component is named so.
std::string cgroup_upto(std::string_view path, std::string_view component);

// /etc/passwd: uid -> name (the first line wins, as getpwuid does). Malformed lines are skipped;
// at most 65536 entries.
std::unordered_map<std::uint32_t, std::string> parse_passwd(std::string_view text);

// User names from a passwd file (files only: pidnsd does not ask NSS, whose other sources, LDAP
// or sssd, may block), read again when its size or mtime changes, at most once per second.
class UserNames {
public:
    explicit UserNames(std::string path = "/etc/passwd") : path_(std::move(path)) {}
    std::optional<std::string> name_of(std::uint32_t uid);

private:
    std::string path_;
    std::unordered_map<std::uint32_t, std::string> names_;
    std::int64_t mtime_ns_ = -1, size_ = -1;
    std::int64_t checked_ns_ = 0;  // CLOCK_MONOTONIC of the last stat
};

}  // namespace pidns
