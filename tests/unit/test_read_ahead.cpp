// ReadAhead / HelperThread: every item exactly once, the helper's share, one job at a time.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <optional>
#include <thread>
#include <vector>

#include "process.h"  // tests/harness: eventually
#include "read_ahead.h"

using pidns::HelperThread;
using pidns::harness::eventually;
using pidns::ReadAhead;

namespace {

struct Counts {
    explicit Counts(std::size_t n) : ran(std::make_unique<std::atomic<int>[]>(n)), n(n) {
        for (std::size_t i = 0; i < n; ++i) ran[i] = 0;
    }
    std::unique_ptr<std::atomic<int>[]> ran;
    std::size_t n;
    [[nodiscard]] bool each_once() const {
        for (std::size_t i = 0; i < n; ++i)
            if (ran[i].load() != 1) return false;
        return true;
    }
};

}  // namespace

TEST_CASE("read-ahead: every item runs exactly once, whoever runs it", "[read_ahead]") {
    HelperThread helper;
    for (const std::size_t n : {0u, 1u, 2u, 3u, 64u, 1000u}) {
        CAPTURE(n);
        Counts c(n);
        {
            ReadAhead ahead(helper, n, [&](std::size_t i) {
                c.ran[i].fetch_add(1);
                // Work the size of a /proc read, so that the two threads meet mid-way.
                const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(5);
                while (std::chrono::steady_clock::now() < until) {
                }
            });
            for (std::size_t i = 0; i < n; ++i) {
                ahead.take(i);
                REQUIRE(c.ran[i].load() == 1);  // done when take() returns
            }
        }
        REQUIRE(c.each_once());
    }
}

TEST_CASE("read-ahead: the helper reads on while the owner does not ask", "[read_ahead]") {
    HelperThread helper;
    constexpr std::size_t n = 200;
    Counts c(n);
    std::vector<std::thread::id> by(n);
    ReadAhead ahead(helper, n, [&](std::size_t i) {
        c.ran[i].fetch_add(1);
        by[i] = std::this_thread::get_id();
    });
    REQUIRE(ahead.helped());
    // The owner takes nothing (as between two slices of a call): the helper runs them all.
    REQUIRE(eventually([&] { return helper.items() == n; }, std::chrono::seconds(10), std::chrono::milliseconds(1)));
    for (std::size_t i = 0; i < n; ++i) ahead.take(i);
    REQUIRE(c.each_once());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(by[i] != std::this_thread::get_id());
    // Named, so that ps -L and top -H tell it from the loop.
    bool named = false;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(e.path() / "comm");
        std::string name;
        std::getline(comm, name);
        named = named || name == HelperThread::kThreadName;
    }
    REQUIRE(named);
}

TEST_CASE("read-ahead: the owner alone when the helper serves another", "[read_ahead]") {
    HelperThread helper;
    constexpr std::size_t n = 50;
    std::atomic<bool> release{false};
    Counts first(n), second(n);
    // The first job holds the helper in its last item until released.
    REQUIRE(helper.available());  // not made yet, but it can be
    std::optional<ReadAhead> a;
    a.emplace(helper, n, [&](std::size_t i) {
        first.ran[i].fetch_add(1);
        if (i == n - 1)
            while (!release.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
    });
    REQUIRE(a->helped());
    REQUIRE_FALSE(helper.available());
    std::vector<std::thread::id> by(n);
    {
        ReadAhead b(helper, n, [&](std::size_t i) {
            second.ran[i].fetch_add(1);
            by[i] = std::this_thread::get_id();
        });
        CHECK_FALSE(b.helped());
        for (std::size_t i = 0; i < n; ++i) b.take(i);
    }
    REQUIRE(second.each_once());
    for (std::size_t i = 0; i < n; ++i) REQUIRE(by[i] == std::this_thread::get_id());
    release = true;
    for (std::size_t i = 0; i < n; ++i) a->take(i);
    a.reset();
    REQUIRE(first.each_once());
    REQUIRE(helper.available());
    // Free again: the next job is helped (a new job may sit at the old one's address).
    Counts third(n);
    const auto before = helper.items();
    a.emplace(helper, n, [&](std::size_t i) { third.ran[i].fetch_add(1); });
    REQUIRE(a->helped());
    REQUIRE(eventually([&] { return helper.items() == before + n; }, std::chrono::seconds(10), std::chrono::milliseconds(1)));
    a.reset();
    REQUIRE(third.each_once());
}

TEST_CASE("read-ahead: a job closed half-way stops the helper, which serves the next", "[read_ahead]") {
    HelperThread helper;
    constexpr std::size_t n = 1000;
    for (int round = 0; round < 50; ++round) {
        Counts c(n);
        {
            ReadAhead ahead(helper, n, [&](std::size_t i) {
                c.ran[i].fetch_add(1);
                std::this_thread::sleep_for(std::chrono::microseconds(20));
            });
            for (std::size_t i = 0; i < 10; ++i) ahead.take(i);
        }  // closed, most items likely not run: returns once the helper left its item
        auto total = [&] {
            std::size_t ran = 0;
            for (std::size_t i = 0; i < n; ++i) ran += static_cast<std::size_t>(c.ran[i].load());
            return ran;
        };
        const std::size_t ran = total();
        for (std::size_t i = 0; i < n; ++i) REQUIRE(c.ran[i].load() <= 1);
        for (std::size_t i = 0; i < 10; ++i) REQUIRE(c.ran[i].load() == 1);
        // Closed means closed: nothing of this job runs afterwards.
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        REQUIRE(total() == ran);
    }
}
