// NamespaceAdded/NamespaceRemoved/Resync to subscribers: decided per subscriber within a budget, coalesced, rate-limited, with back-pressure.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "clients.h"
#include "index.h"
#include "peer_ping.h"

namespace pidns {
class Model;
}

namespace pidnsd {

class SignalFanout {
public:
    // Sends one signal: member "NamespaceAdded"/"NamespaceRemoved" (with id and type) or "Resync".
    using Send = std::function<void(const std::string& destination, const char* member, std::uint64_t id,
                                    pidns::NsType type)>;
    // Pings a subscriber (PeerPing::ping); unset: no back-pressure (each subscriber is only paced).
    using Ping = std::function<bool(const std::string& destination, std::function<void(PeerPing::Result)> done)>;
    SignalFanout(pidns::Model& model, Clients& clients, Send send, Ping ping = {});

    // Namespace changes of the index, in order (created: NamespaceAdded; destroyed: NamespaceRemoved):
    // decided at once for privileged subscribers (few, and cheap: they see everything), queued for
    // the others.
    void push(const std::vector<pidns::NsChange>& changes);
    // Decides which subscriber may see which change and sends what their rates allow, until
    // `budget` is spent. Returns true when work is left.
    bool run(std::chrono::microseconds budget);
    // A reply showed namespace `id` to subscriber `c`: it will hear of its removal.
    static void told(Client& c, std::uint64_t id);

    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
    [[nodiscard]] std::uint64_t resyncs() const noexcept { return resyncs_; }
    [[nodiscard]] std::size_t backlog() const noexcept { return backlog_.size(); }
    [[nodiscard]] std::uint64_t pings() const noexcept { return pings_; }
    [[nodiscard]] std::uint64_t pings_answered() const noexcept { return pings_answered_; }
    // Subscribers that were sent their whole window and wait for a Ping's answer, now; times one ran out.
    [[nodiscard]] std::size_t stalled();
    [[nodiscard]] std::uint64_t stalls() const noexcept { return stalls_; }
    [[nodiscard]] bool back_pressure() const noexcept { return back_pressure_; }

    // Changes waiting to be decided; beyond this many, or when the oldest waited this long, every
    // unprivileged subscriber gets one Resync instead (a reader gets every change or a Resync).
    static constexpr std::size_t kMaxBacklog = 65536;
    static constexpr auto kMaxBacklogAge = std::chrono::seconds(5);

private:
    // Decides one change for one subscriber.
    void decide(Client& c, const pidns::NsChange& change, bool present);
    void overflow(const char* why);
    static void fell_behind(Subscription& s);
    bool send_some(Clock::time_point until);
    // Whether `c` may be sent one more signal now (its window is not used up).
    [[nodiscard]] bool may_send(const Client& c) const noexcept { return !back_pressure_ || c.credit.may_send(); }
    // One signal went to `c`: counted against its window, and a Ping when half of it is used.
    void sent_to(Client& c);
    void maybe_ping(Client& c);
    void pinged(const std::string& name, const Principal& charged, PeerPing::Result result);

    pidns::Model& model_;
    Clients& clients_;
    Send send_;
    Ping ping_;
    bool back_pressure_;  // pings work (the bus policy may forbid them: then paced only)
    struct Queued {
        pidns::NsChange change;
        Clock::time_point at;
    };
    std::deque<Queued> backlog_;
    std::size_t rotation_ = 0;  // which subscriber sends first, so every one gets its turn
    std::uint64_t sent_ = 0, resyncs_ = 0, pings_ = 0, pings_answered_ = 0, stalls_ = 0;
};

}  // namespace pidnsd
