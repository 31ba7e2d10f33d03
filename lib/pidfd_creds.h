// A process's credentials without rendering its /proc status: PIDFD_GET_INFO (Linux 6.13) and capget.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>

#include "result.h"

namespace pidns {

struct PidfdCreds {
    std::array<std::uint32_t, 4> uid{};  // real, effective, saved, fs (as /proc/PID/status orders them)
    std::array<std::uint32_t, 4> gid{};
};

// The credentials of the thread-group leader `pidfd` refers to, in the reader's user namespace
// (PIDFD_GET_INFO with PIDFD_INFO_CREDS). Errc::not_found once the process has exited (ESRCH);
// Errc::io for a kernel without the ioctl (before 6.13: ENOTTY, EINVAL). A zombie leader's are
// the ones it died with: its live threads may hold others (the caller decides what that means).
Result<PidfdCreds> pidfd_creds(int pidfd);

// The effective capabilities of the thread `tid` (capget: the kernel copies them, nothing is
// rendered). Errc::not_found if no such thread.
Result<std::uint64_t> effective_capabilities(pid_t tid);

// Whether this kernel answers PIDFD_GET_INFO (probed once, on the calling process's own pidfd).
bool pidfd_info_supported();

}  // namespace pidns
