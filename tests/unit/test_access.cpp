// The ptrace_may_access mirror on a synthetic index: cap_capable's walk, uid/gid, dumpability,
// the capability LSM's subset rule, pid-namespace scope.
#include <catch2/catch.hpp>

#include "access.h"
#include "observer_index.h"

using namespace pidns;

namespace {
using unit::kDev;
constexpr std::uint64_t kPtrace = std::uint64_t{1} << kCapSysPtrace;
constexpr std::uint64_t kAll = 0x1ffffffffffull;

// init user ns 2 (pid ns 1); user ns 30 made by uid 1000, 31 inside it, 40 made by uid 2000;
// pid ns 10 below 1.
Index make_index() {
    Index idx = unit::observer_index();
    REQUIRE(idx.add_namespace(NamespaceMeta{30, NsType::user, 1030, kDev, 2, 2, 1000, 1}).ok());
    REQUIRE(idx.add_namespace(NamespaceMeta{31, NsType::user, 1031, kDev, 30, 30, 1000, 2}).ok());
    REQUIRE(idx.add_namespace(NamespaceMeta{40, NsType::user, 1040, kDev, 2, 2, 2000, 1}).ok());
    REQUIRE(idx.add_namespace(NamespaceMeta{10, NsType::pid, 1010, kDev, 1, 2, 0, 1}).ok());
    return idx;
}

Caller caller(std::int32_t pid, std::uint32_t uid, std::uint64_t caps, NsId userns = 2, NsId pidns = 1) {
    Caller c;
    c.pid = pid;
    c.uid = {uid, uid, uid, uid};
    c.gid = {uid, uid, uid, uid};
    c.cap_eff = caps;
    c.userns = userns;
    c.pidns = pidns;
    return c;
}

Process target(std::int32_t tgid, std::uint32_t uid, NsId userns = 2, NsId pidns = 1, bool dumpable = true,
               std::uint64_t prm = 0) {
    Process p;
    p.tgid = tgid;
    p.uid = {uid, uid, uid, uid};
    p.gid = {uid, uid, uid, uid};
    p.ns = {pidns, userns, 3, 4, 5, 6, 7, 8};
    p.dumpable = dumpable;
    p.cap_prm = prm;
    return p;
}
}  // namespace

TEST_CASE("cap_capable: effective caps cover the caller's user namespace and everything below") {
    auto idx = make_index();
    for (NsId t : {2, 30, 31, 40}) {
        CHECK(has_capability_in(idx, 2, kPtrace, 0, t, kCapSysPtrace));
        CHECK_FALSE(has_capability_in(idx, 2, kAll & ~kPtrace, 0, t, kCapSysPtrace));
    }
    // Inside 30 with every capability: 30 and 31, never the parent or a sibling.
    CHECK(has_capability_in(idx, 30, kAll, 0, 30, kCapSysPtrace));
    CHECK(has_capability_in(idx, 30, kAll, 0, 31, kCapSysPtrace));
    CHECK_FALSE(has_capability_in(idx, 30, kAll, 0, 2, kCapSysPtrace));
    CHECK_FALSE(has_capability_in(idx, 30, kAll, 0, 40, kCapSysPtrace));
    CHECK_FALSE(has_capability_in(idx, 2, kPtrace, 0, 999, kCapSysPtrace));  // unknown namespace
}

TEST_CASE("cap_capable: the creator of a child user namespace has every capability in it and below") {
    auto idx = make_index();
    CHECK(has_capability_in(idx, 2, 0, 1000, 30, kCapSysPtrace));
    CHECK(has_capability_in(idx, 2, 0, 1000, 31, kCapSysPtrace));
    CHECK_FALSE(has_capability_in(idx, 2, 0, 1000, 40, kCapSysPtrace));
    CHECK_FALSE(has_capability_in(idx, 2, 0, 1000, 2, kCapSysPtrace));
    CHECK(has_capability_in(idx, 2, 0, 2000, 40, kCapSysPtrace));
}

TEST_CASE("rule 1: outside the caller's pid namespace subtree a task is invisible, whatever the caps") {
    auto idx = make_index();
    CHECK(ptrace_may_read(idx, caller(5, 0, kAll, 2, 10), target(7, 0)) == Access::invisible);
    CHECK(ptrace_may_read(idx, caller(5, 0, kAll, 2, 1), target(7, 0, 2, 10)) == Access::allowed);
}

TEST_CASE("rule 2: same thread group, same fs ids, or CAP_SYS_PTRACE over the target") {
    auto idx = make_index();
    CHECK(ptrace_may_read(idx, caller(7, 1000, 0), target(7, 2000, 2, 1, false, kAll)) == Access::allowed);
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), target(7, 1000)) == Access::allowed);
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), target(7, 2000)) == Access::denied);
    CHECK(ptrace_may_read(idx, caller(5, 1000, kPtrace), target(7, 2000)) == Access::allowed);
    // FSCREDS: fsuid/fsgid count, against all three of the target's ids.
    auto c = caller(5, 1000, 0);
    c.uid = {1, 1, 1, 1000};  // real/effective/saved 1, fsuid 1000
    CHECK(ptrace_may_read(idx, c, target(7, 1000)) == Access::allowed);
    c.gid[3] = 1;
    CHECK(ptrace_may_read(idx, c, target(7, 1000)) == Access::denied);
    auto t = target(7, 1000);
    t.uid[2] = 0;  // saved uid differs (a setuid program)
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), t) == Access::denied);
    // The creator of the target's user namespace.
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), target(7, 5, 31)) == Access::allowed);
    CHECK(ptrace_may_read(idx, caller(5, 3000, 0), target(7, 5, 31)) == Access::denied);
}

TEST_CASE("rule 3: a non-dumpable target needs CAP_SYS_PTRACE even with the same ids") {
    auto idx = make_index();
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), target(7, 1000, 2, 1, false)) == Access::denied);
    CHECK(ptrace_may_read(idx, caller(5, 1000, kPtrace), target(7, 1000, 2, 1, false)) == Access::allowed);
    // Root inside a user namespace has CAP_SYS_PTRACE there, not over a host process.
    CHECK(ptrace_may_read(idx, caller(5, 1000, kAll, 30), target(7, 1000, 2, 1, false)) == Access::denied);
}

TEST_CASE("capability LSM: a target's permitted caps must be within the caller's effective ones") {
    auto idx = make_index();
    CHECK(ptrace_may_read(idx, caller(5, 1000, 0), target(7, 1000, 2, 1, true, kPtrace)) == Access::denied);
    CHECK(ptrace_may_read(idx, caller(5, 1000, kPtrace), target(7, 1000, 2, 1, true, kPtrace)) == Access::allowed);
    // uid 0 in a child user namespace against a host root process: same ids, other user namespace.
    CHECK(ptrace_may_read(idx, caller(5, 0, kAll, 30), target(7, 0, 2, 1, true, kAll)) == Access::denied);
    CHECK(ptrace_may_read(idx, caller(5, 0, kAll, 2), target(7, 0, 2, 1, true, kAll)) == Access::allowed);
}
