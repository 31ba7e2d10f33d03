// Parser for /proc/PID/status: ids, credentials, capabilities and the NS* pid chains.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "result.h"

namespace pidns {

struct ProcStatus {
    std::int32_t tgid = 0;
    std::int32_t pid = 0;
    std::int32_t ppid = 0;
    std::array<std::uint32_t, 4> uid{};  // real, effective, saved, fs
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_prm = 0;
    std::uint64_t cap_eff = 0;
    // Chains as printed to the reader: first element in the reader's pid namespace,
    // last in the task's own. All four have the same length (>= 1).
    std::vector<std::int32_t> nstgid, nspid, nspgid, nssid;
};

// Parses the text of /proc/PID/status. Missing or malformed required fields, chains of
// different lengths or an empty chain give Errc::parse naming the field. A task the kernel
// released while printing it (Tgid or the first NSpid 0, as the kernel prints them for a task
// detached from its pids) gives Errc::not_found, as a task whose status cannot be opened.
Result<ProcStatus> parse_proc_status(std::string_view text);

// What a caller's credentials are judged by, from the same text (parse_proc_status reads more).
struct StatusCredentials {
    char state = 0;  // the first letter of State ('R', 'S', 'Z', 'X', ...)
    std::array<std::uint32_t, 4> uid{};
    std::array<std::uint32_t, 4> gid{};
    std::uint64_t cap_eff = 0;
};
// State, Uid, Gid and CapEff of a status text; a missing or malformed one gives Errc::parse.
Result<StatusCredentials> parse_status_credentials(std::string_view text);

}  // namespace pidns
