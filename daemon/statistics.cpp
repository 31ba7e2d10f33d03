// GetStatistics: pidnsd's counters, the caller's scope only unless it may inspect everything.
#include <algorithm>
#include <chrono>
#include <string>

#include "clients.h"
#include "daemon.h"
#include "machines.h"
#include "polkit.h"
#include "proc_connector.h"
#include "peer_ping.h"
#include "signals.h"
#include "updater.h"
#include "upkeep.h"
#include "wire.h"

namespace pidnsd {
namespace {

namespace stat = pidns::bus::stat;
using Clock = std::chrono::steady_clock;

}  // namespace

const char* Daemon::event_source() const { return connector_ ? "proc-connector" : "polling"; }

std::map<std::string, sdbus::Variant> Daemon::statistics(bool everything) const {
    const auto& st = updater_->stats();
    auto usec = [](auto d) { return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()); };
    auto u64 = [](auto v) { return sdbus::Variant(static_cast<std::uint64_t>(v)); };
    std::map<std::string, sdbus::Variant> m;
    m[stat::kEventSource] = sdbus::Variant(std::string(event_source()));
    m[stat::kReceiveBufferBytes] = u64(connector_ ? std::max(connector_->rcvbuf(), 0) : 0);
    m[stat::kUptimeUSec] = sdbus::Variant(usec(Clock::now() - started_));
    m[stat::kScope] = sdbus::Variant(std::string(everything ? "all" : "caller"));
    // Which kernel interfaces are in use: all the kernel has, or those of --assume-kernel's version.
    m[stat::kKernelMode] = sdbus::Variant(opts_.assume_kernel ? "assume " + opts_.assume_kernel->str() : std::string("native"));
    std::string interfaces;
    auto add = [&](bool on, const char* name) {
        if (on) interfaces += (interfaces.empty() ? "" : " ") + std::string(name);
    };
    add(model_->features().ns_get_id, "ns-get-id");
    add(model_->features().pid_ioctls, "pid-ioctls");
    add(model_->features().pidfd_info, "pidfd-info");
    add(connector_ && connector_->filtered(), "event-filter");
    add(model_->fd_pass_in_use(), "bpf-fd-pass");
    m[stat::kKernelInterfaces] = sdbus::Variant(interfaces);
    if (!everything) return m;  // the rest tells of other users' activity
    m[stat::kEventsReceived] = sdbus::Variant(st.events);
    m[stat::kEventReads] = sdbus::Variant(st.reads);
    m[stat::kEventReadsCoalesced] = sdbus::Variant(st.coalesced);
    m[stat::kEventsLost] = sdbus::Variant(st.lost);
    m[stat::kRescans] = sdbus::Variant(st.rescans);
    m[stat::kRescanFailures] = sdbus::Variant(st.rescan_failures);
    m[stat::kLastRescanUSec] = sdbus::Variant(usec(st.last_rescan));
    m[stat::kLastRescanBuildUSec] = sdbus::Variant(usec(st.last_rescan_build));
    m[stat::kRescanInProgress] = sdbus::Variant(updater_->rescanning());
    m[stat::kVerifyPasses] = sdbus::Variant(upkeep_->verify_passes());
    m[stat::kVerifyMismatches] = sdbus::Variant(model_->verify_mismatches());
    m[stat::kMountRefreshes] = sdbus::Variant(upkeep_->mount_refreshes());
    m[stat::kMountWatches] = u64(upkeep_->mount_watches());
    m[stat::kMalformedEvents] = sdbus::Variant(connector_ ? connector_->malformed() : std::uint64_t{0});
    m[stat::kClients] = u64(clients_->count());
    m[stat::kSubscribers] = u64(clients_->subscribers());
    m[stat::kCallsInFlight] = u64(clients_->calls_in_flight());
    m[stat::kDeferredRefusals] = u64(clients_->deferred_refusals());
    m[stat::kLimitsExceeded] = u64(clients_->limits_exceeded());
    m[stat::kIdentifyFailures] = u64(clients_->identify_failures());
    m[stat::kSignalsSent] = u64(fanout_->sent());
    m[stat::kResyncs] = u64(fanout_->resyncs());
    m[stat::kSignalBacklog] = u64(fanout_->backlog());
    m[stat::kSignalPings] = u64(fanout_->pings());
    m[stat::kSignalPingsAnswered] = u64(fanout_->pings_answered());
    m[stat::kSignalStalls] = u64(fanout_->stalls());
    m[stat::kSubscribersStalled] = u64(fanout_->stalled());
    m[stat::kClientsGoneUnannounced] = u64(clients_->revalidated_gone());
    m[stat::kCallsHeldForBus] = u64(clients_->held_runs());
    // What each class's pool holds (daemon/quota.h): unprivileged principals', privileged ones',
    // and connections not identified yet.
    for (const bool privileged : {false, true}) {
        const auto& p = clients_->quotas().pool(privileged);
        const std::string cls = privileged ? stat::kPrivileged : stat::kUnprivileged;
        m[cls + stat::kPoolCalls] = u64(p.calls);
        m[cls + stat::kPoolPids] = u64(p.pids);
        m[cls + stat::kPoolDumps] = u64(p.dumps);
        m[cls + stat::kPoolClients] = u64(p.clients);
        m[cls + stat::kPoolSubscribers] = u64(p.subscribers);
    }
    m[stat::kUnidentifiedCalls] = u64(clients_->quotas().unidentified().calls);
    m[stat::kUnidentifiedClients] = u64(clients_->quotas().unidentified().clients);
    m[stat::kPrincipals] = u64(clients_->quotas().principals());
    m[stat::kPolkitCached] = u64(polkit_->cached());
    m[stat::kPolkitPending] = u64(polkit_->pending());
    m[stat::kPolkitWaiting] = u64(polkit_->waiting());
    m[stat::kPolkitAsked] = u64(polkit_->asked());
    m[stat::kPolkitSkippedBudget] = u64(polkit_->skipped_budget());
    m[stat::kPolkitNegativeCached] = u64(polkit_->negative_cached());
    m[stat::kPolkitSkippedCannotGrant] = u64(polkit_->skipped_cannot_grant());
    m[stat::kPolkitRulesNameAction] = sdbus::Variant(polkit_->rules().rules_name_action());
    m[stat::kMachinedUnits] = u64(machines_->size());
    m[stat::kUnsafePathsSkipped] = u64(model_->unsafe_paths_skipped());
    m[stat::kFdScansTruncated] = u64(model_->fd_scans_truncated());
    m[stat::kFdPassFailures] = u64(model_->fd_pass_failures());
    m[stat::kProcListings] = u64(model_->proc_listings());
    m[stat::kProcListingsSkipped] = u64(model_->proc_listings_skipped());
    m[stat::kKernelPidLookups] = u64(model_->kernel_pid_lookups());
    m[stat::kSlowLoopTurns] = sdbus::Variant(slow_turns_);
    return m;
}

}  // namespace pidnsd
