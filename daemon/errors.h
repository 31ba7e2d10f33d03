// Every error pidnsd answers with: its D-Bus name and its sentence, made here alone (errors.cpp).
#pragma once

#include <sdbus-c++/Error.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "quota.h"
#include "result.h"
#include "wire.h"

namespace pidnsd {

// The names themselves are shared with the clients (dbus/client/wire.h).
using pidns::bus::kErrorAccessDenied;
using pidns::bus::kErrorAmbiguousNamespace;
using pidns::bus::kErrorFailed;
using pidns::bus::kErrorInvalidArgs;
using pidns::bus::kErrorLimitsExceeded;
using pidns::bus::kErrorNoSuchNamespace;
using pidns::bus::kErrorNoSuchProcess;
using pidns::bus::kErrorNotPidNamespace;

// The D-Bus error name for a library error reason.
const char* dbus_error_name(pidns::Errc code) noexcept;
// A library error as pidnsd answers it: the library's message, then what pidnsd adds for its
// reason (where to find the ids it asks for, how to be allowed more, where the log is).
sdbus::Error to_dbus_error(const pidns::Error& e);

template <class T>
T unwrap(pidns::Result<T>&& r) {
    if (!r) throw to_dbus_error(r.error());
    return std::move(*r);
}

// A request refused for a limit: the words (for the reply and the log line), and the error.
std::string refusal_text(const Refusal& r);
sdbus::Error limits_exceeded(const Refusal& r);

// Why the sender of a message could not be identified (daemon/identity.cpp): AccessDenied.
enum class Unidentified : std::uint8_t {
    no_sender,         // the message came with no sender (not through a bus)
    bus_failed,        // the bus could not say who `connection` is (`detail`: its error)
    no_credentials,    // the bus gave no process id or uid for `connection`
    invalid_pid,       // the bus gave an invalid process id for `connection`
    process_fd_other,  // the bus's ProcessFD for `connection` is not process `pid`
    exited,            // process `pid` exited before it could be pinned
    changed_identity,  // the caller lost its identity while its call waited (polkit)
};
sdbus::Error unidentified(Unidentified why, const std::string& connection = {}, std::uint32_t pid = 0,
                          const std::string& detail = {});

// DumpPidTree: `denied` of the `tasks` read in pid namespace `ref` may not be inspected.
sdbus::Error dump_refused(std::size_t denied, std::size_t tasks, std::uint64_t ref);

// A handler that failed in pidnsd itself (guarded).
sdbus::Error out_of_memory(const char* method);
sdbus::Error internal_error(const char* method, const char* what = nullptr);

// Runs a handler body. sdbus-c++ 1.2 aborts the process on any exception but sdbus::Error, so
// everything else is logged and answered with org.freedesktop.DBus.Error.Failed.
template <class F>
auto guarded(const char* method, F&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const sdbus::Error&) {
        throw;
    } catch (const std::bad_alloc&) {
        spdlog::error("{}: out of memory", method);
        throw out_of_memory(method);
    } catch (const std::exception& e) {
        spdlog::error("{}: internal error: {}", method, e.what());
        throw internal_error(method, e.what());
    } catch (...) {
        spdlog::error("{}: unknown internal error", method);
        throw internal_error(method);
    }
}

}  // namespace pidnsd
