// Label policy: which container a namespace is (named from the engines' state only where nobody else could have named its cgroup), who joined it, whether all of it runs within one unit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cgroup.h"
#include "labels.h"
#include "view.h"

namespace pidns {

class EngineState;
class Model;

// The container of cgroup `path` as the engines' own state names it (their names and pods, and
// the containers no cgroup pattern finds: lib/engine_state.h), or `pattern` (container_of's)
// as it is. Root's state names only a container whose cgroup only root could have named: a user
// who may make cgroups (a delegated subtree) could name one after a real container's id and
// borrow that container's name. `pattern_owner`: who could have named the pattern's cgroup.
std::optional<ContainerLabel> named_container(EngineState* engines, const std::string& path,
                                              std::optional<ContainerLabel> pattern,
                                              std::optional<std::uint32_t> pattern_owner);

// A process's labels with its container named from the engines' state (named_container).
void name_container(EngineState* engines, Labels& l);

// Members of a namespace read for the policies below, besides its representative: beyond, the
// representative speaks for them.
inline constexpr std::size_t kMaxMemberReads = 256;

// Whether every member of namespace entry `e` that the caller may inspect runs at or below cgroup `within`.
bool all_members_within(CallerView& v, Model& model, const NamespaceEntry& e, const std::string& within);

// A container with members in a namespace other than its own.
struct ContainerSharer {
    ContainerEngine engine;
    std::string id, name;  // as read: user text (cgroup names), to be escaped by a front end
    // Who could have named its cgroup, in the caller's user namespace; nothing: only root could.
    std::optional<std::uint32_t> named_by;
};
// The containers with members in namespace entry `e` other than its own (at cgroup `own`, ""
// when its representative runs in none): who joined it (--pid/--network container:X, a pod's
// members, a host namespace's --pid=host containers). At most kMaxSharers, each once.
inline constexpr std::size_t kMaxSharers = 64;
std::vector<ContainerSharer> sharers_of(CallerView& v, Model& model, EngineState* engines, const NamespaceEntry& e,
                                        const std::string& own);

}  // namespace pidns
