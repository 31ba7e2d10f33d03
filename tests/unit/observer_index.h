// Unit-test fixture: a synthetic index holding the observer's own 8 namespaces (ids 1..8 in
// kAllNsTypes order, user namespace 2 owning the others, inodes 1000+id on device kDev).
#pragma once

#include <catch2/catch.hpp>

#include "index.h"

namespace pidns::unit {

inline constexpr std::uint64_t kDev = 4;

inline Index observer_index() {
    Index idx;
    REQUIRE(idx.add_namespace(NamespaceMeta{2, NsType::user, 1002, kDev, 0, 0, 0, 0}).ok());
    NsId id = 1;
    for (auto t : kAllNsTypes) {
        if (t != NsType::user) REQUIRE(idx.add_namespace(NamespaceMeta{id, t, 1000 + id, kDev, 0, 2, 0, 0}).ok());
        ++id;
    }
    idx.set_self({1, 2, 3, 4, 5, 6, 7, 8});
    return idx;
}

}  // namespace pidns::unit
