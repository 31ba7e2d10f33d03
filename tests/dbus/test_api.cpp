// org.pidns.Manager1 end to end: a private dbus-daemon with the project's policy, the real pidnsd,
// real clients (busctl, dbus-send, the generated proxy) and real namespace trees. The kernel
// (NSpid lines, nsfs ioctls, /proc links) is the oracle for every answer.
#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "harness.h"
#include "support/lsns_oracle.h"
#include "support/task_state.h"
#include "support/nstree.h"

using namespace pidns::harness;
using namespace pidns::testing;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kTypes = {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"};

// The id pidnsd must give that namespace: the kernel's, or the one it assigned under --assume-kernel.
std::uint64_t ns_id(pid_t pid, const char* type) { return expected_ns_id(pid, type); }
std::uint64_t ns_inode(pid_t pid, const char* type) { return oracle_ns_inode(pid, type); }

std::vector<std::uint32_t> status_chain(pid_t tid, const std::string& key) {
    std::ifstream f("/proc/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        std::vector<std::uint32_t> out;
        std::istringstream ss(line.substr(key.size() + 1));
        long v;
        while (ss >> v) out.push_back(static_cast<std::uint32_t>(v));
        return out;
    }
    return {};
}


pid_t unused_pid() {
    for (pid_t p = 32000; p > 1000; --p)
        if (kill(p, 0) != 0 && errno == ESRCH) return p;
    throw std::runtime_error("no unused pid");
}

std::string str(std::uint64_t v) { return std::to_string(v); }

using Entry = sdbus::Struct<std::uint64_t, std::uint64_t, std::string, std::uint64_t, std::uint64_t, std::uint32_t,
                            std::uint32_t, std::uint32_t, std::uint32_t>;

}  // namespace

TEST_CASE("properties: Version, counts, EventSource and KernelNamespaceIds answer once READY is reached") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    CHECK(c.Version() == PIDNS_VERSION);
    CHECK(c.EventSource() == "proc-connector");
    CHECK(c.KernelNamespaceIds() == kernel_ids_expected());
    // Counts against listings of the whole host: another process may fork or exit between the two
    // calls, so a pair counts only when the count read again after the listing is unchanged.
    auto agree = [](auto count, auto listed) {
        for (int attempt = 0; attempt < 20; ++attempt) {
            const auto before = count();
            const auto n = listed();
            if (count() != before) continue;  // the host changed meanwhile: again
            INFO("count " << before << ", listing " << n);
            return static_cast<std::size_t>(before) == n;
        }
        return false;
    };
    CHECK(agree([&] { return c.Namespaces(); }, [&] { return c.ListNamespaces("").size(); }));
    // Every process is in the host pid namespace or below.
    CHECK(agree([&] { return c.Processes(); }, [&] { return c.ListProcesses(0).size(); }));
    CHECK(busctl_property(bus.address(), "Version") == PIDNS_VERSION);
    CHECK(busctl_property(bus.address(), "EventSource") == "proc-connector");
    CHECK(busctl_property(bus.address(), "KernelNamespaceIds") == kernel_ids_expected());
    // Which kernel interfaces it uses: all this kernel has, or those of --assume-kernel's version.
    const auto stats = c.GetStatistics();
    const auto interfaces = stats.at("KernelInterfaces").get<std::string>();
    INFO("KernelInterfaces: " << interfaces);
    if (const auto k = assumed_kernel()) {
        CHECK(stats.at("KernelMode").get<std::string>() == "assume " + k->str());
        CHECK((interfaces.find("event-filter") != std::string::npos) == pidns::has_event_filter(*k));
        CHECK((interfaces.find("pid-ioctls") != std::string::npos) == !(*k < pidns::KernelVersion{6, 11}));
        CHECK((interfaces.find("pidfd-info") != std::string::npos) == !(*k < pidns::KernelVersion{6, 13}));
    } else {
        CHECK(stats.at("KernelMode").get<std::string>() == "native");
        CHECK(interfaces.find("pid-ioctls") != std::string::npos);  // Linux 6.18 has them all
        CHECK(interfaces.find("event-filter") != std::string::npos);
        CHECK(interfaces.find("pidfd-info") != std::string::npos);
    }
    CHECK((interfaces.find("ns-get-id") != std::string::npos) == kernel_ids_expected());
    bool ready = false;
    for (const auto& n : d.notifications()) ready = ready || n.find("READY=1") != std::string::npos;
    CHECK(ready);
}

TEST_CASE("TranslatePid and TranslatePids on seed 000's tree equal NSpid and the nsfs ioctls, by id and by inode") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    Client c(bus.address());
    // The three pid namespaces: host (level 0), t2's (1), t4's (2).
    const std::vector<pid_t> level_rep = {getpid(), t.t2, t.t4};
    std::vector<std::uint64_t> ids, inodes;
    std::vector<UniqueFd> fds;
    for (pid_t p : level_rep) {
        ids.push_back(ns_id(p, "pid"));
        inodes.push_back(ns_inode(p, "pid"));
        fds.push_back(open_ns(p, "pid"));
    }
    int checked = 0;
    for (pid_t task : {t.t1, t.t2, t.t3, t.t4, t.t5}) {
        const auto nspid = oracle_nspid(task);
        for (std::size_t from = 0; from < nspid.size(); ++from) {
            for (std::size_t to = 0; to < 3; ++to) {
                const std::uint32_t expect = to < nspid.size() ? static_cast<std::uint32_t>(nspid[to]) : 0;
                const auto ioctl = oracle_ioctl_translate(nspid[from], fds[from].get(), fds[to].get());
                REQUIRE(ioctl.has_value());
                CHECK(static_cast<std::uint32_t>(*ioctl) == expect);
                const std::uint64_t from_ref = from == 0 ? 0 : ids[from];
                INFO("task " << task << " from level " << from << " to level " << to);
                CHECK(c.TranslatePid(nspid[from], from_ref, ids[to]) == expect);
                CHECK(c.TranslatePid(nspid[from], inodes[from], inodes[to]) == expect);
                ++checked;
            }
        }
    }
    CHECK(checked == 33);  // t1: 3 cells, t2 and t3: 6 each, t4 and t5: 9 each

    // busctl agrees with the proxy.
    auto j = busctl_call(bus.address(), "TranslatePid", "utt", {str(t.t5), "0", str(inodes[2])});
    CHECK(j.at(0).get<std::uint32_t>() == static_cast<std::uint32_t>(oracle_nspid(t.t5).back()));

    // TranslatePids: element-wise, 0 for absent, out-of-range and untranslatable pids.
    const pid_t gone = unused_pid();
    std::vector<std::uint32_t> batch = {static_cast<std::uint32_t>(t.t1), static_cast<std::uint32_t>(t.t2),
                                        static_cast<std::uint32_t>(t.t3), static_cast<std::uint32_t>(t.t4),
                                        static_cast<std::uint32_t>(t.t5), 0u, static_cast<std::uint32_t>(gone),
                                        0x80000000u, 0xffffffffu};
    auto got = c.TranslatePids(batch, 0, ids[1]);
    REQUIRE(got.size() == batch.size());
    for (std::size_t i = 0; i < 5; ++i) {
        const auto chain = oracle_nspid(static_cast<pid_t>(batch[i]));
        CHECK(got[i] == (chain.size() > 1 ? static_cast<std::uint32_t>(chain[1]) : 0u));
    }
    CHECK(got[5] == 0);
    CHECK(got[6] == 0);
    CHECK(got[7] == 0);
    CHECK(got[8] == 0);
    // Round trip of the whole batch back to the host.
    auto back = c.TranslatePids(got, ids[1], 0);
    for (std::size_t i = 0; i < 5; ++i)
        if (got[i]) CHECK(back[i] == batch[i]);
}

TEST_CASE("ListNamespaces, GetNamespace and ListProcesses agree with the kernel and lsns") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    const pid_t netns_holder = tree.spawn(0, CLONE_NEWNET | CLONE_NEWUSER);
    Client c(bus.address());
    auto all = c.ListNamespaces("");
    std::map<std::uint64_t, std::uint64_t> inode_of;  // id -> inode
    for (const auto& e : all) inode_of[std::get<0>(e)] = std::get<1>(e);
    int checked = 0;
    for (const auto& e : all) {
        const auto id = std::get<0>(e);
        const auto inode = std::get<1>(e);
        const auto& type = std::get<2>(e);
        const auto parent = std::get<3>(e);
        const auto owner = std::get<4>(e);
        const auto level = std::get<5>(e);
        const auto init_pid = std::get<6>(e);
        const auto nprocs = std::get<7>(e);
        INFO(type << " namespace " << id);
        auto procs = c.ListProcesses(id);
        CHECK(procs.size() == nprocs);
        CHECK(std::is_sorted(procs.begin(), procs.end()));
        auto one = c.GetNamespace(id);
        CHECK(one == e);
        CHECK(c.GetNamespace(inode) == e);  // by inode
        if (procs.empty()) continue;
        // The kernel's view of the namespace through its first process.
        const pid_t p = static_cast<pid_t>(procs.front());
        auto fd = open_ns(p, type.c_str());
        CHECK(ns_id(p, type.c_str()) == id);
        CHECK(oracle_fd_inode(fd.get()) == inode);
        if (type != "pid") CHECK(init_pid == procs.front());  // lowest pid, as lsns's PID column
        if (type == "pid" || type == "user") {
            auto pi = oracle_parent_inode(fd.get());
            if (parent != 0) {
                REQUIRE(pi.has_value());
                CHECK(*pi == inode_of.at(parent));
            } else {
                CHECK(level == 0);
            }
        }
        auto oi = oracle_owner_inode(fd.get());
        if (owner != 0) {
            REQUIRE(oi.has_value());
            CHECK(*oi == inode_of.at(owner));
        }
        // Every listed process really is in it.
        for (auto q : procs)
            if (kill(static_cast<pid_t>(q), 0) == 0) CHECK(ns_inode(static_cast<pid_t>(q), type.c_str()) == inode);
        ++checked;
    }
    CHECK(checked >= 10);

    // seed 000's pid namespaces: levels, init pids, members exactly.
    auto p2 = c.GetNamespace(ns_id(t.t2, "pid"));
    auto p4 = c.GetNamespace(ns_inode(t.t4, "pid"));
    CHECK(std::get<5>(p2) == 1u);
    CHECK(std::get<5>(p4) == 2u);
    CHECK(std::get<6>(p2) == static_cast<std::uint32_t>(t.t2));
    CHECK(std::get<6>(p4) == static_cast<std::uint32_t>(t.t4));
    CHECK(std::get<3>(p4) == std::get<0>(p2));
    auto sorted = [](std::vector<std::uint32_t> v) { std::sort(v.begin(), v.end()); return v; };
    CHECK(c.ListProcesses(std::get<0>(p2)) == sorted({static_cast<std::uint32_t>(t.t2), static_cast<std::uint32_t>(t.t3)}));
    CHECK(c.ListProcesses(std::get<0>(p4)) == sorted({static_cast<std::uint32_t>(t.t4), static_cast<std::uint32_t>(t.t5)}));
    // A user namespace made by root: owner_uid 0, level 1; its net namespace is owned by it.
    auto u = c.GetNamespace(ns_id(netns_holder, "user"));
    CHECK(std::get<5>(u) == 1u);
    CHECK(std::get<8>(u) == 0u);
    auto n = c.GetNamespace(ns_id(netns_holder, "net"));
    CHECK(std::get<4>(n) == std::get<0>(u));
    CHECK(std::get<6>(n) == static_cast<std::uint32_t>(netns_holder));

    // The type filter.
    for (const auto& type : kTypes) {
        auto only = c.ListNamespaces(type);
        CHECK(!only.empty());
        for (const auto& e : only) CHECK(std::get<2>(e) == type);
    }

    // lsns as an outside oracle: each namespace it lists is listed with the same inode, type and lowest pid.
    auto lsns = pidns::testing::lsns_listing().at("namespaces");
    all = c.ListNamespaces("");
    std::map<std::uint64_t, Entry> by_inode;
    for (const auto& e : all) by_inode.emplace(std::get<1>(e), e);
    int compared = 0;
    for (const auto& l : lsns) {
        const auto inode = l.at("ns").get<std::uint64_t>();
        const auto pid = l.at("pid").get<std::uint32_t>();
        if (kill(static_cast<pid_t>(pid), 0) != 0) continue;  // exited since
        if (pidns::testing::exited_unreaped(static_cast<pid_t>(pid))) continue;  // not indexed (pidnsd(8), THE INDEX)
        INFO("lsns " << l.dump());
        auto it = by_inode.find(inode);
        REQUIRE(it != by_inode.end());
        CHECK(std::get<2>(it->second) == l.at("type").get<std::string>());
        if (std::get<2>(it->second) != "pid") CHECK(std::get<6>(it->second) == pid);
        ++compared;
    }
    CHECK(compared >= 12);
}

TEST_CASE("GetProcess equals /proc/PID/status and the ns links for a nested process and a thread") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    auto t = make_seed000_tree(tree);
    const pid_t tid = tree.spawn_thread(t.t5);
    Client c(bus.address());
    for (pid_t task : {t.t1, t.t3, t.t5, tid}) {
        INFO("task " << task);
        auto [nspid, nstgid, nspgid, nssid, nsmap] = c.GetProcess(static_cast<std::uint32_t>(task));
        CHECK(nspid == status_chain(task, "NSpid"));
        CHECK(nstgid == status_chain(task, "NStgid"));
        CHECK(nspgid == status_chain(task, "NSpgid"));
        CHECK(nssid == status_chain(task, "NSsid"));
        REQUIRE(nsmap.size() == 8);
        for (const auto& type : kTypes) CHECK(nsmap.at(type) == ns_id(task, type.c_str()));
    }
    // A thread id translates too.
    const auto chain = oracle_nspid(tid);
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(tid), 0, ns_id(t.t5, "pid")) == static_cast<std::uint32_t>(chain.back()));
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(chain.back()), ns_inode(t.t5, "pid"), 0) == static_cast<std::uint32_t>(tid));
    // busctl's view of the same call.
    auto j = busctl_call(bus.address(), "GetProcess", "u", {str(static_cast<std::uint64_t>(t.t5))});
    CHECK(j.at(0).get<std::vector<std::uint32_t>>() == status_chain(t.t5, "NSpid"));
}

TEST_CASE("every error has its name and says what to do next") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const pid_t a = tree.spawn(0, CLONE_NEWNET);
    const std::string A = bus.address();
    const std::string net = str(ns_id(a, "net"));
    const std::string gone = str(static_cast<std::uint64_t>(unused_pid()));
    struct Case {
        std::string method;
        std::vector<std::string> args;
        std::string error;
    };
    const std::vector<Case> cases = {
        {"TranslatePid", {"uint32:0", "uint64:0", "uint64:0"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"TranslatePid", {"uint32:2147483648", "uint64:0", "uint64:0"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"GetProcess", {"uint32:0"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"GetProcess", {"uint32:4294967295"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"ListNamespaces", {"string:bogus"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"ListNamespaces", {"string:PID"}, "org.freedesktop.DBus.Error.InvalidArgs"},
        {"GetNamespace", {"uint64:123456789"}, "org.pidns.Error.NoSuchNamespace"},
        {"ListProcesses", {"uint64:18446744073709551615"}, "org.pidns.Error.NoSuchNamespace"},
        {"TranslatePid", {"uint32:1", "uint64:987654321", "uint64:0"}, "org.pidns.Error.NoSuchNamespace"},
        {"TranslatePid", {"uint32:1", "uint64:" + net, "uint64:0"}, "org.pidns.Error.NotPidNamespace"},
        {"TranslatePid", {"uint32:1", "uint64:0", "uint64:" + net}, "org.pidns.Error.NotPidNamespace"},
        {"TranslatePids", {"array:uint32:1", "uint64:" + net, "uint64:0"}, "org.pidns.Error.NotPidNamespace"},
        {"TranslatePid", {"uint32:" + gone, "uint64:0", "uint64:0"}, "org.pidns.Error.NoSuchProcess"},
        {"GetProcess", {"uint32:" + gone}, "org.pidns.Error.NoSuchProcess"},
    };
    for (const auto& k : cases) {
        auto r = dbus_send(A, k.method, k.args);
        INFO(k.method << " " << k.args.at(0) << ": " << r.output);
        CHECK_FALSE(r.ok);
        CHECK(r.error_name == k.error);
        // A next step: every message names something to do or to use.
        const bool actionable = r.output.find("use ") != std::string::npos ||
                                r.output.find("pass ") != std::string::npos ||
                                r.output.find("check ") != std::string::npos ||
                                r.output.find("name a pid namespace") != std::string::npos;
        CHECK(actionable);
    }
    // Too many elements: only the proxy can send 65537 of them.
    Client c(A);
    std::vector<std::uint32_t> huge(65537);
    for (std::size_t i = 0; i < huge.size(); ++i) huge[i] = static_cast<std::uint32_t>(i + 1);  // mostly absent pids
    CHECK(error_of([&] { c.TranslatePids(huge, 0, 0); }) == "org.freedesktop.DBus.Error.InvalidArgs");
    huge.pop_back();
    auto answers = c.TranslatePids(huge, 0, 0);
    REQUIRE(answers.size() == 65536);
    for (std::size_t i = 0; i < answers.size(); ++i)
        if (answers[i] != 0) CHECK(answers[i] == huge[i]);  // in the host namespace a pid translates to itself
    CHECK(answers[static_cast<std::size_t>(getpid()) - 1] == static_cast<std::uint32_t>(getpid()));
    // Malformed calls (wrong signature) are refused by sdbus-c++ and the daemon keeps serving.
    auto wrong = dbus_send(A, "TranslatePid", {"string:1"});
    CHECK_FALSE(wrong.ok);
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(getpid()), 0, 0) == static_cast<std::uint32_t>(getpid()));
    // AmbiguousNamespace needs an id equal to another namespace's inode, which Linux 6.18's ids
    // (small counters) and inodes (~2^32) never produce: covered by tests/unit/test_resolve.cpp.
}

TEST_CASE("NamespaceAdded and NamespaceRemoved follow a namespace's life") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    ProcTree tree;
    {
        // Signals go to subscribers only, about what changes after they subscribed.
        auto wait_indexed = [&](std::uint64_t inode) {
            for (int i = 0; i < 500; ++i) {
                if (error_of([&] { c.GetNamespace(inode); }).empty()) return true;
                std::this_thread::sleep_for(10ms);
            }
            return false;
        };
        Client other(bus.address());
        const pid_t seen = tree.spawn(0, CLONE_NEWNET);
        REQUIRE(wait_indexed(ns_inode(seen, "net")));
        other.Subscribe();
        const pid_t after = tree.spawn(0, CLONE_NEWNET);
        REQUIRE(other.wait_signal(true, ns_id(after, "net")));
        CHECK_FALSE(other.wait_signal(true, ns_id(seen, "net"), 200ms));  // made before it subscribed
        CHECK(c.signals().empty());                                        // c never subscribed
        other.Unsubscribe();
        const pid_t later = tree.spawn(0, CLONE_NEWNET);
        REQUIRE(wait_indexed(ns_inode(later, "net")));
        CHECK_FALSE(other.wait_signal(true, ns_id(later, "net"), 200ms));
        for (pid_t p : {seen, after, later}) tree.kill_agent(p);
    }
    c.Subscribe();
    const pid_t a = tree.spawn(0, CLONE_NEWNET | CLONE_NEWUTS);
    const auto net = ns_id(a, "net");
    const auto uts = ns_id(a, "uts");
    REQUIRE(c.wait_signal(true, net));
    REQUIRE(c.wait_signal(true, uts));
    tree.kill_agent(a);
    REQUIRE(c.wait_signal(false, net));
    REQUIRE(c.wait_signal(false, uts));
    for (const auto& s : c.signals()) {
        if (s.id == net) CHECK(s.type == "net");
        if (s.id == uts) CHECK(s.type == "uts");
    }
    CHECK(error_of([&] { c.GetNamespace(net); }) == "org.pidns.Error.NoSuchNamespace");
}

TEST_CASE("a caller inside a pid namespace gets its own view and cannot name the host's namespaces") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const pid_t init = tree.spawn(0, CLONE_NEWPID);
    const pid_t second = tree.spawn(init, 0);
    const pid_t nested = tree.spawn(second, CLONE_NEWPID);
    const std::vector<std::string> inside = {"nsenter", "-t", std::to_string(init), "-p"};
    const std::string A = bus.address();
    REQUIRE(tree.pid_seen_by(init, second) == 2);

    CHECK(busctl_call(A, "TranslatePid", "utt", {"2", "0", "0"}, inside).at(0) == 2);
    CHECK(busctl_call(A, "TranslatePid", "utt", {"2", "0", str(ns_inode(nested, "pid"))}, inside).at(0) == 0);
    CHECK(busctl_call(A, "TranslatePid", "utt", {"1", str(ns_id(nested, "pid")), "0"}, inside).at(0) ==
          static_cast<std::uint32_t>(tree.pid_seen_by(init, nested)));
    auto gp = busctl_call(A, "GetProcess", "u", {"2"}, inside);
    CHECK(gp.at(0) == std::vector<std::uint32_t>{2});
    auto gpn = busctl_call(A, "GetProcess", "u", {str(static_cast<std::uint64_t>(tree.pid_seen_by(init, nested)))}, inside);
    CHECK(gpn.at(0) == std::vector<std::uint32_t>{static_cast<std::uint32_t>(tree.pid_seen_by(init, nested)), 1});

    // Only its subtree of pid namespaces, its own at level 0 with no parent.
    auto pidns = busctl_call(A, "ListNamespaces", "s", {"pid"}, inside).at(0);
    REQUIRE(pidns.size() == 2);
    CHECK(pidns.at(0).at(0) == ns_id(init, "pid"));
    CHECK(pidns.at(0).at(3) == 0);   // parent: the host's, not visible
    CHECK(pidns.at(0).at(5) == 0);   // level
    CHECK(pidns.at(0).at(6) == 1);   // init pid in the caller's view
    CHECK(pidns.at(1).at(0) == ns_id(nested, "pid"));
    CHECK(pidns.at(1).at(3) == ns_id(init, "pid"));
    CHECK(pidns.at(1).at(5) == 1);
    CHECK(pidns.at(1).at(6) == static_cast<std::uint32_t>(tree.pid_seen_by(init, nested)));
    auto mine = busctl_call(A, "GetNamespace", "t", {"0"}, inside).at(0);
    CHECK(mine.at(0) == ns_id(init, "pid"));

    // The processes: init, second, nested and the busctl making the call; nothing else.
    auto procs = busctl_call(A, "ListProcesses", "t", {"0"}, inside).at(0).get<std::vector<std::uint32_t>>();
    CHECK(procs.size() == 3);  // init, second, busctl (nested lives in its own pid namespace)
    CHECK(procs.at(0) == 1);
    CHECK(procs.at(1) == 2);
    CHECK(busctl_property(A, "Processes", inside) == 4);  // + nested, below the caller's namespace

    // The host's pid namespace by id, by inode, and a made-up id: the same error.
    const auto host_id = ns_id(getpid(), "pid");
    const auto host_inode = ns_inode(getpid(), "pid");
    std::set<std::string> names;
    for (std::uint64_t ref : {host_id, host_inode, std::uint64_t{987654321}}) {
        auto r = dbus_send(A, "GetNamespace", {"uint64:" + str(ref)}, inside);
        CHECK_FALSE(r.ok);
        names.insert(r.error_name);
        auto t2 = dbus_send(A, "TranslatePid", {"uint32:1", "uint64:0", "uint64:" + str(ref)}, inside);
        names.insert(t2.error_name);
        auto lp = dbus_send(A, "ListProcesses", {"uint64:" + str(ref)}, inside);
        names.insert(lp.error_name);
    }
    CHECK(names == std::set<std::string>{"org.pidns.Error.NoSuchNamespace"});
    // A host pid that is not in the caller's namespace does not exist for it.
    const pid_t host_only = tree.spawn(0, 0);
    auto r = dbus_send(A, "GetProcess", {"uint32:" + std::to_string(host_only)}, inside);
    // (the number may by chance name a process inside; it cannot here: the namespace has < 10 pids)
    CHECK(r.error_name == "org.pidns.Error.NoSuchProcess");
}

TEST_CASE("a process forked and queried at once is found, with and without events") {
    for (bool events : {true, false}) {
        INFO((events ? "proc connector" : "polling every hour: only the read-through path"));
        PrivateBus bus;
        Daemon d(bus, events ? std::vector<std::string>{} : std::vector<std::string>{"--no-proc-connector", "--poll-interval=3600s"});
        Client c(bus.address());
        CHECK(c.EventSource() == (events ? "proc-connector" : "polling"));
        ProcTree tree;
        for (int i = 0; i < 20; ++i) {
            const pid_t p = tree.spawn(0, i % 2 ? CLONE_NEWPID : 0);
            // GetProcess first: it reads the process (and its new namespaces) through on a miss.
            auto [nspid, nstgid, nspgid, nssid, nsmap] = c.GetProcess(static_cast<std::uint32_t>(p));
            CHECK(nspid == status_chain(p, "NSpid"));
            CHECK(nsmap.at("pid") == ns_id(p, "pid"));
            CHECK(c.TranslatePid(static_cast<std::uint32_t>(p), 0, 0) == static_cast<std::uint32_t>(p));
            CHECK(c.TranslatePid(static_cast<std::uint32_t>(p), 0, ns_inode(p, "pid")) == (i % 2 ? 1u : static_cast<std::uint32_t>(p)));
        }
        for (int i = 0; i < 20; ++i) {
            const pid_t p = tree.spawn(0, 0);
            CHECK(c.TranslatePid(static_cast<std::uint32_t>(p), 0, 0) == static_cast<std::uint32_t>(p));
        }
    }
}

TEST_CASE("SIGHUP rescans, SIGTERM and SIGINT exit 0") {
    PrivateBus bus;
    Daemon d(bus);
    ProcTree tree;
    const pid_t a = tree.spawn(0, 0);
    Client c(bus.address());
    c.Subscribe();
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(a), 0, 0) == static_cast<std::uint32_t>(a));
    // unshare() without fork or exec sends no event: the index learns of it only by rescanning.
    tree.unshare_in(a, CLONE_NEWNET);
    const auto inode = ns_inode(a, "net");
    CHECK(error_of([&] { c.GetNamespace(inode); }) == "org.pidns.Error.NoSuchNamespace");
    d.signal(SIGHUP);
    REQUIRE(d.wait_log("rescan (SIGHUP)"));
    const auto id = ns_id(a, "net");  // (an id pidnsd assigns exists only once it is indexed)
    REQUIRE(c.wait_signal(true, id));
    auto e = c.GetNamespace(inode);
    CHECK(std::get<0>(e) == id);
    CHECK(std::get<6>(e) == static_cast<std::uint32_t>(a));
    CHECK(d.stop(SIGTERM) == 0);
    bool stopping = false;
    for (const auto& n : d.notifications()) stopping = stopping || n.find("STOPPING=1") != std::string::npos;
    CHECK(stopping);

    Daemon d2(bus);
    CHECK(d2.stop(SIGINT) == 0);
}

TEST_CASE("start-up failures: bad options exit 2, a taken name or an unreachable bus exit 1, with a next step") {
    auto bad = run_daemon_expecting_exit({"--bus=tcp"});
    CHECK(bad.status == 2);
    CHECK(bad.err.find("--help") != std::string::npos);
    auto help = run_daemon_expecting_exit({"--help"});
    CHECK(help.status == 0);
    CHECK(help.out.find("--poll-interval") != std::string::npos);
    auto version = run_daemon_expecting_exit({"--version"});
    CHECK(version.status == 0);
    CHECK(version.out == std::string("pidnsd ") + PIDNS_VERSION + "\n");

    auto nobus = run_daemon_expecting_exit({"--bus=unix:path=/nonexistent/bus"});
    CHECK(nobus.status == 1);
    CHECK(nobus.err.find("cannot connect") != std::string::npos);
    CHECK(nobus.err.find("--bus") != std::string::npos);

    PrivateBus bus;
    Daemon first(bus);
    auto second = run_daemon_expecting_exit({"--bus=" + bus.address()});
    CHECK(second.status == 1);
    CHECK(second.err.find("cannot own the name org.pidns") != std::string::npos);
    // The first one still serves.
    Client c(bus.address());
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(getpid()), 0, 0) == static_cast<std::uint32_t>(getpid()));
}

TEST_CASE("polling mode (--no-proc-connector): EventSource, the log line, and a namespace found by the next poll") {
    PrivateBus bus;
    Daemon d(bus, {"--no-proc-connector", "--poll-interval=200ms"});
    Client c(bus.address());
    c.Subscribe();
    CHECK(c.EventSource() == "polling");
    CHECK(d.log().find("--no-proc-connector") != std::string::npos);
    ProcTree tree;
    const pid_t a = tree.spawn(0, CLONE_NEWIPC);
    const auto ipc = ns_id(a, "ipc");
    REQUIRE(c.wait_signal(true, ipc, 5s));
    tree.kill_agent(a);
    REQUIRE(c.wait_signal(false, ipc, 5s));
}

TEST_CASE("under systemd: WATCHDOG=1 pings at half of WatchdogSec, logs go to the journal, not stderr") {
    PrivateBus bus;
    Daemon d(bus, {}, 30s, {"WATCHDOG_USEC=200000", "JOURNAL_STREAM=@STDERR@"});
    std::this_thread::sleep_for(1s);
    Client c(bus.address());
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(getpid()), 0, 0) == static_cast<std::uint32_t>(getpid()));
    int pings = 0;
    for (const auto& n : d.notifications()) pings += n == "WATCHDOG=1" ? 1 : 0;
    CHECK(pings >= 3);   // every 100 ms for about a second
    CHECK(pings <= 30);  // and not in a busy loop
    CHECK(d.log().empty());  // stderr: everything went to the journal sink
    CHECK(d.stop(SIGTERM) == 0);

    // A JOURNAL_STREAM inherited from elsewhere (a terminal started by a service) is not ours: stderr.
    Daemon other(bus, {}, 30s, {"JOURNAL_STREAM=1:2"});
    CHECK(other.wait_log("serving org.pidns"));
}
