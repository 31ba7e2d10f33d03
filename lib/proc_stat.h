// Parser for /proc/PID/stat (the fields the index needs).
#pragma once

#include <cstdint>
#include <string_view>

#include "result.h"

namespace pidns {

struct ProcStat {
    std::int32_t pid = 0;
    char state = '?';
    std::int32_t ppid = 0;
    std::uint32_t flags = 0;       // field 9, the kernel's PF_* bits
    std::uint32_t num_threads = 0; // field 20; 0: unknown
    std::uint64_t start_time = 0;  // field 22, clock ticks after boot
};

// PF_EXITING (include/linux/sched.h): the task has begun to exit (set first thing in do_exit).
inline constexpr std::uint32_t kPfExiting = 0x4;

// The comm field (2) may hold spaces and parentheses: it ends at the last ')'.
Result<ProcStat> parse_proc_stat(std::string_view text);

}  // namespace pidns
