// Reading pidnsd's bus connection within a loop turn's budget, including the rest of a large message.
#pragma once

#include <sdbus-c++/IConnection.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <cstdint>
#include <functional>

namespace pidnsd {

// dbus-daemon writes a message larger than its socket's send buffer (~208 KiB: a TranslatePids
// of 65,536 pids is 256 KiB) in parts, each once pidnsd has read the one before. sd-bus reads
// what the socket holds and returns; a loop that then went on to answer calls got one part of
// such a message per turn, a few hundred a second: unprivileged clients sending them faster kept
// dbus-daemon's queue for pidnsd full (127 MiB), root's calls waited behind it for up to 0.5 s or
// were rejected by dbus-daemon ("destination has a full message queue").
//
// BusReader dispatches messages until the budget is spent, `stop` says so, or the socket is
// empty; when sd-bus holds part of a message (it read something, but no message was handed on),
// it waits for the rest, at most kRestWait at a time and never beyond the budget. Once a message
// came in parts in a turn, an empty socket is waited on for kFlowWait more: a flood of large calls
// is a flow dbus-daemon writes one part at a time, each once pidnsd has read the one before, and a
// turn that left for its calls at each gap let dbus-daemon's queue for pidnsd grow faster in the
// flood's opening burst (bench_flood's batches at N = 100: 1,543-3,208 calls rejected by the bus
// per default run before, 0-317 with the wait; 1 ms instead of 200 us made root's p99 5x worse).
// A call read from a privileged caller still ends the turn at once (`stop`); what follows it in
// the socket is read at the next turn, which the level-triggered epoll starts at once. Progress that
// was a write (sd_bus_process makes one kind per call) counts as a part too: telling the two apart
// by the write queue's length made root's p99 under bench_flood's batches flood worse (7.5, 54 and
// 26 ms against 235, 96 and 93 ms, interleaved runs; why was not shown).
class BusReader {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr auto kRestWait = std::chrono::milliseconds(2);
    static constexpr auto kFlowWait = std::chrono::microseconds(200);  // after a message in parts

    explicit BusReader(sdbus::IConnection& conn);
    ~BusReader();
    BusReader(const BusReader&) = delete;
    BusReader& operator=(const BusReader&) = delete;

    struct Read {
        std::size_t messages = 0;  // handed on to handlers (calls, signals, replies)
        std::size_t waits = 0;     // times the rest of a message was waited for
        bool pending = false;      // more may be readable now: the next turn should not sleep
    };
    // Throws sdbus::Error when the connection is lost.
    Read read(Clock::time_point until, const std::function<bool()>& stop);
    // What pidnsd sent that dbus-daemon has not read yet: the bytes in the socket (the kernel's
    // accounting, SIOCOUTQ: with each buffer's overhead), or kSentQueued while sd-bus still holds
    // messages the socket had no room for; 0 when the kernel does not say.
    [[nodiscard]] std::size_t unread_sent() const;

private:
    static int count(sd_bus_message* m, void* self, sd_bus_error* error);
    bool wait_readable(Clock::time_point until) const;
    // sd-bus holds messages it has read (sd_bus_get_timeout: 0), or cannot say.
    [[nodiscard]] bool held_by_sdbus() const;

    sdbus::IConnection& conn_;
    sd_bus* bus_ = nullptr;
    sd_bus_slot* filter_ = nullptr;
    std::uint64_t seen_ = 0;  // messages the filter saw
};

}  // namespace pidnsd
