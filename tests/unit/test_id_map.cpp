// uid_map/gid_map parsing and mapping ids into the namespace they describe.
#include <catch2/catch.hpp>

#include "id_map.h"

using namespace pidns;

TEST_CASE("id map: the initial namespace's identity map maps every id to itself") {
    auto m = parse_id_map("         0          0 4294967295\n");
    REQUIRE(m.ok());
    REQUIRE(m->size() == 1);
    CHECK(map_id_in(*m, 0) == 0);
    CHECK(map_id_in(*m, 1000) == 1000);
    CHECK(map_id_in(*m, 4294967294u) == 4294967294u);
}

TEST_CASE("id map: a rootless container's map maps its ranges and everything else to the overflow id") {
    auto m = parse_id_map("0 1000 1\n1 100000 65536\n");
    REQUIRE(m.ok());
    CHECK(map_id_in(*m, 1000) == 0);
    CHECK(map_id_in(*m, 100000) == 1);
    CHECK(map_id_in(*m, 165535) == 65536);
    CHECK(map_id_in(*m, 165536) == kOverflowId);
    CHECK(map_id_in(*m, 0) == kOverflowId);
    CHECK(map_id_in(*m, 999) == kOverflowId);
}

TEST_CASE("id map: empty map maps nothing (a user namespace not yet mapped)") {
    auto m = parse_id_map("");
    REQUIRE(m.ok());
    CHECK(m->empty());
    CHECK(map_id_in(*m, 0) == kOverflowId);
}

TEST_CASE("id map: malformed input is a parse error naming the line") {
    for (const char* bad : {"0 0\n", "0 0 1 2\n", "x 0 1\n", "0 0 0\n", "0 4294967295 2\n", "-1 0 1\n",
                            "0 0 1\n1 1 1\nfoo\n"}) {
        auto m = parse_id_map(bad);
        REQUIRE_FALSE(m.ok());
        CHECK(m.error().code == Errc::parse);
        CHECK(m.error().message.find("line") != std::string::npos);
    }
}
