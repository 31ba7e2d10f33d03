// polkit client: asynchronous CheckAuthorization when it can help, at a bounded rate per principal, answers cached briefly.
#include "polkit.h"

#include <systemd/sd-login.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "quotas.h"

namespace pidnsd {
namespace {
constexpr auto kTimeout = std::chrono::seconds(5);

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

// The caller's login session as polkit judges it (logind: local = the session has a seat).
Session session_of(std::int32_t pid) {
    char* sid = nullptr;
    if (pid <= 0 || sd_pid_get_session(static_cast<pid_t>(pid), &sid) < 0 || sid == nullptr) return Session::none;
    Session s = Session::none;
    char* seat = nullptr;
    if (sd_session_get_seat(sid, &seat) >= 0 && seat != nullptr)
        s = sd_session_is_active(sid) > 0 ? Session::active : Session::inactive;
    std::free(seat);
    std::free(sid);
    return s;
}
}  // namespace

Polkit::Polkit(sdbus::IConnection& conn, bool enabled, PolkitRules rules, PolkitLimits limits)
    : enabled_(enabled), rules_(std::move(rules)), policy_(limits) {
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
    const auto granted_for = PolkitLimits{}.granted_for;
    for (auto it = granted_uids_.begin(); it != granted_uids_.end();)
        it = now - it->second >= granted_for ? granted_uids_.erase(it) : std::next(it);
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

bool Polkit::granted_uid(std::uint32_t uid) const {
    auto it = granted_uids_.find(uid);
    return it != granted_uids_.end() && Clock::now() - it->second < PolkitLimits{}.granted_for;
}

void Polkit::check(const Asker& who, const std::string& action, const Details& details,
                   std::function<void(bool)> done) {
    if (!enabled_) {
        done(false);
        return;
    }
    const auto now = Clock::now();
    if (now - last_sweep_ > limits::kPolkitCacheFor) sweep(now);
    std::string key = key_of(who.sender, action, details);
    if (auto it = cache_.find(key); it != cache_.end() && now - it->second.at < limits::kPolkitCacheFor) {
        done(it->second.authorized);
        return;
    }
    if (auto it = inflight_.find(key); it != inflight_.end()) {
        it->second.push_back(std::move(done));
        return;
    }
    // Nothing on disk could make polkit say yes to this caller: asking would only cost polkitd
    // (which every service on the host waits on) a query.
    rules_.refresh(now);
    if (!rules_.rules_name_action() && !rules_.may_grant(session_of(who.pid))) {
        ++skipped_cannot_grant_;
        done(false);
        return;
    }
    Request r{who, action, details, std::move(key), std::move(done)};
    switch (policy_.decide(who.principal, now)) {
    case PolkitDecision::ask: send(std::move(r)); return;
    case PolkitDecision::skip_budget:
    case PolkitDecision::skip_negative:
        spdlog::trace("polkit: not asking for {} (uid {}'s budget or refusals)", who.sender, who.principal);
        r.done(false);
        return;
    case PolkitDecision::wait: break;
    }
    auto& q = waiting_[who.principal];
    if (q.size() >= limits::kPolkitWaitingPerPrincipal) {
        r.done(false);
        return;
    }
    q.push_back(std::move(r));
    ++waiting_count_;
    policy_.queue(who.principal);
}

void Polkit::pump() {
    if (waiting_count_ == 0) return;
    const auto now = Clock::now();
    // Each principal with checks waiting gets one turn (one check sent, or skipped) per round.
    for (std::size_t turns = waiting_.size(); turns > 0; --turns) {
        const auto p = policy_.next();
        if (!p) break;
        auto it = waiting_.find(*p);
        if (it == waiting_.end() || it->second.empty()) continue;
        const PolkitDecision d = policy_.decide(*p, now);
        if (d == PolkitDecision::wait) {
            policy_.queue(*p);
            continue;
        }
        Request r = std::move(it->second.front());
        it->second.pop_front();
        --waiting_count_;
        if (d == PolkitDecision::ask)
            send(std::move(r));
        else
            r.done(false);
        if (it->second.empty())
            waiting_.erase(it);
        else
            policy_.queue(*p);
    }
}

std::optional<Polkit::Clock::time_point> Polkit::next_wake() {
    if (waiting_count_ == 0) return std::nullopt;
    return policy_.next_token(Clock::now());
}

void Polkit::finish(const std::string& key, bool ok) {
    auto it = inflight_.find(key);
    if (it == inflight_.end()) return;
    auto waiting = std::move(it->second);
    inflight_.erase(it);
    for (auto& f : waiting) f(ok);
}

void Polkit::send(Request r) {
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{std::string("system-bus-name"),
                          std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(r.who.sender)}}};
    // One query per key: identical checks that come while it is in flight wait for its answer.
    if (auto it = inflight_.find(r.key); it != inflight_.end()) {
        policy_.failed(r.who.principal);  // not asked after all
        it->second.push_back(std::move(r.done));
        return;
    }
    inflight_[r.key].push_back(std::move(r.done));
    ++asked_;
    try {
        proxy_->callMethodAsync("CheckAuthorization")
            .onInterface("org.freedesktop.PolicyKit1.Authority")
            .withTimeout(kTimeout)
            .withArguments(subject, r.action, r.details, std::uint32_t{0}, std::string())
            .uponReplyInvoke([this, key = r.key, who = r.who, action = r.action](
                                 const sdbus::Error* error, const sdbus::Struct<bool, bool, std::map<std::string, std::string>>& res) {
                bool ok = false;
                const auto now = Clock::now();
                if (error != nullptr) {
                    spdlog::debug("polkit: no answer for {} ({}): the kernel's rule stands", who.sender, error->getName());
                    policy_.failed(who.principal);
                } else {
                    ok = std::get<0>(res);
                    spdlog::debug("polkit: {} (uid {}) {} {}", who.sender, who.uid, ok ? "may" : "may not", action);
                    policy_.answered(who.principal, ok, now);
                    if (ok) granted_uids_[who.uid] = now;
                }
                store(key, who.sender, ok);
                finish(key, ok);
                pump();  // a share was freed
            });
    } catch (const sdbus::Error& e) {
        spdlog::debug("polkit: cannot ask for {} ({})", r.who.sender, e.getMessage());
        policy_.failed(r.who.principal);
        finish(r.key, false);
    }
}

}  // namespace pidnsd
