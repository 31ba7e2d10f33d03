// The engine tests' helpers: engines.env, engine commands, containers removed at the end.
#include "engines.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace pidns::enginetest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::map<std::string, std::string>& env() {
    static const std::map<std::string, std::string> vars = [] {
        const char* path = std::getenv("PIDNS_ENGINES_ENV");
        if (!path || !*path)
            throw std::runtime_error(
                "PIDNS_ENGINES_ENV is not set: run the engine tests with ctest (its fixture starts the engines), "
                "or tests/engines/engines.sh up DIR and PIDNS_ENGINES_ENV=DIR/engines.env");
        std::ifstream in(path);
        if (!in) throw std::runtime_error(std::string("cannot read ") + path + ": did tests/engines/engines.sh up run?");
        std::map<std::string, std::string> m;
        for (std::string line; std::getline(in, line);) {
            const auto eq = line.find('=');
            if (eq == std::string::npos || eq == 0) continue;
            m[line.substr(0, eq)] = line.substr(eq + 1);
        }
        for (const auto& [k, v] : m)
            if (!k.starts_with("ENGINE_")) ::setenv(k.c_str(), v.c_str(), 1);
        return m;
    }();
    return vars;
}

std::string var(const std::string& key) {
    const auto& m = env();
    auto it = m.find(key);
    if (it == m.end()) throw std::runtime_error("engines.env has no " + key);
    return it->second;
}

std::string skipped(const std::string& engine) {
    const auto& m = env();
    auto it = m.find("ENGINE_" + engine);
    if (it == m.end()) return "engines.sh did not report on it";
    if (it->second == "ok") return "";
    return it->second.starts_with("skip:") ? it->second.substr(5) : it->second;
}

std::string engine_missing(const std::string& engine) {
    const auto why = skipped(engine);
    return why.empty() ? "" : engine + " is not up: " + why;
}

std::vector<std::string> daemon_args() {
    return {"--container-state=docker:" + var("DOCKER_ROOT"), "--container-state=podman:" + var("PODMAN_ROOT"),
            "--container-state=containerd:" + var("CONTAINERD_STATE")};
}

harness::CmdResult attempt(const Argv& argv) {
    (void)env();
    return harness::run(argv, 60s);
}

std::string must(const Argv& argv) {
    auto r = attempt(argv);
    if (r.status != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw std::runtime_error(cmd + ": exit " + std::to_string(r.status) + ": " + r.err + r.out);
    }
    return r.out;
}

Argv as_rootless(const Argv& argv) {
    const auto user = var("ROOTLESS_USER"), home = var("ROOTLESS_HOME");
    Argv out = {"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "env", "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "XDG_RUNTIME_DIR=" + home + "/run",
                "CONTAINERS_CONF=" + home + "/containers.conf", "CONTAINERS_STORAGE_CONF=" + home + "/storage.conf",
                "CONTAINERS_REGISTRIES_CONF=" + var("CONTAINERS_REGISTRIES_CONF")};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

nlohmann::json inspect(const std::string& engine, const std::string& name) {
    auto j = nlohmann::json::parse(must(engine == "podman-rootless" ? as_rootless({"podman", "inspect", name})
                                                                    : Argv{engine, "inspect", name}));
    if (!j.is_array() || j.empty()) throw std::runtime_error(engine + " inspect " + name + ": no object");
    return j.front();
}

namespace {

pid_t to_pid(const std::string& s, const std::string& what) {
    std::istringstream in(s);
    long v = 0;
    if (!(in >> v) || v <= 0) throw std::runtime_error(what + ": no pid in \"" + s + "\"");
    return static_cast<pid_t>(v);
}

}  // namespace

pid_t docker_pid(const std::string& name) { return inspect("docker", name)["State"]["Pid"].get<pid_t>(); }
pid_t podman_pid(const std::string& name) { return inspect("podman", name)["State"]["Pid"].get<pid_t>(); }
pid_t podman_rootless_pid(const std::string& name) {
    return inspect("podman-rootless", name)["State"]["Pid"].get<pid_t>();
}

pid_t ctr_pid(const std::string& ns, const std::string& id) {
    std::istringstream in(must({"ctr", "-n", ns, "tasks", "ls"}));
    std::string line;
    std::getline(in, line);  // TASK PID STATUS
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string task, pid, status;
        if (f >> task >> pid >> status && task == id) return to_pid(pid, "ctr tasks ls");
    }
    throw std::runtime_error("ctr tasks ls lists no task " + id);
}

pid_t lxc_pid(const std::string& name) {
    return to_pid(must({"lxc-info", "-P", var("LXC_PATH"), "-n", name, "-p", "-H"}), "lxc-info -p");
}

std::string comm_of(pid_t pid) {
    auto s = harness::read_file("/proc/" + std::to_string(pid) + "/comm");
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

std::string cgroup_of(pid_t pid) {
    std::istringstream in(harness::read_file("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string v2;
    for (std::string line; std::getline(in, line);) {
        const auto c1 = line.find(':');
        const auto c2 = line.find(':', c1 + 1);
        if (c1 == std::string::npos || c2 == std::string::npos) continue;
        const auto controllers = line.substr(c1 + 1, c2 - c1 - 1);
        if (controllers == "name=systemd") return line.substr(c2 + 1);
        if (line.starts_with("0::")) v2 = line.substr(c2 + 1);
    }
    return v2;
}

Container::Container(std::string engine, std::string ns, std::string name)
    : engine_(std::move(engine)), ns_(std::move(ns)), name_(std::move(name)) {}

Container::Container(Container&& o) noexcept
    : id(std::move(o.id)), engine_(std::move(o.engine_)), ns_(std::move(o.ns_)), name_(std::move(o.name_)),
      pid_(o.pid_), removed_(o.removed_) {
    o.removed_ = true;
}

Container::~Container() {
    try {
        remove();
    } catch (...) {
    }
}

namespace {
const std::string& image() {
    static const std::string i = var("IMAGE");
    return i;
}
}  // namespace

Container Container::docker(const std::string& name, const Argv& args) {
    (void)attempt({"docker", "rm", "-f", name});  // a previous run's, if it was interrupted
    Container c("docker", "", name);
    Argv argv = {"docker", "run", "-d", "--name", name};
    bool network = false;
    for (const auto& a : args) network = network || a.starts_with("--network");
    if (!network) argv.push_back("--network=none");
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {image(), "sleep", "1000"});
    c.id = must(argv);
    while (!c.id.empty() && c.id.back() == '\n') c.id.pop_back();
    c.pid_ = docker_pid(name);
    return c;
}

Container Container::podman(const std::string& name, const Argv& args) {
    (void)attempt({"podman", "rm", "-f", "-t", "0", name});
    Container c("podman", "", name);
    Argv argv = {"podman", "run", "-d", "--name", name};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {image(), "sleep", "1000"});
    c.id = must(argv);
    while (!c.id.empty() && c.id.back() == '\n') c.id.pop_back();
    c.pid_ = podman_pid(name);
    return c;
}

Container Container::podman_rootless(const std::string& name) {
    (void)attempt(as_rootless({"podman", "rm", "-f", "-t", "0", name}));
    Container c("podman-rootless", "", name);
    c.id = must(as_rootless({"podman", "run", "-d", "--name", name, image(), "sleep", "1000"}));
    while (!c.id.empty() && c.id.back() == '\n') c.id.pop_back();
    c.pid_ = podman_rootless_pid(name);
    return c;
}

Container Container::ctr(const std::string& ns, const std::string& id, const Argv& args) {
    (void)attempt({"ctr", "-n", ns, "tasks", "kill", "-s", "KILL", id});
    (void)attempt({"ctr", "-n", ns, "tasks", "rm", "-f", id});
    (void)attempt({"ctr", "-n", ns, "containers", "rm", id});
    Container c("containerd", ns, id);
    Argv argv = {"ctr", "-n", ns, "run", "-d"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {image(), id, "sleep", "1000"});
    must(argv);
    c.id = id;
    c.pid_ = ctr_pid(ns, id);
    return c;
}

Container Container::lxc(const std::string& name) {
    const fs::path dir = fs::path(var("LXC_PATH")) / name;
    (void)attempt({"lxc-stop", "-P", var("LXC_PATH"), "-n", name, "-k"});
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "config") << "lxc.uts.name = " << name << "\n"
                                  << "lxc.rootfs.path = dir:" << var("ROOTFS") << "\n"
                                  << "lxc.net.0.type = empty\n"
                                  << "lxc.init.cmd = /bin/sleep 1000\n"
                                  << "lxc.apparmor.profile = unconfined\n"
                                  << "lxc.log.file = " << (dir / "log").string() << "\n";
    Container c("lxc", "", name);
    must({"lxc-start", "-P", var("LXC_PATH"), "-n", name, "-d"});
    c.id = name;
    // lxc-start -d returns once the container runs; lxc-info then gives its init.
    for (int i = 0; i < 100 && c.pid_ == 0; ++i) {
        try {
            c.pid_ = lxc_pid(name);
        } catch (const std::exception&) {
            std::this_thread::sleep_for(50ms);
        }
    }
    if (c.pid_ == 0) c.pid_ = lxc_pid(name);
    return c;
}

void Container::remove() {
    if (removed_) return;
    removed_ = true;
    if (engine_ == "docker") {
        must({"docker", "rm", "-f", name_});
    } else if (engine_ == "podman") {
        must({"podman", "rm", "-f", "-t", "0", name_});
    } else if (engine_ == "podman-rootless") {
        must(as_rootless({"podman", "rm", "-f", "-t", "0", name_}));
    } else if (engine_ == "containerd") {
        (void)attempt({"ctr", "-n", ns_, "tasks", "kill", "-s", "KILL", name_});
        for (int i = 0; i < 100; ++i) {
            if (attempt({"ctr", "-n", ns_, "tasks", "rm", name_}).status == 0) break;
            std::this_thread::sleep_for(50ms);
        }
        must({"ctr", "-n", ns_, "containers", "rm", name_});
    } else if (engine_ == "lxc") {
        must({"lxc-stop", "-P", var("LXC_PATH"), "-n", name_, "-k"});
        fs::remove_all(fs::path(var("LXC_PATH")) / name_);
    }
}

PodmanPod::PodmanPod(const std::string& pod_name, const Argv& args) : name(pod_name) {
    (void)attempt({"podman", "pod", "rm", "-f", "-t", "0", pod_name});
    Argv argv = {"podman", "pod", "create", "--name", pod_name};
    argv.insert(argv.end(), args.begin(), args.end());
    id = must(argv);
    while (!id.empty() && id.back() == '\n') id.pop_back();
    must({"podman", "pod", "start", pod_name});
}

PodmanPod::~PodmanPod() { (void)attempt({"podman", "pod", "rm", "-f", "-t", "0", name}); }

}  // namespace pidns::enginetest
