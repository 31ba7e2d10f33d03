// lib/engine_state: the engines' files parsed, names checked as untrusted text, and EngineState on
// state trees laid out as each engine lays them out (made here as root), including the ones it
// must refuse: a file or directory another user owns or may write, a symlink a user made.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine_state.h"

using namespace pidns;
namespace fs = std::filesystem;

namespace {

const std::string kId = "4f1d3c2b9a8e7f6d5c4b3a29180716253a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kId3 = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
const std::string kId4 = "deadbeef0123456789abcdef0123456789abcdef0123456789abcdef01234567";
const std::string kUid = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";

// A root-owned temp directory (0755), removed at the end.
class TempTree {
public:
    TempTree() {
        char tmpl[] = "/tmp/pidns-engine-state-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        root_ = tmpl;
        fs::permissions(root_, fs::perms(0755));
    }
    ~TempTree() {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    TempTree(const TempTree&) = delete;
    TempTree& operator=(const TempTree&) = delete;
    // Writes `text` at root/rel (directories 0710 as the engines make them, the file 0600).
    fs::path write(const std::string& rel, const std::string& text) const {
        const fs::path p = root_ / rel;
        fs::create_directories(p.parent_path());
        for (fs::path d = p.parent_path(); d != root_; d = d.parent_path()) fs::permissions(d, fs::perms(0710));
        std::ofstream(p) << text;
        fs::permissions(p, fs::perms(0600));
        return p;
    }
    [[nodiscard]] const fs::path& path() const { return root_; }

private:
    fs::path root_;
};

void chown_nobody(const fs::path& p) { REQUIRE(::lchown(p.c_str(), 65534, 65534) == 0); }

}  // namespace

TEST_CASE("engine_text: valid UTF-8 names pass as they are, anything else is dropped") {
    CHECK(engine_text("web-1") == "web-1");
    CHECK(engine_text("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xb3") == "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xb3");
    CHECK(engine_text(std::string(253, 'a')) == std::string(253, 'a'));
    for (const std::string& bad : {std::string(254, 'a'), std::string("a\nb"), std::string("a\x1b[2Jb"), std::string("a\0b", 3),
                                  std::string("\x7f"), std::string("\xc3"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                                  std::string("\xf4\x90\x80\x80"), std::string("\xc2\x9b"), std::string("\xff")}) {
        INFO(bad.size() << " bytes");
        CHECK(engine_text(bad).empty());
    }
}

TEST_CASE("parse_docker_config, parse_oci_annotations and parse_storage_containers read the engines' own files") {
    auto d = parse_docker_config(R"({"ID":"x","Name":"/web","Config":{"Labels":{"io.kubernetes.pod.name":"shop-0",
        "io.kubernetes.pod.namespace":"prod","io.kubernetes.pod.uid":"u","io.kubernetes.sandbox.id":"s"}}})");
    REQUIRE(d);
    CHECK(d->name == "web");
    CHECK(d->pod_name == "shop-0");
    CHECK(d->pod_namespace == "prod");
    CHECK(d->pod_uid == "u");
    CHECK(d->pod_id == "s");
    CHECK(parse_docker_config(R"({"Name":7,"Config":{"Labels":null}})")->name.empty());
    CHECK_FALSE(parse_docker_config("[1]"));
    CHECK_FALSE(parse_docker_config("{\"Name\":"));

    auto cri = parse_oci_annotations(R"({"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.container-type":"container",
        "io.kubernetes.cri.container-name":"app","io.kubernetes.cri.sandbox-id":"sb","io.kubernetes.cri.sandbox-name":"web-0",
        "io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"u"}})");
    REQUIRE(cri);
    CHECK(cri->cri);
    CHECK(cri->names == EngineNames{"app", "sb", "web-0", "shop", "u"});
    auto crio = parse_oci_annotations(R"({"annotations":{"io.kubernetes.cri-o.ContainerType":"container",
        "io.kubernetes.container.name":"db","io.kubernetes.cri-o.SandboxID":"sb","io.kubernetes.pod.name":"db-0",
        "io.kubernetes.pod.namespace":"data","io.kubernetes.pod.uid":"u"}})");
    REQUIRE(crio);
    CHECK(crio->cri);
    CHECK(crio->names == EngineNames{"db", "sb", "db-0", "data", "u"});
    auto plain = parse_oci_annotations(R"({"annotations":{"io.container.manager":"libpod"}})");
    REQUIRE(plain);
    CHECK_FALSE(plain->cri);
    CHECK(plain->names == EngineNames{});
    CHECK(parse_oci_annotations("{}"));
    CHECK_FALSE(parse_oci_annotations("null"));

    auto s = parse_storage_containers(R"([{"id":"a","names":["p1","alias"]},{"id":"b","names":[]},{"id":"c"},7,{"names":["x"]}])");
    REQUIRE(s);
    CHECK(s->size() == 1);
    CHECK(s->at("a") == "p1");
    CHECK_FALSE(parse_storage_containers("{}"));
}

TEST_CASE("engine_roots: --container-state replaces an engine's default, then adds, and a bad spec says why") {
    auto r = engine_roots({});
    REQUIRE(r);
    CHECK(r->docker == std::vector<std::string>{"/var/lib/docker"});
    r = engine_roots({"docker:/srv/docker", "docker:/srv/docker2", "cri-o:/run/crio"});
    REQUIRE(r);
    CHECK(r->docker == std::vector<std::string>{"/srv/docker", "/srv/docker2"});
    CHECK(r->crio == std::vector<std::string>{"/run/crio"});
    CHECK(r->podman == std::vector<std::string>{"/var/lib/containers/storage"});
    for (const std::string bad : {"rkt:/x", "docker", "docker:", "docker:relative"}) {
        INFO(bad);
        auto e = engine_roots({bad});
        REQUIRE_FALSE(e);
        CHECK(e.error().code == Errc::invalid_argument);
        CHECK(e.error().message.find(bad) != std::string::npos);
    }
}

TEST_CASE("EngineState: names from docker, podman, containerd and CRI-O state laid out as the engines lay it out") {
    if (::geteuid() != 0) FAIL("the engine state tests make root-owned trees: run as root");
    TempTree t;
    t.write("docker/containers/" + kId + "/config.v2.json", R"({"Name":"/web","Config":{"Labels":{}}})");
    t.write("podman/overlay-containers/containers.json", R"([{"id":")" + kId2 + R"(","names":["p1"]}])");
    t.write("containerd/io.containerd.runtime.v2.task/default/c1/config.json", R"({"annotations":{}})");
    t.write("containerd/io.containerd.runtime.v2.task/k8s.io/" + kId3 + "/config.json",
            R"({"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"app",
            "io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop"}})");
    t.write("crio/overlay-containers/" + kId2 + "/userdata/config.json",
            R"({"annotations":{"io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.container.name":"db",
            "io.kubernetes.pod.name":"db-0","io.kubernetes.pod.namespace":"data"}})");
    EngineRoots roots;
    roots.docker = {(t.path() / "docker").string()};
    roots.podman = {(t.path() / "podman").string()};
    roots.containerd = {(t.path() / "containerd").string()};
    roots.crio = {(t.path() / "crio").string()};
    EngineState s(roots);

    auto l = s.label("/docker/" + kId);
    REQUIRE(l);
    CHECK(l->engine == ContainerEngine::docker);
    CHECK(l->name == "web");
    // docker --cgroup-parent /ci: only docker's state makes it a container.
    l = s.label("/ci/" + kId);
    REQUIRE(l);
    CHECK(l->engine == ContainerEngine::docker);
    CHECK(l->name == "web");
    CHECK(l->depth == 2);
    l = s.label("/libpod_parent/" + kId + "/libpod-" + kId2);
    REQUIRE(l);
    CHECK(l->engine == ContainerEngine::podman);
    CHECK(l->name == "p1");
    CHECK(l->pod_id == kId);
    // ctr's /default/c1: named by its id.
    l = s.label("/default/c1");
    REQUIRE(l);
    CHECK(l->engine == ContainerEngine::containerd);
    CHECK(l->id == "c1");
    CHECK(l->name == "c1");
    // containerd under kubelet's cgroupfs driver, and its systemd driver's pattern.
    for (const std::string& path : {"/kubepods/besteffort/pod" + kUid + "/" + kId3,
                                   "/kubepods.slice/kubepods-pod" + kUid + ".slice/cri-containerd-" + kId3 + ".scope"}) {
        INFO(path);
        l = s.label(path);
        REQUIRE(l);
        CHECK(l->engine == ContainerEngine::containerd);
        CHECK(l->name == "app");
        CHECK(l->pod_uid == kUid);
        CHECK(l->pod_name == "web-0");
        CHECK(l->pod_namespace == "shop");
    }
    l = s.label("/kubepods/pod" + kUid + "/crio-" + kId2);
    REQUIRE(l);
    CHECK(l->engine == ContainerEngine::crio);
    CHECK(l->name == "db");
    CHECK(l->pod_name == "db-0");
    // Ids no engine knows: not containers (candidates), or the pattern's label without names.
    CHECK_FALSE(s.label("/ci/" + kId4));
    CHECK_FALSE(s.label("/default/c2"));
    l = s.label("/system.slice/docker-" + kId4 + ".scope");
    REQUIRE(l);
    CHECK(l->name.empty());
    CHECK(s.stats().refused == 0);
    CHECK(s.stats().lookups > 0);
    // Cached: the same questions read nothing again.
    const auto lookups = s.stats().lookups;
    (void)s.label("/docker/" + kId);
    (void)s.label("/default/c2");
    CHECK(s.stats().lookups == lookups);
}

TEST_CASE("EngineState: a file or directory another user owns or may write, or a symlink a user made, is not read") {
    if (::geteuid() != 0) FAIL("the engine state tests make root-owned trees: run as root");
    const std::string cfg = R"({"Name":"/web"})";
    auto named = [&](const EngineRoots& roots) {
        EngineState s(roots);
        auto l = s.label("/docker/" + kId);
        return std::make_pair(l && l->name == "web", s.stats().refused);
    };
    auto roots_at = [](const fs::path& p) {
        EngineRoots r;
        r.docker = {p.string()};
        return r;
    };
    {
        TempTree t;
        t.write("d/containers/" + kId + "/config.v2.json", cfg);
        CHECK(named(roots_at(t.path() / "d")) == std::make_pair(true, std::uint64_t{0}));
    }
    {  // The file is a user's.
        TempTree t;
        chown_nobody(t.write("d/containers/" + kId + "/config.v2.json", cfg));
        CHECK(named(roots_at(t.path() / "d")) == std::make_pair(false, std::uint64_t{1}));
    }
    {  // Others may write the file, or the container's directory.
        TempTree t;
        const auto f = t.write("d/containers/" + kId + "/config.v2.json", cfg);
        fs::permissions(f, fs::perms(0606));
        CHECK_FALSE(named(roots_at(t.path() / "d")).first);
        fs::permissions(f, fs::perms(0600));
        fs::permissions(f.parent_path(), fs::perms(0777));
        CHECK_FALSE(named(roots_at(t.path() / "d")).first);
    }
    {  // A directory on the way to the root is a user's (they could swap what is below it).
        TempTree t;
        t.write("user/d/containers/" + kId + "/config.v2.json", cfg);
        chown_nobody(t.path() / "user");
        const auto [ok, refused] = named(roots_at(t.path() / "user" / "d"));
        CHECK_FALSE(ok);
        CHECK(refused >= 1);
    }
    {  // A symlink to the state: followed when root made it, not when a user did.
        TempTree t;
        t.write("real/containers/" + kId + "/config.v2.json", cfg);
        fs::create_symlink(t.path() / "real", t.path() / "link");
        CHECK(named(roots_at(t.path() / "link")).first);
        chown_nobody(t.path() / "link");
        CHECK_FALSE(named(roots_at(t.path() / "link")).first);
        // The file itself a symlink (even root's): not followed (O_NOFOLLOW).
        fs::create_directories(t.path() / "d2/containers/" / kId);
        fs::create_symlink(t.path() / "real/containers" / kId / "config.v2.json",
                           t.path() / "d2/containers" / kId / "config.v2.json");
        CHECK_FALSE(named(roots_at(t.path() / "d2")).first);
    }
    {  // Larger than the bound: refused, not read.
        TempTree t;
        t.write("d/containers/" + kId + "/config.v2.json",
                R"({"Name":"/web","x":")" + std::string(EngineState::kMaxConfigBytes, 'x') + "\"}");
        CHECK(named(roots_at(t.path() / "d")) == std::make_pair(false, std::uint64_t{1}));
    }
    {  // A name that is not valid UTF-8 (or has a control character): the container without it.
        TempTree t;
        t.write("d/containers/" + kId + "/config.v2.json", "{\"Name\":\"/we\\u001bb\"}");
        EngineState s(roots_at(t.path() / "d"));
        auto l = s.label("/docker/" + kId);
        REQUIRE(l);
        CHECK(l->engine == ContainerEngine::docker);
        CHECK(l->name.empty());
    }
}
