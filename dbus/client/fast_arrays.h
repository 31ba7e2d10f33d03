// Whole-array (de)serialization of `au` for sdbus-c++ 1.2, which reads and writes arrays element by element.
//
// A TranslatePids call carries up to 65536 pids: element by element that costs ~5 ms on the event
// loop before the handler even runs (so before a quota can refuse it), and as much again for the
// reply. sd-bus reads and writes such arrays in one copy (sd_bus_message_read_array /
// sd_bus_message_append_array). These overloads are found by argument-dependent lookup from the
// generated adaptor and proxy (include this header before them) and win over sdbus-c++'s
// templates: pidnsd's side, and libpidns-client's (sending 65,536 pids and reading as many back
// element by element cost the client 2 to 7 ms of its own in bench_scale's runs).
#pragma once

#include <sdbus-c++/Error.h>
#include <sdbus-c++/Message.h>
#include <systemd/sd-bus.h>

#include "message_access.h"

#include <cstdint>
#include <vector>

namespace sdbus {
inline Message& operator>>(Message& msg, std::vector<std::uint32_t>& items) {
    const void* data = nullptr;
    std::size_t size = 0;
    auto* m = static_cast<sd_bus_message*>(pidnsd_detail::MessageAccess::raw(msg));
    const int r = sd_bus_message_read_array(m, 'u', &data, &size);
    if (r < 0) throw sdbus::createError(-r, "Failed to deserialize an array of uint32");
    if (r == 0) {
        pidnsd_detail::MessageAccess::fail(msg);
        return msg;
    }
    // One copy: sd-bus hands out the array where it lies in the message, aligned for its type.
    const auto* first = static_cast<const std::uint32_t*>(data);
    items.insert(items.end(), first, first + size / sizeof(std::uint32_t));
    return msg;
}

inline Message& operator<<(Message& msg, const std::vector<std::uint32_t>& items) {
    auto* m = static_cast<sd_bus_message*>(pidnsd_detail::MessageAccess::raw(msg));
    const int r = sd_bus_message_append_array(m, 'u', items.data(), items.size() * sizeof(std::uint32_t));
    if (r < 0) throw sdbus::createError(-r, "Failed to serialize an array of uint32");
    return msg;
}

}  // namespace sdbus
