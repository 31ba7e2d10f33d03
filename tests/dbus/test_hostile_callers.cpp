// Hostile callers against the real pidnsd: pids recycled under live connections, privileges dropped after a call.
// A nobody connection handed to a child whose original pid is then recycled (clone3 set_tid) by a nobody with
// CAP_SYS_PTRACE, and a root connection that setresuid()s to nobody after its first call: pidnsd must judge a
// connection by the process that made it, and refuse it (AccessDenied) once that process is gone or no longer
// has the uid the bus authenticated.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const Argv kAsNobodyPtrace = concat(kAsNobody, {"--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace"});
constexpr std::uint64_t kCapSysPtrace = 1ull << 19;
const std::string kDenied = "org.freedesktop.DBus.Error.AccessDenied";

// CLOCK_BOOTTIME in the clock ticks of /proc/PID/stat's start time (as pidnsd stamps a new connection).
std::uint64_t ticks_now() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    const auto hz = static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
    return static_cast<std::uint64_t>(ts.tv_sec) * hz +
           static_cast<std::uint64_t>(ts.tv_nsec) / (1'000'000'000ull / hz);
}

// Field 22 of /proc/PID/stat (0 if unreadable).
std::uint64_t start_time_of(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream ss(stat.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22; ++i)
        if (!(ss >> field)) return 0;
    return std::stoull(field);
}

// A line of /proc/PID/status without its "Key:\t" ("" if absent).
std::string status_of(pid_t pid, const std::string& key) {
    std::istringstream ss(read_file("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(ss, line);)
        if (line.rfind(key + ":\t", 0) == 0) return line.substr(key.size() + 2);
    return "";
}

// The test process adopts orphans (the handoff's child once its parent exits) while it lives.
class Subreaper {
public:
    Subreaper() {
        prctl(PR_GET_CHILD_SUBREAPER, &was_);
        prctl(PR_SET_CHILD_SUBREAPER, 1);
    }
    ~Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, was_); }
    Subreaper(const Subreaper&) = delete;
    Subreaper& operator=(const Subreaper&) = delete;

private:
    int was_ = 0;
};

// pidns-bus-handoff under `prefix`, its stdin and stdout on pipes, stderr in a file. The original
// process is a child of the test; the child it forks is pinned by a pidfd once it reports. Both
// are killed and reaped on destruction.
class Handoff {
public:
    Handoff(const Argv& prefix, const Argv& args) {
        const Argv argv = concat(concat(prefix, {PIDNS_HANDOFF_BIN}), args);
        const ExecArgs exec_args(argv);
        const std::string err = dir_.path() + "/stderr";
        int in[2], out[2];
        REQUIRE(pipe2(in, O_CLOEXEC) == 0);
        REQUIRE(pipe2(out, O_CLOEXEC) == 0);
        const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(err_fd >= 0);
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            dup2(in[0], 0);
            dup2(out[1], 1);
            dup2(err_fd, 2);
            exec_args.exec();
        }
        close(in[0]);
        close(out[1]);
        close(err_fd);
        in_ = in[1];
        out_ = out[0];
        std::cout << "  $ " << join(argv) << "\n";
    }
    ~Handoff() {
        if (child_pidfd_ >= 0) {
            syscall(SYS_pidfd_send_signal, child_pidfd_, SIGKILL, nullptr, 0);
            close(child_pidfd_);
        }
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (child_ > 0) waitpid(child_, nullptr, 0);  // adopted (Subreaper) once the original exited
        close(in_);
        close(out_);
    }
    Handoff(const Handoff&) = delete;
    Handoff& operator=(const Handoff&) = delete;

    // The original process: the one that connected.
    [[nodiscard]] pid_t pid() const { return pid_; }

    // The next line of output (FAILs on EOF or after `timeout`); echoed to the log.
    std::string line(std::chrono::milliseconds timeout = 20s) {
        const auto until = Clock::now() + timeout;
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                std::cout << "  > " << l << "\n";
                return l;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
            pollfd p{out_, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0)
                FAIL("pidns-bus-handoff said nothing more in time; stderr: " << stderr_text());
            char chunk[512];
            const ssize_t n = read(out_, chunk, sizeof chunk);
            if (n <= 0) FAIL("pidns-bus-handoff closed its output; stderr: " << stderr_text());
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    // The line "pid ORIGINAL child CHILD" after a fork step: pins the child.
    void expect_fork() {
        const std::string l = line();
        std::istringstream ss(l);
        std::string w1, w2;
        pid_t original = 0;
        ss >> w1 >> original >> w2 >> child_;
        REQUIRE(w1 == "pid");
        REQUIRE(original == pid_);
        REQUIRE(child_ > 0);
        child_pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, child_, 0));
        REQUIRE(child_pidfd_ >= 0);
    }
    // Waits for the original to exit (after fork-exit): its pid is free again.
    int reap_original() {
        int st = 0;
        REQUIRE(waitpid(pid_, &st, 0) == pid_);
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    // Lets the forked child go on with its steps.
    void go() { REQUIRE(write(in_, "\n", 1) == 1); }
    [[nodiscard]] std::string stderr_text() const { return read_file(dir_.path() + "/stderr"); }

private:
    static std::string join(const Argv& argv) {
        std::string s;
        for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
        return s;
    }
    TempDir dir_;
    pid_t pid_ = -1, child_ = -1;
    int child_pidfd_ = -1, in_ = -1, out_ = -1;
    std::string buf_;
};

// A process created with clone3 set_tid = `pid` (the freed pid of a connector), which then execs `argv`.
class Recycler {
public:
    Recycler(pid_t pid, const Argv& argv) {
        const ExecArgs exec_args(argv);
        pid_t want = pid;
        clone_args args{};
        args.exit_signal = SIGCHLD;
        args.set_tid = reinterpret_cast<std::uint64_t>(&want);
        args.set_tid_size = 1;
        pid_ = static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof args));
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 0);
            dup2(devnull, 1);
            exec_args.exec();
        }
        if (pid_ < 0) FAIL("clone3 with set_tid " << pid << " failed: " << std::strerror(errno));
        REQUIRE(pid_ == pid);
    }
    ~Recycler() {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    Recycler(const Recycler&) = delete;
    Recycler& operator=(const Recycler&) = delete;

private:
    pid_t pid_ = -1;
};

// The D-Bus error name of a "call METHOD PID: error NAME (...)" line, "ok" for an answer.
std::string verdict(const std::string& call_line) {
    if (call_line.rfind("call ", 0) != 0) return "not a call: " + call_line;
    const auto colon = call_line.find(": ");
    if (colon == std::string::npos) return "malformed: " + call_line;
    std::istringstream ss(call_line.substr(colon + 2));
    std::string word, name;
    ss >> word;
    if (word == "ok") return "ok";
    ss >> name;
    return name;
}

// A process of `prefix`'s user that the test can target ("sleep", exec done).
class Sleeper {
public:
    explicit Sleeper(const Argv& prefix) {
        const ExecArgs exec_args(concat(prefix, {"sleep", "600"}));
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            exec_args.exec();
        }
        for (int i = 0; i < 500 && read_file("/proc/" + std::to_string(pid_) + "/comm") != "sleep\n"; ++i)
            std::this_thread::sleep_for(10ms);
        REQUIRE(read_file("/proc/" + std::to_string(pid_) + "/comm") == "sleep\n");
    }
    ~Sleeper() {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("hostile callers: controls - nobody is refused root's process, nobody with CAP_SYS_PTRACE is not, "
          "also on a connection handed to a child") {
    PrivateBus bus;
    Daemon d(bus);
    Subreaper reaper;
    const std::string root = std::to_string(getpid());
    std::cout << "target: the test process " << root << " (root)\n";

    std::cout << "nobody, its own connection:\n";
    {
        Handoff h(kAsNobody, {bus.address(), "call:" + root, "call:self"});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        CHECK(verdict(h.line()) == kDenied);
        CHECK(verdict(h.line()) == "ok");
        CHECK(h.reap_original() == 0);
    }
    std::cout << "nobody, the connection handed to its child while it stays alive (fork-stay):\n";
    {
        Handoff h(kAsNobody, {bus.address(), "fork-stay", "call:" + root, "call:self"});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        h.expect_fork();
        h.go();
        CHECK(verdict(h.line()) == kDenied);
        CHECK(verdict(h.line()) == "ok");  // the inherited socket works; the child is nobody too
        CHECK(h.reap_original() == 0);
    }
    std::cout << "nobody with CAP_SYS_PTRACE, its own connection:\n";
    {
        Handoff h(kAsNobodyPtrace, {bus.address(), "call:" + root, "call:TranslatePid:" + root});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        CHECK(verdict(h.line()) == "ok");
        CHECK(verdict(h.line()) == "ok");
        CHECK(h.reap_original() == 0);
    }
    std::cout << "nobody with CAP_SYS_PTRACE, the connection handed to its child (fork-stay):\n";
    {
        Handoff h(kAsNobodyPtrace, {bus.address(), "fork-stay", "call:" + root});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        h.expect_fork();
        h.go();
        CHECK(verdict(h.line()) == "ok");  // what a connection judged by a ptrace-capable process gets
        CHECK(h.reap_original() == 0);
    }
}

TEST_CASE("hostile callers: a connection whose pid was recycled by a nobody with CAP_SYS_PTRACE is refused") {
    PrivateBus bus;
    Daemon d(bus);
    Client root_client(bus.address());
    Subreaper reaper;
    const std::string root = std::to_string(getpid());

    for (const bool call_first : {false, true}) {
        std::cout << (call_first ? "identified before the recycle (call-first)" : "first call after the recycle")
                  << "; target: the test process " << root << " (root)\n";
        Argv args{bus.address()};
        if (call_first) args.emplace_back("call:self");
        args.emplace_back("fork-exit");
        // After the recycle: root's process twice (an attacker retries), by both methods, and its own.
        args.insert(args.end(), {"call:" + root, "call:TranslatePid:" + root, "call:" + root, "call:self"});
        Handoff h(kAsNobody, args);
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        if (call_first) CHECK(verdict(h.line()) == "ok");  // pidnsd now knows the connection as nobody
        h.expect_fork();
        const pid_t original = h.pid();
        const std::uint64_t connector_start = start_time_of(original);  // a zombie until reaped
        REQUIRE(h.reap_original() == 0);

        // pidnsd has seen the connection appear (NameOwnerChanged reaches it before this call's
        // message), and a clock tick passes: the recycler starts strictly after that.
        (void)stat_of(root_client, "UptimeUSec");
        const std::uint64_t seen_by = ticks_now();
        while (ticks_now() <= seen_by) std::this_thread::sleep_for(1ms);

        Recycler r(original, concat(kAsNobodyPtrace, {"sleep", "600"}));
        for (int i = 0; i < 500 && read_file("/proc/" + std::to_string(original) + "/comm") != "sleep\n"; ++i)
            std::this_thread::sleep_for(10ms);
        REQUIRE(read_file("/proc/" + std::to_string(original) + "/comm") == "sleep\n");
        const std::string uid = status_of(original, "Uid"), cap_eff = status_of(original, "CapEff");
        const std::uint64_t recycler_start = start_time_of(original);
        std::cout << "  pid " << original << " recycled: now `sleep`, Uid " << uid << ", CapEff " << cap_eff
                  << "; start time " << recycler_start << " ticks (the connector's: " << connector_start
                  << ", the connection was seen by " << seen_by << ")\n";
        REQUIRE(uid == "65534\t65534\t65534\t65534");
        REQUIRE((std::stoull(cap_eff, nullptr, 16) & kCapSysPtrace) != 0);
        REQUIRE(recycler_start > seen_by);

        h.go();
        int answered = 0;
        for (int i = 0; i < 4; ++i) {
            const std::string v = verdict(h.line());
            answered += v == "ok";
            CHECK(v == kDenied);
        }
        std::cout << "  " << answered << " of 4 calls answered after the recycle\n";
        CHECK(answered == 0);
    }
}

TEST_CASE("hostile callers: a root connection that drops to nobody after its first call is refused") {
    PrivateBus bus;
    Daemon d(bus);
    const std::string root = std::to_string(getpid());
    Sleeper nobody_proc(kAsNobody);
    const std::string nobody = std::to_string(nobody_proc.pid());
    std::cout << "targets: the test process " << root << " (root), sleep " << nobody << " (nobody)\n";

    std::cout << "control: a fresh nobody connection may inspect nobody's process:\n";
    {
        Handoff h(kAsNobody, {bus.address(), "call:" + nobody});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        CHECK(verdict(h.line()) == "ok");
        CHECK(h.reap_original() == 0);
    }
    // setresuid alone (gid and groups stay root's), then a full drop to nobody's uid and gid: with
    // the latter the kernel itself would let the process inspect nobody's sleep, and itself always.
    for (const std::string become : {"65534", "65534:65534"}) {
        std::cout << "root connects, calls, then becomes " << become << " and calls on:\n";
        Handoff h({}, {bus.address(), "call:" + root, "call:" + nobody, "become:" + become, "call:" + root,
                       "call:" + nobody, "call:self", "call:TranslatePid:" + nobody});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        CHECK(verdict(h.line()) == "ok");
        CHECK(verdict(h.line()) == "ok");
        REQUIRE(h.line() == "became " + become);
        int answered = 0;
        for (int i = 0; i < 4; ++i) {
            const std::string v = verdict(h.line());
            answered += v == "ok";
            CHECK(v == kDenied);
        }
        std::cout << "  " << answered << " of 4 calls answered after the drop\n";
        CHECK(h.reap_original() == 0);
    }
}

// Credentials change without any event: the second call on a connection is judged by the caller's
// credentials at that call, which the kernel (opening /proc/T/ns/pid in the same process, at the
// same moment) confirms: once it entered a user namespace of its own (root there, with none of
// its capabilities outside), and once it dropped CAP_SYS_PTRACE from its effective set. Neither
// changes its uid, so only a re-read of its user namespace and capabilities tells.
TEST_CASE("hostile callers: a root connection that enters a user namespace or drops CAP_SYS_PTRACE is judged anew") {
    PrivateBus bus;
    Daemon d(bus);
    Sleeper nobody_proc(kAsNobody);
    const std::string nobody = std::to_string(nobody_proc.pid());
    for (const std::string change : {"unshare-user", "drop-ptrace"}) {
        std::cout << "root connects, inspects nobody's sleep " << nobody << ", then " << change << ":\n";
        Handoff h({}, {bus.address(), "open:" + nobody, "call:" + nobody, "call:self", change, "open:" + nobody,
                       "call:" + nobody, "call:TranslatePid:" + nobody, "call:self"});
        REQUIRE(h.line().rfind("hello :", 0) == 0);
        REQUIRE(h.line() == "open " + nobody + ": ok");
        CHECK(verdict(h.line()) == "ok");
        CHECK(verdict(h.line()) == "ok");
        REQUIRE(h.line().find(change == "unshare-user" ? "unshared user" : "dropped ptrace") == 0);
        REQUIRE(h.line() == "open " + nobody + ": error EACCES");  // the kernel now refuses it
        CHECK(verdict(h.line()) == kDenied);
        CHECK(verdict(h.line()) == kDenied);
        CHECK(verdict(h.line()) == "ok");  // itself it may still inspect
        CHECK(h.reap_original() == 0);
    }
}

// A process whose leader exited has a zombie leader whose status keeps the credentials it died
// with; its live threads hold the process's credentials now. A root connection whose leader
// exits, then whose live thread drops to nobody, is refused like any other.
TEST_CASE("hostile callers: a connection whose leader exited is judged by its live thread's credentials") {
    PrivateBus bus;
    Daemon d(bus);
    Sleeper nobody_proc(kAsNobody);
    const std::string nobody = std::to_string(nobody_proc.pid());
    Handoff h({}, {bus.address(), "call:" + nobody, "leader-exit", "call:" + nobody, "become:65534", "call:" + nobody,
                   "call:self"});
    REQUIRE(h.line().rfind("hello :", 0) == 0);
    CHECK(verdict(h.line()) == "ok");
    REQUIRE(h.line() == "leader exits");
    CHECK(verdict(h.line()) == "ok");  // a root thread still: its zombie leader does not end the connection
    REQUIRE(h.line() == "became 65534");
    CHECK(verdict(h.line()) == kDenied);
    CHECK(verdict(h.line()) == kDenied);
}
