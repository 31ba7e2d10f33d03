// The bus connections pidnsd serves: their registry, appearance times, idle eviction, revalidation, limit errors.
// Identity: identity.cpp; calls: scheduler.cpp; subscribers: subscriptions.cpp.
#include "clients.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "errors.h"
#include "model.h"
#include "wire.h"

namespace pidnsd {

bool Client::holding_signals() const noexcept {
    auto holds = [](const Call& call) { return call.holds_signals && call.checked; };
    for (const auto& call : queue)
        if (holds(*call)) return true;
    for (const auto& [id, call] : parked)
        if (holds(*call)) return true;
    return false;
}

namespace {

using pidns::bus::kBusDriverName;

std::string who(const Client& c) {
    if (c.identity != Client::Identity::known || !c.caller) return c.name;
    std::string s = c.name + " (uid " + std::to_string(c.uid) + ", pid " + std::to_string(c.caller->pid);
    if (c.principal.uid != c.uid) s += ", of uid " + std::to_string(c.principal.uid) + "'s user namespace";
    return s + ")";
}

}  // namespace

Clients::Clients(sdbus::IConnection& conn, pidns::Model& model)
    : model_(model), dbus_(sdbus::createProxy(conn, kBusDriverName, pidns::bus::kBusDriverPath)) {
    name_owner_changed_ = conn.addMatch(
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
        [this](sdbus::Message& m) {
            try {
                std::string name, old_owner, new_owner;
                m >> name >> old_owner >> new_owner;
                if (name.empty() || name[0] != ':') return;  // unique names only
                if (old_owner.empty() && !new_owner.empty())
                    note_appeared(name);
                else if (new_owner.empty())
                    forget(name);
            } catch (const std::exception& e) {
                spdlog::warn("malformed NameOwnerChanged signal: {}", e.what());
            }
        });
    // Connections that appear from now on are announced; older ones connected before this.
    subscribed_at_ = pidns::boottime_ticks();
    sync_identify_ = Bucket(limits::kSyncIdentifySecondsPerSecond, limits::kSyncIdentifySecondsPerSecond);
}

Clients::~Clients() = default;

void Clients::note_appeared(const std::string& name) {
    if (appeared_.contains(name)) return;
    if (appeared_.size() >= limits::kTrackedConnections) {
        appeared_.erase(appeared_order_.front().first);
        appeared_order_.pop_front();
        appeared_overflow_ = true;
    }
    appeared_order_.emplace_back(name, pidns::boottime_ticks());
    appeared_.emplace(name, std::prev(appeared_order_.end()));
}

std::uint64_t Clients::started_by(const std::string& name) const {
    if (auto it = appeared_.find(name); it != appeared_.end()) return it->second->second;
    // Not announced: it connected before we listened, unless its record was dropped at the cap
    // (then all we know is that it connected before now).
    return appeared_overflow_ ? pidns::boottime_ticks() : subscribed_at_;
}

Client* Clients::find(const std::string& sender) {
    auto it = clients_.find(sender);
    return it == clients_.end() ? nullptr : it->second.get();
}

Client& Clients::client_of(const std::string& sender) {
    if (auto* c = find(sender)) return *c;
    const Usage one{0, 0, 0, 1, 0};
    const Usage fresh;
    Verdict v = quotas_.admit_unidentified(fresh, one);
    if (!v.ok() && evict_idle(std::nullopt) > 0) v = quotas_.admit_unidentified(fresh, one);
    if (!v.ok()) {
        pressure();
        throw limit_error(nullptr, sender, quotas_.refusal(v, Principal{}, fresh));
    }
    auto c = std::make_unique<Client>();
    c->name = sender;
    quotas_.charge_unidentified(c->unidentified, one);
    compact_ring();
    revalidate_ring_.push_back(sender);
    return *clients_.emplace(sender, std::move(c)).first->second;
}

std::size_t Clients::evict_idle(std::optional<bool> privileged, std::optional<Principal> of) {
    // The least recently active idle connections of that class (or not identified): forgetting
    // them costs only a new identification if they call again.
    std::vector<std::pair<Clock::time_point, std::string>> idle;
    for (const auto& [name, c] : clients_) {
        if (!c->idle()) continue;
        const bool known = c->identity == Client::Identity::known;
        if (!privileged ? known : (!known || c->principal.privileged != *privileged)) continue;
        if (of && c->principal != *of) continue;
        idle.emplace_back(c->last_active, name);
    }
    const std::size_t drop = std::min(idle.size(), std::max<std::size_t>(1, limits::kClients / 16));
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(drop), idle.end());
    for (std::size_t i = 0; i < drop; ++i) drop_client(idle[i].second, false);
    return drop;
}

sdbus::Error Clients::limit_error(Client* c, const std::string& sender, const Refusal& refusal) {
    ++limited_;
    if (c) ++c->calls_limited;
    const auto now = Clock::now();
    if (now - limit_window_ > limits::kLimitLogWindow) {
        limit_window_ = now;
        limit_logs_ = 0;
    }
    if ((!c || !c->limit_logged) && limit_logs_ < limits::kLimitLogsPerWindow) {
        ++limit_logs_;
        if (c) c->limit_logged = true;
        spdlog::warn("client {} exceeded a limit: {}; refusing its excess (logged once per client)",
                     c ? who(*c) : sender, refusal_text(refusal));
    }
    return pidnsd::limits_exceeded(refusal);
}

void Clients::forget(const std::string& name) {
    if (auto it = appeared_.find(name); it != appeared_.end()) {
        appeared_order_.erase(it->second);
        appeared_.erase(it);
    }
    drop_client(name, true);
}

void Clients::drop_client(const std::string& name, bool left_bus) {
    Client* c = find(name);
    if (c == nullptr) {
        if (left_bus) departed_.push_back(name);
        return;
    }
    // Its calls can no longer be answered: drop them.
    for (auto& call : c->queue) release(*c, *call);
    for (auto& [id, call] : c->parked) release(*c, *call);
    c->queue.clear();
    c->parked.clear();
    forget_identity(*c);
    quotas_.release_unidentified(c->unidentified, Usage{0, 0, 0, 1, 0});
    clients_.erase(name);
    departed_.push_back(name);
    if (left_bus) spdlog::trace("client {} left the bus", name);
}

std::vector<std::string> Clients::take_departed() { return std::exchange(departed_, {}); }

void Clients::pressure() {
    const auto now = Clock::now();
    if (now < pressure_until_) return;
    pressure_until_ = now + limits::kRevalidatePressureFor;
    next_revalidate_ = now;
}

std::optional<Clock::time_point> Clients::next_revalidation() const {
    if (clients_.empty()) return std::nullopt;
    return next_revalidate_;
}

void Clients::revalidate() {
    const auto now = Clock::now();
    if (now < next_revalidate_) return;
    const bool pressed = now < pressure_until_;
    std::size_t budget = pressed ? limits::kRevalidatePressureBatch : limits::kRevalidateBatch;
    const std::size_t asked_before = revalidations_;
    const std::size_t n = std::min<std::size_t>(revalidate_ring_.size(), 1024);
    for (std::size_t looked = 0; looked < n && budget > 0 && owner_checks_ < limits::kRevalidateInFlight; ++looked) {
        std::string name = std::move(revalidate_ring_.front());
        revalidate_ring_.pop_front();
        Client* c = find(name);
        if (c == nullptr) continue;  // dropped: its name leaves the ring
        revalidate_ring_.push_back(name);
        // Calls in flight are answered anyway; a connection asked about lately is left alone.
        if (c->owner_asking || c->in_flight() > 0 || (!pressed && now - c->owner_checked < limits::kRevalidateIdle))
            continue;
        --budget;
        check_owner(name);
    }
    // Nothing was due: look again in a while (an idle pidnsd does not wake for this every turn).
    next_revalidate_ = now + (pressed || revalidations_ != asked_before ? limits::kRevalidatePeriod
                                                                         : limits::kRevalidateIdle / 6);
}

void Clients::compact_ring() {
    if (revalidate_ring_.size() <= 2 * clients_.size() + 64) return;
    // Mostly names of clients gone since: rebuilt (amortized O(1) per client made).
    revalidate_ring_.clear();
    for (const auto& [name, c] : clients_) revalidate_ring_.push_back(name);
    revalidate_ring_.shrink_to_fit();
}

void Clients::check_owner(const std::string& name) {
    Client* c = find(name);
    if (c == nullptr) return;
    c->owner_asking = true;
    ++owner_checks_;
    ++revalidations_;
    try {
        dbus_->callMethodAsync("NameHasOwner")
            .onInterface(kBusDriverName)
            .withArguments(name)
            .uponReplyInvoke([this, name](const sdbus::Error* error, bool has_owner) {
                --owner_checks_;
                Client* c = find(name);
                if (c == nullptr) return;
                c->owner_asking = false;
                if (error != nullptr) return;  // asked again later
                if (has_owner) {
                    c->owner_checked = Clock::now();
                    return;
                }
                ++revalidated_gone_;
                spdlog::debug("client {} left the bus without its NameOwnerChanged reaching pidnsd: forgotten", name);
                forget(name);
            });
    } catch (const sdbus::Error& e) {
        --owner_checks_;
        c->owner_asking = false;
        spdlog::debug("cannot ask the bus about {} ({})", name, e.getMessage());
    }
}

}  // namespace pidnsd
