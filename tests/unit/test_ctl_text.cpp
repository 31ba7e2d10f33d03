// pidnsctl's text for the terminal: cells of escaped text, cutting with an ellipsis that never
// splits an escape, and numbers as words (ctl/text_width.h, ctl/format.h).
#include <catch2/catch.hpp>

#include "escape.h"
#include "format.h"
#include "text_width.h"

using pidnsctl::bytes_text;
using pidnsctl::cell_width;
using pidnsctl::chain_text;
using pidnsctl::count_of;
using pidnsctl::ellipsize;
using pidnsctl::timespan_text;

TEST_CASE("cell_width counts terminal cells: wide characters 2, combining marks 0, escapes as printed") {
    CHECK(cell_width("") == 0);
    CHECK(cell_width("sleep 1000") == 10);
    CHECK(cell_width("\xe2\x80\xa6") == 1);                 // U+2026
    CHECK(cell_width("\xe6\x97\xa5\xe6\x9c\xac") == 4);     // two CJK ideographs
    CHECK(cell_width("e\xcc\x81") == 1);                     // e and a combining acute accent
    CHECK(cell_width(pidns::printable_text("a\x1b[2Jb")) == 9);  // a\x1b[2Jb: the escape is 4 cells
}

TEST_CASE("ellipsize keeps what fits, ends in an ellipsis, and never splits an escape or a wide character") {
    CHECK(ellipsize("docker-7a1d3c2b.scope", 30) == "docker-7a1d3c2b.scope");
    CHECK(ellipsize("docker-7a1d3c2b.scope", 10) == "docker-7a\xe2\x80\xa6");
    CHECK(cell_width(ellipsize("docker-7a1d3c2b.scope", 10)) == 10);
    CHECK(ellipsize("abc", 0).empty());
    CHECK(ellipsize("abcdef", 1) == "\xe2\x80\xa6");
    // An escape is kept whole or left out whole: never "\x1" on the screen.
    const std::string esc = pidns::printable_text("ab\x1b" "cd");  // ab\x1bcd
    REQUIRE(esc == "ab\\x1bcd");
    CHECK(ellipsize(esc, 5) == "ab\xe2\x80\xa6");
    CHECK(ellipsize(esc, 7) == "ab\\x1b\xe2\x80\xa6");
    CHECK(ellipsize("a\\\\bcd", 3) == "a\xe2\x80\xa6");   // a doubled backslash stays whole
    // A wide character that does not fit in the last cell is left out.
    CHECK(ellipsize("a\xe6\x97\xa5\xe6\x9c\xac", 3) == "a\xe2\x80\xa6");
    CHECK(cell_width(ellipsize("a\xe6\x97\xa5\xe6\x9c\xac", 4)) == 4);
}

TEST_CASE("numbers as words: counts with their noun, chains with slashes, durations and sizes as systemd writes them") {
    CHECK(count_of(1, "process", "processes") == "1 process");
    CHECK(count_of(0, "process", "processes") == "0 processes");
    CHECK(count_of(2, "namespace", "namespaces") == "2 namespaces");
    CHECK(chain_text({12333, 2, 1}) == "12333/2/1");
    CHECK(chain_text({}).empty());
    CHECK(timespan_text(0) == "0");
    CHECK(timespan_text(250) == "250us");
    CHECK(timespan_text(4112) == "4ms");
    CHECK(timespan_text(3028000) == "3.028s");
    CHECK(timespan_text(60000000) == "1min");
    CHECK(timespan_text(11524512000ull) == "3h 12min 4.512s");
    CHECK(timespan_text(90061000000ull) == "1d 1h 1min 1s");
    CHECK(bytes_text(512) == "512B");
    CHECK(bytes_text(16777216) == "16.0M");
    CHECK(bytes_text(1536) == "1.5K");
}
