// The one place where model errors become D-Bus error names, and the guard every handler runs in.
#pragma once

#include <sdbus-c++/Error.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

#include "wire.h"
#include "result.h"

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

// The D-Bus error name for a library error class.
const char* dbus_error_name(pidns::Errc code) noexcept;
sdbus::Error to_dbus_error(const pidns::Error& e);

template <class T>
T unwrap(pidns::Result<T>&& r) {
    if (!r) throw to_dbus_error(r.error());
    return std::move(*r);
}

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
        throw sdbus::Error(kErrorFailed, std::string(method) + ": pidnsd ran out of memory; try a smaller request");
    } catch (const std::exception& e) {
        spdlog::error("{}: internal error: {}", method, e.what());
        throw sdbus::Error(kErrorFailed, std::string(method) + ": internal error in pidnsd (" + e.what() +
                                             "); see its log (journalctl -u pidnsd)");
    } catch (...) {
        spdlog::error("{}: unknown internal error", method);
        throw sdbus::Error(kErrorFailed, std::string(method) + ": internal error in pidnsd; see its log");
    }
}

}  // namespace pidnsd
