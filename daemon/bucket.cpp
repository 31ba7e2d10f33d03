// The token bucket behind pidnsd's rate quotas.
#include "bucket.h"

#include <algorithm>

namespace pidnsd {

void Bucket::refill(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - last_).count();
    if (dt <= 0) return;  // a time before the last one adds nothing (and does not move last_ back)
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + dt * rate_);
}

bool Bucket::take(Clock::time_point now, double n) {
    refill(now);
    if (tokens_ < n) return false;
    tokens_ -= n;
    return true;
}

void Bucket::charge(Clock::time_point now, double n) {
    refill(now);
    tokens_ -= n;
}

bool Bucket::has(Clock::time_point now) {
    refill(now);
    return tokens_ > 0;
}

Clock::time_point Bucket::when(Clock::time_point now, double n) {
    refill(now);
    if (tokens_ >= n) return now;
    if (rate_ <= 0) return Clock::time_point::max();
    return now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((n - tokens_) / rate_));
}

}  // namespace pidnsd
