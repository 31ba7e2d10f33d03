// Command lines of other processes, read by a child process of pidnsctl with a deadline.
#include "cmdline.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "escape.h"

namespace pidnsctl {
namespace {

using Clock = std::chrono::steady_clock;

// One answer of the child: which pid (its index), whether more than kMaxCmdline bytes were there,
// and the bytes read.
struct Header {
    std::uint32_t index;
    std::uint32_t len;
    std::uint32_t cut;
};

bool write_all(int fd, const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// The child: reads pids[from...] one by one and writes each answer to `out`; nothing else of
// pidnsctl's is open in it. Only system calls (and snprintf on a stack buffer) after the fork.
[[noreturn]] void child(const std::vector<std::uint32_t>& pids, std::size_t from, int out, pid_t parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    if (out != 3) {
        if (::dup2(out, 3) < 0) ::_exit(1);
        out = 3;
    }
    for (int fd = 0; fd < 3; ++fd) ::close(fd);
    if (::close_range(4, ~0u, 0) != 0)
        for (int fd = 4; fd < 1024; ++fd) ::close(fd);
    static char buf[kMaxCmdline + 1];
    for (std::size_t i = from; i < pids.size(); ++i) {
        char path[48];
        std::snprintf(path, sizeof path, "/proc/%u/cmdline", pids[i]);
        std::size_t n = 0;
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            while (n < sizeof buf) {
                const ssize_t r = ::read(fd, buf + n, sizeof buf - n);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                n += static_cast<std::size_t>(r);
            }
            ::close(fd);
        }
        const Header h{static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(std::min(n, kMaxCmdline)),
                       n > kMaxCmdline ? 1u : 0u};
        if (!write_all(out, &h, sizeof h) || !write_all(out, buf, h.len)) ::_exit(1);
    }
    ::_exit(0);
}

// The text of one command line: NUL-separated arguments joined by spaces, escaped.
std::string text_of(std::string raw, bool cut) {
    while (!raw.empty() && raw.back() == '\0') raw.pop_back();
    for (auto& ch : raw)
        if (ch == '\0') ch = ' ';
    auto s = pidns::escape_text(raw, pidns::kMaxTextBytes);
    if (cut && !s.ends_with(pidns::kCutMarker)) s += pidns::kCutMarker;
    return s;
}

}  // namespace

std::vector<std::string> read_cmdlines(const std::vector<std::uint32_t>& pids) {
    std::vector<std::string> out(pids.size());
    std::size_t next = 0;  // the first pid not answered yet
    std::size_t abandoned = 0;
    const pid_t self = ::getpid();
    while (next < pids.size() && abandoned < kMaxAbandoned) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) break;
        std::fflush(stdout);
        const pid_t pid = ::fork();
        if (pid < 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            break;
        }
        if (pid == 0) child(pids, next, fds[1], self);
        ::close(fds[1]);
        std::string buf;
        bool done = false;
        auto deadline = Clock::now() + kCmdlineDeadline;
        while (!done) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            pollfd p{fds[0], POLLIN, 0};
            const int ready = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) {
                // pids[next] holds its reader: give both up. The child ends when its read does.
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, WNOHANG);
                ++abandoned;
                ++next;
                break;
            }
            char chunk[8192];
            const ssize_t r = ::read(fds[0], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {  // the child is done (or died: the pid it was at stays unread)
                ::waitpid(pid, nullptr, 0);
                if (next < pids.size()) ++abandoned, ++next;
                done = true;
                break;
            }
            buf.append(chunk, static_cast<std::size_t>(r));
            while (buf.size() >= sizeof(Header)) {
                Header h{};
                std::memcpy(&h, buf.data(), sizeof h);
                if (buf.size() < sizeof h + h.len) break;
                if (h.index < pids.size()) {
                    out[h.index] = text_of(buf.substr(sizeof h, h.len), h.cut != 0);
                    next = h.index + 1;
                }
                buf.erase(0, sizeof h + h.len);
                deadline = Clock::now() + kCmdlineDeadline;
            }
        }
        ::close(fds[0]);
    }
    return out;
}

}  // namespace pidnsctl
