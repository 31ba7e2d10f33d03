// Container names from the engines' root-owned state on disk, read safely and cached.
#include "engine_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <nlohmann/json.hpp>

namespace pidns {

namespace {

using nlohmann::json;

constexpr std::array<const char*, 4> kStorageDrivers = {"overlay", "vfs", "btrfs", "zfs"};

// Whole JSON text, or a discarded value (no exception: lib/ reports errors as values).
json parse_json(std::string_view text) { return json::parse(text.begin(), text.end(), nullptr, false); }

// obj[key] as a string, "" when absent or not a string.
std::string str_at(const json& obj, const char* key) {
    if (!obj.is_object()) return {};
    const auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A directory entry the engine made, owned by root and writable by root alone.
bool root_only(const struct stat& st) { return st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0; }

Error refused(const std::string& what, const std::string& why) {
    return make_error(Errc::access_denied, what + ": " + why + "; only engine state that root alone may write is read");
}

// Up to `max` entry names of directory `dir` (an O_PATH fd), "." and ".." left out.
std::vector<std::string> entries(int dir, std::size_t max) {
    std::vector<std::string> out;
    const int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    DIR* d = ::fdopendir(fd);
    if (!d) {
        ::close(fd);
        return out;
    }
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (out.size() >= max) break;
        out.emplace_back(e->d_name);
    }
    ::closedir(d);
    return out;
}

// containerd namespaces and ids: letters, digits and single '.', '_', '-' between them (as
// cgroup.cpp's candidates); never "." or "..", never a '/'.
bool safe_component(std::string_view s) {
    if (s.empty() || s.size() > 76 || s == "." || s == "..") return false;
    for (char ch : s)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    return true;
}

}  // namespace

Result<EngineRoots> engine_roots(const std::vector<std::string>& specs) {
    EngineRoots roots;
    std::vector<std::string> replaced;
    for (const auto& spec : specs) {
        const auto colon = spec.find(':');
        const std::string engine = spec.substr(0, colon);
        const std::string dir = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
        std::vector<std::string>* list = engine == "docker"       ? &roots.docker
                                         : engine == "podman"     ? &roots.podman
                                         : engine == "containerd" ? &roots.containerd
                                         : engine == "cri-o"      ? &roots.crio
                                                                  : nullptr;
        if (!list)
            return make_error(Errc::invalid_argument, "--container-state '" + spec +
                                                          "': the engine is not docker, podman, containerd or cri-o");
        if (dir.empty() || dir.front() != '/')
            return make_error(Errc::invalid_argument,
                              "--container-state '" + spec + "': give an absolute directory, as docker:/var/lib/docker");
        if (std::find(replaced.begin(), replaced.end(), engine) == replaced.end()) {
            list->clear();
            replaced.push_back(engine);
        }
        list->push_back(dir);
    }
    return roots;
}

std::string engine_text(std::string_view s) {
    // UNTRUSTED TEXT: raw until the shared escaper of the "untrusted text" issue is wired here.
    if (s.size() > 253) return {};
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f) return {};
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) n = 1, cp = c;
        else if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
        else return {};
        if (i + n > s.size()) return {};
        for (std::size_t k = 1; k < n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return {};
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates, beyond U+10FFFF, and the C1 controls.
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
            return {};
        i += n;
    }
    return std::string(s);
}

std::optional<EngineNames> parse_docker_config(std::string_view text) {
    const auto j = parse_json(text);
    if (!j.is_object()) return std::nullopt;
    EngineNames n;
    n.name = str_at(j, "Name");
    if (n.name.starts_with('/')) n.name.erase(0, 1);
    if (const auto cfg = j.find("Config"); cfg != j.end() && cfg->is_object())
        if (const auto labels = cfg->find("Labels"); labels != cfg->end() && labels->is_object()) {
            // cri-dockerd's (dockershim's) labels of a Kubernetes container.
            n.pod_name = str_at(*labels, "io.kubernetes.pod.name");
            n.pod_namespace = str_at(*labels, "io.kubernetes.pod.namespace");
            n.pod_uid = str_at(*labels, "io.kubernetes.pod.uid");
            n.pod_id = str_at(*labels, "io.kubernetes.sandbox.id");
        }
    return n;
}

std::optional<OciNames> parse_oci_annotations(std::string_view text) {
    const auto j = parse_json(text);
    if (!j.is_object()) return std::nullopt;
    OciNames o;
    const auto it = j.find("annotations");
    if (it == j.end() || !it->is_object()) return o;
    const auto& a = *it;
    auto first = [&](const char* cri, const char* crio) {
        auto v = str_at(a, cri);
        return v.empty() ? str_at(a, crio) : v;
    };
    o.names.name = first("io.kubernetes.cri.container-name", "io.kubernetes.container.name");
    o.names.pod_id = first("io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID");
    o.names.pod_name = first("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name");
    o.names.pod_namespace = first("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace");
    o.names.pod_uid = first("io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid");
    o.cri = a.contains("io.kubernetes.cri.container-type") || a.contains("io.kubernetes.cri-o.ContainerType") ||
            !o.names.pod_id.empty() || !o.names.pod_name.empty();
    return o;
}

std::optional<std::unordered_map<std::string, std::string>> parse_storage_containers(std::string_view text) {
    const auto j = parse_json(text);
    if (!j.is_array()) return std::nullopt;
    std::unordered_map<std::string, std::string> out;
    for (const auto& c : j) {
        const auto id = str_at(c, "id");
        if (id.empty()) continue;
        const auto names = c.is_object() ? c.find("names") : c.end();
        if (names != c.end() && names->is_array() && !names->empty() && names->front().is_string())
            out[id] = names->front().get<std::string>();
    }
    return out;
}

Result<Fd> open_root_dir(const std::string& path) {
    if (path.empty() || path.front() != '/') return make_error(Errc::invalid_argument, path + ": not an absolute path");
    std::string todo = path;  // what is left to walk, relative to `at`
    int fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "open /", errno);
    Fd at(fd);
    std::string walked;  // for messages
    int links = 0;
    std::size_t i = 0;
    while (i < todo.size()) {
        while (i < todo.size() && todo[i] == '/') ++i;
        if (i >= todo.size()) break;
        const auto j = todo.find('/', i);
        const std::string name = todo.substr(i, (j == std::string::npos ? todo.size() : j) - i);
        i = j == std::string::npos ? todo.size() : j;
        if (name == ".") continue;
        if (name == "..") return refused(path, "has a '..' component");
        struct stat st {};
        if (::fstatat(at.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return make_error(errno == ENOENT ? Errc::not_found : Errc::io, walked + "/" + name, errno);
        if (S_ISLNK(st.st_mode)) {
            // A symlink root made in a root-only directory (/var/run -> /run, /var/lib/docker ->
            // /srv/docker): followed, its target walked from the start, at most 8 of them.
            if (st.st_uid != 0) return refused(path, walked + "/" + name + " is a symlink not owned by root");
            if (++links > 8) return refused(path, "more than 8 symlinks");
            std::array<char, 4096> buf{};
            const auto n = ::readlinkat(at.get(), name.c_str(), buf.data(), buf.size() - 1);
            if (n <= 0) return make_error(Errc::io, "readlink " + walked + "/" + name, errno);
            const std::string target(buf.data(), static_cast<std::size_t>(n));
            const std::string rest = todo.substr(i);
            if (target.front() == '/') {
                fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) return make_error(Errc::io, "open /", errno);
                at = Fd(fd);
                walked.clear();
            }
            todo = target + rest;
            i = 0;
            continue;
        }
        fd = ::openat(at.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return make_error(errno == ENOENT ? Errc::not_found : Errc::io, walked + "/" + name, errno);
        Fd next(fd);
        if (::fstat(next.get(), &st) != 0) return make_error(Errc::io, "stat " + walked + "/" + name, errno);
        walked += "/" + name;
        // Root's, and no one else may rename what is in it (a sticky directory, such as /tmp,
        // lets others add entries but not touch root's).
        if (st.st_uid != 0) return refused(path, walked + " is not owned by root");
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
            return refused(path, walked + " is writable by others");
        at = std::move(next);
    }
    return at;
}

Result<Fd> open_root_subdir(int dir, const std::string& name) {
    const int fd = ::openat(dir, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return make_error(errno == ENOENT ? Errc::not_found : Errc::io, name, errno);
    Fd d(fd);
    struct stat st {};
    if (::fstat(d.get(), &st) != 0) return make_error(Errc::io, "stat " + name, errno);
    if (!root_only(st)) return refused(name, "not a root-only directory");
    return d;
}

Result<std::string> read_root_file(int dir, const std::string& name, std::size_t max_bytes) {
    const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return make_error(errno == ENOENT ? Errc::not_found : Errc::io, name, errno);
    Fd f(fd);
    struct stat st {};
    if (::fstat(f.get(), &st) != 0) return make_error(Errc::io, "stat " + name, errno);
    if (!S_ISREG(st.st_mode) || !root_only(st)) return refused(name, "not a regular file only root may write");
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
        return make_error(Errc::too_large, name + " is larger than " + std::to_string(max_bytes) + " bytes");
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
        const auto n = ::read(f.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error(Errc::io, "read " + name, errno);
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

EngineState::EngineState(EngineRoots roots) : roots_(std::move(roots)) {}

std::optional<Fd> EngineState::root(const std::string& path) {
    auto d = open_root_dir(path);
    if (d) return std::move(*d);
    if (d.error().code == Errc::access_denied) ++stats_.refused;
    return std::nullopt;
}

std::optional<std::string> EngineState::file(int dir, const std::string& name, std::size_t max) {
    auto t = read_root_file(dir, name, max);
    if (t) return std::move(*t);
    if (t.error().code == Errc::access_denied || t.error().code == Errc::too_large) ++stats_.refused;
    return std::nullopt;
}

std::optional<EngineNames> EngineState::docker(const std::string& id) {
    for (const auto& r : roots_.docker) {
        auto top = root(r);
        if (!top) continue;
        auto containers = open_root_subdir(top->get(), "containers");
        if (!containers) continue;
        auto dir = open_root_subdir(containers->get(), id);
        if (!dir) continue;
        if (auto text = file(dir->get(), "config.v2.json", kMaxConfigBytes))
            if (auto n = parse_docker_config(*text)) return n;
    }
    return std::nullopt;
}

std::optional<EngineNames> EngineState::podman(const std::string& id) {
    for (const auto& r : roots_.podman) {
        auto top = root(r);
        if (!top) continue;
        for (const char* driver : kStorageDrivers) {
            auto dir = open_root_subdir(top->get(), std::string(driver) + "-containers");
            if (!dir) continue;
            // containers.json, parsed again only when it changed (podman rewrites it whole).
            const std::string key = r + "/" + driver;
            struct stat st {};
            if (::fstatat(dir->get(), "containers.json", &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            auto& cached = storage_[key];
            const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
            if (cached.ino != st.st_ino || cached.size != static_cast<std::uint64_t>(st.st_size) || cached.mtime_ns != mtime) {
                cached = Storage{};
                if (auto text = file(dir->get(), "containers.json", kMaxStorageBytes))
                    if (auto names = parse_storage_containers(*text)) cached.names = std::move(*names);
                cached.ino = st.st_ino;
                cached.size = static_cast<std::uint64_t>(st.st_size);
                cached.mtime_ns = mtime;
            }
            if (auto it = cached.names.find(id); it != cached.names.end()) {
                EngineNames n;
                n.name = it->second;
                return n;
            }
        }
    }
    return std::nullopt;
}

std::optional<OciNames> EngineState::containerd(const std::string& ns, const std::string& id) {
    if (!safe_component(id) || (!ns.empty() && !safe_component(ns))) return std::nullopt;
    for (const auto& r : roots_.containerd) {
        auto top = root(r);
        if (!top) continue;
        auto tasks = open_root_subdir(top->get(), "io.containerd.runtime.v2.task");
        if (!tasks) continue;
        const auto namespaces = ns.empty() ? entries(tasks->get(), kMaxNamespaces) : std::vector<std::string>{ns};
        for (const auto& n : namespaces) {
            if (!safe_component(n)) continue;
            auto nsdir = open_root_subdir(tasks->get(), n);
            if (!nsdir) continue;
            auto bundle = open_root_subdir(nsdir->get(), id);
            if (!bundle) continue;
            if (auto text = file(bundle->get(), "config.json", kMaxConfigBytes))
                if (auto o = parse_oci_annotations(*text)) return o;
        }
    }
    return std::nullopt;
}

std::optional<OciNames> EngineState::crio(const std::string& id) {
    for (const auto& r : roots_.crio) {
        auto top = root(r);
        if (!top) continue;
        for (const char* driver : kStorageDrivers) {
            auto dir = open_root_subdir(top->get(), std::string(driver) + "-containers");
            if (!dir) continue;
            auto cdir = open_root_subdir(dir->get(), id);
            if (!cdir) continue;
            auto userdata = open_root_subdir(cdir->get(), "userdata");
            if (!userdata) continue;
            if (auto text = file(userdata->get(), "config.json", kMaxConfigBytes))
                if (auto o = parse_oci_annotations(*text); o && o->cri) return o;
        }
    }
    return std::nullopt;
}

std::optional<EngineState::Found> EngineState::read(std::optional<ContainerEngine> engine, const std::string& ns,
                                                    const std::string& id) {
    ++stats_.lookups;
    const bool any = !engine.has_value();
    if (any || engine == ContainerEngine::docker)
        if (auto n = docker(id)) return Found{ContainerEngine::docker, std::move(*n), false};
    if (any || engine == ContainerEngine::containerd)
        if (auto o = containerd(ns, id)) return Found{ContainerEngine::containerd, std::move(o->names), o->cri};
    if (any || engine == ContainerEngine::crio)
        if (auto o = crio(id)) return Found{ContainerEngine::crio, std::move(o->names), true};
    if (engine == ContainerEngine::podman)
        if (auto n = podman(id)) return Found{ContainerEngine::podman, std::move(*n), false};
    return std::nullopt;
}

std::optional<EngineState::Found> EngineState::lookup(std::optional<ContainerEngine> engine, const std::string& ns,
                                                      const std::string& id) {
    const auto now = std::chrono::steady_clock::now();
    const std::string key =
        std::to_string(engine ? static_cast<int>(*engine) : -1) + "/" + ns + "/" + id;
    if (auto it = cache_.find(key); it != cache_.end() && now - it->second.at < kTtl) return it->second.found;
    if (cache_.size() >= kMaxCached) cache_.clear();
    auto found = read(engine, ns, id);
    cache_[key] = Cached{now, found};
    return found;
}

std::optional<ContainerLabel> EngineState::label(std::string_view cgroup_path) {
    auto complete = [](ContainerLabel& l, const Found& f) {
        l.engine = f.engine;
        if (auto name = engine_text(f.names.name); !name.empty()) l.name = std::move(name);
        // ctr names a container by its id; a CRI container (or sandbox) has its Kubernetes names.
        if (l.name.empty() && f.engine == ContainerEngine::containerd && !f.cri) l.name = l.id;
        if (l.pod_id.empty()) l.pod_id = engine_text(f.names.pod_id);
        if (l.pod_uid.empty()) l.pod_uid = engine_text(f.names.pod_uid);
        l.pod_name = engine_text(f.names.pod_name);
        l.pod_namespace = engine_text(f.names.pod_namespace);
    };
    auto best = container_of(cgroup_path);
    if (best && best->engine != ContainerEngine::lxc && best->engine != ContainerEngine::nspawn)
        if (auto f = lookup(best->engine, "", best->id)) complete(*best, *f);
    // A candidate outside the pattern's container (or where no pattern matched) that an engine knows.
    for (const auto& c : container_candidates(cgroup_path)) {
        if (best && best->depth <= c.depth) continue;
        auto f = lookup(c.ns.empty() ? std::nullopt : std::optional(ContainerEngine::containerd), c.ns, c.id);
        if (!f) continue;
        ContainerLabel l;
        l.id = c.id;
        l.pod_uid = c.pod_uid;
        l.depth = c.depth;
        complete(l, *f);
        best = std::move(l);
    }
    return best;
}

}  // namespace pidns
