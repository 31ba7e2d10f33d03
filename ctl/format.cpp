// pidnsctl's words for numbers: counts, pid chains, durations and sizes.
#include "format.h"

#include <fmt/core.h>

namespace pidnsctl {

std::string count_of(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string chain_text(const std::vector<std::uint32_t>& pids) {
    std::string s;
    for (auto p : pids) {
        if (!s.empty()) s += '/';
        s += std::to_string(p);
    }
    return s;
}

std::string timespan_text(std::uint64_t usec) {
    if (usec == 0) return "0";
    if (usec < 1000) return std::to_string(usec) + "us";
    if (usec < 1000000) return fmt::format("{}ms", usec / 1000);
    struct Unit {
        const char* name;
        std::uint64_t usec;
    };
    static constexpr Unit kUnits[] = {{"d", 86400000000ull}, {"h", 3600000000ull}, {"min", 60000000ull}};
    std::string s;
    for (const auto& u : kUnits)
        if (usec >= u.usec) {
            s += fmt::format("{}{} ", usec / u.usec, u.name);
            usec %= u.usec;
        }
    // Seconds with milliseconds, as systemd prints an uptime ("4.512s"); none when they are 0.
    if (usec >= 1000) {
        const std::uint64_t ms = usec / 1000;
        s += ms % 1000 == 0 ? fmt::format("{}s", ms / 1000) : fmt::format("{}.{:03}s", ms / 1000, ms % 1000);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

std::string bytes_text(std::uint64_t bytes) {
    static constexpr const char* kSuffix[] = {"K", "M", "G", "T", "P", "E"};
    if (bytes < 1024) return std::to_string(bytes) + "B";
    double v = static_cast<double>(bytes);
    std::size_t i = 0;
    for (v /= 1024.0; v >= 1024.0 && i + 1 < std::size(kSuffix); ++i) v /= 1024.0;
    return fmt::format("{:.1f}{}", v, kSuffix[i]);
}

}  // namespace pidnsctl
