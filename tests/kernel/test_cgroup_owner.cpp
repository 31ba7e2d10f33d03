// cgroup_label_owner on real cgroup directories: who could have named a label's cgroup is the owner
// of the first directory above it that root does not own (a delegated subtree), as the kernel's
// cgroup filesystem shows it.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cgroup_owner.h"
#include "id_map.h"

using namespace pidns;
namespace fs = std::filesystem;

namespace {

// The directory systemd_hierarchy_fd() opened, by its path.
fs::path hierarchy_path() {
    return fs::read_symlink("/proc/self/fd/" + std::to_string(systemd_hierarchy_fd()));
}

// A test's own cgroup tree, removed deepest first.
struct Tree {
    fs::path top;
    std::vector<fs::path> made;
    explicit Tree(const std::string& name) : top(hierarchy_path() / name) { mk(""); }
    ~Tree() {
        for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
    }
    fs::path mk(const std::string& rel) {
        const auto p = rel.empty() ? top : top / rel;
        REQUIRE(::mkdir(p.c_str(), 0755) == 0);
        made.push_back(p);
        return p;
    }
};

}  // namespace

TEST_CASE("cgroup_label_owner: root's directories vouch, a delegated one names its owner, a writable one nobody in particular") {
    const int root = systemd_hierarchy_fd();
    REQUIRE(root >= 0);
    const std::string name = "pidnsd-test-owner-" + std::to_string(::getpid()) + ".slice";
    Tree t(name);
    const auto deleg = t.mk("deleg");
    t.mk("deleg/docker-x.scope");
    t.mk("deleg/docker-x.scope/inner");
    t.mk("open");
    t.mk("open/thing");
    REQUIRE(::chown(deleg.c_str(), 4242, 4242) == 0);
    REQUIRE(::chmod((t.top / "open").c_str(), 0777) == 0);
    const std::string p = "/" + name;

    // Only root could have named these: the top, and the delegated directory itself (root made
    // it in a directory root owns, whoever owns it now).
    CHECK_FALSE(cgroup_label_owner(root, p, 1));
    CHECK_FALSE(cgroup_label_owner(root, p + "/deleg", 2));
    // Made inside the delegated directory: its owner could have named it, and all below.
    CHECK(cgroup_label_owner(root, p + "/deleg/docker-x.scope", 3) == 4242u);
    CHECK(cgroup_label_owner(root, p + "/deleg/docker-x.scope/inner", 4) == 4242u);
    // The depth, not the path's length, says which name is judged.
    CHECK_FALSE(cgroup_label_owner(root, p + "/deleg/docker-x.scope/inner", 2));
    // A directory root owns but anyone may write: no one user to name.
    CHECK(cgroup_label_owner(root, p + "/open/thing", 3) == kOverflowId);
    CHECK_FALSE(cgroup_label_owner(root, p + "/open", 2));
    // What cannot be walked is not vouched for.
    CHECK(cgroup_label_owner(root, p + "/gone/x", 3) == kOverflowId);
    CHECK(cgroup_label_owner(root, p + "/../x/y", 3) == kOverflowId);
    CHECK(cgroup_label_owner(-1, p + "/deleg", 2) == kOverflowId);
    CHECK_FALSE(cgroup_label_owner(root, p, 0));
    // "//" and a trailing "/" are no components.
    CHECK(cgroup_label_owner(root, "//" + name + "//deleg/docker-x.scope/", 3) == 4242u);
}
