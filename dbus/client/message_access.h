// The sd_bus_message behind an sdbus-c++ 1.2 Message: what pidnsd and libpidns-client need to read
// and write whole arrays through sd-bus (fast_arrays.h), and pidnsd to build replies itself.
#pragma once

#include <sdbus-c++/Message.h>

namespace sdbus::pidnsd_detail {
// Message's protected members, reached through a derived class's pointer to member (no cast of
// the object): sdbus-c++ 1.2 has no accessor for them.
struct MessageAccess : Message {
    static void* raw(const Message& m) { return m.*(&MessageAccess::msg_); }
    static void fail(Message& m) { m.*(&MessageAccess::ok_) = false; }
};
}  // namespace sdbus::pidnsd_detail
