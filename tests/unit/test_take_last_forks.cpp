// take_last_forks: which fork events a batch holds back until the next one (pure logic over events).
#include <catch2/catch.hpp>

#include <vector>

#include "updater.h"

using pidns::ProcEvent;
using pidns::ProcEventKind;
using pidns::take_last_forks;

namespace {
ProcEvent fork_of(int child, int tgid = 0, int parent = 1) {
    return ProcEvent{.kind = ProcEventKind::fork, .pid = child, .tgid = tgid ? tgid : child, .parent_pid = parent,
                     .parent_tgid = parent};
}
ProcEvent exec_of(int pid) { return ProcEvent{.kind = ProcEventKind::exec, .pid = pid, .tgid = pid}; }
ProcEvent exit_of(int pid, int tgid = 0) {
    return ProcEvent{.kind = ProcEventKind::exit, .pid = pid, .tgid = tgid ? tgid : pid};
}
}  // namespace

TEST_CASE("take_last_forks takes the forks nothing later in the batch names, and keeps the order of both parts") {
    std::vector<ProcEvent> batch{fork_of(10), fork_of(11), exit_of(10), fork_of(12, 11, 11), exec_of(13),
                                 fork_of(14)};
    const auto taken = take_last_forks(batch, 0);
    // 10 exits later: applied together, nothing is read. 11 and its thread 12, and 14: nothing after them.
    CHECK(taken == std::vector<ProcEvent>{fork_of(11), fork_of(12, 11, 11), fork_of(14)});
    CHECK(batch == std::vector<ProcEvent>{fork_of(10), exit_of(10), exec_of(13)});
}

TEST_CASE("take_last_forks keeps a fork followed by its exec, or by a fork of the same pid after an exit") {
    std::vector<ProcEvent> batch{fork_of(20), exec_of(20), fork_of(21), exit_of(21), fork_of(21)};
    const auto taken = take_last_forks(batch, 0);
    // 21 was reused: only its last fork (the live one) waits.
    CHECK(taken == std::vector<ProcEvent>{fork_of(21)});
    CHECK(batch == std::vector<ProcEvent>{fork_of(20), exec_of(20), fork_of(21), exit_of(21)});
}

TEST_CASE("take_last_forks never takes what comes before `from` (forks held once already)") {
    std::vector<ProcEvent> batch{fork_of(30), fork_of(31), fork_of(32)};
    const auto taken = take_last_forks(batch, 1);
    CHECK(taken == std::vector<ProcEvent>{fork_of(31), fork_of(32)});
    CHECK(batch == std::vector<ProcEvent>{fork_of(30)});
    // `from` at or past the end takes nothing.
    std::vector<ProcEvent> two{fork_of(40), fork_of(41)};
    CHECK(take_last_forks(two, 2).empty());
    CHECK(take_last_forks(two, 7).empty());
    CHECK(two.size() == 2);
    std::vector<ProcEvent> none;
    CHECK(take_last_forks(none, 0).empty());
}

TEST_CASE("take_last_forks: a held fork applied with the next batch meets its exit there") {
    // Turn 1: the fork alone is taken. Turn 2: carried first, then the exit; nothing is taken again.
    std::vector<ProcEvent> turn1{fork_of(50)};
    auto held = take_last_forks(turn1, 0);
    REQUIRE(held.size() == 1);
    CHECK(turn1.empty());
    std::vector<ProcEvent> turn2 = held;
    const std::size_t carried = turn2.size();
    turn2.push_back(exit_of(50));
    CHECK(take_last_forks(turn2, carried).empty());
    CHECK(turn2 == std::vector<ProcEvent>{fork_of(50), exit_of(50)});
}
