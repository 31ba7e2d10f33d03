// The sd_bus_message behind an sdbus-c++ 1.2 Message, and an error reply built now to be sent later.
#pragma once

#include <sdbus-c++/Error.h>
#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IProxy.h>
#include <sdbus-c++/Message.h>
#include <systemd/sd-bus.h>

#include <utility>

#include "message_access.h"
#include "wire.h"

namespace pidnsd {

inline sd_bus_message* raw_message(const sdbus::Message& m) {
    return static_cast<sd_bus_message*>(sdbus::pidnsd_detail::MessageAccess::raw(m));
}

// The sd_bus behind a connection, with a reference of the caller's (sd_bus_unref it), or null.
// sdbus-c++ 1.2 does not hand out its sd_bus: a message made on the connection knows it.
inline sd_bus* raw_bus(sdbus::IConnection& conn) {
    auto proxy = sdbus::createProxy(conn, pidns::bus::kBusDriverName, pidns::bus::kBusDriverPath);
    auto probe = proxy->createMethodCall(pidns::bus::kPeerInterface, "Ping");
    sd_bus_message* m = raw_message(probe);
    return m != nullptr ? sd_bus_ref(sd_bus_message_get_bus(m)) : nullptr;
}

// An error reply to a method call, made at once (so the call, with its body, can be freed) and
// sent later: how pidnsd answers calls beyond a quota without letting the caller pipeline more.
class DeferredError {
public:
    DeferredError() = default;
    // Builds the reply to `call` (a method call message; holds no reference to it). Empty when
    // the message wants no reply or the reply cannot be built.
    DeferredError(const sdbus::Message& call, const sdbus::Error& error) {
        sd_bus_message* m = raw_message(call);
        if (m == nullptr || (sd_bus_message_get_expect_reply(m) <= 0)) return;
        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(error.getName().c_str(), error.getMessage().c_str());
        if (sd_bus_message_new_method_error(m, &reply_, &e) < 0) reply_ = nullptr;
    }
    DeferredError(DeferredError&& o) noexcept : reply_(std::exchange(o.reply_, nullptr)) {}
    DeferredError& operator=(DeferredError&& o) noexcept {
        if (this != &o) {
            reset();
            reply_ = std::exchange(o.reply_, nullptr);
        }
        return *this;
    }
    DeferredError(const DeferredError&) = delete;
    DeferredError& operator=(const DeferredError&) = delete;
    ~DeferredError() { reset(); }

    [[nodiscard]] bool valid() const noexcept { return reply_ != nullptr; }
    // Sends it (on the bus of the call) and lets it go.
    void send() noexcept {
        if (reply_ != nullptr) (void)sd_bus_send(nullptr, reply_, nullptr);
        reset();
    }

private:
    void reset() noexcept {
        if (reply_ != nullptr) sd_bus_message_unref(reply_);
        reply_ = nullptr;
    }
    sd_bus_message* reply_ = nullptr;
};

}  // namespace pidnsd
