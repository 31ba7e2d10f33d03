// A process whose main thread called pthread_exit() while its other threads live: its leader is a
// zombie whose /proc/TGID/ns/* links fail, but it is one live process. Against the real kernel: it
// is found by a rescan, by add_process, by real proc connector events, keeps its namespaces in the
// index, translates its threads both ways as the kernel does, survives verify_process and its
// leader's exit event, and its last thread's exit removes it (and its namespaces).
#include <catch2/catch.hpp>

#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "model.h"
#include "nsfs.h"
#include "proc_connector.h"
#include "updater.h"
#include "support/lsns_oracle.h"
#include "support/nstree.h"
#include "support/zombie_leader.h"

using namespace pidns;
namespace t = pidns::testing;

namespace {

constexpr std::array<const char*, kNsTypeCount> kTypes = {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"};

std::unique_ptr<Model> scanned_model(const DiscoveryOptions& opts = {}) {
    auto m = Model::create(opts);
    REQUIRE(m.ok());
    auto r = (*m)->rescan();
    REQUIRE(r.ok());
    return std::move(*m);
}

NsId id_of_inode(const Model& m, std::uint64_t inode) {
    auto id = m.index().find_by_inode(kernel_features().nsfs_dev, inode);
    INFO("inode " << inode);
    REQUIRE(id);
    return *id;
}

// Everything the index must say about the zombie-leader process `z`, checked against the kernel:
// indexed under its tgid, read through its lowest live thread, each of its 8 namespaces (the
// threads' links) in the index with a process holder, every thread found with the NSpid chain of
// /proc/TGID/task/TID/status, and every task's pid translated both ways between its own pid
// namespace and ours as the NS_GET_PID_* ioctls do.
void check_indexed(Model& m, const t::ZombieLeader& z) {
    const pid_t tgid = z.tgid();
    const auto tids = z.tids();
    REQUIRE_FALSE(tids.empty());
    const Process* p = m.index().find_process(tgid);
    REQUIRE(p != nullptr);
    CHECK(p->ns_tid == *std::min_element(tids.begin(), tids.end()));
    // The leader's chains and start time; the namespaces of its threads.
    CHECK(std::vector<pid_t>(p->chains.nspid().begin(), p->chains.nspid().end()) ==
          t::ZombieLeader::nspid_of("/proc/" + std::to_string(tgid) + "/status"));
    for (std::size_t i = 0; i < kNsTypeCount; ++i) {
        INFO("namespace " << kTypes[i]);
        const auto inode = t::ZombieLeader::thread_ns_inode(tgid, tids.front(), kTypes[i]);
        const NsId id = id_of_inode(m, inode);
        CHECK(p->ns[i] == id);
        const Namespace* ns = m.index().find_namespace(id);
        REQUIRE(ns != nullptr);
        CHECK((ns->holders() & kHeldByProcess) != 0);
        CHECK(std::find(ns->members.begin(), ns->members.end(), tgid) != ns->members.end());
    }
    const NsId pidns = p->ns_of(NsType::pid);
    const NsId root = m.index().root_pidns();
    auto own_fd = t::open_path("/proc/self/ns/pid");
    auto ns_fd = t::open_path(t::ZombieLeader::task_path(tgid, tids.front(), "ns/pid"));
    std::vector<pid_t> tasks = tids;
    tasks.push_back(tgid);  // the zombie leader's pid names the process while it lives
    for (pid_t task : tasks) {
        INFO("task " << task);
        const auto chain = t::ZombieLeader::nspid_of(t::ZombieLeader::task_path(tgid, task, "status"));
        REQUIRE(chain.size() >= 1);
        auto view = m.index().find_task(task);
        REQUIRE(view);
        CHECK(view->process->tgid == tgid);
        CHECK(std::vector<pid_t>(view->nspid.begin(), view->nspid.end()) == chain);
        const pid_t own = chain.back();
        // Out of its namespace and into it, as the kernel says.
        CHECK(t::oracle_ioctl_translate(own, ns_fd.get(), own_fd.get()) == std::optional<pid_t>(task));
        CHECK(t::oracle_ioctl_translate(task, own_fd.get(), ns_fd.get()) == std::optional<pid_t>(own));
        auto out = m.translate(own, pidns, root);
        REQUIRE(out.ok());
        CHECK(*out == task);
        auto in = m.translate(task, root, pidns);
        REQUIRE(in.ok());
        CHECK(*in == own);
    }
}

// Reads the proc connector until `done(event)` holds for an event (or 5 s pass); returns every
// event read, in order.
std::vector<ProcEvent> read_events_until(ProcConnector& pc, const std::function<bool(const ProcEvent&)>& done) {
    std::vector<ProcEvent> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        pollfd p{pc.fd(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        auto r = pc.read_some();
        REQUIRE(r.ok());
        REQUIRE_FALSE(r->lost);
        for (const auto& e : r->events) {
            out.push_back(e);
            seen = seen || done(e);
        }
    }
    REQUIRE(seen);
    return out;
}

bool removed(const std::vector<NsChange>& changes, NsId id) {
    return std::any_of(changes.begin(), changes.end(), [&](const NsChange& c) { return c.id == id && !c.added; });
}

}  // namespace

TEST_CASE("zombie leader: a fresh rescan indexes its process through a live thread, with its namespaces and threads") {
    t::ZombieLeader z(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS, 2);
    const pid_t tgid = z.tgid();
    REQUIRE(t::ZombieLeader::state_of("/proc/" + std::to_string(tgid) + "/stat") == 'Z');
    auto m = Model::create();
    REQUIRE(m.ok());
    auto report = (*m)->rescan();
    REQUIRE(report.ok());
    check_indexed(**m, z);
    const Process* p = (*m)->index().find_process(tgid);
    // Credentials and start time: the live thread's credentials, the leader's start time.
    CHECK(p->uid[1] == ::geteuid());
    CHECK(p->dumpable);
    REQUIRE((*m)->refresh_credentials(tgid).ok());
    // Its namespaces open through its live thread (the leader's links are gone).
    for (const char* type : {"pid", "net", "uts"}) {
        INFO(type);
        const auto inode = t::ZombieLeader::thread_ns_inode(tgid, z.tids().front(), type);
        auto fd = (*m)->open_namespace(id_of_inode(**m, inode));
        REQUIRE(fd.ok());
        CHECK(ns_identity(fd->get())->inode == inode);
    }
    // The verify pass finds nothing to change and keeps it.
    auto v = (*m)->verify_process(tgid);
    REQUIRE(v.ok());
    CHECK_FALSE(*v);
    CHECK((*m)->index().find_process(tgid));
    // Without the tasks source the process is still read (through a thread), its threads are not.
    DiscoveryOptions no_tasks;
    no_tasks.tasks = false;
    auto lean = scanned_model(no_tasks);
    const Process* lp = lean->index().find_process(tgid);
    REQUIRE(lp != nullptr);
    CHECK(lp->ns == p->ns);
    CHECK_FALSE(lp->threads);
}

TEST_CASE("zombie leader: lsns -t pid lists what the index lists") {
    REQUIRE(::system("command -v lsns >/dev/null") == 0);
    t::ZombieLeader z(CLONE_NEWPID, 1);
    const auto inode = t::ZombieLeader::thread_ns_inode(z.tgid(), z.tids().front(), "pid");
    std::string diffs;
    bool listed = false;
    // The host changes under us (other processes come and go): retry a few times, each a fresh pair.
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto json = t::lsns_listing();  // or, where a hostile comm fails lsns, the test's own reading
        auto m = scanned_model();
        diffs.clear();
        listed = false;
        for (const auto& e : json.at("namespaces")) {
            if (e.at("type") != "pid") continue;
            const auto ns_inode = e.at("ns").get<std::uint64_t>();
            const auto lsns_pid = e.at("pid").get<std::int64_t>();
            auto id = m->index().find_by_inode(kernel_features().nsfs_dev, ns_inode);
            if (!id) {
                diffs += "pid:[" + std::to_string(ns_inode) + "] is not in the index\n";
                continue;
            }
            const auto& members = m->index().find_namespace(*id)->members;
            const std::int64_t lowest = members.empty() ? 0 : *std::min_element(members.begin(), members.end());
            if (lowest != lsns_pid)
                diffs += "pid:[" + std::to_string(ns_inode) + "]: lowest pid " + std::to_string(lowest) + ", lsns " +
                         std::to_string(lsns_pid) + "\n";
            if (ns_inode == inode) {
                listed = true;
                CHECK(lsns_pid == z.tgid());
                CHECK(e.at("nprocs").get<int>() == 1);
                CHECK(members == std::vector<std::int32_t>{z.tgid()});
            }
        }
        if (diffs.empty()) break;
    }
    INFO(diffs);
    CHECK(diffs.empty());
    CHECK(listed);
}

TEST_CASE("zombie leader: found by add_process, kept at its leader's exit event, removed by its last thread's exit") {
    const int flags = GENERATE(0, CLONE_NEWPID | CLONE_NEWNET);
    INFO("unshare flags " << flags);
    auto m = scanned_model();
    Updater u(*m);
    t::ZombieLeader z(flags, 2);
    const pid_t tgid = z.tgid();
    CHECK_FALSE(m->index().find_process(tgid));
    // A fork or exec event's read.
    REQUIRE(m->add_process(tgid).ok());
    check_indexed(*m, z);
    (void)m->take_changes();
    const NsId pidns = m->index().find_process(tgid)->ns_of(NsType::pid);
    const NsId netns = m->index().find_process(tgid)->ns_of(NsType::net);
    // The leader's exit event (as the kernel sends it: pid == tgid) while threads live: a thread's exit.
    const auto reads = u.stats().reads;
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::exit, tgid, tgid, 0, 0, 0}});
    CHECK(u.stats().reads == reads + 1);  // re-read instead of removed
    check_indexed(*m, z);
    // The thread it was read through exits: read through the other one.
    const pid_t first = m->index().find_process(tgid)->ns_tid;
    z.end_thread(first);
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::exit, first, tgid, 0, 0, 0}});
    CHECK_FALSE(m->index().find_task(first));
    check_indexed(*m, z);
    CHECK(m->take_changes().empty());
    // The last thread's exit (the kernel sends nothing when the zombie leader is reaped): the
    // process ends while /proc still shows its zombie leader.
    const pid_t last = z.tids().front();
    z.end_thread(last);
    REQUIRE(t::ZombieLeader::state_of("/proc/" + std::to_string(tgid) + "/stat") == 'Z');
    u.apply(std::vector<ProcEvent>{ProcEvent{ProcEventKind::exit, last, tgid, 0, 0, 0}});
    CHECK_FALSE(m->index().find_process(tgid));
    CHECK_FALSE(m->index().find_task(last));
    if (flags != 0) {
        // Nothing else held its namespaces: they leave with it.
        CHECK_FALSE(m->index().find_namespace(pidns));
        CHECK_FALSE(m->index().find_namespace(netns));
        const auto changes = m->take_changes();
        CHECK(removed(changes, pidns));
        CHECK(removed(changes, netns));
    }
    // A zombie with no live thread is not a process to index.
    CHECK(m->add_process(tgid).error().code == Errc::not_found);
    z.reap();
}

TEST_CASE("zombie leader: the real proc connector events index it and, at its last thread's exit, remove it") {
    auto pc = ProcConnector::open();
    REQUIRE(pc.ok());
    auto m = scanned_model();
    (void)m->take_changes();
    Updater u(*m);
    t::ZombieLeader z(CLONE_NEWPID | CLONE_NEWNET, 2);
    const pid_t tgid = z.tgid();
    // Fork of the process, forks of its threads, then its leader's exit: applied as the daemon does.
    auto events = read_events_until(**pc, [&](const ProcEvent& e) {
        return e.kind == ProcEventKind::exit && e.pid == tgid && e.tgid == tgid;
    });
    const auto forks = std::count_if(events.begin(), events.end(), [&](const ProcEvent& e) {
        return e.kind == ProcEventKind::fork && e.tgid == tgid;
    });
    CHECK(forks == 3);  // the process and its two threads
    u.apply(events);
    check_indexed(*m, z);
    const NsId pidns = m->index().find_process(tgid)->ns_of(NsType::pid);
    const NsId netns = m->index().find_process(tgid)->ns_of(NsType::net);
    auto added = m->take_changes();
    (void)u.take_changes();
    // Each thread's exit comes as its own event (pid = tid); the last one ends the process.
    auto tids = z.tids();
    for (std::size_t i = 0; i < tids.size(); ++i) {
        const pid_t tid = tids[i];
        z.end_thread(tid);
        events = read_events_until(**pc, [&](const ProcEvent& e) { return e.kind == ProcEventKind::exit && e.pid == tid; });
        const auto& exit = *std::find_if(events.begin(), events.end(), [&](const ProcEvent& e) {
            return e.kind == ProcEventKind::exit && e.pid == tid;
        });
        CHECK(exit.tgid == tgid);
        u.apply(events);
        CHECK_FALSE(m->index().find_task(tid));
        if (i + 1 < tids.size()) check_indexed(*m, z);
    }
    CHECK_FALSE(m->index().find_process(tgid));
    CHECK_FALSE(m->index().find_namespace(pidns));
    CHECK_FALSE(m->index().find_namespace(netns));
    const auto changes = u.take_changes();
    CHECK(removed(changes, pidns));
    CHECK(removed(changes, netns));
    // Reaping the zombie leader sends no event.
    z.reap();
    std::vector<ProcEvent> after;
    for (int i = 0; i < 5; ++i) {
        pollfd p{(*pc)->fd(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        auto r = (*pc)->read_some();
        REQUIRE(r.ok());
        for (const auto& e : r->events)
            if (e.tgid == tgid) after.push_back(e);
    }
    CHECK(after.empty());
}

TEST_CASE("zombie leader: verify_process re-reads it when its thread exits unseen, drops it when none lives") {
    auto m = scanned_model();
    t::ZombieLeader z(CLONE_NEWPID, 2);
    const pid_t tgid = z.tgid();
    REQUIRE(m->add_process(tgid).ok());
    auto tids = z.tids();
    const pid_t first = m->index().find_process(tgid)->ns_tid;
    REQUIRE(std::find(tids.begin(), tids.end(), first) != tids.end());
    auto v = m->verify_process(tgid);
    REQUIRE(v.ok());
    CHECK_FALSE(*v);
    // Its thread exits and no event is applied: the next verify reads it through the other one.
    z.end_thread(first);
    const auto mismatches = m->verify_mismatches();
    v = m->verify_process(tgid);
    REQUIRE(v.ok());
    CHECK(*v);
    CHECK(m->verify_mismatches() == mismatches + 1);
    check_indexed(*m, z);
    // No live thread: gone.
    z.end_thread(z.tids().front());
    CHECK(m->verify_process(tgid).error().code == Errc::not_found);
    CHECK_FALSE(m->index().find_process(tgid));
    z.reap();
}

TEST_CASE("zombie leader: a translation miss finds it through the kernel and indexes it") {
    auto m = scanned_model();
    t::ZombieLeader z(CLONE_NEWPID, 1);
    const pid_t tid = z.tids().front();
    CHECK_FALSE(m->index().find_task(tid));
    auto r = m->translate(tid, m->index().root_pidns(), m->index().root_pidns());
    REQUIRE(r.ok());
    CHECK(*r == tid);
    check_indexed(*m, z);
}
