// polkit client: asynchronous CheckAuthorization for org.pidns.inspect, cached briefly per sender.
#include "polkit.h"

#include <spdlog/spdlog.h>

#include <map>

namespace pidnsd {
namespace {
constexpr auto kCacheFor = std::chrono::seconds(5);
constexpr auto kTimeout = std::chrono::seconds(5);
}  // namespace

Polkit::Polkit(sdbus::IConnection& conn, bool enabled) : enabled_(enabled) {
    if (enabled_)
        proxy_ = sdbus::createProxy(conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority");
}

void Polkit::check(const std::string& sender, std::function<void(bool)> done) {
    if (!enabled_) {
        done(false);
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (auto it = cache_.find(sender); it != cache_.end()) {
        if (now - it->second.second < kCacheFor) {
            done(it->second.first);
            return;
        }
        cache_.erase(it);
    }
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{std::string("system-bus-name"), std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(sender)}}};
    try {
        proxy_->callMethodAsync("CheckAuthorization")
            .onInterface("org.freedesktop.PolicyKit1.Authority")
            .withTimeout(kTimeout)
            .withArguments(subject, std::string(kInspectAction), std::map<std::string, std::string>{}, std::uint32_t{0},
                           std::string())
            .uponReplyInvoke([this, sender, done = std::move(done)](
                                 const sdbus::Error* error,
                                 const sdbus::Struct<bool, bool, std::map<std::string, std::string>>& r) {
                bool ok = false;
                if (error != nullptr) {
                    spdlog::debug("polkit: no answer for {} ({}): the kernel's rule stands", sender, error->getName());
                } else {
                    ok = std::get<0>(r);
                    spdlog::debug("polkit: {} {} {}", sender, ok ? "may" : "may not", kInspectAction);
                }
                cache_[sender] = {ok, std::chrono::steady_clock::now()};
                done(ok);
            });
    } catch (const sdbus::Error& e) {
        spdlog::debug("polkit: cannot ask for {} ({})", sender, e.getMessage());
        done(false);
    }
}

}  // namespace pidnsd
