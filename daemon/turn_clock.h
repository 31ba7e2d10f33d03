// The work of one event-loop turn, phase by phase, so that a slow turn can say what it was doing.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

namespace pidnsd {

class TurnClock {
public:
    using Clock = std::chrono::steady_clock;

    void begin(const char* phase) {
        end();
        phase_ = phase;
        started_ = Clock::now();
    }
    void end() {
        if (phase_ == nullptr) return;
        const auto d = Clock::now() - started_;
        busy_ += d;
        if (n_ < phases_.size()) phases_[n_++] = {phase_, d};
        phase_ = nullptr;
    }
    void note(std::string what) { notes_ += notes_.empty() ? what : ", " + what; }
    [[nodiscard]] Clock::duration busy() const { return busy_; }
    [[nodiscard]] std::string describe() const {
        std::string out;
        for (std::size_t i = 0; i < n_; ++i) {
            const auto ms = std::chrono::duration<double, std::milli>(phases_[i].second).count();
            if (ms < 1) continue;
            out += out.empty() ? "" : ", ";
            out += std::string(phases_[i].first) + " " + std::to_string(static_cast<long long>(ms)) + " ms";
        }
        if (!notes_.empty()) out += " (" + notes_ + ")";
        return out;
    }

private:
    const char* phase_ = nullptr;
    Clock::time_point started_{};
    Clock::duration busy_{};
    std::array<std::pair<const char*, Clock::duration>, 16> phases_{};
    std::size_t n_ = 0;
    std::string notes_;
};

}  // namespace pidnsd
