// Untrusted bytes as printable UTF-8: escape_text, unescape_text, printable_text.
#include "escape.h"

#include <algorithm>

namespace pidns {

Utf8Char decode_utf8(std::string_view s, std::size_t pos) noexcept {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char b0 = byte(pos);
    if (b0 < 0x80) return {b0, 1, true};
    std::size_t len = 0;
    char32_t cp = 0, min = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return {};  // a continuation byte, an overlong lead (0xc0, 0xc1) or 0xf5-0xff
    }
    if (pos + len > s.size()) return {};  // truncated
    for (std::size_t i = 1; i < len; ++i) {
        const unsigned char b = byte(pos + i);
        if ((b & 0xc0) != 0x80) return {};
        cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {};  // overlong, too big, surrogate
    return {cp, len, true};
}

bool is_unsafe_char(char32_t cp) noexcept {
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A byte the rule writes as \xNN when it escapes (a control's, or any byte of a multi-byte one).
bool escapable_byte(int b) { return b < 0x20 || b >= 0x7f; }

// "xNN" naming an escapable byte at the start of `s` (what follows the backslash of an escape):
// that byte, else -1.
int escaped_byte(std::string_view s) {
    if (s.size() < 3 || s[0] != 'x') return -1;
    const int hi = hex_value(s[1]), lo = hex_value(s[2]);
    if (hi < 0 || lo < 0) return -1;
    const int b = hi * 16 + lo;
    return escapable_byte(b) ? b : -1;
}

// Whether a backslash followed by `rest` (raw bytes) must be doubled: kept single, the escaped text
// of `rest` after it would read as an escape.
bool backslash_needs_doubling(std::string_view rest) {
    if (rest.empty()) return false;
    const auto c = decode_utf8(rest, 0);
    if (!c.valid || is_unsafe_char(c.cp) || c.cp == '\\') return true;  // its text starts with a backslash
    return escaped_byte(rest) >= 0 || rest.starts_with(kCutMarker.substr(1));
}

void append_hex(std::string& out, unsigned char b) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
}

// The rule over `raw`: backslashes doubled or kept, cut at `max_bytes` (0: no limit).
std::string escape(std::string_view raw, bool double_backslash, std::size_t max_bytes) {
    if (max_bytes != 0 && max_bytes < kCutMarker.size()) max_bytes = kCutMarker.size();
    // Most names are printable ASCII with no backslash: they stay as they are.
    const bool plain = std::all_of(raw.begin(), raw.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f && c != '\\';
    });
    if (plain && (max_bytes == 0 || raw.size() <= max_bytes)) return std::string(raw);
    std::string out;
    out.reserve(raw.size());
    std::string unit;
    std::size_t fit = 0;  // the length at the last unit boundary that leaves room for the marker
    for (std::size_t i = 0; i < raw.size();) {
        const auto c = decode_utf8(raw, i);
        unit.clear();
        if (c.valid && c.cp == '\\' && double_backslash && backslash_needs_doubling(raw.substr(i + 1))) {
            unit = "\\\\";
        } else if (c.valid && !is_unsafe_char(c.cp)) {
            unit.assign(raw.substr(i, c.len));
        } else {
            for (std::size_t k = 0; k < c.len; ++k) append_hex(unit, static_cast<unsigned char>(raw[i + k]));
        }
        i += c.len;
        if (max_bytes != 0 && out.size() + unit.size() > max_bytes) {
            out.resize(fit);
            out += kCutMarker;
            return out;
        }
        out += unit;
        // The marker may not follow a single backslash (it would read as "\\" and "…").
        if (out.size() + kCutMarker.size() <= max_bytes && unit != "\\") fit = out.size();
    }
    return out;
}

}  // namespace

std::string escape_text(std::string_view raw, std::size_t max_bytes) { return escape(raw, true, max_bytes); }

std::string printable_text(std::string_view s) { return escape(s, false, 0); }

std::string TextBudget::escape(std::string_view raw) {
    auto out = escape_text(raw, left_ >= kMaxTextBytes ? kMaxTextBytes : std::max(left_, kMinTextBytes));
    left_ -= std::min(left_, out.size());
    return out;
}

UnescapedText unescape_text(std::string_view text) {
    UnescapedText u;
    u.bytes.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto rest = text.substr(i);
        if (rest[0] != '\\') {
            u.bytes += rest[0];
        } else if (rest == kCutMarker) {
            u.cut = true;
            break;
        } else if (rest.size() >= 2 && rest[1] == '\\') {
            u.bytes += '\\';
            i += 1;
        } else if (const int b = escaped_byte(rest.substr(1)); b >= 0) {
            u.bytes += static_cast<char>(b);
            i += 3;
        } else {
            u.bytes += '\\';
        }
    }
    return u;
}

bool is_printable_text(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = decode_utf8(s, i);
        if (!c.valid || is_unsafe_char(c.cp)) return false;
        i += c.len;
    }
    return true;
}

}  // namespace pidns
