// Who pays for what a caller holds: its principal and its class's pool, each with limits (no bus; unit-tested).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "bucket.h"

namespace pidnsd {

// Whom a connection's calls, connections and subscriptions are charged to.
struct Principal {
    // The uid that owns the caller's outermost user namespace below pidnsd's (a rootless
    // container's 65,536 subuids are the user who made it), or the caller's own uid when it runs
    // in pidnsd's user namespace (pidns::principal_uid).
    std::uint32_t uid = 0;
    // Root, CAP_SYS_PTRACE in pidnsd's user namespace, or granted org.pidns.inspect by polkit:
    // charged to a pool of their own, which unprivileged load cannot fill.
    bool privileged = false;
    friend auto operator<=>(const Principal&, const Principal&) = default;
};

// What calls, connections and subscriptions hold: one call is {calls 1, its pids, dumps 0 or 1}.
struct Usage {
    std::size_t calls = 0, pids = 0, dumps = 0, clients = 0, subscribers = 0;
};

struct QuotaLimits {
    Usage per_principal;                // each principal's own
    Usage unprivileged;                 // all unprivileged principals together
    Usage privileged;                   // all privileged principals together
    Usage unidentified_per_connection;  // a connection's calls and pids before the bus said who it is
    Usage unidentified;                 // all connections not identified yet: calls, pids, clients
    static QuotaLimits defaults();      // daemon/quotas.h
};

// Which limit a request would exceed, and in what.
enum class Over : std::uint8_t {
    none,
    principal,     // the principal's own limit
    pool,          // its class's pool (every unprivileged, or every privileged, principal together)
    connection,    // the connection's own limit before it is identified
    unidentified,  // every connection not identified yet together
};
enum class Measure : std::uint8_t { calls, pids, dumps, clients, subscribers };

struct Verdict {
    Over over = Over::none;
    Measure what = Measure::calls;
    [[nodiscard]] bool ok() const noexcept { return over == Over::none; }
};

// A request refused for a limit, in the caller's own terms (daemon/errors.cpp words it): never
// the pools' counters, which tell of other users' activity.
struct Refusal {
    enum class Kind : std::uint8_t {
        quota,               // `verdict`: a principal's, its pool's or an unidentified connection's limit
        connection_calls,    // the connection's own calls being answered (`held` of `limit`)
        sync_identify,       // the time for identifying new connections synchronously (properties) is spent
        property_time,       // `principal`'s time for property reads is spent (`limit`: ms per second)
    };
    Kind kind = Kind::quota;
    Verdict verdict;
    Principal principal;
    std::size_t held = 0;   // the caller's own count in the measure: its principal's, or its connection's
    std::size_t limit = 0;  // its own limit in the measure
};

class Quotas {
public:
    explicit Quotas(QuotaLimits limits = QuotaLimits::defaults());

    // Whether `add` fits the principal's limit and then its class's pool.
    [[nodiscard]] Verdict admit(const Principal& p, const Usage& add) const;
    void charge(const Principal& p, const Usage& add);
    void release(const Principal& p, const Usage& add);  // exactly what charge() added

    // Before identification: the connection's own usage, then all unidentified together.
    [[nodiscard]] Verdict admit_unidentified(const Usage& connection, const Usage& add) const;
    void charge_unidentified(Usage& connection, const Usage& add);
    void release_unidentified(Usage& connection, const Usage& add);

    [[nodiscard]] Usage usage(const Principal& p) const;  // zero for one with nothing charged
    [[nodiscard]] const Usage& pool(bool privileged) const noexcept { return pools_[privileged ? 1 : 0]; }
    [[nodiscard]] const Usage& unidentified() const noexcept { return unidentified_; }
    [[nodiscard]] std::size_t principals() const noexcept { return principals_.size(); }
    [[nodiscard]] const QuotaLimits& limits() const noexcept { return limits_; }

    // The time a principal's property reads may take (a bucket of seconds). Kept while the
    // principal has something charged or a debt to pay back; nullptr for one with nothing charged.
    Bucket* property_time(const Principal& p);

    // The refusal of verdict `v` (not ok) for `p`: the caller's own usage and limit in the measure
    // exceeded. `connection`: the connection's usage before identification (for Over::connection).
    [[nodiscard]] Refusal refusal(const Verdict& v, const Principal& p, const Usage& connection) const;

private:
    struct Entry {
        Usage use;
        Bucket properties;
    };
    static bool empty(const Usage& u) noexcept;
    Entry& entry(const Principal& p);
    void drop_if_idle(const Principal& p);

    QuotaLimits limits_;
    std::map<Principal, Entry> principals_;
    Usage pools_[2];
    Usage unidentified_;
};

// Slots of a scarce resource (pidnsd's own method calls waiting for an answer on the bus) that
// each principal, and each class together, may hold.
class Slots {
public:
    Slots(std::size_t per_principal, std::size_t unprivileged, std::size_t privileged)
        : per_principal_(per_principal), limits_{unprivileged, privileged} {}
    // Takes one for `p` if both its own share and its class's have one left.
    bool take(const Principal& p);
    void give(const Principal& p);  // one that take() gave
    [[nodiscard]] std::size_t held(const Principal& p) const;
    [[nodiscard]] std::size_t held(bool privileged) const noexcept { return pools_[privileged ? 1 : 0]; }

private:
    std::size_t per_principal_;
    std::size_t limits_[2];
    std::size_t pools_[2] = {0, 0};
    std::map<Principal, std::size_t> held_;
};

// A limit's value in a Usage.
std::size_t& field(Usage& u, Measure m) noexcept;
std::size_t field(const Usage& u, Measure m) noexcept;

}  // namespace pidnsd
