// pidnsctl's NS arguments: an id, an inode, TYPE:[INODE], a namespace file's path, @PID,
// container:ID|NAME, unit:NAME or machine:NAME.
#pragma once

#include <cstdint>
#include <string>

#include "client.h"
#include "errors.h"

namespace pidnsctl {

// The namespace reference pidnsd takes (0: the caller's own) for `arg`, given as `what` (an option
// such as "--from", or "" for a command's NS argument), naming a namespace of `type` ("" for any
// type; @PID then means PID's pid namespace). @PID: PID's namespace of that type, as pidnsd sees
// it; container:ID|NAME, unit:NAME and machine:NAME: the outermost namespace of that type whose
// representative runs there (resolve_by_name in ns_arg.cpp, pidnsctl(1)). A number, TYPE:[INODE]
// or a path is checked with pidnsd: it must name a namespace you may see, of `type`. "" gives 0.
// Paths are opened as the user running pidnsctl. Throws CtlError (usage: malformed, or of another
// type; not found; access denied; ambiguous, the candidates listed).
std::uint64_t resolve_ns(pidns::client::Client& c, const std::string& arg, const std::string& type,
                         const std::string& what = "");

// How messages name the namespace `arg` (as resolve_ns takes it): "your pid namespace" for "",
// else "pid namespace @4120" ("namespace 4120" when `type` is "").
std::string ns_words(const std::string& arg, const std::string& type);

// A pid argument (1 .. 2^31-1), or CtlError(kUsage).
std::uint32_t parse_pid(const std::string& arg);

}  // namespace pidnsctl
