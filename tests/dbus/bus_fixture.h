// Integration-test fixtures: a private system-style dbus-daemon with the project's policy, the real
// pidnsd on it (READY seen through a real NOTIFY_SOCKET), command runners and the client library.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <vector>

#include "kernel_version.h"
#include "client.h"

namespace pidns::dbustest {

struct CmdResult {
    int status = -1;  // exit status, or 128+signal
    std::string out, err;
};

// The whole content of a (small) file, "" if it cannot be read.
std::string read_file(const std::string& path);

// `a` followed by `b`: prefixes such as setpriv/unshare in front of a command.
std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b);

// A command line (and environment) as the arrays exec wants, made before fork(): until it execs,
// the child of a multi-threaded test may make async-signal-safe calls only (no malloc: another
// thread may have held an allocator lock when fork() copied it, and the child would wait forever).
class ExecArgs {
public:
    // `env_add` ("NAME=value") replaces or extends this process's environment.
    explicit ExecArgs(std::vector<std::string> argv, const std::vector<std::string>& env_add = {});
    ExecArgs(const ExecArgs&) = delete;
    ExecArgs& operator=(const ExecArgs&) = delete;
    // In the child: execvpe(), else _exit(127). Async-signal-safe.
    [[noreturn]] void exec() const noexcept;

private:
    std::vector<std::string> argv_, env_;
    std::vector<char*> argv_ptrs_, env_ptrs_;
};

// The kernel's own answer: opens /proc/TARGET/ns/pid as the caller that `prefix` makes (dd opens
// it and reads nothing; sh would not do: dash resets its euid to its real uid). Exit status 0:
// allowed; else stderr says "Permission denied" or "No such file".
CmdResult open_ns_pid_as(const std::vector<std::string>& prefix, pid_t target);

// Runs argv (no shell), captures stdout and stderr; SIGKILLs it after `timeout`.
CmdResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A temp dir removed (recursively) on destruction.
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

// dbus-daemon --nofork on a socket in a temp dir, config from tests/dbus/system-bus.conf.in
// with dbus/org.pidns.conf included. `users`: uids the host has no passwd entry for that may
// connect (tests/support/bus_users.h: the bus alone sees entries for them); `extra_conf`: more
// configuration (e.g. <limit> elements) at the end of the bus's.
class PrivateBus {
public:
    explicit PrivateBus(const std::vector<std::uint32_t>& users = {}, const std::string& extra_conf = "");
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    [[nodiscard]] std::string address() const { return "unix:path=" + dir_.path() + "/bus"; }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_.path(); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }  // dbus-daemon's

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

// The real pidnsd on `bus`, started with `args`; the constructor returns once READY=1 arrives on
// NOTIFY_SOCKET (or throws with the daemon's log).
class Daemon {
public:
    explicit Daemon(const PrivateBus& bus, std::vector<std::string> args = {},
                    std::chrono::milliseconds ready_timeout = std::chrono::seconds(30),
                    const std::vector<std::string>& env = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    void signal(int sig) const;
    // Sends `sig` and waits for the exit; returns the exit status (128+signal if killed).
    int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    [[nodiscard]] std::string log() const;
    // Waits until the log contains `needle`.
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Notifications received on NOTIFY_SOCKET so far (e.g. "READY=1\nSTATUS=...").
    std::vector<std::string> notifications();

private:
    TempDir dir_;
    int notify_fd_ = -1;
    pid_t pid_ = -1;
    std::vector<std::string> notes_;
};

// Arguments added to every pidnsd the fixture starts: the environment variable
// PIDNS_TEST_DAEMON_ARGS, split at spaces (CI runs the suite again with
// PIDNS_TEST_DAEMON_ARGS=--assume-kernel=5.14 and 6.1).
const std::vector<std::string>& extra_daemon_args();
// The --assume-kernel of extra_daemon_args(), if any.
std::optional<pidns::KernelVersion> assumed_kernel();
// Whether the pidnsd under test uses the kernel's namespace ids (NS_GET_ID): the kernel has them
// and no --assume-kernel older than 6.18 is in extra_daemon_args().
bool kernel_ids_expected();
// The id pidnsd gives the namespace of `type` of process `pid`: the kernel's NS_GET_ID when
// kernel_ids_expected(), else the id pidnsd assigned (>= 2^32), looked up by nsfs inode on the bus
// of the latest PrivateBus (waiting up to 5 s for it to be indexed).
std::uint64_t expected_ns_id(pid_t pid, const char* type);

// Starts a pidnsd that is expected to fail; returns its exit status and stderr.
CmdResult run_daemon_expecting_exit(const std::vector<std::string>& args);

// busctl --address=ADDR --json=short call org.pidns /org/pidns org.pidns.Manager1 METHOD SIG ARGS...,
// optionally under a prefix command (e.g. nsenter -t PID -p). Returns the "data" array;
// throws std::runtime_error with busctl's stderr on failure.
nlohmann::json busctl_call(const std::string& address, const std::string& method, const std::string& signature,
                           const std::vector<std::string>& args, const std::vector<std::string>& prefix = {});
nlohmann::json busctl_property(const std::string& address, const std::string& property,
                               const std::vector<std::string>& prefix = {});

// dbus-send --print-reply; returns {ok, error name (on failure), whole output}.
struct DbusSendResult {
    bool ok = false;
    std::string error_name;
    std::string output;
};
DbusSendResult dbus_send(const std::string& address, const std::string& method, const std::vector<std::string>& args,
                         const std::vector<std::string>& prefix = {});

namespace detail {
// The signals a test Client received (a base of Client, so it outlives the event-loop thread).
struct SignalRecord {
    struct Signal {
        bool added;
        std::uint64_t id;
        std::string type;
    };
    void record(const pidns::client::NamespaceEvent& e);
    std::mutex mu_;
    std::size_t resyncs_ = 0;
    std::condition_variable cv_;
    std::vector<Signal> signals_;
};
}  // namespace detail

// The client library's Client on its own connection with its own event-loop thread, recording
// the signals it receives. The generated methods (TranslatePid, ...) throw sdbus::Error; the
// typed ones (translate_pid, ...) pidns::client::Error.
class Client : private detail::SignalRecord, public pidns::client::Client {
public:
    using Signal = detail::SignalRecord::Signal;
    explicit Client(const std::string& address);
    // Waits until a signal matching (added, id) has arrived.
    bool wait_signal(bool added, std::uint64_t id, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    std::vector<Signal> signals();
    std::size_t resyncs();  // Resync signals received
    sdbus::IProxy& raw() { return proxy(); }
};

// One unsigned counter of GetStatistics (std::out_of_range if the daemon lacks it).
std::uint64_t stat_of(Client& c, const std::string& key);

// The D-Bus error name thrown by `f`, "" if it did not throw.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const sdbus::Error& e) {
        return e.getName();
    } catch (const pidns::client::Error& e) {
        return e.name();
    }
    return "";
}

}  // namespace pidns::dbustest
