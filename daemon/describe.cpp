// The answers that describe a namespace or a process: their a{sv} keys, and the label policy
// (whose container a namespace is, which containers joined it, which machine it is).
#include "describe.h"

#include <string_view>

#include "engine_state.h"
#include "escape.h"
#include "machines.h"
#include "model.h"

namespace pidnsd {
namespace {

namespace key = pidns::bus::key;

// Text some user may have written (a comm, a cgroup or unit name, a mount path, a passwd entry,
// machined's names): the one place it is put on the bus, escaped as the XML says (lib/escape.h)
// within the reply's budget. Left out when empty.
void put_text(Description& d, const char* key, std::string_view raw, pidns::TextBudget& budget) {
    if (!raw.empty()) d[key] = sdbus::Variant(budget.escape(raw));
}

void put_labels(Description& d, pidns::CallerView& v, const pidns::Labels& l, pidns::TextBudget& budget) {
    put_text(d, key::kCommand, l.command, budget);
    put_text(d, key::kCGroup, l.cgroup, budget);
    put_text(d, key::kUnit, l.unit, budget);
    put_text(d, key::kSlice, l.slice, budget);
    // Who could have named them, in the caller's user namespace: absent when only root could.
    if (l.unit_owner) d[key::kUnitOwnerUid] = sdbus::Variant(v.caller_uid(*l.unit_owner));
    if (l.container) {
        d[key::kContainerEngine] = sdbus::Variant(std::string(pidns::container_engine_name(l.container->engine)));
        put_text(d, key::kContainerId, l.container->id, budget);
        put_text(d, key::kContainerName, l.container->name, budget);
        put_text(d, key::kPodUid, l.container->pod_uid, budget);
        put_text(d, key::kPodId, l.container->pod_id, budget);
        put_text(d, key::kPodName, l.container->pod_name, budget);
        put_text(d, key::kPodNamespace, l.container->pod_namespace, budget);
        if (l.container_owner) d[key::kContainerOwnerUid] = sdbus::Variant(v.caller_uid(*l.container_owner));
    }
}

// The container of a process's cgroup as the engines' own state names it (their names, pods,
// and the containers no cgroup pattern names: lib/engine_state.h); the patterns alone without it.
// The container of cgroup `path` as the engines' own state names it (their names and pods, and
// the containers no cgroup pattern finds: lib/engine_state.h), or `pattern` (container_of's)
// as it is. Root's state names only a container whose cgroup only root could have named: a user
// who may make cgroups (a delegated subtree) could name one after a real container's id and
// borrow that container's name. `pattern_owner`: who could have named the pattern's cgroup.
std::optional<pidns::ContainerLabel> named_container(pidns::EngineState* engines, const std::string& path,
                                                     std::optional<pidns::ContainerLabel> pattern,
                                                     std::optional<std::uint32_t> pattern_owner) {
    if (!engines || path.empty() || (pattern && pattern_owner)) return pattern;
    auto named = engines->label(path);
    if (!named) return pattern;
    if ((!pattern || named->depth != pattern->depth) &&
        pidns::cgroup_label_owner(pidns::systemd_hierarchy_fd(), path, named->depth))
        return pattern;  // a bare id or ctr's /NAMESPACE/ID in a cgroup a user could have named
    return named;
}

// A process's labels with its container named from the engines' state (named_container).
void name_container(pidns::EngineState* engines, pidns::Labels& l) {
    auto named = named_container(engines, l.cgroup, l.container, l.container_owner);
    if (named && (!l.container || named->depth != l.container->depth)) l.container_owner.reset();  // only root's
    l.container = std::move(named);
}

// The uid keys: Uid in the caller's user namespace, User (its name in /etc/passwd) only for a
// caller in pidnsd's user namespace, where host names mean something.
void put_user(Description& d, pidns::CallerView& v, pidns::UserNames& users, std::uint32_t host_uid,
              pidns::TextBudget& budget) {
    const auto uid = v.caller_uid(host_uid);
    d[key::kUid] = sdbus::Variant(uid);
    if (v.in_root_userns())
        if (auto name = users.name_of(host_uid)) put_text(d, key::kUser, *name, budget);
}

// Holders lists at most this many bind mounts (with their paths) per namespace; HoldersOmitted
// counts the others: a user may bind-mount one namespace as often as its mount limit allows.
constexpr std::size_t kMaxMountHolders = 64;

std::vector<uint32_t> to_u32(const std::vector<std::uint32_t>& v) { return {v.begin(), v.end()}; }

// Calls `f(cgroup path)` ("" if unreadable) for each member of the namespace the caller may
// inspect besides its representative, until `f` returns false or kMaxMemberReads were read
// (beyond, the representative speaks for them).
constexpr std::size_t kMaxMemberReads = 256;
template <class F>
void each_member_cgroup(pidns::CallerView& v, pidns::Model& model, const pidns::NamespaceEntry& e, F&& f) {
    std::size_t reads = 0;
    // False: stop.
    auto visit = [&](std::int32_t tgid) {
        if (tgid == e.rep_tgid) return true;
        const auto* p = model.index().find_process(tgid);
        if (!p || p->ns[pidns::ns_type_index(e.type)] != e.id || !v.may_inspect(*p)) return true;
        if (++reads > kMaxMemberReads) return false;
        return f(pidns::read_cgroup_path(model.proc_fd(), tgid));
    };
    if (v.sees_everything()) {
        // may_inspect asks the model nothing for such a caller, so the index does not change
        // under the walk: no copy of the member list, and at most kMaxMemberReads + 1 visited.
        if (const auto* ns = model.index().find_namespace(e.id))
            for (const auto tgid : ns->members)
                if (!visit(tgid)) return;
        return;
    }
    for (const auto tgid : v.members_of(e.id))
        if (!visit(tgid)) return;
}

// Whether every member of the namespace the caller may inspect runs at or below cgroup `within`.
bool all_members_within(pidns::CallerView& v, pidns::Model& model, const pidns::NamespaceEntry& e,
                        const std::string& within) {
    bool all = true;
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        all = path.empty() || pidns::cgroup_within(path, within);
        return all;
    });
    return all;
}

// The containers with members in the namespace other than its own (at cgroup `own`, "" when its
// representative runs in none): who joined it (--pid/--network container:X, a pod's members, a
// host namespace's --pid=host containers). At most kMaxSharers, each once.
constexpr std::size_t kMaxSharers = 64;
// (engine, id, name, who could have named its cgroup in the caller's user namespace or
// kNamedByRoot), as ContainerSharers gives it.
using Sharer = pidns::bus::WireSharer;
constexpr std::uint32_t kNamedByRoot = pidns::bus::kNoUid;
std::vector<Sharer> sharers_of(pidns::CallerView& v, pidns::Model& model, pidns::EngineState* engines,
                               const pidns::NamespaceEntry& e, const std::string& own, pidns::TextBudget& budget) {
    std::vector<Sharer> out;
    std::vector<std::string> seen;  // container cgroups already looked at
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        if (path.empty() || (!own.empty() && pidns::cgroup_within(path, own))) return true;
        for (const auto& s : seen)
            if (pidns::cgroup_within(path, s)) return true;
        auto pattern = pidns::container_of(path);
        const auto owner = pattern ? pidns::cgroup_label_owner(pidns::systemd_hierarchy_fd(), path, pattern->depth)
                                   : std::nullopt;
        const auto c = named_container(engines, path, pattern, owner);
        if (!c) return true;
        // The pattern's owner, unless the engines' state named another container (only root's).
        const auto named_by = pattern && c->depth == pattern->depth && owner ? v.caller_uid(*owner) : kNamedByRoot;
        seen.push_back(pidns::cgroup_prefix(path, c->depth));
        // Escaped as put_labels' (an lxc or nspawn id and name are cgroup names, as CGroup is).
        out.emplace_back(std::string(pidns::container_engine_name(c->engine)), budget.escape(c->id), budget.escape(c->name),
                         named_by);
        return out.size() < kMaxSharers;
    });
    return out;
}

}  // namespace

NamespaceTuple to_tuple(const pidns::NamespaceEntry& e) {
    return {e.id, e.inode, std::string(pidns::ns_type_name(e.type)), e.parent, e.owner,
            e.level, e.init_pid, e.nprocs, e.owner_uid};
}

// DescribeNamespace's keys for one built entry: GetNamespace's, then its representative's labels
// (read now, or read ahead during this call when `labels` is given; left out when it exited
// since), its names and holders.
Description describe_entry(pidns::CallerView& v, pidns::UserNames& users, const Machines* machines,
                           pidns::EngineState* engines, pidns::Model& model, const pidns::NamespaceEntry& e,
                           pidns::Result<pidns::Labels>* labels_read, pidns::TextBudget& budget) {
    Description d;
    d[key::kId] = sdbus::Variant(e.id);
    d[key::kInode] = sdbus::Variant(e.inode);
    d[key::kType] = sdbus::Variant(std::string(pidns::ns_type_name(e.type)));
    d[key::kParent] = sdbus::Variant(e.parent);
    d[key::kOwner] = sdbus::Variant(e.owner);
    d[key::kLevel] = sdbus::Variant(e.level);
    d[key::kInitPid] = sdbus::Variant(e.init_pid);
    d[key::kProcesses] = sdbus::Variant(e.nprocs);
    d[key::kOwnerUid] = sdbus::Variant(e.owner_uid);
    std::optional<pidns::Labels> labels;
    if (!labels_read)
        labels = v.labels_of(e);
    else if (*labels_read)
        labels = std::move(**labels_read);
    if (labels) {
        if (const auto pid = v.listed_pid(e.rep_tgid)) d[key::kRepresentativePid] = sdbus::Variant(pid);
        // Its container is its representative's: a pid namespace's init, else its oldest member,
        // the one that made it. The other containers with members in it joined it.
        name_container(engines, *labels);
        const auto own = labels->container ? pidns::cgroup_prefix(labels->cgroup, labels->container->depth) : std::string();
        if (auto sharers = sharers_of(v, model, engines, e, own, budget); !sharers.empty())
            d[key::kContainerSharers] = sdbus::Variant(sharers);
        put_labels(d, v, *labels, budget);
        // machined's machine of the representative's unit, when every member runs in that unit.
        if (const auto* name = machines ? machines->name_of_unit(labels->unit) : nullptr)
            if (const auto unit_cgroup = pidns::cgroup_upto(labels->cgroup, labels->unit);
                !unit_cgroup.empty() && all_members_within(v, model, e, unit_cgroup))
                put_text(d, key::kMachine, *name, budget);
        if (const auto* p = model.index().find_process(e.rep_tgid)) put_user(d, v, users, p->uid[1], budget);
    }
    if (e.type == pidns::NsType::net)
        if (auto names = v.netns_names(e.id); !names.empty()) {
            for (auto& name : names) name = budget.escape(name);
            d[key::kNetnsNames] = sdbus::Variant(names);
        }
    std::vector<pidns::bus::WireHolder> holders;
    std::size_t mounts = 0;
    std::uint32_t omitted = 0;
    for (auto& [kind, path] : v.holders_of(e.id)) {
        if (!path.empty() && ++mounts > kMaxMountHolders) {
            ++omitted;
            continue;
        }
        holders.emplace_back(std::move(kind), budget.escape(path));
    }
    d[key::kHolders] = sdbus::Variant(holders);
    if (omitted != 0) d[key::kHoldersOmitted] = sdbus::Variant(omitted);
    return d;
}

// DescribeProcess's keys for process `pid` (as the caller named it), from its description.
Description describe_process(pidns::CallerView& v, pidns::UserNames& users, const Machines* machines,
                             pidns::EngineState* engines, std::uint32_t pid, pidns::ProcessDescription& p) {
        Description d;
        d[key::kPid] = sdbus::Variant(pid);
        d[key::kNSpid] = sdbus::Variant(to_u32(p.entry.nspid));
        d[key::kNStgid] = sdbus::Variant(to_u32(p.entry.nstgid));
        d[key::kNSpgid] = sdbus::Variant(to_u32(p.entry.nspgid));
        d[key::kNSsid] = sdbus::Variant(to_u32(p.entry.nssid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), p.entry.ns[pidns::ns_type_index(t)]);
        d[key::kNamespaces] = sdbus::Variant(ns);
        d[key::kThreads] = sdbus::Variant(to_u32(p.threads));
        pidns::TextBudget budget;
        put_user(d, v, users, p.host_uid, budget);
        name_container(engines, p.labels);
        put_labels(d, v, p.labels, budget);
        if (const auto* name = machines ? machines->name_of_unit(p.labels.unit) : nullptr)
            put_text(d, key::kMachine, *name, budget);
    return d;
}

}  // namespace pidnsd
