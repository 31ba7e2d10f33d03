// bench_polkit: what an unprivileged flood through pidnsd costs polkitd, and every other service's
// authorization checks with it (issue 29). A private bus it starts itself (root) with a real polkitd
// (/usr/lib/polkit-1/polkitd), pidnsd's action file installed and, by default, a rules file that
// names org.pidns.inspect (granting it to "daemon" only: pidnsd must decide whether to ask). Idle,
// then while 4 clients of nobody's and a crowd of uids call TranslatePid on 300 distinct root-owned
// processes per fresh connection (`pidns-flood denied`): root's `pkcheck --action-id
// org.freedesktop.policykit.exec --process PID` round trips (p50/p99/max) and polkitd's CPU over each
// window, the denials the flooders got, and pidnsd's PolkitAsked (when it counts them). --pidnsd PATH
// runs another build (main's: "before"). The host's /etc/polkit-1/rules.d/49-pidns-bench.rules and
// /usr/share/polkit-1/actions/org.pidns.policy are put back as they were. Never fails on a missed target.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "bench_bus.h"
#include "polkit.h"

#ifndef PIDNS_FLOOD_PATH
#error "PIDNS_FLOOD_PATH must name the pidns-flood binary (tests/support/bus_flood.cpp)"
#endif

namespace {

using namespace bench;
namespace fs = std::filesystem;

constexpr const char* kRulesFile = "/etc/polkit-1/rules.d/49-pidns-bench.rules";

struct Options {
    double seconds = 30;     // the flood
    int clients = 4;         // of nobody's
    int crowd = 8;           // one client each, uids 2301...
    double gap_ms = 5;       // between a flooder's calls
    int idle_checks = 60;    // pkchecks before the flood
    bool rules = true;       // a rules file that names the action
    std::string pidnsd;      // another build's
};

struct Window {
    std::vector<double> ms;
    double polkitd_cpu = 0, pidnsd_cpu = 0;  // share of a core
    double p(double q) { return quantile(ms, q); }
    double max() { return ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()); }
};

double pkcheck_ms(const std::string& address) {
    const auto t0 = Clock::now();
    const pid_t p = start_program({"env", "DBUS_SYSTEM_BUS_ADDRESS=" + address, "pkcheck", "--action-id",
                                   "org.freedesktop.policykit.exec", "--process", std::to_string(::getpid())},
                                  -1);
    int st = 0;
    ::waitpid(p, &st, 0);
    return us_since(t0, Clock::now()) / 1e3;
}

std::uint64_t stat_or_zero(Client& c, const char* key) {
    auto m = c.GetStatistics();
    auto it = m.find(key);
    return it != m.end() && it->second.containsValueOfType<std::uint64_t>() ? it->second.get<std::uint64_t>() : 0;
}

int run(const Options& o, const std::string& cmdline) {
    utsname u{};
    ::uname(&u);
    if (!fs::exists(pidns::harness::kPolkitdBin)) {
        std::printf("no %s (package polkitd)\n", pidns::harness::kPolkitdBin);
        return 1;
    }
    pidns::harness::InstalledFile action(pidns::harness::kPolkitActionFile, read_file(pidns::harness::pidns_policy_file()));
    std::unique_ptr<pidns::harness::InstalledFile> rules;
    if (o.rules)
        rules = std::make_unique<pidns::harness::InstalledFile>(kRulesFile,
                                                                pidns::harness::inspect_rule("subject.user == \"daemon\""));
    std::vector<std::uint32_t> crowd;
    for (int i = 0; i < o.crowd; ++i) crowd.push_back(2301 + static_cast<std::uint32_t>(i));
    PrivateBus b;
    b.bus_users = crowd;
    if (!o.pidnsd.empty()) b.pidnsd_path = o.pidnsd;
    b.start();
    pidns::harness::Polkitd polkitd(*b.bus);
    // Root's processes: 64 distinct targets the kernel refuses to every flooder.
    std::vector<pid_t> targets;
    std::string list;
    for (int i = 0; i < 64; ++i) {
        targets.push_back(start_program({"sleep", "3600"}, -1));
        list += (list.empty() ? "" : ",") + std::to_string(targets.back());
    }
    ::usleep(300000);

    std::printf("pidnsd bench_polkit: %s\n", cmdline.c_str());
    std::printf("kernel %s %s, %u cpus; date %s, load average %s\n", u.sysname, u.release, std::thread::hardware_concurrency(),
                now_text().c_str(), loadavg().c_str());
    std::printf("daemon %s (version %s); polkitd %s; rules file naming org.pidns.inspect: %s\n", b.pidnsd_path.c_str(),
                b.c->Version().c_str(), pidns::harness::kPolkitdBin, o.rules ? kRulesFile : "none");
    std::printf("flood  %d x nobody + %d uids (2301...): %s ADDRESS denied %g 300 %g PIDS (64 root processes)\n", o.clients,
                o.crowd, PIDNS_FLOOD_PATH, o.seconds, o.gap_ms);
    std::printf("probe  root: pkcheck --action-id org.freedesktop.policykit.exec --process PID, 30 ms apart\n\n");
    std::fflush(stdout);

    Window idle;
    {
        const double p0 = cpu_us(polkitd.pid()), d0 = cpu_us(g_pidnsd);
        const auto w0 = Clock::now();
        for (int i = 0; i < o.idle_checks; ++i) {
            idle.ms.push_back(pkcheck_ms(b.address));
            ::usleep(30000);
        }
        const double wall = us_since(w0, Clock::now());
        idle.polkitd_cpu = (cpu_us(polkitd.pid()) - p0) / wall;
        idle.pidnsd_cpu = (cpu_us(g_pidnsd) - d0) / wall;
    }
    const std::uint64_t asked0 = stat_or_zero(*b.c, "PolkitAsked");
    std::vector<std::pair<pid_t, int>> flooders;
    char secs[32], gap[32];
    std::snprintf(secs, sizeof secs, "%g", o.seconds);
    std::snprintf(gap, sizeof gap, "%g", o.gap_ms);
    auto flood = [&](std::uint32_t uid) {
        const int out = ::memfd_create("bench-polkit", MFD_CLOEXEC);
        const pid_t p = start_program(
            pidns::harness::concat(pidns::harness::as_uid(uid), {PIDNS_FLOOD_PATH, b.address, "denied", secs, "300", gap, list}), out);
        flooders.emplace_back(p, out);
    };
    for (int i = 0; i < o.clients; ++i) flood(65534);
    for (auto uid : crowd) flood(uid);
    Window busy;
    {
        const double p0 = cpu_us(polkitd.pid()), d0 = cpu_us(g_pidnsd);
        const auto w0 = Clock::now();
        const auto until = w0 + std::chrono::duration<double>(o.seconds);
        while (Clock::now() < until) {
            busy.ms.push_back(pkcheck_ms(b.address));
            ::usleep(30000);
        }
        const double wall = us_since(w0, Clock::now());
        busy.polkitd_cpu = (cpu_us(polkitd.pid()) - p0) / wall;
        busy.pidnsd_cpu = (cpu_us(g_pidnsd) - d0) / wall;
    }
    std::uint64_t denied = 0;
    for (auto& [p, out] : flooders) {
        int st = 0;
        ::waitpid(p, &st, 0);
        std::string s;
        ::lseek(out, 0, SEEK_SET);
        char buf[4096];
        for (ssize_t k; (k = ::read(out, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(k));
        ::close(out);
        const auto at = s.find("AccessDenied=");
        if (at != std::string::npos) denied += std::strtoull(s.c_str() + at + 13, nullptr, 10);
    }
    const std::uint64_t asked = stat_or_zero(*b.c, "PolkitAsked") - asked0;
    const bool counts = b.c->GetStatistics().count("PolkitAsked") > 0;

    std::printf("%-6s %6s %9s %9s %9s %9s %9s %12s %14s\n", "", "checks", "p50 ms", "p99 ms", "max ms", "polkitd%", "pidnsd%",
                "denied/s", "polkit asked");
    auto row = [&](const char* name, Window& w, double denied_s, const std::string& asked_text) {
        std::printf("%-6s %6zu %9.1f %9.1f %9.1f %9.1f %9.1f %12.0f %14s\n", name, w.ms.size(), w.p(0.5), w.p(0.99), w.max(),
                    w.polkitd_cpu * 100, w.pidnsd_cpu * 100, denied_s, asked_text.c_str());
    };
    row("idle", idle, 0, "-");
    row("flood", busy, static_cast<double>(denied) / o.seconds,
        counts ? std::to_string(asked) + " (" + std::to_string(static_cast<double>(asked) / o.seconds).substr(0, 5) + "/s)"
               : std::string("(not counted)"));
    const bool p99_ok = busy.p(0.99) <= 2 * idle.p(0.99), max_ok = busy.max() < 1000;
    std::printf("\ntargets: pkcheck p99 under the flood <= 2x idle: %s (%.1fx); no check over 1 s: %s\n", met(p99_ok),
                idle.p(0.99) > 0 ? busy.p(0.99) / idle.p(0.99) : 0, met(max_ok));
    std::printf("load average at the end: %s\n", loadavg().c_str());
    std::fflush(stdout);
    for (auto t : targets) ::kill(t, SIGKILL);
    for (auto t : targets) ::waitpid(t, nullptr, 0);
    polkitd.stop();
    b.cleanup();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    const std::string cmdline = command_line(argc, argv);
    for (int i = 1; i < argc; ++i) {
        const auto opt = next_option(argc, argv, i, {"--no-rules"});
        const std::string a = opt ? opt->name : "", v = opt ? opt->value : "";
        if (a == "--no-rules") o.rules = false;
        else if (a == "--seconds") o.seconds = std::max(2.0, std::atof(v.c_str()));
        else if (a == "--clients") o.clients = std::max(0, std::atoi(v.c_str()));
        else if (a == "--crowd") o.crowd = std::max(0, std::atoi(v.c_str()));
        else if (a == "--gap-ms") o.gap_ms = std::max(0.0, std::atof(v.c_str()));
        else if (a == "--idle-checks") o.idle_checks = std::max(5, std::atoi(v.c_str()));
        else if (a == "--pidnsd") o.pidnsd = v;
        else {
            std::puts("usage: bench_polkit [--seconds S (30)] [--clients N (4)] [--crowd N (8)] [--gap-ms MS (5)]\n"
                      "                    [--idle-checks N (60)] [--no-rules] [--pidnsd PATH (this build's)]\n"
                      "  root; starts its own dbus-daemon, polkitd and pidnsd; installs the action (and a rules) file for the run");
            return 2;
        }
    }
    return guarded_main([&] { return run(o, cmdline); });
}
