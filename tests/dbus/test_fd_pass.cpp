// The BPF fd pass in the real pidnsd: its rescans find a namespace held only by an fd, it says
// which way it finds them (KernelInterfaces), and once its iterator is loaded it keeps neither
// CAP_PERFMON nor, where starting a pass needs none, CAP_BPF, in any thread.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <string>

#include "harness.h"
#include "support/nstree.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
namespace t = pidns::testing;

namespace {

constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

// The capability sets of thread `tid` of `pid`: CapInh, CapPrm, CapEff.
std::array<std::uint64_t, 3> cap_sets(pid_t pid, const std::string& tid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + tid + "/status");
    std::array<std::uint64_t, 3> out{};
    const char* keys[] = {"CapInh:", "CapPrm:", "CapEff:"};
    for (std::string line; std::getline(f, line);)
        for (std::size_t i = 0; i < 3; ++i)
            if (line.rfind(keys[i], 0) == 0) out[i] = std::stoull(line.substr(std::strlen(keys[i])), nullptr, 16);
    return out;
}

std::vector<std::string> threads_of(pid_t pid) {
    std::vector<std::string> out;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
    REQUIRE(d != nullptr);
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

bool bpf_expected() {
    const auto& a = extra_daemon_args();
    return std::find(a.begin(), a.end(), "--no-bpf") == a.end();
}

// Whether the running kernel lets a loaded iterator start without CAP_BPF (Linux 5.19 and later).
bool pass_needs_no_cap_bpf() {
    utsname u{};
    REQUIRE(::uname(&u) == 0);
    int major = 0, minor = 0;
    REQUIRE(std::sscanf(u.release, "%d.%d", &major, &minor) == 2);
    return major > 5 || (major == 5 && minor >= 19);
}

}  // namespace

TEST_CASE("fd pass: pidnsd says how it finds namespace fds, drops what only the BPF load needed, and rescans find an fd-held namespace") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());
    const auto interfaces = root.GetStatistics().at("KernelInterfaces").get<std::string>();
    INFO("KernelInterfaces: " << interfaces << "\npidnsd's log:\n" << d.log());
    const bool bpf = bpf_expected();
    CHECK((interfaces.find("bpf-fd-pass") != std::string::npos) == bpf);
    CHECK(d.log().find(bpf ? "namespace fds: found by a BPF task_file iterator"
                           : "namespace fds: every /proc/PID/fd listed in each rescan") != std::string::npos);

    // Every thread: no CAP_PERFMON; no CAP_BPF unless starting a pass needs it on this kernel.
    const bool bpf_dropped = !bpf || pass_needs_no_cap_bpf();
    for (const auto& tid : threads_of(d.pid())) {
        INFO("thread " << tid);
        for (auto set : cap_sets(d.pid(), tid)) {
            CHECK((set & (1ULL << kCapPerfmon)) == 0);
            CHECK(((set & (1ULL << kCapBpf)) == 0) == bpf_dropped);
        }
    }

    // A net namespace held only by an fd of a running process. A rescan builds a new index from
    // what it reads alone: found after one, the rescan found it.
    t::ProcTree tree;
    const auto held = t::hold_ns_by_fd(tree);
    const auto rescans = stat_of(root, "Rescans");
    d.signal(SIGHUP);
    REQUIRE(eventually([&] { return stat_of(root, "Rescans") > rescans && !root.GetStatistics().at("RescanInProgress").get<bool>(); },
                       patience(30s), 10ms, true));
    bool found = false;
    for (const auto& ns : root.list_namespaces())
        if (ns.inode == static_cast<std::uint64_t>(held.inode) && ns.type == "net")
            for (const auto& h : root.describe_namespace(ns.id).holders) found = found || h.kind == "fd";
    CHECK(found);
    CHECK(stat_of(root, "FdPassFailures") == 0);
    CHECK(stat_of(root, "RescanFailures") == 0);
}
