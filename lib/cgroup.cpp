// Parsers over /proc/PID/cgroup and cgroup paths.
#include "cgroup.h"

#include <array>

#include "escape.h"
#include "parse_util.h"

namespace pidns {

namespace {

constexpr std::size_t kMaxLines = 64;
// "ID:CONTROLLERS:" and a path of up to PATH_MAX - 1 bytes: the kernel fails the whole read of
// /proc/PID/cgroup (ENAMETOOLONG) rather than print a longer one.
constexpr std::size_t kMaxLine = 4096 + 512;

Error bad(std::size_t line, const std::string& why) {
    return make_error(Errc::parse, "/proc/PID/cgroup line " + std::to_string(line) + ": " + why);
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// Path components, empty ones (leading '/', "//") skipped.
std::vector<std::string_view> components(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < path.size()) {
        const std::size_t j = path.find('/', i);
        const std::size_t end = j == std::string_view::npos ? path.size() : j;
        if (end > i) out.push_back(path.substr(i, end - i));
        i = end + 1;
    }
    return out;
}

// "PREFIX<64 hex>SUFFIX" → the hex, else "".
std::string_view hex_between(std::string_view c, std::string_view prefix, std::string_view suffix) {
    if (c.size() != prefix.size() + 64 + suffix.size()) return {};
    if (c.substr(0, prefix.size()) != prefix || !ends_with(c, suffix)) return {};
    const auto hex = c.substr(prefix.size(), 64);
    return is_hex64(hex) ? hex : std::string_view{};
}

// A unit name's type suffix: ".service", ".scope", ... ("" when the component is no unit name).
std::string_view unit_suffix(std::string_view c) {
    const auto dot = c.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == c.size()) return {};
    static constexpr std::array<std::string_view, 11> kTypes = {".service", ".scope",     ".socket", ".mount",
                                                                ".swap",    ".device",    ".target", ".automount",
                                                                ".path",    ".timer",     ".slice"};
    const auto suffix = c.substr(dot);
    for (auto t : kTypes)
        if (suffix == t) return suffix;
    return {};
}

// Kubernetes pod UID from a pod cgroup component: "kubepods-besteffort-pod<uid>.slice",
// "kubepods-pod<uid>.slice" (systemd driver, '-' in the uid written '_'), or "pod<uid>"
// (cgroupfs driver). "" if it is none.
std::string pod_uid_of(std::string_view c) {
    std::string_view uid;
    if (c.starts_with("kubepods") && ends_with(c, ".slice")) {
        const auto at = c.rfind("-pod");
        if (at == std::string_view::npos) return {};
        uid = c.substr(at + 4, c.size() - (at + 4) - 6);
    } else if (c.starts_with("pod")) {
        uid = c.substr(3);
    } else {
        return {};
    }
    // A UID: 32 hex digits and 4 separators.
    if (uid.size() != 36) return {};
    std::string out(uid);
    for (std::size_t i = 0; i < out.size(); ++i) {
        char& ch = out[i];
        const bool sep = i == 8 || i == 13 || i == 18 || i == 23;
        if (sep) {
            if (ch != '_' && ch != '-') return {};
            ch = '-';
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return {};
        }
    }
    return out;
}

// The patterns (pidnsd(8), LABELS), tried on each path component from the root down; `next` is
// `prev` is the component above (or "" at the root).
std::optional<ContainerLabel> match(std::string_view prev, std::string_view c) {
    auto label = [](ContainerEngine e, std::string_view id, std::string_view name = {}) {
        ContainerLabel l;
        l.engine = e;
        l.id = std::string(id);
        l.name = std::string(name);
        return l;
    };
    // docker, systemd cgroup driver: system.slice/docker-<id>.scope
    if (auto id = hex_between(c, "docker-", ".scope"); !id.empty()) return label(ContainerEngine::docker, id);
    // docker, cgroupfs driver: /docker/<id>
    if (prev == "docker" && is_hex64(c)) return label(ContainerEngine::docker, c);
    // podman (libpod): machine.slice/libpod-<id>.scope (also rootless, below user@UID.service);
    // cgroupfs: /libpod_parent/libpod-<id>, /libpod_parent/<pod id>/libpod-<id> in a pod,
    // <--cgroup-parent>/libpod-<id>. Not libpod-conmon-<id>: that is its monitor.
    if (auto id = hex_between(c, "libpod-", ".scope"); !id.empty()) return label(ContainerEngine::podman, id);
    if (auto id = hex_between(c, "libpod-", ""); !id.empty()) return label(ContainerEngine::podman, id);
    // containerd (CRI, systemd driver): ...pod<uid>.slice/cri-containerd-<id>.scope
    if (auto id = hex_between(c, "cri-containerd-", ".scope"); !id.empty())
        return label(ContainerEngine::containerd, id);
    // CRI-O: crio-<id>.scope (systemd driver), crio-<id> (cgroupfs). Not crio-conmon-<id>.
    if (auto id = hex_between(c, "crio-", ".scope"); !id.empty()) return label(ContainerEngine::crio, id);
    if (auto id = hex_between(c, "crio-", ""); !id.empty()) return label(ContainerEngine::crio, id);
    // LXC 4+ and Incus: /lxc.payload.<name> (lxc.monitor.<name> is the monitor, not the
    // container); LXC 3 and older: /lxc/<name>.
    if (c.starts_with("lxc.payload.") && c.size() > 12) {
        const auto name = c.substr(12);
        return label(ContainerEngine::lxc, name, name);
    }
    if (prev == "lxc" && !c.empty()) return label(ContainerEngine::lxc, c, c);
    // systemd-nspawn: machine.slice/systemd-nspawn@<name>.service (the name escaped as a unit
    // instance: "my-box" is "my\x2dbox").
    if (c.starts_with("systemd-nspawn@") && ends_with(c, ".service") && c.size() > 15 + 8) {
        const auto name = unescape_unit_name(c.substr(15, c.size() - 15 - 8));
        return label(ContainerEngine::nspawn, name, name);
    }
    return std::nullopt;
}

// podman's pod from a cgroup component: "<pod id>" below "libpod_parent" (cgroupfs driver) or
// "machine-libpod_pod_<pod id>.slice" (systemd driver; "user-libpod_pod_..." rootless). "" if none.
std::string_view podman_pod_of(std::string_view prev, std::string_view c) {
    if (prev == "libpod_parent" && is_hex64(c)) return c;
    if (const auto at = c.find("libpod_pod_"); at != std::string_view::npos)
        return hex_between(c.substr(at), "libpod_pod_", ".slice");
    return {};
}

std::vector<ContainerLabel> all_containers(std::string_view path) {
    const auto parts = components(path);
    std::vector<ContainerLabel> out;
    std::string pod;
    std::string_view podman_pod;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (auto uid = pod_uid_of(parts[i]); !uid.empty()) pod = uid;
        const std::string_view prev = i > 0 ? parts[i - 1] : std::string_view{};
        if (auto p = podman_pod_of(prev, parts[i]); !p.empty()) podman_pod = p;
        if (auto m = match(prev, parts[i])) {
            m->pod_uid = pod;
            if (m->engine == ContainerEngine::podman) m->pod_id = std::string(podman_pod);
            m->depth = i + 1;
            out.push_back(std::move(*m));
        }
    }
    return out;
}

// containerd's identifiers (namespaces and container ids, its identifiers package): letters and
// digits, in runs joined by one '.', '_' or '-', at most 76 bytes.
bool containerd_identifier(std::string_view s) {
    if (s.empty() || s.size() > 76) return false;
    auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); };
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (alnum(s[i])) continue;
        if ((s[i] != '.' && s[i] != '_' && s[i] != '-') || i == 0 || i + 1 == s.size() || !alnum(s[i - 1])) return false;
    }
    return true;
}

}  // namespace

Result<std::vector<CgroupLine>> parse_proc_cgroup(std::string_view text) {
    std::vector<CgroupLine> out;
    std::size_t lineno = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++lineno;
        if (line.empty()) {
            if (text.empty()) break;  // the final newline
            return bad(lineno, "empty line");
        }
        if (line.size() > kMaxLine) return bad(lineno, "longer than " + std::to_string(kMaxLine) + " bytes");
        if (out.size() >= kMaxLines) return bad(lineno, "more than " + std::to_string(kMaxLines) + " lines");
        const auto c1 = line.find(':');
        if (c1 == std::string_view::npos) return bad(lineno, "no ':' after the hierarchy id");
        const auto c2 = line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) return bad(lineno, "no ':' after the controllers");
        auto id = parse_u64(line.substr(0, c1));
        if (!id || *id > 0xffffffffu) return bad(lineno, "hierarchy id is not a number");
        CgroupLine l;
        l.hierarchy = static_cast<std::uint32_t>(*id);
        l.controllers = std::string(line.substr(c1 + 1, c2 - c1 - 1));
        l.path = std::string(line.substr(c2 + 1));  // a path may itself contain ':'
        if (l.path.empty() || l.path.front() != '/') return bad(lineno, "path does not start with '/'");
        if (l.hierarchy == 0 && !l.controllers.empty()) return bad(lineno, "hierarchy 0 (cgroup v2) with controllers");
        out.push_back(std::move(l));
    }
    return out;
}

std::optional<std::string> systemd_cgroup_path(const std::vector<CgroupLine>& lines) {
    for (const auto& l : lines)
        if (l.hierarchy != 0 && l.controllers == "name=systemd") return l.path;
    for (const auto& l : lines)
        if (l.hierarchy == 0) return l.path;
    return std::nullopt;
}

SystemdPlacement systemd_placement(std::string_view path) {
    SystemdPlacement p;
    p.slice = "-.slice";
    std::size_t depth = 0;
    for (auto c : components(path)) {
        ++depth;
        const auto suffix = unit_suffix(c);
        if (suffix == ".slice") {
            p.slice = std::string(c);
            p.depth = depth;
            continue;
        }
        if (!suffix.empty()) {
            p.unit = std::string(c);
            p.depth = depth;
        }
        break;  // the first component below the slices: a unit, or nothing systemd made
    }
    return p;
}

std::string_view container_engine_name(ContainerEngine e) noexcept {
    switch (e) {
    case ContainerEngine::docker: return "docker";
    case ContainerEngine::podman: return "podman";
    case ContainerEngine::containerd: return "containerd";
    case ContainerEngine::crio: return "cri-o";
    case ContainerEngine::lxc: return "lxc";
    case ContainerEngine::nspawn: return "nspawn";
    }
    return "unknown";
}

std::optional<ContainerLabel> container_of(std::string_view path) {
    auto all = all_containers(path);
    if (all.empty()) return std::nullopt;
    return std::move(all.front());
}

std::vector<ContainerCandidate> container_candidates(std::string_view path) {
    const auto parts = components(path);
    std::vector<ContainerCandidate> out;
    if (parts.size() == 2 && unit_suffix(parts[0]).empty() && containerd_identifier(parts[0]) &&
        containerd_identifier(parts[1]) && all_containers(path).empty())
        out.push_back({std::string(parts[0]), std::string(parts[1]), {}, 2});
    std::string pod;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (auto uid = pod_uid_of(parts[i]); !uid.empty()) pod = uid;
        const std::string_view prev = i > 0 ? parts[i - 1] : std::string_view{};
        // A bare id that a pattern claims already (docker/<id>, libpod_parent/<pod id>) is none.
        if (!is_hex64(parts[i]) || prev == "docker" || prev == "libpod_parent") continue;
        out.push_back({"", std::string(parts[i]), pod, i + 1});
    }
    return out;
}

std::string unescape_unit_name(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    // The name with every escape decoded, each byte with the text it was read from.
    std::string decoded;
    std::vector<std::string_view> source;
    decoded.reserve(s.size());
    source.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && hex(s[i + 2]) >= 0 && hex(s[i + 3]) >= 0) {
            decoded.push_back(static_cast<char>(hex(s[i + 2]) * 16 + hex(s[i + 3])));
            source.push_back(s.substr(i, 4));
            i += 3;
        } else {
            decoded.push_back(s[i]);
            source.push_back(s.substr(i, 1));
        }
    }
    // A decoded character stays only when it is valid UTF-8 and printable (escape.h): "\x00",
    // "\xff" or "\x1b" are kept as written, so unescaping never makes a NUL, a control or invalid
    // UTF-8 that the name did not hold as such.
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < decoded.size();) {
        const auto c = decode_utf8(decoded, i);
        const bool keep = c.valid && !is_unsafe_char(c.cp);
        for (std::size_t k = i; k < i + c.len; ++k) {
            if (keep) out += decoded[k];
            else out += source[k];
        }
        i += c.len;
    }
    return out;
}

}  // namespace pidns
