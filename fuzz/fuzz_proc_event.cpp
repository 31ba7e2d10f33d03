// libFuzzer target: parse_proc_events on any datagram a NETLINK_CONNECTOR socket could deliver.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "proc_event.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> datagram(reinterpret_cast<const std::byte*>(data), size);
    auto r = pidns::parse_proc_events(datagram);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(!r.error().message.empty());
        return 0;
    }
    FUZZ_CHECK(size >= 16);
    // Every event and every skipped message took at least one 16-byte netlink header.
    FUZZ_CHECK(r->events.size() + r->skipped <= size / 16);
    FUZZ_CHECK(r->acks.size() + r->comm_pids.size() <= r->skipped);
    for (const auto& e : r->events) {
        FUZZ_CHECK(e.kind == pidns::ProcEventKind::fork || e.kind == pidns::ProcEventKind::exec ||
                   e.kind == pidns::ProcEventKind::exit);
        if (e.kind != pidns::ProcEventKind::fork) FUZZ_CHECK(e.parent_pid == 0 && e.parent_tgid == 0);
        if (e.kind != pidns::ProcEventKind::exit) FUZZ_CHECK(e.exit_code == 0);
    }
    return 0;
}
