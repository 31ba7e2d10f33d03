// The polkit query policy: budgets, in-flight shares, fair turns, the per-principal negative cache.
#include "polkit_policy.h"

#include <vector>

namespace pidnsd {

PolkitPolicy::Entry& PolkitPolicy::entry(std::uint32_t principal, Clock::time_point now) {
    auto it = entries_.find(principal);
    if (it == entries_.end()) {
        if (entries_.size() >= limits_.principals) forget_idle(now);
        it = entries_.emplace(principal, Entry(Bucket(limits_.burst, limits_.rate))).first;
    }
    Entry& e = it->second;
    e.used = now;
    // The budget follows what polkit said lately.
    const bool granted = e.granted_at && now - *e.granted_at < limits_.granted_for;
    if (granted != e.granted_budget) {
        e.tokens = granted ? Bucket(limits_.granted_burst, limits_.granted_rate) : Bucket(limits_.burst, limits_.rate);
        e.granted_budget = granted;
    }
    return e;
}

void PolkitPolicy::forget_idle(Clock::time_point now) {
    // Nothing in flight or waiting, no cache that still says something: forgetting it only
    // gives it a fresh budget, which its cache no longer held back anyway.
    for (auto it = entries_.begin(); it != entries_.end();) {
        const Entry& e = it->second;
        const bool idle = e.in_flight == 0 && !e.queued && now >= e.negative_until &&
                          (!e.granted_at || now - *e.granted_at >= limits_.granted_for) &&
                          now - e.used >= limits_.refusal_window;
        it = idle ? entries_.erase(it) : std::next(it);
    }
}

PolkitDecision PolkitPolicy::decide(std::uint32_t principal, Clock::time_point now) {
    if (entries_.size() >= limits_.principals && !entries_.contains(principal)) {
        forget_idle(now);
        if (entries_.size() >= limits_.principals) {
            ++skipped_budget_;  // too many principals at once: the newest go without polkit
            return PolkitDecision::skip_budget;
        }
    }
    Entry& e = entry(principal, now);
    const bool granted = e.granted_budget;
    if (!granted && now < e.negative_until) {
        ++negative_cached_;
        return PolkitDecision::skip_negative;
    }
    const std::size_t share = granted ? limits_.granted_in_flight_per_principal : limits_.in_flight_per_principal;
    if (e.in_flight >= share || in_flight_ >= limits_.in_flight) return PolkitDecision::wait;
    if (!e.tokens.take(now)) {
        if (granted) {
            e.waiting_token = true;
            return PolkitDecision::wait;  // a rule grants it things: its calls wait for their answer
        }
        ++skipped_budget_;
        return PolkitDecision::skip_budget;
    }
    e.waiting_token = false;
    ++e.in_flight;
    ++in_flight_;
    ++asked_;
    return PolkitDecision::ask;
}

void PolkitPolicy::answered(std::uint32_t principal, bool yes, Clock::time_point now) {
    failed(principal);
    Entry& e = entry(principal, now);
    if (yes) {
        e.granted_at = now;
        e.refusals.clear();
        e.negative_until = {};
        return;
    }
    e.refusals.push_back(now);
    while (!e.refusals.empty() && now - e.refusals.front() >= limits_.refusal_window) e.refusals.pop_front();
    const bool granted = e.granted_at && now - *e.granted_at < limits_.granted_for;
    if (!granted && e.refusals.size() >= limits_.refusals_to_cache) {
        e.negative_until = now + limits_.negative_for;
        e.refusals.clear();
    }
}

void PolkitPolicy::failed(std::uint32_t principal) {
    auto it = entries_.find(principal);
    if (it != entries_.end() && it->second.in_flight > 0) --it->second.in_flight;
    if (in_flight_ > 0) --in_flight_;
}

bool PolkitPolicy::granted(std::uint32_t principal, Clock::time_point now) const {
    auto it = entries_.find(principal);
    return it != entries_.end() && it->second.granted_at && now - *it->second.granted_at < limits_.granted_for;
}

void PolkitPolicy::queue(std::uint32_t principal) {
    auto it = entries_.find(principal);
    if (it == entries_.end() || it->second.queued) return;
    it->second.queued = true;
    turns_.push_back(principal);
}

std::optional<std::uint32_t> PolkitPolicy::next() {
    while (!turns_.empty()) {
        const std::uint32_t p = turns_.front();
        turns_.pop_front();
        auto it = entries_.find(p);
        if (it == entries_.end()) continue;
        it->second.queued = false;
        return p;
    }
    return std::nullopt;
}

std::optional<PolkitPolicy::Clock::time_point> PolkitPolicy::next_token(Clock::time_point now) {
    std::optional<Clock::time_point> first;
    for (auto& [p, e] : entries_)
        if (e.queued && e.waiting_token) {
            const auto t = e.tokens.when(now);
            if (!first || t < *first) first = t;
        }
    return first;
}

}  // namespace pidnsd
