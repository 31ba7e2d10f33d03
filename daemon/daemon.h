// pidnsd's life cycle: start-up (probe, subscribe, scan, bus, name, READY) and the one event loop.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "index.h"
#include "model.h"
#include "nsfs.h"
#include "options.h"
#include "proc_event.h"
#include "result.h"

namespace pidns {
class EngineState;
class ProcConnector;
class Updater;
}

namespace pidnsd {

class Clients;
class Machines;
class Manager;
class PeerPing;
class Polkit;
class SignalFanout;

// Exit codes (also in the man page).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // start-up failed or the bus connection was lost
inline constexpr int kExitUsage = 2;     // bad command line

class Daemon {
public:
    // Everything up to READY: kernel probe, proc connector (or polling), full scan, bus
    // connection, object, bus name. Errors say what to do next.
    static pidns::Result<std::unique_ptr<Daemon>> start(const Options& opts);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Serves until SIGTERM/SIGINT (returns kExitOk) or a fatal bus error (kExitFailure).
    int run();

private:
    explicit Daemon(const Options& opts);
    pidns::Status setup_signals();
    pidns::Status connect_bus();
    void handle_signals(bool& stop);
    // Reads proc-connector events for at most `budget`; returns true if more are waiting.
    // No process event waits unread and no rescan is under way (the /proc listing's negative cache).
    [[nodiscard]] bool events_current() const;
    bool drain_events(std::chrono::microseconds budget);
    // Full rescan without stopping the loop: /proc is read on another thread, the new index is
    // built when it is done (finish_rescan); asked again meanwhile, one more follows.
    void start_rescan(const char* why);
    void finish_rescan();
    void log_rescan(const char* why) const;
    // The verify pass: every indexed process's namespace links against the index, a slice
    // per loop turn; at the end of a pass the nsfs bind mounts are read again.
    void verify_some(std::chrono::microseconds budget);
    // nsfs bind mounts: re-read them (a watched mountinfo changed), and keep the watch set to our
    // own mount namespace, pid 1's and every one that holds nsfs mounts.
    void refresh_mounts(const char* why);
    void reconcile_mount_watches();
    // Namespace changes of the index to the signal fan-out; true when signal work is left.
    bool publish_changes();
    void watchdog_ping();
    // The ping connections' fds (PeerPing) in the epoll set, with the events each waits for.
    void watch_ping_connections();
    // GetStatistics: `everything` for callers who may inspect every process.
    std::map<std::string, sdbus::Variant> statistics(bool everything) const;

    Options opts_;
    std::unique_ptr<pidns::Model> model_;
    std::unique_ptr<pidns::Updater> updater_;
    std::unique_ptr<pidns::ProcConnector> connector_;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<Clients> clients_;
    std::unique_ptr<Polkit> polkit_;
    std::unique_ptr<Machines> machines_;
    std::unique_ptr<pidns::EngineState> engines_;  // container names from the engines' state
    std::unique_ptr<Manager> manager_;
    std::unique_ptr<PeerPing> peer_ping_;
    std::unordered_set<int> ping_fds_;
    std::unique_ptr<SignalFanout> fanout_;
    pidns::Fd epoll_;
    pidns::Fd signal_fd_;
    std::chrono::microseconds watchdog_period_{0};  // 0: no watchdog
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

    // Asynchronous rescan.
    pidns::Fd rescan_done_fd_;  // eventfd the reader thread signals
    std::thread rescan_thread_;
    std::optional<pidns::Result<pidns::ProcSnapshot>> snapshot_;
    const char* rescan_why_ = "";
    const char* rescan_again_ = nullptr;  // asked for while one was running

    std::vector<pidns::ProcEvent> batch_;  // events of one loop turn
    // Forks with no later event in their turn's batch, applied with the next batch or after
    // kForkGrace (pidns::take_last_forks): a child that exits meanwhile is never read.
    std::vector<pidns::ProcEvent> held_;
    std::chrono::steady_clock::time_point held_at_{};

    // Verify pass.
    std::vector<std::int32_t> verify_queue_;
    std::size_t verify_pos_ = 0;
    std::chrono::steady_clock::time_point next_verify_{};
    std::chrono::steady_clock::time_point verify_resume_{};  // a pass's next slice, paced
    std::uint64_t verify_passes_ = 0;

    // mountinfo watches: mount namespace -> open /proc/PID/mountinfo (POLLPRI on change).
    std::unordered_map<pidns::NsId, pidns::Fd> mount_watches_;
    std::uint64_t mount_refreshes_ = 0;

    // Loop turns whose work took longer than limits::kSlowTurn (logged with what they did).
    std::uint64_t slow_turns_ = 0;
    // Test hook (environment PIDNSD_TEST_SLOW_TURN_MS): SIGUSR1 makes the next turn this slow.
    std::chrono::milliseconds test_slow_turn_{0};
    bool test_slow_pending_ = false;
};

}  // namespace pidnsd
