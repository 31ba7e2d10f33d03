// The model's namespace identity: an index entry is the namespace the kernel shows only once checked, never by inode alone.
#include <algorithm>
#include <chrono>

#include "model.h"
#include "id_map.h"

namespace pidns {
namespace {
constexpr int kMaxChain = 64;  // user/pid namespaces nest 32 deep at most
constexpr int kMaxSettleRounds = 64;
}  // namespace

std::uint32_t Model::stamp() const {
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - born_).count();
    return static_cast<std::uint32_t>(s) + 1;
}

void Model::confirmed(NsId id) { index_.set_confirmed(id, stamp()); }

Model::Same Model::same_namespace(NsId id, int fd, int depth) {
    const Namespace* e = index_.find_namespace(id);
    if (e == nullptr) return Same::other;
    auto ident = ns_identity(fd);
    if (!ident) return Same::unknown;
    const NamespaceMeta m = e->meta;  // copied: nothing below changes the index, but stay safe
    if (ident->type != m.type || ident->inode != m.inode || ident->dev != m.dev) return Same::moved;
    if (features_.ns_get_id) {
        auto kid = ns_get_id(fd);
        if (!kid) return Same::unknown;
        return *kid == id ? Same::yes : Same::other;
    }
    // The observer is in its own namespaces: alive, so their inodes are theirs.
    if (id == self_[ns_type_index(m.type)]) return Same::yes;
    if (depth >= kMaxChain) return Same::yes;
    if (m.type == NsType::user) {
        auto uid = ns_get_owner_uid(fd);
        if ((uid ? *uid : kOverflowId) != m.owner_uid) return Same::other;
    }
    // Its parent (pid; a user namespace's is its owner, below) and its owner, the same way: a
    // namespace's parent and owner never change, so another one there is another namespace.
    // 0 in the entry: none was visible when it was registered (with ancestors off: not read).
    auto related = [&](NsId expect, Result<Fd> got) {
        if (expect == 0) return opts_.ancestors && got ? Same::other : Same::yes;
        if (!got) return got.error().code == Errc::not_found ? Same::other : Same::unknown;
        const Same r = same_namespace(expect, got->get(), depth + 1);
        return r == Same::moved ? Same::other : r;
    };
    if (m.type == NsType::pid)
        if (auto r = related(m.parent, ns_get_parent(fd)); r != Same::yes) return r;
    return related(m.owner, ns_get_userns(fd));
}

Model::Same Model::same_link(NsId id, const std::string& rel, LinkKind kind) {
    if (kind == LinkKind::ns && features_.ns_handles) {
        auto h = ns_handle_at(proc_.get(), rel.c_str());
        if (h) {
            const Namespace* e = index_.find_namespace(id);
            if (!e) return Same::other;
            if (h->type != e->meta.type || h->inode != e->meta.inode) return Same::moved;
            return h->id == id ? Same::yes : Same::other;
        }
        if (h.error().code != Errc::unsupported) return Same::unknown;
    }
    auto fd = open_link(rel);
    if (!fd) return Same::unknown;
    return same_namespace(id, fd->get());
}

std::optional<NsId> Model::lookup(NsType type, std::uint64_t inode) {
    auto id = index_.find_by_inode(features_.nsfs_dev, inode);
    if (!id) return std::nullopt;
    if (index_.find_namespace(*id)->meta.type == type) return id;
    // The kernel shows a namespace of another type with this inode: the one indexed is gone.
    evict(*id);
    return std::nullopt;
}

void Model::evict(NsId id) {
    if (!index_.evict(id, stale_reads_)) return;
    ++stale_namespaces_;
}

void Model::add_held(const Process& p, std::vector<NsId>& out) {
    for (std::size_t i = 0; i < kNsTypeCount; ++i) out.push_back(p.ns[i]);
    if (p.pid_for_children) out.push_back(p.pid_for_children);
    if (p.time_for_children) out.push_back(p.time_for_children);
    if (p.threads)
        for (const auto& th : *p.threads)
            for (const auto& [t, id] : th.ns_overrides) out.push_back(id);
    if (p.ns_fds)
        for (const auto& [fd, id] : *p.ns_fds) out.push_back(id);
}

bool Model::confirm_held(const Process& p) {
    const std::int32_t tgid = p.tgid;  // `p` may be dropped below
    // What to confirm, and through which link, copied first: a drop changes the index.
    std::vector<std::pair<NsId, std::pair<std::string, LinkKind>>> todo;
    const std::uint32_t now = stamp();
    auto due = [&](NsId id) {
        const Namespace* ns = id ? index_.find_namespace(id) : nullptr;
        if (!ns || index_.self_ns(ns->meta.type) == id) return false;
        if (ns->confirmed != 0 && std::int64_t{now - ns->confirmed} < opts_.confirm_interval.count()) return false;
        return std::none_of(todo.begin(), todo.end(), [&](const auto& t) { return t.first == id; });
    };
    const std::string base =
        std::to_string(p.tgid) + "/" + (p.ns_tid ? "task/" + std::to_string(p.ns_tid) + "/" : std::string());
    for (auto t : kAllNsTypes)
        if (const NsId id = p.ns_of(t); due(id))
            todo.push_back({id, {base + "ns/" + std::string(ns_type_name(t)), LinkKind::ns}});
    if (due(p.pid_for_children)) todo.push_back({p.pid_for_children, {base + "ns/pid_for_children", LinkKind::ns}});
    if (due(p.time_for_children)) todo.push_back({p.time_for_children, {base + "ns/time_for_children", LinkKind::ns}});
    if (p.threads)
        for (const auto& th : *p.threads)
            for (const auto& [t, id] : th.ns_overrides)
                if (due(id))
                    todo.push_back({id, {std::to_string(p.tgid) + "/task/" + std::to_string(th.tid) + "/ns/" +
                                             std::string(ns_type_name(t)),
                                         LinkKind::ns}});
    if (p.ns_fds)
        for (const auto& [fd, id] : *p.ns_fds)
            if (due(id)) todo.push_back({id, {base + "fd/" + std::to_string(fd), LinkKind::fd}});
    bool all = true;
    for (const auto& [id, how] : todo) {
        if (!index_.find_namespace(id)) continue;  // dropped with one before it
        switch (same_link(id, how.first, how.second)) {
        case Same::yes: confirmed(id); break;
        case Same::other: evict(id); all = false; break;
        case Same::moved:  // the process moved since its links were compared: read it again
            stale_reads_.push_back(tgid);
            all = false;
            break;
        case Same::unknown: break;  // gone since: its exit event tells
        }
    }
    return all;
}

void Model::settle() {
    Busy busy(*this);  // re-reads below settle nothing themselves
    for (int round = 0; round < kMaxSettleRounds && !stale_reads_.empty(); ++round) {
        std::vector<std::int32_t> now;
        now.swap(stale_reads_);
        std::sort(now.begin(), now.end());
        now.erase(std::unique(now.begin(), now.end()), now.end());
        for (const auto tgid : now) (void)read_and_upsert(tgid);  // a vanished one is simply not indexed
    }
    // Each round drops at least one namespace to come back: more than kMaxSettleRounds means a
    // host changing faster than it is read; the verify pass and the events pick up the rest.
    stale_reads_.clear();
    for (auto it = mounts_.begin(); it != mounts_.end();)
        it = index_.find_namespace(it->first) ? std::next(it) : mounts_.erase(it);
    std::erase_if(nsfs_mntns_, [&](const auto& kv) { return !index_.find_namespace(kv.first); });
}

}  // namespace pidns
