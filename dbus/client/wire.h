// org.pidns on the bus, word for word: names, errors, signals, a{sv} and statistics keys, wire structs.
// Shared by pidnsd (which sends them) and libpidns-client (which reads them); nothing else spells them.
#pragma once

#include <sdbus-c++/Types.h>

#include <cstdint>
#include <string>

namespace pidns::bus {

inline constexpr const char* kServiceName = "org.pidns";
inline constexpr const char* kObjectPath = "/org/pidns";
inline constexpr const char* kInterfaceName = "org.pidns.Manager1";
// The polkit action that widens the kernel's rule (dbus/org.pidns.policy).
inline constexpr const char* kInspectAction = "org.pidns.inspect";

inline constexpr const char* kErrorNoSuchNamespace = "org.pidns.Error.NoSuchNamespace";
inline constexpr const char* kErrorNotPidNamespace = "org.pidns.Error.NotPidNamespace";
inline constexpr const char* kErrorNoSuchProcess = "org.pidns.Error.NoSuchProcess";
inline constexpr const char* kErrorAmbiguousNamespace = "org.pidns.Error.AmbiguousNamespace";
inline constexpr const char* kErrorAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
inline constexpr const char* kErrorInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
inline constexpr const char* kErrorFailed = "org.freedesktop.DBus.Error.Failed";
inline constexpr const char* kErrorLimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";

// Signals of Subscribe(): NamespaceAdded(t id, s type), NamespaceRemoved(t id, s type), Resync().
inline constexpr const char* kSignalNamespaceAdded = "NamespaceAdded";
inline constexpr const char* kSignalNamespaceRemoved = "NamespaceRemoved";
inline constexpr const char* kSignalResync = "Resync";

// The message bus's own object and the standard interfaces pidnsd calls.
inline constexpr const char* kBusDriverName = "org.freedesktop.DBus";
inline constexpr const char* kBusDriverPath = "/org/freedesktop/DBus";
inline constexpr const char* kPeerInterface = "org.freedesktop.DBus.Peer";
inline constexpr const char* kPropertiesInterface = "org.freedesktop.DBus.Properties";

// A uid no one has (DescribeNamespace's owner keys, ContainerSharers): "only root could have".
inline constexpr std::uint32_t kNoUid = 0xffffffffu;

// The details polkit rules read of an org.pidns.inspect check (action.lookup("namespace")): the
// method, the namespaces it names, and for a single target its pid, uid and pid namespace.
namespace detail {
inline constexpr const char* kMethod = "method";
inline constexpr const char* kFrom = "from";
inline constexpr const char* kTo = "to";
inline constexpr const char* kType = "type";
inline constexpr const char* kNamespace = "namespace";
inline constexpr const char* kPid = "pid";
inline constexpr const char* kUid = "uid";
}  // namespace detail

// The wire structs (see the XML for each field).
// ListNamespaces, GetNamespace: (id, inode, type, parent, owner, level, init_pid, nprocs, owner_uid).
using WireNamespace = sdbus::Struct<std::uint64_t, std::uint64_t, std::string, std::uint64_t, std::uint64_t,
                                    std::uint32_t, std::uint32_t, std::uint32_t, std::uint32_t>;
// DumpPidTree: (rpid, depth, vpids, vtgid, vppid, vpgid, vsid, pidns, pid_for_children, flags).
using WireDumpEntry = sdbus::Struct<std::uint32_t, std::uint32_t, std::vector<std::uint32_t>, std::uint32_t,
                                    std::uint32_t, std::uint32_t, std::uint32_t, std::uint64_t, std::uint64_t,
                                    std::uint32_t>;
// Holders: (kind, mount point or "").
using WireHolder = sdbus::Struct<std::string, std::string>;
// ContainerSharers: (engine, id, name, who could have named its cgroup or kNoUid).
using WireSharer = sdbus::Struct<std::string, std::string, std::string, std::uint32_t>;

// The a{sv} keys of DescribeNamespace(s) and DescribeProcess.
namespace key {
// GetNamespace's fields.
inline constexpr const char* kId = "Id";
inline constexpr const char* kInode = "Inode";
inline constexpr const char* kType = "Type";
inline constexpr const char* kParent = "Parent";
inline constexpr const char* kOwner = "Owner";
inline constexpr const char* kLevel = "Level";
inline constexpr const char* kInitPid = "InitPid";
inline constexpr const char* kProcesses = "Processes";
inline constexpr const char* kOwnerUid = "OwnerUid";
// A namespace's representative, names and holders.
inline constexpr const char* kRepresentativePid = "RepresentativePid";
inline constexpr const char* kContainerSharers = "ContainerSharers";
inline constexpr const char* kNetnsNames = "NetnsNames";
inline constexpr const char* kHolders = "Holders";
inline constexpr const char* kHoldersOmitted = "HoldersOmitted";
// A process's GetProcess answer.
inline constexpr const char* kPid = "Pid";
inline constexpr const char* kNSpid = "NSpid";
inline constexpr const char* kNStgid = "NStgid";
inline constexpr const char* kNSpgid = "NSpgid";
inline constexpr const char* kNSsid = "NSsid";
inline constexpr const char* kNamespaces = "Namespaces";
inline constexpr const char* kThreads = "Threads";
// Labels (a process's, or a namespace's representative's).
inline constexpr const char* kCommand = "Command";
inline constexpr const char* kUid = "Uid";
inline constexpr const char* kUser = "User";
inline constexpr const char* kCGroup = "CGroup";
inline constexpr const char* kUnit = "Unit";
inline constexpr const char* kSlice = "Slice";
inline constexpr const char* kUnitOwnerUid = "UnitOwnerUid";
inline constexpr const char* kContainerEngine = "ContainerEngine";
inline constexpr const char* kContainerId = "ContainerId";
inline constexpr const char* kContainerName = "ContainerName";
inline constexpr const char* kPodUid = "PodUid";
inline constexpr const char* kPodId = "PodId";
inline constexpr const char* kPodName = "PodName";
inline constexpr const char* kPodNamespace = "PodNamespace";
inline constexpr const char* kContainerOwnerUid = "ContainerOwnerUid";
inline constexpr const char* kMachine = "Machine";
}  // namespace key

// The keys of GetStatistics (the XML says what each counts).
namespace stat {
// For every caller.
inline constexpr const char* kEventSource = "EventSource";
inline constexpr const char* kReceiveBufferBytes = "ReceiveBufferBytes";
inline constexpr const char* kUptimeUSec = "UptimeUSec";
inline constexpr const char* kScope = "Scope";  // "all" or "caller"
inline constexpr const char* kKernelMode = "KernelMode";
inline constexpr const char* kKernelInterfaces = "KernelInterfaces";
inline constexpr const char* kCallerCalls = "CallerCalls";
inline constexpr const char* kCallerLimitsExceeded = "CallerLimitsExceeded";
inline constexpr const char* kCallerSubscribed = "CallerSubscribed";
inline constexpr const char* kCallerPrincipal = "CallerPrincipal";
inline constexpr const char* kCallerPrivileged = "CallerPrivileged";
// For callers who may inspect every process only (Scope "all").
inline constexpr const char* kEventsReceived = "EventsReceived";
inline constexpr const char* kEventReads = "EventReads";
inline constexpr const char* kEventReadsCoalesced = "EventReadsCoalesced";
inline constexpr const char* kEventsLost = "EventsLost";
inline constexpr const char* kRescans = "Rescans";
inline constexpr const char* kRescanFailures = "RescanFailures";
inline constexpr const char* kLastRescanUSec = "LastRescanUSec";
inline constexpr const char* kLastRescanBuildUSec = "LastRescanBuildUSec";
inline constexpr const char* kRescanInProgress = "RescanInProgress";
inline constexpr const char* kVerifyPasses = "VerifyPasses";
inline constexpr const char* kVerifyMismatches = "VerifyMismatches";
inline constexpr const char* kMountRefreshes = "MountRefreshes";
inline constexpr const char* kMountWatches = "MountWatches";
inline constexpr const char* kMalformedEvents = "MalformedEvents";
inline constexpr const char* kClients = "Clients";
inline constexpr const char* kSubscribers = "Subscribers";
inline constexpr const char* kCallsInFlight = "CallsInFlight";
inline constexpr const char* kDeferredRefusals = "DeferredRefusals";
inline constexpr const char* kLimitsExceeded = "LimitsExceeded";
inline constexpr const char* kIdentifyFailures = "IdentifyFailures";
inline constexpr const char* kSignalsSent = "SignalsSent";
inline constexpr const char* kResyncs = "Resyncs";
inline constexpr const char* kSignalBacklog = "SignalBacklog";
inline constexpr const char* kSignalPings = "SignalPings";
inline constexpr const char* kSignalPingsAnswered = "SignalPingsAnswered";
inline constexpr const char* kSignalStalls = "SignalStalls";
inline constexpr const char* kSubscribersStalled = "SubscribersStalled";
inline constexpr const char* kClientsGoneUnannounced = "ClientsGoneUnannounced";
inline constexpr const char* kCallsHeldForBus = "CallsHeldForBus";
// Each class's pool: a prefix ("Unprivileged", "Privileged") and a measure ("Calls", ...).
inline constexpr const char* kUnprivileged = "Unprivileged";
inline constexpr const char* kPrivileged = "Privileged";
inline constexpr const char* kPoolCalls = "Calls";
inline constexpr const char* kPoolPids = "Pids";
inline constexpr const char* kPoolDumps = "Dumps";
inline constexpr const char* kPoolClients = "Clients";
inline constexpr const char* kPoolSubscribers = "Subscribers";
inline constexpr const char* kUnidentifiedCalls = "UnidentifiedCalls";
inline constexpr const char* kUnidentifiedClients = "UnidentifiedClients";
inline constexpr const char* kPrincipals = "Principals";
inline constexpr const char* kPolkitCached = "PolkitCached";
inline constexpr const char* kPolkitPending = "PolkitPending";
inline constexpr const char* kPolkitWaiting = "PolkitWaiting";
inline constexpr const char* kPolkitAsked = "PolkitAsked";
inline constexpr const char* kPolkitSkippedBudget = "PolkitSkippedBudget";
inline constexpr const char* kPolkitNegativeCached = "PolkitNegativeCached";
inline constexpr const char* kPolkitSkippedCannotGrant = "PolkitSkippedCannotGrant";
inline constexpr const char* kPolkitRulesNameAction = "PolkitRulesNameAction";
inline constexpr const char* kMachinedUnits = "MachinedUnits";
inline constexpr const char* kUnsafePathsSkipped = "UnsafePathsSkipped";
inline constexpr const char* kFdScansTruncated = "FdScansTruncated";
inline constexpr const char* kFdPassFailures = "FdPassFailures";
inline constexpr const char* kProcListings = "ProcListings";
inline constexpr const char* kProcListingsSkipped = "ProcListingsSkipped";
inline constexpr const char* kKernelPidLookups = "KernelPidLookups";
inline constexpr const char* kSlowLoopTurns = "SlowLoopTurns";
}  // namespace stat

}  // namespace pidns::bus
