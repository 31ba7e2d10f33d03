// The one rule for time bounds the suite asserts: a promised duration, scaled under the sanitizers,
// never under a floor that a loaded shared host adds to any wait.
#pragma once

#include <algorithm>
#include <chrono>

namespace pidns::harness {

// Under ASan+UBSan pidnsd, the clients and the tests run several times slower.
#if defined(PIDNS_SANITIZED) || defined(__SANITIZE_ADDRESS__)
inline constexpr double kSlowdown = 5;
#else
inline constexpr double kSlowdown = 1;
#endif

// What a busy 2-core CI host (the suite, another build, other users' tests) may add to anything a
// test times: a runnable process waits behind the others for a few scheduler periods (6-24 ms each
// at 2 cores) and a page-cache miss or a fork of a large process costs tens of ms; 250 ms is ten
// such periods. A bound under it asserts the host's load, not the code.
inline constexpr std::chrono::milliseconds kBoundFloor{250};

// The bound a test asserts for something the design promises within `promised` (an answer, an
// event, a stop): `promised` times kSlowdown, at least kBoundFloor. A promise that must be told
// apart from a slower mechanism (a poll, a deadline) is only tested where that one is well above
// the bound (give the test a long interval), else by counters; figures belong in bench/.
constexpr std::chrono::milliseconds bound(std::chrono::milliseconds promised) {
    const auto scaled = std::chrono::milliseconds(static_cast<long long>(static_cast<double>(promised.count()) * kSlowdown));
    return std::max(scaled, kBoundFloor);
}
constexpr double bound_ms(double promised_ms) {
    return std::max(promised_ms * kSlowdown, static_cast<double>(kBoundFloor.count()));
}

// How long a test waits for something before it gives up (not a bound it asserts): `d`, times
// kSlowdown.
constexpr std::chrono::milliseconds patience(std::chrono::milliseconds d) {
    return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(d.count()) * kSlowdown));
}

}  // namespace pidns::harness
