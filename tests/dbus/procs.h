// Test processes for the D-Bus tests: a background process killed and reaped with its owner
// (optionally nobody and not dumpable), waiting for one to have exec'd, and the child of `unshare -f`.
#pragma once

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bus_fixture.h"

namespace pidns::dbustest {

using Argv = std::vector<std::string>;

// A background process killed (SIGKILL) and reaped on destruction.
class Proc {
public:
    explicit Proc(const Argv& argv) {
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            std::vector<char*> a;
            for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
            a.push_back(nullptr);
            execvp(a[0], a.data());
            _exit(127);
        }
    }
    // nobody, then not dumpable (prctl), then waits.
    struct NonDumpable {};
    explicit Proc(NonDumpable) {
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
                _exit(1);
            prctl(PR_SET_DUMPABLE, 0);
            for (;;) pause();
        }
    }
    ~Proc() { stop(); }
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    // Kills and reaps it now (once).
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// How long a process started by a test may take to exec or fork. Generous: `unshare -n` waits
// for the kernel's net namespace cleanup, which the namespace storms of earlier tests can leave
// seconds behind (a CI run saw `unshare -n -u sleep` not exec within 5 s, under ASan).
inline constexpr int kStartPolls = 3000;  // of 10 ms

// Waits until `pid` runs `comm` (its exec is done, so its credentials are final).
inline void wait_comm(pid_t pid, const std::string& comm) {
    for (int i = 0; i < kStartPolls; ++i) {
        if (read_file("/proc/" + std::to_string(pid) + "/comm") == comm + "\n") return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("process " << pid << " never became " << comm);
}

// The child that `unshare -f` forked (the process inside the new namespaces).
inline pid_t child_of(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
    for (int i = 0; i < kStartPolls; ++i) {
        std::istringstream ss(read_file(path));
        pid_t c = 0;
        if (ss >> c) return c;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("process " << pid << " made no child");
    return 0;
}

}  // namespace pidns::dbustest
