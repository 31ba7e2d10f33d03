// DescribeProcess, DescribeNamespace and DescribeNamespaces against real cgroups, real `ip netns`
// mounts and the kernel: every container engine's cgroup shape made for real (processes that hold
// new namespaces moved into it), the label following a process to another cgroup, netns names,
// user names, and unprivileged callers who must see no label of what they may not inspect.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "cgroups.h"
#include "harness.h"
#include "support/nstree.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Description = std::map<std::string, sdbus::Variant>;

// Whether the kernel refuses `prefix` (a user) to open /proc/T/ns/pid: ptrace_may_access READ_FSCREDS.
bool kernel_refuses(const Argv& prefix, pid_t target) {
    return open_ns_pid_as(prefix, target).err.find("Permission denied") != std::string::npos;
}

std::string str(const Description& d, const std::string& key) {
    auto it = d.find(key);
    return it == d.end() ? std::string("<absent>") : it->second.get<std::string>();
}

template <class T>
T num(const Description& d, const std::string& key) {
    auto it = d.find(key);
    if (it == d.end()) throw std::runtime_error("no key " + key);
    return it->second.get<T>();
}

const std::string kHex = kTestContainerId;

struct Shape {
    std::string rel;  // below a per-test top directory
    std::string engine, id, name, pod, unit, slice;
};

}  // namespace

TEST_CASE("names: each container engine's cgroup, made for real, labels the process and the namespaces it holds") {
    const fs::path root = systemd_cgroup_mount();  // where pidnsd reads cgroups
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + ".slice";
    const std::string pod = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", pod_ = "1f2e3d4c_5b6a_4978_8695_a4b3c2d1e0f9";
    const std::vector<Shape> shapes = {
        {top + "/docker-" + kHex + ".scope", "docker", kHex, "", "", "docker-" + kHex + ".scope", top},
        {top + "/docker/" + kHex, "docker", kHex, "", "", "", top},
        {top + "/libpod-" + kHex + ".scope/container", "podman", kHex, "", "", "libpod-" + kHex + ".scope", top},
        {top + "/kubepods-besteffort.slice/kubepods-besteffort-pod" + pod_ + ".slice/cri-containerd-" + kHex + ".scope",
         "containerd", kHex, "", pod, "cri-containerd-" + kHex + ".scope", "kubepods-besteffort-pod" + pod_ + ".slice"},
        {top + "/kubepods-pod" + pod_ + ".slice/crio-" + kHex + ".scope", "cri-o", kHex, "", pod, "crio-" + kHex + ".scope",
         "kubepods-pod" + pod_ + ".slice"},
        {top + "/lxc.payload.web1", "lxc", "web1", "web1", "", "", top},
        {top + "/systemd-nspawn@my\\x2dbox.service/payload", "nspawn", "my-box", "my-box", "", "systemd-nspawn@my\\x2dbox.service", top},
    };
    for (const auto& s : shapes) {
        INFO("cgroup " << s.rel);
        TestCgroup cg(root, s.rel);
        // A process with a net and a uts namespace of its own, moved into the cgroup.
        Proc p({"unshare", "-n", "-u", "sleep", "1000"});
        wait_comm(p.pid(), "sleep");
        cg.move(p.pid());
        const auto pid = static_cast<std::uint32_t>(p.pid());

        const Description dp = c.DescribeProcess(pid);
        CHECK(num<std::uint32_t>(dp, "Pid") == pid);
        CHECK(str(dp, "Command") == "sleep");
        CHECK(str(dp, "CGroup") == cg.path());
        CHECK(str(dp, "ContainerEngine") == s.engine);
        CHECK(str(dp, "ContainerId") == s.id);
        CHECK(str(dp, "ContainerName") == (s.name.empty() ? "<absent>" : s.name));
        CHECK(str(dp, "PodUid") == (s.pod.empty() ? "<absent>" : s.pod));
        CHECK(str(dp, "Unit") == (s.unit.empty() ? "<absent>" : s.unit));
        CHECK(str(dp, "Slice") == s.slice);
        CHECK(num<std::uint32_t>(dp, "Uid") == 0);
        CHECK(str(dp, "User") == "root");
        // GetProcess's chains, equal to the kernel's.
        const auto nspid = num<std::vector<std::uint32_t>>(dp, "NSpid");
        CHECK(nspid == std::vector<std::uint32_t>{pid});

        // Its net namespace: it is the only member, so its labels are the namespace's.
        const auto net = expected_ns_id(p.pid(), "net");
        const Description dn = c.DescribeNamespace(net);
        CHECK(num<std::uint64_t>(dn, "Id") == net);
        CHECK(str(dn, "Type") == "net");
        CHECK(num<std::uint32_t>(dn, "Processes") == 1);
        CHECK(num<std::uint32_t>(dn, "RepresentativePid") == pid);
        CHECK(str(dn, "ContainerEngine") == s.engine);
        CHECK(str(dn, "ContainerId") == s.id);
        CHECK(str(dn, "CGroup") == cg.path());
        CHECK(str(dn, "Command") == "sleep");
        // And in DescribeNamespaces, by type.
        bool listed = false;
        for (const auto& e : c.DescribeNamespaces("uts"))
            if (num<std::uint64_t>(e, "Id") == expected_ns_id(p.pid(), "uts")) {
                listed = true;
                CHECK(str(e, "ContainerEngine") == s.engine);
            }
        CHECK(listed);
    }
}

TEST_CASE("names: a process moved to another cgroup is labelled by its new one at the next call") {
    const fs::path root = systemd_cgroup_mount();  // where pidnsd reads cgroups
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-move.slice";
    TestCgroup a(root, top + "/docker-" + kHex + ".scope");
    TestCgroup b(root, top + "/lxc.payload.other");
    Proc p({"unshare", "-n", "sleep", "1000"});
    wait_comm(p.pid(), "sleep");
    const auto pid = static_cast<std::uint32_t>(p.pid());
    const auto net = expected_ns_id(p.pid(), "net");
    a.move(p.pid());
    CHECK(str(c.DescribeProcess(pid), "ContainerEngine") == "docker");
    CHECK(str(c.DescribeNamespace(net), "ContainerEngine") == "docker");
    // pidnsctl shows the same: list's CONTAINER and COMMAND, status's labels and threads, ps's UNIT.
    auto ctl = [&](const Argv& args) {
        Argv argv = {PIDNSCTL_BIN, "--address=" + bus.address(), "--no-pager"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run(argv);
        INFO("pidnsctl stderr: " << r.err);
        REQUIRE(r.status == 0);
        return r.out;
    };
    const auto list = ctl({"list", "-t", "net", "-o", "ID,CONTAINER,UNIT,COMMAND", "--no-legend"});
    bool row = false;
    std::istringstream in(list);
    for (std::string line; std::getline(in, line);) {
        std::istringstream w(line);
        std::string id, container, unit, command;
        w >> id >> container >> unit >> command;
        if (id == std::to_string(net)) {
            row = true;
            CHECK(container == "docker:" + kHex.substr(0, 12));
            CHECK(unit == "docker-" + kHex + ".scope");
            CHECK(command == "sleep");
        }
    }
    CHECK(row);
    const auto status = ctl({"status", std::to_string(pid)});
    CHECK(status.find("Container: docker " + kHex) != std::string::npos);
    CHECK(status.find("Unit: docker-" + kHex + ".scope") != std::string::npos);
    CHECK(status.find("User: root (0)") != std::string::npos);
    const auto ps = ctl({"ps", std::to_string(net), "--no-legend"});
    CHECK(ps.find(std::to_string(pid) + " ") != std::string::npos);
    CHECK(ps.find("docker-" + kHex + ".scope") != std::string::npos);
    b.move(p.pid());
    CHECK(str(c.DescribeProcess(pid), "ContainerEngine") == "lxc");
    CHECK(str(c.DescribeNamespace(net), "ContainerName") == "other");
    // Back to the test's own cgroup: no container.
    std::ofstream(root / "cgroup.procs") << p.pid() << std::flush;
    CHECK(str(c.DescribeProcess(pid), "ContainerEngine") == "<absent>");
}

TEST_CASE("names: ip netns add names the net namespace (NetnsNames, Holders), ip netns del removes it") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string name = "pidnsd-names-" + std::to_string(getpid());
    struct Cleanup {
        std::string name;
        ~Cleanup() { (void)run({"ip", "netns", "del", name}); }
    } cleanup{name};
    REQUIRE(run({"ip", "netns", "add", name}).status == 0);
    struct stat st {};
    REQUIRE(::stat(("/run/netns/" + name).c_str(), &st) == 0);
    const auto inode = static_cast<std::uint64_t>(st.st_ino);
    Description dn;
    for (int i = 0; i < 200; ++i) {
        try {
            dn = c.DescribeNamespace(inode);
            break;
        } catch (const sdbus::Error&) {
            std::this_thread::sleep_for(10ms);
        }
    }
    REQUIRE(!dn.empty());
    CHECK(num<std::uint64_t>(dn, "Inode") == inode);
    CHECK(num<std::vector<std::string>>(dn, "NetnsNames") == std::vector<std::string>{name});
    const auto holders = num<std::vector<sdbus::Struct<std::string, std::string>>>(dn, "Holders");
    bool mount = false;
    for (const auto& h : holders)
        if (std::get<0>(h) == "mount" && std::get<1>(h) == "/run/netns/" + name) mount = true;
    CHECK(mount);
    CHECK(num<std::uint32_t>(dn, "Processes") == 0);
    CHECK(dn.count("Command") == 0);  // no process holds it: no representative
    REQUIRE(run({"ip", "netns", "del", name}).status == 0);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; ++i) {
        gone = error_of([&] { c.DescribeNamespace(inode); }) == "org.pidns.Error.NoSuchNamespace";
        if (!gone) std::this_thread::sleep_for(10ms);
    }
    CHECK(gone);
}

TEST_CASE("names: unprivileged callers get labels only of what they may inspect") {
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    Proc root_p({"unshare", "-n", "sleep", "1000"});
    Proc nobody_p(concat(kAsNobody, {"unshare", "-U", "-r", "-n", "sleep", "1000"}));
    wait_comm(root_p.pid(), "sleep");
    wait_comm(nobody_p.pid(), "sleep");
    const auto root_net = expected_ns_id(root_p.pid(), "net"), nobody_net = expected_ns_id(nobody_p.pid(), "net");
    auto call = [&](const std::string& method, const std::string& sig, const std::vector<std::string>& args) {
        return busctl_call(bus.address(), method, sig, args, kAsNobody);
    };
    // Another user's process: refused as GetProcess is; its namespace does not exist for nobody.
    auto error_name = [&](const std::string& method, const std::string& arg) {
        const auto r = dbus_send(bus.address(), method, {arg}, kAsNobody);
        return r.ok ? std::string("ok") : r.error_name;
    };
    CHECK(error_name("DescribeProcess", "uint32:" + std::to_string(root_p.pid())) ==
          "org.freedesktop.DBus.Error.AccessDenied");
    CHECK(error_name("DescribeNamespace", "uint64:" + std::to_string(root_net)) == "org.pidns.Error.NoSuchNamespace");
    // As for a namespace that does not exist at all.
    CHECK(error_name("DescribeNamespace", "uint64:" + std::to_string(root_net + 1000000)) ==
          "org.pidns.Error.NoSuchNamespace");
    // Its own: described, with its name.
    const auto mine = call("DescribeProcess", "u", {std::to_string(nobody_p.pid())}).at(0);
    CHECK(mine.at("Command").at("data") == "sleep");
    CHECK(mine.at("User").at("data") == "nobody");
    CHECK(mine.at("Uid").at("data") == 65534);
    const auto own_ns = call("DescribeNamespace", "t", {std::to_string(nobody_net)}).at(0);
    CHECK(own_ns.at("RepresentativePid").at("data") == nobody_p.pid());
    // DescribeNamespaces shows exactly what ListNamespaces shows nobody.
    std::set<std::uint64_t> described, listed;
    const auto descriptions = call("DescribeNamespaces", "s", {""}).at(0);
    const auto listing = call("ListNamespaces", "s", {""}).at(0);
    for (const auto& e : descriptions) described.insert(e.at("Id").at("data").get<std::uint64_t>());
    for (const auto& e : listing) listed.insert(e.at(0).get<std::uint64_t>());
    CHECK(described == listed);
    CHECK(described.count(nobody_net) == 1);
    CHECK(described.count(root_net) == 0);
    // Every label nobody got belongs to a process nobody may inspect: the representative's
    // pid is one the kernel lets nobody read.
    for (const auto& e : descriptions) {
        if (!e.contains("RepresentativePid")) continue;
        const auto rep = e.at("RepresentativePid").at("data").get<pid_t>();
        INFO("representative " << rep);
        CHECK_FALSE(kernel_refuses(kAsNobody, rep));
    }
}

namespace {

// The threads of process `pid` named `comm`.
std::size_t threads_named(pid_t pid, const std::string& comm) {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
        n += read_file((t.path() / "comm").string()) == comm + "\n";
    return n;
}

}  // namespace

TEST_CASE("names: DescribeNamespaces of many namespaces reads their labels ahead, each as the kernel has it, for root and nobody") {
    const fs::path root = systemd_cgroup_mount();  // where pidnsd reads cgroups
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-many.slice";
    // 8 processes of root and 10 of nobody, each with a net namespace of its own (nobody's in a
    // user namespace of its own too), each in an LXC container's cgroup named after it.
    struct Member {
        std::string name;
        bool nobody;
        std::unique_ptr<TestCgroup> cg;
        std::unique_ptr<Proc> p;
        std::uint64_t net = 0;
    };
    std::vector<Member> members;
    for (int i = 0; i < 18; ++i) {
        Member m;
        m.nobody = i >= 8;
        m.name = (m.nobody ? "n" : "r") + std::to_string(i);
        m.cg = std::make_unique<TestCgroup>(root, top + "/lxc.payload." + m.name);
        m.p = std::make_unique<Proc>(m.nobody ? concat(kAsNobody, {"unshare", "-U", "-r", "-n", "sleep", "1000"})
                                              : Argv{"unshare", "-n", "sleep", "1000"});
        members.push_back(std::move(m));
    }
    for (auto& m : members) {
        wait_comm(m.p->pid(), "sleep");
        m.cg->move(m.p->pid());
        m.net = expected_ns_id(m.p->pid(), "net");
    }
    // The helper thread is made at the first read ahead: none has been yet.
    REQUIRE(threads_named(d.pid(), "pidns-readahead") == 0);

    std::map<std::uint64_t, Description> by_id;
    for (auto& e : c.DescribeNamespaces("net")) by_id[num<std::uint64_t>(e, "Id")] = std::move(e);
    REQUIRE(by_id.size() >= 18);
    for (const auto& m : members) {
        INFO("process " << m.p->pid() << " in lxc.payload." << m.name);
        REQUIRE(by_id.count(m.net) == 1);
        const auto& e = by_id.at(m.net);
        CHECK(num<std::uint32_t>(e, "Processes") == 1);
        CHECK(num<std::uint32_t>(e, "RepresentativePid") == static_cast<std::uint32_t>(m.p->pid()));
        CHECK(str(e, "Command") == "sleep");
        CHECK(str(e, "CGroup") == "/" + top + "/lxc.payload." + m.name);
        CHECK(str(e, "ContainerEngine") == "lxc");
        CHECK(str(e, "ContainerId") == m.name);
        CHECK(str(e, "User") == (m.nobody ? "nobody" : "root"));
    }
    // They were read on the helper thread (as well as on the loop's).
    CHECK(threads_named(d.pid(), "pidns-readahead") == 1);

    // nobody: its own 10 namespaces labelled, root's absent, every label of a process the kernel
    // lets nobody inspect, and the same namespaces as ListNamespaces.
    const auto descriptions = busctl_call(bus.address(), "DescribeNamespaces", "s", {""}, kAsNobody).at(0);
    const auto listing = busctl_call(bus.address(), "ListNamespaces", "s", {""}, kAsNobody).at(0);
    std::set<std::uint64_t> described, listed;
    for (const auto& e : listing) listed.insert(e.at(0).get<std::uint64_t>());
    REQUIRE(descriptions.size() >= 20);  // 10 user and 10 net namespaces: enough to be read ahead
    for (const auto& e : descriptions) {
        const auto id = e.at("Id").at("data").get<std::uint64_t>();
        described.insert(id);
        if (e.contains("RepresentativePid")) {
            const auto rep = e.at("RepresentativePid").at("data").get<pid_t>();
            INFO("namespace " << id << ", representative " << rep);
            CHECK_FALSE(kernel_refuses(kAsNobody, rep));
        }
    }
    CHECK(described == listed);
    for (const auto& m : members) {
        INFO("process " << m.p->pid() << " in lxc.payload." << m.name);
        CHECK(described.count(m.net) == (m.nobody ? 1u : 0u));
        if (!m.nobody) continue;
        for (const auto& e : descriptions)
            if (e.at("Id").at("data").get<std::uint64_t>() == m.net) {
                CHECK(e.at("ContainerId").at("data") == m.name);
                CHECK(e.at("RepresentativePid").at("data").get<pid_t>() == m.p->pid());
            }
    }
}

TEST_CASE("names: pidnsctl takes container:ID and unit:NAME where a namespace is expected") {
    const fs::path root = systemd_cgroup_mount();  // where pidnsd reads cgroups
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-byname.slice";
    const std::string unit = "docker-" + kHex + ".scope";
    TestCgroup cg(root, top + "/" + unit);
    // A pid namespace whose init runs in the container's cgroup.
    Proc p({"unshare", "-p", "-f", "sleep", "1000"});
    const pid_t init = child_of(p.pid());
    REQUIRE(init > 0);
    // The namespace's init outlives `unshare` killed by SIGKILL: killed here, before its cgroup goes.
    struct KillInit {
        pid_t pid;
        ~KillInit() {
            ::kill(pid, SIGKILL);
            for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
        }
    } kill_init{init};
    wait_comm(init, "sleep");
    cg.move(init);
    auto ctl = [&](const Argv& args) {
        Argv argv = {PIDNSCTL_BIN, "--address=" + bus.address(), "--no-pager"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv);
    };
    const std::string host = std::to_string(init);
    for (const std::string& ref : {"container:" + kHex.substr(0, 12), "container:" + kHex, "unit:" + unit}) {
        INFO(ref);
        auto r = ctl({"translate", host, "--to", ref});
        INFO(r.err);
        CHECK(r.status == 0);
        CHECK(r.out == "1\n");  // the kernel's NSpid: pid 1 in its own namespace
        r = ctl({"ps", ref, "--no-legend"});
        CHECK(r.status == 0);
        CHECK(r.out.find(host + " ") == 0);
    }
    CHECK(read_file("/proc/" + host + "/status").find("NSpid:\t" + host + "\t1\n") != std::string::npos);
    // Too short a prefix of an id is refused as such (exit 2, "give at least 12"); an unknown
    // container is "not found" (exit 4).
    const auto short_prefix = ctl({"translate", host, "--to", "container:" + kHex.substr(0, 8)});
    CHECK(short_prefix.status == 2);
    CHECK(short_prefix.err.find("give at least 12") != std::string::npos);
    CHECK(ctl({"translate", host, "--to", "container:0123abcd"}).status == 4);
    CHECK(ctl({"translate", host, "--to", "unit:no-such.scope"}).status == 4);
}

TEST_CASE("names: a namespace whose members sit in different containers keeps its maker's and lists the others as sharers") {
    const fs::path root = systemd_cgroup_mount();  // where pidnsd reads cgroups
    REQUIRE(!root.empty());
    PrivateBus bus;
    Daemon d(bus);
    Client c(bus.address());
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-members.slice";
    TestCgroup outer_docker(root, top + "/lxc.payload.outer/system.slice/docker-" + kHex + ".scope");
    TestCgroup outer_init(root, top + "/lxc.payload.outer/init.scope");
    TestCgroup elsewhere(root, top + "/lxc.payload.other");
    // Two processes in one net namespace: the first made it, the second joined it.
    Proc first({"unshare", "-n", "sleep", "1000"});
    wait_comm(first.pid(), "sleep");
    Proc second({"nsenter", "-t", std::to_string(first.pid()), "-n", "sleep", "1000"});
    wait_comm(second.pid(), "sleep");
    const auto net = expected_ns_id(first.pid(), "net");
    auto members = [&] { return num<std::uint32_t>(c.DescribeNamespace(net), "Processes"); };
    for (int i = 0; i < 200 && members() < 2; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(members() == 2);
    // Both in containers below the same LXC container: the LXC one holds them all.
    outer_docker.move(first.pid());
    outer_init.move(second.pid());
    auto dn = c.DescribeNamespace(net);
    CHECK(str(dn, "ContainerEngine") == "lxc");
    CHECK(str(dn, "ContainerName") == "outer");
    // Each process on its own: its innermost shape is still read from its own cgroup.
    CHECK(str(c.DescribeProcess(static_cast<std::uint32_t>(first.pid())), "ContainerEngine") == "lxc");
    CHECK(str(c.DescribeProcess(static_cast<std::uint32_t>(first.pid())), "Unit") == "<absent>");
    CHECK(dn.count("ContainerSharers") == 0);  // both within it
    // One of them in another container: the namespace is still its maker's (the representative,
    // its oldest member), and the other container is listed as sharing it.
    elsewhere.move(second.pid());
    dn = c.DescribeNamespace(net);
    CHECK(str(dn, "ContainerEngine") == "lxc");
    CHECK(str(dn, "ContainerId") == "outer");
    using Sharers = std::vector<sdbus::Struct<std::string, std::string, std::string, std::uint32_t>>;
    CHECK(num<Sharers>(dn, "ContainerSharers") == Sharers{{"lxc", "other", "other", 0xffffffffu}});  // root's cgroup
    CHECK(str(c.DescribeProcess(static_cast<std::uint32_t>(second.pid())), "ContainerName") == "other");
    // Out of every container: sharers no more.
    TestCgroup plain(root, top + "/plain");
    plain.move(second.pid());
    CHECK(c.DescribeNamespace(net).count("ContainerSharers") == 0);
}
