// Maps library error classes to D-Bus error names (the only place that knows them).
#include "errors.h"

namespace pidnsd {

const char* dbus_error_name(pidns::Errc code) noexcept {
    using pidns::Errc;
    switch (code) {
    case Errc::not_found: return kErrorNoSuchProcess;
    case Errc::no_such_namespace: return kErrorNoSuchNamespace;
    case Errc::not_pid_namespace: return kErrorNotPidNamespace;
    case Errc::ambiguous: return kErrorAmbiguousNamespace;
    case Errc::invalid_argument: return kErrorInvalidArgs;
    case Errc::access_denied: return kErrorAccessDenied;
    case Errc::too_large: return kErrorLimitsExceeded;
    case Errc::unstable:
    case Errc::parse:
    case Errc::io:
    case Errc::unsupported: return kErrorFailed;
    }
    return kErrorFailed;
}

// Where a client finds the ids or pids an error asks for: the library's messages name no
// method, the daemon adds that.
const char* api_pointer(pidns::Errc code) noexcept {
    using pidns::Errc;
    switch (code) {
    case Errc::no_such_namespace:
    case Errc::ambiguous: return " (namespace ids: ListNamespaces)";
    case Errc::not_pid_namespace: return " (pid namespaces: ListNamespaces(\"pid\"))";
    case Errc::not_found: return " (pids: ListProcesses(0))";
    default: return "";
    }
}

sdbus::Error to_dbus_error(const pidns::Error& e) {
    const char* name = dbus_error_name(e.code);
    if (name == kErrorFailed && e.code != pidns::Errc::unstable) return sdbus::Error(name, e.describe() + "; see pidnsd's log (journalctl -u pidnsd)");
    return sdbus::Error(name, e.message + api_pointer(e.code));
}

}  // namespace pidnsd
