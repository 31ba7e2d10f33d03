// pidnsd's life cycle: start-up (probe, subscribe, scan, bus, name, READY) and the one event loop (wiring only: the index's upkeep is lib/upkeep.h).
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
class Upkeep;
enum class UpkeepNote : std::uint8_t;
}

namespace pidnsd {

class Clients;
class Machines;
class Manager;
class PeerPing;
class BusReader;
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
    // What the index's upkeep did, in the log.
    void log_upkeep(pidns::UpkeepNote note, const char* why, const pidns::Error* error, std::int32_t tgid) const;
    // Namespace changes of the index to the signal fan-out; true when signal work is left.
    bool publish_changes();
    void watchdog_ping();
    // The ping connections' fds (PeerPing) in the epoll set, with the events each waits for.
    void watch_ping_connections();
    // GetStatistics (statistics.cpp): `everything` for callers who may inspect every process.
    std::map<std::string, sdbus::Variant> statistics(bool everything) const;
    // "proc-connector" or "polling".
    [[nodiscard]] const char* event_source() const;

    Options opts_;
    std::unique_ptr<pidns::Model> model_;
    std::unique_ptr<pidns::Updater> updater_;
    std::unique_ptr<pidns::ProcConnector> connector_;
    std::unique_ptr<pidns::Upkeep> upkeep_;  // rescans, held forks, the verify pass, mount watches
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<Clients> clients_;
    std::unique_ptr<Polkit> polkit_;
    std::unique_ptr<Machines> machines_;
    std::unique_ptr<pidns::EngineState> engines_;  // container names from the engines' state
    std::unique_ptr<Manager> manager_;
    std::unique_ptr<PeerPing> peer_ping_;
    std::unique_ptr<BusReader> bus_reader_;
    std::unordered_set<int> ping_fds_;
    std::unique_ptr<SignalFanout> fanout_;
    pidns::Fd epoll_;
    pidns::Fd signal_fd_;
    std::chrono::microseconds watchdog_period_{0};  // 0: no watchdog
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

    // Loop turns whose work took longer than limits::kSlowTurn (logged with what they did).
    std::uint64_t slow_turns_ = 0;
    // Test hook (environment PIDNSD_TEST_SLOW_TURN_MS): SIGUSR1 makes the next turn this slow.
    std::chrono::milliseconds test_slow_turn_{0};
    bool test_slow_pending_ = false;
};

}  // namespace pidnsd
