// Principals' usage against their limits and their class's pool; refusals typed in the caller's own terms.
#include "quota.h"

#include <array>

#include "quotas.h"

namespace pidnsd {
namespace {

constexpr std::array<Measure, 5> kMeasures = {Measure::calls, Measure::pids, Measure::dumps, Measure::clients,
                                              Measure::subscribers};

// Whether `use + add` stays within `limit` in every measure `add` has; the first that does not.
bool fits(const Usage& use, const Usage& add, const Usage& limit, Measure& over) {
    for (const auto m : kMeasures) {
        const std::size_t a = field(add, m);
        if (a == 0) continue;
        if (field(use, m) + a > field(limit, m)) {
            over = m;
            return false;
        }
    }
    return true;
}

void add_to(Usage& u, const Usage& add) {
    for (const auto m : kMeasures) field(u, m) += field(add, m);
}

void take_from(Usage& u, const Usage& add) {
    for (const auto m : kMeasures) {
        auto& f = field(u, m);
        f -= std::min(f, field(add, m));
    }
}

}  // namespace

std::size_t& field(Usage& u, Measure m) noexcept {
    switch (m) {
    case Measure::calls: return u.calls;
    case Measure::pids: return u.pids;
    case Measure::dumps: return u.dumps;
    case Measure::clients: return u.clients;
    case Measure::subscribers: return u.subscribers;
    }
    return u.calls;
}

std::size_t field(const Usage& u, Measure m) noexcept { return field(const_cast<Usage&>(u), m); }

QuotaLimits QuotaLimits::defaults() {
    using namespace limits;
    QuotaLimits l;
    l.per_principal = {kCallsPerPrincipal, kQueuedPidsPerPrincipal, kDumpsPerPrincipal, kClientsPerPrincipal,
                       kSubscribersPerPrincipal};
    l.unprivileged = {kCalls, kQueuedPids, kDumps, kClients, kSubscribers};
    l.privileged = {kPrivilegedCalls, kPrivilegedQueuedPids, kPrivilegedDumps, kPrivilegedClients,
                    kPrivilegedSubscribers};
    l.unidentified_per_connection = {kCallsPerUnidentifiedClient, kPidsPerUnidentifiedClient, kDumpsPerPrincipal, 1, 0};
    l.unidentified = {kUnidentifiedCalls, kUnidentifiedPids, kDumps, kUnidentifiedClients, 0};
    return l;
}

Quotas::Quotas(QuotaLimits limits) : limits_(limits) {}

bool Quotas::empty(const Usage& u) noexcept {
    for (const auto m : kMeasures)
        if (field(u, m) != 0) return false;
    return true;
}

Quotas::Entry& Quotas::entry(const Principal& p) {
    auto it = principals_.find(p);
    if (it == principals_.end())
        it = principals_
                 .emplace(p, Entry{Usage{}, Bucket(limits::kPropertyBurstSeconds, limits::kPropertySecondsPerSecond)})
                 .first;
    return it->second;
}

void Quotas::drop_if_idle(const Principal& p) {
    auto it = principals_.find(p);
    // Kept while it owes property time: a principal may not reset its debt by reconnecting.
    if (it != principals_.end() && empty(it->second.use) && it->second.properties.has(Clock::now()))
        principals_.erase(it);
}

Verdict Quotas::admit(const Principal& p, const Usage& add) const {
    Verdict v;
    if (!fits(usage(p), add, limits_.per_principal, v.what)) {
        v.over = Over::principal;
        return v;
    }
    if (!fits(pool(p.privileged), add, p.privileged ? limits_.privileged : limits_.unprivileged, v.what))
        v.over = Over::pool;
    return v;
}

void Quotas::charge(const Principal& p, const Usage& add) {
    add_to(entry(p).use, add);
    add_to(pools_[p.privileged ? 1 : 0], add);
}

void Quotas::release(const Principal& p, const Usage& add) {
    if (auto it = principals_.find(p); it != principals_.end()) take_from(it->second.use, add);
    take_from(pools_[p.privileged ? 1 : 0], add);
    drop_if_idle(p);
}

Verdict Quotas::admit_unidentified(const Usage& connection, const Usage& add) const {
    Verdict v;
    if (!fits(connection, add, limits_.unidentified_per_connection, v.what))
        v.over = Over::connection;
    else if (!fits(unidentified_, add, limits_.unidentified, v.what))
        v.over = Over::unidentified;
    return v;
}

void Quotas::charge_unidentified(Usage& connection, const Usage& add) {
    add_to(connection, add);
    add_to(unidentified_, add);
}

void Quotas::release_unidentified(Usage& connection, const Usage& add) {
    take_from(connection, add);
    take_from(unidentified_, add);
}

Usage Quotas::usage(const Principal& p) const {
    auto it = principals_.find(p);
    return it == principals_.end() ? Usage{} : it->second.use;
}

Bucket* Quotas::property_time(const Principal& p) {
    auto it = principals_.find(p);
    return it == principals_.end() ? nullptr : &it->second.properties;
}

Refusal Quotas::refusal(const Verdict& v, const Principal& p, const Usage& connection) const {
    Refusal r;
    r.verdict = v;
    r.principal = p;
    switch (v.over) {
    case Over::none:
    case Over::unidentified: break;  // nothing of the caller's own to say
    case Over::principal:
    case Over::pool:
        r.held = field(usage(p), v.what);
        r.limit = field(limits_.per_principal, v.what);
        break;
    case Over::connection:
        r.held = field(connection, v.what);
        r.limit = field(limits_.unidentified_per_connection, v.what);
        break;
    }
    return r;
}

bool Slots::take(const Principal& p) {
    auto& pool = pools_[p.privileged ? 1 : 0];
    if (pool >= limits_[p.privileged ? 1 : 0] || held(p) >= per_principal_) return false;
    ++pool;
    ++held_[p];
    return true;
}

void Slots::give(const Principal& p) {
    auto it = held_.find(p);
    if (it == held_.end()) return;
    if (--it->second == 0) held_.erase(it);
    auto& pool = pools_[p.privileged ? 1 : 0];
    if (pool > 0) --pool;
}

std::size_t Slots::held(const Principal& p) const {
    auto it = held_.find(p);
    return it == held_.end() ? 0 : it->second;
}

}  // namespace pidnsd
