// Peer.Ping over raw sd-bus connections of its own (sdbus-c++ 1.2 proxies have one fixed destination each).
#include "peer_ping.h"

#include <poll.h>
#include <sdbus-c++/IProxy.h>
#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "wire.h"
#include "raw_message.h"

namespace pidnsd {

PeerPing::PeerPing(sdbus::IConnection& main, std::function<sd_bus*()> open)
    : main_(raw_bus(main)), open_(std::move(open)) {}

PeerPing::~PeerPing() {
    for (auto& [id, p] : pending_) sd_bus_slot_unref(p->slot);
    pending_.clear();
    for (auto& c : conns_) sd_bus_flush_close_unref(c.bus);
    if (main_ != nullptr) sd_bus_unref(main_);
}

PeerPing::Conn* PeerPing::room() {
    for (auto& c : conns_)
        if (c.in_flight < kPerConnection) return &c;
    if (conns_.size() >= kConnections || !open_) return nullptr;
    sd_bus* b = open_();
    if (b == nullptr) return nullptr;
    conns_.push_back(Conn{b, 0});
    spdlog::debug("ping connection {} opened", conns_.size());
    return &conns_.back();
}

bool PeerPing::ping(const std::string& destination, std::function<void(Result)> done) {
    // Signals sent so far must be on their way to the bus (written to its socket) first.
    if (main_ != nullptr) {
        std::uint64_t queued = 0;
        if (sd_bus_get_n_queued_write(main_, &queued) >= 0 && queued > 0) return false;
    }
    Conn* c = room();
    if (c == nullptr) return false;
    sd_bus_message* m = nullptr;
    if (sd_bus_message_new_method_call(c->bus, &m, destination.c_str(), "/", pidns::bus::kPeerInterface, "Ping") < 0)
        return false;
    auto p = std::make_unique<Pending>(Pending{this, next_id_++, c->bus, nullptr, std::move(done)});
    // No timeout of its own: the bus answers for a peer that leaves, and one that stays silent
    // holds this slot either way.
    const int r = sd_bus_call_async(c->bus, &p->slot, m, &PeerPing::on_reply, p.get(), UINT64_MAX);
    sd_bus_message_unref(m);
    if (r < 0) {
        spdlog::debug("cannot ping {}: {}", destination, std::strerror(-r));
        return false;
    }
    ++c->in_flight;
    pending_.emplace(p->id, std::move(p));
    return true;
}

int PeerPing::on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* p = static_cast<Pending*>(userdata);
    PeerPing* self = p->self;
    auto it = self->pending_.find(p->id);
    if (it == self->pending_.end()) return 0;
    auto owned = std::move(it->second);
    self->pending_.erase(it);
    for (auto& c : self->conns_)
        if (c.bus == owned->bus && c.in_flight > 0) --c.in_flight;
    Result result = Result::answered;
    if (sd_bus_message_is_method_error(m, nullptr)) {
        const sd_bus_error* e = sd_bus_message_get_error(m);
        result = e != nullptr && e->name != nullptr && std::strcmp(e->name, SD_BUS_ERROR_ACCESS_DENIED) == 0 ? Result::denied
                                                                                                          : Result::failed;
    }
    sd_bus_slot_unref(owned->slot);  // sd-bus holds its own reference while this runs
    try {
        owned->done(result);
    } catch (const std::exception& e) {
        spdlog::error("ping reply: {}", e.what());
    }
    return 0;
}

std::vector<PeerPing::PollFd> PeerPing::poll_fds() const {
    std::vector<PollFd> out;
    for (const auto& c : conns_) {
        const int fd = sd_bus_get_fd(c.bus);
        const int ev = sd_bus_get_events(c.bus);
        if (fd >= 0) out.push_back(PollFd{fd, static_cast<short>(ev > 0 ? ev : POLLIN)});
    }
    return out;
}

void PeerPing::process() {
    for (std::size_t i = 0; i < conns_.size();) {
        sd_bus* b = conns_[i].bus;
        int r = 0;
        for (int n = 0; n < 256 && (r = sd_bus_process(b, nullptr)) > 0; ++n) {
        }
        if (r < 0 && r != -EAGAIN) {
            // Lost: its calls were answered with errors by sd_bus_process on the way out.
            spdlog::warn("a ping connection to the bus failed ({}); opening another when needed", std::strerror(-r));
            for (auto it = pending_.begin(); it != pending_.end();) {
                if (it->second->bus != b) {
                    ++it;
                    continue;
                }
                auto owned = std::move(it->second);
                it = pending_.erase(it);
                sd_bus_slot_unref(owned->slot);
                owned->done(Result::failed);
            }
            sd_bus_flush_close_unref(b);
            conns_.erase(conns_.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        ++i;
    }
}

sd_bus* open_ping_connection(const Options& o) {
    sd_bus* b = nullptr;
    int r = -EINVAL;
    switch (o.bus) {
    case BusKind::system: r = sd_bus_open_system(&b); break;
    case BusKind::session: r = sd_bus_open_user(&b); break;
    case BusKind::address:
        if ((r = sd_bus_new(&b)) < 0) break;
        if ((r = sd_bus_set_address(b, o.bus_address.c_str())) >= 0 && (r = sd_bus_set_bus_client(b, 1)) >= 0)
            r = sd_bus_start(b);
        break;
    }
    if (r < 0) {
        spdlog::warn("cannot open a connection for pinging subscribers: {}", std::strerror(-r));
        if (b != nullptr) sd_bus_unref(b);
        return nullptr;
    }
    return b;
}

}  // namespace pidnsd
