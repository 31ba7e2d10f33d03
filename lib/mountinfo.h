// Parser for /proc/PID/mountinfo, and the nsfs bind mounts in it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ns_link.h"
#include "result.h"

namespace pidns {

struct MountEntry {
    std::uint64_t mount_id = 0;
    std::string root;         // unescaped
    std::string mount_point;  // unescaped (\040 -> ' ')
    std::string fstype;
};

// Parses every line; a malformed line gives Errc::parse naming its number.
Result<std::vector<MountEntry>> parse_mountinfo(std::string_view text);

struct NsfsMount {
    NsLink ns;                // type and inode of the mounted namespace
    std::string mount_point;  // path inside the mount namespace that holds it
    std::uint64_t mount_id = 0;  // mountinfo's first field (reused once the mount is gone)
};

// The entries of fstype "nsfs" whose root names a namespace ("net:[4026532...]").
std::vector<NsfsMount> nsfs_mounts(const std::vector<MountEntry>& entries);

// Undo the octal escapes (\040 \011 \012 \134) the kernel applies to mountinfo paths.
std::string unescape_mount_path(std::string_view s);

}  // namespace pidns
