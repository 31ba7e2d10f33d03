// A crowd of unprivileged users against pidnsd's totals: distinct uids (setpriv), and one user with a
// rootless container's 65,536 mapped uids, fill each pool (pids in flight, dumps, calls, subscribers,
// signals nobody reads); root's TranslatePid, TranslatePids, DumpPidTree, Subscribe and `pidnsctl
// monitor` are still answered, at a p99 within 10x idle; the container counts as one principal; the
// bus holds a window of signals per subscriber that never reads; departed subscribers whose
// NameOwnerChanged the bus dropped are forgotten; refusals name the caller's own quota and usage.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "load.h"

using namespace pidns::harness;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// The crowd: uids the host has no account for (the test bus alone knows them: bus_users.h).
constexpr std::uint32_t kCrowd = 2101;
std::uint32_t crowd(int i) { return kCrowd + static_cast<std::uint32_t>(i); }

// A user namespace made by kOwner with 65,536 uids mapped as newuidmap maps a rootless container's
// (0 -> kOwner, 1..65535 -> kFirst...): root writes the map, the namespace is kOwner's. Commands
// run in it as an inside uid (nsenter), which the bus and the kernel see as kFirst + k - 1.
class SubuidRange {
public:
    static constexpr std::uint32_t kOwner = 3000, kFirst = 300000;
    SubuidRange() {
        int p[2];
        REQUIRE(pipe2(p, O_CLOEXEC) == 0);
        holder_ = fork();
        REQUIRE(holder_ >= 0);
        if (holder_ == 0) {
            if (setgroups(0, nullptr) != 0 || setresgid(kOwner, kOwner, kOwner) != 0 || setresuid(kOwner, kOwner, kOwner) != 0)
                _exit(1);
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // (a change of credentials cleared it)
            if (unshare(CLONE_NEWUSER) != 0) _exit(2);
            const char c = 'u';
            if (write(p[1], &c, 1) != 1) _exit(3);
            for (;;) pause();
        }
        close(p[1]);
        char c = 0;
        const bool made = read(p[0], &c, 1) == 1;
        close(p[0]);
        REQUIRE(made);
        const std::string map = "0 " + std::to_string(kOwner) + " 1\n1 " + std::to_string(kFirst) + " 65535\n";
        for (const char* f : {"uid_map", "gid_map"}) {
            std::ofstream out("/proc/" + std::to_string(holder_) + "/" + f);
            out << map;
            out.flush();
            REQUIRE(out.good());
        }
    }
    ~SubuidRange() {
        kill(holder_, SIGKILL);
        waitpid(holder_, nullptr, 0);
    }
    SubuidRange(const SubuidRange&) = delete;
    SubuidRange& operator=(const SubuidRange&) = delete;
    // The prefix that runs a command in the namespace as inside uid `k` (1..65535).
    [[nodiscard]] Argv as(std::uint32_t k) const {
        const std::string u = std::to_string(k);
        return {"nsenter", "--user", "--target", std::to_string(holder_), "--setuid", u, "--setgid", u, "--"};
    }
    static std::uint32_t host_uid(std::uint32_t k) { return kFirst + k - 1; }

private:
    pid_t holder_ = -1;
};

// The uids a test's bus must know: `n` of the crowd, the container's owner and its first `subuids`.
std::vector<std::uint32_t> bus_users(int n, std::uint32_t subuids) {
    std::vector<std::uint32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(crowd(i));
    out.push_back(SubuidRange::kOwner);
    for (std::uint32_t k = 1; k <= subuids; ++k) out.push_back(SubuidRange::host_uid(k));
    return out;
}

// A call refused for a quota is answered this much later (daemon/quotas.h kRefusalDelay), and a bit.
constexpr auto limits_delay = 6s;

Argv flood(const PrivateBus& bus, const Argv& args) { return concat({PIDNS_FLOOD_BIN, bus.address()}, args); }

// Waits until GetStatistics's `key` satisfies `done` (a call the bus refuses, its queue to pidnsd
// full, is tried again); its last value read, none if no call was answered.
std::optional<std::uint64_t> wait_stat_until(Client& c, const std::string& key,
                                             const std::function<bool(std::uint64_t)>& done,
                                             std::chrono::seconds timeout = 30s) {
    std::optional<std::uint64_t> v;
    const auto until = Clock::now() + timeout;
    for (;;) {
        try {
            v = stat_of(c, key);
        } catch (const sdbus::Error&) {
        }
        if ((v && done(*v)) || Clock::now() >= until) return v;
        std::this_thread::sleep_for(20ms);
    }
}

// Waits until GetStatistics's `key` reaches `at_least`; its last value (0 if never read).
std::uint64_t wait_stat(Client& c, const std::string& key, std::uint64_t at_least, std::chrono::seconds timeout = 30s) {
    return wait_stat_until(c, key, [&](std::uint64_t v) { return v >= at_least; }, timeout).value_or(0);
}

// A small pid namespace of root's for its DumpPidTree (unshare -p -f sleep): its inode.
struct RootPidns {
    Proc wrapper{Argv{"unshare", "-p", "-f", "--kill-child", "sleep", "600"}};
    std::uint64_t inode() {
        const pid_t init = child_of(wrapper.pid());
        wait_comm(init, "sleep");
        auto st = run({"stat", "-L", "-c", "%i", "/proc/" + std::to_string(init) + "/ns/pid"}).out;
        return std::stoull(st);
    }
};

// Root's calls while the crowd attacks: TranslatePid `n` times 10 ms apart (timed), TranslatePids
// of 1 and 4096 pids, DumpPidTree of its own small namespace, Subscribe on a new connection, and
// `pidnsctl monitor` (subscribed, then stopped by SIGINT: exit 0). Failures are counted and named.
struct Probes {
    Latency translate;
    int failures = 0;
    std::string what;
};

Probes probe_root(PrivateBus& bus, Client& root, std::uint64_t dump_ns, std::size_t n = 200) {
    Probes p;
    auto fail = [&](const std::string& what) {
        ++p.failures;
        p.what += what + "\n";
    };
    std::vector<double> ms;
    const auto me = static_cast<std::uint32_t>(getpid());
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        try {
            if (root.TranslatePid(me, 0, 0) != me) fail("TranslatePid: a wrong answer");
            ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        } catch (const sdbus::Error& e) {
            fail("TranslatePid: " + e.getName() + ": " + e.getMessage());
        }
        std::this_thread::sleep_for(10ms);
    }
    p.translate = latency_of(ms);
    try {
        if (root.TranslatePids({me}, 0, 0) != std::vector<std::uint32_t>{me}) fail("TranslatePids(1): a wrong answer");
        if (root.TranslatePids(std::vector<std::uint32_t>(4096, me), 0, 0).size() != 4096) fail("TranslatePids(4096): short");
    } catch (const sdbus::Error& e) {
        fail("TranslatePids: " + e.getName() + ": " + e.getMessage());
    }
    try {
        if (root.DumpPidTree(dump_ns).size() != 1) fail("DumpPidTree: not the 1 task of its namespace");
    } catch (const sdbus::Error& e) {
        fail("DumpPidTree: " + e.getName() + ": " + e.getMessage());
    }
    try {
        Client sub(bus.address());
        sub.Subscribe();
    } catch (const sdbus::Error& e) {
        fail("Subscribe: " + e.getName() + ": " + e.getMessage());
    }
    const auto subscribed = stat_of(root, "PrivilegedSubscribers");
    Background monitor({PIDNSCTL_BIN, "--address=" + bus.address(), "monitor", "--json=short"});
    if (wait_stat(root, "PrivilegedSubscribers", subscribed + 1, 20s) < subscribed + 1 || monitor.pid() <= 0)
        fail("pidnsctl monitor did not subscribe: " + monitor.output());
    const int st = monitor.stop(SIGINT);
    if (st != 0) fail("pidnsctl monitor exited " + std::to_string(st) + ": " + monitor.output());
    return p;
}

// The checks every attack ends with: all of root's calls answered, its p99 within 10x idle (a bound
// of tests/harness/timing.h: on a shared 2-core host an idle p99 of 0.3 ms would make a 3 ms bound
// that scheduling noise alone breaks, hence its floor). The 10x target itself is measured in
// bench_flood --crowd. `floor_ms`: the least a test's own load promises (before scaling).
void check_root(const Probes& p, const Latency& idle, double floor_ms = 0) {
    INFO(p.what);
    CHECK(p.failures == 0);
    const double bound = bound_ms(std::max(10 * idle.p99_ms, floor_ms));
    INFO("root's TranslatePid p99 " << p.translate.p99_ms << " ms, bound " << bound << " ms (idle p99 " << idle.p99_ms << ")");
    CHECK(p.translate.n >= 190);
    CHECK(p.translate.p99_ms <= bound);
}

// The setting of an attack on root's service: a bus that knows the crowd (bus_users), pidnsd on it,
// root's client, a small pid namespace of root's to dump, root's latency measured before the
// attack, and the attackers (killed at the end).
struct Attack {
    PrivateBus bus;
    Daemon d{bus};
    Client root{bus.address()};
    RootPidns own;
    const std::uint64_t dump_ns = own.inode();
    const Latency idle = measure(root, 200, 5ms);
    std::vector<std::unique_ptr<Background>> attackers;

    Attack(int uids, std::uint32_t subuids) : bus(bus_users(uids, subuids)) {}
    // An attacker: pidns-flood ARGS on the bus as the user `as` makes.
    void add(const Argv& as, const Argv& args) { attackers.push_back(std::make_unique<Background>(concat(as, flood(bus, args)))); }
    // Root's calls meanwhile (probe_root).
    [[nodiscard]] Probes probe() { return probe_root(bus, root, dump_ns); }
};

// A call of one user, through busctl: "" when answered, else its error text.
std::string refusal(const PrivateBus& bus, const Argv& as, const std::string& method, const std::string& sig = "",
                    const Argv& args = {}) {
    Argv argv = concat(as, {"busctl", "--address=" + bus.address(), "call", "org.pidns", "/org/pidns", "org.pidns.Manager1", method});
    if (!sig.empty()) argv.push_back(sig);
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv, 30s);
    return r.status == 0 ? "" : r.err;
}

}  // namespace

TEST_CASE("crowd: TranslatePids of a crowd and a container fill the unprivileged pids, root's calls are answered") {
    Attack at(4, 2);
    SubuidRange container;
    // 4 uids and 2 of the container's pipeline 30 x 65536-pid TranslatePids each; one more uid
    // sends 4 of them on fresh connections, before the bus has said who they are.
    for (int i = 0; i < 4; ++i) at.add(as_uid(crowd(i)), {"batches", "12", "30"});
    for (std::uint32_t k = 1; k <= 2; ++k) at.add(container.as(k), {"batches", "12", "30"});
    at.add(as_uid(crowd(3)), {"fresh-batches", "12", "4"});
    // 4 uids x 262144 pids fill the 1048576 unprivileged ones (the container is one more user).
    const auto held = wait_stat(at.root, "UnprivilegedPids", 16 * 65536);
    const Probes p = at.probe();
    const auto principals = stat_of(at.root, "Principals");
    for (auto& a : at.attackers) a->wait(60s);
    std::cout << "root idle: " << at.idle << "\nwhile 6 principals' TranslatePids hold " << held
              << " unprivileged pids: " << p.translate << "\n";
    for (auto& a : at.attackers) std::cout << "  attacker: " << a->output();
    CHECK(held == 16 * 65536);
    check_root(p, at.idle);
    CHECK(principals <= 6 + 2);  // 4 uids, the container (2 subuids, 1 principal), root; ~1 leaving
    for (auto& a : at.attackers) CHECK(field(a->output(), "limits") > 0);  // each was held at its quota
}

TEST_CASE("crowd: DumpPidTree of 4 uids fill the unprivileged dumps, root's own dump is answered") {
    Attack at(4, 0);
    // Each uid keeps 2 dumps of its whole pid namespace (the host's) in flight on each of 2 connections.
    for (int i = 0; i < 4; ++i) at.add(as_uid(crowd(i)), {"dumploop", "12", "2", "2", "0"});
    const auto held = wait_stat(at.root, "UnprivilegedDumps", 8);
    const Probes p = at.probe();
    for (auto& a : at.attackers) a->wait(60s);
    std::cout << "root idle: " << at.idle << "\nwhile 4 uids hold " << held << " dumps: " << p.translate << "\n";
    for (auto& a : at.attackers) std::cout << "  attacker: " << a->output();
    CHECK(held == 8);
    check_root(p, at.idle);
}

TEST_CASE("crowd: 17 uids x 64 ListProcesses calls fill the unprivileged calls, root's calls are answered, refusals name the caller's own usage") {
    Attack at(18, 0);
    for (int i = 0; i < 17; ++i) at.add(as_uid(crowd(i)), {"lists", "40", "16", "4"});
    const auto held = wait_stat(at.root, "UnprivilegedCalls", 1024 - 32);
    const Probes p = at.probe();
    std::this_thread::sleep_for(limits_delay);  // the refusals' answers come 5 s after the calls
    for (auto& a : at.attackers) a->stop(SIGTERM);  // (pidns-flood prints its summary on the way out)
    std::cout << "root idle: " << at.idle << "\nwhile 17 uids hold " << held << " calls: " << p.translate << "\n";
    CHECK(held >= 1024 - 32);
    check_root(p, at.idle);
    // The crowd was refused: each is told its own usage and limit, not how busy pidnsd is for others.
    int pool_refusals = 0;
    for (int i = 0; i < 17; ++i) {
        std::istringstream out(at.attackers[static_cast<std::size_t>(i)]->output());
        for (std::string line; std::getline(out, line);) {
            if (line.rfind("limit-text: ", 0) != 0) continue;
            INFO(line);
            CHECK(line.find("1024") == std::string::npos);  // the pool's size, or anyone else's count
            CHECK(line.find("pidnsd is answering") == std::string::npos);
            if (line.find("of all unprivileged callers together") == std::string::npos) continue;
            ++pool_refusals;
            CHECK(line.find("uid " + std::to_string(crowd(i)) + " has ") != std::string::npos);
            if (pool_refusals == 1) std::cout << "  " << line << "\n";
        }
    }
    CHECK(pool_refusals > 0);
}

TEST_CASE("crowd: 32 uids x 16 idle subscribers fill the unprivileged subscriptions, root's Subscribe and pidnsctl monitor work") {
    Attack at(33, 0);
    for (int i = 0; i < 32; ++i) at.add(as_uid(crowd(i)), {"noread", "16", "30"});
    const auto held = wait_stat(at.root, "UnprivilegedSubscribers", 512);
    const Probes p = at.probe();
    const std::string refused = refusal(at.bus, as_uid(crowd(32)), "Subscribe");
    for (auto& a : at.attackers) a->stop(SIGKILL);
    std::cout << "root idle: " << at.idle << "\nwhile 32 uids hold " << held << " subscriptions: " << p.translate
              << "\na 33rd uid's Subscribe: " << refused;
    CHECK(held == 512);
    check_root(p, at.idle);
    CHECK(refused.find("subscriptions of all unprivileged callers together are at pidnsd's limit") != std::string::npos);
    CHECK(refused.find("512") == std::string::npos);
}

TEST_CASE("crowd: a container's 65,536 uids are one principal, charged to the user who made it") {
    PrivateBus bus(bus_users(0, 17));
    Daemon d(bus);
    SubuidRange container;
    Client root(bus.address());
    // Its processes are charged to its maker (GetStatistics tells a caller whom).
    const auto stats = run(concat(container.as(5), {"busctl", "--json=short", "--address=" + bus.address(), "call",
                                                     "org.pidns", "/org/pidns", "org.pidns.Manager1", "GetStatistics"}));
    INFO(stats.err);
    REQUIRE(stats.status == 0);
    const auto j = nlohmann::json::parse(stats.out).at("data").at(0);
    CHECK(j.at("CallerPrincipal").at("data").get<std::uint32_t>() == SubuidRange::kOwner);
    CHECK_FALSE(j.at("CallerPrivileged").at("data").get<bool>());
    // 16 of its uids subscribe once each: that is the quota of one principal; a 17th uid is refused.
    std::vector<std::unique_ptr<Background>> subs;
    for (std::uint32_t k = 1; k <= 16; ++k)
        subs.push_back(std::make_unique<Background>(concat(container.as(k), flood(bus, {"noread", "1", "30"}))));
    const auto held = wait_stat(root, "UnprivilegedSubscribers", 16);
    const std::string refused = refusal(bus, container.as(17), "Subscribe");
    const std::string owner_refused = refusal(bus, as_uid(SubuidRange::kOwner), "Subscribe");
    for (auto& s : subs) s->stop(SIGKILL);
    std::cout << "16 uids of the container subscribed (" << held << "); the 17th: " << refused << "its maker: " << owner_refused;
    CHECK(held == 16);
    CHECK(refused.find("uid " + std::to_string(SubuidRange::kOwner) + " has 16 subscribed connections, at most 16") !=
          std::string::npos);
    CHECK(owner_refused.find("uid " + std::to_string(SubuidRange::kOwner) + " has 16 subscribed connections") !=
          std::string::npos);  // the user outside the container is the same principal
}

TEST_CASE("crowd: subscribers that never read cost the bus a window each while readers get every change") {
    constexpr int kUids = 8;
    Attack at(kUids + 1, 0);
    PrivateBus& bus = at.bus;
    Client& root = at.root;
    const pid_t dbus = bus.pid();
    const long bus_rss0 = rss_kb(dbus);
    // 8 uids x 16 subscribers that never read; each uid, and one more that reads, make user, net
    // and uts namespaces in a loop (paced: the host is not starved of CPU, each subscriber is sent
    // ~100 signals a second, more than its window in 3 s).
    std::vector<std::unique_ptr<Background>> noread, storms;
    for (int i = 0; i < kUids; ++i)
        noread.push_back(std::make_unique<Background>(concat(as_uid(crowd(i)), flood(bus, {"noread", "16", "20"}))));
    REQUIRE(wait_stat(root, "UnprivilegedSubscribers", kUids * 16) == kUids * 16);
    const std::uint32_t reader_uid = crowd(kUids);
    Background reader(concat(as_uid(reader_uid), {PIDNS_LISTENER_BIN, bus.address(), "--mirror", "10"}));
    Background root_reader({PIDNS_LISTENER_BIN, bus.address(), "--mirror", "10"});
    std::this_thread::sleep_for(500ms);
    // Each round's namespaces live 1 s, so that every one is announced (and its end too). A loaded
    // host makes (and pidnsd sees) fewer a second: the storm goes on until the non-readers have had
    // their window (SubscribersStalled), for 8 s at least and 30 s at most (the readers wait for a
    // quiet 2 s after their 10 s), then the test stops it.
    TempDir flag;
    REQUIRE(::chmod(flag.path().c_str(), 0755) == 0);  // the storms' uids look for the stop file
    const std::string stop = flag.path() + "/stop";
    const std::string loop = "end=$(($(date +%s) + 30)); n=0; while [ ! -e '" + stop +
                             "' ] && [ $(date +%s) -lt $end ]; do unshare -Urnu sleep 1 & n=$((n + 1)); "
                             "sleep 0.05; done; wait; echo storm $n";
    const auto storm_start = Clock::now();
    for (int i = 0; i <= kUids; ++i) storms.push_back(std::make_unique<Background>(concat(as_uid(crowd(i)), {"sh", "-c", loop})));
    const Probes p = at.probe();
    wait_stat(root, "SubscribersStalled", kUids * 16 / 2, 25s);
    std::this_thread::sleep_until(std::max(storm_start + 8s, Clock::now() + 1s));
    { std::ofstream(stop) << "stop\n"; }
    for (auto& s : storms) REQUIRE(s->wait(60s) == 0);
    const int reader_status = reader.wait(60s), root_reader_status = root_reader.wait(60s);
    INFO("reader: " << reader.output() << "root reader: " << root_reader.output());
    REQUIRE(reader_status == 0);
    REQUIRE(root_reader_status == 0);
    // What the bus holds for each non-reader now (they are still connected and stalled).
    std::uint64_t bus_max = 0;
    std::vector<std::string> names;
    {
        auto proxy = sdbus::createProxy(root.connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
        proxy->callMethod("ListNames").onInterface("org.freedesktop.DBus").storeResultsTo(names);
        for (const auto& n : names) {
            if (n.empty() || n[0] != ':') continue;
            std::uint32_t uid = 0;
            try {
                proxy->callMethod("GetConnectionUnixUser").onInterface("org.freedesktop.DBus").withArguments(n).storeResultsTo(uid);
                if (uid < crowd(0) || uid >= crowd(kUids)) continue;
                std::map<std::string, sdbus::Variant> st;
                proxy->callMethod("GetConnectionStats").onInterface("org.freedesktop.DBus.Debug.Stats").withArguments(n).storeResultsTo(st);
                bus_max = std::max<std::uint64_t>(bus_max, st.at("OutgoingBytes").get<std::uint32_t>());
            } catch (const sdbus::Error&) {
            }
        }
    }
    const long bus_rss = rss_kb(dbus);
    const auto stalled = stat_of(root, "SubscribersStalled");
    // The non-readers report what waits in their sockets (the kernel's share) as they leave.
    std::uint64_t kernel_max = 0;
    for (auto& n : noread) {
        n->wait(60s);
        kernel_max = std::max(kernel_max, field(n->output(), "unread max"));
    }
    std::cout << "root idle: " << at.idle << "\nduring the storm: " << p.translate << "\nheld for a non-reader: bus " << bus_max
              << " bytes, its socket " << kernel_max << " bytes; dbus-daemon RSS " << bus_rss0 << " -> " << bus_rss
              << " kB; " << stalled << " subscribers stalled\nreader uid " << reader_uid << ": " << reader.output()
              << "root reader: " << root_reader.output();
    for (auto& s : storms) std::cout << "  " << s->output();
    check_root(p, at.idle, 100);  // ~200 processes started and indexed a second meanwhile
    // A window of 256 signals (~160 bytes each on the wire) at most, wherever it waits: within the
    // issue's 1 MiB per subscriber; without back-pressure these got ~100 signals a second.
    CHECK(bus_max + kernel_max <= 256 * 256);
    CHECK(bus_max <= 1024 * 1024);
    CHECK(bus_rss - bus_rss0 <= 64 * 1024);
#ifndef PIDNS_SANITIZED
    CHECK(stalled >= kUids * 16 / 2);  // they got their window and wait
#else
    // Under ASan+UBSan pidnsd sends a window more slowly than the storm lasts (30 s at most) on a
    // loaded host: the bounds on what is held (above) are what this run checks.
    (void)stalled;
#endif
    // The readers missed nothing: their mirrors equal a fresh listing (a Resync lists again).
    for (const auto* r : {&reader, &root_reader}) {
        const auto out = r->output();
        CHECK(out.find("missing 0 extra 0") != std::string::npos);
    }
    CHECK(field(reader.output(), "added") > 100);  // it saw its own storm
}

TEST_CASE("crowd: subscribers that left while the bus dropped their NameOwnerChanged are forgotten under pressure") {
    // A bus that holds at most 1 MiB for a connection: with pidnsd stopped, its queue fills and the
    // bus drops the NameOwnerChanged signals of the connections that leave meanwhile.
    PrivateBus bus(bus_users(1, 0), "<limit name=\"max_outgoing_bytes\">1048576</limit>");
    Daemon d(bus);
    Client root(bus.address());
    const std::uint32_t uid = crowd(0);
    // 16 subscriptions of one user (its quota), whose connections close after 4 s while the
    // process lives on (so that nothing but the bus could tell pidnsd they are gone).
    Background subs(concat(as_uid(uid), flood(bus, {"leave", "16", "4", "60"})));
    REQUIRE(wait_stat(root, "UnprivilegedSubscribers", 16) == 16);
    d.signal(SIGSTOP);
    // TranslatePids for the stopped pidnsd: the bus queues 1 MiB of them, refuses the rest.
    Background filler(flood(bus, {"batches", "6", "64"}));
    for (int i = 0; i < 1000 && subs.output().find("closed") == std::string::npos; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(subs.output().find("closed") != std::string::npos);
    filler.wait(30s);
    d.signal(SIGCONT);
    const auto bus_log = read_file(bus.dir() + "/bus.log");
    // pidnsd catches up: the 16 still count as subscribed.
    std::this_thread::sleep_for(1s);
    const auto ghosts = wait_stat(root, "UnprivilegedSubscribers", 16, 5s);
    // The user subscribes again: refused at first (its 16 are taken), which makes pidnsd ask the
    // bus about connections; once the departed are forgotten, the next try is answered.
    const std::string first = refusal(bus, as_uid(uid), "Subscribe");
    std::string later = first;
    for (int i = 0; i < 30 && !later.empty(); ++i) {
        std::this_thread::sleep_for(100ms);
        later = refusal(bus, as_uid(uid), "Subscribe");
    }
    const auto gone = stat_of(root, "ClientsGoneUnannounced");
    std::cout << "subscribed after they left unannounced: " << ghosts << "; the first Subscribe: " << first
              << "later: " << (later.empty() ? std::string("answered\n") : later) << "forgotten unannounced: " << gone << "\n";
    CHECK(bus_log.find("full message queue") != std::string::npos);
    CHECK(ghosts == 16);  // the bus did drop their NameOwnerChanged (else there is nothing to test)
    CHECK(first.find("uid " + std::to_string(uid) + " has 16 subscribed connections") != std::string::npos);
    CHECK(later.empty());
    CHECK(gone >= 16);
    CHECK(stat_of(root, "UnprivilegedSubscribers") <= 1);
}

TEST_CASE("crowd: refusals that fall due together are sent paced, not in one burst") {
    // A connection sends 116 calls at once (below the bus's 128 pending replies): 16 are
    // answered, the rest refused for the connection's quota and answered 5 s later. Sent together
    // they would arrive within milliseconds and invite as many calls back at once; paced (500 a
    // second after a burst of 16: daemon/quotas.h) the last comes >= 0.16 s after the first.
    PrivateBus bus(bus_users(1, 0));
    Daemon d{bus};
    LineReader burst(concat(as_uid(crowd(0)), flood(bus, {"burst", "116", "30"})));
    const auto is = [](const char* text) { return [text](const std::string& l) { return l == text; }; };
    REQUIRE(burst.wait_line(is("ready"), 30s));
    // pidnsd reads the burst only once all of it waits in its socket: on a loaded host a running
    // pidnsd answered some calls before the rest came (15 refused seen in CI), too few to pace.
    d.signal(SIGSTOP);
    ::kill(burst.pid(), SIGUSR1);
    const bool sent = burst.wait_line(is("sent"), 30s).has_value();
    std::this_thread::sleep_for(200ms);  // dbus-daemon passes them on to pidnsd's socket
    d.signal(SIGCONT);
    REQUIRE(sent);
    const auto line = burst.wait_line([](const std::string& l) { return l.starts_with("burst: "); }, 60s);
    INFO(burst.output());
    REQUIRE(line);
    int replies = 0, refused = 0;
    double spread_ms = 0;
    REQUIRE(std::sscanf(line->text.c_str(), "burst: %d replies, %d refused, refusals spread over %lf ms", &replies, &refused,
                        &spread_ms) == 3);
    REQUIRE(replies == 116);  // every call answered (the flooder's exit status says the same)
    // 100 when pidnsd reads all 116 before it answers; some beyond the pace's burst of 16 at
    // least, whose spread the next check bounds.
    REQUIRE(refused > 16);
    // (refused - 16) / 500 s, halved for the bucket's refill during the first sends.
    CHECK(spread_ms >= (refused - 16) / 500.0 * 1000.0 / 2);
}

namespace {

// The largest Send-Q of `pid`'s unix sockets, as ss(8) reads it from the kernel (unix_diag: what
// the socket sent that its peer has not read, with each buffer's overhead, as SIOCOUTQ).
std::uint64_t max_unix_send_queue(pid_t pid) {
    const auto r = run({"ss", "-x", "-n", "-p"}, 10s);
    REQUIRE(r.status == 0);
    std::istringstream in(r.out);
    std::uint64_t most = 0;
    const std::string mark = "pid=" + std::to_string(pid) + ",";
    for (std::string line; std::getline(in, line);) {
        if (line.find(mark) == std::string::npos) continue;
        std::istringstream cols(line);
        std::string netid, state;
        std::uint64_t recv_q = 0, send_q = 0;
        if (cols >> netid >> state >> recv_q >> send_q) most = std::max(most, send_q);
    }
    return most;
}

}  // namespace

TEST_CASE("crowd: while the bus has not read pidnsd's small replies, unprivileged calls wait for it") {
    // dbus-daemon reads pidnsd's connection a few KiB per iteration, so a reply of root's waits
    // behind all pidnsd sent before it. 4 uids keep 64 ListProcesses each in flight; pidnsd is
    // stopped while their calls pile up in its socket, then the bus is stopped and pidnsd let go:
    // it may answer until 16 KiB of replies wait unread (daemon/quotas.h kUnreadReplyBytes), not
    // all 256 (~250 KiB, as the kernel counts them).
    PrivateBus bus(bus_users(4, 0));
    Daemon d{bus};
    Client root(bus.address());
    std::vector<std::unique_ptr<Background>> crowd_lists;
    for (int i = 0; i < 4; ++i)
        crowd_lists.push_back(std::make_unique<Background>(concat(as_uid(crowd(i)), flood(bus, {"lists", "30", "16", "4"}))));
    // All 16 connections identified and busy, and the refusals of the calls each sent before the
    // bus had said who it was (answered 5 s later, not held back) sent.
    REQUIRE(wait_stat(root, "UnprivilegedClients", 16) >= 16);
    REQUIRE(wait_stat_until(root, "DeferredRefusals", [](std::uint64_t v) { return v == 0; }) == std::uint64_t{0});
    const auto held0 = wait_stat(root, "CallsHeldForBus", 0);
    ::kill(d.pid(), SIGSTOP);
    std::this_thread::sleep_for(300ms);  // the crowd's windows fill: their calls wait for pidnsd
    ::kill(bus.pid(), SIGSTOP);
    ::kill(d.pid(), SIGCONT);
    std::uint64_t most = 0;
    for (int i = 0; i < 10; ++i) {  // pidnsd answers what it has read, for 0.5 s
        std::this_thread::sleep_for(50ms);
        most = std::max(most, max_unix_send_queue(d.pid()));
    }
    ::kill(bus.pid(), SIGCONT);
    std::cout << "pidnsd's largest unread send queue while the bus was stopped: " << most << " bytes\n";
    // 16 KiB, then the one reply that crossed it (a few hundred bytes here), and a margin.
    CHECK(most <= 24 * 1024);
    CHECK(most > 0);  // it did answer some
    CHECK(wait_stat(root, "CallsHeldForBus", held0 + 1) > held0);
    // Then the bus read on, and the calls went on being answered; the only refusals are the quota's
    // for the calls each connection sends before the bus has said who it is.
    for (auto& f : crowd_lists) {
        f->stop(SIGTERM);
        INFO(f->output());
        CHECK(field(f->output(), "ok") > 64);
        CHECK(field(f->output(), "errors") == field(f->output(), "limits"));
    }
    CHECK(busctl_call(bus.address(), "TranslatePid", "utt", {std::to_string(getpid()), "0", "0"}).at(0) ==
          static_cast<std::uint32_t>(getpid()));
}
