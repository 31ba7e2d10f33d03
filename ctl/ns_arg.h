// pidnsctl's NS arguments: an id, an inode, TYPE:[INODE], a namespace file's path, @PID,
// container:ID|NAME, unit:NAME or machine:NAME.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "client.h"

namespace pidnsctl {

// Exit codes (documented in pidnsctl(1)).
enum Exit : int { kOk = 0, kFailure = 1, kUsage = 2, kAmbiguous = 3, kNotFound = 4, kAccessDenied = 5 };

// A failure of pidnsctl's own (not a D-Bus error), with its exit code.
class CtlError : public std::runtime_error {
public:
    CtlError(int exit_code, const std::string& what) : std::runtime_error(what), code_(exit_code) {}
    [[nodiscard]] int code() const noexcept { return code_; }

private:
    int code_;
};

// The namespace reference pidnsd takes (0: the caller's own), for `arg` naming a namespace of
// `type` (used by @PID: PID's namespace of that type, as pidnsd sees it; and by container:ID|NAME,
// unit:NAME and machine:NAME: the outermost namespace of that type whose representative runs
// there, see resolve_by_name in ns_arg.cpp and pidnsctl(1)). "" gives 0. Paths are opened as the
// user running pidnsctl. Throws CtlError (usage, not found, access denied, ambiguous: the
// candidates listed) or pidns::client::Error.
std::uint64_t resolve_ns(pidns::client::Client& c, const std::string& arg, const std::string& type);

// A pid argument (1 .. 2^31-1), or CtlError(kUsage).
std::uint32_t parse_pid(const std::string& arg);

}  // namespace pidnsctl
