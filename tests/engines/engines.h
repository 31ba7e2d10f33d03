// The engine tests' side of tests/engines/engines.sh: its engines.env (how to reach each engine,
// which are up and why one is not), the engines' own commands and answers (inspect, ctr, lxc-info),
// and containers removed at the end of a test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"
#include "skip.h"

namespace pidns::enginetest {

using harness::Argv;

// The variables of $PIDNS_ENGINES_ENV (DIR/engines.env), exported into this process's environment
// on first use so that docker, podman, ctr and lxc-* reach the private engines.
const std::map<std::string, std::string>& env();
std::string var(const std::string& key);

// "" when `engine` (docker, podman, containerd, lxc) is up, else why engines.sh skipped it.
std::string skipped(const std::string& engine);
// The same as a prerequisite (tests/harness/prerequisites.h): "" or "ENGINE is not up: why".
std::string engine_missing(const std::string& engine);

// pidnsd's arguments for the engines' private state directories (--container-state).
std::vector<std::string> daemon_args();

// Runs an engine command (60 s at most); throws std::runtime_error with its stderr on failure.
std::string must(const Argv& argv);
harness::CmdResult attempt(const Argv& argv);

// The command line that runs argv as engines.sh's rootless podman user, in its environment.
Argv as_rootless(const Argv& argv);

// `docker inspect` / `podman inspect` of one container: the first object of the array.
nlohmann::json inspect(const std::string& engine, const std::string& name);

// The host pid of a container's init, as its engine tells it (inspect .State.Pid, ctr task ls,
// lxc-info -p).
pid_t docker_pid(const std::string& name);
pid_t podman_pid(const std::string& name);
pid_t podman_rootless_pid(const std::string& name);
pid_t ctr_pid(const std::string& ns, const std::string& id);
pid_t lxc_pid(const std::string& name);

// /proc/PID/comm (the oracle of Command), "" if gone.
std::string comm_of(pid_t pid);
// The cgroup of the name=systemd v1 hierarchy if mounted, else v2 (/proc/PID/cgroup), as pidnsd reads it.
std::string cgroup_of(pid_t pid);

// A container, removed (with its processes killed) on destruction.
class Container {
public:
    // docker run -d --name NAME [--network none unless `args` sets one] ARGS IMAGE sleep 1000
    static Container docker(const std::string& name, const Argv& args = {});
    // podman run -d --name NAME ARGS IMAGE sleep 1000 (no network: containers.conf netns="none")
    static Container podman(const std::string& name, const Argv& args = {});
    // podman run -d --name NAME IMAGE sleep 1000 as the unprivileged user of engines.sh
    static Container podman_rootless(const std::string& name);
    // ctr -n NS run -d ARGS IMAGE ID sleep 1000
    static Container ctr(const std::string& ns, const std::string& id, const Argv& args = {});
    // An LXC container NAME on the busybox root filesystem, no network, init `sleep 1000`.
    static Container lxc(const std::string& name);

    Container(Container&& o) noexcept;
    Container& operator=(Container&&) = delete;
    Container(const Container&) = delete;
    ~Container();
    // Removes it now (docker rm -f, podman rm -f -t 0, ctr task kill + rm, lxc-stop -k).
    void remove();

    [[nodiscard]] const std::string& engine() const noexcept { return engine_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }  // the containerd id for ctr
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }                // its init, host pid
    std::string id;  // the engine's id (64 hex digits for docker and podman, the name for ctr and lxc)

private:
    Container(std::string engine, std::string ns, std::string name);
    std::string engine_, ns_, name_;
    pid_t pid_ = 0;
    bool removed_ = false;
};

// A podman pod (with its infra container), removed on destruction.
class PodmanPod {
public:
    explicit PodmanPod(const std::string& name, const Argv& args = {});
    ~PodmanPod();
    PodmanPod(const PodmanPod&) = delete;
    PodmanPod& operator=(const PodmanPod&) = delete;
    std::string id, name;
};

// An engine that is up, or the test is skipped (a reported skip, skip.h) with the reason engines.sh
// gave for not starting it.
#define PIDNS_REQUIRE_ENGINE(engine) PIDNS_REQUIRE_PREREQUISITE(::pidns::enginetest::engine_missing(engine))

}  // namespace pidns::enginetest
