// The kernel's ptrace_may_access(task, PTRACE_MODE_READ_FSCREDS) of Linux 6.18, mirrored over the index.
#pragma once

#include <cstdint>

#include "caller.h"
#include "index.h"

namespace pidns {

inline constexpr int kCapSysPtrace = 19;

enum class Access : std::uint8_t {
    allowed,
    invisible,  // rule 1: outside the caller's pid namespace subtree; the task does not exist for it
    denied,     // rules 2 or 3 (credentials, capabilities, dumpability)
};

// security/commoncap.c cap_capable(): whether a caller in user namespace `caller_userns`, with
// effective capabilities `cap_eff` and effective uid `euid` (both as the index sees them), has
// capability `cap` in user namespace `target`: it has it effective in `target` or an ancestor
// of it, or its euid created a user namespace on the path below its own (then it has every
// capability there). False when `target` is not at or below the caller's user namespace.
bool has_capability_in(const Index& index, NsId caller_userns, std::uint64_t cap_eff, std::uint32_t euid,
                       NsId target, int cap);

// __ptrace_may_access(target, PTRACE_MODE_READ_FSCREDS), in the caller's terms:
//  1. T is in the caller's pid namespace or below it, else Access::invisible;
//  2. T is in the caller's thread group; or the caller's fsuid equals T's uid, euid and suid and
//     its fsgid equals T's gid, egid and sgid; or it has CAP_SYS_PTRACE in T's user namespace;
//  3. if T is not dumpable: the caller has CAP_SYS_PTRACE in T's user namespace (the kernel uses
//     the user namespace of T's mm, set at its last exec; pidnsd uses T's current one);
//  and the capability LSM every kernel runs (cap_ptrace_access_check): in T's own user namespace
//  T's permitted capabilities are a subset of the caller's effective ones, or the caller has
//  CAP_SYS_PTRACE in T's user namespace. Other LSMs (Yama's ptrace_scope, ...) are not mirrored.
Access ptrace_may_read(const Index& index, const Caller& caller, const Process& target);

// Rules 2 and 3 only (the caller already knows rule 1 holds).
bool passes_credentials(const Index& index, const Caller& caller, const Process& target);

}  // namespace pidns
