// JSON for libpidns-client's answers (nlohmann_json): the field names are the structs' own, which
// are what pidnsctl --json prints.
#pragma once

#include <nlohmann/json.hpp>

#include "client.h"

namespace pidns::client {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NamespaceInfo, id, inode, type, parent, owner, level, init_pid, nprocs, owner_uid)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProcessInfo, pid, nspid, nstgid, nspgid, nssid, namespaces)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Holder, kind, path)
// owner_uid only when a user could have named its cgroup (as Labels' container_owner_uid).
inline void to_json(nlohmann::json& j, const ContainerRef& c) {
    j = nlohmann::json{{"engine", c.engine}, {"id", c.id}, {"name", c.name}};
    if (c.owner_uid != kNoUid) j["owner_uid"] = c.owner_uid;
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DumpEntry, rpid, depth, vpids, vtgid, vppid, vpgid, vsid, pidns, pid_for_children,
                                   flags)

// Labels: only the fields pidnsd gave (as the bus leaves keys out).
inline void to_json(nlohmann::json& j, const Labels& l) {
    j = nlohmann::json::object();
    auto put = [&](const char* k, const std::string& v) {
        if (!v.empty()) j[k] = v;
    };
    put("command", l.command);
    if (l.uid != kNoUid) j["uid"] = l.uid;
    put("user", l.user);
    put("cgroup", l.cgroup);
    put("unit", l.unit);
    put("slice", l.slice);
    put("container_engine", l.container_engine);
    put("container_id", l.container_id);
    put("container_name", l.container_name);
    put("pod_uid", l.pod_uid);
    put("pod_id", l.pod_id);
    put("pod_name", l.pod_name);
    put("pod_namespace", l.pod_namespace);
    put("machine", l.machine);
    if (l.unit_owner_uid != kNoUid) j["unit_owner_uid"] = l.unit_owner_uid;
    if (l.container_owner_uid != kNoUid) j["container_owner_uid"] = l.container_owner_uid;
}

// A namespace description: the NamespaceInfo fields, then its labels, names and holders, flat.
inline void to_json(nlohmann::json& j, const NamespaceDescription& n) {
    j = n.ns;
    if (n.representative_pid) j["representative_pid"] = n.representative_pid;
    const nlohmann::json labels = n.labels;
    for (const auto& [k, v] : labels.items()) j[k] = v;
    if (!n.netns_names.empty()) j["netns_names"] = n.netns_names;
    j["holders"] = n.holders;
    if (n.holders_omitted != 0) j["holders_omitted"] = n.holders_omitted;
    if (!n.sharers.empty()) j["container_sharers"] = n.sharers;
}

inline void to_json(nlohmann::json& j, const ProcessDescription& p) {
    j = p.process;
    j["threads"] = p.threads;
    const nlohmann::json labels = p.labels;
    for (const auto& [k, v] : labels.items()) j[k] = v;
}

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
