// Asks polkit (org.freedesktop.PolicyKit1) whether a bus client may have an action, without blocking; bounded cache.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pidnsd {

inline constexpr const char* kInspectAction = "org.pidns.inspect";

class Polkit {
public:
    using Details = std::map<std::string, std::string>;

    // enabled=false (--polkit=no): check() always answers "not authorized" at once.
    Polkit(sdbus::IConnection& conn, bool enabled);
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }

    // CheckAuthorization(subject system-bus-name `sender`, `action`, `details`, not interactive).
    // `done(authorized)` runs later from the event loop, or at once from the cache (answers are
    // kept per (sender, action, details) for limits::kPolkitCacheFor). One query per key is in
    // flight at a time; beyond limits::kPolkitPending queries, or with no polkit on the bus, an
    // error or a timeout, the answer is "not authorized".
    void check(const std::string& sender, const std::string& action, const Details& details,
               std::function<void(bool authorized)> done);
    // Drops what is cached for a connection that is gone.
    void forget(const std::string& sender);

    [[nodiscard]] std::size_t cached() const noexcept { return cache_.size(); }
    [[nodiscard]] std::size_t pending() const noexcept { return inflight_.size(); }

private:
    struct Entry {
        bool authorized;
        std::chrono::steady_clock::time_point at;
        std::string sender;
    };
    void store(const std::string& key, const std::string& sender, bool authorized);
    void sweep(std::chrono::steady_clock::time_point now);

    bool enabled_;
    std::unique_ptr<sdbus::IProxy> proxy_;
    std::unordered_map<std::string, Entry> cache_;
    std::unordered_map<std::string, std::vector<std::string>> keys_of_;  // sender -> its cache keys
    std::unordered_map<std::string, std::vector<std::function<void(bool)>>> inflight_;
    std::chrono::steady_clock::time_point last_sweep_{};
};

}  // namespace pidnsd
