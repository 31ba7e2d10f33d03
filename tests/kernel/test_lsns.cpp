// util-linux lsns as an outside oracle: every namespace it lists is in the index with the same inode,
// type, lowest pid, parent and owner. Where lsns fails because of another process on the host (a
// newline in its comm), the test's own /proc reading stands in (support/lsns_oracle.h).
#include <catch2/catch.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "model.h"
#include "process.h"  // tests/harness
#include "support/lsns_oracle.h"
#include "support/task_state.h"
#include "support/nstree.h"

using namespace pidns;
namespace t = pidns::testing;

namespace {

std::uint64_t json_u64(const nlohmann::json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) return static_cast<std::uint64_t>(v.get<std::int64_t>());
    if (v.is_string()) return std::stoull(v.get<std::string>());
    return 0;  // null
}

// Differences between one lsns listing and the model; empty when they agree.
std::vector<std::string> compare(const nlohmann::json& lsns, const Model& m, std::size_t& compared) {
    std::vector<std::string> diffs;
    const auto dev = kernel_features().nsfs_dev;
    auto inode_of = [&](NsId id) -> std::uint64_t {
        if (!id) return 0;
        const auto* ns = m.index().find_namespace(id);
        return ns ? ns->meta.inode : 0;
    };
    for (const auto& e : lsns.at("namespaces")) {
        // lsns names a process that exited and is not reaped yet by its pid: not indexed (pidnsd(8), THE INDEX).
        if (t::exited_unreaped(static_cast<pid_t>(json_u64(e.at("pid"))))) continue;
        ++compared;
        const auto inode = json_u64(e.at("ns"));
        const auto type = e.at("type").get<std::string>();
        const std::string where = type + ":[" + std::to_string(inode) + "]";
        auto id = m.index().find_by_inode(dev, inode);
        if (!id) {
            diffs.push_back(where + " listed by lsns is not in the index");
            continue;
        }
        const auto& ns = *m.index().find_namespace(*id);
        if (ns_type_name(ns.meta.type) != type) diffs.push_back(where + ": index type " + std::string(ns_type_name(ns.meta.type)));
        const std::uint64_t lowest = ns.members.empty() ? 0 : static_cast<std::uint64_t>(*std::min_element(ns.members.begin(), ns.members.end()));
        if (lowest != json_u64(e.at("pid")))
            diffs.push_back(where + ": lowest pid " + std::to_string(lowest) + ", lsns " + e.at("pid").dump());
        if (inode_of(ns.meta.parent) != json_u64(e.at("pns")))
            diffs.push_back(where + ": parent " + std::to_string(inode_of(ns.meta.parent)) + ", lsns " + e.at("pns").dump());
        if (inode_of(ns.meta.owner) != json_u64(e.at("ons")))
            diffs.push_back(where + ": owner " + std::to_string(inode_of(ns.meta.owner)) + ", lsns " + e.at("ons").dump());
    }
    return diffs;
}

}  // namespace

TEST_CASE("every namespace lsns lists is in the index, with the same inode, type, lowest pid, parent and owner") {
    REQUIRE(::system("command -v lsns >/dev/null") == 0);
    t::ProcTree tree;
    auto h = t::make_ns_hierarchy5(tree);
    pid_t u = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS);
    pid_t nested_user = tree.spawn(u, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC);
    (void)h;
    (void)nested_user;
    // The host changes under us (other processes come and go): retry a few times, each a fresh pair.
    std::vector<std::string> diffs;
    std::size_t compared = 0;
    // As this kernel, and as each older one pidnsd supports (--assume-kernel).
    DiscoveryOptions opts;
    const int kernel = GENERATE(0, 1, 2);
    if (kernel > 0) opts.assume_kernel = kernel == 1 ? KernelVersion{5, 14} : KernelVersion{6, 1};
    INFO("as Linux " << (opts.assume_kernel ? opts.assume_kernel->str() : std::string("(the running kernel)")));
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto json = t::lsns_listing();
        auto m = Model::create(opts);
        REQUIRE(m.ok());
        REQUIRE((*m)->rescan().ok());
        compared = 0;
        diffs = compare(json, **m, compared);
        if (diffs.empty()) break;
    }
    INFO("namespaces compared: " << compared);
    CHECK(compared >= 8 + 5 + 4);  // our own 8, the hierarchy's 5 pid namespaces, the user/net/uts/ipc ones
    std::string all;
    for (const auto& d : diffs) all += d + "\n";
    INFO("differences in the last attempt:\n" << all);
    CHECK(diffs.empty());
}

namespace {

// The entry of one inode in an lsns-shaped listing; null when absent.
nlohmann::json entry_of(const nlohmann::json& listing, std::uint64_t inode) {
    for (const auto& e : listing.at("namespaces"))
        if (json_u64(e.at("ns")) == inode) return e;
    return nullptr;
}

}  // namespace

TEST_CASE("lsns oracle: a newline in another process's comm fails lsns, and the test's own /proc reading stands in with what lsns would say") {
    REQUIRE(::system("command -v lsns >/dev/null") == 0);
    t::ProcTree tree;
    const pid_t u = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID);
    const pid_t member = tree.spawn(u, 0);
    const std::uint64_t net = t::oracle_ns_inode(u, "net"), user = t::oracle_ns_inode(u, "user"),
                        host_user = t::oracle_ns_inode(::getpid(), "user");
    // Our namespaces as each listing gives them: the same whichever reads them.
    auto check_ours = [&](const nlohmann::json& l) {
        const auto n = entry_of(l, net);
        REQUIRE(!n.is_null());
        CHECK(n.at("type") == "net");
        CHECK(json_u64(n.at("nprocs")) == 2);
        CHECK(json_u64(n.at("pid")) == static_cast<std::uint64_t>(std::min(u, member)));
        CHECK(json_u64(n.at("ons")) == user);
        const auto us = entry_of(l, user);
        REQUIRE(!us.is_null());
        CHECK(json_u64(us.at("pns")) == host_user);
        CHECK(json_u64(us.at("ons")) == host_user);
    };
    check_ours(t::own_lsns_listing());
    if (::system("lsns -J >/dev/null 2>&1") == 0) check_ours(t::lsns_listing());  // lsns itself, on a quiet host
    else WARN("lsns already fails on this host: another process has a newline in its comm");

    // What any user may do: a newline in its comm.
    const pid_t hostile = ::fork();
    REQUIRE(hostile >= 0);
    if (hostile == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::prctl(PR_SET_NAME, "a\nb");
        for (;;) ::pause();
    }
    pidns::harness::Reap reap{hostile};
    const std::string comm_path = "/proc/" + std::to_string(hostile) + "/comm";
    for (int i = 0; i < 500; ++i) {
        std::ifstream f(comm_path);
        std::string c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (c == "a\nb\n") break;
        ::usleep(10000);
    }
    const int rc = ::system("lsns -J >/dev/null 2>&1");
    INFO("lsns exit status with the newline: " << (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1));
    if (rc == 0) WARN("this lsns lists namespaces despite a newline in a comm (util-linux 2.38 does not)");
    check_ours(t::lsns_listing());  // from lsns, or (2.38) from the test's own reading
}
