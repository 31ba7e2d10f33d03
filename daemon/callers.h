// Who sent a bus message: the bus's own credentials for the sender, pinned and cached per sender.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <string>
#include <functional>
#include <unordered_map>
#include <unordered_set>

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

    // A known caller: who it is, and which namespaces it has been told about (by a reply or a
    // NamespaceAdded), so NamespaceRemoved goes only to those who knew of the namespace.
    struct Known {
        pidns::Caller caller;
        std::unordered_set<std::uint64_t> told;
    };
    void for_each(const std::function<void(const std::string& sender, Known& known)>& fn);
    // Records that `sender` was shown namespace `id` (no-op for an unknown sender).
    void mark_told(const std::string& sender, std::uint64_t id);

    [[nodiscard]] std::size_t cached() const noexcept { return cache_.size(); }

private:
    pidns::Model& model_;
    std::unique_ptr<sdbus::IProxy> dbus_;
    sdbus::Slot name_owner_changed_;
    std::unordered_map<std::string, Known> cache_;
};

}  // namespace pidnsd
