// Reading pidnsd's bus connection within a loop turn's budget, including the rest of a large message.
#include "bus_reader.h"

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "quotas.h"
#include "raw_message.h"

namespace pidnsd {

BusReader::BusReader(sdbus::IConnection& conn) : conn_(conn) {
    bus_ = raw_bus(conn);
    // A filter sees every message sd-bus hands on (method calls, signals, and replies whose
    // handler did not consume them; a consumed reply counts as a part, below: at worst one
    // wait of kRestWait that ends as soon as anything arrives).
    if (bus_ != nullptr && sd_bus_add_filter(bus_, &filter_, &BusReader::count, this) < 0) filter_ = nullptr;
}

BusReader::~BusReader() {
    if (filter_ != nullptr) sd_bus_slot_unref(filter_);
    if (bus_ != nullptr) sd_bus_unref(bus_);
}

int BusReader::count(sd_bus_message*, void* self, sd_bus_error*) {
    ++static_cast<BusReader*>(self)->seen_;
    return 0;  // not consumed: dispatched as before
}

bool BusReader::wait_readable(Clock::time_point until) const {
    const auto now = Clock::now();
    if (now >= until) return false;
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(std::min<Clock::duration>(until - now, kRestWait));
    const timespec ts{static_cast<time_t>(left.count() / 1'000'000'000), static_cast<long>(left.count() % 1'000'000'000)};
    pollfd p{conn_.getEventLoopPollData().fd, POLLIN, 0};
    return ::ppoll(&p, 1, &ts, nullptr) > 0 && (p.revents & POLLIN) != 0;
}

std::size_t BusReader::unread_sent() const {
    std::uint64_t queued = 0;
    if (bus_ != nullptr && sd_bus_get_n_queued_write(bus_, &queued) >= 0 && queued > 0) return limits::kSentQueued;
    int unread = 0;
    if (::ioctl(conn_.getEventLoopPollData().fd, SIOCOUTQ, &unread) != 0 || unread < 0) return 0;
    return static_cast<std::size_t>(unread);
}

bool BusReader::held_by_sdbus() const {
    std::uint64_t at = 0;
    return bus_ == nullptr || sd_bus_get_timeout(bus_, &at) < 0 || at == 0;
}

BusReader::Read BusReader::read(Clock::time_point until, const std::function<bool()>& stop) {
    Read r;
    bool part = false;  // the last progress read part of a message and handed nothing on
    while (true) {
        const auto before = seen_;
        if (conn_.processPendingRequest()) {
            r.messages += seen_ - before;
            part = filter_ != nullptr && seen_ == before;
            if (Clock::now() >= until) {
                r.pending = true;
                return r;
            }
            if (stop()) {
                // A privileged call to answer first. What follows it in the socket wakes the
                // loop's (level-triggered) epoll at once; only messages sd-bus already holds need
                // a turn that does not sleep (it says so by a timeout of 0). A zero-timeout turn
                // after every root call cost ~1.7 us of pidnsd's CPU per call (bench_calls).
                r.pending = held_by_sdbus();
                return r;
            }
            continue;
        }
        // The socket is empty. The rest of a message sd-bus has begun is on its way; after one in
        // parts, the next part of the flow may be.
        if ((part || r.waits > 0) && wait_readable(part ? until : std::min(until, Clock::now() + kFlowWait))) {
            spdlog::trace("bus: waited for the rest of a message ({} handed on this turn)", r.messages);
            ++r.waits;
            part = false;
            continue;
        }
        return r;
    }
}

}  // namespace pidnsd
