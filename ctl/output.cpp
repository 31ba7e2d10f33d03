// pidnsctl's output: JSON, aligned tables, colour and the pager.
#include "output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fmt/core.h>

#include "escape.h"

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

// Display width of UTF-8 text without escape sequences (tree lines hold box-drawing characters).
std::size_t width(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char ch : s)
        if ((ch & 0xc0) != 0x80) ++n;
    return n;
}

}  // namespace

Output::Output(JsonMode json, bool pager_allowed) : json_(json), pager_allowed_(pager_allowed), color_(color_on(1)) {}

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

void Table::print(const Output& out, bool header) const {
    // Every cell as the terminal may show it: no control character, no invalid UTF-8, one line.
    std::vector<std::vector<std::string>> rows;
    rows.reserve(rows_.size());
    for (const auto& r : rows_) {
        auto& cells = rows.emplace_back();
        for (const auto& cell : r) cells.push_back(pidns::printable_text(cell));
    }
    std::vector<std::size_t> w(columns_.size(), 0);
    for (std::size_t i = 0; i < columns_.size(); ++i) {
        if (header) w[i] = width(columns_[i].header);
        for (const auto& r : rows) w[i] = std::max(w[i], width(r.at(i)));
    }
    auto line = [&](const std::vector<std::string>& cells, bool is_header) {
        std::string s;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            const bool last = i + 1 == cells.size();
            const std::size_t pad = w[i] - width(cells[i]);
            std::string cell = columns_[i].right ? std::string(pad, ' ') + cells[i]
                                                 : (last ? cells[i] : cells[i] + std::string(pad, ' '));
            s += cell;
            if (!last) s += ' ';
        }
        if (is_header) s = out.bold(s);
        fmt::print("{}\n", s);
    };
    if (header) {
        std::vector<std::string> h;
        for (const auto& c : columns_) h.push_back(c.header);
        line(h, true);
    }
    for (const auto& r : rows) line(r, false);
}

}  // namespace pidnsctl
