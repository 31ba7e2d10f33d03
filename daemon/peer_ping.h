// org.freedesktop.DBus.Peer.Ping to bus connections, without blocking, over connections of its own: its answer says the peer read what was sent to it before.
#pragma once

#include <sdbus-c++/IConnection.h>
#include <systemd/sd-bus.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "options.h"

namespace pidnsd {

// dbus-daemon lets one connection wait for at most 128 answers (max_replies_per_connection) and
// never gives up on one (reply_timeout): a peer that never reads holds its Ping for as long as it
// stays connected. Pings therefore go over connections of their own, at most kPerConnection on
// each and as many connections as needed (one Ping per subscriber at a time: kConnections of
// them cover every subscriber pidnsd allows), so that neither pidnsd's own calls (polkit, machined)
// nor other subscribers' Pings ever wait for a slot a silent subscriber holds.
class PeerPing {
public:
    enum class Result : std::uint8_t {
        answered,  // it read what came before
        failed,    // it left (the bus answers NoReply for it), or the bus refused the call
        denied,    // the bus policy does not let pidnsd ping (dbus/org.pidns.conf not installed)
    };
    static constexpr std::size_t kPerConnection = 100;
    static constexpr std::size_t kConnections = 8;

    // `main`: pidnsd's connection, whose signals a Ping must follow; `open`: a new connection to
    // the same bus, started (nullptr when it cannot be made).
    PeerPing(sdbus::IConnection& main, std::function<sd_bus*()> open);
    ~PeerPing();  // cancels what is in flight (no callback runs after)
    PeerPing(const PeerPing&) = delete;
    PeerPing& operator=(const PeerPing&) = delete;

    // Pings `destination`; `done` runs later from process(). False (and `done` never runs) when
    // it cannot go now: signals still wait in the main connection's queue (a Ping sent before they
    // reach the bus could overtake them), or no connection has room.
    bool ping(const std::string& destination, std::function<void(Result)> done);

    // For the event loop: the ping connections' fds, with the events each waits for
    // (POLLIN/POLLOUT), and their answers run.
    struct PollFd {
        int fd;
        short events;
    };
    [[nodiscard]] std::vector<PollFd> poll_fds() const;
    void process();
    [[nodiscard]] std::size_t in_flight() const noexcept { return pending_.size(); }
    [[nodiscard]] std::size_t connections() const noexcept { return conns_.size(); }

private:
    struct Conn {
        sd_bus* bus;
        std::size_t in_flight = 0;
    };
    struct Pending {
        PeerPing* self;
        std::uint64_t id;
        sd_bus* bus;
        sd_bus_slot* slot;
        std::function<void(Result)> done;
    };
    static int on_reply(sd_bus_message* m, void* userdata, sd_bus_error* error);
    Conn* room();

    sd_bus* main_ = nullptr;
    std::function<sd_bus*()> open_;
    std::vector<Conn> conns_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Pending>> pending_;
};

// Another connection to the bus pidnsd serves on (`o`), for Peer.Ping; nullptr when it cannot
// be made (logged).
sd_bus* open_ping_connection(const Options& o);

}  // namespace pidnsd
