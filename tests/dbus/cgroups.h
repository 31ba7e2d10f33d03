// Real cgroups for the tests: where systemd's hierarchy is mounted, and a cgroup made for a test
// (named like a container engine's or a unit's) that processes are moved into.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "prerequisites.h"

namespace pidns::harness {

namespace fs = std::filesystem;

// Where the hierarchy systemd keeps units in is mounted, as pidnsd will read it: the v1
// name=systemd hierarchy when there is one, else cgroup v2 (the harness's mountinfo reading).
inline fs::path systemd_hierarchy() { return systemd_cgroup_mount(); }

// A cgroup made for the test (parents too), removed with its processes killed at the end.
class TestCgroup {
public:
    TestCgroup(const fs::path& root, const std::string& rel) : root_(root), rel_(rel) {
        fs::create_directories(root_ / rel_);
    }
    ~TestCgroup() {
        // Deepest first; directories the test made only (all under a per-test top directory).
        std::error_code ec;
        std::vector<fs::path> dirs;
        for (fs::path p = root_ / rel_; p != root_ / top(); p = p.parent_path()) dirs.push_back(p);
        dirs.push_back(root_ / top());
        for (const auto& d : dirs) fs::remove(d, ec);
    }
    void move(pid_t pid) const {
        std::ofstream f(root_ / rel_ / "cgroup.procs");
        f << pid << std::flush;
        if (!f) throw std::runtime_error("cannot move " + std::to_string(pid) + " into " + (root_ / rel_).string());
    }
    [[nodiscard]] std::string path() const { return "/" + rel_; }

private:
    [[nodiscard]] std::string top() const { return rel_.substr(0, rel_.find('/')); }
    fs::path root_;
    std::string rel_;
};

// A docker container's id as the tests name their cgroups (64 hex digits).
inline const std::string kTestContainerId = "7a1d3c2b9a8e7f6d5c4b3a29180716253a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9";

}  // namespace pidns::harness
