// The quotas and bounds that keep any one client from stalling, growing or starving pidnsd (pidnsd(8), SECURITY).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace pidnsd::limits {

// Every limit below is charged to a principal (daemon/quota.h): the uid that owns the caller's
// outermost user namespace below pidnsd's, or the caller's own uid in pidnsd's user namespace, so
// that a rootless container's 65,536 subuids are one user. The totals ("pools") are kept apart for
// unprivileged and privileged principals (root, CAP_SYS_PTRACE in pidnsd's user namespace, granted
// org.pidns.inspect by polkit): unprivileged load never takes capacity privileged callers need.

// Calls being answered or waiting (method calls are answered asynchronously).
inline constexpr std::size_t kCallsPerClient = 16;      // per bus connection
inline constexpr std::size_t kCallsPerPrincipal = 64;   // all connections of one principal together
inline constexpr std::size_t kCalls = 1024;             // all unprivileged principals together
inline constexpr std::size_t kPrivilegedCalls = 1024;   // all privileged principals together
// DumpPidTree calls waiting or being answered: each holds the tasks it has read until answered
// (pidnsd's peak RSS grew 6.9 MB for a dump of 10,000 tasks: ~45 MB at the 65536 a dump may hold).
inline constexpr std::size_t kDumpsPerPrincipal = 2;
inline constexpr std::size_t kDumps = 8;
inline constexpr std::size_t kPrivilegedDumps = 4;
// Pids held in TranslatePids calls that are waiting or being answered.
inline constexpr std::size_t kQueuedPidsPerPrincipal = 4 * 65536;
inline constexpr std::size_t kQueuedPids = 16 * 65536;            // 4 MiB of requests, 4 MiB of answers
inline constexpr std::size_t kPrivilegedQueuedPids = 16 * 65536;
// A call refused for a quota is answered (LimitsExceeded) this much later, so that a client
// pipelining beyond its quota waits instead of sending more; at most this many refusals wait per
// connection and in all (beyond, they are sent at once).
inline constexpr auto kRefusalDelay = std::chrono::seconds(5);
inline constexpr std::size_t kDeferredRefusalsPerClient = 128;  // the system bus's max_replies_per_connection
inline constexpr std::size_t kDeferredRefusals = 16384;           // ~1 KiB each
// Refusals that are due go out at most at these rates, oldest first. Each lets its client send
// another call: the thousands a crowd's opening burst had refused together fell due in the same
// millisecond, came back as one burst, and queued at dbus-daemon ahead of root's calls every 5 s
// (bench_flood, N = 100: root's p99 160-190 ms). Bytes: what the refused calls carried (a
// TranslatePids of 65,536 pids, 256 KiB, invites as much again).
inline constexpr double kRefusalsBurst = 16;
inline constexpr double kRefusalsPerSecond = 500;
inline constexpr double kRefusalBytesBurst = 1 << 20;
inline constexpr double kRefusalBytesPerSecond = 32 << 20;
// Before the bus has told pidnsd who a connection is (one round trip), its calls wait here,
// charged to the connection; once it is known they are charged to its principal (or refused).
inline constexpr std::size_t kCallsPerUnidentifiedClient = 4;
inline constexpr std::size_t kPidsPerUnidentifiedClient = 2 * 65536;
inline constexpr std::size_t kUnidentifiedCalls = 1024;      // all connections not identified yet
inline constexpr std::size_t kUnidentifiedPids = 8 * 65536;
inline constexpr std::size_t kUnidentifiedClients = 512;

// Property reads of a connection not identified yet ask the bus synchronously: at most this long
// each, and this much per second in all (beyond: LimitsExceeded; method calls never wait).
inline constexpr auto kSyncIdentifyTimeout = std::chrono::milliseconds(100);
inline constexpr double kSyncIdentifySecondsPerSecond = 0.05;

// Connections pidnsd keeps state for (identity, subscription, polkit answers). Idle ones are
// forgotten first when a cap is reached; all state goes when the connection leaves the bus (or,
// should that signal be lost, when the bus says it has no owner: kRevalidate*).
inline constexpr std::size_t kClientsPerPrincipal = 256;
inline constexpr std::size_t kClients = 4096;            // of unprivileged principals
inline constexpr std::size_t kPrivilegedClients = 1024;
// Connection appearance times kept for pid-reuse checks (NameOwnerChanged), oldest dropped first.
inline constexpr std::size_t kTrackedConnections = 65536;
// Departures the bus did not announce (it drops signals to a connection whose queue is full): a
// connection idle this long is asked about (NameHasOwner) again, at most kRevalidateBatch per
// kRevalidatePeriod; when a cap is reached, every connection is, for kRevalidatePressureFor.
inline constexpr auto kRevalidateIdle = std::chrono::seconds(30);
inline constexpr auto kRevalidatePeriod = std::chrono::milliseconds(250);
inline constexpr std::size_t kRevalidateBatch = 16;        // per period: 64 a second
inline constexpr std::size_t kRevalidatePressureBatch = 256;
inline constexpr auto kRevalidatePressureFor = std::chrono::seconds(2);
inline constexpr std::size_t kRevalidateInFlight = 256;    // NameHasOwner calls waiting (the bus answers them itself)

// Subscribers (Subscribe()).
inline constexpr std::size_t kSubscribersPerPrincipal = 16;
inline constexpr std::size_t kSubscribers = 512;            // of unprivileged principals
inline constexpr std::size_t kPrivilegedSubscribers = 64;
// Namespace changes waiting for one subscriber; beyond this it gets one Resync instead.
inline constexpr std::size_t kPendingChangesPerSubscriber = 1024;
// Namespaces one subscriber has been told of (for NamespaceRemoved); beyond this: Resync.
inline constexpr std::size_t kToldPerSubscriber = 65536;
// A subscriber's credentials are re-read before it is sent a signal, at most this often.
inline constexpr auto kSubscriberRecheck = std::chrono::seconds(1);
// Signals per subscriber: a burst, then a steady rate (token bucket).
inline constexpr double kSignalBurst = 256;
inline constexpr double kSignalsPerSecond = 200;
// Back-pressure (daemon/signal_credit.h): a connection is sent at most this many signals beyond
// those covered by a Peer.Ping it answered; it is pinged when half are sent. A signal is ~160
// bytes on the wire: a subscriber that never reads holds ~40 KiB in its socket and the bus
// (measured: 40 KB in its socket, 0 in dbus-daemon), kSubscribers + kPrivilegedSubscribers times
// that in all. Its Ping stays in flight (one per connection, counted against the subscription
// quotas of its principal and class: daemon/peer_ping.h has room for all of them).
inline constexpr std::size_t kSignalWindow = 256;

// Synchronous property reads (Namespaces, Processes walk the index): the time they take, per principal,
// 100 ms at once, then 20 ms per second of pidnsd's time.
inline constexpr double kPropertyBurstSeconds = 0.1;
inline constexpr double kPropertySecondsPerSecond = 0.02;

// polkit answers cached per (connection, action, details), for this long, at most this many. How
// often polkit is asked at all (budgets, in-flight shares, the negative cache per principal) is
// daemon/polkit_policy.h's PolkitLimits.
inline constexpr auto kPolkitCacheFor = std::chrono::seconds(5);
inline constexpr std::size_t kPolkitCache = 4096;
inline constexpr std::size_t kPolkitWaitingPerPrincipal = 256;  // checks waiting for an in-flight share

// systemd-machined's machines (Machine keys): at most this many are known, each asked once per
// refresh; a refresh waits at most kMachinedTimeout for each answer.
inline constexpr std::size_t kMachines = 4096;
inline constexpr auto kMachinedTimeout = std::chrono::seconds(5);

// Loop turn shares.
inline constexpr auto kBusBudget = std::chrono::microseconds(10000);       // dispatching messages (cheap: parse, queue)
inline constexpr auto kCallBudget = std::chrono::microseconds(500);        // answering calls, round-robin
inline constexpr auto kSliceBudget = std::chrono::microseconds(500);       // one call's share of that
// Unprivileged calls wait while more than this that pidnsd sent is unread by the bus (Clients::run),
// unless the last unprivileged reply grew the unread bytes by kBigReplyBytes or more; the loop
// looks again every kUnreadRecheck meanwhile.
inline constexpr std::size_t kUnreadReplyBytes = 16 * 1024;
inline constexpr std::size_t kBigReplyBytes = 64 * 1024;
inline constexpr auto kUnreadRecheck = std::chrono::milliseconds(1);
// BusReader::unread_sent while sd-bus holds messages the socket had no room for.
inline constexpr std::size_t kSentQueued = SIZE_MAX;
inline constexpr auto kSignalBudget = std::chrono::microseconds(2000);     // deciding who sees a change
inline constexpr auto kSlowTurn = std::chrono::milliseconds(1000);          // logged as a stall

// "LimitsExceeded" log lines: at most this many per window, one per client.
inline constexpr std::size_t kLimitLogsPerWindow = 10;
inline constexpr auto kLimitLogWindow = std::chrono::seconds(60);

}  // namespace pidnsd::limits
