// Inputs the fuzz targets (fuzz/) found to break a parser, kept as regression tests. Each case
// quotes the crashing input byte for byte (also in fuzz/corpus/TARGET/regress-*, so the fuzzer
// replays it too) and says what was wrong.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "id_map.h"

using namespace pidns;
using namespace std::string_view_literals;

namespace {
void require_parse_error_naming_line(std::string_view text, std::string_view why) {
    auto m = parse_id_map(text);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == Errc::parse);
    CHECK(m.error().message.find("line 1") != std::string::npos);
    CHECK(m.error().message.find(why) != std::string::npos);
}
}  // namespace

// fuzz_id_map, crash-8f85890818ea0904629f90a088c9b4cd1f5a5caf: an outside id of 2^64-1 made
// `outside + count` wrap to 1, passed the 32-bit range check and was stored truncated to
// 0xffffffff with count 2: an extent reaching past 2^32.
TEST_CASE("fuzz regression: id map with a 64-bit outside id is an error, not a wrapped range") {
    require_parse_error_naming_line("   440737   18446744073709551615            2\n"sv, "beyond 32 bits");
    require_parse_error_naming_line("18446744073709551615 0 2\n"sv, "beyond 32 bits");
}

// fuzz_id_map, crash-c718dcb7c9f0327cd1b8641adc0aed01f1088fa8: a count of 2^32 passed the range
// check (0 + 2^32 <= 2^32) and was stored truncated to 0, an extent the parser otherwise refuses.
TEST_CASE("fuzz regression: id map with a count of 2^32 is an error, not a zero count") {
    require_parse_error_naming_line("0 0 4294967296\n47483647      00      655   "sv, "beyond 32 bits");
    // The largest extents the kernel can print still parse.
    auto m = parse_id_map("0 0 4294967295\n"sv);
    REQUIRE(m.ok());
    CHECK(m->front().count == 4294967295u);
    auto top = parse_id_map("1 1 4294967295\n"sv);
    REQUIRE(top.ok());
    CHECK(map_id_in(*top, 4294967295u) == 4294967295u);
}
