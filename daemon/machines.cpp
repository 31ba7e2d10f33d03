// machined client: NameHasOwner, ListMachines, then GetAll on each machine, all asynchronous.
#include "machines.h"

#include <spdlog/spdlog.h>

#include "wire.h"
#include "quotas.h"

namespace pidnsd {
namespace {
constexpr const char* kMachined = "org.freedesktop.machine1";
constexpr const char* kMachinedManager = "org.freedesktop.machine1.Manager";
constexpr const char* kMachineInterface = "org.freedesktop.machine1.Machine";
}  // namespace

Machines::Machines(sdbus::IConnection& conn)
    : conn_(conn),
      bus_(sdbus::createProxy(conn, pidns::bus::kBusDriverName, pidns::bus::kBusDriverPath)),
      machined_(sdbus::createProxy(conn, kMachined, "/org/freedesktop/machine1")) {
    // Matches only the one name (arg0), so that other clients' comings and goings cost nothing here.
    owner_watch_ = conn.addMatch(std::string("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                                             "member='NameOwnerChanged',arg0='") +
                                     kMachined + "'",
                                 [this](sdbus::Message&) { wanted_ = true; });
    machine_watch_ = conn.addMatch(std::string("type='signal',sender='") + kMachined + "',interface='" + kMachinedManager + "'",
                                   [this](sdbus::Message& m) {
                                       const auto member = m.getMemberName();
                                       if (member == std::string("MachineNew") || member == std::string("MachineRemoved"))
                                           wanted_ = true;
                                   });
}

Machines::~Machines() = default;

const std::string* Machines::name_of_unit(std::string_view unit) const {
    if (unit.empty() || by_unit_.empty()) return nullptr;
    const auto it = by_unit_.find(std::string(unit));
    return it == by_unit_.end() ? nullptr : &it->second;
}

void Machines::tick() {
    if (running_) return;
    machine_proxies_.clear();  // the last refresh's, every one answered
    if (wanted_) start_refresh();
}

void Machines::done(std::unordered_map<std::string, std::string> table) {
    if (table.size() != by_unit_.size() || table != by_unit_)
        spdlog::debug("machined: {} machine unit(s) known", table.size());
    by_unit_ = std::move(table);
    running_ = false;
}

void Machines::start_refresh() {
    wanted_ = false;
    running_ = true;
    ++refreshes_;
    // Asking machined directly would start it by bus activation: ask the bus whether it runs.
    try {
        bus_->callMethodAsync("NameHasOwner")
            .onInterface(pidns::bus::kBusDriverName)
            .withTimeout(limits::kMachinedTimeout)
            .withArguments(std::string(kMachined))
            .uponReplyInvoke([this](const sdbus::Error* error, bool running) {
                if (error != nullptr || !running) return done({});
                list_machines();
            });
    } catch (const sdbus::Error& e) {
        spdlog::debug("machined: cannot ask the bus ({})", e.getMessage());
        done({});
    }
}

void Machines::list_machines() {
    using Entry = sdbus::Struct<std::string, std::string, std::string, sdbus::ObjectPath>;
    try {
        machined_->callMethodAsync("ListMachines")
            .onInterface(kMachinedManager)
            .withTimeout(limits::kMachinedTimeout)
            .uponReplyInvoke([this](const sdbus::Error* error, const std::vector<Entry>& machines) {
                if (error != nullptr) {
                    spdlog::debug("machined: ListMachines failed ({})", error->getName());
                    return done({});
                }
                next_.clear();
                awaiting_ = 0;
                for (const auto& m : machines) {
                    if (machine_proxies_.size() >= limits::kMachines) {
                        spdlog::warn("machined lists {} machines; names are kept for the first {} only",
                                     machines.size(), limits::kMachines);
                        break;
                    }
                    try {
                        auto proxy = sdbus::createProxy(conn_, kMachined, std::get<3>(m));
                        proxy->callMethodAsync("GetAll")
                            .onInterface(pidns::bus::kPropertiesInterface)
                            .withTimeout(limits::kMachinedTimeout)
                            .withArguments(std::string(kMachineInterface))
                            .uponReplyInvoke([this, name = std::get<0>(m)](const sdbus::Error* err,
                                                                           const std::map<std::string, sdbus::Variant>& props) {
                                if (err == nullptr) {
                                    try {
                                        const auto it = props.find("Unit");
                                        if (it != props.end() && it->second.containsValueOfType<std::string>()) {
                                            auto unit = it->second.get<std::string>();
                                            if (!unit.empty()) next_.insert_or_assign(std::move(unit), name);
                                        }
                                    } catch (const sdbus::Error&) {
                                    }
                                }
                                if (--awaiting_ == 0) done(std::move(next_));
                            });
                        machine_proxies_.push_back(std::move(proxy));
                        ++awaiting_;
                    } catch (const sdbus::Error& e) {
                        spdlog::debug("machined: cannot ask about machine {} ({})", std::get<0>(m), e.getMessage());
                    }
                }
                if (awaiting_ == 0) done({});
            });
    } catch (const sdbus::Error& e) {
        spdlog::debug("machined: cannot call ListMachines ({})", e.getMessage());
        done({});
    }
}

}  // namespace pidnsd
