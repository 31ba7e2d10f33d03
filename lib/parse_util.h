// Bounds-checked number and field parsing over string_views, shared by the /proc parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace pidns {

// Whole-string decimal parse; no sign, no spaces, no overflow. nullopt otherwise.
std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept;
std::optional<std::int64_t> parse_i64(std::string_view s) noexcept;
std::optional<std::uint64_t> parse_hex_u64(std::string_view s) noexcept;

// Splits on runs of spaces and tabs, dropping empty fields.
std::vector<std::string_view> split_ws(std::string_view s);
// The next field of S separated by spaces or tabs, from `pos` on (advanced past it); false when
// none is left. split_ws without the vector.
bool next_field(std::string_view s, std::size_t& pos, std::string_view& field) noexcept;

// Next line of `text` starting at `pos` (without the '\n'); advances pos past it.
// Returns false when no line is left.
bool next_line(std::string_view text, std::size_t& pos, std::string_view& line) noexcept;

}  // namespace pidns
