// Asks polkit (org.freedesktop.PolicyKit1) whether a bus client may have an action, without blocking, and only when the answer can change something.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "polkit_policy.h"
#include "polkit_rules.h"

namespace pidnsd {

class Polkit {
public:
    using Details = std::map<std::string, std::string>;
    using Clock = std::chrono::steady_clock;
    // Who asks: its connection, the principal its usage is charged to (daemon/quota.h), the uid
    // the bus authenticated and its process (in pidnsd's pid namespace).
    struct Asker {
        std::string sender;
        std::uint32_t principal = 0;
        std::uint32_t uid = 0;
        std::int32_t pid = 0;
    };

    // enabled=false (--polkit=no): check() always answers "not authorized" at once.
    Polkit(sdbus::IConnection& conn, bool enabled, PolkitRules rules = PolkitRules(), PolkitLimits limits = {});
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }

    // CheckAuthorization(subject system-bus-name `who.sender`, `action`, `details`, not
    // interactive), or not: "not authorized" at once, without asking, when no rules file names the
    // action and its defaults grant nothing to the caller's session (PolkitRules), when the
    // principal's budget is spent or polkit said no to it for several targets lately
    // (PolkitPolicy), or from the answers kept per (connection, action, details) for
    // limits::kPolkitCacheFor. When the principal's in-flight share is taken the check waits its
    // turn (pump()). One query per key is in flight at a time; with no polkit on the bus, an error
    // or a timeout the answer is "not authorized". `done(authorized)` runs later from the event
    // loop, or at once.
    void check(const Asker& who, const std::string& action, const Details& details,
               std::function<void(bool authorized)> done);
    // Drops what is cached for a connection that is gone.
    void forget(const std::string& sender);
    // Sends the waiting checks that have a share (and a token) now; when to look again, if a
    // waiting check needs a token first.
    void pump();
    [[nodiscard]] std::optional<Clock::time_point> next_wake();
    // SIGHUP: the rules directories and the action file again.
    void reload_rules() { rules_.reload(); }
    // Whether polkit said yes to org.pidns.inspect for a connection of this uid lately (such a
    // caller is privileged: daemon/quota.h).
    [[nodiscard]] bool granted_uid(std::uint32_t uid) const;

    [[nodiscard]] std::size_t cached() const noexcept { return cache_.size(); }
    [[nodiscard]] std::size_t pending() const noexcept { return inflight_.size(); }
    [[nodiscard]] std::size_t waiting() const noexcept { return waiting_count_; }
    [[nodiscard]] std::uint64_t asked() const noexcept { return asked_; }  // CheckAuthorization calls sent
    [[nodiscard]] std::uint64_t skipped_budget() const noexcept { return policy_.skipped_budget(); }
    [[nodiscard]] std::uint64_t negative_cached() const noexcept { return policy_.negative_cached(); }
    [[nodiscard]] std::uint64_t skipped_cannot_grant() const noexcept { return skipped_cannot_grant_; }
    [[nodiscard]] const PolkitRules& rules() const noexcept { return rules_; }

private:
    struct Entry {
        bool authorized;
        Clock::time_point at;
        std::string sender;
    };
    struct Request {
        Asker who;
        std::string action;
        Details details;
        std::string key;
        std::function<void(bool)> done;
    };
    void store(const std::string& key, const std::string& sender, bool authorized);
    void sweep(Clock::time_point now);
    // Asks now (PolkitPolicy::decide said ask).
    void send(Request r);
    void finish(const std::string& key, bool ok);

    bool enabled_;
    std::unique_ptr<sdbus::IProxy> proxy_;
    PolkitRules rules_;
    PolkitPolicy policy_;
    std::unordered_map<std::string, Entry> cache_;
    std::unordered_map<std::string, std::vector<std::string>> keys_of_;  // sender -> its cache keys
    std::unordered_map<std::string, std::vector<std::function<void(bool)>>> inflight_;
    std::map<std::uint32_t, std::deque<Request>> waiting_;  // per principal, in order
    std::size_t waiting_count_ = 0;
    std::map<std::uint32_t, Clock::time_point> granted_uids_;
    std::uint64_t skipped_cannot_grant_ = 0, asked_ = 0;
    Clock::time_point last_sweep_{};
};

}  // namespace pidnsd
