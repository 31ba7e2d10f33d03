// Who sent a bus message: the bus's own credentials for the sender, pinned and cached per sender.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "caller.h"

namespace pidns {
class Model;
}

namespace pidnsd {

class CallerRegistry {
public:
    // Subscribes to NameOwnerChanged on `conn` to forget senders that leave the bus.
    CallerRegistry(sdbus::IConnection& conn, pidns::Model& model);
    CallerRegistry(const CallerRegistry&) = delete;
    CallerRegistry& operator=(const CallerRegistry&) = delete;

    // The identity of `sender` (a unique bus name): from org.freedesktop.DBus.GetConnectionCredentials
    // (ProcessID, UnixUserID) — never from /proc guesses about the sender — then pinned and read
    // by pidns::identify_caller. Cached until the sender disconnects. Throws sdbus::Error
    // (AccessDenied) when the caller cannot be identified.
    pidns::Caller caller_of(const std::string& sender);

    [[nodiscard]] std::size_t cached() const noexcept { return cache_.size(); }

private:
    pidns::Model& model_;
    std::unique_ptr<sdbus::IProxy> dbus_;
    sdbus::Slot name_owner_changed_;
    std::unordered_map<std::string, pidns::Caller> cache_;
};

}  // namespace pidnsd
