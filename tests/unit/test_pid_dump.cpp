// DumpPidTree's pure parts: the status parse, ordering parent first, the entries' fields and flags, dangling parents.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <string>

#include "pid_dump.h"

using namespace pidns;

namespace {

std::string status_text(int tgid, int pid, int ppid, const std::string& state, const std::string& nspid,
                        const std::string& nstgid, const std::string& nspgid, const std::string& nssid) {
    return "Name:\tx\nUmask:\t0022\nState:\t" + state + "\nTgid:\t" + std::to_string(tgid) + "\nNgid:\t0\nPid:\t" +
           std::to_string(pid) + "\nPPid:\t" + std::to_string(ppid) +
           "\nTracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nNStgid:\t" + nstgid +
           "\nNSpid:\t" + nspid + "\nNSpgid:\t" + nspgid + "\nNSsid:\t" + nssid +
           "\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
}

// A task at pidnsd's level 0 .. n: chains given outermost first.
DumpTask task(int tid, int tgid, int ppid, std::vector<std::int32_t> nspid, std::vector<std::int32_t> nstgid,
              std::vector<std::int32_t> nspgid, std::vector<std::int32_t> nssid, NsId pidns, NsId pfc = 0,
              char state = 'S') {
    DumpTask t;
    t.tid = tid;
    t.tgid = tgid;
    t.ppid = ppid;
    t.state = state;
    t.nspid = std::move(nspid);
    t.nstgid = std::move(nstgid);
    t.nspgid = std::move(nspgid);
    t.nssid = std::move(nssid);
    t.pidns = pidns;
    t.pid_for_children = pfc ? pfc : pidns;
    return t;
}

}  // namespace

TEST_CASE("dump: status gives the chains, ids and the state letter, and a missing State is an error") {
    auto t = parse_dump_status(status_text(300, 301, 200, "Z (zombie)", "301 5 1", "300 4 1", "300 4 1", "200 0 0"));
    REQUIRE(t.ok());
    CHECK(t->tid == 301);
    CHECK(t->tgid == 300);
    CHECK(t->ppid == 200);
    CHECK(t->state == 'Z');
    CHECK(t->zombie());
    CHECK(t->nspid == std::vector<std::int32_t>{301, 5, 1});
    CHECK(t->nssid == std::vector<std::int32_t>{200, 0, 0});
    CHECK(t->uid[1] == 1000);
    CHECK(t->gid[0] == 100);
    auto live = parse_dump_status(status_text(1, 1, 0, "S (sleeping)", "1", "1", "1", "1"));
    REQUIRE(live.ok());
    CHECK_FALSE(live->zombie());
    std::string no_state = status_text(1, 1, 0, "S", "1", "1", "1", "1");
    no_state.erase(no_state.find("State:"), no_state.find('\n', no_state.find("State:")) - no_state.find("State:") + 1);
    auto bad = parse_dump_status(no_state);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::parse);
    CHECK(bad.error().message.find("State") != std::string::npos);
    CHECK_FALSE(parse_dump_status(status_text(1, 1, 0, "? (not a state)", "1", "1", "1", "1")).ok());
    // A task stopped under ptrace: the kernel's only lower-case state (fs/proc/array.c). It
    // failed a dump of any namespace holding a traced task ("Failed: parse ... 'State'").
    auto traced = parse_dump_status(status_text(1, 1, 0, "t (tracing stop)", "1", "1", "1", "1"));
    REQUIRE(traced.ok());
    CHECK(traced->state == 't');
    CHECK_FALSE(traced->zombie());
}

TEST_CASE("dump: a zombie's pid namespace from its parent: same depth is the parent's, one deeper its pid_for_children") {
    DumpTask parent = task(100, 100, 1, {100, 7}, {100, 7}, {100, 7}, {100, 7}, 11, 12);
    DumpTask same = task(101, 101, 100, {101, 8}, {101, 8}, {100, 7}, {100, 7}, 0, 0, 'Z');
    DumpTask deeper = task(102, 102, 100, {102, 9, 1}, {102, 9, 1}, {102, 9, 1}, {102, 9, 1}, 0, 0, 'Z');
    DumpTask far = task(103, 103, 100, {103, 10, 2, 1}, {103, 10, 2, 1}, {103, 10, 2, 1}, {103, 10, 2, 1}, 0, 0, 'Z');
    CHECK(pidns_from_parent(same, parent) == 11);
    CHECK(pidns_from_parent(deeper, parent) == 12);
    CHECK(pidns_from_parent(far, parent) == 0);
}

TEST_CASE("dump: entries come parent first, threads after their leader, with pids from the dumped namespace down") {
    // pidnsd's level 0; the dumped namespace R (id 10) at level 1; N (id 20) nested at level 2.
    // init 1 (host 100) -> 2 (host 101, session and group leader) -> 3 (host 102, init of N)
    // -> 2 in N (host 103); 101 has a thread 104. Given in scrambled order.
    std::vector<DumpTask> tasks{
        task(103, 103, 102, {103, 4, 2}, {103, 4, 2}, {101, 2, 0}, {101, 2, 0}, 20),
        task(104, 101, 100, {104, 5}, {101, 2}, {101, 2}, {101, 2}, 10),
        task(102, 102, 101, {102, 3, 1}, {102, 3, 1}, {101, 2, 0}, {101, 2, 0}, 20),
        task(101, 101, 100, {101, 2}, {101, 2}, {101, 2}, {101, 2}, 10, 20),
        task(100, 100, 50, {100, 1}, {100, 1}, {100, 1}, {100, 1}, 10),
    };
    const auto e = order_dump(tasks, 1, 0);
    REQUIRE(e.size() == 5);
    std::vector<std::uint32_t> order;
    for (const auto& x : e) order.push_back(x.rpid);
    CHECK(order == std::vector<std::uint32_t>{100, 101, 104, 102, 103});
    CHECK(e[0].vpids == std::vector<std::uint32_t>{1});
    CHECK(e[0].vppid == 0);      // its parent is outside
    CHECK(e[0].flags == 0);      // the subtree's init: not entered from outside
    CHECK(e[1].vppid == 1);
    CHECK(e[1].flags == kDumpUnsharedPid);
    CHECK(e[2].flags == kDumpThread);
    CHECK(e[2].vtgid == 2);
    CHECK(e[2].vppid == 1);      // a thread's parent is its group's
    CHECK(e[3].depth == 1);
    CHECK(e[3].vpids == std::vector<std::uint32_t>{3, 1});
    CHECK(e[3].vppid == 2);
    CHECK(e[3].pidns == 20);
    CHECK(e[4].vpids == std::vector<std::uint32_t>{4, 2});
    CHECK(e[4].vppid == 3);
    CHECK(e[4].vpgid == 2);
    CHECK(e[4].vsid == 2);
    // Seen from the dumped namespace's own level, rpid is the pid there.
    const auto inner = order_dump(tasks, 1, 1);
    CHECK(inner[0].rpid == 1);
    CHECK(inner[4].rpid == 4);
}

TEST_CASE("dump: a task whose parent is outside and is not the init is marked entered-from-outside, zombies are marked") {
    std::vector<DumpTask> tasks{
        task(100, 100, 50, {100, 1}, {100, 1}, {100, 1}, {100, 1}, 10),
        task(200, 200, 60, {200, 7}, {200, 7}, {60, 0}, {60, 0}, 10),  // forked by a setns()ed task outside
        task(201, 201, 100, {201, 8}, {201, 8}, {100, 1}, {100, 1}, 10, 0, 'Z'),
    };
    tasks[2].pid_for_children = 0;  // unreadable for a zombie: no unshared-pid mark
    const auto e = order_dump(tasks, 1, 0);
    REQUIRE(e.size() == 3);
    std::map<std::uint32_t, std::uint32_t> flags;
    for (const auto& x : e) flags[x.rpid] = x.flags;
    CHECK(flags[100] == 0);
    CHECK(flags[200] == kDumpEnteredFromOutside);
    CHECK(flags[201] == kDumpZombie);
    // Roots in pid order at the same depth: the init (1) before the entered task (7).
    CHECK(e[0].rpid == 100);
}

TEST_CASE("dump: dangling tasks are those whose parent is neither read nor known to be outside") {
    std::vector<DumpTask> tasks{
        task(100, 100, 50, {100, 1}, {100, 1}, {100, 1}, {100, 1}, 10),
        task(101, 101, 100, {101, 2}, {101, 2}, {100, 1}, {100, 1}, 10),
        task(102, 102, 99, {102, 3}, {102, 3}, {100, 1}, {100, 1}, 10),  // parent 99 not read
        task(103, 103, 60, {103, 4}, {103, 4}, {100, 1}, {100, 1}, 10),  // parent 60 outside
    };
    auto outside = [](std::int32_t ppid) { return ppid == 60; };
    CHECK(dangling_tasks(tasks, 1, outside) == std::vector<std::int32_t>{102});
    tasks.push_back(task(99, 99, 100, {99, 5}, {99, 5}, {100, 1}, {100, 1}, 10));
    CHECK(dangling_tasks(tasks, 1, outside).empty());
}
