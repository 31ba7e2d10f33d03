// pidnsd's command line: a pure parser, so every option and error is unit-tested.
#pragma once

#include <chrono>
#include <span>
#include <string>

#include "result.h"

namespace pidnsd {

enum class BusKind { system, session, address };

struct Options {
    BusKind bus = BusKind::system;
    std::string bus_address;                            // when bus == address, e.g. unix:path=/run/x
    std::string log_level = "info";                     // trace debug info warn error critical off
    bool proc_connector = true;                         // false: poll /proc instead of kernel events
    bool polkit = true;                                 // --polkit=auto (true) | no
    std::chrono::milliseconds poll_interval{2000};      // rescan period in polling mode
    bool help = false;
    bool version = false;
};

// Parses argv[1..]. Errc::invalid_argument with a message naming the bad option and the fix.
pidns::Result<Options> parse_options(std::span<const char* const> args);

// Parses "250ms", "2s", "1.5s", "2" (seconds); 10 ms to 1 hour.
pidns::Result<std::chrono::milliseconds> parse_interval(std::string_view text);

std::string usage();

}  // namespace pidnsd
