// The model: discovers namespaces and processes from /proc and nsfs into an Index and keeps it current.
#include "model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>

#include "mountinfo.h"

namespace pidns {
namespace {
constexpr std::array<const char*, kNsTypeCount> kNsNames = {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"};
constexpr std::array<const char*, kNsTypeCount> kNsLinks = {"ns/pid", "ns/user",   "ns/mnt", "ns/net",
                                                            "ns/uts", "ns/ipc", "ns/cgroup", "ns/time"};
constexpr std::uint32_t kOverflowUid = 65534;

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
    if (!opts_.kernel_ids) features_.ns_get_id = false;
}

Result<std::unique_ptr<Model>> Model::create(const DiscoveryOptions& opts) {
    int fd = ::open(opts.proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "cannot open " + opts.proc_root + "; is procfs mounted?", errno);
    std::unique_ptr<Model> m(new Model(opts, Fd(fd)));
    if (auto s = m->register_self(); !s) return s.error();
    return m;
}

NsId Model::assign_id(std::uint64_t dev, std::uint64_t inode) {
    // Without NS_GET_ID, a namespace keeps its assigned id while it stays in the index.
    if (auto id = index_.find_by_inode(dev, inode)) return *id;
    if (previous_)
        if (auto id = previous_->find_by_inode(dev, inode)) return *id;
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
    auto ident = ns_identity(fd);
    if (!ident) return ident.error();
    if (auto id = index_.find_by_inode(ident->dev, ident->inode)) return *id;

    NamespaceMeta meta;
    meta.type = ident->type;
    meta.inode = ident->inode;
    meta.dev = ident->dev;
    if (features_.ns_get_id) {
        auto id = ns_get_id(fd);
        if (!id) return id.error();
        meta.id = *id;
    } else {
        meta.id = assign_id(ident->dev, ident->inode);
    }
    if (ns_type_is_hierarchical(meta.type)) {
        if (auto parent = ns_get_parent(fd)) {
            auto parent_id = opts_.ancestors ? resolve_fd(parent->get()) : Result<NsId>(make_error(Errc::not_found, ""));
            if (parent_id) {
                meta.parent = *parent_id;
                meta.level = index_.find_namespace(*parent_id)->meta.level + 1;
            } else {
                auto pident = ns_identity(parent->get());
                if (pident)
                    if (auto known = index_.find_by_inode(pident->dev, pident->inode)) meta.parent = *known;
                meta.level = 1 + count_levels(parent->get());
            }
        }
    }
    if (auto userns = ns_get_userns(fd)) {
        auto oid = opts_.ancestors ? resolve_fd(userns->get()) : Result<NsId>(make_error(Errc::not_found, ""));
        if (oid) {
            meta.owner = *oid;
        } else if (auto oident = ns_identity(userns->get())) {
            if (auto known = index_.find_by_inode(oident->dev, oident->inode)) meta.owner = *known;
        }
        if (meta.type != NsType::user) {
            auto uid = ns_get_owner_uid(userns->get());
            meta.owner_uid = uid ? *uid : kOverflowUid;
        }
    } else if (meta.type != NsType::user) {
        meta.owner_uid = kOverflowUid;
    }
    if (meta.type == NsType::user) {
        auto uid = ns_get_owner_uid(fd);
        meta.owner_uid = uid ? *uid : kOverflowUid;
    }
    // Resolving the parent chain may have registered this very namespace (it cannot, for a
    // tree, but a concurrent change of the host could make it look so): check again.
    if (auto id = index_.find_by_inode(ident->dev, ident->inode)) return *id;
    if (auto s = index_.add_namespace(meta); !s) return s.error();
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
        return make_error(Errc::not_found, "a namespace changed while being read");
    return resolve_fd(fd->get());
}

Result<NsId> Model::resolve_link(std::int32_t pid, std::string_view rel, NsType type, std::uint64_t inode) {
    if (auto id = index_.find_by_inode(features_.nsfs_dev, inode)) return *id;
    return resolve_opened(open_link(proc_rel(pid, rel)), type, inode);
}

Status Model::register_self() {
    for (auto t : kAllNsTypes) {
        auto id = resolve_opened(open_link(std::string("self/ns/") + kNsNames[ns_type_index(t)]), t, 0);
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
    for (auto t : kAllNsTypes) {
        const auto i = ns_type_index(t);
        if (raw.ns[i] == 0) return make_error(Errc::io, "namespace links of " + std::to_string(pid) + " are unreadable");
        auto id = resolve_link(pid, base + kNsLinks[i], t, raw.ns[i]);
        if (!id) return id.error();
        d.ns[i] = *id;
    }
    auto for_children = [&](std::uint64_t inode, const char* link, NsType t) -> NsId {
        if (inode == 0 || inode == raw.ns[ns_type_index(t)]) return 0;
        auto id = resolve_link(pid, base + link, t, inode);
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
            auto r = resolve_link(pid, "task/" + std::to_string(rt.tid) + "/" + kNsLinks[i], t, rt.ns[i]);
            if (r) th.ns_overrides.emplace_back(t, *r);
        }
        d.threads.push_back(std::move(th));
    }
    for (const auto& f : raw.ns_fds) {
        auto r = resolve_link(pid, base + "fd/" + std::to_string(f.fd), f.ns.type, f.ns.inode);
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
    return read_and_upsert(tgid);
}

Status Model::refresh_credentials(std::int32_t tgid) {
    const Process* p = index_.find_process(tgid);
    if (!p) return make_error(Errc::not_found, "process " + std::to_string(tgid) + " is not indexed");
    auto c = read_credentials(proc_.get(), tgid);
    if (!c) return c.error();
    if (c->start_time != p->start_time)
        return make_error(Errc::not_found, "pid " + std::to_string(tgid) + " now names another process");
    const Namespace* userns = index_.find_namespace(p->ns_of(NsType::user));
    if (c->user_inode != 0 && userns && c->user_inode != userns->meta.inode) {
        // It moved to another user namespace since it was read (unshare or setns without exec):
        // these credentials belong with namespaces the index does not show it in. Not decided on
        // them; read whole at the next turn (not here: the caller may be walking the index).
        if (stale_.size() < kMaxStale && std::find(stale_.begin(), stale_.end(), tgid) == stale_.end())
            stale_.push_back(tgid);
        return make_error(Errc::io, "process " + std::to_string(tgid) + " changed its user namespace");
    }
    index_.update_credentials(tgid, c->uid, c->gid, c->cap_prm, c->cap_eff, c->dumpable);
    return Ok{};
}

std::size_t Model::reread_stale() {
    std::vector<std::int32_t> now;
    now.swap(stale_);
    for (auto tgid : now) (void)read_and_upsert(tgid);  // removes it if it ended meanwhile
    return now.size();
}

bool Model::remove_task(std::int32_t tid, std::int32_t tgid) {
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
            // mountinfo names the inode: a namespace known already is not opened again.
            auto id = index_.find_by_inode(features_.nsfs_dev, m.ns.inode);
            if (!id) {
                auto opened = resolve_opened(open_mount(pid, m.mount_point), m.ns.type, m.ns.inode);
                if (!opened) continue;  // gone, or refused (counted): not reached through this mount
                id = *opened;
            }
            ++refs[*id];
            mounts_[*id].emplace_back(pid, m.mount_point);
        }
    }
    return index_.set_mount_refs(refs);
}

std::vector<std::pair<std::int32_t, std::string>> Model::mounts_of(NsId id) const {
    if (auto it = mounts_.find(id); it != mounts_.end()) return it->second;
    return {};
}

Status Model::refresh_mounts() {
    if (!opts_.bind_mounts) return Ok{};
    return scan_mounts();
}

Result<ProcSnapshot> Model::read_snapshot() const {
    ProcSnapshot snap;
    snap.started = std::chrono::steady_clock::now();
    if (!opts_.processes) return snap;
    auto pids = list_proc_pids(proc_.get());
    if (!pids) return pids.error();
    snap.pids = std::move(*pids);
    // Reading /proc is most of a rescan's cost and needs no shared state: read in parallel.
    snap.raws.resize(snap.pids.size());
    const ReadOptions ro = read_options(false);  // every fd: this runs off the event loop
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
    note_events();  // a new index: the next miss lists again
    const auto build_start = std::chrono::steady_clock::now();
    Index old = std::move(index_);
    index_ = Index{};
    previous_ = &old;
    RescanReport report;
    auto restore = [&](Error e) -> Result<RescanReport> {
        index_ = std::move(old);
        previous_ = nullptr;
        return e;
    };
    if (auto s = register_self(); !s) return restore(s.error());
    // Resolve namespaces and fill the index on this thread.
    for (std::size_t i = 0; i < snap.pids.size() && i < snap.raws.size(); ++i) {
        if (!snap.raws[i]) continue;
        auto s = read_and_upsert(snap.pids[i], std::move(snap.raws[i]));
        if (!s && s.error().code != Errc::not_found) ++report.unreadable;
    }
    if (opts_.bind_mounts)
        if (auto s = scan_mounts(); !s) return restore(s.error());
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
    const Process* p = index_.find_process(tgid);
    if (!p || !opts_.tasks) return add_process(tgid);
    auto raw = read_thread(proc_.get(), tgid, tid);
    if (!raw) return raw.error();
    if (raw->nspid.size() != p->chains.depth()) return read_and_upsert(tgid);
    ThreadRecord th;
    th.tid = tid;
    th.nspid = std::move(raw->nspid);
    for (auto t : kAllNsTypes) {
        const auto i = ns_type_index(t);
        const Namespace* leader = index_.find_namespace(p->ns[i]);
        if (raw->ns[i] == 0 || (leader && leader->meta.inode == raw->ns[i])) continue;
        auto r = resolve_link(tgid, "task/" + std::to_string(tid) + "/" + kNsLinks[i], t, raw->ns[i]);
        if (r) th.ns_overrides.emplace_back(t, *r);
    }
    auto s = index_.upsert_thread(tgid, std::move(th));
    if (!s) index_.collect();  // namespaces resolved for a thread that could not be stored
    return s;
}

Result<bool> Model::verify_process(std::int32_t tgid) {
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
    if (!differs) return false;
    ++verify_mismatches_;
    if (auto s = read_and_upsert(tgid); !s) return s.error();
    return true;
}

std::vector<std::pair<NsId, std::int32_t>> Model::nsfs_mount_namespaces() const {
    return {nsfs_mntns_.begin(), nsfs_mntns_.end()};
}

Result<Fd> Model::open_namespace(NsId id) {
    const Namespace* ns = index_.find_namespace(id);
    if (!ns) return make_error(Errc::no_such_namespace, "namespace " + std::to_string(id) + " is not known");
    const NsType type = ns->meta.type;
    const auto inode = ns->meta.inode;
    const char* name = kNsNames[ns_type_index(type)];
    auto usable = [&](Result<Fd> fd) -> std::optional<Fd> {
        if (!fd) return std::nullopt;
        auto ident = ns_identity(fd->get());
        if (!ident || ident->inode != inode || ident->type != type) return std::nullopt;
        return std::move(*fd);
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
    // A hidden ancestor: reach it from a child or an owned namespace.
    for (const auto& [cid, child] : index_.namespaces()) {
        const bool is_parent = child.meta.parent == id;
        const bool is_owner = child.meta.owner == id;
        if (!is_parent && !is_owner) continue;
        auto cfd = open_namespace(cid);
        if (!cfd) continue;
        auto up = is_parent ? ns_get_parent(cfd->get()) : ns_get_userns(cfd->get());
        if (!up) continue;
        auto ident = ns_identity(up->get());
        if (ident && ident->inode == inode) return std::move(*up);
    }
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

Result<std::int32_t> Model::translate(std::int32_t nr, NsId from, NsId to, TranslateScratch* scratch) {
    auto r = index_.translate(nr, from, to);
    if (r || r.error().code != Errc::not_found) return r;
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
