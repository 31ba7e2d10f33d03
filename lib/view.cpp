// The v1 API's answers as one caller sees them.
#include "view.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "access.h"
#include "model.h"

namespace pidns {
namespace {

Error no_such_namespace(std::uint64_t ref) {
    return make_error(Errc::no_such_namespace,
                      "no namespace " + std::to_string(ref) +
                          " is visible to you; use a namespace id, an inode number from "
                          "readlink /proc/PID/ns/TYPE, or 0 for your own");
}

// A live task whose namespaces the kernel does not show even to root (as this VM's pid 1):
// nobody may inspect it through the kernel, so nobody may through the model either.
Error unreadable(std::uint32_t pid) {
    return make_error(Errc::unreadable, "the kernel does not let even root read the namespaces of process " +
                                            std::to_string(pid) + ", so nobody may inspect it; ask about another pid");
}

// The front end says how the caller may be allowed more (pidnsd: its polkit action).
Error denied(std::uint32_t pid) {
    return make_error(Errc::access_denied,
                      "you may not inspect process " + std::to_string(pid) +
                          " (the kernel's ptrace read check: same uid and gid, or CAP_SYS_PTRACE over it)");
}

std::uint32_t at_level(std::span<const std::int32_t> chain, std::size_t level) {
    return level < chain.size() ? static_cast<std::uint32_t>(chain[level]) : 0;
}

std::vector<std::uint32_t> suffix(std::span<const std::int32_t> chain, std::size_t level) {
    std::vector<std::uint32_t> out;
    for (std::size_t i = level; i < chain.size(); ++i) out.push_back(static_cast<std::uint32_t>(chain[i]));
    return out;
}

}  // namespace

Result<NsId> resolve_reference(const Index& index, std::uint64_t nsfs_dev, std::uint64_t ref,
                               const std::function<bool(NsId)>& visible) {
    if (ref == 0) return no_such_namespace(ref);
    const NsId by_id = index.find_namespace(ref) && visible(ref) ? ref : 0;
    NsId by_inode = 0;
    if (auto id = index.find_by_inode(nsfs_dev, ref); id && visible(*id)) by_inode = *id;
    if (by_id && by_inode && by_id != by_inode)
        return make_error(Errc::ambiguous, std::to_string(ref) + " is the id of namespace " + std::to_string(by_id) +
                                               " and the inode of namespace " + std::to_string(by_inode) +
                                               "; pass the namespace id instead");
    if (by_id) return by_id;
    if (by_inode) return by_inode;
    return no_such_namespace(ref);
}

CallerView::CallerView(Model& model, const Caller& caller)
    : model_(model), index_(model.index()), caller_(caller) {
    if (const auto* ns = index_.find_namespace(caller.pidns)) level_ = ns->meta.level;
    if (const auto* ns = index_.find_namespace(caller.userns)) user_level_ = ns->meta.level;
    at_root_ = caller.pidns == index_.root_pidns();
    // CAP_SYS_PTRACE effective in pidnsd's own user namespace covers every user namespace the
    // index holds, so rules 2 and 3 pass for every task: skip the per-task walk.
    all_creds_ = caller.userns == index_.root_userns() && ((caller.cap_eff >> kCapSysPtrace) & 1u);
}

bool CallerView::in_subtree(const Process& p) const {
    return at_root_ || index_.pidns_is_descendant(p.ns_of(NsType::pid), caller_.pidns);
}

Access CallerView::access(const Process& p) const {
    if (!in_subtree(p)) return Access::invisible;
    if (all_creds_ || widened_) return Access::allowed;
    if (passes_credentials(index_, caller_, p)) return Access::allowed;
    note_denial(p);
    return Access::denied;
}

void CallerView::note_denial(const Process& p) const {
    denied_any_ = true;
    if (!first_denial_) first_denial_ = Denial{p.tgid, p.uid[1], p.ns_of(NsType::pid)};
}

bool CallerView::is_caller(const Process& p) const {
    // The caller's own credentials were read again for this call (refresh_caller), and whatever
    // they are the kernel lets a process inspect its own thread group.
    return p.tgid == caller_.pid && p.start_time == caller_.start_time;
}

bool CallerView::may_inspect(const Process& p) {
    const Access a = access(p);
    if (a != Access::allowed || all_creds_ || widened_ || !fresh_credentials_ || is_caller(p))
        return a == Access::allowed;
    // Allowed on what the index remembers; credentials change without events (setuid, prctl),
    // so confirm with fresh ones before showing it (once per process and request).
    auto [it, fresh] = confirmed_.try_emplace(p.tgid, false);
    if (fresh) {
        it->second = model_.refresh_credentials(p.tgid).ok() && access(p) == Access::allowed;
        if (!it->second) note_denial(p);
    }
    return it->second;
}

CallerView::Fresh CallerView::inspect_now(const Process& p) {
    const Access a = access(p);
    if (a != Access::allowed || all_creds_ || widened_ || !fresh_credentials_ || is_caller(p))
        return a == Access::allowed ? Fresh::allowed : Fresh::denied;
    if (auto it = confirmed_.find(p.tgid); it != confirmed_.end()) return it->second ? Fresh::allowed : Fresh::denied;
    if (auto r = model_.refresh_credentials(p.tgid); !r) {
        if (r.error().code == Errc::not_found) return Fresh::gone;
        if (r.error().code == Errc::moved) return Fresh::moved;
        confirmed_.emplace(p.tgid, false);
        note_denial(p);
        return Fresh::denied;
    }
    const bool ok = access(p) == Access::allowed;
    confirmed_.emplace(p.tgid, ok);
    if (!ok) note_denial(p);
    return ok ? Fresh::allowed : Fresh::denied;
}

Access CallerView::decide(const Process& p) {
    if (all_creds_ || widened_) return access(p);
    if (!in_subtree(p)) return Access::invisible;
    if (is_caller(p)) return access(p);
    // Read after this request was received (for another request, or earlier in this one): as
    // fresh for it as a read now. A change before the request came is in that read; one after
    // it races the request, as it would with the kernel. A flood's batches each read every
    // target they were allowed again (a quarter of pidnsd's CPU under bench_flood's batches).
    if (scratch_ != nullptr && p.creds_read_ns > scratch_->begun_ns) return access(p);
    if (!model_.refresh_credentials(p.tgid)) return Access::denied;  // gone or reused: nothing to show
    return access(p);
}

std::uint32_t CallerView::view_tgid(const Process& p) const { return at_level(p.chains.nstgid(), level_); }

bool CallerView::in_scope(const Namespace& ns) const {
    switch (ns.meta.type) {
    case NsType::pid: return index_.pidns_is_descendant(ns.meta.id, caller_.pidns);
    case NsType::user: return index_.pidns_is_descendant(ns.meta.id, caller_.userns);
    default:
        if (ns.meta.owner == 0) return caller_.userns == index_.root_userns();
        return index_.pidns_is_descendant(ns.meta.owner, caller_.userns);
    }
}

bool CallerView::visible(const Namespace& ns) {
    // Every process is inspectable: a namespace with members is visible when in scope, without a
    // look at a member, so without the cache either.
    if (at_root_ && all_creds_ && !ns.members.empty()) return in_scope(ns);
    auto [it, fresh] = visible_cache_.try_emplace(ns.meta.id, false);
    if (!fresh) return it->second;
    bool v = false;
    if (in_scope(ns)) {
        if (ns.members.empty()) {
            // Held only by an fd, a bind mount or as an ancestor: no process to check against, so
            // ask for what reaching it through the kernel takes: CAP_SYS_PTRACE over its owner.
            NsId owner = ns.meta.type == NsType::user ? ns.meta.id : ns.meta.owner;
            if (owner == 0) owner = index_.root_userns();
            v = at_root_ && (all_creds_ || widened_ ||
                             has_capability_in(index_, caller_.userns, caller_.cap_eff, caller_.uid[1], owner,
                                               kCapSysPtrace));
            if (at_root_ && !v) denied_any_ = true;
        } else {
            for (auto tgid : ns.members) {
                const auto* p = index_.find_process(tgid);
                if (p && may_inspect(*p)) {
                    v = true;
                    break;
                }
            }
        }
    }
    it->second = v;
    return v;
}

bool CallerView::visible(NsId id) {
    if (id == 0) return false;
    const auto* ns = index_.find_namespace(id);
    return ns && visible(*ns);
}

Result<NsId> CallerView::resolve(std::uint64_t ref, NsType dflt) {
    if (ref == 0) {
        const NsId own = dflt == NsType::pid ? caller_.pidns : dflt == NsType::user ? caller_.userns : 0;
        if (own == 0) return no_such_namespace(ref);
        return own;
    }
    auto visible_id = [this](NsId id) { return visible(id); };
    auto r = resolve_reference(index_, model_.features().nsfs_dev, ref, visible_id);
    if (!r || *r == ref) return r;
    // Named by its inode (pidnsctl reads one from the caller's /proc/PID/ns link): the entry of
    // that inode may be a dead namespace's whose inode the kernel gave to the one meant. Confirmed
    // through one of its holders; found gone, it is dropped (Model::open_namespace) and the
    // reference resolved again, to the namespace the kernel has now if the index holds it.
    const NsId id = *r;
    (void)model_.open_namespace(id);
    if (index_.find_namespace(id)) return r;
    visible_cache_.clear();
    return resolve_reference(index_, model_.features().nsfs_dev, ref, visible_id);
}

Result<NsId> CallerView::resolve_pidns(std::uint64_t ref) {
    auto id = resolve(ref, NsType::pid);
    if (!id) return id;
    const auto* ns = index_.find_namespace(*id);
    if (ns->meta.type != NsType::pid)
        return make_error(Errc::not_pid_namespace, "namespace " + std::to_string(ref) + " is a " +
                                                       std::string(ns_type_name(ns->meta.type)) +
                                                       " namespace; name a pid namespace");
    return id;
}

Result<std::int32_t> CallerView::checked_pid(std::uint32_t pid) const {
    if (!is_valid_pid(pid))
        return make_error(Errc::invalid_argument, "pid " + std::to_string(pid) + " is out of range; pass a pid from 1 to 2147483647");
    return static_cast<std::int32_t>(pid);
}

Result<std::uint32_t> CallerView::translate(std::uint32_t pid, std::uint64_t from, std::uint64_t to) {
    auto nr = checked_pid(pid);
    if (!nr) return nr.error();
    auto f = resolve_pidns(from);
    if (!f) return f.error();
    auto t = resolve_pidns(to);
    if (!t) return t.error();
    return translate_resolved(*nr, *f, *t);
}

CallerView::Translated CallerView::translate_decided(std::int32_t nr, NsId from, NsId to) {
    auto r = model_.translate(nr, from, to, scratch_);  // may read the kernel and add the task to the index
    visible_cache_.clear();
    if (!r) return r.error().code == Errc::not_found ? Translated{Outcome::absent} : Translated{Outcome::failed, 0, std::move(r.error())};
    auto host = index_.host_tid(from, nr);
    const auto task = host ? index_.find_task(*host) : std::nullopt;
    if (!task) {
        // The kernel knows the task, but it exited since or its /proc entries cannot be read.
        if (auto h = model_.translate(nr, from, index_.root_pidns(), scratch_); h && *h > 0 && is_live_task(model_.proc_fd(), *h))
            return {Outcome::unreadable, 0, {}, true};
        return {Outcome::exited, 0, {}, true};
    }
    switch (decide(*task->process)) {
    case Access::allowed: break;
    case Access::invisible: return {Outcome::absent, 0, {}, true};
    case Access::denied: return {Outcome::denied, 0, {}, true};
    }
    return {Outcome::ok, static_cast<std::uint32_t>(*r), {}, true};
}

Result<std::uint32_t> CallerView::translate_resolved(std::int32_t nr, NsId from, NsId to) {
    const std::uint32_t pid = static_cast<std::uint32_t>(nr);
    auto t = translate_decided(nr, from, to);
    switch (t.outcome) {
    case Outcome::ok: return t.pid;
    case Outcome::absent:
        return make_error(Errc::not_found, "no process " + std::to_string(pid) + " in pid namespace " +
                                               std::to_string(from) + "; check the pid and the namespace");
    case Outcome::unreadable: return unreadable(pid);
    case Outcome::exited: return make_error(Errc::not_found, "process " + std::to_string(pid) + " exited; check the pid");
    case Outcome::denied: return denied(pid);
    case Outcome::failed: break;
    }
    return std::move(t.error);
}

Result<std::size_t> CallerView::translate_some(std::span<const std::uint32_t> pids, NsId from, NsId to,
                                               std::vector<std::uint32_t>& out,
                                               std::chrono::steady_clock::time_point deadline) {
    if (!index_.find_namespace(from) || !index_.find_namespace(to))
        return make_error(Errc::no_such_namespace, "a pid namespace of this request left the index while it was "
                                                   "being answered; list the namespaces again");
    // A repeated pid that named a task costs one decision; a miss is not kept (it costs a lookup
    // of the index, and a question to the kernel until the index is whole for the request:
    // Model::translate).
    std::unordered_map<std::uint32_t, std::uint32_t> seen;
    // A caller who sees every process: an index hit is what translate_resolved would answer
    // (decide() allows every task for it), without its second lookup and per-pid bookkeeping.
    const bool every = sees_everything();
    std::size_t done = 0;
    for (auto pid : pids) {
        if (done > 0 && (done & 7) == 0 && std::chrono::steady_clock::now() >= deadline) break;
        ++done;
        if (!is_valid_pid(pid)) {
            out.push_back(0);
            continue;
        }
        if (every)
            if (auto r = index_.translate(static_cast<std::int32_t>(pid), from, to)) {
                out.push_back(static_cast<std::uint32_t>(*r));
                continue;
            }
        if (!seen.empty())
            if (auto it = seen.find(pid); it != seen.end()) {
                out.push_back(it->second);
                continue;
            }
        // Absent, and known to be for this request: 0 without translate_decided's error.
        if (scratch_ != nullptr && model_.miss_known_final(static_cast<std::int32_t>(pid), from, *scratch_) &&
            !index_.host_tid(from, static_cast<std::int32_t>(pid))) {
            out.push_back(0);
            continue;
        }
        const auto t = translate_decided(static_cast<std::int32_t>(pid), from, to);
        if (t.found) seen.emplace(pid, t.pid);
        out.push_back(t.pid);
    }
    return done;
}

CallerView::Built CallerView::build_entry(EntryBuild& b, NamespaceEntry& e,
                                          std::chrono::steady_clock::time_point deadline) {
    const Namespace* ns = index_.find_namespace(b.id);
    if (ns == nullptr) return Built::gone;
    if (!b.begun && sees_everything()) {
        // may_inspect() holds for every process without a look at it (in pidnsd's pid namespace
        // with CAP_SYS_PTRACE in its user namespace, or polkit's yes): every member counts, and
        // the index keeps the count, the lowest tgid (the caller's view is pidnsd's, level 0) and
        // the oldest member, O(1).
        const MemberSummary s = index_.member_summary(*ns);
        b.begun = true;
        b.members.clear();
        b.pos = 0;
        b.nprocs = s.count;
        b.lowest = static_cast<std::uint32_t>(s.lowest);
        b.oldest = s.oldest;
        b.oldest_start = s.oldest_start;
    }
    if (!b.begun) {
        // Members are copied: the index's member lists reorder on removal between pieces.
        b.begun = true;
        b.members = ns->members.to_vector();
        b.pos = 0;
        b.nprocs = 0;
        b.lowest = 0;
        b.oldest = 0;
        b.oldest_start = 0;
    }
    while (b.pos < b.members.size()) {
        const auto* p = index_.find_process(b.members[b.pos++]);
        if (p != nullptr && p->ns[ns_type_index(ns->meta.type)] == b.id && may_inspect(*p)) {
            ++b.nprocs;
            const auto v = view_tgid(*p);
            if (v && (b.lowest == 0 || v < b.lowest)) b.lowest = v;
            if (b.oldest == 0 || p->start_time < b.oldest_start ||
                (p->start_time == b.oldest_start && p->tgid < b.oldest)) {
                b.oldest = p->tgid;
                b.oldest_start = p->start_time;
            }
        }
        if ((b.pos & 15) == 0 && std::chrono::steady_clock::now() >= deadline) return Built::more;
    }
    const auto& m = ns->meta;
    e = NamespaceEntry{};
    e.id = m.id;
    e.inode = m.inode;
    e.type = m.type;
    e.parent = visible(m.parent) ? m.parent : 0;
    e.owner = visible(m.owner) ? m.owner : 0;
    if (m.type == NsType::pid) e.level = m.level - static_cast<std::uint32_t>(level_);
    if (m.type == NsType::user) e.level = m.level - user_level_;
    e.nprocs = b.nprocs;
    e.rep_tgid = b.oldest;
    e.rep_start = b.oldest_start;
    if (m.type == NsType::pid) {
        if (auto host = index_.host_tid(m.id, 1))
            if (auto task = index_.find_task(*host); task && may_inspect(*task->process)) {
                e.init_pid = at_level(task->nspid, level_);
                e.rep_tgid = task->process->tgid;
                e.rep_start = task->process->start_time;
            }
    } else {
        e.init_pid = b.lowest;
    }
    e.owner_uid = map_id_in(caller_.uid_map, m.owner_uid);
    return Built::done;
}

std::vector<NsId> CallerView::namespaces_of_type(std::optional<NsType> only) const {
    std::vector<NsId> ids;
    for (const auto& [id, ns] : index_.namespaces())
        if (!only || ns.meta.type == *only) ids.push_back(id);
    return ids;
}

std::vector<std::int32_t> CallerView::members_of(NsId id) const {
    const auto* ns = index_.find_namespace(id);
    return ns ? ns->members.to_vector() : std::vector<std::int32_t>{};
}

bool CallerView::inspects_everything() {
    if (at_root_ && (all_creds_ || widened_)) return true;
    denied_any_ = true;
    return false;
}

std::uint32_t CallerView::listed_pid(std::int32_t tgid) {
    const auto* p = index_.find_process(tgid);
    if (p == nullptr || !may_inspect(*p)) return 0;
    return view_tgid(*p);
}

Status check_batch(std::size_t pids) {
    if (pids <= kMaxBatch) return Ok{};
    return make_error(Errc::invalid_argument,
                      std::to_string(pids) + " pids in one call; send at most " + std::to_string(kMaxBatch) + " per call");
}

Result<std::optional<NsType>> parse_type_filter(std::string_view type) {
    if (type.empty()) return std::optional<NsType>{};
    auto only = ns_type_from_name(type);
    if (!only)
        return make_error(Errc::invalid_argument, "unknown namespace type '" + std::string(type) +
                                                      "'; use one of " + std::string(ns_type_names()) + ", or '' for all");
    return std::optional<NsType>{*only};
}

void sort_entries(std::vector<NamespaceEntry>& entries) {
    std::sort(entries.begin(), entries.end(), [](const NamespaceEntry& a, const NamespaceEntry& b) {
        if (a.type != b.type) return ns_type_index(a.type) < ns_type_index(b.type);
        if (a.level != b.level) return a.level < b.level;
        return a.id < b.id;
    });
}

Result<ProcessEntry> CallerView::get_process(std::uint32_t pid) {
    auto task = inspected_task(pid);
    if (!task) return task.error();
    return entry_of(*task);
}

Result<ProcessDescription> CallerView::describe_process(std::uint32_t pid) {
    auto task = inspected_task(pid);
    if (!task) return task.error();
    ProcessDescription d;
    d.entry = entry_of(*task);
    const Process& p = *task->process;
    d.tgid = p.tgid;
    d.start_time = p.start_time;
    d.host_uid = p.uid[1];
    d.uid = caller_uid(p.uid[1]);
    if (const auto leader = view_tgid(p)) d.threads.push_back(leader);
    if (p.threads)
        for (const auto& th : *p.threads)
            if (const auto v = at_level(th.nspid, level_)) d.threads.push_back(v);
    auto labels = read_labels(model_.proc_fd(), p.tgid, p.start_time);
    if (!labels)
        return make_error(Errc::not_found, "process " + std::to_string(pid) + " exited; check the pid");
    d.labels = std::move(*labels);
    return d;
}

std::optional<Labels> CallerView::labels_of(const NamespaceEntry& e) const {
    if (e.rep_tgid == 0) return std::nullopt;  // none of its processes may be inspected
    auto labels = read_labels(model_.proc_fd(), e.rep_tgid, e.rep_start);
    if (!labels) return std::nullopt;  // it exited, or the pid names another process now
    return std::move(*labels);
}

std::vector<std::pair<std::string, std::string>> CallerView::holders_of(NsId id) {
    std::vector<std::pair<std::string, std::string>> out;
    const Namespace* ns = index_.find_namespace(id);
    if (!ns) return out;
    const auto bits = ns->holders();
    for (auto [bit, name] : {std::pair{kHeldByProcess, "process"}, std::pair{kHeldByTask, "task"},
                             std::pair{kHeldByFd, "fd"}, std::pair{kHeldAsAncestor, "ancestor"}})
        if (bits & bit) out.emplace_back(name, "");
    bool hidden_mount = false;
    for (const auto& [pid, path] : model_.mounts_of(id)) {
        const auto task = index_.find_task(pid);
        if (task && may_inspect(*task->process))
            out.emplace_back("mount", path);
        else
            hidden_mount = true;
    }
    if (hidden_mount || ((bits & kHeldByMount) && model_.mounts_of(id).empty())) out.emplace_back("mount", "");
    return out;
}

std::vector<std::string> CallerView::netns_names(NsId id) const {
    std::vector<std::string> out;
    const Namespace* ns = index_.find_namespace(id);
    if (!ns || ns->meta.type != NsType::net) return out;
    // The host's mount namespace: pid 1's; pidnsd's own where pid 1 is not indexed (its links
    // unreadable: a VM's init may keep them from root).
    const auto init = index_.host_tid(index_.root_pidns(), 1);
    const auto init_task = init ? index_.find_task(*init) : std::nullopt;
    const NsId host_mnt = init_task ? init_task->process->ns_of(NsType::mnt) : index_.self_ns(NsType::mnt);
    constexpr std::string_view kDir = "/run/netns/";
    for (const auto& [pid, path] : model_.mounts_of(id)) {
        const auto task = index_.find_task(pid);
        if (!task || task->process->ns_of(NsType::mnt) != host_mnt) continue;
        if (!path.starts_with(kDir)) continue;
        const auto name = std::string_view(path).substr(kDir.size());
        if (!name.empty() && name.find('/') == std::string_view::npos) out.emplace_back(name);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::uint32_t CallerView::caller_uid(std::uint32_t host_uid) const { return map_id_in(caller_.uid_map, host_uid); }

bool CallerView::in_root_userns() const { return caller_.userns == index_.root_userns(); }

Result<TaskView> CallerView::inspected_task(std::uint32_t pid) {
    auto nr = checked_pid(pid);
    if (!nr) return nr.error();
    auto host = model_.translate(*nr, caller_.pidns, index_.root_pidns());
    visible_cache_.clear();
    auto task = host && *host > 0 ? index_.find_task(*host) : std::nullopt;
    if (!task && host && *host > 0 && is_live_task(model_.proc_fd(), *host)) return unreadable(pid);
    if (!task)
        return make_error(Errc::not_found, "no process " + std::to_string(pid) +
                                               " in your pid namespace; check the pid (ps)");
    const Process& p = *task->process;
    switch (decide(p)) {
    case Access::allowed: break;
    case Access::invisible:
        return make_error(Errc::not_found, "no process " + std::to_string(pid) +
                                               " in your pid namespace; check the pid (ps)");
    case Access::denied: return denied(pid);
    }
    // Verify-on-read: unshare()/setns() send no event, so compare its links with the index first.
    if (auto changed = model_.verify_process(p.tgid); !changed || *changed) {
        task = index_.find_task(*host);  // re-read (or removed): the old entry is gone
        if (!task)
            return make_error(Errc::not_found, "no process " + std::to_string(pid) +
                                                   " in your pid namespace; check the pid (ps)");
    }
    return *task;
}

ProcessEntry CallerView::entry_of(const TaskView& task) {
    const Process& p = *task.process;
    ProcessEntry e;
    e.nspid = suffix(task.nspid, level_);
    e.nstgid = suffix(p.chains.nstgid(), level_);
    e.nspgid = suffix(p.chains.nspgid(), level_);
    e.nssid = suffix(p.chains.nssid(), level_);
    std::array<NsId, kNsTypeCount> ns = p.ns;
    if (task.tid != p.tgid && p.threads) {
        for (const auto& th : *p.threads)
            if (th.tid == task.tid)
                for (const auto& [t, id] : th.ns_overrides) ns[ns_type_index(t)] = id;
    }
    for (std::size_t i = 0; i < ns.size(); ++i) e.ns[i] = visible(ns[i]) ? ns[i] : 0;
    return e;
}

std::uint32_t CallerView::namespace_count() {
    std::uint32_t n = 0;
    for (const auto& [id, ns] : index_.namespaces()) n += visible(ns) ? 1 : 0;
    return n;
}

std::uint32_t CallerView::process_count() {
    if (at_root_ && all_creds_) return static_cast<std::uint32_t>(index_.process_count());
    std::uint32_t n = 0;
    for (const auto& [tgid, p] : index_.processes()) n += may_inspect(p) ? 1 : 0;
    return n;
}

}  // namespace pidns
