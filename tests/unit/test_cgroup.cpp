// /proc/PID/cgroup and cgroup paths: systemd's unit and slice, and the container engines' patterns
// (the table in lib/cgroup.cpp and pidnsd(8), LABELS), on paths as each engine makes them.
#include <catch2/catch.hpp>

#include <cctype>
#include <string>
#include <vector>

#include "cgroup.h"

using namespace pidns;

namespace {
const std::string kId = "4f1d3c2b9a8e7f6d5c4b3a29180716253a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

ContainerLabel must(const std::string& path) {
    INFO(path);
    auto c = container_of(path);
    REQUIRE(c);
    return *c;
}
}  // namespace

TEST_CASE("parse_proc_cgroup: v1, v2 and hybrid files, and malformed lines are errors naming the line") {
    const auto hybrid = "9:name=systemd:/system.slice/ssh.service\n8:pids:/\n4:memory:/x:y\n0::/system.slice/ssh.service\n";
    auto l = parse_proc_cgroup(hybrid);
    REQUIRE(l.ok());
    REQUIRE(l->size() == 4);
    CHECK((*l)[0].hierarchy == 9);
    CHECK((*l)[0].controllers == "name=systemd");
    CHECK((*l)[2].path == "/x:y");  // a ':' in the path is part of it
    CHECK((*l)[3].controllers.empty());
    CHECK(systemd_cgroup_path(*l) == "/system.slice/ssh.service");

    auto v2 = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n");
    REQUIRE(v2.ok());
    CHECK(systemd_cgroup_path(*v2) == "/user.slice/user-1000.slice/session-3.scope");
    // v1 without name=systemd: no systemd path.
    auto v1 = parse_proc_cgroup("3:cpu,cpuacct:/a\n2:memory:/b\n");
    REQUIRE(v1.ok());
    CHECK_FALSE(systemd_cgroup_path(*v1));
    CHECK(parse_proc_cgroup("").ok());

    for (const char* badtext : {"0::relative\n", "x::/\n", "0:/\n", "0:memory:/\n", "0::/\n\n0::/\n", "4294967296::/\n"}) {
        INFO(badtext);
        auto r = parse_proc_cgroup(badtext);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::parse);
        CHECK(r.error().message.find("line ") != std::string::npos);
    }
    std::string many;
    for (int i = 0; i < 65; ++i) many += std::to_string(i + 1) + ":c:/\n";
    CHECK_FALSE(parse_proc_cgroup(many).ok());
    CHECK_FALSE(parse_proc_cgroup("0::/" + std::string(5000, 'a') + "\n").ok());
}

TEST_CASE("systemd_placement finds the unit below the slices and the last slice above it") {
    auto p = systemd_placement("/system.slice/ssh.service");
    CHECK(p.unit == "ssh.service");
    CHECK(p.slice == "system.slice");
    p = systemd_placement("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service");
    CHECK(p.unit == "user@1000.service");
    CHECK(p.slice == "user-1000.slice");
    p = systemd_placement("/machine.slice/libpod-" + kId + ".scope/container");
    CHECK(p.unit == "libpod-" + kId + ".scope");
    CHECK(p.slice == "machine.slice");
    p = systemd_placement("/init.scope");
    CHECK(p.unit == "init.scope");
    CHECK(p.slice == "-.slice");
    p = systemd_placement("/");
    CHECK(p.unit.empty());
    CHECK(p.slice == "-.slice");
    p = systemd_placement("/docker/" + kId);  // cgroupfs driver: nothing systemd made
    CHECK(p.unit.empty());
    p = systemd_placement("/kubepods.slice/kubepods-besteffort.slice");
    CHECK(p.unit.empty());
    CHECK(p.slice == "kubepods-besteffort.slice");
}

TEST_CASE("container_of names the engine and id of docker, podman, containerd, CRI-O, LXC and nspawn cgroup paths") {
    auto c = must("/system.slice/docker-" + kId + ".scope");
    CHECK(c.engine == ContainerEngine::docker);
    CHECK(c.id == kId);
    CHECK(c.pod_uid.empty());
    c = must("/docker/" + kId);
    CHECK(c.engine == ContainerEngine::docker);
    CHECK(c.id == kId);
    c = must("/machine.slice/libpod-" + kId + ".scope/container");
    CHECK(c.engine == ContainerEngine::podman);
    CHECK(c.id == kId);
    c = must("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope");
    CHECK(c.engine == ContainerEngine::podman);
    c = must("/libpod_parent/libpod-" + kId);
    CHECK(c.engine == ContainerEngine::podman);
    c = must("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a_4978_8695_a4b3c2d1e0f9.slice/"
             "cri-containerd-" + kId + ".scope");
    CHECK(c.engine == ContainerEngine::containerd);
    CHECK(c.id == kId);
    CHECK(c.pod_uid == "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9");
    c = must("/kubepods.slice/kubepods-pod1f2e3d4c_5b6a_4978_8695_a4b3c2d1e0f9.slice/crio-" + kId + ".scope");
    CHECK(c.engine == ContainerEngine::crio);
    CHECK(container_engine_name(c.engine) == "cri-o");
    CHECK(c.pod_uid == "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9");
    c = must("/kubepods/besteffort/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/crio-" + kId);
    CHECK(c.engine == ContainerEngine::crio);
    CHECK(c.pod_uid == "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9");
    c = must("/lxc.payload.web1");
    CHECK(c.engine == ContainerEngine::lxc);
    CHECK(c.id == "web1");
    CHECK(c.name == "web1");
    c = must("/lxc/web2/init.scope");
    CHECK(c.name == "web2");
    c = must("/machine.slice/systemd-nspawn@my\\x2dbox.service/payload");
    CHECK(c.engine == ContainerEngine::nspawn);
    CHECK(c.name == "my-box");
    // Nested (docker inside LXC): the outermost.
    c = must("/lxc.payload.outer/system.slice/docker-" + kId + ".scope");
    CHECK(c.engine == ContainerEngine::lxc);
    CHECK(c.depth == 1);
}

TEST_CASE("container_of: look-alikes and monitors are not containers") {
    for (const std::string& p : std::vector<std::string>{"/", "/system.slice/docker.service", "/system.slice/docker-" + kId.substr(1) + ".scope",
          "/system.slice/docker-" + kId + "X.scope", "/system.slice/docker-" + std::string(64, 'G') + ".scope",
          "/machine.slice/libpod-conmon-" + kId + ".scope", "/kubepods.slice/crio-conmon-" + kId + ".scope",
          "/lxc.monitor.web1", "/lxc.payload.", "/system.slice/" + kId, "/dockerx/" + kId,
          "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope", "/libpod_parent/conmon", "/libpod_parent/" + kId2 + "/conmon"}) {
        INFO(p);
        CHECK_FALSE(container_of(p));
    }
    // Upper-case hex is not what the engines write.
    std::string upper = kId2;
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    CHECK_FALSE(container_of("/docker/" + upper));
    CHECK(container_of("/docker/" + kId2));
}

TEST_CASE("unescape_unit_name decodes hex escapes and leaves broken ones as they are") {
    CHECK(unescape_unit_name("my\\x2dbox") == "my-box");
    CHECK(unescape_unit_name("a\\x2fb") == "a/b");
    CHECK(unescape_unit_name("bad\\x2") == "bad\\x2");
    CHECK(unescape_unit_name("bad\\xzz") == "bad\\xzz");
    CHECK(unescape_unit_name("") == "");
}

namespace {
struct Layout {
    std::string path;
    ContainerEngine engine;
    std::string id, pod_uid, pod_id;
};
}  // namespace

// Every layout the engines and kubelet make, under the cgroupfs and the systemd drivers (the same
// paths in the v1 name=systemd hierarchy and in cgroup v2): pidnsd(8), LABELS.
TEST_CASE("container_of reads each engine's and kubelet's layouts under the cgroupfs and systemd drivers") {
    const std::string uid = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9", uid_ = "1f2e3d4c_5b6a_4978_8695_a4b3c2d1e0f9";
    const std::vector<Layout> layouts = {
        // docker: systemd driver (also --cgroup-parent=ci.slice, and kubelet with cri-dockerd).
        {"/system.slice/docker-" + kId + ".scope", ContainerEngine::docker, kId, "", ""},
        {"/ci.slice/docker-" + kId + ".scope", ContainerEngine::docker, kId, "", ""},
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/docker-" + kId + ".scope",
         ContainerEngine::docker, kId, uid, ""},
        {"/docker/" + kId, ContainerEngine::docker, kId, "", ""},
        // podman: systemd driver (rootful, rootless, in a pod), cgroupfs (in a pod, --cgroup-parent).
        {"/machine.slice/libpod-" + kId + ".scope/container", ContainerEngine::podman, kId, "", ""},
        {"/machine.slice/machine-libpod_pod_" + kId2 + ".slice/libpod-" + kId + ".scope", ContainerEngine::podman, kId, "", kId2},
        {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope", ContainerEngine::podman, kId, "", ""},
        {"/user.slice/user-1000.slice/user@1000.service/user.slice/user-libpod_pod_" + kId2 + ".slice/libpod-" + kId + ".scope",
         ContainerEngine::podman, kId, "", kId2},
        {"/libpod_parent/libpod-" + kId, ContainerEngine::podman, kId, "", ""},
        {"/libpod_parent/" + kId2 + "/libpod-" + kId, ContainerEngine::podman, kId, "", kId2},
        {"/ci/libpod-" + kId, ContainerEngine::podman, kId, "", ""},
        {"/libpod-" + kId, ContainerEngine::podman, kId, "", ""},
        // containerd's CRI, kubelet's systemd driver, each QoS class.
        {"/kubepods.slice/kubepods-pod" + uid_ + ".slice/cri-containerd-" + kId + ".scope", ContainerEngine::containerd, kId, uid, ""},
        {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uid_ + ".slice/cri-containerd-" + kId + ".scope",
         ContainerEngine::containerd, kId, uid, ""},
        // CRI-O: systemd and cgroupfs drivers.
        {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ + ".slice/crio-" + kId + ".scope",
         ContainerEngine::crio, kId, uid, ""},
        {"/kubepods/burstable/pod" + uid + "/crio-" + kId, ContainerEngine::crio, kId, uid, ""},
        {"/kubepods/pod" + uid + "/crio-" + kId, ContainerEngine::crio, kId, uid, ""},
        // LXC 4+ and older, nspawn.
        {"/lxc.payload.web1", ContainerEngine::lxc, "web1", "", ""},
        {"/lxc/web2", ContainerEngine::lxc, "web2", "", ""},
        {"/machine.slice/systemd-nspawn@web3.service/payload", ContainerEngine::nspawn, "web3", "", ""},
    };
    for (const auto& l : layouts) {
        INFO(l.path);
        const auto c = must(l.path);
        CHECK(c.engine == l.engine);
        CHECK(c.id == l.id);
        CHECK(c.pod_uid == l.pod_uid);
        CHECK(c.pod_id == l.pod_id);
        // A label comes from a pattern: no candidate is needed below it.
        for (const auto& cand : container_candidates(l.path)) CHECK(cand.depth != c.depth);
    }
}

TEST_CASE("container_candidates: bare ids and containerd's /<namespace>/<id>, for an engine's state to confirm") {
    const std::string uid = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";
    // kubelet's cgroupfs driver for containerd (and cri-dockerd): the id below the pod.
    for (const std::string qos : {"/besteffort", "/burstable", ""}) {
        const auto path = "/kubepods" + qos + "/pod" + uid + "/" + kId;
        INFO(path);
        CHECK_FALSE(container_of(path));
        const auto c = container_candidates(path);
        REQUIRE(c.size() == 1);
        CHECK(c[0].id == kId);
        CHECK(c[0].ns.empty());
        CHECK(c[0].pod_uid == uid);
    }
    // docker --cgroup-parent /ci: two components, so also containerd's shape.
    auto c = container_candidates("/ci/" + kId);
    REQUIRE(c.size() == 2);
    CHECK((c[0].ns == "ci" && c[0].id == kId && c[0].depth == 2));
    CHECK((c[1].ns.empty() && c[1].id == kId && c[1].depth == 2));
    c = container_candidates("/a/b/c/" + kId);
    REQUIRE(c.size() == 1);
    CHECK(c[0].depth == 4);
    // ctr's /<namespace>/<id>.
    c = container_candidates("/default/web-1.v2");
    REQUIRE(c.size() == 1);
    CHECK((c[0].ns == "default" && c[0].id == "web-1.v2"));
    // Not candidates: what a pattern claims, units, more or fewer components, odd identifiers.
    for (const std::string& p : std::vector<std::string>{
             "/docker/" + kId, "/libpod_parent/" + kId2 + "/libpod-" + kId, "/system.slice/ssh.service", "/user.slice/x",
             "/default", "/a/b/c", "/default/-x", "/default/x..y", "/default/" + std::string(77, 'a'), "/de fault/x", "/"}) {
        INFO(p);
        CHECK(container_candidates(p).empty());
    }
}
