// Parser for nsfs link targets such as "pid:[4026531836]".
#pragma once

#include <cstdint>
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

}  // namespace pidns
