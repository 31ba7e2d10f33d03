// When pidnsd may ask polkit: a budget and an in-flight share per principal, fair turns, and a negative cache per principal (no bus; unit-tested).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "bucket.h"

namespace pidnsd {

struct PolkitLimits {
    // Queries per principal polkit has not said yes to lately: a burst, then a rate per second.
    double burst = 4, rate = 0.5;
    // For one it said yes to within granted_for (a rule grants it something: asked more, and its
    // calls wait for a token instead of being answered by the kernel's rule).
    double granted_burst = 32, granted_rate = 16;
    std::size_t in_flight_per_principal = 1, granted_in_flight_per_principal = 2;
    std::size_t in_flight = 16;  // all principals together (pidnsd's own pending calls on the bus are few)
    // This many "no" answers within refusal_window, with no "yes" within granted_for, and the
    // principal's calls are answered "no" without asking for negative_for.
    std::size_t refusals_to_cache = 4;
    std::chrono::seconds refusal_window{60}, negative_for{60};
    std::chrono::seconds granted_for{600};
    std::size_t principals = 4096;  // kept at most (idle ones are forgotten first)
};

enum class PolkitDecision : std::uint8_t {
    ask,            // ask now (a token taken, counted in flight)
    wait,           // no in-flight share free (or, for a granted principal, no token): wait for one
    skip_budget,    // its budget is spent: the kernel's answer stands
    skip_negative,  // polkit said no to it for several targets lately: the kernel's answer stands
};

class PolkitPolicy {
public:
    using Clock = std::chrono::steady_clock;
    explicit PolkitPolicy(PolkitLimits limits = {}) : limits_(limits) {}

    // A call of `principal` was refused something by the kernel's rule: what to do about polkit.
    PolkitDecision decide(std::uint32_t principal, Clock::time_point now);
    // A query decide() allowed ended: polkit's answer, or none (an error, a timeout: nothing learnt).
    void answered(std::uint32_t principal, bool yes, Clock::time_point now);
    void failed(std::uint32_t principal);
    // Whether polkit said yes to the principal within granted_for.
    [[nodiscard]] bool granted(std::uint32_t principal, Clock::time_point now) const;

    // Turns for principals with calls waiting (PolkitDecision::wait): one is queued once; next()
    // gives them in turn, skipping none (the caller decides again and queues it back if needed).
    void queue(std::uint32_t principal);
    std::optional<std::uint32_t> next();
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    // When a waiting principal may get a token again (for a wake-up), if any waits for one.
    [[nodiscard]] std::optional<Clock::time_point> next_token(Clock::time_point now);

    [[nodiscard]] std::uint64_t asked() const noexcept { return asked_; }
    [[nodiscard]] std::uint64_t skipped_budget() const noexcept { return skipped_budget_; }
    [[nodiscard]] std::uint64_t negative_cached() const noexcept { return negative_cached_; }
    [[nodiscard]] std::size_t principals() const noexcept { return entries_.size(); }

private:
    struct Entry {
        explicit Entry(Bucket b) : tokens(b) {}
        Bucket tokens;
        bool granted_budget = false;  // which budget `tokens` is
        std::size_t in_flight = 0;
        std::deque<Clock::time_point> refusals;  // recent "no" answers
        Clock::time_point negative_until{};
        std::optional<Clock::time_point> granted_at;
        Clock::time_point used{};
        bool queued = false;
        bool waiting_token = false;
    };
    Entry& entry(std::uint32_t principal, Clock::time_point now);
    void forget_idle(Clock::time_point now);

    PolkitLimits limits_;
    std::map<std::uint32_t, Entry> entries_;
    std::deque<std::uint32_t> turns_;
    std::size_t in_flight_ = 0;
    std::uint64_t asked_ = 0, skipped_budget_ = 0, negative_cached_ = 0;
};

}  // namespace pidnsd
