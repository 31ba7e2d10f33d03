// libFuzzer target: the index under any sequence of what the model does to it (issue 22): namespaces
// added, processes and threads upserted (any namespace in any slot, of any type), removed, mount
// holds replaced, and lookups by inode that find a namespace of another type or another identity
// and evict it, as Model::lookup/resolve_link do when the kernel reused an inode. After every
// operation the index's own bookkeeping must hold: no namespace lists a set that no process has
// (the scan_mounts crash), every slot names a namespace of its type, counts and inode map agree.
//
// Input format (front to back; missing bytes read as zero): up to 64 operations, each a u8 op and
// its operands.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "fuzz_check.h"
#include "index.h"

namespace {

using namespace pidns;

constexpr std::uint64_t kDev = 4;
constexpr NsId kFirst = 100;  // ids 1..8: the observer's own; the fuzzer's from 100 up
constexpr std::uint64_t kInodes = 24;  // a few inodes, so that they are reused

Index observer() {
    Index idx;
    FUZZ_CHECK(idx.add_namespace(NamespaceMeta{2, NsType::user, 1002, kDev, 0, 0, 0, 0}).ok());
    NsId id = 1;
    for (auto t : kAllNsTypes) {
        if (t != NsType::user) FUZZ_CHECK(idx.add_namespace(NamespaceMeta{id, t, 1000 + id, kDev, 0, 2, 0, 0}).ok());
        ++id;
    }
    idx.set_self({1, 2, 3, 4, 5, 6, 7, 8});
    return idx;
}

// Every namespace the index holds (ids), for picking one by a byte.
std::vector<NsId> ids_of(const Index& idx) {
    std::vector<NsId> out;
    for (const auto& [id, ns] : idx.namespaces()) out.push_back(id);
    std::sort(out.begin(), out.end());
    return out;
}

NsId pick(const std::vector<NsId>& ids, std::uint8_t b) { return ids.empty() ? 0 : ids[b % ids.size()]; }

NsId pick_of_type(const Index& idx, NsType t, std::uint8_t b) {
    std::vector<NsId> of;
    for (const auto& [id, ns] : idx.namespaces())
        if (ns.meta.type == t) of.push_back(id);
    std::sort(of.begin(), of.end());
    return of.empty() ? 0 : of[b % of.size()];
}

// The index's bookkeeping, from its public view only.
void check(const Index& idx) {
    std::set<const NsSet*> live;
    std::unordered_map<NsId, std::uint32_t> members, task_refs, fd_refs, child_refs;
    for (const auto& [tgid, p] : idx.processes()) {
        const NsSet* set = p.ns.set();
        FUZZ_CHECK(set != nullptr);
        live.insert(set);
        FUZZ_CHECK(p.slot < set->members.size() && set->members[p.slot] == tgid);
        for (auto t : kAllNsTypes) {
            const Namespace* ns = idx.find_namespace(p.ns_of(t));
            FUZZ_CHECK(ns != nullptr);
            FUZZ_CHECK(ns->meta.type == t);
            ++members[p.ns_of(t)];
        }
        if (p.pid_for_children) {
            FUZZ_CHECK(idx.find_namespace(p.pid_for_children)->meta.type == NsType::pid);
            ++task_refs[p.pid_for_children];
        }
        if (p.time_for_children) {
            FUZZ_CHECK(idx.find_namespace(p.time_for_children)->meta.type == NsType::time);
            ++task_refs[p.time_for_children];
        }
        if (p.threads)
            for (const auto& th : *p.threads)
                for (const auto& [t, id] : th.ns_overrides) {
                    FUZZ_CHECK(idx.find_namespace(id) && idx.find_namespace(id)->meta.type == t);
                    ++task_refs[id];
                }
        if (p.ns_fds)
            for (const auto& [fd, id] : *p.ns_fds) {
                FUZZ_CHECK(idx.find_namespace(id) != nullptr);
                ++fd_refs[id];
            }
    }
    for (const auto& [id, ns] : idx.namespaces()) {
        FUZZ_CHECK(idx.find_by_inode(ns.meta.dev, ns.meta.inode) == id);
        std::size_t listed = 0;
        for (const NsSet* set : ns.members.sets()) {
            FUZZ_CHECK(live.count(set) == 1);  // never a freed set
            FUZZ_CHECK(!set->members.empty());
            listed += set->members.size();
        }
        FUZZ_CHECK(listed == ns.members.size());
        FUZZ_CHECK(ns.members.size() == members[id]);
        FUZZ_CHECK(ns.task_refs == task_refs[id]);
        FUZZ_CHECK(ns.fd_refs == fd_refs[id]);
        for (NsId rel : {ns.meta.parent, ns.meta.owner})
            if (rel) {
                FUZZ_CHECK(idx.find_namespace(rel) != nullptr);
                ++child_refs[rel];
            }
    }
    for (const auto& [id, ns] : idx.namespaces()) FUZZ_CHECK(ns.child_refs == child_refs[id]);
    for (const NsSet* set : live)
        for (std::size_t i = 0; i < kNsTypeCount; ++i) {
            const auto& sets = set->nss[i]->members.sets();
            FUZZ_CHECK(std::count(sets.begin(), sets.end(), set) == 1);
        }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    pidns::fuzz::Reader in(data, size);
    Index idx = observer();
    NsId next_id = kFirst;
    std::vector<std::int32_t> stale;
    for (int op = 0; op < 64 && !in.done(); ++op) {
        const auto ids = ids_of(idx);
        switch (in.u8() % 9) {
        case 0: {  // a namespace: any type, a fuzzed inode, parent/owner among the present ones
            NamespaceMeta m;
            m.id = next_id++;
            m.type = kAllNsTypes[in.u8() % kNsTypeCount];
            m.inode = 2000 + in.u8() % kInodes;
            m.dev = kDev;
            const std::uint8_t rel = in.u8();
            if (ns_type_is_hierarchical(m.type) && (rel & 1)) m.parent = pick_of_type(idx, m.type, in.u8());
            m.owner = m.type == NsType::user ? m.parent : (rel & 2 ? pick_of_type(idx, NsType::user, in.u8()) : 2);
            m.owner_uid = in.u8();
            if (m.type == NsType::pid) {
                const Namespace* parent = m.parent ? idx.find_namespace(m.parent) : nullptr;
                m.level = parent ? parent->meta.level + 1 : 0;
            }
            (void)idx.add_namespace(m);  // refused when the inode is indexed: that is the model's lookup
            break;
        }
        case 1: {  // a process: each slot a fuzzed pick (often of the wrong type)
            ProcessData d;
            d.tgid = 1 + in.u8() % 32;
            const std::uint8_t how = in.u8();
            for (std::size_t i = 0; i < kNsTypeCount; ++i)
                d.ns[i] = how & 1 ? pick(ids, in.u8()) : pick_of_type(idx, kAllNsTypes[i], in.u8());
            const Namespace* pidns = idx.find_namespace(d.ns[0]);
            const std::size_t depth = pidns && pidns->meta.type == NsType::pid ? pidns->meta.level + 1 : 1 + in.u8() % 3;
            for (std::size_t l = 0; l < depth; ++l) {
                const std::int32_t nr = l == 0 ? d.tgid : 1 + in.u8() % 16;
                d.nstgid.push_back(nr);
                d.nspid.push_back(nr);
                d.nspgid.push_back(nr);
                d.nssid.push_back(nr);
            }
            if (how & 2) d.pid_for_children = pick(ids, in.u8());
            if (how & 4) d.time_for_children = pick(ids, in.u8());
            if (how & 8) d.ns_fds.emplace_back(3 + in.u8() % 4, pick(ids, in.u8()));
            if (how & 16) {
                ThreadRecord th;
                th.tid = 100 + in.u8() % 32;
                th.nspid = d.nspid;
                th.nspid[0] = th.tid;
                if (how & 32) th.ns_overrides.emplace_back(kAllNsTypes[in.u8() % kNsTypeCount], pick(ids, in.u8()));
                d.threads.push_back(std::move(th));
            }
            (void)idx.upsert_process(std::move(d));
            break;
        }
        case 2: (void)idx.remove_process(1 + in.u8() % 32); break;
        case 3: {
            const std::int32_t tgid = 1 + in.u8() % 32;
            ThreadRecord th;
            th.tid = 100 + in.u8() % 32;
            if (const Process* p = idx.find_process(tgid)) {
                th.nspid.assign(p->chains.nspid().begin(), p->chains.nspid().end());
                th.nspid[0] = th.tid;
            }
            if (in.u8() & 1) th.ns_overrides.emplace_back(kAllNsTypes[in.u8() % kNsTypeCount], pick(ids, in.u8()));
            (void)idx.upsert_thread(tgid, std::move(th));
            break;
        }
        case 4: (void)idx.remove_thread(1 + in.u8() % 32, 100 + in.u8() % 32); break;
        case 5: {  // mount holds, replaced wholesale
            std::unordered_map<NsId, std::uint32_t> refs;
            for (std::uint8_t n = in.u8() % 4; n > 0; --n) ++refs[pick(ids, in.u8())];
            refs.erase(0);
            (void)idx.set_mount_refs(refs);
            break;
        }
        case 6: {  // the model's lookup: an inode seen as (type, identity); another type or
                   // another identity evicts the entry, as the kernel showed it gone
            const std::uint64_t inode = 2000 + in.u8() % kInodes;
            const auto type = kAllNsTypes[in.u8() % kNsTypeCount];
            const bool other = in.u8() & 1;
            if (auto id = idx.find_by_inode(kDev, inode); id && (idx.find_namespace(*id)->meta.type != type || other)) {
                const std::size_t before = stale.size();
                const bool evicted = idx.evict(*id, stale);
                FUZZ_CHECK(evicted != (*id >= 1 && *id <= 8));  // never the observer's own
                if (evicted) {
                    FUZZ_CHECK(!idx.find_namespace(*id));
                    FUZZ_CHECK(!idx.find_by_inode(kDev, inode));
                    for (std::size_t i = before; i < stale.size(); ++i) FUZZ_CHECK(!idx.find_process(stale[i]));
                }
            }
            break;
        }
        case 7: idx.collect(); break;
        case 8: (void)idx.translate(1 + in.u8() % 16, pick(ids, in.u8()), pick(ids, in.u8())); break;
        }
        check(idx);
    }
    // Whatever happened, every process goes and only the observer's own namespaces stay.
    std::vector<std::int32_t> tgids;
    for (const auto& [tgid, p] : idx.processes()) tgids.push_back(tgid);
    for (auto tgid : tgids) FUZZ_CHECK(idx.remove_process(tgid));
    FUZZ_CHECK(idx.set_mount_refs({}).ok());
    idx.collect();
    check(idx);
    FUZZ_CHECK(idx.namespace_count() == 8);
    return 0;
}
