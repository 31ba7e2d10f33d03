// Round-trips every namespace-type table (name, clone flag) and the error-name table.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "ns_type.h"
#include "result.h"

using namespace pidns;

TEST_CASE("every namespace type round-trips through its name and clone flag") {
    std::set<std::string> names;
    std::set<int> flags;
    for (auto t : kAllNsTypes) {
        auto name = ns_type_name(t);
        REQUIRE(ns_type_from_name(name) == t);
        REQUIRE(ns_type_from_clone_flag(ns_type_clone_flag(t)) == t);
        names.emplace(name);
        flags.insert(ns_type_clone_flag(t));
    }
    CHECK(names.size() == kNsTypeCount);
    CHECK(flags.size() == kNsTypeCount);
    CHECK(names == std::set<std::string>{"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"});
}

TEST_CASE("unknown names and flags are rejected") {
    CHECK_FALSE(ns_type_from_name(""));
    CHECK_FALSE(ns_type_from_name("PID"));
    CHECK_FALSE(ns_type_from_name("pid_for_children"));
    CHECK_FALSE(ns_type_from_clone_flag(0));
    CHECK_FALSE(ns_type_from_clone_flag(-1));
}

TEST_CASE("only pid and user namespaces are hierarchical") {
    for (auto t : kAllNsTypes) CHECK(ns_type_is_hierarchical(t) == (t == NsType::pid || t == NsType::user));
}

TEST_CASE("error codes have distinct names") {
    std::set<std::string> names;
    for (auto e : {Errc::not_found, Errc::no_such_namespace, Errc::not_pid_namespace, Errc::ambiguous,
                   Errc::invalid_argument, Errc::access_denied, Errc::parse, Errc::io, Errc::unsupported,
                   Errc::too_large, Errc::unstable})
        names.emplace(errc_name(e));
    CHECK(names.size() == 11);
    CHECK(make_error(Errc::io, "x", 2).describe() == "io: x (No such file or directory)");
}
