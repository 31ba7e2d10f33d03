// systemd-machined's names for the systemd units its machines run in, kept without ever waiting on machined.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pidnsd {

// The Machine key of DescribeNamespace(s)/DescribeProcess. machined answers GetMachineByPID by
// the systemd unit of the process's cgroup (src/machine/machined.c manager_get_machine_by_pid);
// pidnsd keeps the same mapping, unit -> machine name, as a table refreshed asynchronously:
// at start, whenever org.freedesktop.machine1 appears or goes, and on its MachineNew and
// MachineRemoved signals. A lookup is a hash lookup; no request ever waits for machined.
// When machined does not run there is no table (one NameHasOwner at start, no activation).
class Machines {
public:
    explicit Machines(sdbus::IConnection& conn);
    ~Machines();
    Machines(const Machines&) = delete;
    Machines& operator=(const Machines&) = delete;

    // From the event loop: starts a refresh that was asked for (none runs twice at once) and drops
    // the proxies of a finished one.
    void tick();
    // The machine whose unit is `unit`, or nullptr.
    [[nodiscard]] const std::string* name_of_unit(std::string_view unit) const;
    [[nodiscard]] std::size_t size() const noexcept { return by_unit_.size(); }
    [[nodiscard]] std::uint64_t refreshes() const noexcept { return refreshes_; }

private:
    void start_refresh();
    void list_machines();
    void done(std::unordered_map<std::string, std::string> table);

    sdbus::IConnection& conn_;
    std::unique_ptr<sdbus::IProxy> bus_;       // org.freedesktop.DBus (NameHasOwner)
    std::unique_ptr<sdbus::IProxy> machined_;  // org.freedesktop.machine1's manager object
    sdbus::Slot owner_watch_, machine_watch_;
    bool wanted_ = true;   // a refresh was asked for since the last one started
    bool running_ = false;
    std::uint64_t refreshes_ = 0;
    // One refresh: a proxy per machine object, kept until its GetAll answered.
    std::vector<std::unique_ptr<sdbus::IProxy>> machine_proxies_;
    std::size_t awaiting_ = 0;
    std::unordered_map<std::string, std::string> next_;
    std::unordered_map<std::string, std::string> by_unit_;  // unit -> machine name
};

}  // namespace pidnsd
