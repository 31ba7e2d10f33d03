// Test processes for the D-Bus tests: a background process killed and reaped with its owner
// (optionally nobody and not dumpable), and waiting for one to have exec'd.
#pragma once

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
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
    ~Proc() {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// Waits until `pid` runs `comm` (its exec is done, so its credentials are final).
inline void wait_comm(pid_t pid, const std::string& comm) {
    for (int i = 0; i < 500; ++i) {
        if (read_file("/proc/" + std::to_string(pid) + "/comm") == comm + "\n") return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("process " << pid << " never became " << comm);
}

}  // namespace pidns::dbustest
