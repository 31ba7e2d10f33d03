// The work of one event-loop turn, phase by phase, so that a slow turn can say what it was doing.
#pragma once

#include <time.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

namespace pidnsd {

class TurnClock {
public:
    using Clock = std::chrono::steady_clock;

    // Phases end where the next begins: one clock read per boundary, from the coarse monotonic
    // clock (a tick's resolution; a turn is logged from kSlowTurn, a second). perf under
    // bench_calls: the precise clock's reads were 5-7% of pidnsd's CPU, a third of them here.
    void begin(const char* phase) {
        const Clock::duration t = coarse_now();
        close(t);
        phase_ = phase;
        started_ = t;
    }
    void end() {
        if (phase_ != nullptr) close(coarse_now());
    }
    // What the bus phase read, kept as numbers: a turn is described only when it was slow.
    void note_bus(std::size_t messages, std::size_t waits) {
        bus_messages_ = messages;
        bus_waits_ = waits;
    }
    [[nodiscard]] Clock::duration busy() const { return busy_; }
    [[nodiscard]] std::string describe() const {
        std::string out;
        for (std::size_t i = 0; i < n_; ++i) {
            const auto ms = std::chrono::duration<double, std::milli>(phases_[i].second).count();
            if (ms < 1) continue;
            out += out.empty() ? "" : ", ";
            out += std::string(phases_[i].first) + " " + std::to_string(static_cast<long long>(ms)) + " ms";
        }
        if (bus_messages_ > 0 || bus_waits_ > 0)
            out += " (" + std::to_string(bus_messages_) + " bus messages, " + std::to_string(bus_waits_) +
                   " waits for the rest of one)";
        return out;
    }

private:
    static Clock::duration coarse_now() noexcept {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                           std::chrono::nanoseconds(ts.tv_nsec));
    }
    void close(Clock::duration t) {
        if (phase_ == nullptr) return;
        const auto d = t - started_;
        busy_ += d;
        if (n_ < phases_.size()) phases_[n_++] = {phase_, d};
        phase_ = nullptr;
    }

    const char* phase_ = nullptr;
    Clock::duration started_{};
    Clock::duration busy_{};
    std::array<std::pair<const char*, Clock::duration>, 16> phases_{};
    std::size_t n_ = 0;
    std::size_t bus_messages_ = 0, bus_waits_ = 0;
};

}  // namespace pidnsd
