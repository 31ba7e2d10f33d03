// What the attack tests share: root's latency under load and the flood's summary line (processes in
// the background, setpriv prefixes and RSS are the harness's).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace pidns::harness {

struct Latency {
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
    std::size_t n = 0;
};

inline Latency latency_of(std::vector<double> ms) {
    Latency l;
    if (ms.empty()) return l;
    std::sort(ms.begin(), ms.end());
    l.n = ms.size();
    l.p50_ms = ms[ms.size() / 2];
    l.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    l.max_ms = ms.back();
    return l;
}

// `n` TranslatePid round trips of root's own pid, `gap` apart (each must be answered right).
inline Latency measure(Client& c, std::size_t n, std::chrono::milliseconds gap = std::chrono::milliseconds(0)) {
    std::vector<double> ms;
    const auto me = static_cast<std::uint32_t>(getpid());
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(c.TranslatePid(me, 0, 0) == me);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (gap.count() > 0) std::this_thread::sleep_for(gap);
    }
    return latency_of(std::move(ms));
}

inline std::ostream& operator<<(std::ostream& os, const Latency& l) {
    return os << "p50 " << l.p50_ms << " ms, p99 " << l.p99_ms << " ms, max " << l.max_ms << " ms (" << l.n
              << " calls)";
}

// A value of the flood's summary line ("replies R ok O errors E limits L ...").
inline std::uint64_t field(const std::string& summary, const std::string& name) {
    const auto at = summary.find(name + " ");
    return at == std::string::npos ? 0 : std::strtoull(summary.c_str() + at + name.size() + 1, nullptr, 10);
}

// The count after "NAME=" in the flood's summary line (an error name's count), 0 if absent.
inline std::uint64_t count_of(const std::string& summary, const std::string& name) {
    const auto at = summary.find(name + "=");
    return at == std::string::npos ? 0 : std::strtoull(summary.c_str() + at + name.size() + 1, nullptr, 10);
}

}  // namespace pidns::harness
