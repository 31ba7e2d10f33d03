// Caller identity from the bus daemon's credentials, cached per unique name.
#include "callers.h"

#include <spdlog/spdlog.h>

#include <map>

#include "errors.h"
#include "model.h"
#include "view.h"

namespace pidnsd {

CallerRegistry::CallerRegistry(sdbus::IConnection& conn, pidns::Model& model)
    : model_(model), dbus_(sdbus::createProxy(conn, "org.freedesktop.DBus", "/org/freedesktop/DBus")) {
    name_owner_changed_ = conn.addMatch(
        "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'",
        [this](sdbus::Message& m) {
            try {
                std::string name, old_owner, new_owner;
                m >> name >> old_owner >> new_owner;
                if (new_owner.empty() && cache_.erase(name)) spdlog::debug("caller {} left the bus", name);
            } catch (const std::exception& e) {
                spdlog::warn("malformed NameOwnerChanged signal: {}", e.what());
            }
        });
}

pidns::Caller CallerRegistry::caller_of(const std::string& sender) {
    if (sender.empty()) throw sdbus::Error(kErrorAccessDenied, "the message has no sender; call through the bus");
    if (auto it = cache_.find(sender); it != cache_.end()) return it->second.caller;

    std::map<std::string, sdbus::Variant> creds;
    try {
        dbus_->callMethod("GetConnectionCredentials")
            .onInterface("org.freedesktop.DBus")
            .withArguments(sender)
            .storeResultsTo(creds);
    } catch (const sdbus::Error& e) {
        throw sdbus::Error(kErrorAccessDenied, "the bus could not tell who " + sender + " is (" + e.getMessage() + ")");
    }
    auto pid = creds.find("ProcessID");
    auto uid = creds.find("UnixUserID");
    if (pid == creds.end() || uid == creds.end())
        throw sdbus::Error(kErrorAccessDenied, "the bus gave no process id or uid for " + sender);
    const auto p = pid->second.get<std::uint32_t>();
    const auto u = uid->second.get<std::uint32_t>();
    if (!pidns::is_valid_pid(p)) throw sdbus::Error(kErrorAccessDenied, "the bus gave an invalid process id for " + sender);
    auto c = pidns::identify_caller(model_, static_cast<std::int32_t>(p), u);
    if (!c) throw to_dbus_error(c.error());
    spdlog::debug("caller {}: pid {} uid {} pidns {} userns {}", sender, c->pid, u, c->pidns, c->userns);
    return cache_.emplace(sender, Known{std::move(*c), {}}).first->second.caller;
}

void CallerRegistry::for_each(const std::function<void(const std::string&, Known&)>& fn) {
    for (auto& [sender, known] : cache_) fn(sender, known);
}

void CallerRegistry::mark_told(const std::string& sender, std::uint64_t id) {
    if (auto it = cache_.find(sender); it != cache_.end()) it->second.told.insert(id);
}

}  // namespace pidnsd
