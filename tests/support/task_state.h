// What the kernel says of a task, read from /proc, for tests that compare with outside tools.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <string>

namespace pidns::testing {

// The state letter of /proc/PATH/stat (after the ") " that ends comm); 0 if unreadable.
inline char stat_state(const std::string& stat_path) {
    std::ifstream f(stat_path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string s = ss.str();
    const auto close = s.rfind(')');
    return close != std::string::npos && close + 2 < s.size() ? s[close + 2] : 0;
}

// An exited, unreaped process: every task of the thread group is a zombie (or dead). pidnsd does
// not index it (pidnsd(8), THE INDEX); lsns still lists its user and pid namespaces, which its
// credentials and pid keep alive, under its pid.
inline bool exited_unreaped(pid_t pid) {
    const std::string base = "/proc/" + std::to_string(pid);
    const char st = stat_state(base + "/stat");
    if (st != 'Z' && st != 'X') return false;
    DIR* d = ::opendir((base + "/task").c_str());
    if (!d) return true;
    bool live = false;
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const char t = stat_state(base + "/task/" + e->d_name + "/stat");
        if (t != 0 && t != 'Z' && t != 'X') live = true;
    }
    ::closedir(d);
    return !live;
}

}  // namespace pidns::testing
