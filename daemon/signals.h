// NamespaceAdded/NamespaceRemoved/Resync to subscribers: decided per subscriber within a budget, coalesced, rate-limited.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "clients.h"
#include "index.h"

namespace pidns {
class Model;
}

namespace pidnsd {

class SignalFanout {
public:
    // Sends one signal: member "NamespaceAdded"/"NamespaceRemoved" (with id and type) or "Resync".
    using Send = std::function<void(const std::string& destination, const char* member, std::uint64_t id,
                                    pidns::NsType type)>;
    SignalFanout(pidns::Model& model, Clients& clients, Send send);

    // Namespace changes of the index, in order (created: NamespaceAdded; destroyed: NamespaceRemoved).
    void push(const std::vector<pidns::NsChange>& changes);
    // Decides which subscriber may see which change and sends what their rates allow, until
    // `budget` is spent. Returns true when work is left.
    bool run(std::chrono::microseconds budget);
    // A reply showed namespace `id` to subscriber `c`: it will hear of its removal.
    static void told(Client& c, std::uint64_t id);

    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
    [[nodiscard]] std::uint64_t resyncs() const noexcept { return resyncs_; }
    [[nodiscard]] std::size_t backlog() const noexcept { return backlog_.size(); }

    // Changes waiting to be decided; beyond this every subscriber gets one Resync instead.
    static constexpr std::size_t kMaxBacklog = 65536;

private:
    void decide(const pidns::NsChange& change);
    static void fell_behind(Subscription& s);
    bool send_some(Clock::time_point until);

    pidns::Model& model_;
    Clients& clients_;
    Send send_;
    std::deque<pidns::NsChange> backlog_;
    std::size_t rotation_ = 0;  // which subscriber sends first, so every one gets its turn
    std::uint64_t sent_ = 0, resyncs_ = 0;
};

}  // namespace pidnsd
