// Every error pidnsd answers with, named and worded here alone: library reasons, limits, identification.
#include "errors.h"


namespace pidnsd {
namespace {

// Where a client finds the ids or pids an error asks for: the library's messages name no
// method, the daemon adds that.
const char* api_pointer(pidns::Errc code) noexcept {
    using pidns::Errc;
    switch (code) {
    case Errc::no_such_namespace:
    case Errc::ambiguous: return " (namespace ids: ListNamespaces)";
    case Errc::not_pid_namespace: return " (pid namespaces: ListNamespaces(\"pid\"))";
    case Errc::not_found:
    case Errc::changed: return " (pids: ListProcesses(0))";
    default: return "";
    }
}

// How a refused caller may be allowed more, or identified: pidnsd's own next steps.
const char* next_step(pidns::Errc code) noexcept {
    using pidns::Errc;
    switch (code) {
    case Errc::access_denied: return "; run as its user or ask an administrator for org.pidns.inspect";
    case Errc::unidentified: return "; call again from a live process in pidnsd's pid namespace or below it";
    default: return "";
    }
}

constexpr const char* kSeeLog = "; see pidnsd's log (journalctl -u pidnsd)";

// "3 calls being answered", "2 subscribed connections", ... (n of the measure).
std::string count_of(std::size_t n, Measure m) {
    const std::string s = std::to_string(n);
    switch (m) {
    case Measure::calls: return s + (n == 1 ? " call" : " calls") + " being answered";
    case Measure::pids: return s + " pids in TranslatePids calls being answered";
    case Measure::dumps: return s + " DumpPidTree " + (n == 1 ? "call" : "calls") + " being answered";
    case Measure::clients: return s + (n == 1 ? " connection" : " connections") + " with state in pidnsd";
    case Measure::subscribers: return s + " subscribed " + (n == 1 ? "connection" : "connections");
    }
    return s;
}

const char* noun(Measure m) {
    switch (m) {
    case Measure::calls: return "calls";
    case Measure::pids: return "TranslatePids pids";
    case Measure::dumps: return "DumpPidTree calls";
    case Measure::clients: return "connections";
    case Measure::subscribers: return "subscriptions";
    }
    return "requests";
}

std::string whose(const Principal& p) {
    return "uid " + std::to_string(p.uid) + (p.privileged ? " (privileged)" : "");
}

std::string quota_text(const Refusal& r) {
    const Measure m = r.verdict.what;
    const Principal& p = r.principal;
    switch (r.verdict.over) {
    case Over::none: return {};
    case Over::principal:
        return whose(p) + " has " + count_of(r.held, m) + ", at most " + std::to_string(r.limit) +
               " over all its connections (those of processes in user namespaces it made count as its own)";
    case Over::pool:
        // The pool's own counters would tell of other users' activity: only the caller's share.
        return std::string("the ") + noun(m) + " of all " + (p.privileged ? "privileged" : "unprivileged") +
               " callers together are at pidnsd's limit; " + whose(p) + " has " + count_of(r.held, m) +
               " (its own limit: " + std::to_string(r.limit) + "); try again shortly";
    case Over::connection:
        return "this connection has " + count_of(r.held, m) + ", sent before the bus told pidnsd who it is (at most " +
               std::to_string(r.limit) + "); wait for the answer to its first call before sending more";
    case Over::unidentified:
        return "pidnsd is still waiting for the bus to identify many new connections; call again in a moment";
    }
    return {};
}

}  // namespace

const char* dbus_error_name(pidns::Errc code) noexcept {
    using pidns::Errc;
    switch (code) {
    case Errc::not_found:
    case Errc::changed: return kErrorNoSuchProcess;
    case Errc::no_such_namespace: return kErrorNoSuchNamespace;
    case Errc::not_pid_namespace: return kErrorNotPidNamespace;
    case Errc::ambiguous: return kErrorAmbiguousNamespace;
    case Errc::invalid_argument: return kErrorInvalidArgs;
    case Errc::access_denied:
    case Errc::unreadable:
    case Errc::unidentified: return kErrorAccessDenied;
    case Errc::too_large: return kErrorLimitsExceeded;
    case Errc::unstable:
    case Errc::moved:
    case Errc::parse:
    case Errc::io:
    case Errc::unsupported: return kErrorFailed;
    }
    return kErrorFailed;
}

sdbus::Error to_dbus_error(const pidns::Error& e) {
    const char* name = dbus_error_name(e.code);
    if (name == kErrorFailed && e.code != pidns::Errc::unstable) return sdbus::Error(name, e.describe() + kSeeLog);
    return sdbus::Error(name, e.message + next_step(e.code) + api_pointer(e.code));
}

std::string refusal_text(const Refusal& r) {
    switch (r.kind) {
    case Refusal::Kind::quota: return quota_text(r);
    case Refusal::Kind::connection_calls:
        return "this connection has " + std::to_string(r.held) + " calls being answered (at most " +
               std::to_string(r.limit) + ")";
    case Refusal::Kind::sync_identify:
        return "pidnsd is spending its time for reading properties of new connections; call a method first, or "
               "read again in a moment";
    case Refusal::Kind::property_time:
        return "the property reads of uid " + std::to_string(r.principal.uid) + " took more than " +
               std::to_string(r.limit) + " ms per second of pidnsd's time; read again in a few seconds";
    }
    return {};
}

sdbus::Error limits_exceeded(const Refusal& r) {
    return sdbus::Error(kErrorLimitsExceeded, refusal_text(r) + " (pidnsd's limits: man pidnsd, SECURITY)");
}

sdbus::Error unidentified(Unidentified why, const std::string& connection, std::uint32_t pid, const std::string& detail) {
    switch (why) {
    case Unidentified::no_sender:
        return sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    case Unidentified::bus_failed:
        return sdbus::Error(kErrorAccessDenied, "the bus could not tell who " + connection + " is (" + detail + ")");
    case Unidentified::no_credentials:
        return sdbus::Error(kErrorAccessDenied, "the bus gave no process id or uid for " + connection);
    case Unidentified::invalid_pid:
        return sdbus::Error(kErrorAccessDenied, "the bus gave an invalid process id for " + connection);
    case Unidentified::process_fd_other:
        return sdbus::Error(kErrorAccessDenied, "the bus's ProcessFD for " + connection + " is not process " +
                                                    std::to_string(pid) + " (it exited?); call again");
    case Unidentified::exited:
        return sdbus::Error(kErrorAccessDenied, "cannot identify the calling process " + std::to_string(pid) +
                                                    ": it exited; call again from a live process");
    case Unidentified::changed_identity:
        return sdbus::Error(kErrorAccessDenied, "the calling process changed identity; call again");
    }
    return sdbus::Error(kErrorAccessDenied, "the caller could not be identified");
}

sdbus::Error dump_refused(std::size_t denied, std::size_t tasks, std::uint64_t ref) {
    return sdbus::Error(kErrorAccessDenied,
                        "you may not inspect " + std::to_string(denied) + " of the " + std::to_string(tasks) +
                            " tasks in pid namespace " + std::to_string(ref) +
                            " (the kernel's ptrace read check: same uid and gid, or CAP_SYS_PTRACE over "
                            "them), and a dump is never partial; dump as their user, dump a namespace "
                            "further down, or ask an administrator for org.pidns.inspect");
}

sdbus::Error out_of_memory(const char* method) {
    return sdbus::Error(kErrorFailed, std::string(method) + ": pidnsd ran out of memory; try a smaller request");
}

sdbus::Error internal_error(const char* method, const char* what) {
    if (what == nullptr) return sdbus::Error(kErrorFailed, std::string(method) + ": internal error in pidnsd; see its log");
    return sdbus::Error(kErrorFailed,
                        std::string(method) + ": internal error in pidnsd (" + what + "); see its log (journalctl -u pidnsd)");
}

}  // namespace pidnsd
