// pidnsd's life cycle: start-up (probe, subscribe, scan, bus, name, READY) and the one event loop.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <memory>

#include "nsfs.h"
#include "options.h"
#include "result.h"

namespace pidns {
class Model;
class ProcConnector;
class Updater;
}

namespace pidnsd {

class CallerRegistry;
class Manager;
class Polkit;

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
    bool drain_events(std::chrono::microseconds budget);
    void rescan(const char* why);
    void publish_changes();
    void watchdog_ping();

    Options opts_;
    std::unique_ptr<pidns::Model> model_;
    std::unique_ptr<pidns::Updater> updater_;
    std::unique_ptr<pidns::ProcConnector> connector_;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<CallerRegistry> callers_;
    std::unique_ptr<Polkit> polkit_;
    std::unique_ptr<Manager> manager_;
    pidns::Fd epoll_;
    pidns::Fd signal_fd_;
    std::chrono::microseconds watchdog_period_{0};  // 0: no watchdog
};

}  // namespace pidnsd
