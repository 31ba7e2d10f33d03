// The model against the real kernel: translations between every pair of pid namespaces equal the
// kernel's answers (NSpid lines and the NS_GET_PID_* ioctls), deep nesting, threads, holders, lsns.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "model.h"
#include "updater.h"
#include "nsfs.h"
#include "process.h"  // tests/harness
#include "support/nstree.h"

using namespace pidns;
namespace t = pidns::testing;

namespace {

// Every test that scans runs once per kernel pidnsd supports: as this one (all it has), and as each
// older one (DiscoveryOptions::assume_kernel, what --assume-kernel does): the kernel stays the oracle.
std::unique_ptr<Model> scanned_model(DiscoveryOptions opts = {}) {
    static const std::array<std::optional<KernelVersion>, 5> kKernels = {
        std::nullopt, KernelVersion{5, 14}, KernelVersion{6, 1}, KernelVersion{6, 6}, KernelVersion{6, 11}};
    opts.assume_kernel = kKernels[static_cast<std::size_t>(GENERATE(0, 1, 2, 3, 4))];
    UNSCOPED_INFO("as Linux " << (opts.assume_kernel ? opts.assume_kernel->str() : std::string("(the running kernel)")));
    auto m = Model::create(opts);
    REQUIRE(m.ok());
    auto r = (*m)->rescan();
    REQUIRE(r.ok());
    return std::move(*m);
}

NsId id_of_inode(const Model& m, ino_t inode) {
    auto id = m.index().find_by_inode(kernel_features().nsfs_dev, inode);
    INFO("inode " << inode);
    REQUIRE(id);
    return *id;
}

// For every pid namespace pair (from, to) and every task: the model's translation of the
// task's pid in `from` equals the NSpid line and the ioctl pair. Returns the cells checked.
std::size_t check_all_pairs(Model& m, const std::vector<pid_t>& tasks, const std::vector<pid_t>& ns_reps) {
    struct Ns {
        NsId id;
        t::UniqueFd fd;
        std::size_t level;
    };
    std::vector<Ns> nss;
    std::set<ino_t> seen;
    for (pid_t rep : ns_reps) {
        ino_t ino = t::oracle_ns_inode(rep, "pid");
        if (!seen.insert(ino).second) continue;
        NsId id = id_of_inode(m, ino);
        nss.push_back(Ns{id, t::open_ns(rep, "pid"), t::oracle_nspid(rep).size() - 1});
    }
    std::size_t cells = 0, differing = 0;
    for (pid_t task : tasks) {
        const auto chain = t::oracle_nspid(task);
        REQUIRE_FALSE(chain.empty());
        const ino_t own = t::oracle_ns_inode(task, "pid");
        for (const auto& from : nss) {
            // The task's pid in `from`, if `from` is its namespace or an ancestor of it.
            if (from.level >= chain.size()) continue;
            auto host_from = t::oracle_ioctl_translate(chain[from.level], from.fd.get(), nss.front().fd.get());
            if (!host_from || *host_from != chain[0]) continue;  // that number is another task there
            for (const auto& to : nss) {
                ++cells;
                auto kernel = t::oracle_ioctl_translate(chain[from.level], from.fd.get(), to.fd.get());
                auto got = m.translate(chain[from.level], from.id, to.id);
                const bool to_is_ancestor = to.level < chain.size() &&
                                            t::oracle_ioctl_translate(chain[to.level], to.fd.get(), nss.front().fd.get()) ==
                                                std::optional<pid_t>(chain[0]);
                const pid_t by_nspid = to_is_ancestor ? chain[to.level] : 0;
                if (!got || !kernel || *got != *kernel || *got != by_nspid) {
                    ++differing;
                    UNSCOPED_INFO("task " << task << " (own pidns inode " << own << ") pid " << chain[from.level]
                                          << " from ns " << from.id << " to ns " << to.id << ": model "
                                          << (got ? std::to_string(*got) : got.error().describe()) << ", ioctl "
                                          << (kernel ? std::to_string(*kernel) : "none") << ", NSpid " << by_nspid);
                }
            }
        }
    }
    CHECK(differing == 0);
    return cells;
}

}  // namespace

TEST_CASE("seed 000 t1..t5: every translation equals the kernel's") {
    t::ProcTree tree;
    auto s = t::make_seed000_tree(tree);
    auto m = scanned_model();
    std::vector<pid_t> tasks{s.t1, s.t2, s.t3, s.t4, s.t5};
    auto cells = check_all_pairs(*m, tasks, {getpid(), s.t2, s.t4});
    CHECK(cells == 1 * 3 + 2 * 3 * 2 + 2 * 3 * 3);  // t1 in 1 ns, t2/t3 in 2, t4/t5 in 3; 3 targets each
    // The seed's question: "pid 3 in the container" (ns2) is which host pid?
    const NsId ns2 = id_of_inode(*m, t::oracle_ns_inode(s.t4, "pid"));
    auto host = m->translate(t::pid_in_ns_of(s.t5), ns2, m->index().root_pidns());
    REQUIRE(host.ok());
    CHECK(*host == s.t5);
}

TEST_CASE("seed 000 ns1..ns5 hierarchy: levels, parents and every translation equal the kernel's") {
    t::ProcTree tree;
    auto h = t::make_ns_hierarchy5(tree);
    auto m = scanned_model();
    std::vector<pid_t> tasks{h.root}, reps{getpid()};
    for (int i = 1; i <= 5; ++i) {
        tasks.push_back(h.ns(i).init);
        tasks.push_back(h.ns(i).extra);
        reps.push_back(h.ns(i).init);
    }
    check_all_pairs(*m, tasks, reps);
    const std::map<int, std::pair<int, std::uint32_t>> parent_level = {{1, {0, 1}}, {2, {0, 1}}, {3, {2, 2}}, {4, {3, 3}}, {5, {3, 3}}};
    for (const auto& [i, pl] : parent_level) {
        const auto* ns = m->index().find_namespace(id_of_inode(*m, t::oracle_ns_inode(h.ns(i).init, "pid")));
        REQUIRE(ns);
        CHECK(ns->meta.level == pl.second);
        const NsId parent = pl.first == 0 ? m->index().root_pidns()
                                          : id_of_inode(*m, t::oracle_ns_inode(h.ns(pl.first).init, "pid"));
        CHECK(ns->meta.parent == parent);
        // The parent, as the kernel says.
        auto fd = t::open_ns(h.ns(i).init, "pid");
        CHECK(m->index().find_namespace(parent)->meta.inode == t::oracle_parent_inode(fd.get()));
        // init_pid of the namespace: pid 1 there is its init.
        CHECK(m->index().host_tid(ns->meta.id, 1) == h.ns(i).init);
    }
}

TEST_CASE("pid namespaces nested to the kernel's maximum depth of 32 levels translate as the kernel does, and a 33rd is refused") {
    t::ProcTree tree;
    const int levels = t::max_extra_pid_ns_levels();
    REQUIRE(levels >= 1);
    auto chain = t::make_chain(tree, levels);
    REQUIRE(static_cast<int>(chain.size()) == levels);
    // One more level is refused by the kernel.
    auto extra = tree.try_spawn(chain.back(), CLONE_NEWPID);
    CHECK_FALSE(extra);
    auto m = scanned_model();
    std::vector<pid_t> reps{getpid()};
    reps.insert(reps.end(), chain.begin(), chain.end());
    auto cells = check_all_pairs(*m, chain, reps);
    INFO("cells " << cells);
    CHECK(cells > static_cast<std::size_t>(levels) * levels);
    const auto* deepest = m->index().find_namespace(id_of_inode(*m, t::oracle_ns_inode(chain.back(), "pid")));
    REQUIRE(deepest);
    CHECK(deepest->meta.level == static_cast<std::uint32_t>(t::oracle_nspid(chain.back()).size() - 1));
}

TEST_CASE("threads inside a nested pid namespace: TIDs translate") {
    t::ProcTree tree;
    pid_t outer = tree.spawn(0, CLONE_NEWPID);
    pid_t inner = tree.spawn(outer, CLONE_NEWPID);
    std::vector<pid_t> tids{tree.spawn_thread(inner), tree.spawn_thread(inner), tree.spawn_thread(outer)};
    auto m = scanned_model();
    std::vector<pid_t> tasks = tids;
    tasks.push_back(inner);
    check_all_pairs(*m, tasks, {getpid(), outer, inner});
    auto view = m->index().find_task(tids[0]);
    REQUIRE(view);
    CHECK(view->process->tgid == inner);
}

TEST_CASE("a thread that setns()es alone is found, held by its task") {
    t::ProcTree tree;
    pid_t netowner = tree.spawn(0, CLONE_NEWNET);
    pid_t agent = tree.spawn(0, 0);
    pid_t tid = tree.spawn_thread(agent);
    tree.thread_setns(tid, "/proc/" + std::to_string(netowner) + "/ns/net");
    const ino_t net = t::oracle_ns_inode(netowner, "net");
    tree.kill_agent(netowner);
    auto m = scanned_model();
    auto id = m->index().find_by_inode(kernel_features().nsfs_dev, net);
    REQUIRE(id);
    CHECK(m->index().find_namespace(*id)->holders() == kHeldByTask);
    DiscoveryOptions no_tasks;
    no_tasks.tasks = false;
    auto m2 = scanned_model(no_tasks);
    CHECK_FALSE(m2->index().find_by_inode(kernel_features().nsfs_dev, net));
}

TEST_CASE("namespaces held by an fd, a bind mount, or only as ancestors are found with the right holder") {
    t::ProcTree tree;
    auto by_fd = t::hold_ns_by_fd(tree);
    auto by_mount = t::hold_ns_by_bind_mount(tree);
    auto user_parent = t::hide_user_ns_ancestor(tree);
    auto pid_parent = t::hide_pid_ns_ancestor(tree);
    auto user_owner = t::hide_user_ns_owner(tree);
    auto m = scanned_model();
    auto holders = [&](ino_t inode) -> int {
        auto id = m->index().find_by_inode(kernel_features().nsfs_dev, inode);
        if (!id) return -1;
        return m->index().find_namespace(*id)->holders();
    };
    CHECK(holders(by_fd.inode) == kHeldByFd);
    CHECK(holders(by_mount.inode) == kHeldByMount);
    CHECK(holders(user_parent.inode) == kHeldAsAncestor);
    CHECK(holders(pid_parent.inode) == kHeldAsAncestor);
    CHECK(holders(user_owner.inode) == kHeldAsAncestor);
    // Relations agree with the kernel.
    for (const auto* h : {&user_parent, &pid_parent, &user_owner}) {
        auto child = m->index().find_by_inode(kernel_features().nsfs_dev, h->child_inode);
        REQUIRE(child);
        const auto& meta = m->index().find_namespace(*child)->meta;
        const NsId ancestor = *m->index().find_by_inode(kernel_features().nsfs_dev, h->inode);
        CHECK((h->kind == t::HoldKind::OwnerOnly ? meta.owner : meta.parent) == ancestor);
        // And the model can open the hidden one again through its child.
        auto fd = m->open_namespace(ancestor);
        REQUIRE(fd.ok());
        CHECK(ns_identity(fd->get())->inode == h->inode);
    }
    // Each source can be switched off.
    DiscoveryOptions o;
    o.fds = false;
    o.bind_mounts = false;
    o.ancestors = false;
    auto lean = scanned_model(o);
    for (ino_t inode : {by_fd.inode, by_mount.inode, user_parent.inode, pid_parent.inode, user_owner.inode})
        CHECK_FALSE(lean->index().find_by_inode(kernel_features().nsfs_dev, inode));
    // Removing the holder removes the namespace at the next scan, and the scan says so.
    tree.unmount_ns(by_mount.mount_path);
    auto report = m->rescan();
    REQUIRE(report.ok());
    CHECK_FALSE(m->index().find_by_inode(kernel_features().nsfs_dev, by_mount.inode));
    CHECK(std::any_of(report->changes.begin(), report->changes.end(),
                      [](const NsChange& c) { return !c.added && c.type == NsType::net; }));
}

TEST_CASE("incremental: fork, exec and exit update the index, and a miss is checked with the kernel") {
    t::ProcTree tree;
    auto m = scanned_model();
    (void)m->take_changes();
    // A process made after the scan: the index misses it, the kernel check finds it.
    pid_t init = tree.spawn(0, CLONE_NEWPID | CLONE_NEWNET);
    const ino_t pidns_inode = t::oracle_ns_inode(init, "pid");
    CHECK_FALSE(m->index().find_process(init));
    auto r = m->translate(init, m->index().root_pidns(), m->index().root_pidns());
    REQUIRE(r.ok());
    CHECK(*r == init);
    REQUIRE(m->index().find_process(init));  // added on the way
    const NsId pidns = id_of_inode(*m, pidns_inode);
    CHECK(*m->translate(1, pidns, m->index().root_pidns()) == init);
    auto changes = m->take_changes();
    CHECK(std::count_if(changes.begin(), changes.end(), [](const NsChange& c) { return c.added; }) == 2);  // pid + net
    // A child made now, found by translating its pid in the new namespace (a miss, then the kernel).
    pid_t child = tree.spawn(init, 0);
    auto in_ns = t::pid_in_ns_of(child);
    auto rr = m->translate(in_ns, pidns, m->index().root_pidns());
    REQUIRE(rr.ok());
    CHECK(*rr == child);
    // Unknown pids are not found (by the index and by the kernel).
    CHECK(m->translate(99999, pidns, m->index().root_pidns()).error().code == Errc::not_found);
    // Exit: removing the last member removes the namespaces.
    tree.kill_agent(init);
    m->remove_task(child, child);
    m->remove_task(init, init);
    CHECK_FALSE(m->index().find_namespace(pidns));
    changes = m->take_changes();
    CHECK(std::count_if(changes.begin(), changes.end(), [](const NsChange& c) { return !c.added; }) == 2);
    // add_process of a vanished pid says not-found.
    CHECK(m->add_process(init).error().code == Errc::not_found);
    // A refresh (exec) picks up namespace changes made by unshare.
    pid_t agent = tree.spawn(0, 0);
    REQUIRE(m->add_process(agent).ok());
    const NsId net_before = m->index().find_process(agent)->ns_of(NsType::net);
    tree.unshare_in(agent, CLONE_NEWNET);
    REQUIRE(m->add_process(agent).ok());
    const NsId net_after = m->index().find_process(agent)->ns_of(NsType::net);
    CHECK(net_after != net_before);
    CHECK(m->index().find_namespace(net_after)->meta.inode == t::oracle_ns_inode(agent, "net"));
}

TEST_CASE("the index equals a fresh scan after incremental changes") {
    t::ProcTree tree;
    auto m = scanned_model();
    (void)t::make_ns_hierarchy5(tree);
    for (pid_t p : tree.live_agents()) REQUIRE(m->add_process(p).ok());
    auto fresh = scanned_model();
    for (pid_t p : tree.live_agents()) {
        const auto* a = m->index().find_process(p);
        const auto* b = fresh->index().find_process(p);
        REQUIRE(a);
        REQUIRE(b);
        // The same namespaces: by id where they are the kernel's, by inode and type where each
        // model assigned its own (two models number them in the order they met them).
        if (m->features().ns_get_id) CHECK(a->ns == b->ns);
        for (auto type : kAllNsTypes) {
            const auto& na = m->index().find_namespace(a->ns_of(type))->meta;
            const auto& nb = fresh->index().find_namespace(b->ns_of(type))->meta;
            CHECK(na.inode == nb.inode);
            CHECK(na.type == nb.type);
        }
        CHECK(std::vector<std::int32_t>(a->chains.nspid().begin(), a->chains.nspid().end()) ==
              std::vector<std::int32_t>(b->chains.nspid().begin(), b->chains.nspid().end()));
    }
}

TEST_CASE("without kernel ids: assigned ids start at 2^32, stay stable across rescans, are never reused") {
    t::ProcTree tree;
    DiscoveryOptions o;
    o.kernel_ids = false;
    auto m = Model::create(o);
    REQUIRE(m.ok());
    auto& model = **m;
    pid_t first = tree.spawn(0, CLONE_NEWPID | CLONE_NEWNET);
    REQUIRE(model.rescan().ok());
    std::map<std::uint64_t, NsId> by_inode;
    std::set<NsId> seen;
    for (const auto& [id, ns] : model.index().namespaces()) {
        CHECK(id >= (NsId{1} << 32));
        by_inode[ns.meta.inode] = id;
        seen.insert(id);
    }
    CHECK(seen.size() == model.index().namespace_count());
    const ino_t first_net = t::oracle_ns_inode(first, "net");
    // Translation works with assigned ids too.
    const NsId pidns = by_inode.at(t::oracle_ns_inode(first, "pid"));
    CHECK(*model.translate(1, pidns, model.index().root_pidns()) == first);
    // A second scan keeps every id of a namespace still there.
    REQUIRE(model.rescan().ok());
    for (const auto& [id, ns] : model.index().namespaces()) CHECK(by_inode.at(ns.meta.inode) == id);
    // A namespace that went away (its last process's exit) takes its id with it; new ones get
    // new ids, even if the kernel reuses the inode number.
    tree.kill_agent(first);
    model.remove_task(first, first);
    CHECK_FALSE(model.index().find_by_inode(kernel_features().nsfs_dev, first_net));
    pid_t second = tree.spawn(0, CLONE_NEWNET);
    REQUIRE(model.rescan().ok());
    const NsId net2 = *model.index().find_by_inode(kernel_features().nsfs_dev, t::oracle_ns_inode(second, "net"));
    CHECK(net2 >= (NsId{1} << 32));
    CHECK_FALSE(seen.count(net2));
}

TEST_CASE("updater: a batch's net effect, a task that exits later in the batch is never read") {
    t::ProcTree tree;
    auto m = scanned_model();
    Updater u(*m);
    const pid_t a = tree.spawn(0, 0);
    const pid_t b = tree.spawn(0, 0);
    // Events as the kernel would send them: a forks and "exits" in the same batch (it is alive:
    // if the updater read it anyway, it would be indexed); b forks and execs (one read).
    const std::vector<ProcEvent> batch{
        ProcEvent{ProcEventKind::fork, a, a, getpid(), getpid(), 0},
        ProcEvent{ProcEventKind::fork, b, b, getpid(), getpid(), 0},
        ProcEvent{ProcEventKind::exec, b, b, 0, 0, 0},
        ProcEvent{ProcEventKind::exit, a, a, 0, 0, 0},
    };
    u.apply(batch);
    CHECK_FALSE(m->index().find_process(a));
    CHECK(m->index().find_process(b));
    CHECK(u.stats().events == 4);
    CHECK(u.stats().reads == 1);
    CHECK(u.stats().coalesced == 2);  // a's fork, and b's fork (b is read at its exec)
    // Pid reuse inside one batch: an exit, then a fork of the same pid, is read.
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::exit, a, a, 0, 0, 0},
                                   ProcEvent{ProcEventKind::fork, a, a, getpid(), getpid(), 0}});
    CHECK(m->index().find_process(a));
}

TEST_CASE("updater: a thread's fork reads that thread only, and its exit removes it") {
    t::ProcTree tree;
    auto m = scanned_model();
    Updater u(*m);
    const pid_t agent = tree.spawn(0, 0);
    REQUIRE(m->add_process(agent).ok());
    const pid_t tid = tree.spawn_thread(agent);
    CHECK_FALSE(m->index().find_task(tid));
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::fork, tid, agent, agent, agent, 0}});
    auto task = m->index().find_task(tid);
    REQUIRE(task);
    CHECK(task->process->tgid == agent);
    CHECK(std::vector<std::int32_t>(task->nspid.begin(), task->nspid.end()) == t::oracle_nspid(tid));
    CHECK(u.stats().reads == 1);
    tree.exit_thread(tid);
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::exit, tid, agent, 0, 0, 0}});
    CHECK_FALSE(m->index().find_task(tid));
    CHECK(m->index().find_process(agent));
}

TEST_CASE("verify_process: unshare() and a thread's setns() without events are found and re-read") {
    t::ProcTree tree;
    auto m = scanned_model();
    const pid_t a = tree.spawn(0, 0);
    const pid_t holder = tree.spawn(0, CLONE_NEWUTS);
    REQUIRE(m->add_process(a).ok());
    REQUIRE(m->add_process(holder).ok());
    CHECK(*m->verify_process(a) == false);  // nothing changed: no re-read
    const auto before = m->verify_mismatches();

    tree.unshare_in(a, CLONE_NEWNET);
    const ino_t net = t::oracle_ns_inode(a, "net");
    CHECK_FALSE(m->index().find_by_inode(kernel_features().nsfs_dev, net));
    CHECK(*m->verify_process(a) == true);
    CHECK(m->index().find_process(a)->ns_of(NsType::net) == id_of_inode(*m, net));
    CHECK(m->verify_mismatches() == before + 1);

    // unshare(CLONE_NEWPID) changes only pid_for_children, readable once its init exists.
    tree.unshare_in(a, CLONE_NEWPID);
    const pid_t init = tree.spawn(a, 0);
    CHECK(*m->verify_process(a) == true);
    CHECK(m->index().find_process(a)->pid_for_children == id_of_inode(*m, t::oracle_ns_inode(init, "pid")));

    const pid_t tid = tree.spawn_thread(holder);
    REQUIRE(m->add_process(holder).ok());
    const pid_t other = tree.spawn(0, CLONE_NEWUTS);
    tree.thread_setns(tid, "/proc/" + std::to_string(other) + "/ns/uts");
    CHECK(*m->verify_process(holder) == true);
    CHECK(id_of_inode(*m, t::oracle_ns_inode(tid, "uts")) == id_of_inode(*m, t::oracle_ns_inode(other, "uts")));
    CHECK(m->index().find_namespace(id_of_inode(*m, t::oracle_ns_inode(other, "uts")))->holders() & kHeldByTask);

    tree.kill_agent(a);
    CHECK(m->verify_process(a).error().code == Errc::not_found);
    CHECK_FALSE(m->index().find_process(a));
}

TEST_CASE("a process's open fds beyond the first 4096 are read by a full rescan only, and counted") {
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        const rlimit r{8192, 8192};
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) _exit(1);
        const int devnull = open("/dev/null", O_RDONLY);
        for (int i = 0; i < 5000; ++i)
            if (dup(devnull) < 0) _exit(1);
        const int ns = open("/proc/self/ns/uts", O_RDONLY);  // a namespace fd far down the table
        if (write(pipefd[1], &ns, sizeof ns) != sizeof ns) _exit(1);
        for (;;) pause();
    }
    pidns::harness::Reap reap{child};
    int nsfd = -1;
    REQUIRE(read(pipefd[0], &nsfd, sizeof nsfd) == sizeof nsfd);
    REQUIRE(nsfd > 5000);
    auto m = Model::create();
    REQUIRE(m.ok());
    auto holds = [&] {
        const Process* p = (*m)->index().find_process(child);
        REQUIRE(p != nullptr);
        if (!p->ns_fds) return false;
        for (const auto& [fd, id] : *p->ns_fds)
            if (fd == nsfd) return true;
        return false;
    };
    REQUIRE((*m)->rescan().ok());  // a full scan reads every fd
    CHECK(holds());
    CHECK((*m)->fd_scans_truncated() == 0);
    REQUIRE((*m)->add_process(child).ok());  // an event's read looks at the first 4096 only
    CHECK_FALSE(holds());
    CHECK((*m)->fd_scans_truncated() == 1);
    close(pipefd[0]);
    close(pipefd[1]);
}
