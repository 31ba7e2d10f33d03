// Pure parsers over /proc/PID/cgroup and cgroup paths: which cgroup a process is in, which
// systemd unit and slice that is, and which container engine made it (the table in cgroup.cpp,
// documented in pidnsd(8), LABELS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace pidns {

// One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH" (cgroup v2: "0::PATH").
struct CgroupLine {
    std::uint32_t hierarchy = 0;
    std::string controllers;  // "" for v2, "memory", "cpu,cpuacct", "name=systemd", ...
    std::string path;         // as the kernel prints it (may contain ':'), relative to the reader's cgroup namespace
};

// Errc::parse naming the line on malformed input; at most 64 lines of at most 4096 bytes each.
Result<std::vector<CgroupLine>> parse_proc_cgroup(std::string_view text);

// The path systemd keeps its units in: the v1 "name=systemd" hierarchy when there is one (legacy
// and hybrid mounts), else the v2 line. nullopt when neither is there.
std::optional<std::string> systemd_cgroup_path(const std::vector<CgroupLine>& lines);

// systemd's reading of a cgroup path (src/basic/cgroup-util.c cg_path_get_unit/cg_path_get_slice):
// the unit is the first component below the slices (a name ending in .service, .scope, .socket,
// .mount, .swap, .device, .target... any ".<suffix>" other than .slice); the slice is the last
// .slice component above it ("-.slice" when there is none). Names are returned as in the path.
struct SystemdPlacement {
    std::string unit;        // "" when the path names no unit (e.g. "/" or a slice only)
    std::string slice;       // "-.slice" for a unit directly below the root
    std::size_t depth = 0;   // path components up to and including the unit (else the last slice); 0: neither
};
SystemdPlacement systemd_placement(std::string_view path);

enum class ContainerEngine : std::uint8_t { docker, podman, containerd, crio, lxc, nspawn };
std::string_view container_engine_name(ContainerEngine e) noexcept;

struct ContainerLabel {
    ContainerEngine engine{};
    std::string id;        // the engine's id: 64 hex digits, or the name where the engine names its cgroup by name
    std::string name;      // where the cgroup names it (lxc, nspawn), or the engine's state (engine_state.h); else ""
    std::string pod_uid;   // Kubernetes pod UID (dashes restored), "" outside a pod
    std::string pod_id;    // podman's pod (its cgroup), or the CRI sandbox id (engine_state.h); else ""
    std::string pod_name, pod_namespace;  // the Kubernetes pod's, from the engine's state (engine_state.h)
    std::size_t depth = 0; // path components up to and including the container's own: smaller is outer
};

// The outermost container a cgroup path names, or nullopt. Only the patterns of the table in
// cgroup.cpp are recognised; a component that merely looks like one (wrong length, not hex) is not.
std::optional<ContainerLabel> container_of(std::string_view path);

// A cgroup component that is a container's only if an engine's own state knows that container
// (engine_state.h looks it up): 64 hex digits that no pattern claims (docker's cgroupfs driver
// below --cgroup-parent, kubelet's cgroupfs driver for containerd and docker: .../pod<uid>/<id>),
// and containerd's "/<namespace>/<id>", what ctr makes (the only two components of the path).
struct ContainerCandidate {
    std::string ns;        // containerd's namespace for "/<namespace>/<id>", else ""
    std::string id;
    std::string pod_uid;   // as ContainerLabel's
    std::size_t depth = 0;
};
std::vector<ContainerCandidate> container_candidates(std::string_view path);

// "\x2d" and friends in a systemd unit name component back to the characters they stand for
// (systemd-nspawn@my\x2dbox.service names the machine "my-box"). An escape is decoded only into a
// valid, printable UTF-8 character (escape.h's rule): one that would give a NUL, a control
// character or invalid UTF-8 ("\x00", "\x1b", a lone "\xff") is kept as written, as is an
// invalid escape. So the result holds a NUL, a control or invalid UTF-8 only where `s` itself does.
std::string unescape_unit_name(std::string_view s);

}  // namespace pidns
