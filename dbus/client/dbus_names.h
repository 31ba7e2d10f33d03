// The names of org.pidns on the bus: service, object, interface and the D-Bus errors pidnsd sends.
// Shared by pidnsd (which sends them) and its clients (which tell them apart).
#pragma once

namespace pidns::bus {

inline constexpr const char* kServiceName = "org.pidns";
inline constexpr const char* kObjectPath = "/org/pidns";
inline constexpr const char* kInterfaceName = "org.pidns.Manager1";

inline constexpr const char* kErrorNoSuchNamespace = "org.pidns.Error.NoSuchNamespace";
inline constexpr const char* kErrorNotPidNamespace = "org.pidns.Error.NotPidNamespace";
inline constexpr const char* kErrorNoSuchProcess = "org.pidns.Error.NoSuchProcess";
inline constexpr const char* kErrorAmbiguousNamespace = "org.pidns.Error.AmbiguousNamespace";
inline constexpr const char* kErrorAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
inline constexpr const char* kErrorInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
inline constexpr const char* kErrorFailed = "org.freedesktop.DBus.Error.Failed";
inline constexpr const char* kErrorLimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";

}  // namespace pidns::bus
