// Subscribers: admitted against quotas, re-checked in turn, and pinged for back-pressure.
#include <spdlog/spdlog.h>

#include "clients.h"
#include "errors.h"

namespace pidnsd {

bool Clients::recheck(Client& c) {
    if (c.identity != Client::Identity::known || !c.caller) return false;
    const auto now = Clock::now();
    if (c.subscription && now - c.subscription->checked < limits::kSubscriberRecheck) return true;
    try {
        check_caller(c);
    } catch (const sdbus::Error& e) {
        spdlog::debug("subscriber {} dropped: {}", c.name, e.getMessage());
        return false;  // check_caller forgot its identity, and with it the subscription
    }
    if (c.subscription) c.subscription->checked = now;
    return c.subscription != nullptr;
}

void Clients::subscribe(Client& c) {
    if (c.subscribed) return;
    reclassify(c);
    const Usage one{0, 0, 0, 0, 1};
    if (const Verdict v = quotas_.admit(c.principal, one); !v.ok()) {
        pressure();  // departed subscribers the bus did not announce are found and forgotten
        throw limit_error(&c, c.name, quotas_.refusal(v, c.principal, c.unidentified));
    }
    quotas_.charge(c.principal, one);
    c.subscribed = true;
    c.subscription = std::make_unique<Subscription>();
    if (c.principal.privileged) privileged_subscribers_.insert(&c);
}

void Clients::unsubscribe(Client& c) {
    if (!c.subscribed) return;
    quotas_.release(c.principal, Usage{0, 0, 0, 0, 1});
    privileged_subscribers_.erase(&c);
    c.subscribed = false;
    c.subscription.reset();
}

bool Clients::start_ping(Client& c) {
    if (c.ping != Client::Ping::none || c.identity != Client::Identity::known || !pings_.take(c.principal)) return false;
    c.ping = Client::Ping::in_flight;
    c.ping_charged = c.principal;
    return true;
}

Client* Clients::end_ping(const std::string& name, const Principal& charged, bool answered) {
    pings_.give(charged);
    Client* c = find(name);
    if (c == nullptr) return nullptr;
    c->ping = Client::Ping::none;
    if (answered) c->owner_checked = Clock::now();
    return c;
}

}  // namespace pidnsd
