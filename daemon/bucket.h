// A token bucket: a burst at once, then a steady rate (signals, property time, polkit queries).
#pragma once

#include <chrono>

namespace pidnsd {

using Clock = std::chrono::steady_clock;

class Bucket {
public:
    Bucket(double burst, double rate) : tokens_(burst), burst_(burst), rate_(rate) {}
    bool take(Clock::time_point now, double n = 1);  // false (and nothing taken) when fewer are left
    void charge(Clock::time_point now, double n);    // takes n even into debt
    [[nodiscard]] bool has(Clock::time_point now);
    // When `n` tokens will be there (now if they are).
    [[nodiscard]] Clock::time_point when(Clock::time_point now, double n = 1);

private:
    void refill(Clock::time_point now);
    double tokens_, burst_, rate_;
    Clock::time_point last_ = Clock::now();
};

}  // namespace pidnsd
