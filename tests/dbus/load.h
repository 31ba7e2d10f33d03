// What the attack tests share: root's latency, a process's RSS, the flood's summary line, and load
// processes run as other users in the background.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "bus_fixture.h"

namespace pidns::dbustest {

#ifdef PIDNS_SANITIZED
// Under ASan+UBSan every instruction of pidnsd is several times slower: latency bounds scale.
inline constexpr double kSlowdown = 5;
#else
inline constexpr double kSlowdown = 1;
#endif

// setpriv as that uid and gid, no supplementary groups.
inline std::vector<std::string> as_uid(std::uint32_t uid) {
    const std::string u = std::to_string(uid);
    return {"setpriv", "--reuid=" + u, "--regid=" + u, "--clear-groups"};
}

inline long rss_kb(pid_t pid) {
    const auto status = read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("VmRSS:");
    return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + 6, nullptr, 10);
}

struct Latency {
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    std::size_t n = 0;
};

inline Latency latency_of(std::vector<double> ms) {
    Latency l;
    if (ms.empty()) return l;
    std::sort(ms.begin(), ms.end());
    l.n = ms.size();
    l.p50_ms = ms[ms.size() / 2];
    l.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    l.max_ms = ms.back();
    return l;
}

// `n` TranslatePid round trips of root's own pid, `gap` apart (each must be answered right).
inline Latency measure(Client& c, std::size_t n, std::chrono::milliseconds gap = std::chrono::milliseconds(0)) {
    std::vector<double> ms;
    const auto me = static_cast<std::uint32_t>(getpid());
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(c.TranslatePid(me, 0, 0) == me);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (gap.count() > 0) std::this_thread::sleep_for(gap);
    }
    return latency_of(std::move(ms));
}

inline std::ostream& operator<<(std::ostream& os, const Latency& l) {
    return os << "p50 " << l.p50_ms << " ms, p99 " << l.p99_ms << " ms, max " << l.max_ms << " ms (" << l.n
              << " calls)";
}

// A value of the flood's summary line ("replies R ok O errors E limits L ...").
inline std::uint64_t field(const std::string& summary, const std::string& name) {
    const auto at = summary.find(name + " ");
    return at == std::string::npos ? 0 : std::strtoull(summary.c_str() + at + name.size() + 1, nullptr, 10);
}

// The count after "NAME=" in the flood's summary line (an error name's count), 0 if absent.
inline std::uint64_t count_of(const std::string& summary, const std::string& name) {
    const auto at = summary.find(name + "=");
    return at == std::string::npos ? 0 : std::strtoull(summary.c_str() + at + name.size() + 1, nullptr, 10);
}

// A command run in the background, its stdout and stderr into a file; killed (SIGKILL) and reaped
// on destruction unless it ended and was waited for.
class Background {
public:
    explicit Background(const std::vector<std::string>& argv) {
        const ExecArgs args(argv);
        const std::string out = dir_.path() + "/out";
        const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int devnull = ::open("/dev/null", O_RDONLY);
            ::dup2(devnull, 0);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            args.exec();
        }
        ::close(fd);
    }
    ~Background() { stop(SIGKILL); }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    // Waits for it to end (SIGKILL after `timeout`); its exit status (128+signal if killed).
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        if (pid_ <= 0) return status_;
        const auto until = std::chrono::steady_clock::now() + timeout;
        int st = 0;
        while (::waitpid(pid_, &st, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > until) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &st, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        pid_ = -1;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
    }
    // Sends `sig` and waits for it to end.
    int stop(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
        return wait(std::chrono::seconds(10));
    }
    [[nodiscard]] std::string output() const { return read_file(dir_.path() + "/out"); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

private:
    TempDir dir_;
    pid_t pid_ = -1;
    int status_ = -1;
};

}  // namespace pidns::dbustest
