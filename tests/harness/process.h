// Processes a test or bench starts: argv made before fork, spawn, run with a deadline, background
// processes killed and reaped with their owner, setpriv prefixes, and waits on what the kernel says.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pidns::harness {

using Argv = std::vector<std::string>;

// The unprivileged user every Debian has, and the setpriv prefix that runs a command as it (no
// supplementary groups). as_uid: the same for any uid (its gid is the same number).
inline constexpr std::uint32_t kNobody = 65534;
Argv as_uid(std::uint32_t uid);
inline const Argv kAsNobody = as_uid(kNobody);  // inline: made before any global of a file that includes it

struct CmdResult {
    int status = -1;  // exit status, or 128+signal
    std::string out, err;
};

// The whole content of a (small) file, "" if it cannot be read.
std::string read_file(const std::string& path);

// `a` followed by `b`: prefixes such as setpriv/unshare in front of a command.
Argv concat(Argv a, const Argv& b);

// A command line (and environment) as the arrays exec wants, made before fork(): until it execs,
// the child of a multi-threaded test may make async-signal-safe calls only (no malloc: another
// thread may have held an allocator lock when fork() copied it, and the child would wait forever).
class ExecArgs {
public:
    // `env_add` ("NAME=value") replaces or extends this process's environment.
    explicit ExecArgs(Argv argv, const std::vector<std::string>& env_add = {});
    ExecArgs(const ExecArgs&) = delete;
    ExecArgs& operator=(const ExecArgs&) = delete;
    // In the child: execvpe(), else _exit(127). Async-signal-safe.
    [[noreturn]] void exec() const noexcept;

private:
    Argv argv_;
    std::vector<std::string> env_;
    std::vector<char*> argv_ptrs_, env_ptrs_;
};

// Where a spawned command's stdout and stderr go, and what else it gets. Files are opened before
// fork (stdout truncated, stderr appended); an fd wins over a path; "" and -1: inherited (stdin:
// /dev/null).
struct SpawnOptions {
    std::string out_path, err_path;
    int out_fd = -1, err_fd = -1, in_fd = -1;
    int keep_fd = -1;                  // left open across exec (e.g. dbus-daemon's --print-address)
    std::vector<std::string> env;      // "NAME=value" added to (or replacing in) this environment
    int death_signal = SIGKILL;        // PR_SET_PDEATHSIG: sent when the spawning thread ends
};

// fork + exec with stdin from /dev/null (or in_fd), no blocked signals, default SIGINT/SIGTERM/SIGPIPE. The child
// dies with this process (death_signal) and never outlives it. Throws std::runtime_error if fork fails.
pid_t spawn(const Argv& argv, const SpawnOptions& options = {});

// Waits for `pid` to end: its exit status (128+signal if killed); SIGKILLs it after `timeout`.
// -1 if it is not our child (already reaped).
int wait_exit(pid_t pid, std::chrono::milliseconds timeout);

// Runs argv (no shell), captures stdout and stderr; SIGKILLs it after `timeout`.
CmdResult run(const Argv& argv, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// The kernel's own answer: opens /proc/TARGET/ns/pid as the caller that `prefix` makes (dd opens
// it and reads nothing; sh would not do: dash resets its euid to its real uid). Exit status 0:
// allowed; else stderr says "Permission denied" or "No such file".
CmdResult open_ns_pid_as(const Argv& prefix, pid_t target);

// A temp dir (mode 0755) removed, recursively, on destruction; on SIGINT/SIGTERM too once
// remove_temp_dirs_on_signal() ran (a bench stopped with Ctrl-C).
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

// SIGINT and SIGTERM: the files of every live TempDir are removed (async-signal-safe: a flat
// directory's entries, then the directory) and the process exits 128+signal; its children die
// with it (SpawnOptions::death_signal). SIGPIPE is ignored.
void remove_temp_dirs_on_signal();
// What that handler does, for a program's own handler to end with: async-signal-safe, no return.
[[noreturn]] void exit_on_signal(int sig);

// Kills (SIGKILL) and reaps, on destruction or at now(), the processes it was given: a test's
// children that must not outlive it. Never kills pid 0 or -1.
class Reap {
public:
    Reap() = default;
    explicit Reap(pid_t pid) { add(pid); }
    Reap(std::initializer_list<pid_t> pids) : pids_(pids) {}
    ~Reap() { now(); }
    Reap(const Reap&) = delete;
    Reap& operator=(const Reap&) = delete;
    void add(pid_t pid) { pids_.push_back(pid); }
    void now() noexcept;

private:
    std::vector<pid_t> pids_;
};

// A background command killed (SIGKILL) and reaped on destruction unless it ended and was waited
// for. With `capture`, its stdout and stderr go to a file read by output().
class Background {
public:
    explicit Background(const Argv& argv, bool capture = true, const std::vector<std::string>& env = {});
    ~Background() { stop(SIGKILL); }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    // Waits for it to end (SIGKILL after `timeout`); its exit status (128+signal if killed).
    int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // Sends `sig` and waits for it to end.
    int stop(int sig);
    // Kills and reaps it now (once).
    void kill_now() { stop(SIGKILL); }
    [[nodiscard]] std::string output() const;  // "" without `capture`
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

protected:
    struct Adopted {
        pid_t pid;
    };
    explicit Background(Adopted child) : pid_(child.pid) {}  // a child this process forked itself

private:
    std::optional<TempDir> dir_;
    pid_t pid_ = -1;
    int status_ = -1;
};

// A background process killed and reaped with its owner: a command line, or (NonDumpable) a fork
// of this process that becomes nobody, is made not dumpable and waits.
class Proc : public Background {
public:
    explicit Proc(const Argv& argv) : Background(argv, false) {}
    struct NonDumpable {};
    explicit Proc(NonDumpable);
    Proc(const Proc&) = delete;
    Proc& operator=(const Proc&) = delete;
    void stop() { kill_now(); }
};

// A child running argv with stdout into a pipe, read by a thread of its own: each line is kept with
// the time it was read. Killed (SIGKILL) and reaped on destruction.
class LineReader {
public:
    using Clock = std::chrono::steady_clock;
    struct Line {
        Clock::time_point at;
        std::string text;
    };
    explicit LineReader(const Argv& argv);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;
    // The first line for which pred holds, waiting up to `timeout` (nullopt: none came, or EOF).
    template <class P>
    std::optional<Line> wait_line(P pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock lk(mu_);
        std::optional<Line> found;
        cv_.wait_for(lk, timeout, [&] {
            for (const auto& l : lines_)
                if (pred(l.text)) {
                    found = l;
                    return true;
                }
            return eof_;
        });
        return found;
    }
    // Sends sig and returns the exit status (128+signal if killed), -1 if not gone in 10 s.
    int stop(int sig);
    // All it wrote to stdout (a last line without its newline included), once it has ended.
    std::string output();
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    void read_loop();
    pid_t pid_ = -1;
    int fd_ = -1;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Line> lines_;
    std::string partial_;
    bool eof_ = false;
};

// How long a process started by a test may take to exec or fork: a wait for a precondition, not
// a timing, so generous (a CI machine busy with earlier tests, under ASan). A child stuck before
// its exec fails with where the kernel has it (whereabouts).
inline constexpr int kStartPolls = 3000;  // of 10 ms

// What the kernel says `pid` is doing, for a test that waited on it in vain: its state, where it
// sleeps and its kernel stack (root only), or how it ended if it is a zombie (not reaped).
std::string whereabouts(pid_t pid);

// Waits until `pid` runs `comm` (its exec is done, so its credentials are final). Throws
// std::runtime_error at once if it ended first, or after kStartPolls.
void wait_comm(pid_t pid, const std::string& comm);

// The child that `unshare -f` forked (the process inside the new namespaces); throws if none came.
pid_t child_of(pid_t pid);

// /proc/PID/task/TID/REST.
std::string task_path(pid_t tgid, pid_t tid, const std::string& rest);

// VmRSS of a process in KiB, -1 if gone.
long rss_kb(pid_t pid);

// Polls `pred` every `step` until it holds (true) or `limit` passes (false). An exception from
// `pred` counts as "not yet" when `retry_throws`.
template <class F>
bool eventually(F&& pred, std::chrono::milliseconds limit = std::chrono::seconds(5),
                std::chrono::milliseconds step = std::chrono::milliseconds(5), bool retry_throws = false) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        try {
            if (pred()) return true;
        } catch (...) {
            if (!retry_throws) throw;
        }
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(step);
    }
}

}  // namespace pidns::harness
