// The token bucket behind pidnsd's rate quotas (signals per subscriber, property time, identification).
#include <catch2/catch.hpp>

#include "clients.h"

using namespace pidnsd;
using namespace std::chrono_literals;

TEST_CASE("bucket: a burst, then the rate, nothing is taken from an empty bucket") {
    Bucket b(2, 1);  // 2 at once, then 1 per second
    const auto t0 = Clock::now();
    CHECK(b.take(t0));
    CHECK(b.take(t0));
    CHECK_FALSE(b.take(t0));
    CHECK_FALSE(b.take(t0 + 500ms));  // half a token
    CHECK(b.take(t0 + 1100ms));       // refilled by one
    CHECK_FALSE(b.take(t0 + 1100ms));
    CHECK(b.take(t0 + 10s));  // never more than the burst, however long it rested
    CHECK(b.take(t0 + 10s));
    CHECK_FALSE(b.take(t0 + 10s));
}

TEST_CASE("bucket: charging time goes into debt, and has() waits for it to be paid") {
    Bucket b(0.1, 0.02);  // 100 ms at once, then 20 ms per second (the property-time quota)
    const auto t0 = Clock::now();
    CHECK(b.has(t0));
    b.charge(t0, 0.5);  // one read took 500 ms
    CHECK_FALSE(b.has(t0));
    CHECK_FALSE(b.has(t0 + 15s));  // 0.1 - 0.5 + 0.3 < 0
    CHECK(b.has(t0 + 21s));        // paid back at 20 ms per second
}
