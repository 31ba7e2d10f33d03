// polkit client: asynchronous CheckAuthorization, one query per (sender, action, details), answers cached briefly.
#include "polkit.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "quotas.h"

namespace pidnsd {
namespace {
constexpr auto kTimeout = std::chrono::seconds(5);
using Clock = std::chrono::steady_clock;

std::string key_of(const std::string& sender, const std::string& action, const Polkit::Details& details) {
    std::string k = sender;
    k += '\n';
    k += action;
    for (const auto& [name, value] : details) {
        k += '\n';
        k += name;
        k += '=';
        k += value;
    }
    return k;
}
}  // namespace

Polkit::Polkit(sdbus::IConnection& conn, bool enabled) : enabled_(enabled) {
    if (enabled_)
        proxy_ = sdbus::createProxy(conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority");
}

void Polkit::sweep(Clock::time_point now) {
    last_sweep_ = now;
    for (auto it = cache_.begin(); it != cache_.end();) {
        if (now - it->second.at < limits::kPolkitCacheFor) {
            ++it;
            continue;
        }
        auto& keys = keys_of_[it->second.sender];
        keys.erase(std::remove(keys.begin(), keys.end(), it->first), keys.end());
        if (keys.empty()) keys_of_.erase(it->second.sender);
        it = cache_.erase(it);
    }
}

void Polkit::store(const std::string& key, const std::string& sender, bool authorized) {
    const auto now = Clock::now();
    if (cache_.size() >= limits::kPolkitCache) sweep(now);
    if (cache_.size() >= limits::kPolkitCache) return;  // full of fresh answers: just don't cache this one
    auto [it, fresh] = cache_.insert_or_assign(key, Entry{authorized, now, sender});
    if (fresh) keys_of_[sender].push_back(key);
}

void Polkit::forget(const std::string& sender) {
    auto it = keys_of_.find(sender);
    if (it == keys_of_.end()) return;
    for (const auto& k : it->second) cache_.erase(k);
    keys_of_.erase(it);
}

void Polkit::check(const std::string& sender, const std::string& action, const Details& details,
                   std::function<void(bool)> done) {
    if (!enabled_) {
        done(false);
        return;
    }
    const auto now = Clock::now();
    if (now - last_sweep_ > limits::kPolkitCacheFor) sweep(now);
    const std::string key = key_of(sender, action, details);
    if (auto it = cache_.find(key); it != cache_.end() && now - it->second.at < limits::kPolkitCacheFor) {
        done(it->second.authorized);
        return;
    }
    if (auto it = inflight_.find(key); it != inflight_.end()) {
        it->second.push_back(std::move(done));
        return;
    }
    if (inflight_.size() >= limits::kPolkitPending) {
        spdlog::debug("polkit: {} queries in flight; not asking for {}", inflight_.size(), sender);
        done(false);
        return;
    }
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{std::string("system-bus-name"),
                          std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(sender)}}};
    inflight_[key].push_back(std::move(done));
    try {
        proxy_->callMethodAsync("CheckAuthorization")
            .onInterface("org.freedesktop.PolicyKit1.Authority")
            .withTimeout(kTimeout)
            .withArguments(subject, action, details, std::uint32_t{0}, std::string())
            .uponReplyInvoke([this, key, sender, action](const sdbus::Error* error,
                                                        const sdbus::Struct<bool, bool, std::map<std::string, std::string>>& r) {
                bool ok = false;
                if (error != nullptr) {
                    spdlog::debug("polkit: no answer for {} ({}): the kernel's rule stands", sender, error->getName());
                } else {
                    ok = std::get<0>(r);
                    spdlog::debug("polkit: {} {} {}", sender, ok ? "may" : "may not", action);
                }
                store(key, sender, ok);
                auto waiting = std::move(inflight_[key]);
                inflight_.erase(key);
                for (auto& f : waiting) f(ok);
            });
    } catch (const sdbus::Error& e) {
        spdlog::debug("polkit: cannot ask for {} ({})", sender, e.getMessage());
        auto waiting = std::move(inflight_[key]);
        inflight_.erase(key);
        for (auto& f : waiting) f(false);
    }
}

}  // namespace pidnsd
