// Who is asking: a caller's process, pinned with a pidfd, with its namespaces and credentials.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "id_map.h"
#include "index.h"
#include "result.h"

namespace pidns {

class Model;

struct Caller {
    std::int32_t pid = 0;                 // thread-group id in the daemon's pid namespace (from the bus)
    std::uint32_t bus_uid = 0;            // the uid the bus authenticated
    NsId pidns = 0;                       // its pid namespace (the root of everything it may see)
    NsId userns = 0;                      // its user namespace
    std::array<std::uint32_t, 4> uid{};   // real, effective, saved, fs
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_eff = 0;             // effective capabilities (FSCREDS checks use these)
    std::vector<IdMapExtent> uid_map;     // its uid_map as the daemon reads it (daemon uid -> caller uid)
};

// Identifies the process `pid` that the bus says sent a message as `bus_uid`: pins it with
// pidfd_open, (re)reads it into the model's index, reads its uid_map, then checks that the pidfd
// still refers to a live process and that its effective uid is still `bus_uid`.
// Errc::access_denied when any step fails (the caller exited, changed identity, or cannot be read).
Result<Caller> identify_caller(Model& model, std::int32_t pid, std::uint32_t bus_uid);

}  // namespace pidns
