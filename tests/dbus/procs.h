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
        const ExecArgs args(argv);
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            args.exec();
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

// How long a process started by a test may take to exec or fork: a wait for a precondition, not
// a timing, so generous (a CI machine busy with earlier tests, under ASan). A child stuck before
// its exec fails with where the kernel has it (whereabouts).
inline constexpr int kStartPolls = 3000;  // of 10 ms

// What the kernel says `pid` is doing, for a test that waited on it in vain: its state, where it
// sleeps and its kernel stack (root only), or how it ended if it is a zombie (not reaped).
inline std::string whereabouts(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ostringstream out;
    const std::string stat = read_file(dir + "/stat");
    const auto paren = stat.rfind(')');
    const char state = paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
    std::string comm = read_file(dir + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    out << "process " << pid << " (comm " << comm << ") is in state " << state;
    if (state == 'Z') {
        siginfo_t si{};
        if (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            out << (si.si_code == CLD_EXITED ? ", exited with status " : ", killed by signal ") << si.si_status;
    } else {
        out << ", waiting in " << read_file(dir + "/wchan") << "\nkernel stack:\n" << read_file(dir + "/stack");
    }
    return out.str();
}

// Waits until `pid` runs `comm` (its exec is done, so its credentials are final). Fails at once if
// it ended first.
inline void wait_comm(pid_t pid, const std::string& comm) {
    const std::string dir = "/proc/" + std::to_string(pid);
    for (int i = 0; i < kStartPolls; ++i) {
        if (read_file(dir + "/comm") == comm + "\n") return;
        const std::string stat = read_file(dir + "/stat");
        if (const auto paren = stat.rfind(')'); paren != std::string::npos && stat.compare(paren, 3, ") Z") == 0)
            FAIL("process " << pid << " ended before it became " << comm << ": " << whereabouts(pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL("process " << pid << " never became " << comm << " in " << kStartPolls / 100 << " s: " << whereabouts(pid));
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
    FAIL("process " << pid << " made no child in " << kStartPolls / 100 << " s: " << whereabouts(pid));
    return 0;
}

}  // namespace pidns::dbustest
