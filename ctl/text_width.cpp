// Terminal cells of printable text, and text cut to fit with an ellipsis.
#include "text_width.h"

#include <locale.h>
#include <wchar.h>

#include "escape.h"

namespace pidnsctl {
namespace {

constexpr std::string_view kEllipsis = "\xe2\x80\xa6";  // U+2026

// wcwidth under C.UTF-8, whatever the locale pidnsctl runs in (a table is laid out the same in
// LANG=C): glibc has that locale built in since 2.35.
int char_cells(char32_t cp) {
    static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (cp < 0x7f) return 1;  // printable ASCII (printable text has no controls)
    if (!utf8) return 1;
    const locale_t old = ::uselocale(utf8);
    const int w = ::wcwidth(static_cast<wchar_t>(cp));
    ::uselocale(old);
    return w < 0 ? 1 : w;
}

// The length in bytes of the unit that starts at `pos`: an escape of the rule, or one character.
std::size_t unit_at(std::string_view s, std::size_t pos) {
    const auto rest = s.substr(pos);
    if (rest.starts_with(pidns::kCutMarker)) return pidns::kCutMarker.size();
    if (rest.size() >= 2 && rest[0] == '\\' && rest[1] == '\\') return 2;
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
    if (rest.size() >= 4 && rest[0] == '\\' && rest[1] == 'x' && hex(rest[2]) && hex(rest[3])) return 4;
    return pidns::decode_utf8(s, pos).len;
}

std::size_t unit_cells(std::string_view unit) {
    const auto c = pidns::decode_utf8(unit, 0);
    if (c.len == unit.size()) return static_cast<std::size_t>(char_cells(c.cp));
    std::size_t n = 0;  // an escape: its characters, each ASCII or U+2026
    for (std::size_t i = 0; i < unit.size(); i += pidns::decode_utf8(unit, i).len)
        n += static_cast<std::size_t>(char_cells(pidns::decode_utf8(unit, i).cp));
    return n;
}

}  // namespace

std::size_t cell_width(std::string_view printable) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < printable.size();) {
        const auto c = pidns::decode_utf8(printable, i);
        n += c.valid ? static_cast<std::size_t>(char_cells(c.cp)) : 1;
        i += c.len;
    }
    return n;
}

std::string ellipsize(std::string_view printable, std::size_t cells) {
    if (cell_width(printable) <= cells) return std::string(printable);
    if (cells == 0) return "";
    std::string out;
    std::size_t used = 0;
    for (std::size_t i = 0; i < printable.size();) {
        const std::size_t len = unit_at(printable, i);
        const auto unit = printable.substr(i, len);
        const std::size_t w = unit_cells(unit);
        if (used + w + 1 > cells) break;  // one cell stays for the ellipsis
        out += unit;
        used += w;
        i += len;
    }
    return out + std::string(kEllipsis);
}

}  // namespace pidnsctl
