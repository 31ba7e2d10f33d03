// libFuzzer target: the escaping rule (lib/escape.h) and unescape_unit_name (lib/cgroup.h), checked
// against an independent reading of UTF-8: escape_text's output is valid UTF-8 without a control,
// separator or bidi formatting character and unescapes to the input; cut output stays within its
// limit and unescapes to a prefix; printable_text is printable and leaves escaped text alone;
// unescaping a unit name makes no NUL, control or invalid UTF-8 the name did not have.
// Input: two bytes of limit (little-endian), then the bytes to escape.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cgroup.h"
#include "escape.h"
#include "fuzz_check.h"

namespace {

// Independent of lib/escape.cpp: true when `s` is well-formed UTF-8 (RFC 3629: shortest form, no
// surrogates, nothing above U+10FFFF) holding none of the characters the rule escapes.
bool printable_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::uint32_t cp;
        std::size_t n;
        if (b < 0x80) cp = b, n = 1;
        else if ((b & 0xe0) == 0xc0) cp = b & 0x1f, n = 2;
        else if ((b & 0xf0) == 0xe0) cp = b & 0x0f, n = 3;
        else if ((b & 0xf8) == 0xf0) cp = b & 0x07, n = 4;
        else return false;
        if (i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k) {
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (c & 0x3f);
        }
        const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;                 // C0, DEL, C1
        if (cp == 0x2028 || cp == 0x2029) return false;                            // separators
        if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069))
            return false;                                                          // bidi formatting
        i += n;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t limit = static_cast<std::size_t>(data[0] | (data[1] << 8)) % (pidns::kMaxTextBytes + 1);
    const auto raw = pidns::fuzz::as_text(data + 2, size - 2);

    const auto whole = pidns::escape_text(raw, 0);
    FUZZ_CHECK(printable_utf8(whole));
    const auto back = pidns::unescape_text(whole);
    FUZZ_CHECK(!back.cut && back.bytes == raw);

    const auto cut = pidns::escape_text(raw, limit);
    FUZZ_CHECK(printable_utf8(cut));
    const std::size_t effective = limit == 0 ? 0 : std::max(limit, pidns::kCutMarker.size());  // as documented
    FUZZ_CHECK(effective == 0 || cut.size() <= effective);
    if (effective != 0 && whole.size() > effective) {
        FUZZ_CHECK(cut.ends_with(pidns::kCutMarker));
        const auto part = pidns::unescape_text(cut);
        FUZZ_CHECK(part.cut && raw.starts_with(part.bytes));
    } else {
        FUZZ_CHECK(cut == whole);
    }

    const auto shown = pidns::printable_text(raw);
    FUZZ_CHECK(printable_utf8(shown));
    FUZZ_CHECK(pidns::printable_text(whole) == whole);
    FUZZ_CHECK(pidns::is_printable_text(whole) && pidns::is_printable_text(shown));
    FUZZ_CHECK(pidns::is_printable_text(raw) == printable_utf8(raw));

    pidns::TextBudget budget(limit);
    const auto a = budget.escape(raw), b = budget.escape(raw);
    FUZZ_CHECK(printable_utf8(a) && printable_utf8(b));
    FUZZ_CHECK(b.size() <= std::max(pidns::kMinTextBytes, pidns::kMaxTextBytes));

    const auto unit = pidns::unescape_unit_name(raw);
    if (raw.find('\0') == std::string_view::npos) FUZZ_CHECK(unit.find('\0') == std::string::npos);
    if (printable_utf8(raw)) FUZZ_CHECK(printable_utf8(unit));
    FUZZ_CHECK(unit.size() <= raw.size());
    return 0;
}
