// Real clients of a pidnsd under test: busctl, dbus-send, pidnsctl, and the client library's Client
// with the signals it received.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <vector>

#include "client.h"
#include "process.h"

namespace pidns::harness {

// busctl --address=ADDR --json=short call org.pidns /org/pidns org.pidns.Manager1 METHOD SIG ARGS...,
// optionally under a prefix command (e.g. nsenter -t PID -p). Returns the "data" array;
// throws std::runtime_error with busctl's stderr on failure.
nlohmann::json busctl_call(const std::string& address, const std::string& method, const std::string& signature,
                           const Argv& args, const Argv& prefix = {});
nlohmann::json busctl_property(const std::string& address, const std::string& property, const Argv& prefix = {});

// dbus-send --print-reply; returns {ok, error name (on failure), whole output}.
struct DbusSendResult {
    bool ok = false;
    std::string error_name;
    std::string output;
};
DbusSendResult dbus_send(const std::string& address, const std::string& method, const Argv& args,
                         const Argv& prefix = {});

// PREFIX pidnsctl --address=ADDR --no-pager ARGS (no --address of its own when ARGS has one).
Argv pidnsctl_argv(const std::string& address, const Argv& args, const Argv& prefix = {});
// That command run to its end (SIGKILL after `timeout`).
CmdResult pidnsctl(const std::string& address, const Argv& args, const Argv& prefix = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

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

// The id pidnsd gives the namespace of `type` of process `pid`: the kernel's NS_GET_ID when
// kernel_ids_expected(), else the id pidnsd assigned (>= 2^32), looked up by nsfs inode on the bus
// of the latest PrivateBus (waiting up to 5 s for it to be indexed).
std::uint64_t expected_ns_id(pid_t pid, const char* type);
// expected_ns_id(), once pidnsd lists that namespace with at least `members` processes: what a
// test waits for before it asks about processes it just made (pidnsd learns of them from proc
// connector events, which may lag on a busy host). Throws if that takes over patience(5 s).
std::uint64_t wait_indexed(pid_t pid, const char* type, std::uint32_t members = 1);

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

}  // namespace pidns::harness
