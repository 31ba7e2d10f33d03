// Untrusted bytes (comm, argv, cgroup and unit names, mount paths) as printable UTF-8, reversibly:
// the one escaping rule of every string pidnsd puts on the bus and pidnsctl prints.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pidns {

// The rule (dbus/org.pidns.Manager1.xml, pidnsctl(1) and pidnsd(8) say the same):
// - each byte of invalid UTF-8 (a stray continuation byte, a truncated or overlong sequence, a
//   surrogate, a code point above U+10FFFF, bytes 0xF8-0xFF) is written "\xNN", two lower-case
//   hex digits;
// - so is each byte of a character that moves the cursor, drives the terminal or reorders what is
//   shown: the C0 controls U+0000-U+001F (NUL, tab, newline, ESC...), DEL U+007F, the C1
//   controls U+0080-U+009F (CSI, OSC...), the line and paragraph separators U+2028 and U+2029,
//   and the bidirectional formatting characters U+061C, U+200E, U+200F, U+202A-U+202E and
//   U+2066-U+2069 (is_unsafe_char);
// - a backslash is written "\\" where it would otherwise be read as the start of one of these
//   escapes (it is followed by a backslash, by an escaped byte, by "x" and two hex digits of a
//   byte this rule escapes, 00-1f or 7f-ff, or by U+2026), and kept as it is elsewhere: systemd's
//   own escapes in unit names ("my\x2dbox") read as they are;
// - every other character is kept as it is.
// The result is valid UTF-8 without any of those characters, and unescape_text gives the bytes
// back. A value longer than `max_bytes` once escaped is cut at a character or escape boundary and
// ends in kCutMarker ("\…", which the rule never produces otherwise), so it is at most `max_bytes`
// long; such a value no longer unescapes to the whole input.
inline constexpr std::size_t kMaxTextBytes = 4096;
inline constexpr std::string_view kCutMarker = "\\\xe2\x80\xa6";  // a backslash and U+2026 "…"

// `max_bytes` 0: no limit; otherwise at least kCutMarker's length is allowed.
std::string escape_text(std::string_view raw, std::size_t max_bytes = kMaxTextBytes);

struct UnescapedText {
    std::string bytes;
    bool cut = false;  // it ended in kCutMarker: `bytes` is a prefix of the original
};
// The bytes escape_text was given: "\\" decoded to a backslash and "\xNN" (either case) to its
// byte when that byte is one the rule escapes (00-1f, 7f-ff); any other backslash is itself;
// kCutMarker counts only at the very end.
UnescapedText unescape_text(std::string_view text);

// For a terminal, text that may or may not have been escaped already: invalid UTF-8 and the
// characters of the rule escaped as above, backslashes left as they are, no length limit. On
// escape_text's output it changes nothing; what it gives never moves the cursor or starts a
// terminal sequence, and is one line.
std::string printable_text(std::string_view s);

// The strings of one reply, escaped (escape_text) within a budget: each at most kMaxTextBytes
// until `total` bytes have been given, then each at most kMinTextBytes, so that no user's long
// names can make a reply too big for the bus (dbus-daemon drops a connection that sends a message
// over 32 MiB) while every value is still there, cut with kCutMarker.
inline constexpr std::size_t kReplyTextBytes = std::size_t{8} << 20;
inline constexpr std::size_t kMinTextBytes = 64;
class TextBudget {
public:
    explicit TextBudget(std::size_t total = kReplyTextBytes) noexcept : left_(total) {}
    std::string escape(std::string_view raw);
    [[nodiscard]] std::size_t left() const noexcept { return left_; }

private:
    std::size_t left_;
};

// Valid UTF-8 without any character of the rule (what escape_text and printable_text give).
bool is_printable_text(std::string_view s) noexcept;

// One character of UTF-8 at `pos` (< s.size()): its code point and length when `valid`; when not,
// len is 1 (the byte at `pos` is not the start of a well-formed character).
struct Utf8Char {
    char32_t cp = 0;
    std::size_t len = 1;
    bool valid = false;
};
Utf8Char decode_utf8(std::string_view s, std::size_t pos) noexcept;

// Whether a character is one the rule escapes (controls, separators, bidi formatting).
bool is_unsafe_char(char32_t cp) noexcept;

}  // namespace pidns
