// Back-pressure for signals: a connection is sent at most a window of signals beyond those a Peer.Ping it answered covers (no bus; unit-tested).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pidnsd {

// A Ping is a method call: the bus delivers it after every signal sent before it, and the peer's
// library answers it (sd-bus, libdbus and GDBus do so on their own) once it has read them. Its
// answer therefore says that the bus holds none of those signals any more. A connection that does
// not read gets `window` signals, then nothing until it answers; what waits for it meanwhile is
// pidnsd's own bounded queue (then one Resync), not the bus's.
class SignalCredit {
public:
    explicit SignalCredit(std::size_t window) noexcept : window_(window) {}

    // Whether one more signal may be sent now.
    [[nodiscard]] bool may_send() const noexcept { return unacknowledged() < window_; }
    void sent() noexcept { ++sent_; }
    // Whether to ping now: none in flight, and half the window sent since the last answered one
    // (so that a connection that reads is asked before it runs out).
    [[nodiscard]] bool wants_ping() const noexcept { return !in_flight_ && unacknowledged() >= window_ / 2 && unacknowledged() > 0; }
    // A Ping went out now: it follows every signal sent so far.
    void pinged() noexcept {
        in_flight_ = true;
        ping_at_ = sent_;
    }
    // It was answered: the signals sent before it are read.
    void answered() noexcept {
        in_flight_ = false;
        if (ping_at_ > acked_) acked_ = ping_at_;
    }
    // It could not be sent or was refused (the bus's own limits, its policy): try again later.
    void not_sent() noexcept { in_flight_ = false; }

    [[nodiscard]] bool in_flight() const noexcept { return in_flight_; }
    [[nodiscard]] std::uint64_t unacknowledged() const noexcept { return sent_ - acked_; }
    [[nodiscard]] std::uint64_t total() const noexcept { return sent_; }
    [[nodiscard]] std::size_t window() const noexcept { return window_; }

private:
    std::size_t window_;
    std::uint64_t sent_ = 0, acked_ = 0, ping_at_ = 0;
    bool in_flight_ = false;
};

}  // namespace pidnsd
