// The in-memory index of namespaces and processes.
#include "index.h"

#include <algorithm>
#include <cstring>

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
    : data_(std::make_unique_for_overwrite<std::int32_t[]>(4 * pid.size())),
      n_(static_cast<std::uint8_t>(pid.size())) {
    std::copy(tgid.begin(), tgid.end(), data_.get());
    std::copy(pid.begin(), pid.end(), data_.get() + n_);
    std::copy(pgid.begin(), pgid.end(), data_.get() + 2 * n_);
    std::copy(sid.begin(), sid.end(), data_.get() + 3 * n_);
}

std::size_t Index::PidKeyHash::operator()(const PidKey& k) const noexcept {
    std::uint64_t x = k.ns * 0x9E3779B97F4A7C15ull ^ static_cast<std::uint32_t>(k.nr);
    x ^= x >> 29;
    return static_cast<std::size_t>(x * 0xBF58476D1CE4E5B9ull);
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

void Index::maybe_drop(NsId id) {
    auto it = namespaces_.find(id);
    if (it == namespaces_.end() || it->second.referenced()) return;
    const NamespaceMeta meta = it->second.meta;
    if (std::find(self_.begin(), self_.end(), meta.id) != self_.end()) return;  // the observer's own stay
    by_inode_.erase(InodeKey{meta.dev, meta.inode});
    namespaces_.erase(it);
    changes_.push_back(NsChange{meta.id, meta.type, false});
    if (meta.parent) unref(meta.parent, &Namespace::child_refs);
    if (meta.owner) unref(meta.owner, &Namespace::child_refs);
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
        PidKey key{ns, nspid[k]};
        if (add) {
            by_nspid_[key] = host_tid;
        } else if (auto it = by_nspid_.find(key); it != by_nspid_.end() && it->second == host_tid) {
            by_nspid_.erase(it);
        }
        auto nit = namespaces_.find(ns);
        if (nit == namespaces_.end()) break;
        ns = nit->second.meta.parent;
    }
}

void Index::link_process(Process& p) {
    for (auto t : kAllNsTypes) {
        auto& ns = namespaces_.at(p.ns_of(t));
        p.slot[ns_type_index(t)] = static_cast<std::uint32_t>(ns.members.size());
        ns.members.push_back(p.tgid);
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
    for (auto t : kAllNsTypes) {
        const NsId id = p.ns_of(t);
        auto it = namespaces_.find(id);
        if (it == namespaces_.end()) continue;
        auto& members = it->second.members;
        const std::uint32_t pos = p.slot[ns_type_index(t)];
        if (pos < members.size() && members[pos] == p.tgid) {
            const std::int32_t moved = members.back();
            members[pos] = moved;
            members.pop_back();
            if (moved != p.tgid) {
                auto mit = processes_.find(moved);
                if (mit != processes_.end()) mit->second.slot[ns_type_index(t)] = pos;
            }
        }
        released.push_back(id);
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
}

Status Index::upsert_process(ProcessData&& d) {
    if (d.tgid <= 0) return make_error(Errc::invalid_argument, "process id must be positive");
    for (auto id : d.ns)
        if (id == 0 || !namespaces_.contains(id))
            return make_error(Errc::no_such_namespace, "process " + std::to_string(d.tgid) + " names an unindexed namespace");
    for (auto id : {d.pid_for_children, d.time_for_children})
        if (auto s = check_present(id, "namespace"); !s) return s;
    for (const auto& th : d.threads)
        for (const auto& [t, id] : th.ns_overrides)
            if (auto s = check_present(id, "thread namespace"); !s) return s;
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
    p.ns = d.ns;
    p.pid_for_children = d.pid_for_children;
    p.time_for_children = d.time_for_children;
    p.chains = PidChains(d.nstgid, d.nspid, d.nspgid, d.nssid);
    if (!d.threads.empty()) p.threads = std::make_unique<std::vector<ThreadRecord>>(std::move(d.threads));
    if (!d.ns_fds.empty())
        p.ns_fds = std::make_unique<std::vector<std::pair<std::int32_t, NsId>>>(std::move(d.ns_fds));
    auto [it, inserted] = processes_.emplace(p.tgid, std::move(p));
    link_process(it->second);
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
        if (auto s = check_present(id, "thread namespace"); !s) return s;
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
                               bool dumpable) {
    auto it = processes_.find(tgid);
    if (it == processes_.end()) return false;
    Process& p = it->second;
    p.uid = uid;
    p.gid = gid;
    p.cap_prm = cap_prm;
    p.cap_eff = cap_eff;
    p.dumpable = dumpable;
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
    auto it = by_nspid_.find(PidKey{pidns, nr});
    if (it == by_nspid_.end()) return std::nullopt;
    return it->second;
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
    auto host = host_tid(from, nr);
    if (!host) return make_error(Errc::not_found, "no task " + std::to_string(nr) + " in pid namespace " + std::to_string(from));
    auto task = find_task(*host);
    if (!task) return make_error(Errc::not_found, "no task " + std::to_string(nr));
    return pid_in(*task, to);
}

std::vector<NsChange> Index::take_changes() {
    std::vector<NsChange> out;
    out.swap(changes_);
    return out;
}

}  // namespace pidns
