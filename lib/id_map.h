// Parser for /proc/PID/uid_map and gid_map, and mapping an id into the namespace they describe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "result.h"

namespace pidns {

// One line "inside outside count": ids [inside, inside+count) of the task's user namespace
// are ids [outside, outside+count) of the reader's user namespace.
struct IdMapExtent {
    std::uint32_t inside = 0;
    std::uint32_t outside = 0;
    std::uint32_t count = 0;
};

inline constexpr std::uint32_t kOverflowId = 65534;  // what the kernel shows for an unmapped id

// Parses the map text (at most 340 lines, as the kernel allows). Errc::parse on malformed lines,
// zero counts or ranges that overflow 32 bits.
Result<std::vector<IdMapExtent>> parse_id_map(std::string_view text);

// The id that reader-side id `outside` has inside the mapped namespace; kOverflowId if unmapped.
std::uint32_t map_id_in(const std::vector<IdMapExtent>& map, std::uint32_t outside) noexcept;

}  // namespace pidns
