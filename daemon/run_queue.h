// Whose call runs next: privileged principals before unprivileged ones, round-robin between principals, then between each one's connections.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "quota.h"

namespace pidnsd {

class RunQueue {
public:
    // Queues a connection of `p` that has a call to run (once: the caller keeps a "scheduled" flag).
    void push(const Principal& p, std::string connection);
    // The next connection of that class to give a slice to: the front principal's front
    // connection; the principal goes to the back of its class's ring. nullopt when none waits.
    std::optional<std::pair<Principal, std::string>> take(bool privileged);
    [[nodiscard]] bool has(bool privileged) const noexcept { return !rings_[privileged ? 1 : 0].turns.empty(); }
    [[nodiscard]] bool empty() const noexcept { return !has(false) && !has(true); }

private:
    struct Ring {
        std::deque<Principal> turns;                           // principals with a connection waiting
        std::map<Principal, std::deque<std::string>> waiting;  // each one's connections, in turn
    };
    Ring rings_[2];
};

}  // namespace pidnsd
