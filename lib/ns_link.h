// nsfs link targets such as "pid:[4026531836]": the parser, and the one place a link is read.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ns_type.h"
#include "result.h"

namespace pidns {

struct NsLink {
    NsType type;
    std::uint64_t inode;
};

// Parses the target of /proc/PID/ns/TYPE or /proc/PID/fd/N ("net:[4026532000]"),
// or the root field of an nsfs mountinfo entry (same shape).
Result<NsLink> parse_ns_link(std::string_view target);

// readlinkat(dirfd, path) parsed as a namespace link: Errc::not_found when gone (ENOENT, ESRCH),
// Errc::io when unreadable otherwise, Errc::parse when it is no namespace link.
Result<NsLink> read_ns_link_at(int dirfd, const char* path);

// The same for scans that pass over what is not a namespace link (an fd to a file or a socket):
// nothing, with no error built, when it cannot be read or is not one.
std::optional<NsLink> ns_link_at(int dirfd, const char* path);

// The inode of the namespace link `path` below `dirfd` when it is one of `type`; 0 when it cannot
// be read (gone, a zombie's pid_for_children, a namespace without its init yet) or is another.
std::uint64_t ns_link_inode_at(int dirfd, const char* path, NsType type);

}  // namespace pidns
