// The escaping rule of every string pidnsd and pidnsctl hand out (lib/escape.h), the unit-name
// unescaping that feeds it (lib/cgroup.h), and the cgroup paths that are long but still the kernel's.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "cgroup.h"
#include "escape.h"

using namespace pidns;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

// The hostile corpus as bytes: what a user can put in a comm, argv, cgroup or mount path.
const std::vector<std::string> kCorpus = {
    "plain", "",
    "\xff"s, "x\xff\xfe"s, "mid\xff" "dle"s, "end\xc3"s,            // invalid at the start, middle, end (truncated)
    "\xc0\xaf"s, "\xe0\x80\xaf"s, "\xf0\x80\x80\xaf"s,          // overlong '/'
    "\xed\xa0\x80"s, "\xf4\x90\x80\x80"s, "\xf8\x88\x80\x80\x80"s,  // surrogate, > U+10FFFF, 5-byte form
    "a\0b"s, "\\x00"s, "\\"s, "\\\\x41"s,                         // NUL, and backslashes that look like escapes
    "a\tb\nc"s, "\r\x7f\x01"s,                                    // C0, DEL
    "\x1b]0;pwned\x07\x1b[2J"s, "\x1b[31mred"s,                  // OSC and CSI sequences (ESC)
    "\xc2\x9b" "2J"s, "\xc2\x9d" "0;x\xc2\x9c"s,                   // C1 CSI, OSC, ST
    "l\xe2\x80\xa8r"s, "\xe2\x80\xae" "cod.exe"s,                  // U+2028, U+202E (bidi override)
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7"s,                  // é € 🐧: kept
    "fake\n    1 1     init.scope  -  /sbin/init --fake-row"s,
    "123456789012345"s,                                            // a full comm
};

}  // namespace

TEST_CASE("escape_text: printable UTF-8 kept, every other byte of the rule as a hex escape, a backslash doubled where it would read as one") {
    CHECK(escape_text("sleep") == "sleep");
    CHECK(escape_text("caf\xc3\xa9 \xf0\x9f\x90\xa7"s) == "caf\xc3\xa9 \xf0\x9f\x90\xa7"s);
    // systemd's escapes of printable characters read as they are; a backslash that would start an
    // escape of ours is doubled.
    CHECK(escape_text("a\\b") == "a\\b");
    CHECK(escape_text("my\\x2dbox") == "my\\x2dbox");
    CHECK(escape_text("a\\x00b") == "a\\\\x00b");
    CHECK(escape_text("a\\xFFb") == "a\\\\xFFb");
    CHECK(escape_text("a\\\\") == "a\\\\\\");          // two backslashes: the first doubled
    CHECK(escape_text("a\\\xff"s) == "a\\\\\\xff");     // before an escaped byte
    CHECK(escape_text("a\\\n") == "a\\\\\\x0a");
    CHECK(escape_text("end\\") == "end\\");
    CHECK(escape_text("x\xff\xfe"s) == "x\\xff\\xfe");
    CHECK(escape_text("a\0b"s) == "a\\x00b");
    CHECK(escape_text("a\tb\nc") == "a\\x09b\\x0ac");
    CHECK(escape_text("\x1b]0;pwned\x07\x1b[2J") == "\\x1b]0;pwned\\x07\\x1b[2J");
    CHECK(escape_text("\x7f") == "\\x7f");
    CHECK(escape_text("\xc2\x9b" "2J"s) == "\\xc2\\x9b2J");          // C1 CSI: both bytes
    CHECK(escape_text("\xc2\xa0"s) == "\xc2\xa0"s);                 // U+00A0 is no control
    CHECK(escape_text("\xe2\x80\xae"s) == "\\xe2\\x80\\xae");        // bidi override
    CHECK(escape_text("\xe2\x80\xa8"s) == "\\xe2\\x80\\xa8");        // line separator
    CHECK(escape_text("\xc0\xaf"s) == "\\xc0\\xaf");                // overlong
    CHECK(escape_text("\xed\xa0\x80"s) == "\\xed\\xa0\\x80");        // surrogate
    CHECK(escape_text("\xf4\x90\x80\x80"s) == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
    CHECK(escape_text("end\xe2\x82"s) == "end\\xe2\\x82");          // truncated
    CHECK(escape_text("\xe2\x82\xac"s) == "\xe2\x82\xac"s);         // € whole
}

TEST_CASE("escape_text: the hostile corpus and every byte pair give printable UTF-8 that unescapes to the bytes") {
    std::vector<std::string> inputs = kCorpus;
    for (int a = 0; a < 256; ++a)
        for (int b = 0; b < 256; ++b) inputs.push_back({static_cast<char>(a), static_cast<char>(b)});
    for (const auto& raw : inputs) {
        const auto e = escape_text(raw, 0);
        if (!is_printable_text(e) || e.find_first_of("\n\t\r\x1b"s + '\0') != std::string::npos) FAIL_CHECK(e);
        const auto u = unescape_text(e);
        if (u.bytes != raw || u.cut) FAIL_CHECK("round trip of " << e);
        // printable_text changes nothing that is escaped already.
        if (printable_text(e) != e) FAIL_CHECK("printable_text changed " << e);
    }
}

TEST_CASE("printable_text keeps what a terminal may show and leaves backslashes alone") {
    CHECK(printable_text("a\\xff") == "a\\xff");  // already escaped: unchanged
    CHECK(printable_text("a\xff"s) == "a\\xff");
    CHECK(printable_text("x\ny") == "x\\x0ay");
    CHECK(printable_text("\x1b[2J") == "\\x1b[2J");
    for (const auto& raw : kCorpus) CHECK(is_printable_text(printable_text(raw)));
}

TEST_CASE("escape_text: a value longer than the limit is cut at a boundary and ends in the marker") {
    const std::string long_path = "/" + std::string(5000, 'a');
    const auto e = escape_text(long_path);
    CHECK(e.size() <= kMaxTextBytes);
    CHECK(e.ends_with(kCutMarker));
    const auto u = unescape_text(e);
    CHECK(u.cut);
    CHECK(long_path.starts_with(u.bytes));
    CHECK(u.bytes.size() == kMaxTextBytes - kCutMarker.size());
    // Never in the middle of an escape or a character.
    const std::string bad(3000, '\xff');  // 4 bytes each once escaped
    const auto b = escape_text(bad);
    CHECK(b.size() <= kMaxTextBytes);
    CHECK(is_printable_text(b));
    CHECK(unescape_text(b).bytes == std::string(1023, '\xff'));
    const std::string euro = [] {
        std::string s;
        for (int i = 0; i < 2000; ++i) s += "\xe2\x82\xac";
        return s;
    }();
    const auto c = escape_text(euro, 100);
    CHECK(c.size() <= 100);
    CHECK(c == [] {
        std::string s;
        for (int i = 0; i < 32; ++i) s += "\xe2\x82\xac";
        return s;
    }() + std::string(kCutMarker));
    // Exactly at the limit: not cut.
    CHECK(escape_text(std::string(100, 'x'), 100) == std::string(100, 'x'));
    CHECK(escape_text(std::string(101, 'x'), 100).ends_with(kCutMarker));
    // Never right after a single backslash (it would read as a doubled one).
    const auto s = escape_text(std::string(95, 'x') + "\\" + std::string(10, 'y'), 100);
    CHECK(s == std::string(95, 'x') + std::string(kCutMarker));
    CHECK(unescape_text(s).cut);
}

TEST_CASE("unescape_text: only a doubled backslash, the hex escape of a byte the rule escapes and a final marker are escapes") {
    CHECK(unescape_text("a\\x1b\\\\").bytes == "a\x1b\\");
    CHECK(unescape_text("\\xFF").bytes == "\xff"s);
    CHECK(unescape_text("\\x41").bytes == "\\x41");  // 'A' is never escaped: this is text
    for (const char* text : {"\\", "\\x", "\\x4", "\\xg0", "\\n", "a\\", "\\\xe2\x80\xa6x"}) {
        const auto u = unescape_text(text);
        CHECK(u.bytes == text);
        CHECK_FALSE(u.cut);
    }
    CHECK(unescape_text("ab\\\xe2\x80\xa6").cut);
}

TEST_CASE("TextBudget: every value stays, cut shorter once a reply's text is spent") {
    TextBudget budget(10000);
    const std::string path(5000, 'p');
    const auto a = budget.escape(path);
    CHECK(a.size() <= kMaxTextBytes);
    const auto b = budget.escape(path);
    CHECK(b.size() <= kMaxTextBytes);
    const auto c = budget.escape(path);  // 10000 - 2 * 4096 left: cut to that
    CHECK(c.size() <= 10000 - a.size() - b.size());
    const auto d = budget.escape(path);
    CHECK(d.size() == kMinTextBytes);
    CHECK(d.ends_with(kCutMarker));
    CHECK(budget.escape("short") == "short");
}

TEST_CASE("unescape_unit_name: escapes decoded only into printable UTF-8, never NUL, controls or invalid bytes") {
    CHECK(unescape_unit_name("my\\x2dbox") == "my-box");
    CHECK(unescape_unit_name("caf\\xc3\\xa9") == "caf\xc3\xa9");  // an escaped UTF-8 character whole
    CHECK(unescape_unit_name("a\\x00b") == "a\\x00b");
    CHECK(unescape_unit_name("\\xff") == "\\xff");
    CHECK(unescape_unit_name("\\x1b[2J") == "\\x1b[2J");
    CHECK(unescape_unit_name("\\x0a") == "\\x0a");
    CHECK(unescape_unit_name("\\xc2\\x9b") == "\\xc2\\x9b");      // C1 CSI stays escaped
    CHECK(unescape_unit_name("\\xc3") == "\\xc3");                // a truncated character
    CHECK(unescape_unit_name("\\xc3x") == "\\xc3x");
    CHECK(unescape_unit_name("x\\xzz") == "x\\xzz");              // not an escape
    CHECK(unescape_unit_name("raw\xffstays"s) == "raw\xffstays"s);  // raw bytes are the path's own
    for (const auto& raw : kCorpus) {
        const auto e = escape_text(raw, 0);  // printable input: printable output
        CHECK(is_printable_text(unescape_unit_name(e)));
    }
    // The nspawn container label uses it.
    auto c = container_of("/machine.slice/systemd-nspawn@a\\x00b\\xff.service");
    REQUIRE(c);
    CHECK(c->name == "a\\x00b\\xff");
    CHECK(c->name.find('\0') == std::string::npos);
}

TEST_CASE("parse_proc_cgroup: a path as long as the kernel prints (PATH_MAX - 1) is read, with its labels") {
    std::string path;
    while (path.size() + 201 + 80 < 4095) path += "/" + std::string(200, 'd');
    path += "/" + std::string(4095 - path.size() - 79, 'f');
    path += "/docker-" + std::string(64, 'a') + ".scope";
    REQUIRE(path.size() == 4095);
    for (const std::string& line : {"0::" + path + "\n", "9:name=systemd:" + path + "\n0::/\n"}) {
        auto l = parse_proc_cgroup(line);
        REQUIRE(l.ok());
        const auto p = systemd_cgroup_path(*l);
        REQUIRE(p);
        CHECK(*p == path);
        const auto c = container_of(*p);
        REQUIRE(c);
        CHECK(c->id == std::string(64, 'a'));
    }
}

TEST_CASE("systemd_placement counts the depth of the unit, else of the last slice") {
    CHECK(systemd_placement("/system.slice/ssh.service/x").depth == 2);
    CHECK(systemd_placement("/user.slice/user-1000.slice/user@1000.service/app.slice/a.service").depth == 3);
    CHECK(systemd_placement("/a.slice/b.slice").depth == 2);
    CHECK(systemd_placement("/").depth == 0);
    CHECK(systemd_placement("/init.scope").depth == 1);
}
