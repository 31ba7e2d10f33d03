// The answers that describe a namespace or a process: their a{sv} keys, and the label policy
// (whose container a namespace is, which containers joined it, which machine it is).
#include "describe.h"

#include <string_view>

#include "engine_state.h"
#include "label_policy.h"
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

// ContainerSharers: (engine, id, name, who could have named its cgroup in the caller's user
// namespace or kNoUid), id and name escaped as put_labels' (an lxc or nspawn id and name are
// cgroup names, as CGroup is).
std::vector<pidns::bus::WireSharer> to_wire(std::vector<pidns::ContainerSharer>&& sharers, pidns::TextBudget& budget) {
    std::vector<pidns::bus::WireSharer> out;
    out.reserve(sharers.size());
    for (auto& s : sharers)
        out.emplace_back(std::string(pidns::container_engine_name(s.engine)), budget.escape(s.id), budget.escape(s.name),
                         s.named_by.value_or(pidns::bus::kNoUid));
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
        pidns::name_container(engines, *labels);
        const auto own = labels->container ? pidns::cgroup_prefix(labels->cgroup, labels->container->depth) : std::string();
        if (auto sharers = to_wire(pidns::sharers_of(v, model, engines, e, own), budget); !sharers.empty())
            d[key::kContainerSharers] = sdbus::Variant(sharers);
        put_labels(d, v, *labels, budget);
        // machined's machine of the representative's unit, when every member runs in that unit.
        if (const auto* name = machines ? machines->name_of_unit(labels->unit) : nullptr)
            if (const auto unit_cgroup = pidns::cgroup_upto(labels->cgroup, labels->unit);
                !unit_cgroup.empty() && pidns::all_members_within(v, model, e, unit_cgroup))
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
        pidns::name_container(engines, p.labels);
        put_labels(d, v, p.labels, budget);
        if (const auto* name = machines ? machines->name_of_unit(p.labels.unit) : nullptr)
            put_text(d, key::kMachine, *name, budget);
    return d;
}

}  // namespace pidnsd
