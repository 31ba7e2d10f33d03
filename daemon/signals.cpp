// Signals to subscribers: who may see each namespace change, coalesced per subscriber, paced by a token bucket.
#include "signals.h"

#include <spdlog/spdlog.h>

#include "quotas.h"
#include "model.h"
#include "view.h"
#include "wire.h"

namespace pidnsd {

// Every subscriber's Ping may be in flight at once (a silent one holds its own for as long as it
// stays): the ping connections have room for all the subscriptions pidnsd allows.
static_assert(PeerPing::kPerConnection * PeerPing::kConnections >= limits::kSubscribers + limits::kPrivilegedSubscribers);

namespace {
// After a Ping that could not go (signals still queued for the bus) or failed, that connection is
// not pinged again for this long.
constexpr auto kPingRetry = std::chrono::milliseconds(50);
}  // namespace

SignalFanout::SignalFanout(pidns::Model& model, Clients& clients, Send send, Ping ping)
    : model_(model), clients_(clients), send_(std::move(send)), ping_(std::move(ping)), back_pressure_(ping_ != nullptr) {}

void SignalFanout::sent_to(Client& c) {
    c.credit.sent();
    if (back_pressure_ && !c.credit.may_send()) ++stalls_;
    maybe_ping(c);
}

void SignalFanout::maybe_ping(Client& c) {
    if (!back_pressure_ || !c.credit.wants_ping() || Clock::now() < c.ping_not_before) return;
    if (!clients_.start_ping(c)) return;  // one in flight already, or its principal's share is
    c.credit.pinged();
    const std::string name = c.name;
    const Principal charged = c.ping_charged;
    if (!ping_(name, [this, name, charged](PeerPing::Result r) { pinged(name, charged, r); })) {
        clients_.end_ping(name, charged, false);
        c.credit.not_sent();
        c.ping_not_before = Clock::now() + kPingRetry;
        return;
    }
    ++pings_;
}

void SignalFanout::pinged(const std::string& name, const Principal& charged, PeerPing::Result result) {
    if (result == PeerPing::Result::denied && back_pressure_) {
        back_pressure_ = false;
        spdlog::warn("the bus policy does not let pidnsd ping its subscribers (org.freedesktop.DBus.Peer.Ping): "
                     "signals are paced but not held back for subscribers that do not read; install "
                     "dbus/org.pidns.conf in the bus's policy directory and reload the bus");
    }
    const bool answered = result == PeerPing::Result::answered;
    Client* c = clients_.end_ping(name, charged, answered);
    if (c == nullptr) return;
    if (answered) {
        ++pings_answered_;
        c->credit.answered();
    } else {
        c->credit.not_sent();
        c->ping_not_before = Clock::now() + kPingRetry;
    }
}

std::size_t SignalFanout::stalled() {
    std::size_t n = 0;
    clients_.for_each_subscriber([&](Client& c) { n += may_send(c) ? 0 : 1; });
    return n;
}

void SignalFanout::push(const std::vector<pidns::NsChange>& changes) {
    if (clients_.subscribers() == 0) return;  // nobody listens: nothing to decide
    const bool others = clients_.quotas().pool(false).subscribers > 0;
    const auto now = Clock::now();
    for (const auto& c : changes) {
        // Privileged subscribers first: never behind unprivileged ones' decisions.
        const bool present = model_.index().find_namespace(c.id) != nullptr;
        clients_.for_each_privileged_subscriber([&](Client& cl) { decide(cl, c, present); });
        if (!others) continue;
        if (backlog_.size() >= kMaxBacklog) {
            overflow("too many");
            return;
        }
        backlog_.push_back(Queued{c, now});
    }
}

void SignalFanout::overflow(const char* why) {
    // Deciding fell behind the changes: the unprivileged subscribers list again instead.
    spdlog::warn("namespace changes arrive faster than they can be signalled ({} waiting, {}): unprivileged "
                 "subscribers get Resync",
                 backlog_.size(), why);
    backlog_.clear();
    clients_.for_each_subscriber([](Client& cl) {
        if (!cl.principal.privileged) fell_behind(*cl.subscription);
    });
}

void SignalFanout::told(Client& c, std::uint64_t id) {
    if (!c.subscription) return;
    auto& s = *c.subscription;
    if (s.told.size() >= limits::kToldPerSubscriber && !s.told.contains(id)) {
        fell_behind(s);
        return;
    }
    s.told.insert(id);
}

void SignalFanout::fell_behind(Subscription& s) {
    s.resync = true;
    s.pending.clear();
    s.pending_added.clear();
    s.told.clear();  // it lists again; the listing tells it anew
}

void SignalFanout::decide(Client& c, const pidns::NsChange& change, bool present) {
    auto& s = *c.subscription;
    if (s.resync) return;  // it will list again anyway
    if (change.added) {
        // Created, and visible to it now (a namespace gone already is never announced).
        if (!present || !clients_.recheck(c)) return;
        pidns::CallerView view(model_, *c.caller);
        if (!view.can_see(change.id)) return;
        if (s.pending.size() >= limits::kPendingChangesPerSubscriber) {
            fell_behind(s);
            return;
        }
        s.pending.push_back({change.id, true, change.type});
        ++s.pending_added[change.id];
    } else {
        if (auto it = s.pending_added.find(change.id); it != s.pending_added.end()) {
            // Announced but not sent yet: its NamespaceAdded never goes out.
            for (auto& p : s.pending)
                if (p.id == change.id && p.added) p.cancelled = true;
            s.pending_added.erase(it);
        }
        // It hears of the end only if it knows of the namespace: from a signal sent, or from a
        // reply (a ListNamespaces made after the Added was decided, e.g. the listing after a
        // Resync, lists it: without its NamespaceRemoved it would keep it for ever).
        if (s.told.erase(change.id) == 0) return;
        if (s.pending.size() >= limits::kPendingChangesPerSubscriber) {
            fell_behind(s);
            return;
        }
        s.pending.push_back({change.id, false, change.type});
    }
}

bool SignalFanout::send_some(Clock::time_point until) {
    std::vector<Client*> subs;
    clients_.for_each_subscriber([&](Client& c) { subs.push_back(&c); });
    if (subs.empty()) return false;
    bool left = false;
    const std::size_t n = subs.size();
    const std::size_t first = rotation_++ % n;
    for (std::size_t k = 0; k < n; ++k) {
        Client& c = *subs[(first + k) % n];
        auto& s = *c.subscription;
        const auto now = Clock::now();
        if (now >= until) return true;
        if (c.holding_signals()) {
            // A listing of it is being answered (told of entries as it collects them): what it
            // hears now could describe a change its reply, sent later, includes or not. After it.
            left = left || !s.pending.empty() || s.resync;
            continue;
        }
        if (!may_send(c)) {
            // Its window is used up: nothing more until it answers a Ping (what waits meanwhile is
            // its queue here, then one Resync); ask again if the last Ping went nowhere.
            maybe_ping(c);
            // Its answer wakes the loop; only a Ping to retry later needs a look then.
            left = left || (c.ping == Client::Ping::none && c.credit.wants_ping());
            continue;
        }
        if (s.resync) {
            if (!s.tokens.take(now)) {
                left = true;
                continue;
            }
            s.resync = false;
            ++resyncs_;
            try {
                send_(c.name, pidns::bus::kSignalResync, 0, pidns::NsType::pid);
            } catch (const std::exception& e) {
                spdlog::debug("signal to {}: {}", c.name, e.what());
            }
            sent_to(c);
            continue;
        }
        while (!s.pending.empty()) {
            auto p = s.pending.front();
            if (!p.cancelled && (!may_send(c) || !s.tokens.take(now))) break;
            s.pending.pop_front();
            if (p.cancelled) continue;
            if (p.added) {
                if (auto it = s.pending_added.find(p.id); it != s.pending_added.end() && --it->second == 0)
                    s.pending_added.erase(it);
                if (s.told.size() >= limits::kToldPerSubscriber) {
                    fell_behind(s);
                    break;
                }
                s.told.insert(p.id);
            }
            ++sent_;
            try {
                send_(c.name, p.added ? pidns::bus::kSignalNamespaceAdded : pidns::bus::kSignalNamespaceRemoved, p.id, p.type);
            } catch (const std::exception& e) {
                spdlog::debug("signal to {}: {}", c.name, e.what());
            }
            sent_to(c);
        }
        // A stalled subscriber is woken by its Ping's answer, not by polling.
        left = left || ((!s.pending.empty() || s.resync) && may_send(c));
    }
    return left;
}

bool SignalFanout::run(std::chrono::microseconds budget) {
    const auto start = Clock::now();
    const auto until = start + budget;
    // Deciding gets half the budget at most: what is decided must also go out (under a storm the
    // backlog never empties, and sending would get nothing).
    const auto decide_until = start + budget / 2;
    if (!backlog_.empty() && start - backlog_.front().at > kMaxBacklogAge) overflow("too old");
    while (!backlog_.empty() && Clock::now() < decide_until) {
        const auto& change = backlog_.front().change;
        const bool present = model_.index().find_namespace(change.id) != nullptr;
        clients_.for_each_subscriber([&](Client& c) {
            if (!c.principal.privileged) decide(c, change, present);
        });
        backlog_.pop_front();
    }
    const bool unsent = send_some(until);
    return !backlog_.empty() || unsent;
}

}  // namespace pidnsd
