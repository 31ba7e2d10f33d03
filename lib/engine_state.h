// Container names from their engines' own state on disk (docker's container config, podman's
// container list, the OCI bundles' annotations of containerd and CRI-O): root-owned files only,
// reached without following anything a user controls, bounded in bytes, cached; no engine socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cgroup.h"
#include "nsfs.h"
#include "result.h"

namespace pidns {

// Where each engine keeps the state pidnsd reads (pidnsd --container-state=ENGINE:DIR; the
// defaults are the engines' own): docker's --data-root (containers/<id>/config.v2.json), podman's
// graphroot (<driver>-containers/containers.json), containerd's state directory
// (io.containerd.runtime.v2.task/<namespace>/<id>/config.json), CRI-O's runroot
// (<driver>-containers/<id>/userdata/config.json).
struct EngineRoots {
    std::vector<std::string> docker{"/var/lib/docker"};
    std::vector<std::string> podman{"/var/lib/containers/storage"};
    std::vector<std::string> containerd{"/run/containerd"};
    std::vector<std::string> crio{"/run/containers/storage"};
};

// The roots of "ENGINE:DIR" specs (docker, podman, containerd or cri-o; DIR absolute): an
// engine's first spec replaces its default, the next ones add to it. Errc::invalid_argument
// saying what is wrong.
Result<EngineRoots> engine_roots(const std::vector<std::string>& specs);

// What an engine's state says of one container. Untrusted text: whoever starts a container names
// it (engine_text() keeps only valid UTF-8 of a bounded length).
struct EngineNames {
    std::string name;                      // the engine's name for the container
    std::string pod_id;                    // CRI sandbox id
    std::string pod_name, pod_namespace, pod_uid;  // Kubernetes, from CRI annotations or labels
    bool operator==(const EngineNames&) const = default;
};

// UNTRUSTED TEXT (issue "untrusted text" will escape strings for the bus in one place): for now a
// name is passed on raw when it is valid UTF-8 of at most 253 bytes with no control character,
// else dropped ("") so that it can neither fail a reply nor forge a line.
std::string engine_text(std::string_view s);

// Pure parsers of the engines' files (fuzzed: fuzz/fuzz_engine_state.cpp). nullopt when the
// text is not the expected JSON.
// docker's containers/<id>/config.v2.json: "Name" ("/web" is "web"), the Kubernetes labels of
// cri-dockerd (Config.Labels io.kubernetes.pod.name, .namespace, .uid, io.kubernetes.container.name,
// io.kubernetes.sandbox.id).
std::optional<EngineNames> parse_docker_config(std::string_view json);
// An OCI runtime config.json's annotations: containerd's CRI (io.kubernetes.cri.container-name,
// sandbox-id, sandbox-name, sandbox-namespace, sandbox-uid) and CRI-O's (io.kubernetes.container.name,
// io.kubernetes.cri-o.SandboxID, io.kubernetes.pod.name, .namespace, .uid). `cri` says whether
// any CRI annotation was there.
struct OciNames {
    EngineNames names;
    bool cri = false;
};
std::optional<OciNames> parse_oci_annotations(std::string_view json);
// containers/storage's <driver>-containers/containers.json (podman): id -> its first name.
std::optional<std::unordered_map<std::string, std::string>> parse_storage_containers(std::string_view json);

// A directory given by absolute path, opened O_PATH, every directory on the way owned by root and
// writable by no one else (or sticky, as /tmp, with a root-owned entry below it); symlinks only
// when root owns them (at most 8). Errc::access_denied naming the component that fails.
Result<Fd> open_root_dir(const std::string& path);
// A regular file `name` (one component) in root-owned `dir`, owned by root, writable by no one
// else, at most `max_bytes`, read whole: O_NOFOLLOW|O_NONBLOCK. Errc::not_found if absent.
Result<std::string> read_root_file(int dir, const std::string& name, std::size_t max_bytes);
// Subdirectory `name` of root-owned `dir`, itself root-owned and not writable by others (O_PATH).
Result<Fd> open_root_subdir(int dir, const std::string& name);

// Labels containers from cgroup paths and the engines' state. Not thread-safe: pidnsd's loop owns it.
class EngineState {
public:
    explicit EngineState(EngineRoots roots = {});

    // The outermost container of a cgroup path: a pattern's (container_of) completed with its
    // engine's names, or a candidate's (container_candidates) that an engine's state knows.
    std::optional<ContainerLabel> label(std::string_view cgroup_path);

    struct Stats {
        std::uint64_t lookups = 0;  // reads of an engine's state (cache misses)
        std::uint64_t refused = 0;  // files or directories not owned by root, or too large
    };
    [[nodiscard]] const Stats& stats() const noexcept { return stats_; }

    // Bounds: a lookup's answer is kept this long (a container id can be reused by ctr), and at
    // most this many are kept (then all are dropped).
    static constexpr std::chrono::seconds kTtl{5};
    static constexpr std::size_t kMaxCached = 4096;
    static constexpr std::size_t kMaxConfigBytes = 1u << 20;     // config.v2.json, config.json
    static constexpr std::size_t kMaxStorageBytes = 16u << 20;   // containers.json
    static constexpr std::size_t kMaxNamespaces = 64;            // containerd namespaces searched

private:
    struct Found {
        ContainerEngine engine{};
        EngineNames names;
        bool cri = false;
    };
    // The engine's state of (engine, namespace, id): nullopt if none knows it. Cached.
    std::optional<Found> lookup(std::optional<ContainerEngine> engine, const std::string& ns, const std::string& id);
    std::optional<Found> read(std::optional<ContainerEngine> engine, const std::string& ns, const std::string& id);
    std::optional<EngineNames> docker(const std::string& id);
    std::optional<EngineNames> podman(const std::string& id);
    std::optional<OciNames> containerd(const std::string& ns, const std::string& id);
    std::optional<OciNames> crio(const std::string& id);
    // A root's directory, or nullopt (refusals counted).
    std::optional<Fd> root(const std::string& path);
    std::optional<std::string> file(int dir, const std::string& name, std::size_t max);

    EngineRoots roots_;
    struct Cached {
        std::chrono::steady_clock::time_point at;
        std::optional<Found> found;
    };
    std::unordered_map<std::string, Cached> cache_;
    // containers.json by path, with what identifies its version (inode, size, mtime).
    struct Storage {
        std::uint64_t ino = 0, size = 0;
        std::int64_t mtime_ns = 0;
        std::unordered_map<std::string, std::string> names;
    };
    std::map<std::string, Storage> storage_;
    Stats stats_;
};

}  // namespace pidns
