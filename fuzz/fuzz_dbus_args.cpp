// libFuzzer target: the argument checks every org.pidns.Manager1 method makes before touching the
// kernel, over a synthetic index built from the input (no bus, no /proc):
//   - namespace references (GetNamespace, ListProcesses, TranslatePid(s) from/to): resolve_reference
//     with any visibility, ids that are other namespaces' inodes, other devices;
//   - pid ranges (TranslatePid, TranslatePids, GetProcess): is_valid_pid, then Index::translate;
//   - batch sizes (TranslatePids): the kMaxBatch bound and the element-wise answers;
//   - type filters (ListNamespaces): parse_type_filter;
//   - who may see a task (every method): ptrace_may_read for a synthetic caller.
//
// Input format (read front to back; missing bytes read as zero, so every input is valid):
//   u8 n_namespaces, then per namespace: u8 type, u8 id-kind, id, u8 inode-kind, inode, u8 dev,
//     u8 parent/owner pick, u32 owner_uid
//   u8 n_processes, then per process: u16 tgid, u8 pidns pick, u8 ns picks x7, chain values u16 x depth,
//     u8 threads
//   then operations until the input ends: u8 op, operands (see run_op).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "access.h"
#include "caller.h"
#include "fuzz_check.h"
#include "index.h"
#include "view.h"

namespace {

using namespace pidns;

constexpr std::uint64_t kDev = 4;  // nsfs device of the synthetic index

using fuzz::Reader;

struct World {
    Index idx;
    std::vector<NsId> ids;                           // every namespace added, in order
    std::array<std::vector<NsId>, kNsTypeCount> by_type;
    std::vector<std::uint64_t> inodes;
    std::vector<std::int32_t> tgids;
    std::vector<std::int32_t> pids_seen;             // every chain value of every process
};

NsId pick(const std::vector<NsId>& v, std::uint8_t k) { return v.empty() ? 0 : v[k % v.size()]; }

void add_observer(World& w) {
    // As tests/unit/observer_index.h: ids 1..8 in kAllNsTypes order, user namespace 2 owning the others.
    auto add = [&](const NamespaceMeta& m) {
        FUZZ_CHECK(w.idx.add_namespace(m).ok());
        w.ids.push_back(m.id);
        w.by_type[ns_type_index(m.type)].push_back(m.id);
        w.inodes.push_back(m.inode);
    };
    add(NamespaceMeta{2, NsType::user, 1002, kDev, 0, 0, 0, 0});
    NsId id = 1;
    for (auto t : kAllNsTypes) {
        if (t != NsType::user) add(NamespaceMeta{id, t, 1000 + id, kDev, 0, 2, 0, 0});
        ++id;
    }
    w.idx.set_self({1, 2, 3, 4, 5, 6, 7, 8});
}

void add_namespaces(World& w, Reader& in) {
    const unsigned n = in.u8() % 33;
    for (unsigned i = 0; i < n; ++i) {
        NamespaceMeta m;
        m.type = kAllNsTypes[in.u8() % kNsTypeCount];
        switch (in.u8() % 4) {  // ids that collide with inodes make references ambiguous
        case 0: m.id = 9 + in.u8(); break;
        case 1: m.id = w.inodes[in.u8() % w.inodes.size()]; break;
        case 2: m.id = in.u64(); break;
        default: m.id = (NsId{1} << 32) + in.u16(); break;
        }
        switch (in.u8() % 4) {
        case 0: m.inode = 4026531840ull + in.u16(); break;
        case 1: m.inode = w.ids[in.u8() % w.ids.size()]; break;
        case 2: m.inode = in.u64(); break;
        default: m.inode = w.inodes[in.u8() % w.inodes.size()]; break;
        }
        const std::uint8_t dev = in.u8();
        m.dev = (dev & 3) ? kDev : kDev + 1 + (dev >> 7);
        const std::uint8_t rel = in.u8();
        if (ns_type_is_hierarchical(m.type)) {
            m.parent = pick(w.by_type[ns_type_index(m.type)], rel);
            const auto* parent = w.idx.find_namespace(m.parent);
            m.level = parent ? parent->meta.level + 1 : 0;
        }
        m.owner = m.type == NsType::user ? m.parent : pick(w.by_type[ns_type_index(NsType::user)], rel >> 4);
        m.owner_uid = in.u32();
        auto s = w.idx.add_namespace(m);
        if (!s) {
            FUZZ_CHECK(s.error().code == Errc::invalid_argument);
            continue;
        }
        if (std::find(w.ids.begin(), w.ids.end(), m.id) != w.ids.end()) continue;  // already there: a no-op
        w.ids.push_back(m.id);
        w.by_type[ns_type_index(m.type)].push_back(m.id);
        w.inodes.push_back(m.inode);
    }
}

void add_processes(World& w, Reader& in) {
    const unsigned n = in.u8() % 17;
    for (unsigned i = 0; i < n; ++i) {
        ProcessData d;
        d.tgid = 1 + in.u16() % 4096;
        for (auto t : kAllNsTypes) d.ns[ns_type_index(t)] = pick(w.by_type[ns_type_index(t)], in.u8());
        const auto* pidns = w.idx.find_namespace(d.ns[0]);
        const std::size_t depth = std::min<std::size_t>(pidns ? pidns->meta.level + 1 : 1, 64);
        d.nspid.push_back(d.tgid);
        for (std::size_t k = 1; k < depth; ++k) d.nspid.push_back(1 + in.u16() % 64);
        d.nstgid = d.nspid;
        d.nspgid = d.nspid;
        d.nssid = d.nspid;
        const std::uint8_t creds = in.u8();
        d.uid.fill(creds & 1 ? 0 : 1000);
        d.gid.fill(creds & 2 ? 0 : 1000);
        d.cap_prm = d.cap_eff = creds & 4 ? ~0ull : 0;
        d.dumpable = !(creds & 8);
        const unsigned threads = creds >> 6;
        for (unsigned t = 0; t < threads; ++t) {
            ThreadRecord th;
            th.tid = d.tgid + 5000 + static_cast<std::int32_t>(t);
            th.nspid = d.nspid;
            th.nspid[0] = th.tid;
            for (std::size_t k = 1; k < depth; ++k) th.nspid[k] = 1 + in.u16() % 64;
            d.threads.push_back(std::move(th));
        }
        std::vector<std::int32_t> values = d.nspid;
        for (const auto& th : d.threads) values.insert(values.end(), th.nspid.begin(), th.nspid.end());
        auto s = w.idx.upsert_process(std::move(d));
        if (!s) {
            FUZZ_CHECK(s.error().code == Errc::parse || s.error().code == Errc::no_such_namespace ||
                       s.error().code == Errc::invalid_argument);
            continue;
        }
        w.tgids.push_back(values.front());
        w.pids_seen.insert(w.pids_seen.end(), values.begin(), values.end());
    }
}

std::uint64_t pick_ref(World& w, Reader& in) {
    const std::uint8_t k = in.u8();
    switch (k % 6) {
    case 0: return 0;
    case 1: return pick(w.ids, k >> 3);
    case 2: return w.inodes[(k >> 3) % w.inodes.size()];
    case 3: return pick(w.ids, k >> 3) + 1;
    case 4: return in.u64();
    default: return std::numeric_limits<std::uint64_t>::max() - (k >> 3);
    }
}

std::uint32_t pick_pid(World& w, Reader& in) {
    const std::uint8_t k = in.u8();
    switch (k % 7) {
    case 0: return 0;
    case 1: return w.pids_seen.empty() ? 1 : static_cast<std::uint32_t>(w.pids_seen[(k >> 3) % w.pids_seen.size()]);
    case 2: return 0x7fffffffu;
    case 3: return 0x80000000u;
    case 4: return 0xffffffffu;
    case 5: return 1u + (k >> 3);
    default: return in.u32();
    }
}

// What TranslatePid(s) answer for one pid on the index alone (CallerView::translate_some, minus
// the kernel check on a miss): 0 for out-of-range, absent or untranslatable pids.
std::uint32_t translate_one(const Index& idx, std::uint32_t pid, NsId from, NsId to) {
    if (!is_valid_pid(pid)) return 0;
    auto r = idx.translate(static_cast<std::int32_t>(pid), from, to);
    if (!r) {
        const auto c = r.error().code;
        FUZZ_CHECK(c == Errc::not_found || c == Errc::no_such_namespace || c == Errc::not_pid_namespace);
        return 0;
    }
    FUZZ_CHECK(*r >= 0);
    return static_cast<std::uint32_t>(*r);
}

void check_resolve(World& w, Reader& in) {
    const std::uint64_t ref = pick_ref(w, in);
    const std::uint64_t dev = in.u8() % 5 == 0 ? kDev + 1 : kDev;
    const std::uint64_t mask = in.u64();
    const bool everything = (mask & 0xff) == 0;
    auto visible = [&](NsId id) { return everything || ((mask >> (id % 64)) & 1u) != 0; };
    auto r = resolve_reference(w.idx, dev, ref, visible);
    // The oracle: the visible namespace with that id, the visible one with that inode on `dev`.
    const NsId by_id = w.idx.find_namespace(ref) && visible(ref) ? ref : 0;
    NsId by_inode = 0;
    for (auto id : w.ids) {
        const auto* ns = w.idx.find_namespace(id);
        if (ns && ns->meta.inode == ref && ns->meta.dev == dev && visible(id)) by_inode = id;
    }
    if (ref == 0 || (!by_id && !by_inode)) {
        FUZZ_CHECK(!r && r.error().code == Errc::no_such_namespace);
        // Nothing about an invisible namespace leaks: the message only echoes the number.
        FUZZ_CHECK(r.error().message.find(std::to_string(ref)) != std::string::npos);
    } else if (by_id && by_inode && by_id != by_inode) {
        FUZZ_CHECK(!r && r.error().code == Errc::ambiguous);
    } else {
        FUZZ_CHECK(r.ok() && *r == (by_id ? by_id : by_inode));
    }
}

void check_type_filter(Reader& in) {
    const std::string type = in.str(in.u8() % 12);
    auto r = parse_type_filter(type);
    bool is_name = false;
    for (auto t : kAllNsTypes) is_name = is_name || ns_type_name(t) == type;
    if (type.empty()) {
        FUZZ_CHECK(r.ok() && !r->has_value());
    } else if (is_name) {
        FUZZ_CHECK(r.ok() && r->has_value() && ns_type_name(**r) == type);
    } else {
        FUZZ_CHECK(!r && r.error().code == Errc::invalid_argument);
    }
}

void check_translate(World& w, Reader& in) {
    const std::uint32_t pid = pick_pid(w, in);
    FUZZ_CHECK(is_valid_pid(pid) == (pid >= 1 && pid <= 2147483647u));
    const NsId from = pick_ref(w, in), to = pick_ref(w, in);
    const std::uint32_t out = translate_one(w.idx, pid, from, to);
    if (out != 0) {
        FUZZ_CHECK(is_valid_pid(out));
        FUZZ_CHECK(std::find(w.pids_seen.begin(), w.pids_seen.end(), static_cast<std::int32_t>(out)) != w.pids_seen.end());
    }
}

void check_batch(World& w, Reader& in) {
    // TranslatePids refuses more than kMaxBatch pids before any work; below that every pid has
    // an answer, 0 where it has none.
    const std::uint32_t declared = in.u32() % (2 * kMaxBatch + 2);
    if (declared > kMaxBatch) return;  // Manager::TranslatePids and CallerView::translate_many refuse it
    const NsId from = pick(w.by_type[0], in.u8()), to = pick(w.by_type[0], in.u8());
    const std::size_t n = std::min<std::size_t>(declared, 64);
    std::vector<std::uint32_t> pids;
    for (std::size_t i = 0; i < n; ++i) pids.push_back(pick_pid(w, in));
    std::vector<std::uint32_t> out;
    for (auto pid : pids) out.push_back(translate_one(w.idx, pid, from, to));
    FUZZ_CHECK(out.size() == pids.size());
    for (std::size_t i = 0; i < n; ++i)
        if (!is_valid_pid(pids[i])) FUZZ_CHECK(out[i] == 0);
}

void check_access(World& w, Reader& in) {
    if (w.tgids.empty()) return;
    const auto* p = w.idx.find_process(w.tgids[in.u8() % w.tgids.size()]);
    if (p == nullptr) return;  // replaced by a later process with the same tgid
    Caller c;
    const std::uint8_t k = in.u8();
    c.pid = k & 1 ? p->tgid : 1 + in.u16() % 4096;
    c.pidns = pick(w.by_type[ns_type_index(NsType::pid)], in.u8());
    c.userns = pick(w.by_type[ns_type_index(NsType::user)], in.u8());
    c.uid.fill(k & 2 ? 0 : 1000);
    c.gid.fill(k & 4 ? 0 : 1000);
    c.cap_eff = k & 8 ? ~0ull : in.u64();
    const Access a = ptrace_may_read(w.idx, c, *p);
    const bool in_subtree = w.idx.pidns_is_descendant(p->ns_of(NsType::pid), c.pidns);
    FUZZ_CHECK((a == Access::invisible) == !in_subtree);
    if (in_subtree && c.pid == p->tgid) FUZZ_CHECK(a == Access::allowed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Reader in(data, size);
    World w;
    add_observer(w);
    add_namespaces(w, in);
    add_processes(w, in);
    for (int ops = 0; ops < 256 && !in.done(); ++ops) {
        switch (in.u8() % 5) {
        case 0: check_resolve(w, in); break;
        case 1: check_type_filter(in); break;
        case 2: check_translate(w, in); break;
        case 3: check_batch(w, in); break;
        default: check_access(w, in); break;
        }
    }
    return 0;
}
