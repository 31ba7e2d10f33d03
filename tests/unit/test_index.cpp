// Index logic on synthetic data: lookups, translation, member lists, holder refcounts and removal cascades.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "index.h"
#include "observer_index.h"

using namespace pidns;

namespace {
using unit::kDev;

// Observer namespaces 1..8 (pid=1 user=2 ...); pid ns 10 (level 1) and 11 (level 2) below.
Index make_index() {
    Index idx = unit::observer_index();
    NamespaceMeta ns1{10, NsType::pid, 1010, kDev, 1, 2, 0, 1};
    NamespaceMeta ns2{11, NsType::pid, 1011, kDev, 10, 2, 0, 2};
    REQUIRE(idx.add_namespace(ns1).ok());
    REQUIRE(idx.add_namespace(ns2).ok());
    return idx;
}

ProcessData proc(std::int32_t tgid, NsId pidns, std::vector<std::int32_t> nspid) {
    ProcessData p;
    p.tgid = tgid;
    p.ns = {pidns, 2, 3, 4, 5, 6, 7, 8};
    p.nstgid = nspid;
    p.nspid = nspid;
    p.nspgid = nspid;
    p.nssid = nspid;
    return p;
}
}  // namespace

TEST_CASE("seed 000 example: t1..t5 translate between every pair of namespaces") {
    Index idx = make_index();
    // init_pid_ns ns1 ns2 ; t1 2 ; t2 3 1 ; t3 4 3 ; t4 5 5 1 ; t5 6 8 3
    REQUIRE(idx.upsert_process(proc(2, 1, {2})).ok());
    REQUIRE(idx.upsert_process(proc(3, 10, {3, 1})).ok());
    REQUIRE(idx.upsert_process(proc(4, 10, {4, 3})).ok());
    REQUIRE(idx.upsert_process(proc(5, 11, {5, 5, 1})).ok());
    REQUIRE(idx.upsert_process(proc(6, 11, {6, 8, 3})).ok());

    CHECK(*idx.translate(3, 11, 1) == 6);   // "pid 3 in the container" is host 6
    CHECK(*idx.translate(3, 11, 10) == 8);
    CHECK(*idx.translate(8, 10, 11) == 3);
    CHECK(*idx.translate(3, 10, 1) == 4);
    CHECK(*idx.translate(3, 10, 11) == 0);  // t3 has no pid in ns2
    CHECK(*idx.translate(2, 1, 10) == 0);   // t1 has no pid in ns1
    CHECK(*idx.translate(5, 1, 11) == 1);
    CHECK(*idx.translate(1, 10, 1) == 3);
    CHECK(idx.translate(7, 11, 1).error().code == Errc::not_found);
    CHECK(idx.translate(99, 1, 1).error().code == Errc::not_found);
    CHECK(idx.translate(3, 3, 1).error().code == Errc::not_pid_namespace);
    CHECK(idx.translate(3, 999, 1).error().code == Errc::no_such_namespace);
    CHECK(idx.translate(0, 1, 1).error().code == Errc::invalid_argument);

    CHECK(idx.host_tid(11, 1) == 5);
    CHECK(idx.find_by_inode(kDev, 1011) == NsId{11});
    CHECK_FALSE(idx.find_by_inode(kDev + 1, 1011));
    CHECK(idx.pidns_is_descendant(11, 1));
    CHECK_FALSE(idx.pidns_is_descendant(10, 11));
}

TEST_CASE("member lists follow upserts and removals in O(1) swaps") {
    Index idx = make_index();
    for (std::int32_t pid = 100; pid < 110; ++pid) REQUIRE(idx.upsert_process(proc(pid, 1, {pid})).ok());
    REQUIRE(idx.remove_process(103));
    REQUIRE(idx.remove_process(100));
    CHECK_FALSE(idx.remove_process(100));
    auto members = idx.find_namespace(4)->members.to_vector();
    std::sort(members.begin(), members.end());
    CHECK(members == std::vector<std::int32_t>{101, 102, 104, 105, 106, 107, 108, 109});
    // Moving a process to another pid namespace is a re-read with different data.
    REQUIRE(idx.upsert_process(proc(105, 10, {105, 1})).ok());
    CHECK(idx.find_namespace(10)->members == std::vector<std::int32_t>{105});
    CHECK(std::count(idx.find_namespace(1)->members.begin(), idx.find_namespace(1)->members.end(), 105) == 0);
    for (std::int32_t pid : {101, 102, 104, 106, 107, 108, 109}) {
        const auto* p = idx.find_process(pid);
        REQUIRE(p);
        CHECK(p->ns.set()->members[p->slot] == pid);  // its slot in its interned namespace set
        for (auto t : kAllNsTypes) {
            const auto& m = idx.find_namespace(p->ns_of(t))->members;
            CHECK(std::count(m.begin(), m.end(), pid) == 1);
        }
    }
}

TEST_CASE("a namespace leaves when its last holder goes, cascading to hidden ancestors") {
    Index idx = make_index();
    (void)idx.take_changes();
    REQUIRE(idx.upsert_process(proc(50, 11, {50, 7, 1})).ok());
    CHECK(idx.find_namespace(10)->holders() == kHeldAsAncestor);
    CHECK(idx.find_namespace(11)->holders() == kHeldByProcess);
    REQUIRE(idx.remove_process(50));
    CHECK_FALSE(idx.find_namespace(11));
    CHECK_FALSE(idx.find_namespace(10));
    CHECK(idx.find_namespace(1));  // the observer's own stay
    auto changes = idx.take_changes();
    REQUIRE(changes.size() == 2);  // the observer's own namespaces stay
    CHECK((changes[0].id == 11 && !changes[0].added));
    CHECK((changes[1].id == 10 && !changes[1].added));
}

TEST_CASE("fd, mount and task holders keep namespaces alive") {
    Index idx = make_index();
    REQUIRE(idx.upsert_process(proc(60, 1, {60})).ok());
    NamespaceMeta net{20, NsType::net, 1020, kDev, 0, 2, 0, 0};
    NamespaceMeta net2{21, NsType::net, 1021, kDev, 0, 2, 0, 0};
    REQUIRE(idx.add_namespace(net).ok());
    REQUIRE(idx.add_namespace(net2).ok());
    auto p = proc(61, 1, {61});
    p.ns_fds = {{5, 20}};
    p.pid_for_children = 10;
    REQUIRE(idx.upsert_process(std::move(p)).ok());
    REQUIRE(idx.set_mount_refs({{21, 1}}).ok());
    idx.collect();
    CHECK(idx.find_namespace(20)->holders() == kHeldByFd);
    CHECK(idx.find_namespace(21)->holders() == kHeldByMount);
    CHECK_FALSE(idx.find_namespace(11));  // nothing held it: collected
    CHECK(idx.find_namespace(10)->holders() == kHeldByTask);  // pid_for_children of 61
    REQUIRE(idx.remove_process(61));
    CHECK_FALSE(idx.find_namespace(20));
    CHECK_FALSE(idx.find_namespace(10));
    REQUIRE(idx.set_mount_refs({}).ok());
    CHECK_FALSE(idx.find_namespace(21));
    CHECK(idx.set_mount_refs({{999, 1}}).error().code == Errc::no_such_namespace);
}

TEST_CASE("threads translate and leave with their own exit") {
    Index idx = make_index();
    auto p = proc(70, 11, {70, 9, 1});
    ThreadRecord t1{71, {71, 10, 2}, {}};
    ThreadRecord t2{72, {72, 11, 3}, {{NsType::net, 20}}};
    NamespaceMeta net{20, NsType::net, 1020, kDev, 0, 2, 0, 0};
    REQUIRE(idx.add_namespace(net).ok());
    p.threads = {t1, t2};
    REQUIRE(idx.upsert_process(std::move(p)).ok());
    CHECK(*idx.translate(3, 11, 1) == 72);
    CHECK(*idx.translate(11, 10, 11) == 3);
    CHECK(*idx.translate(71, 1, 10) == 10);
    CHECK(idx.find_task(72)->process->tgid == 70);
    CHECK(idx.find_namespace(20)->holders() == kHeldByTask);
    REQUIRE(idx.remove_thread(70, 71));
    CHECK_FALSE(idx.find_task(71));
    CHECK(idx.translate(2, 11, 1).error().code == Errc::not_found);
    CHECK(*idx.translate(3, 11, 1) == 72);  // the moved thread keeps its lookups
    REQUIRE(idx.remove_thread(70, 72));
    CHECK_FALSE(idx.find_namespace(20));
    CHECK_FALSE(idx.remove_thread(70, 72));
}

TEST_CASE("a thread's fork adds just that thread, a re-read replaces it, bad threads are refused") {
    Index idx = make_index();
    REQUIRE(idx.upsert_process(proc(80, 11, {80, 9, 1})).ok());
    NamespaceMeta net{20, NsType::net, 1020, kDev, 0, 2, 0, 0};
    REQUIRE(idx.add_namespace(net).ok());
    REQUIRE(idx.upsert_thread(80, ThreadRecord{81, {81, 10, 2}, {{NsType::net, 20}}}).ok());
    CHECK(*idx.translate(2, 11, 1) == 81);
    CHECK(idx.find_task(81)->process->tgid == 80);
    CHECK(idx.find_namespace(20)->holders() == kHeldByTask);
    // Re-read after a setns back to the leader's net namespace: the override and its hold go.
    REQUIRE(idx.upsert_thread(80, ThreadRecord{81, {81, 10, 2}, {}}).ok());
    CHECK_FALSE(idx.find_namespace(20));
    CHECK(*idx.translate(2, 11, 1) == 81);
    CHECK(idx.find_process(80)->threads->size() == 1);
    // Refused, index unchanged: unknown process, wrong depth, unknown namespace, the leader's tid.
    CHECK(idx.upsert_thread(99, ThreadRecord{100, {100, 1, 1}, {}}).error().code == Errc::not_found);
    CHECK(idx.upsert_thread(80, ThreadRecord{82, {82}, {}}).error().code == Errc::parse);
    CHECK(idx.upsert_thread(80, ThreadRecord{82, {82, 11, 3}, {{NsType::net, 777}}}).error().code ==
          Errc::no_such_namespace);
    CHECK(idx.upsert_thread(80, ThreadRecord{80, {80, 9, 1}, {}}).error().code == Errc::invalid_argument);
    CHECK_FALSE(idx.find_task(82));
    // A tid recorded under another group (its exit was missed) moves to the new one.
    REQUIRE(idx.upsert_process(proc(90, 11, {90, 12, 4})).ok());
    REQUIRE(idx.upsert_thread(90, ThreadRecord{81, {81, 10, 2}, {}}).ok());
    CHECK(idx.find_task(81)->process->tgid == 90);
    CHECK_FALSE(idx.find_process(80)->threads);
    REQUIRE(idx.remove_process(90));
    CHECK_FALSE(idx.find_task(81));
}

TEST_CASE("bad process data is rejected without changing the index") {
    Index idx = make_index();
    auto bad_depth = proc(80, 11, {80, 1});
    CHECK(idx.upsert_process(std::move(bad_depth)).error().code == Errc::parse);
    auto unknown_ns = proc(81, 1, {81});
    unknown_ns.ns[3] = 999;
    CHECK(idx.upsert_process(std::move(unknown_ns)).error().code == Errc::no_such_namespace);
    auto uneven = proc(82, 1, {82});
    uneven.nssid = {};
    CHECK(idx.upsert_process(std::move(uneven)).error().code == Errc::parse);
    CHECK(idx.process_count() == 0);
    NamespaceMeta orphan{30, NsType::pid, 1030, kDev, 777, 2, 0, 1};
    CHECK(idx.add_namespace(orphan).error().code == Errc::no_such_namespace);
    NamespaceMeta dup_inode{31, NsType::net, 1001, kDev, 0, 2, 0, 0};
    CHECK(idx.add_namespace(dup_inode).error().code == Errc::invalid_argument);
}

TEST_CASE("a namespace named in two slots of one process is refused: its member list never keeps a freed set") {
    // The scan_mounts crash (issue 22): a stale net namespace hit by a uts link (the kernel had
    // reused its inode) put one id in the net and the uts slot of a process's set. The set was
    // then listed twice in that namespace's member sets, its removal took out one listing and
    // freed the set, and the next walk of the namespace's members read freed memory.
    Index idx = make_index();
    NamespaceMeta net{20, NsType::net, 1020, kDev, 0, 2, 0, 0};
    REQUIRE(idx.add_namespace(net).ok());
    auto keeper = proc(60, 1, {60});
    keeper.ns[ns_type_index(NsType::net)] = 20;  // keeps namespace 20 in the index
    REQUIRE(idx.upsert_process(std::move(keeper)).ok());
    auto twice = proc(61, 1, {61});
    twice.ns[ns_type_index(NsType::net)] = 20;
    twice.ns[ns_type_index(NsType::uts)] = 20;  // a net namespace in the uts slot
    CHECK(idx.upsert_process(std::move(twice)).error().code == Errc::invalid_argument);
    (void)idx.remove_process(61);
    idx.collect();
    // Whatever happened, every set a namespace lists is a live process's (compared as pointers:
    // reading a freed one is the crash).
    std::set<const NsSet*> live;
    for (const auto& [tgid, p] : idx.processes()) live.insert(p.ns.set());
    for (const auto& [id, ns] : idx.namespaces()) {
        INFO("namespace " << id);
        for (const NsSet* set : ns.members.sets()) CHECK(live.count(set) == 1);
    }
    // Every slot holds a namespace of its own type: a thread's override, *_for_children too.
    auto wrong_thread = proc(62, 1, {62});
    REQUIRE(idx.add_namespace(NamespaceMeta{21, NsType::uts, 1021, kDev, 0, 2, 0, 0}).ok());
    wrong_thread.threads = {ThreadRecord{63, {63}, {{NsType::net, 21}}}};
    CHECK(idx.upsert_process(std::move(wrong_thread)).error().code == Errc::invalid_argument);
    auto wrong_pfc = proc(64, 1, {64});
    wrong_pfc.pid_for_children = 20;
    CHECK(idx.upsert_process(std::move(wrong_pfc)).error().code == Errc::invalid_argument);
    REQUIRE(idx.upsert_process(proc(65, 1, {65})).ok());
    CHECK(idx.upsert_thread(65, ThreadRecord{66, {66}, {{NsType::uts, 20}}}).error().code == Errc::invalid_argument);
}

TEST_CASE("evict: a namespace found gone goes with everything below it, and every process that held any of them") {
    Index idx = make_index();  // pid 10 (level 1) below 1, pid 11 (level 2) below 10
    REQUIRE(idx.add_namespace(NamespaceMeta{20, NsType::user, 1020, kDev, 2, 2, 1000, 1}).ok());
    REQUIRE(idx.add_namespace(NamespaceMeta{21, NsType::net, 1021, kDev, 0, 20, 1000, 0}).ok());  // owned by 20
    REQUIRE(idx.add_namespace(NamespaceMeta{22, NsType::uts, 1022, kDev, 0, 2, 0, 0}).ok());      // elsewhere
    auto member = proc(60, 1, {60});
    member.ns[ns_type_index(NsType::user)] = 20;
    REQUIRE(idx.upsert_process(std::move(member)).ok());
    auto fd_holder = proc(61, 1, {61});
    fd_holder.ns_fds = {{5, 21}};
    fd_holder.ns[ns_type_index(NsType::uts)] = 22;
    REQUIRE(idx.upsert_process(std::move(fd_holder)).ok());
    auto thread_holder = proc(62, 1, {62});
    thread_holder.threads = {ThreadRecord{63, {63}, {{NsType::net, 21}}}};
    REQUIRE(idx.upsert_process(std::move(thread_holder)).ok());
    REQUIRE(idx.upsert_process(proc(64, 11, {64, 5, 1})).ok());  // unrelated, in pid 11
    (void)idx.take_changes();

    std::vector<std::int32_t> stale;
    REQUIRE(idx.evict(20, stale));
    std::sort(stale.begin(), stale.end());
    CHECK(stale == std::vector<std::int32_t>{60, 61, 62});  // a member, an fd and a thread of 21 (below 20)
    CHECK_FALSE(idx.find_namespace(20));
    CHECK_FALSE(idx.find_namespace(21));
    CHECK_FALSE(idx.find_by_inode(kDev, 1020));  // the inode is free for the namespace that has it now
    CHECK_FALSE(idx.find_by_inode(kDev, 1021));
    for (auto tgid : {60, 61, 62}) CHECK_FALSE(idx.find_process(tgid));
    CHECK_FALSE(idx.find_task(63));
    CHECK_FALSE(idx.find_namespace(22));  // held only by 61, which went: dropped as usual
    CHECK(idx.find_process(64));
    CHECK(*idx.translate(1, 11, 1) == 64);
    CHECK(idx.find_namespace(2)->child_refs == 9);  // the observer's 7 and pid 10, 11: 20 (parent and owner) and 22 left
    auto changes = idx.take_changes();
    std::set<NsId> removed;
    for (const auto& c : changes)
        if (!c.added) removed.insert(c.id);
    CHECK(removed == std::set<NsId>{20, 21, 22});
    // The observer's own never go, nor anything when one of them would be below.
    stale.clear();
    CHECK_FALSE(idx.evict(2, stale));
    CHECK_FALSE(idx.evict(999, stale));
    CHECK(stale.empty());
    CHECK(idx.find_namespace(2));
    CHECK(idx.find_namespace(10));
}
