// Test support: drives pidns-ns-tool (tests/support/ns_tool.cpp), which frees held namespaces and makes the kernel hand their inode to new ones.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace pidns::testing {

// One pidns-ns-tool (or any line-speaking command), started with posix_spawn (safe in a
// multi-threaded test) under an optional prefix (setpriv ...), its stdin and stdout on pipes.
// Ended on destruction: stdin closed (the tool ends its children), then SIGKILL and reaped.
class ToolProc {
public:
    explicit ToolProc(std::vector<std::string> argv) {
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int r = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        close(in[0]);
        close(out[1]);
        in_ = in[1];
        out_ = out[0];
        if (r != 0) {
            pid_ = -1;
            throw std::runtime_error("cannot start " + argv[0]);
        }
    }
    ~ToolProc() { stop(); }
    ToolProc(const ToolProc&) = delete;
    ToolProc& operator=(const ToolProc&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    void send(const std::string& line) {
        const std::string l = line + "\n";
        if (write(in_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) throw std::runtime_error("tool gone");
    }
    // The next line it prints ("" at EOF or after `timeout`).
    std::string line(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return l;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return "";
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char b[256];
            const ssize_t n = read(out_, b, sizeof b);
            if (n <= 0) return "";
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    // send(), then the answer.
    std::string ask(const std::string& line) {
        send(line);
        return this->line();
    }
    void stop() {
        if (pid_ <= 0) return;
        close(in_);
        for (int i = 0; i < 200; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        close(out_);
    }

private:
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1;
    std::string buf_;
};

// The first child /proc lists for `pid` (its main thread's children), 0 if none.
inline pid_t child_of_pid(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char b[64] = {};
    const ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? static_cast<pid_t>(std::atoi(b)) : 0;
}

// The number after `word` in a line "word N" (0 if the line is something else).
inline unsigned long long field(const std::string& line, const std::string& word) {
    if (line.rfind(word + " ", 0) != 0) return 0;
    return std::stoull(line.substr(word.size() + 1));
}

#ifdef PIDNS_NS_TOOL_BIN
// PREFIX pidns-ns-tool ARGS.
inline std::vector<std::string> ns_tool(std::vector<std::string> prefix, const std::vector<std::string>& args) {
    prefix.push_back(PIDNS_NS_TOOL_BIN);
    prefix.insert(prefix.end(), args.begin(), args.end());
    return prefix;
}

// Two empty files in a temp dir to bind-mount namespaces on (`a` and `b`), unmounted and removed at
// the end.
class MountPoints {
public:
    MountPoints() {
        char tmpl[] = "/tmp/pidns-identity-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        a = dir_ + "/a";
        b = dir_ + "/b";
        for (const auto& f : {a, b}) close(open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    }
    ~MountPoints() {
        for (const auto& f : {a, b}) {
            umount2(f.c_str(), MNT_DETACH);
            unlink(f.c_str());
        }
        rmdir(dir_.c_str());
    }
    MountPoints(const MountPoints&) = delete;
    MountPoints& operator=(const MountPoints&) = delete;
    std::string a, b;

private:
    std::string dir_;
};

// The reuse tests' start: A, a pidns-ns-tool holding a net namespace by its fd; B, one holding a
// uts namespace by a bind mount at `mount_b` only (it closed its fd).
struct HeldByFdAndMount {
    ToolProc a{ns_tool({}, {"hold", "net"})};
    const unsigned long long inode_a = field(a.line(), "held");
    ToolProc b{ns_tool({}, {"hold", "uts"})};
    const unsigned long long inode_b = field(b.line(), "held");
    explicit HeldByFdAndMount(const std::string& mount_b) {
        if (inode_a == 0 || inode_b == 0) throw std::runtime_error("pidns-ns-tool did not hold a net and a uts namespace");
        if (b.ask("bind " + mount_b) != "bound" || b.ask("close") != "closed")
            throw std::runtime_error("pidns-ns-tool did not leave its uts namespace to a bind mount at " + mount_b);
    }
};
#endif

}  // namespace pidns::testing
