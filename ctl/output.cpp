// pidnsctl's output: JSON, aligned tables, colour and the pager.
#include "output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>

#include "escape.h"
#include "text_width.h"

namespace pidnsctl {
namespace {

bool color_on(int fd) {
    if (!::isatty(fd)) return false;
    if (const char* nc = std::getenv("NO_COLOR"); nc && *nc) return false;
    const char* term = std::getenv("TERM");
    return !(term && std::strcmp(term, "dumb") == 0);
}

bool in_path(const std::string& prog) {
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/bin:/bin";
    for (std::size_t start = 0; start <= p.size();) {
        auto end = p.find(':', start);
        if (end == std::string::npos) end = p.size();
        const std::string dir = p.substr(start, end - start);
        if (!dir.empty() && ::access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
}

// The terminal's width in cells when stdout is one: $COLUMNS when it is a number (as systemd's
// tools take it), else the terminal's own; 0 when stdout is not a terminal.
std::size_t terminal_width() {
    if (!::isatty(1)) return 0;
    if (const char* c = std::getenv("COLUMNS"); c && *c) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(c, &end, 10);
        if (*end == '\0' && v > 0 && v < 100000) return v;
    }
    winsize ws{};
    if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

// What each column of a table gets: its width in cells, and whether it is shown.
struct Layout {
    std::vector<std::size_t> width;
    std::vector<bool> shown;
};

std::size_t total_width(const Layout& l) {
    std::size_t sum = 0, n = 0;
    for (std::size_t i = 0; i < l.width.size(); ++i)
        if (l.shown[i]) sum += l.width[i], ++n;
    return n == 0 ? 0 : sum + n - 1;  // one space between columns
}

}  // namespace

Output::Output(JsonMode json, bool pager_allowed, bool full)
    : json_(json), pager_allowed_(pager_allowed), color_(color_on(1)), width_(full ? 0 : terminal_width()) {}

Output::~Output() {
    if (pager_ <= 0) return;
    std::fflush(stdout);
    ::close(1);
    while (::waitpid(pager_, nullptr, 0) < 0 && errno == EINTR) {
    }
}

bool Output::stderr_color() { return color_on(2); }

void Output::page() {
    if (!pager_allowed_ || pager_ > 0 || !::isatty(1)) return;
    // $PIDNSCTL_PAGER, then $PAGER, then less -FRSX if there is one; "" or "cat": none.
    std::string cmd;
    if (const char* p = std::getenv("PIDNSCTL_PAGER")) cmd = p;
    else if (const char* q = std::getenv("PAGER")) cmd = q;
    else if (in_path("less")) cmd = "less -FRSX";
    if (cmd.empty() || cmd == "cat") return;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return;
    }
    if (pid == 0) {
        ::dup2(fds[0], 0);
        ::signal(SIGINT, SIG_IGN);  // Ctrl-C ends pidnsctl; less stays until q, as with systemctl
        if (cmd == "less -FRSX") ::execlp("less", "less", "-FRSX", static_cast<char*>(nullptr));
        else ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::signal(SIGPIPE, SIG_DFL);  // the user quit the pager: stop quietly
    pager_ = pid;
}

void Output::print_json(const nlohmann::json& j) const {
    // Strings are escaped text already (pidnsd's, and pidnsctl's own through escape_text); should
    // one not be valid UTF-8 all the same, it is printed with U+FFFD rather than lost with the rest.
    constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
    const std::string s = json_ == JsonMode::pretty ? j.dump(2, ' ', false, kReplace) : j.dump(-1, ' ', false, kReplace);
    std::fputs(s.c_str(), stdout);
    std::fputc('\n', stdout);
}

std::vector<std::string> Table::print(const Output& out, bool header) const {
    // Every cell as the terminal may show it: no control character, no invalid UTF-8, one line.
    std::vector<std::vector<std::string>> rows;
    rows.reserve(rows_.size() + 1);
    if (header) {
        auto& h = rows.emplace_back();
        for (const auto& c : columns_) h.push_back(pidns::printable_text(c.header));
    }
    for (const auto& r : rows_) {
        auto& cells = rows.emplace_back();
        for (const auto& cell : r) cells.push_back(pidns::printable_text(cell));
    }
    const std::size_t n = columns_.size();
    Layout l{std::vector<std::size_t>(n, 0), std::vector<bool>(n, true)};
    for (const auto& r : rows)
        for (std::size_t i = 0; i < n; ++i) l.width[i] = std::max(l.width[i], cell_width(r.at(i)));
    std::vector<std::string> dropped;
    const std::size_t limit = out.width();
    // Optional columns go first, from the right.
    for (std::size_t i = n; limit != 0 && total_width(l) > limit && i-- > 0;)
        if (columns_[i].optional) {
            l.shown[i] = false;
            dropped.insert(dropped.begin(), columns_[i].header);
        }
    if (limit != 0 && total_width(l) > limit) {
        // The columns that may shrink share what the others leave: in order of natural width,
        // each keeps it while it is within an equal share of what is left; the rest split it.
        std::vector<std::size_t> shrink;
        std::size_t fixed = total_width(l);
        for (std::size_t i = 0; i < n; ++i)
            if (l.shown[i] && columns_[i].shrink) {
                shrink.push_back(i);
                fixed -= l.width[i];
            }
        std::sort(shrink.begin(), shrink.end(), [&](std::size_t a, std::size_t b) { return l.width[a] < l.width[b]; });
        std::size_t left = limit > fixed ? limit - fixed : 0;
        for (std::size_t k = 0; k < shrink.size(); ++k) {
            const std::size_t i = shrink[k], count = shrink.size() - k;
            const std::size_t share = count == 1 ? left : left / count;  // the widest gets what is left
            const std::size_t w = std::min(l.width[i], std::max<std::size_t>(share, 4));  // "ab…" at least
            l.width[i] = w;
            left -= std::min(left, w);
        }
    }
    bool first = header;
    for (auto& r : rows) {
        std::string s;
        std::size_t last = n;
        for (std::size_t i = n; i-- > 0;)
            if (l.shown[i]) {
                last = i;
                break;
            }
        for (std::size_t i = 0; i < n; ++i) {
            if (!l.shown[i]) continue;
            const std::string cell = ellipsize(r[i], l.width[i]);
            const std::size_t pad = l.width[i] - std::min(l.width[i], cell_width(cell));
            if (columns_[i].right) s += std::string(pad, ' ') + cell;
            else s += i == last ? cell : cell + std::string(pad, ' ');
            if (i != last) s += ' ';
        }
        fmt::print("{}\n", first ? out.bold(s) : s);
        first = false;
    }
    return dropped;
}

}  // namespace pidnsctl
