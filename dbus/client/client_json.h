// JSON for libpidns-client's answers (nlohmann_json): the field names are the structs' own, which
// are what pidnsctl --json prints.
#pragma once

#include <nlohmann/json.hpp>

#include "client.h"

namespace pidns::client {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NamespaceInfo, id, inode, type, parent, owner, level, init_pid, nprocs, owner_uid)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProcessInfo, pid, nspid, nstgid, nspgid, nssid, namespaces)

inline void to_json(nlohmann::json& j, const StatValue& v) {
    std::visit([&](const auto& x) { j = x; }, v);
}

inline void to_json(nlohmann::json& j, const NamespaceEvent& e) {
    j = nlohmann::json{{"event", to_string(e.kind)}};
    if (e.kind != NamespaceEvent::Kind::resync) {
        j["id"] = e.id;
        j["type"] = e.type;
    }
}

}  // namespace pidns::client
