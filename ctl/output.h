// pidnsctl's output: JSON (nlohmann_json), aligned tables (fmt), colour and the pager, each only
// where systemd's CLIs would use them.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pidnsctl {

enum class JsonMode { off, pretty, short_ };

class Output {
public:
    // `full`: never shorten a table's cells (--full).
    Output(JsonMode json, bool pager_allowed, bool full = false);
    ~Output();
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;

    [[nodiscard]] JsonMode json() const noexcept { return json_; }
    // Colour on stdout / stderr: only on a terminal, not with NO_COLOR or TERM=dumb.
    [[nodiscard]] bool color() const noexcept { return color_; }
    [[nodiscard]] static bool stderr_color();
    // The cells a table may take: the terminal's width (COLUMNS when set, else the terminal's own)
    // when stdout is a terminal and --full is not given; 0 (no limit) otherwise, so that a pipe or
    // a file always gets every cell whole. Taken before the pager starts.
    [[nodiscard]] std::size_t width() const noexcept { return width_; }
    // Starts the pager (stdout is a terminal, no --no-pager): stdout goes to it from now on.
    void page();
    // Prints `j` as --json asks (one line for short), with a newline.
    void print_json(const nlohmann::json& j) const;

    std::string bold(const std::string& s) const { return color_ ? "\x1b[1m" + s + "\x1b[0m" : s; }
    std::string grey(const std::string& s) const { return color_ ? "\x1b[2m" + s + "\x1b[0m" : s; }

private:
    JsonMode json_;
    bool pager_allowed_;
    bool color_;
    std::size_t width_ = 0;
    pid_t pager_ = -1;
};

// Columns of text, aligned: numbers to the right, the rest to the left; the last column is not
// padded. The header is printed bold on a terminal. Cells are printed through printable_text
// (lib/escape.h): a row is one line whatever its cells hold. Widths are terminal cells of that
// escaped text (text_width.h).
//
// When the table is wider than Output::width(), as systemctl does: first the optional columns
// are left out (from the right), then the columns that may shrink share what the others leave,
// each given at least its natural width or an equal share, whichever is smaller, and a cell
// longer than its column ends in "…". Numbers and chains never shrink.
class Table {
public:
    struct Column {
        std::string header;
        bool right = false;
        bool shrink = false;    // text that may be shortened with "…" (names, commands)
        bool optional = false;  // left out when the table does not fit otherwise
    };
    explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    [[nodiscard]] std::size_t size() const noexcept { return rows_.size(); }
    // Prints the table; returns the headers of the optional columns left out to fit.
    std::vector<std::string> print(const Output& out, bool header) const;

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace pidnsctl
