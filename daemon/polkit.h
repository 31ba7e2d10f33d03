// Asks polkit (org.freedesktop.PolicyKit1) whether a bus client may have org.pidns.inspect, without blocking.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

namespace pidnsd {

inline constexpr const char* kInspectAction = "org.pidns.inspect";

class Polkit {
public:
    // enabled=false (--polkit=no): check() always answers "not authorized" at once.
    Polkit(sdbus::IConnection& conn, bool enabled);
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }

    // CheckAuthorization(subject system-bus-name `sender`, org.pidns.inspect, not interactive).
    // `done(authorized)` runs later from the event loop (or at once from a 5-second cache). No
    // polkit on the bus, an error or a 5-second timeout count as "not authorized".
    void check(const std::string& sender, std::function<void(bool authorized)> done);

private:
    bool enabled_;
    std::unique_ptr<sdbus::IProxy> proxy_;
    std::unordered_map<std::string, std::pair<bool, std::chrono::steady_clock::time_point>> cache_;
};

}  // namespace pidnsd
