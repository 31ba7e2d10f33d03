// pidnsctl's words for numbers: counts with their noun ("1 process", "2 processes"), pid chains
// ("12333/2/1", as tree, ps and dump write them), durations and sizes as systemd's tools print them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pidnsctl {

// "1 process", "0 processes", "2 processes".
std::string count_of(std::uint64_t n, const char* one, const char* many);

// A pid at every level, outermost first: "12333/2/1".
std::string chain_text(const std::vector<std::uint32_t>& pids);

// Microseconds as systemd writes a time span: "3h 12min 4.512s", "250ms", "0".
std::string timespan_text(std::uint64_t usec);

// Bytes in powers of 1024 as systemd writes sizes: "512B", "16.0K", "8.0M".
std::string bytes_text(std::uint64_t bytes);

}  // namespace pidnsctl
