// What a subscriber has been told and what waits to be sent to it (subscriptions.cpp, signals.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "bucket.h"
#include "ns_type.h"
#include "quotas.h"

namespace pidnsd {

// What a subscriber (Subscribe()) has been told and what waits to be sent to it.
struct Subscription {
    std::unordered_set<std::uint64_t> told;  // namespaces it knows of (signals, replies): NamespaceRemoved goes to these
    // Changes decided for it and not sent yet, coalesced: an Added cancelled by its Removed is never sent.
    struct Pending {
        std::uint64_t id;
        bool added;
        pidns::NsType type;
        bool cancelled = false;
    };
    std::deque<Pending> pending;
    std::unordered_map<std::uint64_t, std::size_t> pending_added;  // id -> pending Added not cancelled
    bool resync = false;  // it fell behind: one Resync replaces what it missed
    Clock::time_point checked{};  // when its credentials were last re-read
    Bucket tokens{limits::kSignalBurst, limits::kSignalsPerSecond};
};

}  // namespace pidnsd
