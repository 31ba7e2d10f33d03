// pidnsd against real container engines (docker, podman, containerd with ctr, LXC, started
// privately by tests/engines/engines.sh): for each container the engine's own answer (inspect,
// ctr containers info, ctr tasks ls, lxc-info) and /proc against DescribeProcess and
// DescribeNamespace, pidnsctl's container:ID-prefix and container:NAME lookups, containers started
// after pidnsd, stopped ones gone, shared namespaces (--pid/--network container:X, podman pods),
// a CRI-shaped containerd container with Kubernetes annotations, and pidnsctl monitor.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "harness.h"
#include "engines.h"

using namespace pidns::harness;
using namespace pidns::enginetest;
using namespace std::chrono_literals;
using nlohmann::json;
using pidns::client::Labels;
using pidns::client::NamespaceDescription;

namespace {

// A private bus and pidnsd reading the engines' private state directories.
struct Pidnsd {
    PrivateBus bus;
    Daemon daemon{bus, concat(daemon_args(), extra_daemon_args())};
    Client client{bus.address()};
};

std::string basename_of(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// What pidnsd must say of a container: the engine's own answer (and /proc for the cgroup).
struct Expect {
    std::string engine, id, name, pod_id, pod_uid, pod_name, pod_namespace, command, cgroup;
};

Expect expect_docker(const Container& k) {
    const auto j = inspect("docker", k.name());
    Expect e{"docker", j["Id"], j["Name"], "", "", "", "", basename_of(j["Path"]), ""};
    if (e.name.starts_with('/')) e.name.erase(0, 1);  // docker's .Name is "/NAME"
    const std::string parent = j["HostConfig"]["CgroupParent"];
    e.cgroup = (parent.empty() ? std::string("/docker") : parent) + "/" + e.id;
    return e;
}

Expect expect_podman(const Container& k) {
    const auto j = inspect("podman", k.name());
    Expect e{"podman", j["Id"], j["Name"], j.value("Pod", ""), "", "", "", basename_of(j["Path"]), ""};
    e.cgroup = j["State"].value("CgroupPath", "");
    return e;
}

// ctr containers info: the containerd id, the OCI spec's cgroupsPath, args and annotations.
Expect expect_ctr(const std::string& ns, const Container& k) {
    const auto j = json::parse(must({"ctr", "-n", ns, "containers", "info", k.name()}));
    const auto& spec = j["Spec"];
    const auto annotations = spec.value("annotations", json::object());
    auto a = [&](const char* key) { return annotations.value(key, std::string()); };
    Expect e{"containerd", j["ID"], a("io.kubernetes.cri.container-name"), a("io.kubernetes.cri.sandbox-id"),
             a("io.kubernetes.cri.sandbox-uid"), a("io.kubernetes.cri.sandbox-name"),
             a("io.kubernetes.cri.sandbox-namespace"), basename_of(spec["process"]["args"][0]),
             spec["linux"]["cgroupsPath"]};
    if (e.name.empty()) e.name = e.id;  // ctr names a container by its id
    return e;
}

Expect expect_lxc(const Container& k) {
    const auto info = must({"lxc-info", "-P", var("LXC_PATH"), "-n", k.name()});
    std::string name;
    std::istringstream in(info);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("Name:")) name = line.substr(line.find_first_not_of(" \t", 5));
    return {"lxc", name, name, "", "", "", "", "sleep", "/lxc.payload." + name};
}

void check_labels(const Labels& l, const Expect& e) {
    CHECK(l.container_engine == e.engine);
    CHECK(l.container_id == e.id);
    CHECK(l.container_name == e.name);
    CHECK(l.pod_id == e.pod_id);
    CHECK(l.pod_uid == e.pod_uid);
    CHECK(l.pod_name == e.pod_name);
    CHECK(l.pod_namespace == e.pod_namespace);
}

const std::vector<std::string> kTypes = {"pid", "mnt", "uts", "ipc", "net", "cgroup"};

std::string ns_link(pid_t pid, const std::string& type) {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + type, ec).string();
}

// The container's process and every namespace it does not share with this test (the host's):
// labelled as its engine says, with its command and cgroup.
void check_container(Client& c, const Container& k, const Expect& e) {
    INFO(k.engine() << " container " << k.name() << ", init " << k.pid());
    wait_comm(k.pid(), e.command);
    const auto d = c.describe_process(static_cast<std::uint32_t>(k.pid()));
    check_labels(d.labels, e);
    CHECK(d.labels.command == e.command);
    CHECK(d.labels.cgroup == cgroup_of(k.pid()));
    if (!e.cgroup.empty()) CHECK(d.labels.cgroup == e.cgroup);
    for (const auto& type : kTypes) {
        if (ns_link(k.pid(), type) == ns_link(getpid(), type)) continue;
        INFO(type << " namespace " << ns_link(k.pid(), type));
        const auto n = c.describe_namespace(expected_ns_id(k.pid(), type.c_str()));
        check_labels(n.labels, e);
        CHECK(n.labels.cgroup == d.labels.cgroup);
        CHECK(n.sharers.empty());
    }
}

// pidnsctl translate, ps and tree with container:ID-prefix and container:NAME: the container's
// pid namespace, whose pid 1 is the init its engine names.
void check_pidnsctl(const PrivateBus& bus, const Container& k, const std::string& name) {
    std::vector<std::string> refs = {"container:" + name};
    if (k.id.size() == 64) refs.push_back("container:" + k.id.substr(0, 12));
    for (const auto& ref : refs) {
        INFO("pidnsctl with " << ref);
        auto t = pidnsctl(bus.address(), {"translate", "1", "--from", ref});
        INFO(t.err);
        CHECK(t.status == 0);
        CHECK(t.out == std::to_string(k.pid()) + "\n");
        auto ps = pidnsctl(bus.address(), {"--json=short", "ps", ref});
        REQUIRE(ps.status == 0);
        std::set<std::uint32_t> pids;
        for (const auto& row : json::parse(ps.out)) pids.insert(row.at("pid").get<std::uint32_t>());
        CHECK(pids.count(static_cast<std::uint32_t>(k.pid())) == 1);
        auto tree = pidnsctl(bus.address(), {"--json=short", "tree", ref});
        REQUIRE(tree.status == 0);
        const auto roots = json::parse(tree.out);
        REQUIRE(roots.size() == 1);
        CHECK(roots[0].at("id").get<std::uint64_t>() == expected_ns_id(k.pid(), "pid"));
        CHECK(roots[0].at("init_nspid").front().get<pid_t>() == k.pid());
    }
}

// A container removed: its pid namespace leaves the index (NamespaceRemoved), DescribeNamespace
// no longer knows it, and container:NAME finds nothing (exit 4).
void check_gone(Pidnsd& p, Container& k, const std::string& name) {
    const auto pidns = expected_ns_id(k.pid(), "pid");
    p.client.subscribe();
    (void)p.client.describe_namespace(pidns);  // told of it: it hears of its removal
    k.remove();
    CHECK(p.client.wait_signal(false, pidns, 30s));
    CHECK(error_of([&] { p.client.describe_namespace(pidns); }) == pidns::bus::kErrorNoSuchNamespace);
    const auto r = pidnsctl(p.bus.address(), {"translate", "1", "--from", "container:" + name});
    INFO(r.err);
    CHECK(r.status == 4);
}

// Starts a container on a thread while this one describes every pid namespace pidnsd announces,
// at once: the container's must be labelled in the description made at its NamespaceAdded.
//
// runc's middle process unshares the pid namespace and clones the container's init into it. pidnsd
// can read the middle process (which holds the namespace for its children) a loop turn before it
// applies the init's fork event (held up to 1 ms), so the namespace can be announced while no
// process it knows is in it: it has no representative then, and no labels (DescribeNamespace's
// rule). Such a namespace is described again at once, until the first description with a
// representative, the one checked: the engine's state must name the container as soon as a
// process is in it.
template <class Start>
NamespaceDescription described_at_first_signal(Client& c, std::optional<Container>& k, Start start) {
    c.subscribe();
    std::map<std::uint64_t, NamespaceDescription> at_signal;
    std::set<std::uint64_t> memberless;  // announced, described with no member yet
    std::atomic<bool> done{false};
    std::exception_ptr failed;
    std::thread t([&] {
        try {
            k.emplace(start());
        } catch (...) {
            failed = std::current_exception();
        }
        done = true;
    });
    std::size_t seen = 0;
    auto describe = [&](std::uint64_t id) {
        try {
            auto d = c.describe_namespace(id);
            if (d.representative_pid == 0) {
                memberless.insert(id);
                return;
            }
            memberless.erase(id);
            at_signal[id] = std::move(d);
        } catch (const pidns::client::Error&) {  // gone already (another test's, or runc's)
            memberless.erase(id);
        }
    };
    auto drain = [&] {
        for (const auto id : std::vector<std::uint64_t>(memberless.begin(), memberless.end())) describe(id);
        const auto sigs = c.signals();
        for (; seen < sigs.size(); ++seen) {
            const auto& s = sigs[seen];
            if (!s.added || s.type != "pid" || at_signal.count(s.id)) continue;
            describe(s.id);
        }
    };
    while (!done) {
        drain();
        std::this_thread::sleep_for(1ms);
    }
    t.join();
    if (failed) std::rethrow_exception(failed);
    const auto pidns = expected_ns_id(k->pid(), "pid");
    REQUIRE(c.wait_signal(true, pidns, 30s));
    // Its init runs by now: a namespace described with no member yet gets one within the fork grace.
    for (int i = 0; i < 1000 && !at_signal.count(pidns); ++i) {
        drain();
        if (!at_signal.count(pidns)) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(at_signal.count(pidns) == 1);
    return at_signal.at(pidns);
}

bool has_holder(const NamespaceDescription& n, const std::string& path) {
    for (const auto& h : n.holders)
        if (h.kind == "mount" && h.path == path) return true;
    return false;
}

bool lists_sharer(const NamespaceDescription& n, const std::string& engine, const std::string& id) {
    for (const auto& s : n.sharers)
        if (s.engine == engine && s.id == id) return true;
    return false;
}

}  // namespace

TEST_CASE("every engine is up, or skipped with the reason, and at most one is skipped") {
    std::size_t skips = 0;
    for (const char* e : {"docker", "podman", "containerd", "lxc", "podman_rootless"}) {
        const auto why = skipped(e);
        if (why.empty()) continue;
        ++skips;
        WARN(e << " SKIPPED on this machine: " << why);
        CHECK(why.size() > 10);  // a reason, not a bare word
    }
    CHECK(skips <= 1);
}

TEST_CASE("docker: engine, id, name, command and cgroup as docker inspect gives them, before and after pidnsd started") {
    PIDNS_REQUIRE_ENGINE("docker");
    auto d1 = Container::docker("pidns-d1");
    Pidnsd p;
    const auto e1 = expect_docker(d1);
    check_container(p.client, d1, e1);
    // docker's own bind mount of the container's net namespace is one of its holders.
    const auto key = inspect("docker", d1.name())["NetworkSettings"]["SandboxKey"].get<std::string>();
    REQUIRE(!key.empty());
    CHECK(has_holder(p.client.describe_namespace(expected_ns_id(d1.pid(), "net")), key));
    check_pidnsctl(p.bus, d1, "pidns-d1");

    std::optional<Container> d2;
    const auto first = described_at_first_signal(p.client, d2, [] { return Container::docker("pidns-d2"); });
    const auto e2 = expect_docker(*d2);
    INFO("described at its NamespaceAdded");
    check_labels(first.labels, e2);
    check_container(p.client, *d2, e2);
    check_pidnsctl(p.bus, *d2, "pidns-d2");
    check_gone(p, d1, "pidns-d1");
    check_gone(p, *d2, "pidns-d2");
}

TEST_CASE("docker: a container below --cgroup-parent /ci is named from docker's state") {
    PIDNS_REQUIRE_ENGINE("docker");
    auto d = Container::docker("pidns-dci", {"--cgroup-parent=/ci"});
    Pidnsd p;
    const auto e = expect_docker(d);
    REQUIRE(e.cgroup == "/ci/" + d.id);
    check_container(p.client, d, e);
    check_pidnsctl(p.bus, d, "pidns-dci");
}

TEST_CASE("docker: a pid or net namespace joined with --pid/--network container:X keeps X's label and lists who joined it") {
    PIDNS_REQUIRE_ENGINE("docker");
    auto d4 = Container::docker("pidns-d4");
    auto d5 = Container::docker("pidns-d5", {"--pid=container:pidns-d4"});
    auto d6 = Container::docker("pidns-d6", {"--network=container:pidns-d4"});
    auto d7 = Container::docker("pidns-d7", {"--pid=host"});
    Pidnsd p;
    auto& c = p.client;
    const auto e4 = expect_docker(d4), e5 = expect_docker(d5), e6 = expect_docker(d6), e7 = expect_docker(d7);
    REQUIRE(ns_link(d5.pid(), "pid") == ns_link(d4.pid(), "pid"));
    REQUIRE(ns_link(d6.pid(), "net") == ns_link(d4.pid(), "net"));
    REQUIRE(ns_link(d7.pid(), "pid") == ns_link(getpid(), "pid"));
    wait_comm(d5.pid(), "sleep");
    // Each process by its own container.
    check_labels(c.describe_process(static_cast<std::uint32_t>(d5.pid())).labels, e5);
    check_labels(c.describe_process(static_cast<std::uint32_t>(d6.pid())).labels, e6);
    check_labels(c.describe_process(static_cast<std::uint32_t>(d7.pid())).labels, e7);
    // d4's pid namespace: d4's, with d5 as a sharer; its net namespace: d4's, with d6.
    const auto pidns = c.describe_namespace(expected_ns_id(d4.pid(), "pid"));
    check_labels(pidns.labels, e4);
    CHECK(lists_sharer(pidns, "docker", d5.id));
    CHECK(!lists_sharer(pidns, "docker", d4.id));
    const auto netns = c.describe_namespace(expected_ns_id(d4.pid(), "net"));
    check_labels(netns.labels, e4);
    CHECK(lists_sharer(netns, "docker", d6.id));
    // The host's pid namespace is not d7's.
    const auto host = c.describe_namespace(expected_ns_id(getpid(), "pid"));
    CHECK(host.labels.container_id != d7.id);
    CHECK(lists_sharer(host, "docker", d7.id));
    // container:d4 and container:d5 both find d4's pid namespace (d5 runs in it).
    for (const auto& ref : std::vector<std::string>{"container:pidns-d4", "container:pidns-d5", "container:" + d5.id.substr(0, 12)}) {
        INFO(ref);
        const auto r = pidnsctl(p.bus.address(), {"translate", "1", "--from", ref});
        INFO(r.err);
        CHECK(r.status == 0);
        CHECK(r.out == std::to_string(d4.pid()) + "\n");
    }
}

TEST_CASE("podman: a container outside any pod: engine, id, name, command and cgroup as podman inspect gives them") {
    PIDNS_REQUIRE_ENGINE("podman");
    auto p1 = Container::podman("pidns-p1");
    Pidnsd p;
    const auto e = expect_podman(p1);
    REQUIRE(e.cgroup == "/libpod_parent/libpod-" + p1.id);
    check_container(p.client, p1, e);
    check_pidnsctl(p.bus, p1, "pidns-p1");
    // `ip netns attach`: a name for its net namespace, as ip netns list shows it.
    must({"ip", "netns", "attach", "pidns-p1-net", std::to_string(p1.pid())});
    const auto n = p.client.describe_namespace(expected_ns_id(p1.pid(), "net"));
    (void)attempt({"ip", "netns", "delete", "pidns-p1-net"});
    CHECK(n.netns_names == std::vector<std::string>{"pidns-p1-net"});
    check_labels(n.labels, e);

    std::optional<Container> p2;
    const auto first = described_at_first_signal(p.client, p2, [] { return Container::podman("pidns-p2"); });
    check_labels(first.labels, expect_podman(*p2));
    check_gone(p, p1, "pidns-p1");
    check_gone(p, *p2, "pidns-p2");
}

TEST_CASE("podman: a pod's infra container and members carry the pod id, and the pod's shared namespaces the infra's label with the members as sharers") {
    PIDNS_REQUIRE_ENGINE("podman");
    PodmanPod pod("pidns-pod1");
    auto m1 = Container::podman("pidns-pm1", {"--pod=pidns-pod1"});
    auto m2 = Container::podman("pidns-pm2", {"--pod=pidns-pod1"});
    Pidnsd p;
    auto& c = p.client;
    const auto info = json::parse(must({"podman", "pod", "inspect", pod.name}));
    const std::string infra_id = info["InfraContainerID"];
    const auto infra = inspect("podman", infra_id);
    const std::string infra_name = infra["Name"];
    const auto infra_pid = infra["State"]["Pid"].get<pid_t>();
    const Expect einfra{"podman", infra_id, infra_name, pod.id, "", "", "", basename_of(infra["Path"]),
                        infra["State"].value("CgroupPath", "")};
    REQUIRE(einfra.cgroup == "/libpod_parent/" + pod.id + "/libpod-" + infra_id);
    const auto e1 = expect_podman(m1), e2 = expect_podman(m2);
    CHECK(e1.pod_id == pod.id);
    // Each member by itself (its own pid and mnt namespaces).
    for (const auto* k : {&m1, &m2}) {
        const auto& e = k == &m1 ? e1 : e2;
        wait_comm(k->pid(), e.command);
        check_labels(c.describe_process(static_cast<std::uint32_t>(k->pid())).labels, e);
        for (const char* type : {"pid", "mnt"}) check_labels(c.describe_namespace(expected_ns_id(k->pid(), type)).labels, e);
    }
    check_labels(c.describe_process(static_cast<std::uint32_t>(infra_pid)).labels, einfra);
    // The namespaces the pod shares (net, ipc, uts): made by the infra container, joined by both.
    for (const char* type : {"net", "ipc", "uts"}) {
        INFO(type << " namespace of the pod");
        REQUIRE(ns_link(m1.pid(), type) == ns_link(infra_pid, type));
        const auto n = c.describe_namespace(expected_ns_id(infra_pid, type));
        check_labels(n.labels, einfra);
        CHECK(lists_sharer(n, "podman", m1.id));
        CHECK(lists_sharer(n, "podman", m2.id));
    }
    // container:NAME for a member and for the infra container.
    check_pidnsctl(p.bus, m1, "pidns-pm1");
    const auto r = pidnsctl(p.bus.address(), {"translate", "1", "--from", "container:" + infra_name});
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == std::to_string(infra_pid) + "\n");
}

TEST_CASE("podman rootless: an unprivileged user's container, described to root and to that user as the kernel allows") {
    PIDNS_REQUIRE_ENGINE("podman_rootless");
    auto r = Container::podman_rootless("pidns-r1");
    Pidnsd p;
    const auto j = inspect("podman-rootless", r.name());
    wait_comm(r.pid(), basename_of(j["Path"]));
    const auto uid = static_cast<std::uint32_t>(std::stoul(must({"id", "-u", var("ROOTLESS_USER")})));
    const auto d = p.client.describe_process(static_cast<std::uint32_t>(r.pid()));
    CHECK(d.labels.command == basename_of(j["Path"]));
    CHECK(d.labels.cgroup == cgroup_of(r.pid()));
    // podman made no cgroup of its own (cgroup v1 name=systemd, no systemd): its container runs in
    // its user's cgroup, so nothing names it; where podman makes libpod-<id>.scope below the user's
    // session, the pattern does, and the name stays out (the user's own state is not read).
    if (d.labels.cgroup.find("libpod-" + r.id) == std::string::npos) {
        CHECK(d.labels.container_engine.empty());
    } else {
        CHECK(d.labels.container_engine == "podman");
        CHECK(d.labels.container_name.empty());
    }
    // Its user namespace: the user's (podman's), one level below the host's.
    const auto userns = p.client.describe_namespace(expected_ns_id(r.pid(), "user"));
    CHECK(userns.ns.owner_uid == uid);
    CHECK(userns.ns.level == 1);
    // The user itself sees its container's pid 1 through pidnsctl, nobody does not (as the kernel says).
    const Argv as_user = {"setpriv", "--reuid=" + var("ROOTLESS_USER"), "--regid=" + var("ROOTLESS_USER"), "--init-groups"};
    REQUIRE(open_ns_pid_as(as_user, r.pid()).status == 0);
    REQUIRE(open_ns_pid_as(kAsNobody, r.pid()).status != 0);
    const Argv status = {PIDNSCTL_BIN, "--address=" + p.bus.address(), "--json=short", "status", std::to_string(r.pid())};
    const auto mine = run(concat(as_user, status));
    INFO(mine.err);
    REQUIRE(mine.status == 0);
    CHECK(json::parse(mine.out).at("nspid").back() == 1);
    CHECK(run(concat(kAsNobody, status)).status == 5);
    check_gone(p, r, "pidns-r1");
}

TEST_CASE("containerd: a ctr container (/default/NAME) and a CRI-shaped one below kubepods with Kubernetes annotations") {
    PIDNS_REQUIRE_ENGINE("containerd");
    auto c1 = Container::ctr("default", "pidns-c1");
    const std::string uid = "6d3c2b9a-8e7f-4a1d-9c2b-3a4e5f607182";
    const std::string id(64, 'c'), sandbox(64, 'a');
    auto cri = Container::ctr(
        "k8s.io", id,
        {"--cgroup=/kubepods/besteffort/pod" + uid + "/" + id, "--annotation=io.kubernetes.cri.container-type=container",
         "--annotation=io.kubernetes.cri.container-name=app", "--annotation=io.kubernetes.cri.sandbox-id=" + sandbox,
         "--annotation=io.kubernetes.cri.sandbox-name=web-0", "--annotation=io.kubernetes.cri.sandbox-namespace=shop",
         "--annotation=io.kubernetes.cri.sandbox-uid=" + uid});
    Pidnsd p;
    const auto e1 = expect_ctr("default", c1);
    REQUIRE(e1.cgroup == "/default/pidns-c1");
    check_container(p.client, c1, e1);
    check_pidnsctl(p.bus, c1, "pidns-c1");
    const auto ecri = expect_ctr("k8s.io", cri);
    REQUIRE(ecri.pod_uid == uid);
    REQUIRE(ecri.name == "app");
    check_container(p.client, cri, ecri);

    std::optional<Container> c2;
    const auto first =
        described_at_first_signal(p.client, c2, [] { return Container::ctr("default", "pidns-c2"); });
    check_labels(first.labels, expect_ctr("default", *c2));
    check_gone(p, c1, "pidns-c1");
    check_gone(p, cri, "app");
}

TEST_CASE("lxc: a container's name, command and cgroup as lxc-info gives them, before and after pidnsd started") {
    PIDNS_REQUIRE_ENGINE("lxc");
    auto l1 = Container::lxc("pidns-l1");
    Pidnsd p;
    check_container(p.client, l1, expect_lxc(l1));
    check_pidnsctl(p.bus, l1, "pidns-l1");
    // Started after pidnsd. LXC moves its init into the container's cgroup after cloning it, so
    // the label is checked once lxc-start returned (not at NamespaceAdded).
    auto l2 = Container::lxc("pidns-l2");
    check_container(p.client, l2, expect_lxc(l2));
    check_gone(p, l1, "pidns-l1");
    check_gone(p, l2, "pidns-l2");
}

TEST_CASE("pidnsctl monitor started after containers prints their removal with the label list shows") {
    Pidnsd p;
    const auto subscribers0 = stat_of(p.client, "Subscribers");
    // Containers of every engine that runs, started before the monitor.
    std::vector<Container> ks;
    if (skipped("docker").empty()) ks.push_back(Container::docker("pidns-mon-d"));
    if (skipped("podman").empty()) ks.push_back(Container::podman("pidns-mon-p"));
    if (skipped("containerd").empty()) ks.push_back(Container::ctr("default", "pidns-mon-c"));
    if (skipped("lxc").empty()) ks.push_back(Container::lxc("pidns-mon-l"));
    REQUIRE(!ks.empty());
    for (auto& k : ks) wait_comm(k.pid(), "sleep");
    TempDir dir;
    const std::string out = dir.path() + "/monitor";
    Proc mon({"sh", "-c", "exec " + std::string(PIDNSCTL_BIN) + " --address=" + p.bus.address() + " monitor >" + out});
    for (int i = 0; i < 3000 && stat_of(p.client, "Subscribers") == subscribers0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(stat_of(p.client, "Subscribers") == subscribers0 + 1);
    // A net namespace made now: its "added" line comes after the monitor's snapshot.
    Proc marker({"unshare", "-n", "sleep", "300"});
    wait_comm(marker.pid(), "sleep");
    const auto marker_id = std::to_string(expected_ns_id(marker.pid(), "net"));
    auto lines = [&] {
        std::vector<std::vector<std::string>> out_lines;
        std::istringstream in(read_file(out));
        for (std::string line; std::getline(in, line);) {
            std::istringstream w(line);
            std::vector<std::string> f;
            for (std::string s; w >> s;) f.push_back(s);
            out_lines.push_back(std::move(f));
        }
        return out_lines;
    };
    // "TIMESTAMP EVENT TYPE ID INODE CONTAINER UNIT COMMAND", "-" where there is none.
    auto find = [&](const std::string& event, const std::string& id) -> std::optional<std::vector<std::string>> {
        for (int i = 0; i < 3000; ++i) {
            for (auto& f : lines())
                if (f.size() >= 8 && f[1] == event && f[3] == id) return f;
            std::this_thread::sleep_for(10ms);
        }
        return std::nullopt;
    };
    REQUIRE(find("added", marker_id).has_value());
    // The containers' pid namespaces, as list shows them; then each removed.
    for (auto& k : ks) {
        const auto id = expected_ns_id(k.pid(), "pid");
        struct stat st {};
        REQUIRE(stat(("/proc/" + std::to_string(k.pid()) + "/ns/pid").c_str(), &st) == 0);
        const auto inode = std::to_string(st.st_ino);
        std::string container;
        const auto row = pidnsctl(p.bus.address(), {"--no-legend", "list", "-t", "pid", "-o", "ID,CONTAINER,COMMAND"});
        std::istringstream in(row.out);
        for (std::string line; std::getline(in, line);) {
            std::istringstream w(line);
            std::string rid, rc, rcmd;
            if (w >> rid >> rc >> rcmd && rid == std::to_string(id)) container = rc;
        }
        INFO(k.engine() << " " << k.name() << " pid namespace " << id << ", list shows " << container);
        REQUIRE(!container.empty());
        REQUIRE(container != "-");
        k.remove();
        const auto f = find("removed", std::to_string(id));
        REQUIRE(f.has_value());
        CHECK((*f)[2] == "pid");
        CHECK((*f)[4] == inode);  // as the monitor's snapshot had it
        CHECK((*f)[5] == container);
        CHECK((*f)[6] == "-");
        CHECK((*f)[7] == "sleep");
    }
}
