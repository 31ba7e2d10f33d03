// Command lines of other processes (ps, status), read so that no process can hold pidnsctl up:
// in a child process, each within a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pidnsctl {

// Reading /proc/PID/cmdline takes the target's mmap lock and faults its argv pages in: a user can
// make that wait for as long as it likes (argv on a FUSE-backed page whose server never answers;
// the reader then sleeps uninterruptibly, deaf even to SIGKILL). So the reads happen in a child
// process of pidnsctl that holds nothing of it (no terminal, no pipe but its answers); a read not
// answered within kCmdlineDeadline is abandoned with its child (killed, never waited for: it ends
// when its read does), the next pids get a new child, and after kMaxAbandoned children no more
// command lines are read. At most kMaxCmdline bytes of each are read.
inline constexpr std::chrono::milliseconds kCmdlineDeadline{200};
inline constexpr std::size_t kMaxAbandoned = 2;
inline constexpr std::size_t kMaxCmdline = 4096;

// The command lines of `pids` (in pidnsctl's pid namespace) as the user running pidnsctl may read
// them: arguments joined by spaces, escaped (lib/escape.h, as pidnsd's strings; cut with its
// marker beyond kMaxCmdline bytes). "" where there is none to read: gone, a kernel thread or a
// zombie, not readable, or abandoned.
std::vector<std::string> read_cmdlines(const std::vector<std::uint32_t>& pids);

}  // namespace pidnsctl
