// A namespace is never mistaken for another (issue 22): the kernel hands a freed nsfs inode to the
// next namespace made, of any type; an index entry whose namespace died unseen (its fd closed, its
// bind mount gone) must be dropped, never merged with the newcomer, on every kernel pidnsd supports.
#include <catch2/catch.hpp>

#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "access.h"
#include "model.h"
#include "nsfs.h"
#include "pid_dump.h"
#include "view.h"
#include "support/nstree.h"
#include "process.h"  // tests/harness
#include "support/ns_tool.h"

using namespace pidns;
namespace t = pidns::testing;

namespace {

const std::vector<std::string> kAs1001 = pidns::harness::as_uid(1001);
const std::vector<std::string> kAs1005 = pidns::harness::as_uid(1005);
constexpr int kAttempts = 4;  // a busy host may take the freed inode first: the whole shape again

// Each identity test runs as on this kernel (NS_GET_ID, nsfs handles), as on 5.14 and 6.1, and
// with library-assigned ids on this kernel: every path older kernels take.
DiscoveryOptions kernel_mode() {
    DiscoveryOptions o;
    switch (GENERATE(0, 1, 2, 3)) {
    case 1: o.assume_kernel = KernelVersion{5, 14}; break;
    case 2: o.assume_kernel = KernelVersion{6, 1}; break;
    case 3: o.kernel_ids = false; break;
    default: break;
    }
    UNSCOPED_INFO("as Linux " << (o.assume_kernel ? o.assume_kernel->str() : std::string("(the running kernel)"))
                              << (o.kernel_ids ? "" : ", kernel ids off"));
    return o;
}

std::unique_ptr<Model> scanned(const DiscoveryOptions& o) {
    auto m = Model::create(o);
    REQUIRE(m.ok());
    REQUIRE((*m)->rescan().ok());
    return std::move(*m);
}

const Namespace& entry_of_inode(const Model& m, std::uint64_t inode) {
    auto id = m.index().find_by_inode(kernel_features().nsfs_dev, inode);
    INFO("inode " << inode);
    REQUIRE(id);
    return *m.index().find_namespace(*id);
}

const Namespace& ns_of(const Model& m, pid_t pid, NsType type) {
    const Process* p = m.index().find_process(pid);
    INFO("process " << pid);
    REQUIRE(p);
    return *m.index().find_namespace(p->ns_of(type));
}

// What the kernel says of /proc/PID/ns/TYPE: its inode, owner uid (a user namespace) and id.
struct KernelNs {
    std::uint64_t inode = 0, id = 0;
    std::uint32_t owner_uid = 0;
};
KernelNs kernel_ns(pid_t pid, const char* type) {
    auto fd = t::open_ns(pid, type);
    KernelNs k;
    k.inode = t::oracle_fd_inode(fd.get());
    if (kernel_features().ns_get_id) k.id = t::oracle_ns_id(fd.get());
    auto uid = ns_get_owner_uid(fd.get());
    k.owner_uid = uid ? *uid : 0;
    return k;
}

// The kernel's own answer: may uid `uid` (no capabilities, the host's user namespace) open
// /proc/PID/ns/pid? (A forked child drops to it and tries; the kernel tests are single-threaded.)
bool kernel_allows(uid_t uid, pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/pid";
    const pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(2);
        _exit(open(path.c_str(), O_RDONLY | O_CLOEXEC) >= 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(c, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) != 2);
    return WEXITSTATUS(status) == 0;
}

using Clock = std::chrono::steady_clock;

std::vector<std::string> concat_prefix(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Caller host_caller(pid_t pid, const Model& m, std::uint32_t uid) {
    Caller c;
    c.pid = pid;
    c.bus_uid = uid;
    c.pidns = m.index().root_pidns();
    c.userns = m.index().root_userns();
    c.uid = {uid, uid, uid, uid};
    c.gid = {uid, uid, uid, uid};
    return c;
}

// Every namespace the index holds with the inode of one in `fresh` (a new scan) is that one: same
// type and, with kernel ids, same id. Returns how many were compared.
std::size_t check_against(const Model& m, const Model& fresh) {
    std::size_t n = 0;
    for (const auto& [id, ns] : fresh.index().namespaces()) {
        auto mine = m.index().find_by_inode(ns.meta.dev, ns.meta.inode);
        if (!mine) continue;
        const auto& e = m.index().find_namespace(*mine)->meta;
        INFO("inode " << ns.meta.inode << ": " << ns_type_name(e.type) << " " << e.id << " in the index, "
                      << ns_type_name(ns.meta.type) << " " << id << " in a fresh scan");
        CHECK(e.type == ns.meta.type);
        CHECK(e.owner_uid == ns.meta.owner_uid);
        if (kernel_features().ns_get_id && m.options().kernel_ids && !m.options().assume_kernel) CHECK(*mine == id);
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("identity: another uid's user namespace that reuses a dead one's inode is its own, never the dead one's") {
    const auto opts = kernel_mode();
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        auto m = scanned(opts);
        // uid 1001's user namespace X, held only by an fd of a process that re-executed (so an
        // exec event makes the model read the fd).
        t::ToolProc attacker(t::ns_tool(kAs1001, {"hold", "user"}));
        const auto x_inode = t::field(attacker.line(), "held");
        REQUIRE(x_inode != 0);
        REQUIRE(m->add_process(attacker.pid()).ok());
        const Namespace& x = entry_of_inode(*m, x_inode);
        const NsId x_id = x.meta.id;
        CHECK(x.meta.type == NsType::user);
        CHECK(x.meta.owner_uid == 1001);
        CHECK(x.holders() == kHeldByFd);
        // The fd closed: no event. uid 1005 makes user namespaces until one has X's inode, and
        // runs a process there (its fork event makes the model read it).
        REQUIRE(attacker.ask("close") == "closed");
        t::ToolProc victim(t::ns_tool(kAs1005, {"reuse", "user", std::to_string(x_inode), "--", "sleep", "1000"}));
        const auto won = victim.line();
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": the kernel gave inode " << x_inode << " to someone else (" << won << ")");
            continue;
        }
        const pid_t v = static_cast<pid_t>(t::field(won, "reused"));
        REQUIRE(m->add_process(v).ok());
        const KernelNs k = kernel_ns(v, "user");
        REQUIRE(k.inode == x_inode);
        const Namespace& y = ns_of(*m, v, NsType::user);
        CHECK(y.meta.inode == x_inode);
        CHECK(y.meta.type == NsType::user);
        CHECK(y.meta.owner_uid == 1005);
        CHECK(y.meta.owner_uid == k.owner_uid);
        CHECK(y.meta.id != x_id);
        if (k.id != 0 && opts.kernel_ids && !opts.assume_kernel) CHECK(y.meta.id == k.id);
        // The dead namespace's holder no longer holds anything (it was read again).
        const Process* a = m->index().find_process(attacker.pid());
        REQUIRE(a);
        CHECK_FALSE(a->ns_fds);
        CHECK_FALSE(m->index().find_namespace(x_id));
        // The access rule agrees with the kernel: uid 1001 may not inspect the victim, 1005 may.
        const Process* vp = m->index().find_process(v);
        REQUIRE(vp);
        CHECK(kernel_allows(1005, v));
        CHECK_FALSE(kernel_allows(1001, v));
        CHECK(ptrace_may_read(m->index(), host_caller(attacker.pid(), *m, 1001), *vp) == Access::denied);
        CHECK(ptrace_may_read(m->index(), host_caller(victim.pid(), *m, 1005), *vp) == Access::allowed);
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: a uts namespace that takes a dead net namespace's inode is a uts namespace") {
    const auto opts = kernel_mode();
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        auto m = scanned(opts);
        t::ToolProc holder(t::ns_tool({}, {"hold", "net"}));
        const auto inode = t::field(holder.line(), "held");
        REQUIRE(inode != 0);
        REQUIRE(m->add_process(holder.pid()).ok());
        const NsId net_id = entry_of_inode(*m, inode).meta.id;
        CHECK(entry_of_inode(*m, inode).meta.type == NsType::net);
        REQUIRE(holder.ask("close") == "closed");
        const auto won = holder.ask("reuse uts");
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": the kernel gave inode " << inode << " to someone else (" << won << ")");
            continue;
        }
        const pid_t w = static_cast<pid_t>(t::field(won, "reused"));
        REQUIRE(t::oracle_ns_inode(w, "uts") == inode);
        REQUIRE(m->add_process(w).ok());
        const Namespace& uts = ns_of(*m, w, NsType::uts);
        CHECK(uts.meta.type == NsType::uts);
        CHECK(uts.meta.inode == inode);
        CHECK(uts.meta.id != net_id);
        CHECK(entry_of_inode(*m, inode).meta.type == NsType::uts);
        CHECK_FALSE(m->index().find_namespace(net_id));
        // Its set names one namespace per slot, each of the slot's type.
        const Process* p = m->index().find_process(w);
        for (auto type : kAllNsTypes) CHECK(m->index().find_namespace(p->ns_of(type))->meta.type == type);
        auto fresh = scanned(opts);
        CHECK(check_against(*m, *fresh) > 8);
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: fd-held and mount-held namespaces die and each one's inode goes to a namespace of another type held the other way") {
    const auto opts = kernel_mode();
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        auto m = scanned(opts);
        const t::MountPoints mounts;
        const std::string &mount_a = mounts.a, &mount_b = mounts.b;
        // A: a net namespace held by A's fd. B: a uts namespace held by a bind mount only.
        t::HeldByFdAndMount held(mount_b);
        auto &a = held.a, &b = held.b;
        const auto inode_a = held.inode_a, inode_b = held.inode_b;
        REQUIRE(m->add_process(a.pid()).ok());
        REQUIRE(m->add_process(b.pid()).ok());
        REQUIRE(m->refresh_mounts().ok());
        CHECK(entry_of_inode(*m, inode_a).holders() == kHeldByFd);
        CHECK(entry_of_inode(*m, inode_b).holders() == kHeldByMount);
        // Both die unseen: the fd closed, the mount gone.
        REQUIRE(a.ask("close") == "closed");
        REQUIRE(umount2(mount_b.c_str(), 0) == 0);
        // A's inode goes to an ipc namespace that ends up held by a bind mount only; B's to a
        // cgroup namespace held by B's fd (B re-executes: an exec event). (Not a net namespace: one
        // takes a hundred-odd inodes for its /proc/net entries, the freed one among them.)
        const auto won_a = a.ask("reuse ipc");
        if (won_a.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": inode " << inode_a << " went elsewhere (" << won_a << ")");
            continue;
        }
        REQUIRE(t::field(a.ask("hold-reused"), "held") == inode_a);
        REQUIRE(a.ask("bind " + mount_a) == "bound");
        REQUIRE(a.ask("close") == "closed");
        const auto won_b = b.ask("reuse cgroup");
        if (won_b.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": inode " << inode_b << " went elsewhere (" << won_b << ")");
            continue;
        }
        REQUIRE(t::field(b.ask("hold-reused"), "held") == inode_b);
        REQUIRE(m->add_process(b.pid()).ok());  // its exec event: an fd of a cgroup namespace with the uts one's inode
        REQUIRE(m->refresh_mounts().ok());      // a mount of an ipc namespace with the net one's inode
        const Namespace& ipc = entry_of_inode(*m, inode_a);
        CHECK(ipc.meta.type == NsType::ipc);
        CHECK(ipc.holders() == kHeldByMount);
        const Namespace& cgroup = entry_of_inode(*m, inode_b);
        CHECK(cgroup.meta.type == NsType::cgroup);
        CHECK(cgroup.holders() == kHeldByFd);
        auto fresh = scanned(opts);
        CHECK(check_against(*m, *fresh) > 8);
        CHECK(entry_of_inode(*fresh, inode_a).meta.type == NsType::ipc);
        CHECK(entry_of_inode(*fresh, inode_b).meta.type == NsType::cgroup);
        return;
    }
    FAIL("the kernel never gave the freed inodes to the next namespaces in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: without kernel ids a rescan gives a new id, not the dead one's, to a namespace that reused its inode") {
    DiscoveryOptions opts;
    opts.kernel_ids = false;
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        auto m = scanned(opts);
        t::ToolProc attacker(t::ns_tool(kAs1001, {"hold", "user"}));
        const auto inode = t::field(attacker.line(), "held");
        REQUIRE(inode != 0);
        REQUIRE(m->rescan().ok());
        const NsId x_id = entry_of_inode(*m, inode).meta.id;
        REQUIRE(attacker.ask("close") == "closed");
        t::ToolProc victim(t::ns_tool(kAs1005, {"reuse", "user", std::to_string(inode), "--", "sleep", "1000"}));
        const auto won = victim.line();
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": inode " << inode << " went elsewhere (" << won << ")");
            continue;
        }
        REQUIRE(m->rescan().ok());
        const Namespace& y = entry_of_inode(*m, inode);
        CHECK(y.meta.owner_uid == 1005);
        CHECK(y.meta.id != x_id);
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: the verify pass finds an fd that now reaches another namespace with the same number and inode") {
    // The same process closes its fd to X and opens another uid's namespace Y, which the kernel
    // gave X's inode, at the same fd number: its fd links read exactly as before. Only asking the
    // kernel who the namespace is tells (with an id, or an owner uid that differs).
    auto opts = kernel_mode();
    opts.confirm_interval = std::chrono::seconds(0);
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        auto m = scanned(opts);
        t::ToolProc holder(t::ns_tool({}, {"hold", "user"}));  // root: owner uid 0
        const auto inode = t::field(holder.line(), "held");
        REQUIRE(inode != 0);
        REQUIRE(m->add_process(holder.pid()).ok());
        const NsId x_id = entry_of_inode(*m, inode).meta.id;
        REQUIRE(holder.ask("close") == "closed");
        t::ToolProc victim(t::ns_tool(kAs1005, {"reuse", "user", std::to_string(inode), "--", "sleep", "1000"}));
        const auto won = victim.line();
        if (won.rfind("reused ", 0) != 0) {
            WARN("attempt " << attempt << ": inode " << inode << " went elsewhere (" << won << ")");
            continue;
        }
        const pid_t v = static_cast<pid_t>(t::field(won, "reused"));
        const auto opened = holder.ask("open " + std::to_string(v) + " user");
        REQUIRE(opened.rfind("opened ", 0) == 0);
        const Process* before = m->index().find_process(holder.pid());
        REQUIRE(before);
        REQUIRE(before->ns_fds);
        REQUIRE((*before->ns_fds).size() == 1);
        REQUIRE((*before->ns_fds)[0].first == static_cast<std::int32_t>(t::field(opened, "opened")));
        REQUIRE(m->verify_process(holder.pid()).ok());
        const Process* after = m->index().find_process(holder.pid());
        REQUIRE(after);
        REQUIRE(after->ns_fds);
        const Namespace& y = *m->index().find_namespace((*after->ns_fds)[0].second);
        CHECK(y.meta.inode == inode);
        CHECK(y.meta.owner_uid == 1005);
        CHECK(y.meta.id != x_id);
        CHECK_FALSE(m->index().find_namespace(x_id));
        return;
    }
    FAIL("the kernel never gave the freed inode to the next namespace in " << kAttempts << " attempts (a busy host?)");
}

TEST_CASE("identity: a user's churning container dumps for it every time: exited tasks are judged in their own user namespace") {
    // Its pid 1 starts a shell every 5 ms that forks three children and waits for them: tasks
    // exit all the time, some read as zombies, most with a parent the index never read (nothing
    // feeds this model events). Each dump holds only the user's own tasks: none may be refused.
    const auto opts = kernel_mode();
    auto m = scanned(opts);
    t::ToolProc churn(concat_prefix(kAs1001, {"unshare", "-Urpf", "--kill-child", "sh", "-c",
                                              "echo started; while :; do sh -c 'sleep 0.02 & sleep 0.03 & true & wait' & "
                                              "sleep 0.005; done"}));
    REQUIRE(churn.line() == "started");
    pid_t init = 0;
    for (int i = 0; i < 500 && init == 0; ++i) {
        init = t::child_of_pid(churn.pid());
        if (init == 0) usleep(10000);
    }
    REQUIRE(init != 0);
    REQUIRE(m->add_process(init).ok());
    const NsId pidns = m->index().find_process(init)->ns_of(NsType::pid);
    Caller user = host_caller(churn.pid(), *m, 1001);
    int refused = 0, bigger = 0;
    for (int i = 0; i < 40; ++i) {
        PidTreeDump dump(*m, pidns);
        Result<bool> done = false;
        while ((done = dump.step(Clock::time_point::max())) && !*done) {
        }
        REQUIRE(done.ok());
        CallerView view(*m, user);
        std::optional<std::size_t> denied;
        while (!(denied = dump.count_uninspectable(view, Clock::time_point::max()))) {
        }
        INFO("dump " << i << " of " << dump.tasks().size() << " tasks");
        CHECK(*denied == 0);
        refused += *denied != 0;
        bigger += dump.tasks().size() > 1;
        usleep(2000);
    }
    CHECK(refused == 0);
    CHECK(bigger > 0);
}
