// A namespace is never mistaken for another (issue 22), against the real pidnsd, as unprivileged
// users: a dead namespace's inode reused by another uid's or of another type, dumps of churning
// and traced trees, and a bounded stress of every shape at once that must end equal to a fresh scan.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "nsfs.h"
#include "support/ns_tool.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
namespace t = pidns::testing;

namespace {

// Unprivileged users that every Debian has (dbus-daemon refuses a uid without a passwd entry):
// the attacker and the victim of the reuse attack, and the stress test's other churners.
constexpr std::uint32_t kAttacker = 5, kVictim = 6;  // games, man
const Argv kAsAttacker = as_uid(kAttacker);
const Argv kAsVictim = as_uid(kVictim);
const std::string kDenied = "org.freedesktop.DBus.Error.AccessDenied";
constexpr int kAttempts = 4;  // a busy host may take the freed inode first: the whole shape again

// pidnsctl as `prefix` makes its caller, --json=short.
CmdResult ctl(const Argv& prefix, const std::string& address, const Argv& args) {
    return pidnsctl(address, concat({"--json=short"}, args), prefix, 20s);
}

// Waits until `f` returns true (it may throw: not yet), at most 30 s (more under ASan): a wait
// for pidnsd to catch up, not a bound (the loop it replaced made 1,000 tries of `f`, each slow
// on a loaded host, so it waited well past 10 s there).
template <class F>
bool eventually_ok(F&& f) {
    return eventually(std::forward<F>(f), patience(30s), 10ms, true);
}

// The namespaces root sees with inode `inode`.
std::vector<pidns::client::NamespaceInfo> with_inode(Client& c, std::uint64_t inode) {
    std::vector<pidns::client::NamespaceInfo> out;
    for (auto& ns : c.list_namespaces())
        if (ns.inode == inode) out.push_back(ns);
    return out;
}

}  // namespace

TEST_CASE("identity: one user frees a user namespace whose inode goes to another user's container: the first gets nothing of it, its owner all, root sees its owner") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        // The attacker's user namespace X held only by an fd (its maker ended, the holder re-executed).
        t::ToolProc attacker(t::ns_tool(kAsAttacker, {"hold", "user"}));
        const auto inode = t::field(attacker.line(), "held");
        REQUIRE(inode != 0);
        REQUIRE(eventually_ok([&] {
            const auto x = with_inode(root, inode);
            return x.size() == 1 && x[0].owner_uid == kAttacker;
        }));
        const auto x_id = with_inode(root, inode).at(0).id;
        // The fd closed (no event); the victim makes user namespaces until one has X's inode and
        // runs `unshare -pf sh -c 'sleep 90 & exec sleep 90'` there (as `unshare -Urpf` would).
        REQUIRE(attacker.ask("close") == "closed");
        t::ToolProc victim(t::ns_tool(kAsVictim, {"reuse", "user", std::to_string(inode), "--", "unshare", "-pf",
                                          "--kill-child", "sh", "-c", "sleep 90 & exec sleep 90"}));
        const auto won = victim.line();
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": the kernel gave inode " << inode << " to someone else (" << won << ")");
            continue;
        }
        const pid_t unshare_pid = static_cast<pid_t>(t::field(won, "reused"));
        const pid_t init = child_of(unshare_pid);
        wait_comm(init, "sleep");
        // pidnsd has read the victim's container (its init's pid namespace is listed to root).
        std::uint64_t pidns = 0;
        REQUIRE(eventually_ok([&] {
            const auto p = root.get_process(static_cast<std::uint32_t>(init));
            pidns = p.namespaces.at("pid");
            return pidns != 0 && root.list_processes(pidns).size() == 2;
        }));
        const auto user = root.get_process(static_cast<std::uint32_t>(init)).namespaces.at("user");
        const auto ns = root.get_namespace(user);
        CHECK(ns.inode == inode);
        CHECK(ns.owner_uid == kVictim);  // root is shown the owner the kernel has
        CHECK(ns.id != x_id);
        if (kernel_ids_expected()) CHECK(ns.id == expected_ns_id(init, "user"));
        CHECK(with_inode(root, inode).size() == 1);

        // The kernel refuses the attacker the victim's processes and lets the victim in.
        CHECK(open_ns_pid_as(kAsAttacker, init).status != 0);
        CHECK(open_ns_pid_as(kAsVictim, init).status == 0);
        const std::string init_s = std::to_string(init), pidns_s = std::to_string(pidns);
        // The attacker: the namespace does not exist for it, its processes neither; nothing in ps or list.
        auto lp = ctl(kAsAttacker, bus.address(), {"ps", pidns_s});
        CHECK(lp.status == 4);
        auto dump = ctl(kAsAttacker, bus.address(), {"dump", pidns_s});
        CHECK(dump.status == 4);
        CHECK(dump.out.empty());
        auto status = ctl(kAsAttacker, bus.address(), {"status", init_s});
        CHECK(status.status == 5);
        auto ps = ctl(kAsAttacker, bus.address(), {"ps"});
        CHECK(ps.status == 0);
        CHECK(ps.out.find("\"pid\":" + init_s + ",") == std::string::npos);
        CHECK(ps.out.find("\"pid\":" + std::to_string(unshare_pid) + ",") == std::string::npos);
        auto list = ctl(kAsAttacker, bus.address(), {"list"});
        CHECK(list.status == 0);
        CHECK(list.out.find(std::to_string(inode)) == std::string::npos);
        // The victim: all of its own.
        auto own_ps = ctl(kAsVictim, bus.address(), {"ps", pidns_s});
        INFO(own_ps.err);
        CHECK(own_ps.status == 0);
        auto own_dump = ctl(kAsVictim, bus.address(), {"dump", pidns_s});
        INFO(own_dump.err);
        CHECK(own_dump.status == 0);
        CHECK(nlohmann::json::parse(own_dump.out).at("tasks").size() == 2);
        auto own_status = ctl(kAsVictim, bus.address(), {"status", init_s});
        CHECK(own_status.status == 0);
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: in a user namespace of its own, a uts namespace that takes a freed net namespace's inode is reported as uts") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        t::ToolProc holder(concat(kAsAttacker, {"unshare", "-Ur", PIDNS_NS_TOOL_BIN, "hold", "net"}));
        const auto inode = t::field(holder.line(), "held");
        REQUIRE(inode != 0);
        REQUIRE(eventually_ok([&] {
            const auto x = with_inode(root, inode);
            return x.size() == 1 && x[0].type == "net";
        }));
        REQUIRE(holder.ask("close") == "closed");
        const auto won = holder.ask("reuse uts");
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": the kernel gave inode " << inode << " to someone else (" << won << ")");
            continue;
        }
        const auto w = static_cast<std::uint32_t>(t::field(won, "reused"));
        // As its owner sees it, and as root does: GetProcess's uts id is a uts namespace.
        for (const Argv& who : {kAsAttacker, Argv{}}) {
            INFO((who.empty() ? "root" : "its owner"));
            std::uint64_t uts = 0;
            REQUIRE(eventually_ok([&] {
                auto p = ctl(who, bus.address(), {"status", std::to_string(w)});
                if (p.status != 0) return false;
                uts = nlohmann::json::parse(p.out).at("namespaces").at("uts").get<std::uint64_t>();
                return uts != 0;
            }));
            const auto ns = root.get_namespace(uts);
            CHECK(ns.type == "uts");
            CHECK(ns.inode == inode);
        }
        const auto x = with_inode(root, inode);
        REQUIRE(x.size() == 1);
        CHECK(x[0].type == "uts");
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: an fd-held and a mount-held namespace die and each one's inode goes to another type held the other way") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());
    const t::MountPoints mounts;
    const std::string &mount_a = mounts.a, &mount_b = mounts.b;
    auto held_as = [&](std::uint64_t inode, const std::string& type, const std::string& kind) {
        return eventually_ok([&] {
            const auto x = with_inode(root, inode);
            if (x.size() != 1 || x[0].type != type) return false;
            for (const auto& h : root.describe_namespace(x[0].id).holders)
                if (h.kind == kind) return true;
            return false;
        });
    };
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        // A: a net namespace held by A's fd. B: a uts namespace held only by a bind mount (in the
        // mount namespace pidnsd watches).
        t::HeldByFdAndMount held(mount_b);
        auto &a = held.a, &b = held.b;
        const auto inode_a = held.inode_a, inode_b = held.inode_b;
        REQUIRE(held_as(inode_a, "net", "fd"));
        REQUIRE(held_as(inode_b, "uts", "mount"));
        // Both die unseen; A's inode goes to an ipc namespace held by a bind mount only, B's to a
        // cgroup namespace held by B's fd (B re-executes: an exec event).
        REQUIRE(a.ask("close") == "closed");
        REQUIRE(umount2(mount_b.c_str(), 0) == 0);
        const auto won_a = a.ask("reuse ipc");
        const auto won_b = won_a.rfind("reused ", 0) == 0 ? b.ask("reuse cgroup") : std::string();
        if (won_b.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": inode " << inode_a << " or " << inode_b << " went elsewhere");
            continue;
        }
        REQUIRE(t::field(a.ask("hold-reused"), "held") == inode_a);
        REQUIRE(a.ask("bind " + mount_a) == "bound");
        REQUIRE(a.ask("close") == "closed");
        REQUIRE(t::field(b.ask("hold-reused"), "held") == inode_b);
        CHECK(held_as(inode_a, "ipc", "mount"));
        CHECK(held_as(inode_b, "cgroup", "fd"));
        if (kernel_ids_expected()) {  // the kernel's id of what is mounted there now
            const auto h = pidns::ns_handle_at(AT_FDCWD, mount_a.c_str());
            REQUIRE(h);
            CHECK(with_inode(root, inode_a).at(0).id == h->id);
        }
        umount2(mount_a.c_str(), 0);
        return;
    }
    FAIL("the kernel never gave the freed inodes to the next namespaces in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("dump: a traced task (state t) is dumped, not failed as a parse error") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());
    // A task stopped under ptrace in a pid namespace of its own: its status says "t (tracing stop)".
    t::ToolProc traced({"unshare", "-pf", "--kill-child", PIDNS_NS_TOOL_BIN, "traced"});
    REQUIRE(t::field(traced.line(), "traced") == 2);
    const pid_t tracer = child_of(traced.pid());
    std::uint64_t tracer_ns = 0;
    REQUIRE(eventually_ok([&] {
        tracer_ns = root.get_process(static_cast<std::uint32_t>(tracer)).namespaces.at("pid");
        return tracer_ns != 0 && root.list_processes(tracer_ns).size() == 2 &&
               read_file("/proc/" + std::to_string(child_of(tracer)) + "/status").find("State:\tt") != std::string::npos;
    }));
    const auto traced_dump = root.dump_pid_tree(tracer_ns);
    CHECK(traced_dump.size() == 2);
    CHECK_FALSE(root.dump_pid_tree(0).empty());  // the host's namespace holds it too
}

TEST_CASE("dump: a user's churning container dumps for it every time, and the host's for root, whatever exits meanwhile") {
    PrivateBus bus;
    Daemon d(bus);
    Client root(bus.address());

    // A user's container: pid 1 starts a shell every 5 ms that forks three children and waits for
    // them (tasks whose parent pidnsd has not read yet, some of them zombies, exit all the time).
    // Its user dumps it 40 times: each dump holds only its own tasks, so each must succeed,
    // whatever exits meanwhile. (On main 1 to 2 of 40 were refused: "you may not inspect 1 of the
    // 10 tasks": a task whose parent was not indexed was judged in the host's user namespace.)
    Proc churn(concat(kAsAttacker, {"unshare", "-Urpf", "--kill-child", "sh", "-c",
                                    "while :; do sh -c 'sleep 0.02 & sleep 0.03 & true & wait' & sleep 0.005; done"}));
    const pid_t init = child_of(churn.pid());
    wait_comm(init, "sh");
    REQUIRE(eventually_ok([&] { return root.get_process(static_cast<std::uint32_t>(init)).namespaces.at("pid") != 0; }));
    const std::string at_init = "@" + std::to_string(init);
    int ok = 0, several = 0;
    std::map<int, std::string> failures;
    for (int i = 0; i < 40; ++i) {
        auto r = ctl(kAsAttacker, bus.address(), {"dump", at_init});
        if (r.status == 0) {
            ++ok;
            several += nlohmann::json::parse(r.out).at("tasks").size() > 1;
        } else {
            failures[i] = std::to_string(r.status) + ": " + r.err;
        }
    }
    // Root dumps the host's pid namespace meanwhile: a task exiting, traced or reaped while read is
    // never "Failed: parse".
    int host_ok = 0;
    std::vector<std::string> host_failures;
    for (int i = 0; i < 5; ++i) {
        try {
            host_ok += !root.dump_pid_tree(0).empty();
        } catch (const pidns::client::Error& e) {
            host_failures.push_back(e.name() + ": " + e.what());
        }
    }
    std::cout << "40 dumps of a churning container by its user: " << ok << " ok (" << several
              << " with more than its init); 5 of the host by root: " << host_ok << " ok\n";
    for (const auto& [i, f] : failures) UNSCOPED_INFO("dump " << i << ": " << f);
    CHECK(failures.empty());
    CHECK(several > 0);
    for (const auto& f : host_failures) {
        INFO(f);
        CHECK(f.find("parse") == std::string::npos);
        CHECK(f.find("Failed") == std::string::npos);
    }
    CHECK(host_ok > 0);
}

TEST_CASE("identity: stress: users churning user, mount and fd-held namespaces, zombie leaders setns()ing, readers of every method: pidnsd stays up and ends equal to a fresh scan") {
#ifdef PIDNS_SANITIZED
    const std::string seconds = "12";
#else
    const std::string seconds = "20";
#endif
    PrivateBus bus;
    Daemon d(bus, {"--verify-interval=2s"});
    Client root(bus.address());
    const std::string address = bus.address();
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<t::ToolProc>> load;
    // Three users: fd-held namespaces (bin), nsfs bind mounts in a user+mount namespace of its own
    // (sys), zombie leaders whose last thread setns()es between mount namespaces (games); man does
    // all three. The tool's stdout pipe holds their "done" lines.
    const std::uint32_t kBin = 2, kSys = 3;
    load.push_back(std::make_unique<t::ToolProc>(t::ns_tool(as_uid(kBin), {"churn-held", seconds})));
    const std::string mounts = "mount -t tmpfs t /tmp && exec " PIDNS_NS_TOOL_BIN " churn-mounts " + seconds + " /tmp";
    load.push_back(std::make_unique<t::ToolProc>(concat(as_uid(kSys), {"unshare", "-Urm", "sh", "-c", mounts})));
    load.push_back(std::make_unique<t::ToolProc>(concat(kAsAttacker, {"unshare", "-Urm", PIDNS_NS_TOOL_BIN, "zombies", seconds})));
    load.push_back(std::make_unique<t::ToolProc>(t::ns_tool(kAsVictim, {"churn-held", seconds})));
    load.push_back(std::make_unique<t::ToolProc>(concat(kAsVictim, {"unshare", "-Urm", "sh", "-c", mounts})));
    load.push_back(std::make_unique<t::ToolProc>(concat(kAsVictim, {"unshare", "-Urm", PIDNS_NS_TOOL_BIN, "zombies", seconds})));

    // Readers: root through the client library, every method in turn; the users through pidnsctl.
    std::atomic<bool> stop{false};
    std::atomic<long> calls{0}, errors{0}, unescaped{0};
    std::mutex mu;
    std::vector<std::string> failures;
    std::thread root_reader([&] {
        Client c(address);
        for (int i = 0; !stop; ++i) {
            try {
                switch (i % 9) {
                case 0: (void)c.list_namespaces(); break;
                case 1: (void)c.describe_namespaces(); break;
                case 2: (void)c.list_processes(0); break;
                case 3: (void)c.translate_pids({1, 2, 3, static_cast<std::uint32_t>(getpid())}); break;
                case 4: (void)c.statistics(); break;
                case 5: (void)c.get_process(static_cast<std::uint32_t>(getpid())); break;
                case 6: (void)c.describe_process(static_cast<std::uint32_t>(getpid())); break;
                case 7:
                    for (const auto& ns : c.list_namespaces("mnt")) (void)c.describe_namespace(ns.id);
                    break;
                case 8: (void)c.dump_pid_tree(0); break;
                }
            } catch (const pidns::client::Error& e) {
                // Namespaces and processes come and go between two calls, and a dump of the whole
                // host may meet a tree changing too fast (unstable); nothing else may fail.
                const std::string what = e.what();
                // Another user's process whose comm is not UTF-8 fails a whole reply of the
                // Describe methods until issue 23's escaping is in: not this test's subject.
                if (what.find("Failed to serialize a string value") != std::string::npos) {
                    ++unescaped;
                } else if (e.name() != "org.pidns.Error.NoSuchNamespace" && e.name() != "org.pidns.Error.NoSuchProcess" &&
                           what.find("changed while they were read") == std::string::npos) {
                    std::lock_guard lock(mu);
                    if (failures.size() < 10) failures.push_back(e.name() + ": " + what);
                    ++errors;
                }
            }
            ++calls;
        }
    });
    std::thread user_reader([&] {
        for (int i = 0; !stop; ++i) {
            const Argv& who = i % 2 ? kAsAttacker : kAsVictim;
            static const std::vector<Argv> kCommands = {{"list"}, {"ps"}, {"tree"}, {"stats"}, {"dump"}};
            auto r = ctl(who, address, kCommands[static_cast<std::size_t>(i) % kCommands.size()]);
            if (r.err.find("Failed to serialize a string value") != std::string::npos) {
                ++unescaped;  // as above (pidnsctl exits 1 or 2 on it)
            } else if (r.status == 1 && r.err.find("changed while they were read") == std::string::npos) {
                std::lock_guard lock(mu);  // 4/5 (gone, refused) are answers; 1 is a failure
                if (failures.size() < 10) failures.push_back(r.err);
                ++errors;
            }
            ++calls;
        }
    });
    for (auto& l : load) {
        const auto line = l->line(std::chrono::seconds(120));
        INFO("a load generator ended with: " << line);
        CHECK(line.rfind("done ", 0) == 0);
    }
    stop = true;
    root_reader.join();
    user_reader.join();
    load.clear();
    const auto churned = std::chrono::steady_clock::now() - started;
    REQUIRE(kill(d.pid(), 0) == 0);  // still up
    root.ping();
    std::cout << "stress: " << calls << " calls in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(churned).count() << " ms, " << errors
              << " failed (and " << unescaped << " refused a comm that is not UTF-8: issue 23); pidnsd verified "
              << stat_of(root, "VerifyMismatches") << " mismatches\n";
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(errors == 0);

    // Equal to a fresh scan: a second pidnsd started now. Every namespace both list with one inode
    // is the same (type, owner uid; the id where ids are the kernel's), and none of the load's
    // uids' namespaces is left in either, once pidnsd has caught up.
    std::set<std::uint32_t> load_uids = {kBin, kSys, kAttacker, kVictim};
    auto leftovers = [&](Client& c) {
        std::vector<std::string> out;
        for (const auto& ns : c.list_namespaces())
            if (load_uids.count(ns.owner_uid)) {
                std::string holders;
                try {
                    for (const auto& h : c.describe_namespace(ns.id).holders) holders += " " + h.kind + h.path;
                } catch (const pidns::client::Error&) {
                }
                out.push_back(ns.type + ":" + std::to_string(ns.inode) + " id " + std::to_string(ns.id) + " owner " +
                              std::to_string(ns.owner) + " level " + std::to_string(ns.level) + " nprocs " +
                              std::to_string(ns.nprocs) + " held by" + holders);
            }
        return out;
    };
    CHECK(eventually_ok([&] { return leftovers(root).empty(); }));
    INFO("left in the churned pidnsd: " << nlohmann::json(leftovers(root)).dump());
    CHECK(leftovers(root).empty());
    PrivateBus fresh_bus;
    Daemon fresh_d(fresh_bus);
    Client fresh(fresh_bus.address());
    std::map<std::uint64_t, pidns::client::NamespaceInfo> by_inode;
    for (auto& ns : fresh.list_namespaces()) by_inode[ns.inode] = ns;
    std::size_t compared = 0;
    for (const auto& ns : root.list_namespaces()) {
        auto it = by_inode.find(ns.inode);
        if (it == by_inode.end()) continue;  // came or went between the two listings (a busy host)
        INFO("inode " << ns.inode << ": " << ns.type << " " << ns.id << " owner " << ns.owner_uid << " vs a fresh scan's "
                      << it->second.type << " " << it->second.id << " owner " << it->second.owner_uid);
        CHECK(ns.type == it->second.type);
        CHECK(ns.owner_uid == it->second.owner_uid);
        if (kernel_ids_expected()) CHECK(ns.id == it->second.id);
        ++compared;
    }
    CHECK(compared >= 8);
    CHECK(leftovers(fresh).empty());
}
