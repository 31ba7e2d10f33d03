// Label policy: which container a namespace is, who joined it, whether it lies within one unit.
#include "label_policy.h"

#include "cgroup_owner.h"
#include "engine_state.h"
#include "model.h"

namespace pidns {
namespace {

// Calls `f(cgroup path)` ("" if unreadable) for each member of the namespace the caller may
// inspect besides its representative, until `f` returns false or kMaxMemberReads were read.
template <class F>
void each_member_cgroup(CallerView& v, Model& model, const NamespaceEntry& e, F&& f) {
    std::size_t reads = 0;
    // False: stop.
    auto visit = [&](std::int32_t tgid) {
        if (tgid == e.rep_tgid) return true;
        const auto* p = model.index().find_process(tgid);
        if (!p || p->ns[ns_type_index(e.type)] != e.id || !v.may_inspect(*p)) return true;
        if (++reads > kMaxMemberReads) return false;
        return f(read_cgroup_path(model.proc_fd(), tgid));
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

}  // namespace

std::optional<ContainerLabel> named_container(EngineState* engines, const std::string& path,
                                              std::optional<ContainerLabel> pattern,
                                              std::optional<std::uint32_t> pattern_owner) {
    if (!engines || path.empty() || (pattern && pattern_owner)) return pattern;
    auto named = engines->label(path);
    if (!named) return pattern;
    if ((!pattern || named->depth != pattern->depth) &&
        cgroup_label_owner(systemd_hierarchy_fd(), path, named->depth))
        return pattern;  // a bare id or ctr's /NAMESPACE/ID in a cgroup a user could have named
    return named;
}

void name_container(EngineState* engines, Labels& l) {
    auto named = named_container(engines, l.cgroup, l.container, l.container_owner);
    if (named && (!l.container || named->depth != l.container->depth)) l.container_owner.reset();  // only root's
    l.container = std::move(named);
}

bool all_members_within(CallerView& v, Model& model, const NamespaceEntry& e, const std::string& within) {
    bool all = true;
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        all = path.empty() || cgroup_within(path, within);
        return all;
    });
    return all;
}

std::vector<ContainerSharer> sharers_of(CallerView& v, Model& model, EngineState* engines, const NamespaceEntry& e,
                                        const std::string& own) {
    std::vector<ContainerSharer> out;
    std::vector<std::string> seen;  // container cgroups already looked at
    each_member_cgroup(v, model, e, [&](const std::string& path) {
        if (path.empty() || (!own.empty() && cgroup_within(path, own))) return true;
        for (const auto& s : seen)
            if (cgroup_within(path, s)) return true;
        auto pattern = container_of(path);
        const auto owner = pattern ? cgroup_label_owner(systemd_hierarchy_fd(), path, pattern->depth)
                                   : std::nullopt;
        const auto c = named_container(engines, path, pattern, owner);
        if (!c) return true;
        // The pattern's owner, unless the engines' state named another container (only root's).
        const auto named_by =
            pattern && c->depth == pattern->depth && owner ? std::optional<std::uint32_t>(v.caller_uid(*owner)) : std::nullopt;
        seen.push_back(cgroup_prefix(path, c->depth));
        out.push_back(ContainerSharer{c->engine, c->id, c->name, named_by});
        return out.size() < kMaxSharers;
    });
    return out;
}

}  // namespace pidns
