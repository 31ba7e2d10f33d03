// When pidnsd asks polkit, without a bus: budgets, in-flight shares, turns, the negative cache, rules and defaults on disk.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "polkit_policy.h"
#include "polkit_rules.h"

using namespace pidnsd;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_CASE("polkit policy: a principal's burst, then its rate, and another principal has its own budget") {
    PolkitLimits l;
    l.burst = 2;
    l.rate = 1;
    l.refusals_to_cache = 100;  // not this test's subject
    PolkitPolicy p(l);
    const auto t0 = Clock::now();
    auto ask_and_answer = [&](std::uint32_t who, Clock::time_point at) {
        const auto d = p.decide(who, at);
        if (d == PolkitDecision::ask) p.answered(who, false, at);
        return d;
    };
    CHECK(ask_and_answer(1000, t0) == PolkitDecision::ask);
    CHECK(ask_and_answer(1000, t0) == PolkitDecision::ask);
    CHECK(ask_and_answer(1000, t0) == PolkitDecision::skip_budget);
    CHECK(ask_and_answer(1001, t0) == PolkitDecision::ask);  // its own
    CHECK(ask_and_answer(1000, t0 + 1100ms) == PolkitDecision::ask);
    CHECK(p.asked() == 4);
    CHECK(p.skipped_budget() == 1);
}

TEST_CASE("polkit policy: one query in flight per principal, a few in all, the rest wait their turn") {
    PolkitLimits l;
    l.in_flight = 2;
    PolkitPolicy p(l);
    const auto t0 = Clock::now();
    CHECK(p.decide(1000, t0) == PolkitDecision::ask);
    CHECK(p.decide(1000, t0) == PolkitDecision::wait);  // its share
    p.queue(1000);
    CHECK(p.decide(1001, t0) == PolkitDecision::ask);
    CHECK(p.decide(1002, t0) == PolkitDecision::wait);  // all shares taken
    p.queue(1002);
    p.queue(1000);  // queued once
    CHECK(p.in_flight() == 2);
    p.answered(1001, false, t0);
    CHECK(p.next() == std::optional<std::uint32_t>(1000));  // in the order they came
    CHECK(p.decide(1000, t0) == PolkitDecision::wait);      // its own query is still out
    p.queue(1000);
    CHECK(p.next() == std::optional<std::uint32_t>(1002));
    CHECK(p.decide(1002, t0) == PolkitDecision::ask);
    CHECK(p.next() == std::optional<std::uint32_t>(1000));
    CHECK_FALSE(p.next());
}

TEST_CASE("polkit policy: several refusals make the principal answered from its negative cache, per principal") {
    PolkitLimits l;
    l.burst = 100;
    l.refusals_to_cache = 3;
    PolkitPolicy p(l);
    const auto t0 = Clock::now();
    for (int i = 0; i < 3; ++i) {
        REQUIRE(p.decide(1000, t0) == PolkitDecision::ask);
        p.answered(1000, false, t0);  // three targets, three "no"
    }
    CHECK(p.decide(1000, t0 + 1s) == PolkitDecision::skip_negative);
    CHECK(p.negative_cached() == 1);
    CHECK(p.decide(1001, t0 + 1s) == PolkitDecision::ask);  // not another principal
    p.answered(1001, false, t0 + 1s);
    CHECK(p.decide(1000, t0 + l.negative_for + 1s) == PolkitDecision::ask);  // it expires
}

TEST_CASE("polkit policy: a principal polkit said yes to is never negative-cached and waits for tokens") {
    PolkitLimits l;
    l.refusals_to_cache = 2;
    l.granted_burst = 3;
    l.granted_rate = 1;
    PolkitPolicy p(l);
    const auto t0 = Clock::now();
    REQUIRE(p.decide(1000, t0) == PolkitDecision::ask);
    p.answered(1000, true, t0);  // a rule grants it something
    CHECK(p.granted(1000, t0));
    for (int i = 0; i < 3; ++i) {
        REQUIRE(p.decide(1000, t0) == PolkitDecision::ask);
        p.answered(1000, false, t0);  // other targets: no
    }
    // Not cached (a precise rule: the next target may be granted); its budget spent, it waits.
    CHECK(p.decide(1000, t0) == PolkitDecision::wait);
    p.queue(1000);
    REQUIRE(p.next_token(t0));
    CHECK(*p.next_token(t0) <= t0 + 1100ms);
    CHECK(p.decide(1000, t0 + 1100ms) == PolkitDecision::ask);
    CHECK_FALSE(p.granted(1000, t0 + l.granted_for + 1s));
}

TEST_CASE("polkit rules: the action's defaults parse as polkitd reads them") {
    const std::string xml =
        "<policyconfig>\n<action id=\"org.other\"><defaults><allow_any>yes</allow_any></defaults></action>\n"
        "<action id=\"org.pidns.inspect\">\n <description>x</description>\n <defaults>\n"
        "  <allow_any>no</allow_any>\n  <allow_inactive>no</allow_inactive>\n"
        "  <allow_active>auth_admin_keep</allow_active>\n </defaults>\n</action>\n</policyconfig>\n";
    const auto d = parse_action_defaults(xml, "org.pidns.inspect");
    REQUIRE(d);
    CHECK(d->any == Implicit::no);
    CHECK(d->inactive == Implicit::no);
    CHECK(d->active == Implicit::auth_admin_keep);
    CHECK_FALSE(parse_action_defaults(xml, "org.pidns.nothing"));
    // Without a session, or in an inactive one, nothing; an active local one may hold a kept authorization.
    CHECK_FALSE(default_may_grant(*d, Session::none));
    CHECK_FALSE(default_may_grant(*d, Session::inactive));
    CHECK(default_may_grant(*d, Session::active));
    CHECK_FALSE(default_may_grant(ActionDefaults{Implicit::auth_admin, Implicit::auth_self, Implicit::auth_admin}, Session::active));
    CHECK(default_may_grant(ActionDefaults{Implicit::yes, Implicit::no, Implicit::no}, Session::none));
    CHECK(parse_implicit(" auth_self_keep\n") == Implicit::auth_self_keep);
    CHECK_FALSE(parse_implicit("maybe"));
}

TEST_CASE("polkit rules: a rules file that names the action, in either directory, and its removal, are noticed") {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/pidns-polkit-rules.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const fs::path dir(tmpl);
    fs::create_directories(dir / "etc");
    fs::create_directories(dir / "usr");
    std::ofstream(dir / "usr" / "50-default.rules") << "polkit.addAdminRule(function(action, subject) { return [\"unix-group:sudo\"]; });\n";
    std::ofstream(dir / "action.policy")
        << "<action id=\"org.pidns.inspect\"><defaults><allow_active>auth_admin_keep</allow_active></defaults></action>";
    PolkitRules r({(dir / "etc").string(), (dir / "usr").string()}, (dir / "action.policy").string());
    CHECK_FALSE(r.rules_name_action());
    CHECK_FALSE(r.may_grant(Session::none));
    CHECK(r.may_grant(Session::active));
    std::ofstream(dir / "etc" / "49-mine.rules") << "polkit.addRule(function(a, s) { if (a.id == \"org.pidns.inspect\") return polkit.Result.YES; });\n";
    r.refresh(Clock::now());  // within kRecheck of the last look: not read yet
    CHECK_FALSE(r.rules_name_action());
    r.refresh(Clock::now() + PolkitRules::kRecheck + 1s);
    CHECK(r.rules_name_action());
    CHECK(r.may_grant(Session::none));
    REQUIRE(r.rule_files().size() == 1);
    fs::remove(dir / "etc" / "49-mine.rules");
    r.reload();  // SIGHUP
    CHECK_FALSE(r.rules_name_action());
    std::ofstream(dir / "usr" / "60-prefix.rules") << "if (action.id.indexOf(\"org.pidns.\") == 0) ...\n";
    r.reload();
    CHECK(r.rules_name_action());  // the vendor's prefix names it too
    fs::remove_all(dir);
}
