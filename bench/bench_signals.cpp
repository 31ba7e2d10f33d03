// bench_signals: the non-reading-subscriber storm (issue 24) on a private bus it starts itself (root).
// U unprivileged uids (distinct, known to the bus only: tests/harness/bus_users.h) each keep S
// subscribed connections that never read (`pidns-flood noread`) and make user+net+uts namespaces
// that live a second, 20 a second (`unshare -Urnu sleep 1 &`), for T seconds; two subscribers that read keep a mirror of what
// they may see (`pidns-signal-listener --mirror`): root, and one more uid that makes namespaces
// too (an honest user beside the crowd). Printed side by
// side: dbus-daemon's RSS before the crowd, with it subscribed, at its peak and at the end (the
// crowd still connected); what the bus holds for each non-reading subscriber (Debug.Stats
// GetConnectionStats: OutgoingBytes, OutgoingMessages), max and total; pidnsd's SignalsSent,
// Resyncs, Pings; each reader's completeness (its mirror against a fresh listing); root's
// TranslatePid during the storm. Targets: <= 1 MiB held per non-reading subscriber, <= 64 MiB of
// dbus-daemon RSS growth in all, readers complete. --pidnsd PATH runs another build (e.g. main's)
// for the "before" column. Never fails on a missed target.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "bench_bus.h"

#ifndef PIDNS_FLOOD_PATH
#error "PIDNS_FLOOD_PATH must name the pidns-flood binary (tests/support/bus_flood.cpp)"
#endif
#ifndef PIDNS_LISTENER_PATH
#error "PIDNS_LISTENER_PATH must name pidns-signal-listener (tests/support/signal_listener.cpp)"
#endif

namespace {

using namespace bench;

struct Options {
    int uids = 8;
    std::uint32_t first_uid = 2001;
    int subs = 16;          // non-reading subscribers per uid
    double seconds = 20;    // storm length
    std::string pidnsd;     // another pidnsd binary (default: this build's)
};

long rss_kb(pid_t pid) {
    const auto status = read_file("/proc/" + std::to_string(pid) + "/status");
    const auto at = status.find("VmRSS:");
    return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + 6, nullptr, 10);
}

// A program whose output goes to a memfd, read when it has ended.
struct Spawned {
    pid_t pid = 0;
    int out = -1;
    std::string output() const {
        std::string s;
        ::lseek(out, 0, SEEK_SET);
        char buf[4096];
        for (ssize_t k; (k = ::read(out, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(k));
        return s;
    }
};

Spawned spawn(const std::vector<std::string>& argv) {
    Spawned s;
    s.out = ::memfd_create("bench-signals", MFD_CLOEXEC);
    s.pid = start_program(argv, s.out);
    return s;
}

int wait_for(Spawned& s) {
    int st = 0;
    ::waitpid(s.pid, &st, 0);
    s.pid = 0;
    return st;
}

std::vector<std::string> as_uid(std::uint32_t uid, std::vector<std::string> argv) {
    return pidns::harness::concat(pidns::harness::as_uid(uid), argv);
}

std::uint64_t stat_u64(Client& c, const char* key) {
    auto m = c.GetStatistics();
    auto it = m.find(key);
    return it != m.end() && it->second.containsValueOfType<std::uint64_t>() ? it->second.get<std::uint64_t>() : 0;
}

// What the bus holds for each connection of the given uids: (OutgoingBytes, OutgoingMessages).
std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> held_by_bus(sdbus::IProxy& bus, const std::set<std::uint32_t>& uids,
                                                                           const std::set<std::string>& skip) {
    std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> out;
    std::vector<std::string> names;
    bus.callMethod("ListNames").onInterface("org.freedesktop.DBus").storeResultsTo(names);
    for (const auto& n : names) {
        if (n.empty() || n[0] != ':' || skip.count(n)) continue;
        try {
            std::uint32_t uid = 0;
            bus.callMethod("GetConnectionUnixUser").onInterface("org.freedesktop.DBus").withArguments(n).storeResultsTo(uid);
            if (!uids.count(uid)) continue;
            std::map<std::string, sdbus::Variant> st;
            bus.callMethod("GetConnectionStats").onInterface("org.freedesktop.DBus.Debug.Stats").withArguments(n).storeResultsTo(st);
            out[n] = {st.at("OutgoingBytes").get<std::uint32_t>(), st.at("OutgoingMessages").get<std::uint32_t>()};
        } catch (const sdbus::Error&) {
            // gone meanwhile
        }
    }
    return out;
}

// "mirror added A removed R resyncs S listed L missing M extra E" -> its values.
std::map<std::string, long> mirror_line(const std::string& out) {
    std::map<std::string, long> v;
    const auto at = out.find("mirror ");
    if (at == std::string::npos) return v;
    std::istringstream in(out.substr(at + 7, out.find('\n', at) - at - 7));
    std::string k;
    long n = 0;
    while (in >> k >> n) v[k] = n;
    return v;
}

int run(const Options& o, const std::string& cmdline) {
    utsname u{};
    ::uname(&u);
    std::set<std::uint32_t> crowd;
    for (int i = 0; i < o.uids; ++i) crowd.insert(o.first_uid + static_cast<std::uint32_t>(i));
    const std::uint32_t honest = o.first_uid + static_cast<std::uint32_t>(o.uids);
    PrivateBus b;
    b.bus_users.assign(crowd.begin(), crowd.end());
    b.bus_users.push_back(honest);
    if (!o.pidnsd.empty()) b.pidnsd_path = o.pidnsd;
    b.start();
    std::printf("pidnsd bench_signals: %s\n", cmdline.c_str());
    std::printf("kernel %s %s, %u cpus; date %s, load average %s\n", u.sysname, u.release, std::thread::hardware_concurrency(),
                now_text().c_str(), loadavg().c_str());
    std::printf("daemon %s (version %s)\n", b.pidnsd_path.c_str(), b.c->Version().c_str());
    std::printf("crowd  %d uids (%u..%u) x %d subscribers that never read (%s ADDRESS noread %d %g), each uid\n"
                "       making namespaces for %g s (setpriv ... sh -c 'while ...; do unshare -Urnu sleep 1 & sleep 0.05; done')\n",
                o.uids, o.first_uid, o.first_uid + static_cast<std::uint32_t>(o.uids) - 1, o.subs, PIDNS_FLOOD_PATH, o.subs,
                o.seconds + 30, o.seconds);
    std::printf("readers pidns-signal-listener --mirror as root and as uid %u, which makes namespaces too\n\n", honest);
    std::fflush(stdout);
    auto bus_proxy = sdbus::createProxy(b.c->connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");

    const long rss0 = rss_kb(g_dbus);
    const auto stats0 = std::make_tuple(stat_u64(*b.c, "SignalsSent"), stat_u64(*b.c, "Resyncs"), stat_u64(*b.c, "SignalPings"));
    std::vector<Spawned> noread;
    for (auto uid : crowd)
        noread.push_back(spawn(as_uid(uid, {PIDNS_FLOOD_PATH, b.address, "noread", std::to_string(o.subs),
                                            std::to_string(static_cast<int>(o.seconds) + 30)})));
    const std::size_t want = crowd.size() * static_cast<std::size_t>(o.subs);
    for (int i = 0; i < 3000 && stat_u64(*b.c, "Subscribers") < want; ++i) ::usleep(10000);
    const std::uint64_t subscribed = stat_u64(*b.c, "Subscribers");
    const long rss_subscribed = rss_kb(g_dbus);
    Spawned root_reader = spawn({PIDNS_LISTENER_PATH, b.address, "--mirror", std::to_string(static_cast<int>(o.seconds))});
    Spawned user_reader =
        spawn(as_uid(honest, {PIDNS_LISTENER_PATH, b.address, "--mirror", std::to_string(static_cast<int>(o.seconds))}));
    ::usleep(500000);  // subscribed and listed
    std::vector<Spawned> storms;
    char loop[256];
    std::snprintf(loop, sizeof loop,
                  "end=$(($(date +%%s) + %d)); n=0; while [ $(date +%%s) -lt $end ]; do unshare -Urnu sleep 1 & "
                  "n=$((n + 1)); sleep 0.05; done; wait; echo storm $n",
                  static_cast<int>(o.seconds));
    for (auto uid : crowd) storms.push_back(spawn(as_uid(uid, {"sh", "-c", loop})));
    storms.push_back(spawn(as_uid(honest, {"sh", "-c", loop})));
    // During the storm: dbus-daemon's peak RSS, and root's TranslatePid every 20 ms.
    long peak = rss_subscribed;
    const double d0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus);
    const auto w0 = Clock::now();
    std::vector<double> root_ms;
    const auto until = Clock::now() + std::chrono::duration<double>(o.seconds);
    const auto me = static_cast<std::uint32_t>(::getpid());
    while (Clock::now() < until) {
        const auto t0 = Clock::now();
        try {
            (void)b.c->TranslatePid(me, 0, 0);
            root_ms.push_back(us_since(t0, Clock::now()) / 1e3);
        } catch (const sdbus::Error&) {
            root_ms.push_back(1e9);
        }
        peak = std::max(peak, rss_kb(g_dbus));
        ::usleep(20000);
    }
    const double wall = us_since(w0, Clock::now());
    const double pidnsd_cpu = (cpu_us(g_pidnsd) - d0) / wall, bus_cpu = (cpu_us(g_dbus) - b0) / wall;
    long storms_done = 0;
    for (auto& s : storms) {
        wait_for(s);
        const auto out = s.output();
        const auto at = out.find("storm ");
        if (at != std::string::npos) storms_done += std::strtol(out.c_str() + at + 6, nullptr, 10);
    }
    const int root_rc = wait_for(root_reader), user_rc = wait_for(user_reader);
    (void)root_rc;
    (void)user_rc;
    const auto root_mirror = mirror_line(root_reader.output()), user_mirror = mirror_line(user_reader.output());
    peak = std::max(peak, rss_kb(g_dbus));
    const long rss_end = rss_kb(g_dbus);
    const auto held = held_by_bus(*bus_proxy, crowd, {});
    std::uint64_t held_max = 0, held_sum = 0, msgs_max = 0;
    for (const auto& [n, v] : held) {
        held_max = std::max<std::uint64_t>(held_max, v.first);
        held_sum += v.first;
        msgs_max = std::max<std::uint64_t>(msgs_max, v.second);
    }
    const std::uint64_t sent = stat_u64(*b.c, "SignalsSent") - std::get<0>(stats0);
    const std::uint64_t resyncs = stat_u64(*b.c, "Resyncs") - std::get<1>(stats0);
    const std::uint64_t pings = stat_u64(*b.c, "SignalPings") - std::get<2>(stats0);
    const std::uint64_t stalled = stat_u64(*b.c, "SubscribersStalled");
    std::sort(root_ms.begin(), root_ms.end());
    const double p50 = root_ms.empty() ? 0 : root_ms[root_ms.size() / 2];
    const double p99 = root_ms.empty() ? 0 : root_ms[std::min(root_ms.size() - 1, root_ms.size() * 99 / 100)];
    // They leave, saying what waits in their sockets (the kernel's share; the bus's is above).
    long sock_max = 0, sock_total = 0;
    for (auto& s : noread) {
        ::kill(s.pid, SIGTERM);
        wait_for(s);
        const auto out = s.output();
        const auto at = out.find("unread max ");
        if (at == std::string::npos) continue;
        char* end = nullptr;
        const long m = std::strtol(out.c_str() + at + 11, &end, 10);
        sock_max = std::max(sock_max, m);
        if (const char* t = std::strstr(end, "total ")) sock_total += std::strtol(t + 6, nullptr, 10);
    }

    std::printf("subscribed %llu of %zu non-readers; storm: %ld rounds of unshare -Urnu in all\n",
                static_cast<unsigned long long>(subscribed), want, storms_done);
    std::printf("dbus-daemon RSS: %ld kB before, %ld kB with the crowd subscribed, peak %ld kB, %ld kB at the end: +%ld kB\n",
                rss0, rss_subscribed, peak, rss_end, rss_end - rss0);
    std::printf("held by the bus for the %zu non-reading subscribers at the end: max %llu bytes (%llu messages), total %llu bytes\n",
                held.size(), static_cast<unsigned long long>(held_max), static_cast<unsigned long long>(msgs_max),
                static_cast<unsigned long long>(held_sum));
    std::printf("waiting in their sockets (the kernel's): max %ld bytes, total %ld bytes\n", sock_max, sock_total);
    std::printf("pidnsd: SignalsSent +%llu, Resyncs +%llu, SignalPings +%llu, SubscribersStalled %llu at the end\n",
                static_cast<unsigned long long>(sent), static_cast<unsigned long long>(resyncs),
                static_cast<unsigned long long>(pings), static_cast<unsigned long long>(stalled));
    auto show = [](const char* who, std::map<std::string, long> m) {
        const bool reported = m.count("listed") > 0;
        const bool ok = reported && m["missing"] == 0 && m["extra"] == 0;
        std::printf("reader %-8s added %ld removed %ld resyncs %ld, listed %ld at the end: missing %ld, extra %ld -> %s\n", who,
                    m["added"], m["removed"], m["resyncs"], m["listed"], m["missing"], m["extra"],
                    ok ? "complete" : reported ? "INCOMPLETE" : "NO REPORT");
        return ok;
    };
    for (const auto* r : {&root_reader, &user_reader})
        if (const auto out = r->output(); out.find("differences") != std::string::npos)
            std::printf("  %s", out.substr(out.find("differences")).c_str());
    const bool root_ok = show("root", root_mirror);
    const bool user_ok = show(("uid " + std::to_string(honest)).c_str(), user_mirror);
    if (!user_mirror.count("listed")) std::printf("  uid %u's reader said: %s\n", honest, user_reader.output().c_str());
    std::printf("root TranslatePid during the storm: p50 %.3f ms, p99 %.3f ms (%zu calls); CPU %% of a core over the "
                "storm: pidnsd %.0f, dbus-daemon %.0f\n",
                p50, p99, root_ms.size(), pidnsd_cpu * 100, bus_cpu * 100);
    const bool per_ok = held_max + static_cast<std::uint64_t>(sock_max) <= (1u << 20), total_ok = rss_end - rss0 <= 64 * 1024;
    std::printf("\ntargets: <= 1 MiB held per non-reading subscriber (bus + socket maxima): %s (%.2f MiB); dbus-daemon RSS "
                "growth <= 64 MiB: %s (%.1f MiB); readers complete: %s\n",
                met(per_ok), static_cast<double>(held_max + static_cast<std::uint64_t>(sock_max)) / (1 << 20), met(total_ok),
                (rss_end - rss0) / 1024.0,
                met(root_ok && user_ok));
    std::fflush(stdout);
    b.cleanup();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    const std::string cmdline = command_line(argc, argv);
    for (int i = 1; i < argc; ++i) {
        const auto opt = next_option(argc, argv, i);
        const std::string a = opt ? opt->name : "", v = opt ? opt->value : "";
        if (a == "--uids") o.uids = std::max(1, std::atoi(v.c_str()));
        else if (a == "--first-uid") o.first_uid = static_cast<std::uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
        else if (a == "--subs") o.subs = std::max(1, std::atoi(v.c_str()));
        else if (a == "--seconds") o.seconds = std::max(2.0, std::atof(v.c_str()));
        else if (a == "--pidnsd") o.pidnsd = v;
        else {
            std::puts("usage: bench_signals [--uids N (8)] [--first-uid UID (2001)] [--subs N (16)] [--seconds S (20)]\n"
                      "                     [--pidnsd PATH (this build's)]\n"
                      "  root; starts its own dbus-daemon (which alone knows the crowd's uids) and pidnsd");
            return 2;
        }
    }
    return guarded_main([&] { return run(o, cmdline); });
}
