// Who is asking: a caller's process, pinned with a pidfd, with its namespaces and credentials.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "id_map.h"
#include "index.h"
#include "nsfs.h"
#include "result.h"

namespace pidns {

class Model;

struct Caller {
    std::int32_t pid = 0;                 // thread-group id in the daemon's pid namespace (from the bus)
    std::uint32_t bus_uid = 0;            // the uid the bus authenticated
    NsId pidns = 0;                       // its pid namespace (the root of everything it may see)
    NsId userns = 0;                      // its user namespace
    std::uint64_t userns_inode = 0;       // nsfs inode of `userns`, to notice a later setns/unshare
    std::uint64_t start_time = 0;         // stat field 22 (clock ticks after boot): tells a reused pid apart
    std::array<std::uint32_t, 4> uid{};   // real, effective, saved, fs
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_eff = 0;             // effective capabilities (FSCREDS checks use these)
    std::vector<IdMapExtent> uid_map;     // its uid_map as the daemon reads it (daemon uid -> caller uid)
    std::uint32_t principal_uid = 0;      // whom its usage is charged to (principal_uid below)
};

// A user namespace's place in the tree: its parent and the uid that made it (in the daemon's
// user namespace).
struct UserNsLink {
    NsId parent = 0;
    std::uint32_t owner_uid = 0;
};
// The principal of a caller: the uid that owns the outermost user namespace below `root_userns`
// on the path up from the caller's `userns` (only that uid could make it: every process of a
// rootless container, whatever subuid it runs as, is the user who made the container), or
// `bus_uid` when the caller runs in `root_userns` itself or its path up is not known. `link`
// gives a user namespace's parent and owner (nullopt: unknown).
std::uint32_t principal_uid(NsId userns, NsId root_userns, std::uint32_t bus_uid,
                            const std::function<std::optional<UserNsLink>(NsId)>& link);
// The same over the index (the daemon's own user namespace is the root).
std::uint32_t principal_uid(const Index& index, NsId userns, std::uint32_t bus_uid);

// Identifies the process `pid`, pinned by `pidfd` (pidfd_open, or the bus's ProcessFD), that the
// bus says sent a message as `bus_uid`: (re)reads it into the model's index, reads its uid_map,
// then checks that the pidfd still refers to a live process and that its effective uid is still
// `bus_uid`. `started_by` (clock ticks after boot, 0: no check) is when its bus connection was
// first seen: a process that started later cannot have made the connection, so the pid was
// reused. Errc::unidentified when any step fails (the caller exited, changed identity, is not
// the process that connected, or cannot be read).
Result<Caller> identify_caller(Model& model, int pidfd, std::int32_t pid, std::uint32_t bus_uid,
                               std::uint64_t started_by);

// What to do with a known caller before answering its next call: its credentials change without
// any event (setuid, capset), so they are read again.
enum class CallerCheck : std::uint8_t {
    same,        // `caller` now holds the current credentials (capabilities never above the first ones)
    changed_ns,  // its user namespace changed (setns, unshare): identify it again
};
// A caller's /proc/PID/status and /proc/PID/ns, held open for its connection (two fds), so that
// each call re-reads its credentials with one pread and one readlinkat instead of opening, reading
// and closing /proc files (with PIDFD_GET_INFO, Linux 6.13: the pidfd and capget instead of the
// pread, and a second readlinkat that tells a leader that has exited). Opened through /proc/PID
// while the caller's pidfd says its process lives (a pid is reused only after its process is
// reaped): they stay that process's and fail (ESRCH, ENOENT) once it is gone, whoever gets the pid
// next. Empty: not opened (yet, or they could not be: every call then takes the slower path through
// /proc/PID).
struct CallerFiles {
    std::int32_t pid = 0;  // the process they were opened for (0: not open)
    Fd status;
    Fd ns;
};

// Errc::unidentified when the process exited, its pid names another process, or its effective
// uid is no longer the uid the bus authenticated. `files` (kept by the caller of this function
// per connection, reset when the connection's identity is forgotten) are opened at the first call.
Result<CallerCheck> refresh_caller(Model& model, int pidfd, Caller& caller, CallerFiles& files);

// CLOCK_BOOTTIME now, in the clock ticks of /proc/PID/stat's start time.
std::uint64_t boottime_ticks() noexcept;

}  // namespace pidns
