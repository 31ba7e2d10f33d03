// DumpPidTree on the real pidnsd and kernel: every entry against /proc and nsfs, the restore proof
// (a dump recreated with clone3(set_tid) dumps the same), frozen and churning trees, and access.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "harness.h"
#include "skip.h"
#include "client_json.h"
#include "support/nstree.h"
#include "support/restore_tree.h"

using namespace pidns::harness;
using namespace pidns::testing;
using namespace std::chrono_literals;
using pidns::client::DumpEntry;

namespace {

constexpr std::uint32_t kThread = 1, kZombie = 2, kEntered = 4, kUnshared = 8;

std::vector<RestoreEntry> to_restore(const std::vector<DumpEntry>& dump) {
    std::vector<RestoreEntry> out;
    for (const auto& d : dump)
        out.push_back({d.depth, d.vpids, d.vtgid, d.vppid, d.vpgid, d.vsid, d.pidns, d.pid_for_children, d.flags});
    return out;
}

// Waits until pidnsd lists the pid namespace of host pid `pid`; returns its id.
std::uint64_t listed_pidns(Client& c, pid_t pid) {
    const auto id = expected_ns_id(pid, "pid");
    for (int i = 0; i < 1000; ++i) {
        try {
            c.get_namespace(id);
            return id;
        } catch (const pidns::client::Error&) {
            std::this_thread::sleep_for(10ms);
        }
    }
    FAIL("pidnsd never listed the pid namespace of " << pid);
    return 0;
}

struct Status {
    std::map<std::string, std::vector<long>> chains;  // NSpid, NStgid, NSpgid, NSsid
    long ppid = -1, tgid = -1, pid = -1;
    char state = 0;
};

Status read_status(pid_t tid) {
    std::istringstream in(read_file("/proc/" + std::to_string(tid) + "/status"));
    Status s;
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = line.substr(0, colon);
        std::istringstream v(line.substr(colon + 1));
        if (key == "NSpid" || key == "NStgid" || key == "NSpgid" || key == "NSsid") {
            for (long x; v >> x;) s.chains[key].push_back(x);
        } else if (key == "PPid") {
            v >> s.ppid;
        } else if (key == "Tgid") {
            v >> s.tgid;
        } else if (key == "Pid") {
            v >> s.pid;
        } else if (key == "State") {
            v >> s.state;
        }
    }
    return s;
}

std::uint64_t link_inode(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Every entry against the kernel: NSpid/NStgid/NSpgid/NSsid of the task's status from the dumped
// level down, its parent's NStgid there, its state and thread-ness, and its pid and
// pid_for_children links (by nsfs inode through GetNamespace, and by NS_GET_ID where pidnsd uses
// the kernel's ids). The tree must be still (frozen or idle) while this runs.
void check_against_kernel(Client& c, const std::vector<DumpEntry>& dump) {
    std::map<std::uint64_t, std::uint64_t> inode_of;  // namespace id -> inode, 0: not listed
    auto inode = [&](std::uint64_t id) {
        auto [it, fresh] = inode_of.try_emplace(id, 0);
        if (fresh) {
            try {
                it->second = c.get_namespace(id).inode;
            } catch (const pidns::client::Error& e) {
                if (e.kind() != pidns::client::ErrorKind::no_such_namespace) throw;
            }
        }
        return it->second;
    };
    for (const auto& e : dump) {
        INFO("task rpid " << e.rpid << " flags " << e.flags);
        const Status s = read_status(static_cast<pid_t>(e.rpid));
        REQUIRE(s.chains.count("NSpid"));
        const auto& nspid = s.chains.at("NSpid");
        REQUIRE(nspid.size() >= e.depth + 1);
        const std::size_t L = nspid.size() - 1 - e.depth;  // the dumped namespace's level, as we see it
        CHECK(e.vpids.size() == e.depth + 1);
        for (std::size_t k = 0; k < e.vpids.size(); ++k) CHECK(static_cast<long>(e.vpids[k]) == nspid[L + k]);
        CHECK(static_cast<long>(e.vtgid) == s.chains.at("NStgid")[L]);
        CHECK(static_cast<long>(e.vpgid) == s.chains.at("NSpgid")[L]);
        CHECK(static_cast<long>(e.vsid) == s.chains.at("NSsid")[L]);
        CHECK(((e.flags & kThread) != 0) == (s.tgid != s.pid));
        CHECK(((e.flags & kZombie) != 0) == (s.state == 'Z' || s.state == 'X'));
        if (e.vppid != 0) {
            const Status p = read_status(static_cast<pid_t>(s.ppid));
            REQUIRE(p.chains.count("NStgid"));
            REQUIRE(p.chains.at("NStgid").size() > L);
            CHECK(static_cast<long>(e.vppid) == p.chains.at("NStgid")[L]);
        }
        const std::string base = "/proc/" + std::to_string(e.rpid);
        // A pid namespace only exited-unreaped tasks hold is not in pidnsd's index (it does not
        // index them): GetNamespace does not know it; its id is checked by NS_GET_ID where the
        // kernel's ids are used (an assigned one holds for that answer only).
        if (const auto known = inode(e.pidns); known != 0 || !(e.flags & kZombie))
            CHECK(known == link_inode(base + "/ns/pid"));
        if (kernel_ids_expected()) {
            auto fd = open_ns(static_cast<pid_t>(e.rpid), "pid");
            CHECK(e.pidns == oracle_ns_id(fd.get()));
        }
        const auto pfc_inode = link_inode(base + "/ns/pid_for_children");
        if (e.pid_for_children != 0)
            CHECK(inode(e.pid_for_children) == pfc_inode);
        else
            CHECK(pfc_inode == 0);  // the kernel shows none either
        CHECK(((e.flags & kUnshared) != 0) == (e.pid_for_children != 0 && e.pid_for_children != e.pidns));
    }
}

// Parent before child, threads right after their leader, no dangling parent.
void check_consistent(const std::vector<DumpEntry>& dump) {
    std::set<std::uint32_t> groups;
    std::set<std::vector<std::uint32_t>> seen;
    for (std::size_t i = 0; i < dump.size(); ++i) {
        const auto& e = dump[i];
        INFO("entry " << i << " vpids[0] " << (e.vpids.empty() ? 0 : e.vpids[0]));
        REQUIRE(e.vpids.size() == e.depth + 1);
        CHECK(seen.insert(e.vpids).second);
        if (e.flags & kThread) {
            CHECK(groups.count(e.vtgid));
            continue;
        }
        CHECK(e.vtgid == e.vpids[0]);
        if (e.vppid != 0) CHECK(groups.count(e.vppid));  // its parent came first
        else CHECK(((e.depth == 0 && e.vpids[0] == 1) || (e.flags & kEntered)));
        groups.insert(e.vtgid);
    }
}

// `b` is `a` again: same order, same pids at every level, parents, groups, sessions and flags,
// and namespaces that correspond one to one.
void check_same_tree(const std::vector<DumpEntry>& a, const std::vector<DumpEntry>& b) {
    REQUIRE(a.size() == b.size());
    std::map<std::uint64_t, std::uint64_t> fwd, back;
    auto corresponds = [&](std::uint64_t x, std::uint64_t y) {
        if ((x == 0) != (y == 0)) return false;
        if (x == 0) return true;
        return fwd.emplace(x, y).first->second == y && back.emplace(y, x).first->second == x;
    };
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("entry " << i);
        CHECK(a[i].depth == b[i].depth);
        CHECK(a[i].vpids == b[i].vpids);
        CHECK(a[i].vtgid == b[i].vtgid);
        CHECK(a[i].vppid == b[i].vppid);
        CHECK(a[i].vpgid == b[i].vpgid);
        CHECK(a[i].vsid == b[i].vsid);
        CHECK(a[i].flags == b[i].flags);
        CHECK(corresponds(a[i].pidns, b[i].pidns));
        CHECK(corresponds(a[i].pid_for_children, b[i].pid_for_children));
    }
}

// The restore proof: `dump` recreated in fresh pid namespaces dumps the same.
void check_restores(Client& c, const std::vector<DumpEntry>& dump) {
    RestoredTree restored(to_restore(dump));
    const auto id = listed_pidns(c, restored.init_pid());
    const auto again = c.dump_pid_tree(id);
    check_same_tree(dump, again);
    check_against_kernel(c, again);
}

// Shapes given as a plan (host-independent pids chosen here), built with RestoredTree.
class Plan {
public:
    Plan() {
        ns_[1] = {0, 0, 2};
        add_entry(RestoreEntry{0, {1}, 1, 0, 1, 1, 1, 1, 0});  // the init, leading its session
    }
    enum class Group { inherit, lead, session };
    // A child of entry `parent`; `nested`: it is the init of a new namespace below the parent's
    // (made by clone CLONE_NEWPID, or in the one `parent` unshared when unshared(parent)).
    std::size_t child(std::size_t parent, Group g = Group::inherit, bool nested = false, bool zombie = false,
                      std::size_t join = SIZE_MAX) {
        const auto& pe = e_[parent];
        std::uint64_t ns = pe.pid_for_children;
        if (nested) {
            ns = next_ns_++;
            ns_[ns] = {pe.pidns, pe.depth + 1, 2};
        }
        RestoreEntry e;
        e.pidns = ns;
        e.pid_for_children = ns;
        e.depth = ns_[ns].depth;
        e.vpids = pids_in(ns, nested);
        e.vtgid = e.vpids[0];
        e.vppid = pe.vtgid;
        e.vsid = g == Group::session ? e.vtgid : pe.vsid;
        e.vpgid = g == Group::inherit ? pe.vpgid : e.vtgid;
        if (join != SIZE_MAX) e.vpgid = e_[join].vtgid;
        if (zombie) e.flags |= kZombie;
        return add_entry(std::move(e));
    }
    std::size_t thread(std::size_t leader) {
        RestoreEntry e = e_[leader];
        e.vpids = pids_in(e.pidns, false);
        e.flags = kThread;
        return add_entry(std::move(e));
    }
    // `task` unshares CLONE_NEWPID: its next child with nested=true is the init of that namespace.
    void unshare(std::size_t task) {
        e_[task].pid_for_children = next_ns_;
        e_[task].flags |= kUnshared;
    }
    [[nodiscard]] const std::vector<RestoreEntry>& entries() const { return e_; }
    [[nodiscard]] const RestoreEntry& at(std::size_t i) const { return e_[i]; }

private:
    struct Ns {
        std::uint64_t parent;
        std::uint32_t depth;
        std::uint32_t next;
    };
    std::size_t add_entry(RestoreEntry e) {
        e_.push_back(std::move(e));
        return e_.size() - 1;
    }
    std::vector<std::uint32_t> pids_in(std::uint64_t ns, bool init) {
        std::vector<std::uint64_t> path;
        for (std::uint64_t n = ns; n != 0; n = ns_[n].parent) path.push_back(n);
        std::reverse(path.begin(), path.end());
        std::vector<std::uint32_t> v;
        for (std::size_t k = 0; k < path.size(); ++k) v.push_back(init && k + 1 == path.size() ? 1 : ns_[path[k]].next++);
        return v;
    }
    std::map<std::uint64_t, Ns> ns_;
    std::uint64_t next_ns_ = 2;
    std::vector<RestoreEntry> e_;
};

// The dump of a tree built from `plan` holds exactly the plan's tasks.
void check_matches_plan(const std::vector<DumpEntry>& dump, const std::vector<RestoreEntry>& plan) {
    REQUIRE(dump.size() == plan.size());
    std::map<std::vector<std::uint32_t>, const RestoreEntry*> by_vpids;
    for (const auto& p : plan) by_vpids[p.vpids] = &p;
    for (const auto& d : dump) {
        INFO("task " << d.vpids[0]);
        const auto it = by_vpids.find(d.vpids);
        REQUIRE(it != by_vpids.end());
        const auto& p = *it->second;
        CHECK(d.depth == p.depth);
        CHECK(d.vtgid == p.vtgid);
        CHECK(d.vppid == p.vppid);
        CHECK(d.vpgid == p.vpgid);
        CHECK(d.vsid == p.vsid);
        CHECK(d.flags == p.flags);
    }
}

// 1,000+ tasks over 5 levels: in each level's namespace an init and 16 session leaders with 8
// children each: the first leads a process group that the next three join, the others stay in
// the session leader's group, two of them run 2 threads; the next level's init is a child of the
// first session leader.
Plan plan_five_levels() {
    Plan p;
    std::size_t init = 0;
    for (int level = 0; level < 5; ++level) {
        std::size_t next_parent = SIZE_MAX;
        for (int m = 0; m < 16; ++m) {
            const auto lead = p.child(init, Plan::Group::session);
            if (m == 0) next_parent = lead;
            std::size_t group = SIZE_MAX;
            for (int w = 0; w < 8; ++w) {
                std::size_t worker;
                if (w == 0) worker = group = p.child(lead, Plan::Group::lead);
                else if (w <= 3) worker = p.child(lead, Plan::Group::inherit, false, false, group);
                else worker = p.child(lead);
                if (w == 1 || w == 5) {
                    p.thread(worker);
                    p.thread(worker);
                }
            }
        }
        if (level < 4) init = p.child(next_parent, Plan::Group::inherit, true);
    }
    return p;
}

// A private bus and pidnsd, a client, and plan_five_levels() built for real, once pidnsd lists
// its top pid namespace (`root`).
struct FiveLevelTree {
    PrivateBus bus;
    Daemon d{bus};
    Client c{bus.address()};
    const Plan plan = plan_five_levels();
    RestoredTree original{plan.entries()};
    const std::uint64_t root = listed_pidns(c, original.init_pid());
};

}  // namespace

TEST_CASE("dump: seed 003's 32-level nesting dumps every pid at every level and restores with the same pids") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    ProcTree tree(std::chrono::seconds(30));  // generous: the sanitizer build on a loaded host
    const int levels = max_extra_pid_ns_levels();
    REQUIRE(levels >= 2);
    const auto chain = make_chain(tree, levels);
    // A second task at the deepest level and one half-way (threads: the 1,000-task test; the
    // agents' spawn_thread times out in the sanitizer build this deep).
    const pid_t deep = tree.spawn(chain.back());
    tree.spawn(chain[chain.size() / 2]);
    const auto root = listed_pidns(c, chain.front());
    const auto dump = c.dump_pid_tree(root);
    REQUIRE(dump.size() == chain.size() + 2);
    check_consistent(dump);
    check_against_kernel(c, dump);
    std::uint32_t deepest = 0;
    for (const auto& e : dump) deepest = std::max(deepest, e.depth);
    CHECK(deepest == static_cast<std::uint32_t>(levels - 1));
    CHECK(std::any_of(dump.begin(), dump.end(), [&](const DumpEntry& e) { return e.rpid == static_cast<std::uint32_t>(deep); }));
    check_restores(c, dump);
}

TEST_CASE("dump: 1,000 tasks over 5 levels with process groups, sessions and threads restore exactly") {
    FiveLevelTree t;
    REQUIRE(t.plan.entries().size() >= 1000);
    const auto dump = t.c.dump_pid_tree(t.root);
    check_matches_plan(dump, t.plan.entries());
    check_consistent(dump);
    check_against_kernel(t.c, dump);
    check_restores(t.c, dump);
}

TEST_CASE("dump: two dumps at once, one read ahead on pidnsd's helper thread and one without it, are both exact") {
    FiveLevelTree t;
    const auto alone = t.c.dump_pid_tree(t.root);
    check_matches_plan(alone, t.plan.entries());
    // Two connections (a uid's quota of dumps) at once, five times: their slices interleave, and
    // the helper thread serves one dump at a time, so the other reads every process on the loop.
    for (int round = 0; round < 5; ++round) {
        std::vector<std::vector<DumpEntry>> dumps(2);
        std::vector<std::string> errors(2);
        std::vector<std::thread> callers;
        std::atomic<int> connected{0};
        for (std::size_t k = 0; k < dumps.size(); ++k)
            callers.emplace_back([&, k] {
                try {
                    Client own(t.bus.address());
                    ++connected;
                    while (connected.load() < 2) std::this_thread::yield();  // both call at once
                    dumps[k] = own.dump_pid_tree(t.root);
                } catch (const std::exception& e) {
                    errors[k] = e.what();
                    ++connected;
                }
            });
        for (auto& t : callers) t.join();
        for (std::size_t k = 0; k < dumps.size(); ++k) {
            INFO("round " << round << ", caller " << k);
            REQUIRE(errors[k].empty());
            if (kernel_ids_expected())
                CHECK(dumps[k] == alone);
            else
                check_same_tree(dumps[k], alone);
            check_matches_plan(dumps[k], t.plan.entries());
        }
    }
    check_against_kernel(t.c, alone);
}

TEST_CASE("dump: a principal has at most 2 DumpPidTree calls being answered, on one connection or several") {
    FiveLevelTree t;
    const auto root = std::to_string(t.root);
    // Three at once from one principal (root's): two are answered, the third is refused with LimitsExceeded,
    // whether the three come on three connections or pipelined on one.
    for (const auto& [conns, per] : {std::pair{"3", "1"}, std::pair{"1", "3"}}) {
        INFO(conns << " connections, " << per << " calls each");
        const auto r = run({PIDNS_FLOOD_BIN, t.bus.address(), "dumps", conns, per, root}, 60s);
        REQUIRE(r.status == 0);
        CHECK(r.out.rfind("replies 3 ok 2 errors 1 limits 1 ", 0) == 0);
    }
    CHECK(t.d.log().find("uid 0 (privileged) has 2 DumpPidTree calls being answered, at most 2") != std::string::npos);
    // Nothing held afterwards: two at once are both answered.
    const auto r = run({PIDNS_FLOOD_BIN, t.bus.address(), "dumps", "2", "1", root}, 60s);
    CHECK(r.out.rfind("replies 2 ok 2 errors 0 limits 0", 0) == 0);
}

TEST_CASE("dump: zombies, including a nested namespace's init, are dumped with their namespace and restored") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Plan p;
    const auto a = p.child(0);
    p.child(0, Plan::Group::inherit, false, true);                 // a zombie child of the init
    const auto b = p.child(a, Plan::Group::lead);
    p.child(b, Plan::Group::inherit, false, true);                 // a zombie in b's group
    p.child(a, Plan::Group::inherit, true, true);                  // a zombie init of a nested namespace
    const auto n = p.child(a, Plan::Group::inherit, true);         // and a live nested one with a zombie
    p.child(n, Plan::Group::session, false, true);
    RestoredTree original(p.entries());
    const auto root = listed_pidns(c, original.init_pid());
    const auto dump = c.dump_pid_tree(root);
    check_matches_plan(dump, p.entries());
    CHECK(std::count_if(dump.begin(), dump.end(), [](const DumpEntry& e) { return e.flags & kZombie; }) == 4);
    check_consistent(dump);
    check_against_kernel(c, dump);
    check_restores(c, dump);
}

TEST_CASE("dump: a task that entered by setns and one that unshared CLONE_NEWPID are marked and restored") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    ProcTree tree(std::chrono::seconds(30));  // generous: the sanitizer build on a loaded host
    const pid_t init = tree.spawn(0, CLONE_NEWPID);
    tree.spawn(init);
    const pid_t unsharer = tree.spawn(init);
    tree.unshare_in(unsharer, CLONE_NEWPID);
    const pid_t nested_init = tree.spawn(unsharer);
    tree.spawn(unsharer);  // a second child of the unsharer in the namespace it unshared
    tree.spawn(nested_init);
    const pid_t outsider = tree.spawn(0);
    tree.setns_in(outsider, "/proc/" + std::to_string(init) + "/ns/pid");
    const pid_t entered = tree.spawn(outsider);
    tree.spawn(entered);  // its child has its parent inside
    const auto root = listed_pidns(c, init);
    const auto dump = c.dump_pid_tree(root);
    REQUIRE(dump.size() == 8);
    check_consistent(dump);
    check_against_kernel(c, dump);
    std::map<std::uint32_t, const DumpEntry*> by_rpid;
    for (const auto& e : dump) by_rpid[e.rpid] = &e;
    REQUIRE(by_rpid.count(static_cast<std::uint32_t>(entered)));
    CHECK(by_rpid[entered]->flags == kEntered);
    CHECK(by_rpid[entered]->vppid == 0);
    CHECK(by_rpid[unsharer]->flags == kUnshared);
    CHECK(by_rpid[nested_init]->depth == 1);
    CHECK(by_rpid[nested_init]->vppid == by_rpid[unsharer]->vtgid);
    CHECK(by_rpid[init]->flags == 0);
    CHECK(by_rpid.count(static_cast<std::uint32_t>(outsider)) == 0);  // outside the subtree
    check_restores(c, dump);
}

namespace {

// Ends a pid namespace's init before the `unshare` above it goes (declare it after that Proc):
// unshare then reaps it, and no zombie of it is left for pid 1 to reap while later tests look.
struct EndsFirst {
    pid_t init;
    ~EndsFirst() {
        if (init <= 0) return;
        kill(init, SIGKILL);
        for (int i = 0; i < 200 && ::access(("/proc/" + std::to_string(init)).c_str(), F_OK) == 0; ++i)
            std::this_thread::sleep_for(5ms);
    }
};

// A cgroup v2 directory of its own (removed at the end), for the freezer.
class FreezerCgroup {
public:
    // Under the cgroup2 hierarchy `root` (prerequisites.h: cgroup2_mount()).
    explicit FreezerCgroup(std::string root) : root_(std::move(root)) {
        path_ = root_ + "/pidns-dump-test-" + std::to_string(::getpid());
        if (::mkdir(path_.c_str(), 0755) != 0) {
            why_ = "cannot make a cgroup at " + path_ + ": " + std::strerror(errno);
            path_.clear();
        }
    }
    ~FreezerCgroup() {
        if (path_.empty()) return;
        freeze(false);
        // Move what is left out, then remove the directory.
        std::istringstream procs(read_file(path_ + "/cgroup.procs"));
        for (std::string pid; procs >> pid;) std::ofstream(root_ + "/cgroup.procs") << pid;
        for (int i = 0; i < 100 && ::rmdir(path_.c_str()) != 0; ++i) std::this_thread::sleep_for(20ms);
    }
    [[nodiscard]] const std::string& missing() const { return why_; }  // "" once made
    [[nodiscard]] const std::string& path() const { return path_; }
    void freeze(bool on) {
        std::ofstream(path_ + "/cgroup.freeze") << (on ? "1" : "0");
        const std::string want = on ? "frozen 1" : "frozen 0";
        for (int i = 0; i < 500; ++i) {
            if (read_file(path_ + "/cgroup.events").find(want) != std::string::npos) return;
            std::this_thread::sleep_for(10ms);
        }
        FAIL("cgroup " << path_ << " never reported " << want);
    }

private:
    std::string root_, path_, why_;
};

}  // namespace

TEST_CASE("dump: a frozen tree dumps identically twice, a churning one consistently every time") {
    const std::string v2 = cgroup2_mount();
    PIDNS_REQUIRE_PREREQUISITE(v2.empty() ? "no cgroup2 hierarchy is mounted (its freezer stops the tree)" : "");
    FreezerCgroup cg(v2);
    PIDNS_REQUIRE_PREREQUISITE(cg.missing());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    // pidns-churn as pid 1 of a pid namespace, started inside the cgroup (its children inherit it).
    Proc churn({"sh", "-c",
                "echo $$ > " + cg.path() + "/cgroup.procs && exec unshare -p -f --kill-child " PIDNS_CHURN_BIN " 400"});
    const pid_t init = child_of(churn.pid());
    EndsFirst end_churn{init};
    wait_comm(init, "pidns-churn");
    const auto root = listed_pidns(c, init);
    std::this_thread::sleep_for(300ms);

    // Running: every dump is consistent, and the tree does change between them.
    std::set<std::size_t> sizes;
    std::set<std::vector<std::vector<std::uint32_t>>> shapes;
    for (int i = 0; i < 15; ++i) {
        const auto dump = c.dump_pid_tree(root);
        check_consistent(dump);
        REQUIRE_FALSE(dump.empty());
        CHECK(dump.front().vpids == std::vector<std::uint32_t>{1});
        std::vector<std::vector<std::uint32_t>> shape;
        for (const auto& e : dump) shape.push_back(e.vpids);
        shapes.insert(shape);
        std::this_thread::sleep_for(20ms);
    }
    CHECK(shapes.size() > 1);  // the churn was real

    // Frozen: two dumps 1 s apart are the same, and the kernel agrees with each entry.
    cg.freeze(true);
    const auto first = c.dump_pid_tree(root);
    std::this_thread::sleep_for(1s);
    const auto second = c.dump_pid_tree(root);
    CHECK(first.size() > 1);
    if (kernel_ids_expected()) {
        CHECK(first == second);
    } else {
        // Assigned ids of namespaces only zombies hold are made per answer: they correspond.
        check_same_tree(first, second);
        for (std::size_t i = 0; i < std::min(first.size(), second.size()); ++i) CHECK(first[i].rpid == second[i].rpid);
    }
    check_consistent(first);
    check_against_kernel(c, first);
    cg.freeze(false);
}

TEST_CASE("dump: tasks reaped while they are read end no dump: a status the kernel prints for a released task is an exited task") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    // pid 1 of a pid namespace forking children that exit at once and reaping them, as fast as it
    // can: at any time one is being released, and the kernel prints a released task's status with
    // Tgid and NSpid 0 (tests/unit/test_parsers.cpp).
    Proc reaper({"unshare", "-p", "-f", "--kill-child", "sh", "-c", "while :; do : & wait; done"});
    const pid_t init = child_of(reaper.pid());
    EndsFirst end_reaper{init};
    wait_comm(init, "sh");
    const auto root = listed_pidns(c, init);
    int dumps = 0, failed = 0, with_child = 0;
    std::string first_error;
    for (const auto until = std::chrono::steady_clock::now() + 4s; std::chrono::steady_clock::now() < until; ++dumps) {
        try {
            const auto dump = c.dump_pid_tree(root);
            REQUIRE_FALSE(dump.empty());
            CHECK(dump.front().vpids == std::vector<std::uint32_t>{1});
            with_child += dump.size() > 1;
        } catch (const pidns::client::Error& e) {
            if (failed++ == 0) first_error = e.name() + ": " + e.what();
        }
    }
    std::cout << dumps << " dumps of a namespace reaping children as fast as it can, " << with_child
              << " with a child in them, " << failed << " failed" << (failed ? " (first: " + first_error + ")" : "") << "\n";
    CHECK(failed == 0);
    CHECK(with_child > 0);  // children were there to be read
}

TEST_CASE("dump: nobody may not dump root's container, which it cannot even see, nor a mixed one, and a user-ns root dumps its own") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    // root's container: invisible to nobody, the same error as an id that does not exist.
    Proc rooted({"unshare", "-p", "-f", "--kill-child", "sleep", "1000"});
    const pid_t rooted_init = child_of(rooted.pid());
    EndsFirst end_rooted{rooted_init};
    wait_comm(rooted_init, "sleep");
    const auto rooted_ns = listed_pidns(c, rooted_init);
    auto hidden = run(concat(kAsNobody, {PIDNSCTL_BIN, "--address=" + bus.address(), "dump", std::to_string(rooted_ns)}));
    CHECK(hidden.status == 4);
    CHECK(hidden.err.find("no namespace") != std::string::npos);
    auto bogus = run(concat(kAsNobody, {PIDNSCTL_BIN, "--address=" + bus.address(), "dump", "123456789"}));
    CHECK(bogus.status == 4);

    // A container of root's with one of nobody's tasks in it: visible to nobody, never dumped in part.
    Proc mixed({"unshare", "-p", "-f", "--kill-child", "sh", "-c",
                "setpriv --reuid=65534 --regid=65534 --clear-groups sleep 1000 & exec sleep 1000"});
    const pid_t mixed_init = child_of(mixed.pid());
    EndsFirst end_mixed{mixed_init};
    wait_comm(mixed_init, "sleep");
    const auto mixed_ns = listed_pidns(c, mixed_init);
    for (int i = 0; i < 1000 && c.dump_pid_tree(mixed_ns).size() < 2; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(c.dump_pid_tree(mixed_ns).size() == 2);
    auto denied = run(concat(kAsNobody, {PIDNSCTL_BIN, "--address=" + bus.address(), "dump", std::to_string(mixed_ns)}));
    CHECK(denied.status == 5);
    CHECK(denied.err.find("may not inspect 1 of the 2 tasks") != std::string::npos);
    CHECK(denied.out.empty());
    const auto raw = dbus_send(bus.address(), "DumpPidTree", {"uint64:" + std::to_string(mixed_ns)}, kAsNobody);
    CHECK_FALSE(raw.ok);
    CHECK(raw.error_name == "org.freedesktop.DBus.Error.AccessDenied");

    // nobody's container: its own user-ns root dumps its own pid namespace (the kernel lets it read
    // every task: checked first by reading a task's ns link from inside).
    auto own = run(concat(kAsNobody, {"unshare", "-U", "-r", "-p", "-f", "--mount-proc", "sh", "-c",
                                      "sleep 1000 >/dev/null 2>&1 & until [ -e /proc/2/ns/pid ]; do sleep 0.05; done; "
                                      "readlink /proc/2/ns/pid >/dev/null && exec " PIDNSCTL_BIN
                                      " --address=" + bus.address() + " --json=short dump; kill %1"}));
    INFO(own.err);
    REQUIRE(own.status == 0);
    const auto j = nlohmann::json::parse(own.out);
    std::set<std::vector<std::uint32_t>> tasks;
    for (const auto& t : j.at("tasks")) tasks.insert(t.at("vpids").get<std::vector<std::uint32_t>>());
    CHECK(tasks.count({1}));
    CHECK(tasks.count({2}));
    CHECK(j.at("sequence").get<std::uint64_t>() == 0);  // not told of the host's activity
}

TEST_CASE("dump: pidnsctl dump --check matches a saved dump and shows what differs") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    ProcTree tree(std::chrono::seconds(30));  // generous: the sanitizer build on a loaded host
    const pid_t init = tree.spawn(0, CLONE_NEWPID);
    const pid_t a = tree.spawn(init);
    const pid_t b = tree.spawn(init);
    const auto root = listed_pidns(c, init);
    TempDir dir;
    const std::string file = dir.path() + "/dump.json";
    auto saved = run({PIDNSCTL_BIN, "--address=" + bus.address(), "--json=short", "dump", std::to_string(root)});
    REQUIRE(saved.status == 0);
    std::ofstream(file) << saved.out;
    const auto j = nlohmann::json::parse(saved.out);
    CHECK(j.at("tasks").size() == 3);
    CHECK(j.at("sequence").get<std::uint64_t>() > 0);  // root is told the index's event sequence
    auto table = run({PIDNSCTL_BIN, "--address=" + bus.address(), "--no-pager", "dump", "@" + std::to_string(init)});
    CHECK(table.status == 0);
    CHECK(table.out.find("VPIDS") != std::string::npos);
    CHECK(table.out.find("3 tasks dumped at event ") != std::string::npos);
    auto same = run({PIDNSCTL_BIN, "--address=" + bus.address(), "dump", "--check", file});
    CHECK(same.status == 0);
    CHECK(same.out.find("matches") != std::string::npos);
    // Restored into fresh namespaces, the tree still matches (namespace ids correspond).
    {
        RestoredTree restored(restore_entries_from_json(saved.out));
        const auto id = listed_pidns(c, restored.init_pid());
        auto check = run({PIDNSCTL_BIN, "--address=" + bus.address(), "dump", std::to_string(id), "--check", file});
        INFO(check.out << check.err);
        CHECK(check.status == 0);
    }
    // One task gone, another made: both show, and the exit status says so.
    tree.kill_agent(b);
    tree.spawn(a);
    auto differs = run({PIDNSCTL_BIN, "--address=" + bus.address(), "dump", "--check", file});
    INFO(differs.out);
    CHECK(differs.status == 1);
    CHECK(differs.out.find("- task ") != std::string::npos);
    CHECK(differs.out.find("+ task ") != std::string::npos);
    CHECK(differs.err.find("differs from " + file) != std::string::npos);
}

TEST_CASE("dump: the XML documents every field and flag bit, under the names pidnsctl's JSON prints") {
    std::ifstream f(std::string(PIDNS_SOURCE_DIR) + "/dbus/org.pidns.Manager1.xml");
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string xml = ss.str();
    const auto start = xml.find("<method name=\"DumpPidTree\">");
    REQUIRE(start != std::string::npos);
    const std::string doc = xml.substr(start, xml.find("</method>", start) - start);
    CHECK(doc.find("a(uuauuuuuttu)") != std::string::npos);
    const nlohmann::json j = DumpEntry{};
    REQUIRE(j.size() == 10);
    for (const auto& [key, value] : j.items()) {
        INFO("field " << key);
        CHECK(doc.find(key) != std::string::npos);
    }
    CHECK(doc.find("(rpid, depth, vpids, vtgid, vppid, vpgid, vsid, pidns, pid_for_children, flags)") != std::string::npos);
    for (const char* bit : {"1 thread", "2 zombie", "4 entered-from-outside", "8 unshared-pid"}) CHECK(doc.find(bit) != std::string::npos);
    CHECK(pidns::client::dump_flags_text(kThread | kZombie | kEntered | kUnshared) ==
          "thread,zombie,entered-from-outside,unshared-pid");
    CHECK(pidns::client::dump_flags_text(0).empty());
}
