// Users a private dbus-daemon knows that the host does not: the bus looks up every client's user
// (its groups, for the policy) and drops connections of uids without a passwd entry, so a crowd of
// distinct uids needs entries. The daemon runs in a mount namespace of its own with copies of
// /etc/passwd and /etc/group bind-mounted over them: the host's files stay untouched.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "process.h"

namespace pidns::harness {

// Writes DIR/passwd and DIR/group (the host's, plus "pidns-crowd-UID" for each uid and group)
// and returns the command line that runs `argv` with them over /etc/passwd and /etc/group.
// Nothing is added when `uids` is empty: `argv` itself is returned.
inline std::vector<std::string> with_bus_users(const std::string& dir, const std::vector<std::uint32_t>& uids,
                                               const std::vector<std::string>& argv) {
    if (uids.empty()) return argv;
    auto copy = [](const std::string& from) {
        std::string s = read_file(from);
        if (!s.empty() && s.back() != '\n') s += '\n';
        return s;
    };
    std::string passwd = copy("/etc/passwd"), group = copy("/etc/group");
    for (const auto uid : uids) {
        const std::string u = std::to_string(uid), name = "pidns-crowd-" + u;
        passwd += name + ":x:" + u + ":" + u + "::/nonexistent:/usr/sbin/nologin\n";
        group += name + ":x:" + u + ":\n";
    }
    std::ofstream(dir + "/passwd") << passwd;
    std::ofstream(dir + "/group") << group;
    std::string cmd = "mount --bind " + dir + "/passwd /etc/passwd && mount --bind " + dir + "/group /etc/group && exec";
    for (const auto& a : argv) cmd += " '" + a + "'";
    return {"unshare", "--mount", "--propagation", "private", "sh", "-c", cmd};
}

}  // namespace pidns::harness
