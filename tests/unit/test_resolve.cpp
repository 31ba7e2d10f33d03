// Namespace references: by id, by nsfs inode, ambiguity, and invisible candidates.
#include <catch2/catch.hpp>

#include "view.h"
#include "observer_index.h"

using namespace pidns;

namespace {
using unit::kDev;

// Observer namespaces 1..8; a pid ns whose id equals another namespace's inode.
Index make_index() {
    Index idx = unit::observer_index();
    REQUIRE(idx.add_namespace(NamespaceMeta{1004, NsType::pid, 5000, kDev, 1, 2, 0, 1}).ok());  // id == inode of 4
    REQUIRE(idx.add_namespace(NamespaceMeta{20, NsType::net, 6000, kDev, 0, 2, 0, 0}).ok());
    return idx;
}
auto all = [](NsId) { return true; };
}  // namespace

TEST_CASE("resolve: an id and an inode both name their namespace") {
    auto idx = make_index();
    CHECK(*resolve_reference(idx, kDev, 20, all) == 20);
    CHECK(*resolve_reference(idx, kDev, 6000, all) == 20);
    CHECK(*resolve_reference(idx, kDev, 5000, all) == 1004);
}

TEST_CASE("resolve: an id that is another namespace's inode is ambiguous") {
    auto idx = make_index();
    auto r = resolve_reference(idx, kDev, 1004, all);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::ambiguous);
    CHECK(r.error().message.find("pass the namespace id") != std::string::npos);
    // lib/ speaks no D-Bus: the daemon names the method that lists ids (daemon/errors.cpp).
    CHECK(r.error().message.find("ListNamespaces") == std::string::npos);
}

TEST_CASE("resolve: an invisible candidate neither resolves nor makes the reference ambiguous") {
    auto idx = make_index();
    auto not_4 = [](NsId id) { return id != 4; };
    CHECK(*resolve_reference(idx, kDev, 1004, not_4) == 1004);
    auto not_1004 = [](NsId id) { return id != 1004; };
    CHECK(*resolve_reference(idx, kDev, 1004, not_1004) == 4);
    auto none = [](NsId) { return false; };
    auto hidden = resolve_reference(idx, kDev, 20, none);
    auto unknown = resolve_reference(idx, kDev, 777777, none);
    REQUIRE_FALSE(hidden.ok());
    REQUIRE_FALSE(unknown.ok());
    CHECK(hidden.error().code == Errc::no_such_namespace);
    // Invisible and nonexistent look the same, apart from the number echoed back.
    auto strip = [](std::string s, const std::string& n) { return s.replace(s.find(n), n.size(), "N"); };
    CHECK(strip(hidden.error().message, "20") == strip(unknown.error().message, "777777"));
}

TEST_CASE("resolve: wrong device, 0 and unknown values are no such namespace") {
    auto idx = make_index();
    CHECK(resolve_reference(idx, kDev + 1, 6000, all).error().code == Errc::no_such_namespace);
    CHECK(resolve_reference(idx, kDev, 0, all).error().code == Errc::no_such_namespace);
    CHECK(resolve_reference(idx, kDev, ~0ull, all).error().code == Errc::no_such_namespace);
}
