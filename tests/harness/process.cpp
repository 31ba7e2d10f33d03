// Processes a test or bench starts: spawn with argv made before fork, run, reap, wait on the kernel.
#include "process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

extern char** environ;

namespace pidns::harness {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Argv as_uid(std::uint32_t uid) {
    const std::string u = std::to_string(uid);
    return {"setpriv", "--reuid=" + u, "--regid=" + u, "--clear-groups"};
}

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

Argv concat(Argv a, const Argv& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

ExecArgs::ExecArgs(Argv argv, const std::vector<std::string>& env_add) : argv_(std::move(argv)) {
    if (argv_.empty()) throw std::invalid_argument("ExecArgs: empty command line");
    for (char** e = environ; *e; ++e) {
        const std::string_view var(*e);
        const auto eq = var.find('=');
        const auto name = var.substr(0, eq == std::string_view::npos ? var.size() : eq + 1);
        bool replaced = false;
        for (const auto& a : env_add) replaced |= a.compare(0, name.size(), name) == 0;
        if (!replaced) env_.emplace_back(var);
    }
    env_.insert(env_.end(), env_add.begin(), env_add.end());
    // The strings are final: the pointers into them stay valid.
    for (auto& a : argv_) argv_ptrs_.push_back(a.data());
    argv_ptrs_.push_back(nullptr);
    for (auto& e : env_) env_ptrs_.push_back(e.data());
    env_ptrs_.push_back(nullptr);
}

void ExecArgs::exec() const noexcept {
    execvpe(argv_ptrs_[0], argv_ptrs_.data(), env_ptrs_.data());
    _exit(127);
}

pid_t spawn(const Argv& argv, const SpawnOptions& o) {
    const ExecArgs args(argv, o.env);
    // Opened before fork: the child only dup2()s.
    const int out = o.out_fd >= 0 ? -1
                    : o.out_path.empty()
                        ? -1
                        : ::open(o.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = o.err_fd >= 0 ? -1
                    : o.err_path.empty()
                        ? -1
                        : ::open(o.err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, o.death_signal);
        if (::getppid() != parent) _exit(127);  // the parent is already gone
        if (o.in_fd >= 0 || devnull >= 0) ::dup2(o.in_fd >= 0 ? o.in_fd : devnull, 0);
        if (o.out_fd >= 0 || out >= 0) ::dup2(o.out_fd >= 0 ? o.out_fd : out, 1);
        if (o.err_fd >= 0 || err >= 0) ::dup2(o.err_fd >= 0 ? o.err_fd : err, 2);
        if (o.keep_fd >= 0) ::fcntl(o.keep_fd, F_SETFD, 0);
        for (int sig : {SIGINT, SIGTERM, SIGPIPE}) ::signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        args.exec();
    }
    for (int fd : {out, err, devnull})
        if (fd >= 0) ::close(fd);
    if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
    return pid;
}

int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    if (pid <= 0) return -1;
    const auto until = Clock::now() + timeout;
    int st = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -1;
        if (Clock::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            return 128 + SIGKILL;
        }
        std::this_thread::sleep_for(5ms);
    }
}

CmdResult run(const Argv& argv, std::chrono::milliseconds timeout) {
    TempDir d;
    const std::string out = d.path() + "/out", err = d.path() + "/err";
    CmdResult r;
    SpawnOptions o;
    o.out_path = out;
    o.err_path = err;
    r.status = wait_exit(spawn(argv, o), timeout);
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

CmdResult open_ns_pid_as(const Argv& prefix, pid_t target) {
    return run(concat(prefix, {"dd", "of=/dev/null", "count=0", "status=none",
                               "if=/proc/" + std::to_string(target) + "/ns/pid"}));
}

// ---------------------------------------------------------------------------------------------
// Temp dirs, and their removal on SIGINT/SIGTERM from a fixed table a signal handler may read.

namespace {

constexpr std::size_t kMaxDirs = 64;
struct DirSlot {
    std::atomic<bool> used{false};
    char path[256] = {};
};
std::array<DirSlot, kMaxDirs> g_dirs;

void register_dir(const std::string& path) {
    if (path.size() >= sizeof g_dirs[0].path) return;
    for (auto& s : g_dirs) {
        bool expected = false;
        if (s.used.load() || !s.used.compare_exchange_strong(expected, true)) continue;
        std::memcpy(s.path, path.c_str(), path.size() + 1);
        return;
    }
}

void unregister_dir(const std::string& path) {
    for (auto& s : g_dirs)
        if (s.used.load() && path == s.path) {
            s.path[0] = '\0';
            s.used.store(false);
            return;
        }
}

// Async-signal-safe: the entries of a flat directory, then the directory.
void remove_flat_dir(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        alignas(8) char buf[4096];
        for (long n; (n = ::syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
            for (long at = 0; at < n;) {
                // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
                unsigned short reclen = 0;
                std::memcpy(&reclen, buf + at + 16, sizeof reclen);
                const char* name = buf + at + 19;
                if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) ::unlinkat(fd, name, 0);
                at += reclen;
            }
        }
        ::close(fd);
    }
    ::rmdir(path);
}

}  // namespace

void exit_on_signal(int sig) {
    for (auto& s : g_dirs)
        if (s.used.load() && s.path[0]) remove_flat_dir(s.path);
    ::_exit(128 + sig);
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/pidnsd-test.XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp failed: ") + std::strerror(errno));
    path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
    register_dir(path_);
}

TempDir::~TempDir() {
    unregister_dir(path_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void remove_temp_dirs_on_signal() {
    struct sigaction sa {};
    sa.sa_handler = exit_on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
}

// ---------------------------------------------------------------------------------------------

void Reap::now() noexcept {
    for (const pid_t p : pids_)
        if (p > 0) ::kill(p, SIGKILL);
    for (const pid_t p : pids_)
        if (p > 0) ::waitpid(p, nullptr, 0);
    pids_.clear();
}

Background::Background(const Argv& argv, bool capture, const std::vector<std::string>& env) {
    SpawnOptions o;
    o.env = env;
    if (capture) {
        dir_.emplace();
        o.out_path = o.err_path = dir_->path() + "/out";
    }
    pid_ = spawn(argv, o);
}

int Background::wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return status_;
    status_ = wait_exit(pid_, timeout);
    pid_ = -1;
    return status_;
}

int Background::stop(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
    return wait(10s);
}

std::string Background::output() const { return dir_ ? read_file(dir_->path() + "/out") : std::string(); }

namespace {

// A fork of this process that becomes nobody, is made not dumpable, and waits.
pid_t fork_nondumpable_nobody() {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) _exit(1);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
            ::setresuid(kNobody, kNobody, kNobody) != 0)
            _exit(1);
        ::prctl(PR_SET_DUMPABLE, 0);
        for (;;) ::pause();
    }
    return pid;
}

}  // namespace

Proc::Proc(NonDumpable) : Background(Adopted{fork_nondumpable_nobody()}) {}

LineReader::LineReader(const Argv& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    try {
        SpawnOptions o;
        o.out_fd = fds[1];
        pid_ = spawn(argv, o);
    } catch (...) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw;
    }
    ::close(fds[1]);
    fd_ = fds[0];
    thread_ = std::thread([this] { read_loop(); });
}

LineReader::~LineReader() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    thread_.join();
    ::close(fd_);
}

int LineReader::stop(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    for (int i = 0; i < 1000; ++i) {
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        std::this_thread::sleep_for(10ms);
    }
    return -1;
}

std::string LineReader::output() {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, 10s, [&] { return eof_; });
    std::string out;
    for (const auto& l : lines_) out += l.text + "\n";
    return out + partial_;
}

void LineReader::read_loop() {
    char b[4096];
    for (;;) {
        const ssize_t n = ::read(fd_, b, sizeof b);
        const auto now = Clock::now();
        std::lock_guard lk(mu_);
        if (n <= 0) {
            eof_ = true;
            cv_.notify_all();
            return;
        }
        partial_.append(b, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = partial_.find('\n')) != std::string::npos;) {
            lines_.push_back({now, partial_.substr(0, nl)});
            partial_.erase(0, nl + 1);
        }
        cv_.notify_all();
    }
}

std::string whereabouts(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ostringstream out;
    const std::string stat = read_file(dir + "/stat");
    const auto paren = stat.rfind(')');
    const char state = paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
    std::string comm = read_file(dir + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    out << "process " << pid << " (comm " << comm << ") is in state " << state;
    if (state == 'Z') {
        siginfo_t si{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            out << (si.si_code == CLD_EXITED ? ", exited with status " : ", killed by signal ") << si.si_status;
    } else {
        out << ", waiting in " << read_file(dir + "/wchan") << "\nkernel stack:\n" << read_file(dir + "/stack");
    }
    return out.str();
}

void wait_comm(pid_t pid, const std::string& comm) {
    const std::string dir = "/proc/" + std::to_string(pid);
    for (int i = 0; i < kStartPolls; ++i) {
        if (read_file(dir + "/comm") == comm + "\n") return;
        const std::string stat = read_file(dir + "/stat");
        if (const auto paren = stat.rfind(')'); paren != std::string::npos && stat.compare(paren, 3, ") Z") == 0)
            throw std::runtime_error("process " + std::to_string(pid) + " ended before it became " + comm + ": " +
                                     whereabouts(pid));
        std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("process " + std::to_string(pid) + " never became " + comm + " in " +
                             std::to_string(kStartPolls / 100) + " s: " + whereabouts(pid));
}

pid_t child_of(pid_t pid) {
    const std::string path = task_path(pid, pid, "children");
    for (int i = 0; i < kStartPolls; ++i) {
        std::istringstream ss(read_file(path));
        pid_t c = 0;
        if (ss >> c) return c;
        std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("process " + std::to_string(pid) + " made no child in " +
                             std::to_string(kStartPolls / 100) + " s: " + whereabouts(pid));
}

std::string task_path(pid_t tgid, pid_t tid, const std::string& rest) {
    return "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid) + "/" + rest;
}

long rss_kb(pid_t pid) {
    const auto status = read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("VmRSS:");
    return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + 6, nullptr, 10);
}

}  // namespace pidns::harness
