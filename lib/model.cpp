// The model: discovers namespaces and processes from /proc and nsfs into an Index and keeps it current.
#include "model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>
#include <unordered_set>

#include "id_map.h"
#include "mountinfo.h"

namespace pidns {
namespace {

// "PID/rest", relative to the /proc fd.
std::string proc_rel(std::int32_t pid, std::string_view rest) {
    std::string p = std::to_string(pid);
    p += '/';
    p += rest;
    return p;
}

// Where a process's own links are, relative to /proc/TGID: "" while its leader lives, else
// "task/TID/" of the live thread it was read through (a zombie leader's links are gone).
std::string links_base(std::int32_t ns_tid) { return ns_tid ? "task/" + std::to_string(ns_tid) + "/" : std::string(); }
}  // namespace

Model::Model(const DiscoveryOptions& opts, Fd proc) : opts_(opts), proc_(std::move(proc)), features_(kernel_features()) {
    if (opts_.assume_kernel) features_ = features_of(features_, *opts_.assume_kernel);
    if (!opts_.kernel_ids) features_.ns_get_id = features_.ns_handles = false;
}

Result<std::unique_ptr<Model>> Model::create(const DiscoveryOptions& opts) {
    int fd = ::open(opts.proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "cannot open " + opts.proc_root + "; is procfs mounted?", errno);
    std::unique_ptr<Model> m(new Model(opts, Fd(fd)));
    if (auto s = m->register_self(); !s) return s.error();
    if (!opts.processes || !opts.fds)
        m->fd_source_reason_ = "namespace fds are not looked for";
    else if (!opts.fds_by_bpf)
        m->fd_source_reason_ = "turned off";
    else if (!in_initial_pid_namespace(m->proc_.get()))
        // The iterator names processes by their pids in the initial pid namespace.
        m->fd_source_reason_ = "not in the initial pid namespace, or " + opts.proc_root + " is not its procfs";
    else if (auto it = NsfsFdIter::load())
        m->fd_iter_ = std::move(*it);
    else
        m->fd_source_reason_ = it.error().message;
    return m;
}

NsId Model::assign_id(const NamespaceMeta& meta) {
    // Without NS_GET_ID, a namespace keeps its assigned id while it stays in the index; a rescan
    // carries it over only to a namespace alike in everything the kernel shows of it: the inode
    // alone may be a new namespace's (the kernel reuses it at once, across types).
    if (previous_)
        if (auto id = previous_->find_by_inode(meta.dev, meta.inode); id && !index_.find_namespace(*id)) {
            const NamespaceMeta& was = previous_->find_namespace(*id)->meta;
            if (was.type == meta.type && was.parent == meta.parent && was.owner == meta.owner &&
                was.owner_uid == meta.owner_uid && was.level == meta.level)
                return *id;
        }
    return next_assigned_++;
}

std::uint32_t Model::count_levels(int fd) {
    std::uint32_t n = 0;
    auto cur = ns_get_parent(fd);
    while (cur && n < 64) {
        ++n;
        cur = ns_get_parent(cur->get());
    }
    return n;
}

Result<NsId> Model::resolve_fd(int fd) {
    Busy busy(*this);
    return resolve_fd_at(fd);
}

Result<NsId> Model::resolve_fd_at(int fd) {
    auto ident = ns_identity(fd);
    if (!ident) return ident.error();
    if (auto id = lookup(ident->type, ident->inode)) {
        if (building_) return *id;  // registered from this very rescan
        switch (same_namespace(*id, fd)) {
        case Same::yes: confirmed(*id); return *id;
        case Same::moved:  // cannot be (the inode was read from this fd), but then: a new one
        case Same::other: evict(*id); break;  // gone: its inode is this namespace's now
        case Same::unknown: return make_error(Errc::io, "cannot tell namespace inode " + std::to_string(ident->inode) + " apart");
        }
    }

    NamespaceMeta meta;
    meta.type = ident->type;
    meta.inode = ident->inode;
    meta.dev = ident->dev;
    if (features_.ns_get_id) {
        auto id = ns_get_id(fd);
        if (!id) return id.error();
        meta.id = *id;
        if (index_.find_namespace(meta.id)) return meta.id;  // ids are never reused: that is it
    }
    if (ns_type_is_hierarchical(meta.type)) {
        if (auto parent = ns_get_parent(fd)) {
            auto parent_id = opts_.ancestors ? resolve_fd_at(parent->get()) : Result<NsId>(make_error(Errc::not_found, ""));
            if (parent_id && index_.find_namespace(*parent_id)) {
                meta.parent = *parent_id;
                meta.level = index_.find_namespace(*parent_id)->meta.level + 1;
            } else {
                // Not read (ancestors off): named only if the index holds it and it is that one.
                if (auto pident = ns_identity(parent->get()))
                    if (auto known = lookup(pident->type, pident->inode); known && same_namespace(*known, parent->get()) == Same::yes)
                        meta.parent = *known;
                meta.level = 1 + count_levels(parent->get());
            }
        }
    }
    if (auto userns = ns_get_userns(fd)) {
        auto oid = opts_.ancestors ? resolve_fd_at(userns->get()) : Result<NsId>(make_error(Errc::not_found, ""));
        if (oid && index_.find_namespace(*oid)) {
            meta.owner = *oid;
        } else if (auto oident = ns_identity(userns->get())) {
            if (auto known = lookup(oident->type, oident->inode); known && same_namespace(*known, userns->get()) == Same::yes)
                meta.owner = *known;
        }
        if (meta.type != NsType::user) {
            auto uid = ns_get_owner_uid(userns->get());
            meta.owner_uid = uid ? *uid : kOverflowId;
        }
    } else if (meta.type != NsType::user) {
        meta.owner_uid = kOverflowId;
    }
    if (meta.type == NsType::user) {
        auto uid = ns_get_owner_uid(fd);
        meta.owner_uid = uid ? *uid : kOverflowId;
    }
    // Resolving the parent chain may have registered this very namespace (it cannot, for a
    // tree, but a concurrent change of the host could make it look so): check again.
    if (auto id = lookup(ident->type, ident->inode)) {
        if (building_ || same_namespace(*id, fd) == Same::yes) return *id;
        evict(*id);
    }
    if (!features_.ns_get_id) meta.id = assign_id(meta);
    if (auto s = index_.add_namespace(meta); !s) return s.error();
    confirmed(meta.id);
    return meta.id;
}

Result<Fd> Model::counted(Result<Fd> fd) {
    if (!fd && fd.error().code == Errc::access_denied) ++unsafe_paths_skipped_;
    return fd;
}

Result<Fd> Model::open_link(const std::string& rel) { return counted(open_ns_link(proc_.get(), rel)); }

Result<Fd> Model::open_mount(std::int32_t pid, const std::string& mount_point) {
    return counted(mount_opener_.open(proc_.get(), pid, mount_point));
}

Result<NsId> Model::resolve_opened(Result<Fd> fd, NsType expect, std::uint64_t expect_inode) {
    if (!fd) return fd.error();
    auto ident = ns_identity(fd->get());
    if (!ident) return ident.error();
    if (ident->type != expect || (expect_inode && ident->inode != expect_inode))
        return make_error(Errc::changed, "a namespace changed while being read");
    return resolve_fd_at(fd->get());
}

Result<NsId> Model::resolve_link(std::int32_t pid, std::string_view rel, NsType type, std::uint64_t inode,
                                 std::span<const NsId> held, LinkKind kind) {
    const std::string path = proc_rel(pid, rel);
    if (auto id = lookup(type, inode)) {
        if (building_ || std::find(held.begin(), held.end(), *id) != held.end()) return *id;
        switch (same_link(*id, path, kind)) {
        case Same::yes: confirmed(*id); return *id;
        case Same::other: evict(*id); break;  // gone: read the namespace there now as a new one
        case Same::moved:
        case Same::unknown: return make_error(Errc::changed, "a namespace changed while being read");
        }
    }
    return resolve_opened(open_link(path), type, inode);
}

Result<NsId> Model::resolve_ns_link(const std::string& rel, NsType type, std::uint64_t inode) {
    Busy busy(*this);
    if (auto id = lookup(type, inode)) {
        switch (same_link(*id, rel, LinkKind::ns)) {
        case Same::yes: confirmed(*id); return *id;
        case Same::other: evict(*id); break;
        case Same::moved:
        case Same::unknown: return make_error(Errc::changed, "a namespace changed while being read");
        }
    }
    return resolve_opened(open_link(rel), type, inode);
}

Status Model::confirm_process(std::int32_t tgid) {
    Busy busy(*this);
    const Process* p = index_.find_process(tgid);
    if (!p) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is not indexed");
    const std::string base = std::to_string(tgid) + "/" + links_base(p->ns_tid);
    for (auto t : {NsType::pid, NsType::user}) {
        p = index_.find_process(tgid);
        if (!p) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is gone");
        const NsId id = p->ns_of(t);
        switch (same_link(id, base + "ns/" + std::string(ns_type_name(t)), LinkKind::ns)) {
        case Same::yes: confirmed(id); break;
        case Same::other:  // gone: the process is read again now
            evict(id);
            settle();
            break;
        case Same::moved:  // it moved since it was read
            if (auto s = read_and_upsert(tgid); !s) return s;
            break;
        case Same::unknown:
            if (!is_live_task(proc_.get(), p->ns_tid ? p->ns_tid : tgid))
                return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is gone");
            break;
        }
    }
    return Ok{};
}

Status Model::register_self() {
    for (auto t : kAllNsTypes) {
        auto id = resolve_opened(open_link("self/ns/" + std::string(ns_type_name(t))), t, 0);
        if (!id) return make_error(id.error().code, "cannot read our own namespaces: " + id.error().describe());
        self_[ns_type_index(t)] = *id;
    }
    index_.set_self(self_);
    return Ok{};
}

Result<ProcessData> Model::to_process_data(std::int32_t pid, RawProcess& raw) {
    ProcessData d;
    d.tgid = raw.status.tgid;
    d.ppid = raw.status.ppid;
    d.uid = raw.status.uid;
    d.gid = raw.status.gid;
    d.cap_prm = raw.status.cap_prm;
    d.cap_eff = raw.status.cap_eff;
    d.start_time = raw.stat.start_time;
    d.dumpable = raw.dumpable;
    d.ns_tid = raw.ns_tid;
    const std::string base = links_base(raw.ns_tid);
    // What this process (re-read) or its parent (a fork inherits its namespaces and fds) held
    // already: found again by inode, those are taken as the same namespaces without asking the
    // kernel (pidnsd(8), IDENTITY); the verify pass confirms them in time.
    std::vector<NsId> held;
    if (!building_) {
        if (const Process* old = index_.find_process(raw.status.tgid); old && old->start_time == raw.stat.start_time)
            add_held(*old, held);
        if (const Process* parent = index_.find_process(raw.status.ppid);
            parent && parent->tgid != raw.status.tgid && parent->start_time <= raw.stat.start_time)
            add_held(*parent, held);
    }
    for (auto t : kAllNsTypes) {
        const auto i = ns_type_index(t);
        if (raw.ns[i] == 0) return make_error(Errc::io, "namespace links of " + std::to_string(pid) + " are unreadable");
        auto id = resolve_link(pid, base + ns_type_link(t), t, raw.ns[i], held);
        if (!id) return id.error();
        d.ns[i] = *id;
    }
    auto for_children = [&](std::uint64_t inode, const char* link, NsType t) -> NsId {
        if (inode == 0 || inode == raw.ns[ns_type_index(t)]) return 0;
        auto id = resolve_link(pid, base + link, t, inode, held);
        return id ? *id : 0;
    };
    d.pid_for_children = for_children(raw.pid_for_children, "ns/pid_for_children", NsType::pid);
    d.time_for_children = for_children(raw.time_for_children, "ns/time_for_children", NsType::time);
    d.nstgid = std::move(raw.status.nstgid);
    d.nspid = std::move(raw.status.nspid);
    d.nspgid = std::move(raw.status.nspgid);
    d.nssid = std::move(raw.status.nssid);
    for (auto& rt : raw.threads) {
        ThreadRecord th;
        th.tid = rt.tid;
        th.nspid = std::move(rt.nspid);
        for (auto t : kAllNsTypes) {
            const auto i = ns_type_index(t);
            if (rt.ns[i] == 0 || rt.ns[i] == raw.ns[i]) continue;
            auto r = resolve_link(pid, "task/" + std::to_string(rt.tid) + "/" + ns_type_link(t), t, rt.ns[i], held);
            if (r) th.ns_overrides.emplace_back(t, *r);
        }
        d.threads.push_back(std::move(th));
    }
    for (const auto& f : raw.ns_fds) {
        auto r = resolve_link(pid, base + "fd/" + std::to_string(f.fd), f.ns.type, f.ns.inode, held, LinkKind::fd);
        if (r) d.ns_fds.emplace_back(f.fd, *r);
    }
    return d;
}

Status Model::read_and_upsert(std::int32_t pid, std::optional<Result<RawProcess>> first) {
    const ReadOptions ro = read_options();
    // A process may change namespaces (setns, unshare) between our reads: try twice.
    Error last = make_error(Errc::not_found, "no such process");
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto raw = attempt == 0 && first ? std::move(*first) : read_process(proc_.get(), pid, ro);
        if (!raw) {
            if (raw.error().code == Errc::not_found) index_.remove_process(pid);
            return raw.error();
        }
        if (raw->fds_truncated) ++fd_scans_truncated_;
        auto data = to_process_data(pid, *raw);
        if (!data) {
            last = data.error();
            continue;
        }
        auto s = index_.upsert_process(std::move(*data));
        if (s) return s;
        last = s.error();
    }
    index_.collect();  // namespaces resolved for a process that could not be stored
    return last;
}

Status Model::add_process(std::int32_t tgid) {
    if (tgid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    if (!opts_.processes) return Ok{};
    Busy busy(*this);
    return read_and_upsert(tgid);
}

Status Model::refresh_credentials(std::int32_t tgid) {
    const Process* p = index_.find_process(tgid);
    if (!p) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is not indexed");
    // Its user namespace as the kernel has it now: by id where nsfs handles give it in the same
    // call as the inode, else by inode (and type: the ns/user link).
    const std::int64_t read_ns = steady_ns();  // before the read: what it finds held at least then
    auto c = read_credentials(proc_.get(), tgid, features_.ns_handles);
    if (!c) return c.error();
    if (c->start_time != p->start_time)
        return make_error(Errc::not_found, "pid " + std::to_string(tgid) + " now names another process");
    const Namespace* userns = index_.find_namespace(p->ns_of(NsType::user));
    if (c->user_inode != 0 && userns &&
        (c->user_inode != userns->meta.inode || (c->user_id != 0 && c->user_id != userns->meta.id))) {
        // It moved to another user namespace since it was read (unshare or setns without exec):
        // these credentials belong with namespaces the index does not show it in. Not decided on
        // them; read whole at the next turn (not here: the caller may be walking the index).
        if (stale_.size() < kMaxStale && std::find(stale_.begin(), stale_.end(), tgid) == stale_.end())
            stale_.push_back(tgid);
        return make_error(Errc::moved, "process " + std::to_string(tgid) + " changed its user namespace");
    }
    index_.update_credentials(tgid, c->uid, c->gid, c->cap_prm, c->cap_eff, c->dumpable, read_ns);
    return Ok{};
}

std::size_t Model::reread_stale() {
    Busy busy(*this);
    std::vector<std::int32_t> now;
    now.swap(stale_);
    for (auto tgid : now) (void)read_and_upsert(tgid);  // removes it if it ended meanwhile
    return now.size();
}

bool Model::remove_task(std::int32_t tid, std::int32_t tgid) {
    Busy busy(*this);
    const Process* p = index_.find_process(tgid);
    if (tid != tgid) {
        index_.remove_thread(tgid, tid);
        // A process whose leader exited ends with its last thread, and is read through one of
        // them: re-read it when that one exits (with tasks off, the index knows no other).
        if (!p || p->ns_tid == 0 || (p->ns_tid != tid && (p->threads || !opts_.tasks))) return false;
    } else if (!p) {
        return false;
    }
    // The leader's exit ends the process unless other threads live on (pthread_exit() in main):
    // then it is one of its threads' exits. The kernel sends no event when the zombie leader is
    // reaped: the last thread's exit is the process's.
    if (!has_live_thread(proc_.get(), tgid, tid)) {
        index_.remove_process(tgid);
        return false;
    }
    (void)read_and_upsert(tgid);  // removes it if it ended meanwhile
    if (tid != tgid) index_.remove_thread(tgid, tid);  // a read racing its exit may still have seen it
    return true;
}

Status Model::scan_mounts() {
    mounts_.clear();
    nsfs_mntns_.clear();
    std::unordered_map<NsId, std::uint32_t> refs;
    // One reader per mount namespace: the lowest pid that is a member of it.
    std::vector<std::pair<NsId, std::int32_t>> readers;
    for (const auto& [id, ns] : index_.namespaces()) {
        if (ns.meta.type != NsType::mnt || ns.members.empty()) continue;
        const std::int32_t tgid = *std::min_element(ns.members.begin(), ns.members.end());
        // A zombie leader has no mountinfo (nor root): read through the live thread it was read through.
        const Process* p = index_.find_process(tgid);
        readers.emplace_back(id, p && p->ns_tid ? p->ns_tid : tgid);
    }
    // A mount read at the last scan, same mount namespace, id, inode and mount point, holds what
    // it held then. Any other mount of an indexed inode is confirmed through its path (once per
    // namespace and scan): its namespace may be a new one that the kernel gave a dead one's inode.
    std::unordered_map<std::string, NsId> seen;
    std::unordered_set<NsId> confirmed_now;
    for (const auto& [mntns, pid] : readers) {
        auto dir = ::openat(proc_.get(), std::to_string(pid).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) continue;
        Fd owner(dir);
        auto text = read_file_at(dir, "mountinfo");
        if (!text) continue;
        auto entries = parse_mountinfo(*text);
        if (!entries) continue;
        for (const auto& m : nsfs_mounts(*entries)) {
            nsfs_mntns_[mntns] = pid;
            const std::string key = std::to_string(mntns) + ':' + std::to_string(m.mount_id) + ':' +
                                    std::to_string(m.ns.inode) + ':' + m.mount_point;
            std::optional<NsId> id = lookup(m.ns.type, m.ns.inode);
            std::optional<Fd> fd;
            if (id && !building_ && !confirmed_now.contains(*id)) {
                if (auto was = mount_ids_.find(key); was == mount_ids_.end() || was->second != *id) {
                    auto opened = open_mount(pid, m.mount_point);
                    if (!opened) continue;  // gone, or refused (counted): not reached through this mount
                    const Same same = same_namespace(*id, opened->get());
                    if (same == Same::moved || same == Same::unknown) continue;  // changed since mountinfo
                    if (same == Same::other) {
                        evict(*id);
                        id.reset();
                        fd = std::move(*opened);
                    } else {
                        confirmed(*id);
                        confirmed_now.insert(*id);
                    }
                }
            }
            if (!id) {
                auto opened = resolve_opened(fd ? Result<Fd>(std::move(*fd)) : open_mount(pid, m.mount_point), m.ns.type,
                                             m.ns.inode);
                if (!opened) continue;  // gone, or refused (counted): not reached through this mount
                id = *opened;
                confirmed_now.insert(*id);
            }
            ++refs[*id];
            mounts_[*id].emplace_back(pid, m.mount_point);
            seen.emplace(key, *id);
        }
    }
    mount_ids_ = std::move(seen);
    // What a drop above took with it (a mount namespace, or a namespace counted before).
    std::erase_if(refs, [&](const auto& kv) { return !index_.find_namespace(kv.first); });
    std::erase_if(mount_ids_, [&](const auto& kv) { return !index_.find_namespace(kv.second); });
    std::erase_if(mounts_, [&](const auto& kv) { return !index_.find_namespace(kv.first); });
    std::erase_if(nsfs_mntns_, [&](const auto& kv) { return !index_.find_namespace(kv.first); });
    return index_.set_mount_refs(refs);
}

std::vector<std::pair<std::int32_t, std::string>> Model::mounts_of(NsId id) const {
    if (auto it = mounts_.find(id); it != mounts_.end()) return it->second;
    return {};
}

Status Model::refresh_mounts() {
    if (!opts_.bind_mounts) return Ok{};
    Busy busy(*this);
    return scan_mounts();
}

Result<ProcSnapshot> Model::read_snapshot() const {
    ProcSnapshot snap;
    snap.started = std::chrono::steady_clock::now();
    if (!opts_.processes) return snap;
    ReadOptions ro = read_options(false);  // every fd: this runs off the event loop
    // The BPF pass first, on its own thread while this one lists /proc (each one thread's work):
    // which processes hold namespace fds, and which fds to read. A namespace fd opened after the
    // pass went by is seen by an event's read or the next rescan, as one opened after a
    // /proc/PID/fd listing is.
    std::optional<Result<NsfsFdsByPid>> listed;
    if (fd_iter_ && ro.fds) {
        std::jthread pass([&] {
            try {
                listed.emplace(fd_iter_->list());
            } catch (const std::exception& e) {  // bad_alloc: nothing may leave a thread
                listed.emplace(make_error(Errc::io, std::string("the BPF fd pass failed: ") + e.what()));
            }
        });
        auto pids = list_proc_pids(proc_.get());
        pass.join();
        if (!pids) return pids.error();
        snap.pids = std::move(*pids);
        if (*listed)
            ro.listed_fds = &**listed;
        else
            snap.fd_pass_failed = true;  // every /proc/PID/fd is listed instead: no fd is lost
    } else {
        auto pids = list_proc_pids(proc_.get());
        if (!pids) return pids.error();
        snap.pids = std::move(*pids);
    }
    // Reading /proc is most of a rescan's cost and needs no shared state: read in parallel.
    snap.raws.resize(snap.pids.size());
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        constexpr std::size_t kChunk = 32;
        for (std::size_t begin; (begin = next.fetch_add(kChunk)) < snap.raws.size();)
            for (std::size_t i = begin; i < std::min(begin + kChunk, snap.raws.size()); ++i)
                snap.raws[i].emplace(read_process(proc_.get(), snap.pids[i], ro));
    };
    const unsigned n_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n_threads && snap.raws.size() > 256; ++i) threads.emplace_back(worker);
    worker();
    for (auto& th : threads) th.join();
    return snap;
}

Result<RescanReport> Model::rescan() {
    auto snap = read_snapshot();
    if (!snap) return snap.error();
    return rescan_from(std::move(*snap));
}

Result<RescanReport> Model::rescan_from(ProcSnapshot&& snap) {
    Busy busy(*this);
    note_events();  // a new index: the next miss lists again
    if (snap.fd_pass_failed) ++fd_pass_failures_;
    const auto build_start = std::chrono::steady_clock::now();
    Index old = std::move(index_);
    index_ = Index{};
    previous_ = &old;
    stale_reads_.clear();  // of the index being replaced
    // Every namespace of the new index is opened and registered from this one read of /proc:
    // a link found again by inode in it needs no asking (pidnsd(8), IDENTITY).
    building_ = true;
    RescanReport report;
    auto restore = [&](Error e) -> Result<RescanReport> {
        index_ = std::move(old);
        previous_ = nullptr;
        building_ = false;
        stale_reads_.clear();
        return e;
    };
    if (auto s = register_self(); !s) return restore(s.error());
    // Resolve namespaces and fill the index on this thread.
    for (std::size_t i = 0; i < snap.pids.size() && i < snap.raws.size(); ++i) {
        if (!snap.raws[i]) continue;
        auto s = read_and_upsert(snap.pids[i], std::move(snap.raws[i]));
        if (!s && !is_gone(s.error().code)) ++report.unreadable;
    }
    if (opts_.bind_mounts)
        if (auto s = scan_mounts(); !s) return restore(s.error());
    building_ = false;
    index_.collect();
    previous_ = nullptr;
    (void)index_.take_changes();
    // What changed, compared with the index we replace.
    for (const auto& [id, ns] : index_.namespaces())
        if (!old.find_namespace(id)) report.changes.push_back(NsChange{id, ns.meta.type, true});
    for (const auto& [id, ns] : old.namespaces())
        if (!index_.find_namespace(id)) report.changes.push_back(NsChange{id, ns.meta.type, false});
    report.processes = index_.process_count();
    report.namespaces = index_.namespace_count();
    const auto end = std::chrono::steady_clock::now();
    report.duration = std::chrono::duration_cast<std::chrono::microseconds>(end - snap.started);
    report.build = std::chrono::duration_cast<std::chrono::microseconds>(end - build_start);
    return report;
}

Status Model::add_thread(std::int32_t tgid, std::int32_t tid) {
    if (tgid <= 0 || tid <= 0) return make_error(Errc::invalid_argument, "pid must be positive");
    if (!opts_.processes) return Ok{};
    Busy busy(*this);
    const Process* p = index_.find_process(tgid);
    if (!p || !opts_.tasks) return read_and_upsert(tgid);
    auto raw = read_thread(proc_.get(), tgid, tid);
    if (!raw) return raw.error();
    if (raw->nspid.size() != p->chains.depth()) return read_and_upsert(tgid);
    ThreadRecord th;
    th.tid = tid;
    th.nspid = std::move(raw->nspid);
    // A new thread has its creator's namespaces: its group's (overrides included) are known.
    std::vector<NsId> held;
    add_held(*p, held);
    for (auto t : kAllNsTypes) {
        const auto i = ns_type_index(t);
        p = index_.find_process(tgid);  // a resolution below may have dropped it (a stale namespace)
        if (!p) return read_and_upsert(tgid);
        const Namespace* leader = index_.find_namespace(p->ns[i]);
        if (raw->ns[i] == 0 || (leader && leader->meta.inode == raw->ns[i])) continue;
        auto r = resolve_link(tgid, "task/" + std::to_string(tid) + "/" + ns_type_link(t), t, raw->ns[i], held);
        if (r) th.ns_overrides.emplace_back(t, *r);
    }
    auto s = index_.upsert_thread(tgid, std::move(th));
    if (!s) index_.collect();  // namespaces resolved for a thread that could not be stored
    return s;
}

Result<bool> Model::verify_process(std::int32_t tgid) {
    Busy busy(*this);
    const Process* p = index_.find_process(tgid);
    if (!p) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is not indexed");
    std::vector<std::int32_t> tids;
    if (p->threads)
        for (const auto& th : *p->threads) tids.push_back(th.tid);
    auto links = read_ns_links(proc_.get(), tgid, tids);
    if (!links) {
        if (links.error().code == Errc::not_found) index_.remove_process(tgid);
        return links.error();
    }
    auto inode_of = [&](NsId id) -> std::uint64_t {
        const Namespace* ns = id ? index_.find_namespace(id) : nullptr;
        return ns ? ns->meta.inode : 0;
    };
    // The leader exited (or the live thread it was read through did) without its event: re-read.
    bool differs = links->ns_tid != p->ns_tid;
    for (auto t : kAllNsTypes) {
        const auto i = ns_type_index(t);
        if (links->ns[i] != 0 && links->ns[i] != inode_of(p->ns[i])) differs = true;
    }
    // *_for_children: unreadable (0) until the namespace's first process exists; the index keeps
    // 0 when it equals the process's own.
    auto for_children_differs = [&](std::uint64_t now, NsId indexed, NsType own) {
        if (now == 0) return false;
        const std::uint64_t expect = indexed ? inode_of(indexed) : inode_of(p->ns_of(own));
        return now != expect;
    };
    differs = differs || for_children_differs(links->pid_for_children, p->pid_for_children, NsType::pid) ||
              for_children_differs(links->time_for_children, p->time_for_children, NsType::time);
    // Its namespace fds: closed (or replaced) without any event.
    if (p->ns_fds && !differs) {
        const std::string fd_base = std::to_string(tgid) + "/" + links_base(p->ns_tid) + "fd/";
        for (const auto& [fd, id] : *p->ns_fds) {
            const Namespace* ns = index_.find_namespace(id);
            auto link = read_ns_link_at(proc_.get(), (fd_base + std::to_string(fd)).c_str());
            if (!ns || !link || link->type != ns->meta.type || link->inode != ns->meta.inode) {
                differs = true;
                break;
            }
        }
    }
    // links->threads follows the order of `tids` (threads that exited are left out).
    std::size_t k = 0;
    for (const auto& [tid, ns] : links->threads) {
        if (differs) break;
        while ((*p->threads)[k].tid != tid) ++k;
        const ThreadRecord* th = &(*p->threads)[k];
        for (auto t : kAllNsTypes) {
            const auto i = ns_type_index(t);
            NsId expect = p->ns[i];
            for (const auto& [ot, oid] : th->ns_overrides)
                if (ot == t) expect = oid;
            if (ns[i] != 0 && ns[i] != inode_of(expect)) differs = true;
        }
    }
    // Links as the index has them: confirm the identity of what it holds, at most every
    // confirm_interval per namespace (the inodes match; they may be new namespaces' now).
    if (!differs && confirm_held(*p)) return false;
    ++verify_mismatches_;
    auto s = read_and_upsert(tgid);
    std::erase(stale_reads_, tgid);  // read just now
    if (!s) return s.error();
    return true;
}

std::vector<std::pair<NsId, std::int32_t>> Model::nsfs_mount_namespaces() const {
    return {nsfs_mntns_.begin(), nsfs_mntns_.end()};
}

Result<Fd> Model::open_namespace(NsId id) {
    Busy busy(*this);
    bool gone = false;
    auto r = open_namespace_at(id, gone);
    if (gone) {
        // A holder reached another namespace with its inode: this one is no more.
        evict(id);
        return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is gone");
    }
    return r;
}

Result<Fd> Model::open_namespace_at(NsId id, bool& gone) {
    const Namespace* ns = index_.find_namespace(id);
    if (!ns) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is not known");
    const NsType type = ns->meta.type;
    const std::string name(ns_type_name(type));
    // Its inode and type, and then its identity (same_namespace): a holder that moved is passed
    // over; one that reaches another namespace with this inode shows this one is gone.
    auto usable = [&](Result<Fd> fd) -> std::optional<Fd> {
        if (!fd || gone) return std::nullopt;
        switch (same_namespace(id, fd->get())) {
        case Same::yes: confirmed(id); return std::move(*fd);
        case Same::other: gone = true; return std::nullopt;
        case Same::moved:
        case Same::unknown: return std::nullopt;
        }
        return std::nullopt;
    };
    if (id == self_[ns_type_index(type)])
        if (auto fd = usable(open_link(std::string("self/ns/") + name))) return std::move(*fd);
    auto base_of = [&](std::int32_t tgid) {
        const Process* p = index_.find_process(tgid);
        return links_base(p ? p->ns_tid : 0);
    };
    std::vector<std::int32_t> first;  // copied: opening may not change the index, but stay safe
    for (auto it = ns->members.begin(); it != ns->members.end() && first.size() < 4; ++it) first.push_back(*it);
    for (const auto tgid : first)
        if (auto fd = usable(open_link(proc_rel(tgid, base_of(tgid) + "ns/" + name)))) return std::move(*fd);
    if (gone) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is gone");
    if (auto it = mounts_.find(id); it != mounts_.end())
        for (const auto& [pid, mp] : it->second)
            if (auto fd = usable(open_mount(pid, mp))) return std::move(*fd);
    for (const auto& [tgid, p] : index_.processes()) {
        const std::string base = links_base(p.ns_tid);
        if (type == NsType::pid && p.pid_for_children == id)
            if (auto fd = usable(open_link(proc_rel(tgid, base + "ns/pid_for_children")))) return std::move(*fd);
        if (type == NsType::time && p.time_for_children == id)
            if (auto fd = usable(open_link(proc_rel(tgid, base + "ns/time_for_children")))) return std::move(*fd);
        if (p.ns_fds)
            for (const auto& [fdnum, nsid] : *p.ns_fds)
                if (nsid == id)
                    if (auto fd = usable(open_link(proc_rel(tgid, base + "fd/" + std::to_string(fdnum)))))
                        return std::move(*fd);
        if (p.threads)
            for (const auto& th : *p.threads)
                for (const auto& [t, nsid] : th.ns_overrides)
                    if (nsid == id)
                        if (auto fd = usable(open_link(proc_rel(tgid, "task/" + std::to_string(th.tid) + "/ns/" + name))))
                            return std::move(*fd);
    }
    if (gone) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is gone");
    // A hidden ancestor: reach it from a child or an owned namespace (ids copied: a child found
    // gone is dropped on the way).
    std::vector<std::pair<NsId, bool>> children;
    for (const auto& [cid, child] : index_.namespaces())
        if (child.meta.parent == id || child.meta.owner == id) children.emplace_back(cid, child.meta.parent == id);
    for (const auto& [cid, is_parent] : children) {
        bool child_gone = false;
        auto cfd = open_namespace_at(cid, child_gone);
        if (child_gone) evict(cid);
        if (!cfd || !index_.find_namespace(id)) continue;
        auto up = is_parent ? ns_get_parent(cfd->get()) : ns_get_userns(cfd->get());
        if (!up) continue;
        if (auto fd = usable(std::move(up))) return std::move(*fd);
        if (gone) break;
    }
    if (gone) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is gone");
    return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " has no reachable holder any more");
}

std::uint64_t Model::start_time_of(std::int32_t pid) const {
    auto text = read_file_at(proc_.get(), (std::to_string(pid) + "/stat").c_str());
    if (!text) return 0;
    auto stat = parse_proc_stat(*text);
    return stat ? stat->start_time : 0;
}

void Model::read_unindexed() {
    auto pids = list_proc_pids(proc_.get());
    if (!pids) return;
    // A process that cannot be indexed (its namespace links unreadable, a zombie) would be read
    // again by every listing: it is remembered with its start time and skipped while that holds.
    std::unordered_map<std::int32_t, std::uint64_t> unindexable;
    for (auto pid : *pids) {
        if (index_.find_process(pid)) continue;
        const std::uint64_t started = start_time_of(pid);
        if (started == 0) continue;  // gone
        if (auto it = unindexable_.find(pid); it == unindexable_.end() || it->second != started) (void)add_process(pid);
        if (!index_.find_process(pid)) unindexable.emplace(pid, started);
    }
    unindexable_ = std::move(unindexable);
}

bool Model::miss_is_final(std::int32_t nr, NsId from, TranslateScratch& s) {
    // The index is whole for a request once, after the request was read, no process event waits
    // unread and a listing was made since the last one applied (the negative cache below): a task
    // the caller could know of when it asked was forked before, and its fork event was queued
    // before the fork returned, so it is in the index, or among those the listing could not read
    // (zombies, mostly), about which the kernel is still asked. That holds for the rest of the
    // request. A listing costs about as much as a few ioctls per process: a request lists once
    // its misses cost that much already (at most twice what asking for each would have cost).
    if (!current_) return false;
    if (!s.whole) {
        if (s.listed) return false;  // decided once per request
        if (!listing_current_ &&
            ++s.misses < std::max<std::size_t>(kMissesBeforeListing, index_.process_count() / 4))
            return false;
        s.listed = true;
        if (!current_()) return false;
        s.whole = true;
        if (!listing_current_) {
            read_unindexed();
            ++listings_;
            listing_current_ = true;
            return false;  // the listing may have indexed this very task: the kernel is asked
        }
        ++listings_skipped_;
    }
    return miss_known_final(nr, from, s);
}

bool Model::miss_known_final(std::int32_t nr, NsId from, const TranslateScratch& s) const {
    if (!features_.pid_ioctls) return s.listed;  // the request's one listing was made
    // A pid of another pid namespace cannot be told apart from an unindexed process's.
    return s.whole &&
           (unindexable_.empty() || (from == self_[ns_type_index(NsType::pid)] && !unindexable_.contains(nr)));
}

Result<std::int32_t> Model::translate(std::int32_t nr, NsId from, NsId to, TranslateScratch* scratch) {
    auto r = index_.translate(nr, from, to);
    if (r || r.error().code != Errc::not_found) return r;
    Busy busy(*this);
    // A miss: the task may be newer than our last event. Ask the kernel.
    if (!features_.pid_ioctls) {
        // Without the pid ioctls: read the processes /proc lists that the index lacks, at most
        // once per request (a batch of absent pids costs one listing).
        if (scratch && scratch->listed) return r;
        if (scratch) scratch->listed = true;
        // The negative cache: a listing is still exact while no process event has been applied
        // since it and none waits unread (fork, exec and exit each send one, queued before the
        // forking call returns): nothing it would find is new.
        if (listing_current_ && current_ && current_()) {
            ++listings_skipped_;
            return r;
        }
        read_unindexed();
        ++listings_;
        listing_current_ = true;
        return index_.translate(nr, from, to);
    }
    TranslateScratch local;
    TranslateScratch& s = scratch ? *scratch : local;
    if (scratch && miss_is_final(nr, from, s)) return r;
    // Opened once per request (a namespace that cannot be opened is not tried again in it).
    auto cached = [this](NsId id, NsId& have, Fd& fd) -> int {
        if (have != id) {
            have = id;
            auto opened = open_namespace(id);
            fd = opened ? std::move(*opened) : Fd();
        }
        return fd.get();
    };
    const int from_fd = cached(from, s.from, s.from_fd);
    if (from_fd < 0) return r;
    ++kernel_lookups_;
    auto host = ns_pid_from_pidns(from_fd, nr);
    if (!host) return r;  // the kernel agrees: no such task
    // The task is newer than our last event: index its process (once per request).
    if (auto tgid = ns_tgid_from_pidns(from_fd, nr); tgid && s.read.insert(*tgid).second) (void)add_process(*tgid);
    if (to == self_[ns_type_index(NsType::pid)]) return *host;
    const int to_fd = cached(to, s.to, s.to_fd);
    if (to_fd < 0) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(to) + " vanished");
    auto in = ns_pid_in_pidns(to_fd, *host);
    if (in) return *in;
    // No pid there, or the task exited meanwhile.
    if (!ns_pid_from_pidns(from_fd, nr)) return r;
    return 0;
}

}  // namespace pidns
