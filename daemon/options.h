// pidnsd's command line: a pure parser, so every option and error is unit-tested.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernel_version.h"
#include "result.h"

namespace pidnsd {

enum class BusKind { system, session, address };

struct Options {
    BusKind bus = BusKind::system;
    std::string bus_address;                            // when bus == address, e.g. unix:path=/run/x
    std::string log_level = "info";                     // trace debug info warn error critical off
    bool proc_connector = true;                         // false: poll /proc instead of kernel events
    bool bpf = true;                                    // --no-bpf: rescans list every /proc/PID/fd
    bool polkit = true;                                 // --polkit=auto (true) | no
    std::chrono::milliseconds poll_interval{2000};      // rescan period in polling mode
    std::chrono::milliseconds verify_interval{5000};    // verify pass period; 0: off
    std::size_t netlink_buffer = 8u << 20;               // proc connector SO_RCVBUFFORCE request; 0: kernel default
    std::optional<pidns::KernelVersion> assume_kernel;  // --assume-kernel: as on that kernel
    std::vector<std::string> container_state;            // --container-state=ENGINE:DIR, in order
    bool help = false;
    bool version = false;
};

// Parses argv[1..]. Errc::invalid_argument with a message naming the bad option and the fix.
pidns::Result<Options> parse_options(std::span<const char* const> args);

// Parses "250ms", "2s", "1.5s", "2" (seconds); 10 ms to 1 hour. `what` names the option in errors.
pidns::Result<std::chrono::milliseconds> parse_interval(std::string_view text, std::string_view what = "--poll-interval");

// Parses a byte count: "4096", "64K", "8M", "1G" (powers of 1024); 0 or 4K to 1G.
pidns::Result<std::size_t> parse_size(std::string_view text, std::string_view what);

std::string usage();

}  // namespace pidnsd
