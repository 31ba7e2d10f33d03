// pidnsd's quotas without a bus: the token bucket, principals and their pools, the run queue, signal credit, slots.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bucket.h"
#include "caller.h"
#include "errors.h"
#include "quota.h"
#include "run_queue.h"
#include "signal_credit.h"

using namespace pidnsd;
using namespace std::chrono_literals;

TEST_CASE("bucket: a burst, then the rate, nothing is taken from an empty bucket") {
    Bucket b(2, 1);  // 2 at once, then 1 per second
    const auto t0 = Clock::now();
    CHECK(b.take(t0));
    CHECK(b.take(t0));
    CHECK_FALSE(b.take(t0));
    CHECK_FALSE(b.take(t0 + 500ms));  // half a token
    CHECK(b.when(t0 + 500ms) == t0 + 1000ms);
    CHECK(b.take(t0 + 1100ms));       // refilled by one
    CHECK_FALSE(b.take(t0 + 1100ms));
    CHECK(b.take(t0 + 10s));  // never more than the burst, however long it rested
    CHECK(b.take(t0 + 10s));
    CHECK_FALSE(b.take(t0 + 10s));
    CHECK_FALSE(b.take(t0 + 5s));  // an earlier time adds nothing
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

namespace {

// Small limits: 4 calls, 100 pids, 1 dump, 2 connections, 1 subscription per principal; pools of
// 8 calls and 3 subscriptions for unprivileged principals, 4 calls for privileged ones.
QuotaLimits small() {
    QuotaLimits l;
    l.per_principal = {4, 100, 1, 2, 1};
    l.unprivileged = {8, 150, 2, 4, 3};
    l.privileged = {4, 100, 1, 2, 2};
    l.unidentified_per_connection = {2, 60, 1, 1, 0};
    l.unidentified = {3, 100, 1, 3, 0};
    return l;
}

const Usage kCall{1, 0, 0, 0, 0};
Usage pids(std::size_t n) { return Usage{1, n, 0, 0, 0}; }

}  // namespace

TEST_CASE("quota: a principal's own limit comes first, then its class's pool") {
    Quotas q(small());
    const Principal a{1000, false}, b{1001, false}, c{1002, false};
    for (int i = 0; i < 4; ++i) {
        REQUIRE(q.admit(a, kCall).ok());
        q.charge(a, kCall);
    }
    const Verdict own = q.admit(a, kCall);
    CHECK(own.over == Over::principal);
    CHECK(own.what == Measure::calls);
    for (int i = 0; i < 4; ++i) q.charge(b, kCall);
    // 8 unprivileged calls in all: a third user is refused by the pool, not by its own limit.
    const Verdict pool = q.admit(c, kCall);
    CHECK(pool.over == Over::pool);
    CHECK(q.pool(false).calls == 8);
    q.release(b, kCall);
    CHECK(q.admit(c, kCall).ok());
}

TEST_CASE("quota: the unprivileged pool full leaves a privileged principal its own capacity") {
    Quotas q(small());
    for (std::uint32_t uid = 1000; uid < 1002; ++uid)
        for (int i = 0; i < 4; ++i) q.charge(Principal{uid, false}, kCall);
    CHECK(q.admit(Principal{1002, false}, kCall).over == Over::pool);
    const Principal root{0, true};
    for (int i = 0; i < 4; ++i) {
        REQUIRE(q.admit(root, kCall).ok());
        q.charge(root, kCall);
    }
    CHECK(q.pool(true).calls == 4);
    CHECK(q.pool(false).calls == 8);
    // The same uid unprivileged and privileged are two principals.
    CHECK(q.usage(Principal{0, false}).calls == 0);
}

TEST_CASE("quota: pids, dumps, connections and subscriptions are each their own measure") {
    Quotas q(small());
    const Principal a{1000, false};
    q.charge(a, pids(90));
    const Verdict v = q.admit(a, pids(20));
    CHECK(v.over == Over::principal);
    CHECK(v.what == Measure::pids);
    CHECK(q.admit(a, Usage{1, 0, 1, 0, 0}).ok());  // a dump holds no pids
    q.charge(a, Usage{0, 0, 0, 0, 1});
    CHECK(q.admit(a, Usage{0, 0, 0, 0, 1}).what == Measure::subscribers);
    CHECK(q.admit(a, Usage{0, 0, 0, 1, 0}).ok());
}

TEST_CASE("quota: calls before identification count against the connection, then all unidentified") {
    Quotas q(small());
    Usage conn1, conn2;
    REQUIRE(q.admit_unidentified(conn1, pids(50)).ok());
    q.charge_unidentified(conn1, pids(50));
    const Verdict own = q.admit_unidentified(conn1, pids(50));  // 100 > 60 for one connection
    CHECK(own.over == Over::connection);
    CHECK(own.what == Measure::pids);
    q.charge_unidentified(conn2, pids(50));
    Usage conn3;
    const Verdict all = q.admit_unidentified(conn3, pids(10));  // 110 > 100 in all
    CHECK(all.over == Over::unidentified);
    q.release_unidentified(conn2, pids(50));
    CHECK(q.admit_unidentified(conn3, pids(10)).ok());
    CHECK(conn2.pids == 0);
    CHECK(q.unidentified().pids == 50);
    // Nothing charged before identification touches any principal's pool.
    CHECK(q.pool(false).calls == 0);
}

TEST_CASE("quota: a refusal names the caller's own usage and limit, never the pool's counters") {
    Quotas q(small());
    const Principal a{1000, false}, b{1001, false};
    for (int i = 0; i < 4; ++i) q.charge(b, kCall);
    for (int i = 0; i < 3; ++i) q.charge(a, kCall);
    q.charge(Principal{1003, false}, kCall);  // 8 in all
    const Principal c{1002, false};
    const Verdict v = q.admit(c, kCall);
    REQUIRE(v.over == Over::pool);
    const std::string text = refusal_text(q.refusal(v, c, Usage{}));
    INFO(text);
    CHECK(text.find("uid 1002 has 0 calls being answered") != std::string::npos);
    CHECK(text.find("its own limit: 4") != std::string::npos);
    CHECK(text.find('8') == std::string::npos);  // the pool's size and usage stay unsaid
    CHECK(text.find("1000") == std::string::npos);
    const std::string mine = refusal_text(q.refusal(q.admit(b, kCall), b, Usage{}));
    CHECK(mine.find("uid 1001 has 4 calls being answered, at most 4") != std::string::npos);
    const std::string root = refusal_text(q.refusal(Verdict{Over::principal, Measure::subscribers}, Principal{0, true}, Usage{}));
    CHECK(root.find("uid 0 (privileged) has 0 subscribed connections") != std::string::npos);
}

TEST_CASE("quota: a principal with nothing charged is forgotten, unless it owes property time") {
    Quotas q(small());
    const Principal a{1000, false}, b{1001, false};
    q.charge(a, kCall);
    q.charge(b, kCall);
    CHECK(q.principals() == 2);
    q.release(a, kCall);
    CHECK(q.principals() == 1);
    q.property_time(b)->charge(Clock::now(), 5);  // 5 s of property reads: a debt of minutes
    q.release(b, kCall);
    CHECK(q.principals() == 1);
    q.charge(b, kCall);
    CHECK_FALSE(q.property_time(b)->has(Clock::now()));  // reconnecting did not clear it
}

TEST_CASE("run queue: privileged principals first, round-robin between principals, then their connections") {
    RunQueue rq;
    const Principal a{1000, false}, b{1001, false}, root{0, true};
    rq.push(a, "a1");
    rq.push(a, "a2");
    rq.push(a, "a3");
    rq.push(b, "b1");
    rq.push(root, "r1");
    CHECK(rq.has(true));
    CHECK(rq.take(true)->second == "r1");
    CHECK_FALSE(rq.take(true));
    // a's three connections do not get three turns to b's one.
    std::vector<std::string> order;
    while (auto n = rq.take(false)) {
        order.push_back(n->second);
        if (n->second == "b1" && order.size() < 4) rq.push(b, "b1");  // b1 still has work after its slice
    }
    CHECK(order == std::vector<std::string>{"a1", "b1", "a2", "b1", "a3"});
    CHECK(rq.empty());
}

TEST_CASE("signal credit: a window of signals, a ping at half of it, more only once it is answered") {
    SignalCredit c(8);
    int sent = 0;
    while (c.may_send()) {
        c.sent();
        ++sent;
        if (c.wants_ping()) c.pinged();
    }
    CHECK(sent == 8);           // one that does not read gets the window, then nothing
    CHECK(c.in_flight());       // pinged after 4
    CHECK_FALSE(c.wants_ping());
    c.answered();               // it read the 4 before the ping
    CHECK(c.unacknowledged() == 4);
    CHECK(c.may_send());
    c.sent();
    CHECK(c.wants_ping());
    c.pinged();
    c.answered();
    CHECK(c.unacknowledged() == 0);
    CHECK_FALSE(c.wants_ping());  // nothing sent since: nothing to ask about
    c.sent();
    c.pinged();
    c.not_sent();  // the bus refused it: asked again later
    CHECK_FALSE(c.in_flight());
    CHECK(c.unacknowledged() == 1);
}

TEST_CASE("slots: each principal has its own share, unprivileged ones share their class's, privileged ones have theirs") {
    Slots s(2, 3, 1);
    const Principal a{1000, false}, b{1001, false}, root{0, true};
    CHECK(s.take(a));
    CHECK(s.take(a));
    CHECK_FALSE(s.take(a));  // its own share
    CHECK(s.take(b));
    CHECK_FALSE(s.take(b));  // the class's
    CHECK(s.take(root));     // privileged ones have theirs
    s.give(a);
    CHECK(s.take(b));
    CHECK(s.held(false) == 3);
    CHECK(s.held(a) == 1);
}

TEST_CASE("principal: the owner of the outermost user namespace below the root, or the caller's own uid") {
    // root (1) <- alice's container (10, made by 1000) <- nested (11, made inside: owner 100000)
    // root <- a namespace made by root (20, owner 0) <- one made in it by 5000 (21)
    const std::map<pidns::NsId, pidns::UserNsLink> tree = {
        {10, {1, 1000}}, {11, {10, 100000}}, {20, {1, 0}}, {21, {20, 5000}}};
    auto link = [&](pidns::NsId id) -> std::optional<pidns::UserNsLink> {
        auto it = tree.find(id);
        if (it == tree.end()) return std::nullopt;
        return it->second;
    };
    CHECK(pidns::principal_uid(1, 1, 1000, link) == 1000);       // in the root namespace: its own uid
    CHECK(pidns::principal_uid(10, 1, 100005, link) == 1000);    // a subuid of alice's container
    CHECK(pidns::principal_uid(11, 1, 165535, link) == 1000);    // nested deeper: still alice
    CHECK(pidns::principal_uid(21, 1, 5000, link) == 0);         // inside a namespace root made
    CHECK(pidns::principal_uid(99, 1, 4242, link) == 4242);      // unknown chain: its own uid
    // A loop in a corrupt table ends.
    auto loop = [](pidns::NsId id) -> std::optional<pidns::UserNsLink> { return pidns::UserNsLink{id, 7}; };
    CHECK(pidns::principal_uid(5, 1, 4242, loop) == 4242);
}
