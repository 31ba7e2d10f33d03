// A process whose main thread exited (pthread_exit()) while its other threads live, as the real
// pidnsd serves it: found at start, by events and after SIGHUP; its namespaces listed; its threads
// answered by GetProcess and translated both ways as the kernel does; gone with its last thread.
#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "harness.h"
#include "support/nstree.h"
#include "support/zombie_leader.h"

using namespace pidns::harness;
using namespace pidns::testing;
using namespace std::chrono_literals;

namespace {

bool listed(Client& c, const std::string& type, std::uint64_t inode) {
    const auto all = c.ListNamespaces(type);
    return std::any_of(all.begin(), all.end(), [&](const auto& e) { return std::get<1>(e) == inode; });
}

std::vector<std::uint32_t> as_u32(const std::vector<pid_t>& v) { return {v.begin(), v.end()}; }

// What pidnsd must answer about the zombie-leader process `z` (pid namespace id `pidns`, net
// namespace id `netns`), against the kernel: its pid namespace (GetNamespace by inode and id,
// ListNamespaces, ListProcesses), GetProcess of each live thread (never AccessDenied), and
// TranslatePid of each thread both ways, equal to NSpid and the NS_GET_PID_* ioctls.
void check_served(Client& c, const ZombieLeader& z, std::uint64_t pidns, std::uint64_t netns) {
    const pid_t tgid = z.tgid();
    const auto tids = z.tids();
    REQUIRE_FALSE(tids.empty());
    const auto pid_inode = ZombieLeader::thread_ns_inode(tgid, tids.front(), "pid");
    const auto net_inode = ZombieLeader::thread_ns_inode(tgid, tids.front(), "net");
    auto e = c.GetNamespace(pid_inode);
    CHECK(std::get<0>(e) == pidns);
    CHECK(std::get<2>(e) == "pid");
    CHECK(std::get<6>(e) == static_cast<std::uint32_t>(tgid));  // its init: the zombie leader, pid 1 there
    CHECK(std::get<7>(e) == 1u);
    CHECK(std::get<0>(c.GetNamespace(pidns)) == pidns);
    CHECK(std::get<0>(c.GetNamespace(net_inode)) == netns);
    CHECK(listed(c, "pid", pid_inode));
    CHECK(listed(c, "net", net_inode));
    CHECK(c.ListProcesses(pidns) == std::vector<std::uint32_t>{static_cast<std::uint32_t>(tgid)});
    CHECK(c.ListProcesses(netns) == std::vector<std::uint32_t>{static_cast<std::uint32_t>(tgid)});
    auto own_fd = open_path("/proc/self/ns/pid");
    auto ns_fd = open_path(ZombieLeader::task_path(tgid, tids.front(), "ns/pid"));
    for (pid_t tid : tids) {
        INFO("thread " << tid);
        const auto chain = ZombieLeader::nspid_of(ZombieLeader::task_path(tgid, tid, "status"));
        REQUIRE(chain.size() == 2);
        const auto p = c.GetProcess(static_cast<std::uint32_t>(tid));
        CHECK(std::get<0>(p) == as_u32(chain));
        CHECK(std::get<1>(p) == std::vector<std::uint32_t>{static_cast<std::uint32_t>(tgid), 1u});
        CHECK(std::get<4>(p).at("pid") == pidns);
        CHECK(std::get<4>(p).at("net") == netns);
        const auto local = static_cast<std::uint32_t>(chain.back());
        CHECK(oracle_ioctl_translate(tid, own_fd.get(), ns_fd.get()) == std::optional<pid_t>(chain.back()));
        CHECK(oracle_ioctl_translate(chain.back(), ns_fd.get(), own_fd.get()) == std::optional<pid_t>(tid));
        CHECK(c.TranslatePid(static_cast<std::uint32_t>(tid), 0, pidns) == local);
        CHECK(c.TranslatePid(local, pidns, 0) == static_cast<std::uint32_t>(tid));
        CHECK(c.TranslatePids({static_cast<std::uint32_t>(tid), 0}, 0, pid_inode) == std::vector<std::uint32_t>{local, 0});
    }
    CHECK(c.TranslatePid(1, pidns, 0) == static_cast<std::uint32_t>(tgid));
}

// The last thread ends: the process and its namespaces go (NamespaceRemoved), while /proc still
// shows the unreaped zombie leader.
void check_last_exit(Client& c, ZombieLeader& z, std::uint64_t pidns, std::uint64_t netns) {
    const pid_t tgid = z.tgid();
    const auto pid_inode = ZombieLeader::thread_ns_inode(tgid, z.tids().front(), "pid");
    const auto tids = z.tids();
    for (std::size_t i = 0; i + 1 < tids.size(); ++i) {
        z.end_thread(tids[i]);
        CHECK(eventually([&] {
            return error_of([&] { c.GetProcess(static_cast<std::uint32_t>(tids[i])); }) == "org.pidns.Error.NoSuchProcess";
        }));
        check_served(c, z, pidns, netns);
    }
    const pid_t last = tids.back();
    z.end_thread(last);
    CHECK(ZombieLeader::state_of("/proc/" + std::to_string(tgid) + "/stat") == 'Z');
    CHECK(c.wait_signal(false, pidns));
    CHECK(c.wait_signal(false, netns));
    CHECK(error_of([&] { c.GetNamespace(pid_inode); }) == "org.pidns.Error.NoSuchNamespace");
    CHECK(error_of([&] { c.GetNamespace(pidns); }) == "org.pidns.Error.NoSuchNamespace");
    CHECK_FALSE(listed(c, "pid", pid_inode));
    CHECK(error_of([&] { c.GetProcess(static_cast<std::uint32_t>(last)); }) == "org.pidns.Error.NoSuchProcess");
    CHECK(error_of([&] { c.TranslatePid(static_cast<std::uint32_t>(last), 0, 0); }) == "org.pidns.Error.NoSuchProcess");
    // The zombie leader alone is no process to show (nor "unreadable").
    CHECK(error_of([&] { c.GetProcess(static_cast<std::uint32_t>(tgid)); }) == "org.pidns.Error.NoSuchProcess");
    z.reap();
}

}  // namespace

TEST_CASE("zombie leader: found at start and after SIGHUP, threads answered and translated, gone with its last thread") {
    PrivateBus bus;
    ZombieLeader z(CLONE_NEWPID | CLONE_NEWNET, 2);
    Daemon d(bus);
    Client c(bus.address());
    c.Subscribe();
    const pid_t tid = z.tids().front();
    const auto pidns = expected_ns_id(tid, "pid");
    const auto netns = expected_ns_id(tid, "net");
    check_served(c, z, pidns, netns);
    d.signal(SIGHUP);
    REQUIRE(d.wait_log("rescan (SIGHUP)"));
    check_served(c, z, pidns, netns);
    check_last_exit(c, z, pidns, netns);
}

TEST_CASE("zombie leader: found by events, and GetProcess of its thread at once is answered, not AccessDenied") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    c.Subscribe();
    SECTION("by events: listed without being asked about") {
        ZombieLeader z(CLONE_NEWPID | CLONE_NEWNET, 2);
        const auto pid_inode = ZombieLeader::thread_ns_inode(z.tgid(), z.tids().front(), "pid");
        CHECK(eventually([&] { return listed(c, "pid", pid_inode); }));
        const pid_t tid = z.tids().front();
        const auto pidns = expected_ns_id(tid, "pid");
        CHECK(c.wait_signal(true, pidns));
        check_served(c, z, pidns, expected_ns_id(tid, "net"));
        check_last_exit(c, z, pidns, expected_ns_id(tid, "net"));
    }
    SECTION("asked at once: GetProcess and TranslatePid of a live thread") {
        ZombieLeader z(CLONE_NEWPID | CLONE_NEWNET, 1);
        const pid_t tid = z.tids().front();
        const auto p = c.GetProcess(static_cast<std::uint32_t>(tid));
        CHECK(std::get<0>(p) == as_u32(ZombieLeader::nspid_of(ZombieLeader::task_path(z.tgid(), tid, "status"))));
        CHECK(std::get<4>(p).at("pid") == expected_ns_id(tid, "pid"));
        CHECK(c.TranslatePid(static_cast<std::uint32_t>(tid), 0, 0) == static_cast<std::uint32_t>(tid));
        check_served(c, z, expected_ns_id(tid, "pid"), expected_ns_id(tid, "net"));
        check_last_exit(c, z, expected_ns_id(tid, "pid"), expected_ns_id(tid, "net"));
    }
}
