// Terminal cells of printable text (what lib/escape.h's printable_text gives), and text cut to a
// number of cells with an ellipsis, as systemctl shortens what does not fit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pidnsctl {

// The cells a terminal gives `printable` (valid UTF-8 without control characters): wcwidth of
// each character under C.UTF-8 (2 for East Asian wide ones, 0 for combining marks), 1 where the
// C library has no such locale.
std::size_t cell_width(std::string_view printable);

// `printable` as it is when it takes at most `cells` cells, else its longest start that leaves
// one cell for "…" followed by "…". An escape of the rule ("\xNN", "\\", "\…") is never split:
// it is kept whole or left out whole.
std::string ellipsize(std::string_view printable, std::size_t cells);

}  // namespace pidnsctl
