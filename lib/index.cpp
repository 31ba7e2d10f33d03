// The in-memory index of namespaces and processes.
#include "index.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <unordered_set>

namespace pidns {

std::string holders_to_string(std::uint8_t h) {
    std::string s;
    auto add = [&](std::uint8_t bit, const char* name) {
        if (!(h & bit)) return;
        if (!s.empty()) s += ',';
        s += name;
    };
    add(kHeldByProcess, "process");
    add(kHeldByTask, "task");
    add(kHeldByFd, "fd");
    add(kHeldByMount, "mount");
    add(kHeldAsAncestor, "ancestor");
    return s.empty() ? "none" : s;
}

std::uint8_t Namespace::holders() const noexcept {
    std::uint8_t h = 0;
    if (!members.empty()) h |= kHeldByProcess;
    if (task_refs) h |= kHeldByTask;
    if (fd_refs) h |= kHeldByFd;
    if (mount_refs) h |= kHeldByMount;
    if (child_refs) h |= kHeldAsAncestor;
    return h;
}

PidChains::PidChains(std::span<const std::int32_t> tgid, std::span<const std::int32_t> pid,
                     std::span<const std::int32_t> pgid, std::span<const std::int32_t> sid)
    : n_(static_cast<std::uint8_t>(pid.size())) {
    std::int32_t* d = inline_;
    if (n_ > kInline) d = heap_ = new std::int32_t[4 * std::size_t{n_}];
    std::copy(tgid.begin(), tgid.end(), d);
    std::copy(pid.begin(), pid.end(), d + n_);
    std::copy(pgid.begin(), pgid.end(), d + 2 * n_);
    std::copy(sid.begin(), sid.end(), d + 3 * n_);
}

PidChains::PidChains(PidChains&& o) noexcept : n_(o.n_) {
    if (n_ > kInline)
        heap_ = o.heap_;
    else
        std::copy(o.inline_, o.inline_ + 4 * kInline, inline_);
    o.n_ = 0;
}

PidChains& PidChains::operator=(PidChains&& o) noexcept {
    if (this == &o) return *this;
    if (n_ > kInline) delete[] heap_;
    n_ = o.n_;
    if (n_ > kInline)
        heap_ = o.heap_;
    else
        std::copy(o.inline_, o.inline_ + 4 * kInline, inline_);
    o.n_ = 0;
    return *this;
}

PidChains::~PidChains() {
    if (n_ > kInline) delete[] heap_;
}

NsFdList::NsFdList(std::span<const Entry> fds) {
    if (fds.empty()) return;
    block_ = static_cast<std::byte*>(::operator new(kHeader + fds.size() * sizeof(Entry)));
    *reinterpret_cast<std::size_t*>(block_) = fds.size();
    auto* out = reinterpret_cast<Entry*>(block_ + kHeader);
    for (std::size_t i = 0; i < fds.size(); ++i) new (out + i) Entry(fds[i]);
}

void NsFdList::reset() noexcept {
    if (block_ == nullptr) return;
    ::operator delete(block_);  // the entries are trivially destructible
    block_ = nullptr;
}

std::size_t Index::NsSetHash::operator()(const std::array<NsId, kNsTypeCount>& k) const noexcept {
    std::uint64_t x = 0;
    for (auto id : k) x = (x ^ id) * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x ^ (x >> 32));
}

std::size_t PidMap::home(NsId ns, std::int32_t nr) const noexcept {
    std::uint64_t x = ns * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint32_t>(nr);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return static_cast<std::size_t>(x) & (slots_.size() - 1);
}

const std::int32_t* PidMap::find(NsId ns, std::int32_t nr) const noexcept {
    if (size_ == 0) return nullptr;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(ns, nr);; i = (i + 1) & mask) {
        const Slot& s = slots_[i];
        if (s.ns == 0) return nullptr;
        if (s.ns == ns && s.nr == nr) return &s.tid;
    }
}

void PidMap::rehash(std::size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    const std::size_t mask = capacity - 1;
    for (const Slot& s : old) {
        if (s.ns == 0) continue;
        std::size_t i = home(s.ns, s.nr);
        while (slots_[i].ns != 0) i = (i + 1) & mask;
        slots_[i] = s;
    }
}

void PidMap::set(NsId ns, std::int32_t nr, std::int32_t tid) {
    if ((size_ + 1) * 5 > slots_.size() * 4) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = home(ns, nr);
    for (; slots_[i].ns != 0; i = (i + 1) & mask) {
        if (slots_[i].ns == ns && slots_[i].nr == nr) {
            slots_[i].tid = tid;
            return;
        }
    }
    slots_[i] = Slot{ns, nr, tid};
    ++size_;
}

void PidMap::erase_if(NsId ns, std::int32_t nr, std::int32_t tid) noexcept {
    if (size_ == 0) return;
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = home(ns, nr);
    for (;; i = (i + 1) & mask) {
        if (slots_[i].ns == 0) return;
        if (slots_[i].ns == ns && slots_[i].nr == nr) break;
    }
    if (slots_[i].tid != tid) return;
    // Backward shift: move later entries of the run into the hole unless they sit at or after
    // their home, so that no lookup meets an empty slot before its key.
    for (std::size_t j = i;;) {
        j = (j + 1) & mask;
        if (slots_[j].ns == 0) break;
        const std::size_t k = home(slots_[j].ns, slots_[j].nr);
        const bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{};
    --size_;
}

std::size_t Index::InodeKeyHash::operator()(const InodeKey& k) const noexcept {
    return static_cast<std::size_t>((k.inode * 0x9E3779B97F4A7C15ull) ^ k.dev);
}

Status Index::check_present(NsId id, const char* what) const {
    if (id != 0 && !namespaces_.contains(id))
        return make_error(Errc::no_such_namespace, std::string(what) + " " + std::to_string(id) + " is not in the index");
    return Ok{};
}

Status Index::add_namespace(const NamespaceMeta& meta) {
    if (meta.id == 0) return make_error(Errc::invalid_argument, "namespace id 0 is reserved");
    if (namespaces_.contains(meta.id)) return Ok{};
    if (auto s = check_present(meta.parent, "parent namespace"); !s) return s;
    if (auto s = check_present(meta.owner, "owner namespace"); !s) return s;
    if (by_inode_.contains(InodeKey{meta.dev, meta.inode}))
        return make_error(Errc::invalid_argument, "inode " + std::to_string(meta.inode) + " already indexed under another id");
    Namespace ns;
    ns.meta = meta;
    namespaces_.emplace(meta.id, std::move(ns));
    by_inode_.emplace(InodeKey{meta.dev, meta.inode}, meta.id);
    if (meta.parent) ref(meta.parent, &Namespace::child_refs);
    if (meta.owner) ref(meta.owner, &Namespace::child_refs);
    changes_.push_back(NsChange{meta.id, meta.type, true});
    return Ok{};
}

void Index::ref(NsId id, std::uint32_t Namespace::*counter) {
    if (auto it = namespaces_.find(id); it != namespaces_.end()) ++(it->second.*counter);
}

void Index::unref(NsId id, std::uint32_t Namespace::*counter) {
    auto it = namespaces_.find(id);
    if (it == namespaces_.end()) return;
    if (it->second.*counter > 0) --(it->second.*counter);
    maybe_drop(id);
}

bool Index::is_self(NsId id) const noexcept { return std::find(self_.begin(), self_.end(), id) != self_.end(); }

void Index::maybe_drop(NsId id) {
    auto it = namespaces_.find(id);
    if (it == namespaces_.end() || it->second.referenced()) return;
    if (is_self(id)) return;  // the observer's own stay
    erase_namespace(it);
}

void Index::erase_namespace(std::unordered_map<NsId, Namespace>::iterator it) {
    const NamespaceMeta meta = it->second.meta;
    by_inode_.erase(InodeKey{meta.dev, meta.inode});
    namespaces_.erase(it);
    changes_.push_back(NsChange{meta.id, meta.type, false});
    if (meta.parent) unref(meta.parent, &Namespace::child_refs);
    if (meta.owner) unref(meta.owner, &Namespace::child_refs);
}

bool Index::evict(NsId id, std::vector<std::int32_t>& stale) {
    if (!namespaces_.contains(id)) return false;
    // It and every namespace below it by parent or owner: a namespace keeps its parent and owner
    // alive, so all of them are gone. Never the observer's own (alive: the observer is in them).
    std::vector<NsId> gone{id};
    std::unordered_set<NsId> in{id};
    for (std::size_t i = 0; i < gone.size(); ++i) {
        if (is_self(gone[i])) return false;
        if (namespaces_.at(gone[i]).child_refs == 0) continue;
        for (const auto& [cid, ns] : namespaces_)
            if ((ns.meta.parent == gone[i] || ns.meta.owner == gone[i]) && in.insert(cid).second) gone.push_back(cid);
    }
    // The processes holding any of them: as members, and (a walk of all processes, only when one
    // is held that way) by a thread, pid/time_for_children or an fd.
    std::vector<std::int32_t> procs;
    bool side = false;
    for (const NsId g : gone) {
        const Namespace& ns = namespaces_.at(g);
        procs.insert(procs.end(), ns.members.begin(), ns.members.end());
        side = side || ns.task_refs != 0 || ns.fd_refs != 0;
    }
    if (side)
        for (const auto& [tgid, p] : processes_) {
            bool holds = in.contains(p.pid_for_children) || in.contains(p.time_for_children);
            if (p.threads)
                for (const auto& th : *p.threads)
                    for (const auto& [t, oid] : th.ns_overrides) holds = holds || in.contains(oid);
            if (p.ns_fds)
                for (const auto& [fd, fid] : *p.ns_fds) holds = holds || in.contains(fid);
            if (holds) procs.push_back(tgid);
        }
    std::sort(procs.begin(), procs.end());
    procs.erase(std::unique(procs.begin(), procs.end()), procs.end());
    for (const auto tgid : procs) remove_process(tgid);  // may drop some of `gone` already
    stale.insert(stale.end(), procs.begin(), procs.end());
    // Children before parents (they were found after them): each leaves its parent's count.
    for (auto g = gone.rbegin(); g != gone.rend(); ++g)
        if (auto it = namespaces_.find(*g); it != namespaces_.end()) erase_namespace(it);
    return true;
}

void Index::set_confirmed(NsId id, std::uint32_t stamp) noexcept {
    if (auto it = namespaces_.find(id); it != namespaces_.end()) it->second.confirmed = stamp;
}

void Index::collect() {
    std::vector<NsId> ids;
    ids.reserve(namespaces_.size());
    for (const auto& [id, ns] : namespaces_)
        if (!ns.referenced()) ids.push_back(id);
    for (auto id : ids) maybe_drop(id);
}

void Index::index_task_pids(std::span<const std::int32_t> nspid, NsId pidns, std::int32_t host_tid, bool add) {
    NsId ns = pidns;
    for (std::size_t k = nspid.size(); k-- > 1;) {
        if (add)
            by_nspid_.set(ns, nspid[k], host_tid);
        else
            by_nspid_.erase_if(ns, nspid[k], host_tid);
        auto nit = namespaces_.find(ns);
        if (nit == namespaces_.end()) break;
        ns = nit->second.meta.parent;
    }
}

void Index::link_process(Process& p, const std::array<NsId, kNsTypeCount>& ids) {
    auto [sit, fresh] = sets_.try_emplace(ids);
    NsSet& set = sit->second;
    if (fresh) {
        set.ns = ids;
        for (std::size_t i = 0; i < kNsTypeCount; ++i) {
            Namespace& ns = namespaces_.at(ids[i]);
            set.nss[i] = &ns;
            set.pos[i] = static_cast<std::uint32_t>(ns.members.sets_.size());
            ns.members.sets_.push_back(&set);
        }
    }
    p.ns.link(&set);
    p.slot = static_cast<std::uint32_t>(set.members.size());
    set.members.push_back(p.tgid);
    const std::int32_t low = p.chains.depth() ? p.chains.nstgid()[0] : p.tgid;
    for (Namespace* ns : set.nss) {
        ++ns->members.count_;
        if (!ns->summary_valid_) continue;
        MemberSummary& s = ns->summary_;
        if (s.lowest == 0 || low < s.lowest) s.lowest = low;
        if (s.oldest == 0 || p.start_time < s.oldest_start || (p.start_time == s.oldest_start && p.tgid < s.oldest)) {
            s.oldest = p.tgid;
            s.oldest_start = p.start_time;
        }
    }
    if (p.pid_for_children) ref(p.pid_for_children, &Namespace::task_refs);
    if (p.time_for_children) ref(p.time_for_children, &Namespace::task_refs);
    const NsId pidns = p.ns_of(NsType::pid);
    index_task_pids(p.chains.nspid(), pidns, p.tgid, true);
    if (p.threads) {
        for (std::uint32_t i = 0; i < p.threads->size(); ++i) {
            const auto& th = (*p.threads)[i];
            thread_leader_[th.tid] = ThreadRef{p.tgid, i};
            index_task_pids(th.nspid, pidns, th.tid, true);
            for (const auto& [t, id] : th.ns_overrides) ref(id, &Namespace::task_refs);
        }
    }
    if (p.ns_fds)
        for (const auto& [fd, id] : *p.ns_fds) ref(id, &Namespace::fd_refs);
}

void Index::unlink_process(Process& p, std::vector<NsId>& released) {
    NsSet& set = *p.ns.linked();
    if (p.slot < set.members.size() && set.members[p.slot] == p.tgid) {
        const std::int32_t moved = set.members.back();
        set.members[p.slot] = moved;
        set.members.pop_back();
        if (moved != p.tgid)
            if (auto mit = processes_.find(moved); mit != processes_.end()) mit->second.slot = p.slot;
    }
    const std::int32_t low = p.chains.depth() ? p.chains.nstgid()[0] : p.tgid;
    for (Namespace* ns : set.nss) {
        if (ns->members.count_ > 0) --ns->members.count_;
        // The lowest or the oldest left: recomputed when next asked.
        if (ns->summary_.lowest == low || ns->summary_.oldest == p.tgid) ns->summary_valid_ = false;
        released.push_back(ns->meta.id);
    }
    if (set.members.empty()) {
        for (std::size_t i = 0; i < kNsTypeCount; ++i) {
            auto& sets = set.nss[i]->members.sets_;
            const std::uint32_t pos = set.pos[i];
            if (pos < sets.size() && sets[pos] == &set) {
                sets[pos] = sets.back();
                sets[pos]->pos[i] = pos;
                sets.pop_back();
            }
        }
    }
    auto drop_ref = [&](NsId id, std::uint32_t Namespace::*counter) {
        auto it = namespaces_.find(id);
        if (it != namespaces_.end() && it->second.*counter > 0) --(it->second.*counter);
        released.push_back(id);
    };
    if (p.pid_for_children) drop_ref(p.pid_for_children, &Namespace::task_refs);
    if (p.time_for_children) drop_ref(p.time_for_children, &Namespace::task_refs);
    const NsId pidns = p.ns_of(NsType::pid);
    index_task_pids(p.chains.nspid(), pidns, p.tgid, false);
    if (p.threads) {
        for (const auto& th : *p.threads) {
            auto tit = thread_leader_.find(th.tid);
            if (tit != thread_leader_.end() && tit->second.tgid == p.tgid) thread_leader_.erase(tit);
            index_task_pids(th.nspid, pidns, th.tid, false);
            for (const auto& [t, id] : th.ns_overrides) drop_ref(id, &Namespace::task_refs);
        }
    }
    if (p.ns_fds)
        for (const auto& [fd, id] : *p.ns_fds) drop_ref(id, &Namespace::fd_refs);
    p.ns.link(nullptr);
    if (set.members.empty()) {
        const auto key = set.ns;
        sets_.erase(key);
    }
}

Status Index::check_typed(NsId id, NsType type, const char* what) const {
    if (auto s = check_present(id, what); !s) return s;
    if (id != 0 && namespaces_.at(id).meta.type != type)
        return make_error(Errc::invalid_argument, std::string(what) + " " + std::to_string(id) + " is a " +
                                                      std::string(ns_type_name(namespaces_.at(id).meta.type)) +
                                                      " namespace, not a " + std::string(ns_type_name(type)) + " one");
    return Ok{};
}

Status Index::upsert_process(ProcessData&& d) {
    if (d.tgid <= 0) return make_error(Errc::invalid_argument, "process id must be positive");
    for (auto id : d.ns)
        if (id == 0 || !namespaces_.contains(id))
            return make_error(Errc::no_such_namespace, "process " + std::to_string(d.tgid) + " names an unindexed namespace");
    // Slot i holds a namespace of type i: then no namespace is named in two slots of one set,
    // which link_process/unlink_process rely on (a set listed twice in one namespace's member
    // sets outlived its removal there: the scan_mounts crash of issue 22).
    for (auto t : kAllNsTypes)
        if (auto s = check_typed(d.ns[ns_type_index(t)], t, "namespace"); !s) return s;
    if (auto s = check_typed(d.pid_for_children, NsType::pid, "pid_for_children namespace"); !s) return s;
    if (auto s = check_typed(d.time_for_children, NsType::time, "time_for_children namespace"); !s) return s;
    for (const auto& th : d.threads)
        for (const auto& [t, id] : th.ns_overrides)
            if (auto s = check_typed(id, t, "thread namespace"); !s) return s;
    for (const auto& [fd, id] : d.ns_fds)
        if (auto s = check_present(id, "fd namespace"); !s) return s;
    const auto n = d.nspid.size();
    if (n == 0 || n > 64 || d.nstgid.size() != n || d.nspgid.size() != n || d.nssid.size() != n)
        return make_error(Errc::parse, "process " + std::to_string(d.tgid) + ": inconsistent NS* chains");
    const auto& pidns = namespaces_.at(d.ns[ns_type_index(NsType::pid)]).meta;
    if (pidns.type != NsType::pid || pidns.level + 1 != n)
        return make_error(Errc::parse, "process " + std::to_string(d.tgid) + ": NSpid depth " + std::to_string(n) +
                                           " does not match its pid namespace level " + std::to_string(pidns.level));
    for (const auto& th : d.threads)
        if (th.nspid.size() != n)
            return make_error(Errc::parse, "thread " + std::to_string(th.tid) + ": NSpid depth differs from its leader");

    std::vector<NsId> released;
    if (auto it = processes_.find(d.tgid); it != processes_.end()) {
        unlink_process(it->second, released);
        processes_.erase(it);
    }
    Process p;
    p.tgid = d.tgid;
    p.ppid = d.ppid;
    p.uid = d.uid;
    p.gid = d.gid;
    p.cap_prm = d.cap_prm;
    p.cap_eff = d.cap_eff;
    p.start_time = d.start_time;
    p.dumpable = d.dumpable;
    p.ns_tid = d.ns_tid;
    p.pid_for_children = d.pid_for_children;
    p.time_for_children = d.time_for_children;
    p.chains = PidChains(d.nstgid, d.nspid, d.nspgid, d.nssid);
    if (!d.threads.empty()) p.threads = std::make_unique<std::vector<ThreadRecord>>(std::move(d.threads));
    if (!d.ns_fds.empty()) p.ns_fds = NsFdList(d.ns_fds);
    auto [it, inserted] = processes_.emplace(p.tgid, std::move(p));
    link_process(it->second, d.ns);
    for (auto id : released) maybe_drop(id);
    return Ok{};
}

bool Index::remove_process(std::int32_t tgid) {
    auto it = processes_.find(tgid);
    if (it == processes_.end()) return false;
    std::vector<NsId> released;
    unlink_process(it->second, released);
    processes_.erase(it);
    for (auto id : released) maybe_drop(id);
    return true;
}

bool Index::detach_thread(std::int32_t tgid, std::int32_t tid, std::vector<NsId>& released) {
    auto tit = thread_leader_.find(tid);
    if (tit == thread_leader_.end() || tit->second.tgid != tgid) return false;
    auto pit = processes_.find(tgid);
    if (pit == processes_.end() || !pit->second.threads) return false;
    auto& threads = *pit->second.threads;
    const std::uint32_t pos = tit->second.pos;
    if (pos >= threads.size() || threads[pos].tid != tid) return false;
    thread_leader_.erase(tit);
    index_task_pids(threads[pos].nspid, pit->second.ns_of(NsType::pid), tid, false);
    for (const auto& [t, id] : threads[pos].ns_overrides) {
        auto it = namespaces_.find(id);
        if (it != namespaces_.end() && it->second.task_refs > 0) --it->second.task_refs;
        released.push_back(id);
    }
    if (pos + 1 != threads.size()) {
        threads[pos] = std::move(threads.back());
        thread_leader_[threads[pos].tid].pos = pos;
    }
    threads.pop_back();
    if (threads.empty()) pit->second.threads.reset();
    return true;
}

bool Index::remove_thread(std::int32_t tgid, std::int32_t tid) {
    std::vector<NsId> released;
    const bool removed = detach_thread(tgid, tid, released);
    for (auto id : released) maybe_drop(id);
    return removed;
}

Status Index::upsert_thread(std::int32_t tgid, ThreadRecord&& th) {
    auto pit = processes_.find(tgid);
    if (pit == processes_.end()) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is not indexed");
    if (th.tid <= 0 || th.tid == tgid) return make_error(Errc::invalid_argument, "thread id must be positive and not the leader's");
    for (const auto& [t, id] : th.ns_overrides)
        if (auto s = check_typed(id, t, "thread namespace"); !s) return s;
    if (th.nspid.size() != pit->second.chains.depth())
        return make_error(Errc::parse, "thread " + std::to_string(th.tid) + ": NSpid depth differs from its leader");
    std::vector<NsId> released;
    // The tid may still be recorded: re-read (same group), or a stale entry of another group.
    if (auto tit = thread_leader_.find(th.tid); tit != thread_leader_.end())
        (void)detach_thread(tit->second.tgid, th.tid, released);
    Process& p = pit->second;
    if (!p.threads) p.threads = std::make_unique<std::vector<ThreadRecord>>();
    const auto pos = static_cast<std::uint32_t>(p.threads->size());
    thread_leader_[th.tid] = ThreadRef{tgid, pos};
    index_task_pids(th.nspid, p.ns_of(NsType::pid), th.tid, true);
    for (const auto& [t, id] : th.ns_overrides) ref(id, &Namespace::task_refs);
    p.threads->push_back(std::move(th));
    for (auto id : released) maybe_drop(id);
    return Ok{};
}

Status Index::set_mount_refs(const std::unordered_map<NsId, std::uint32_t>& refs) {
    for (const auto& [id, n] : refs)
        if (auto s = check_present(id, "mounted namespace"); !s) return s;
    std::vector<NsId> released;
    for (auto& [id, ns] : namespaces_) {
        auto it = refs.find(id);
        const std::uint32_t n = it == refs.end() ? 0 : it->second;
        if (ns.mount_refs && !n) released.push_back(id);
        ns.mount_refs = n;
    }
    for (auto id : released) maybe_drop(id);
    return Ok{};
}

const Namespace* Index::find_namespace(NsId id) const {
    auto it = namespaces_.find(id);
    return it == namespaces_.end() ? nullptr : &it->second;
}

std::optional<NsId> Index::find_by_inode(std::uint64_t dev, std::uint64_t inode) const {
    auto it = by_inode_.find(InodeKey{dev, inode});
    if (it == by_inode_.end()) return std::nullopt;
    return it->second;
}

const Process* Index::find_process(std::int32_t tgid) const {
    auto it = processes_.find(tgid);
    return it == processes_.end() ? nullptr : &it->second;
}

bool Index::update_credentials(std::int32_t tgid, const std::array<std::uint32_t, 4>& uid,
                               const std::array<std::uint32_t, 4>& gid, std::uint64_t cap_prm, std::uint64_t cap_eff,
                               bool dumpable, std::int64_t read_ns) {
    auto it = processes_.find(tgid);
    if (it == processes_.end()) return false;
    Process& p = it->second;
    p.uid = uid;
    p.gid = gid;
    p.cap_prm = cap_prm;
    p.cap_eff = cap_eff;
    p.dumpable = dumpable;
    p.creds_read_ns = read_ns;
    return true;
}

std::optional<TaskView> Index::find_task(std::int32_t host_tid) const {
    if (auto it = processes_.find(host_tid); it != processes_.end())
        return TaskView{&it->second, it->second.chains.nspid(), host_tid};
    auto tit = thread_leader_.find(host_tid);
    if (tit == thread_leader_.end()) return std::nullopt;
    auto pit = processes_.find(tit->second.tgid);
    if (pit == processes_.end() || !pit->second.threads) return std::nullopt;
    const auto& th = (*pit->second.threads)[tit->second.pos];
    return TaskView{&pit->second, th.nspid, host_tid};
}

std::optional<std::int32_t> Index::host_tid(NsId pidns, std::int32_t nr) const {
    if (nr <= 0) return std::nullopt;
    if (pidns == root_pidns()) {
        if (find_task(nr)) return nr;
        return std::nullopt;
    }
    const std::int32_t* tid = by_nspid_.find(pidns, nr);
    if (tid == nullptr) return std::nullopt;
    return *tid;
}

bool Index::pidns_is_descendant(NsId ns, NsId ancestor) const {
    for (int guard = 0; ns != 0 && guard < 64; ++guard) {
        if (ns == ancestor) return true;
        auto it = namespaces_.find(ns);
        if (it == namespaces_.end()) return false;
        ns = it->second.meta.parent;
    }
    return false;
}

std::int32_t Index::pid_in(const TaskView& t, NsId to) const {
    const auto* target = find_namespace(to);
    if (!target) return 0;
    const std::size_t level = target->meta.level;
    if (level >= t.nspid.size()) return 0;
    NsId ns = t.process->ns_of(NsType::pid);
    for (std::size_t k = t.nspid.size() - 1; k > level; --k) {
        auto it = namespaces_.find(ns);
        if (it == namespaces_.end()) return 0;
        ns = it->second.meta.parent;
    }
    return ns == to ? t.nspid[level] : 0;
}

Result<std::int32_t> Index::translate(std::int32_t nr, NsId from, NsId to) const {
    if (nr <= 0) return make_error(Errc::invalid_argument, "pid must be a positive number");
    for (NsId id : {from, to}) {
        const auto* ns = find_namespace(id);
        if (!ns) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is not known");
        if (ns->meta.type != NsType::pid)
            return make_error(Errc::not_pid_namespace, "namespace " + std::to_string(id) + " is a " +
                                                           std::string(ns_type_name(ns->meta.type)) +
                                                           " namespace; name a pid namespace");
    }
    // Not worded with the pid: every caller words its own not_found (CallerView: whether the
    // caller may know), and TranslatePids meets one per absent pid (the text fits std::string's
    // inline buffer: no allocation).
    auto host = host_tid(from, nr);
    if (!host) return make_error(Errc::not_found, "no such task");
    auto task = find_task(*host);
    if (!task) return make_error(Errc::not_found, "no such task");
    return pid_in(*task, to);
}

MemberSummary Index::member_summary(const Namespace& ns) const {
    if (!ns.summary_valid_) {
        MemberSummary s;
        for (const NsSet* set : ns.members.sets_)
            for (const std::int32_t tgid : set->members) {
                auto it = processes_.find(tgid);
                if (it == processes_.end()) continue;
                const Process& p = it->second;
                const std::int32_t low = p.chains.depth() ? p.chains.nstgid()[0] : p.tgid;
                if (s.lowest == 0 || low < s.lowest) s.lowest = low;
                if (s.oldest == 0 || p.start_time < s.oldest_start ||
                    (p.start_time == s.oldest_start && p.tgid < s.oldest)) {
                    s.oldest = p.tgid;
                    s.oldest_start = p.start_time;
                }
            }
        ns.summary_ = s;
        ns.summary_valid_ = true;
    }
    MemberSummary s = ns.summary_;
    s.count = ns.members.count_;
    if (s.count == 0) s = MemberSummary{};
    return s;
}

namespace {
// glibc malloc's chunk for a request of n bytes (x86-64: 8 bytes of header, 16-byte granules, 32 at least).
std::size_t chunk(std::size_t n) {
    if (n == 0) return 0;
    const std::size_t c = (n + 8 + 15) & ~std::size_t{15};
    return c < 32 ? 32 : c;
}
// An unordered_map node (next pointer, then the value; no cached hash for our noexcept hashes)
// per element, and its bucket array.
template <class Map>
std::size_t map_bytes(const Map& m) {
    const std::size_t node = sizeof(void*) + sizeof(typename Map::value_type);
    return m.size() * chunk(node) + (m.bucket_count() > 1 ? chunk(m.bucket_count() * sizeof(void*)) : 0);
}
template <class T>
std::size_t vec_bytes(const std::vector<T>& v) {
    return chunk(v.capacity() * sizeof(T));
}
}  // namespace

Index::Memory Index::memory() const {
    Memory m;
    m.processes = map_bytes(processes_);
    for (const auto& [tgid, p] : processes_) {
        if (p.chains.on_heap()) m.chains += chunk(4 * p.chains.depth() * sizeof(std::int32_t));
        if (p.threads) {
            m.threads += chunk(sizeof(*p.threads)) + vec_bytes(*p.threads);
            for (const auto& th : *p.threads) m.threads += vec_bytes(th.nspid) + vec_bytes(th.ns_overrides);
        }
        m.threads += chunk(p.ns_fds.heap_bytes());
    }
    m.threads += map_bytes(thread_leader_);
    m.sets = map_bytes(sets_);
    for (const auto& [k, set] : sets_) m.sets += vec_bytes(set.members);
    m.namespaces = map_bytes(namespaces_) + map_bytes(by_inode_);
    for (const auto& [id, ns] : namespaces_) m.namespaces += vec_bytes(ns.members.sets_);
    m.pid_map = by_nspid_.heap_bytes() ? chunk(by_nspid_.heap_bytes()) : 0;
    return m;
}

std::vector<NsChange> Index::take_changes() {
    std::vector<NsChange> out;
    out.swap(changes_);
    return out;
}

}  // namespace pidns
