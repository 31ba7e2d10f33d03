// A private system-style dbus-daemon with the project's policy, and the real pidnsd on it (READY
// seen through a real NOTIFY_SOCKET): what tests, benches and doc/examples run against.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernel_version.h"
#include "process.h"

namespace pidns::harness {

// The file a private bus is made from (tests/dbus/system-bus.conf.in: @SOCKET@ and @POLICY@).
std::string bus_conf_template();

// dbus-daemon --nofork on a socket in a temp dir, config from bus_conf_template() with
// dbus/org.pidns.conf included. `users`: uids the host has no passwd entry for that may connect
// (bus_users.h: the bus alone sees entries for them); `extra_conf`: more configuration (e.g.
// <limit> elements) at the end of the bus's. Returns once the socket exists.
class PrivateBus {
public:
    explicit PrivateBus(const std::vector<std::uint32_t>& users = {}, const std::string& extra_conf = "");
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;
    [[nodiscard]] std::string address() const { return "unix:path=" + dir_.path() + "/bus"; }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_.path(); }
    [[nodiscard]] std::string log_path() const { return dir_.path() + "/bus.log"; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }  // dbus-daemon's
    // Sends SIGTERM and waits (SIGKILL after 5 s); its exit status, -1 if stopped before.
    int stop();

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

// How a pidnsd is started. Tests take the defaults; a bench asks for no debug log and none of
// the suite's PIDNS_TEST_DAEMON_ARGS, and may name another build's pidnsd.
struct DaemonOptions {
    std::vector<std::string> args;                       // after --bus=ADDRESS
    std::vector<std::string> env;                        // "NAME=value"; "JOURNAL_STREAM=@STDERR@": below
    std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
    std::string binary;                                  // "": this build's pidnsd
    bool debug_log = true;                               // --log-level=debug
    bool suite_args = true;                              // extra_daemon_args() last
};

// The real pidnsd on `bus`; the constructor returns once READY=1 arrives on NOTIFY_SOCKET (or
// throws with the daemon's log). "JOURNAL_STREAM=@STDERR@" in the environment stands for the
// device:inode of the daemon's stderr (its log file), as systemd sets it for a journal stream.
class Daemon {
public:
    Daemon(const PrivateBus& bus, const DaemonOptions& options);
    explicit Daemon(const PrivateBus& bus, std::vector<std::string> args = {},
                    std::chrono::milliseconds ready_timeout = std::chrono::seconds(30),
                    const std::vector<std::string>& env = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] const std::vector<std::string>& argv() const noexcept { return argv_; }
    void signal(int sig) const;
    // Sends `sig` and waits for the exit; returns the exit status (128+signal if killed).
    int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Its exit status if it has ended (reaped now), else nullopt.
    std::optional<int> exited();
    [[nodiscard]] std::string log() const;
    [[nodiscard]] std::string log_path() const { return dir_.path() + "/log"; }
    // Waits until the log contains `needle`.
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Notifications received on NOTIFY_SOCKET so far (e.g. "READY=1\nSTATUS=...").
    std::vector<std::string> notifications();

private:
    TempDir dir_;
    int notify_fd_ = -1;
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::vector<std::string> argv_, notes_;
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
// The address of the PrivateBus made last ("" before the first).
const std::string& latest_bus_address();

// Starts a pidnsd that is expected to fail; returns its exit status and stderr.
CmdResult run_daemon_expecting_exit(const std::vector<std::string>& args);

}  // namespace pidns::harness
