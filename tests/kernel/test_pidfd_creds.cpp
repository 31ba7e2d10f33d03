// A caller's credentials from its pidfd (PIDFD_GET_INFO) and capget, against what the kernel
// itself prints in /proc/PID/status, for a process that changed all eight ids and its effective
// capabilities; and the premise of using them: a leader that exited no longer reads its mnt link
// (its credentials are then the ones it died with, not its live threads').
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <string>

#include "nsfs.h"
#include "ns_link.h"
#include "pidfd_creds.h"
#include "support/zombie_leader.h"

using namespace pidns;

namespace {

std::string status_line(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return {};
}

std::array<std::uint32_t, 4> ids(const std::string& text) {
    std::istringstream in(text);
    std::array<std::uint32_t, 4> v{};
    for (auto& x : v) in >> x;
    return v;
}

std::uint64_t cap_eff(pid_t pid) { return std::stoull(status_line(pid, "CapEff"), nullptr, 16); }

}  // namespace

TEST_CASE("pidfd credentials: PIDFD_GET_INFO and capget say what /proc/PID/status says, after a process changed them") {
    REQUIRE(pidfd_info_supported());  // Linux 6.13 and later (this suite runs on 6.18)
    REQUIRE(kernel_features().pidfd_info);
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        // Every id different, and an effective set that is neither empty nor the permitted one.
        const gid_t none[] = {};
        bool ok = ::setgroups(0, none) == 0 && ::setresgid(11, 12, 13) == 0 && (::setfsgid(14), true) &&
                  ::prctl(PR_SET_KEEPCAPS, 1) == 0 && ::setresuid(21, 22, 23) == 0;
        __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct d[2]{};
        ok = ok && ::syscall(SYS_capget, &h, d) == 0;
        d[0].effective = (1u << CAP_SETUID) | (1u << CAP_KILL);
        d[1].effective = 0;
        ok = ok && ::syscall(SYS_capset, &h, d) == 0;
        if (ok) ::setfsuid(24);
        const char c = ok ? 'y' : 'n';
        (void)!::write(ready[1], &c, 1);
        for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
    REQUIRE(pidfd.valid());
    CHECK(c == 'y');

    auto creds = pidfd_creds(pidfd.get());
    REQUIRE(creds.ok());
    CHECK(creds->uid == ids(status_line(child, "Uid")));
    CHECK(creds->gid == ids(status_line(child, "Gid")));
    CHECK(creds->uid == std::array<std::uint32_t, 4>{21, 22, 23, 24});
    CHECK(creds->gid == std::array<std::uint32_t, 4>{11, 12, 13, 14});
    auto caps = effective_capabilities(child);
    REQUIRE(caps.ok());
    CHECK(*caps == cap_eff(child));
    CHECK(*caps == ((1ull << CAP_SETUID) | (1ull << CAP_KILL)));
    CHECK(*effective_capabilities(::getpid()) == cap_eff(::getpid()));

    // Reaped: the pidfd says it is gone, as the caller's reader expects (Errc::not_found).
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    auto gone = pidfd_creds(pidfd.get());
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().code == Errc::not_found);
    CHECK(effective_capabilities(child).error().code == Errc::not_found);
}

TEST_CASE("pidfd credentials: a leader that exited while its threads live no longer reads its mnt link") {
    pidns::testing::ZombieLeader z(0, 1);
    const std::string dir = "/proc/" + std::to_string(z.tgid()) + "/ns";
    const Fd ns(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(ns.valid());
    CHECK_FALSE(read_ns_link_at(ns.get(), "mnt").ok());
    // A live process's does (the control).
    const std::string self = "/proc/" + std::to_string(::getpid()) + "/ns";
    const Fd own(::open(self.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    CHECK(read_ns_link_at(own.get(), "mnt").ok());
}
