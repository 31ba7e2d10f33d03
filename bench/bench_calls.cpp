// bench_calls: what one call costs pidnsd (issue 28): its CPU per call and the round trip, by method and caller.
//
// For Peer.Ping, TranslatePid(own pid, 0, 0), TranslatePids(1000 x own pid), ListNamespaces(""),
// GetProcess(own pid) and DescribeProcess(own pid), each called N times in a row on one raw
// sd-bus connection, by a root caller, by nobody and by the root of a user namespace nobody made:
// pidnsd's CPU per call (its main thread's /proc/PID/schedstat run time over the N calls: the
// thread that answers calls) and the round trip's median and p99. Then Ping and TranslatePid
// alternating on one connection (the interleaved client): TranslatePid median / Ping median.
// Beside Ping, a second floor: Properties.Get of the constant Version property, which sd-bus
// dispatches to the object and sdbus-c++ to its getter as it does a method call (Ping is answered
// by sd-bus before any object is looked up), with no caller check, queue or model behind it.
// Each caller is a child process of the bench; `--pidnsd PATH` adds another build's pidnsd, run
// the same way, in a column beside this one (e.g. main's, to see a change).
#include <grp.h>
#include <sched.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include <array>

#include "bench_bus.h"

using namespace bench;

namespace {

// The first round (bench/README.md, bench_dbus, 2026-11-23 / 9e5ac88): pidnsd CPU per call as
// root, and TranslatePid / Ping round-trip medians.
constexpr double kRound1PingCpu = 7.8, kRound1TranslateCpu = 8.8;
constexpr const char* kRound1Ratio = "1.09-1.12";

enum Method { kPing, kVersion, kTranslatePid, kTranslatePids, kListNamespaces, kGetProcess, kDescribeProcess, kMethods };
constexpr std::array<const char*, kMethods> kMethodNames = {"Peer.Ping", "Get(Version)", "TranslatePid", "TranslatePids(1000)",
                                                            "ListNamespaces", "GetProcess", "DescribeProcess"};
enum Role { kRoot, kNobody, kUsernsRoot, kRoles };
constexpr std::array<const char*, kRoles> kRoleNames = {"root", "nobody", "userns root"};

struct Options {
    int reps = 3;
    int calls = 2000;        // per row for the cheap calls (a tenth for TranslatePids and ListNamespaces)
    int rounds = 4000;       // interleaved Ping/TranslatePid pairs per rep
    std::string baseline;    // another pidnsd to run beside this build's
    std::string roles = "root,nobody,userns";  // which callers
    std::string methods;                       // which rows (by name, comma-separated; empty: all)
};

bool wanted(const Options& opt, int m) {
    return m == kPing || m == kVersion || opt.methods.empty() ||  // the floors always: every CPU figure is read beside them
           ("," + opt.methods + ",").find(std::string(",") + kMethodNames[static_cast<std::size_t>(m)] + ",") != std::string::npos;
}

// What a caller measured, sent back through a pipe (plain data).
struct Cell {
    double cpu_us = 0;   // pidnsd main-thread CPU per call, median over reps
    double med_us = 0;   // round trip, median over all calls
    double p99_us = 0;
    long errors = 0;
};
constexpr int kMaxReps = 9;
struct RoleResult {
    Cell cells[kMethods];
    int reps = 0;
    double ratio[kMaxReps] = {};            // interleaved: TranslatePid median / Ping median, per rep
    double inter_tp_med = 0, inter_ping_med = 0, inter_tp_p99 = 0, inter_ping_p99 = 0;
    double inter_cpu_tp = 0, inter_cpu_ping = 0;  // not measurable apart when interleaved: unused
    char error[256] = {};
    bool ok = false;
};

// pidnsd's main thread's run time (ns) from an open /proc/PID/schedstat.
double schedstat_us(int fd) {
    char buf[128];
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = 0;
    return std::strtod(buf, nullptr) / 1e3;
}

// One method call on `bus`; false (and `err` set) on an error reply.
bool call(sd_bus* bus, Method m, std::uint32_t self, const std::vector<std::uint32_t>& batch, std::string& err) {
    sd_bus_message* msg = nullptr;
    const bool ping = m == kPing;
    const char* method = ping ? "Ping"
                         : m == kVersion        ? "Get"
                         : m == kTranslatePid   ? "TranslatePid"
                         : m == kTranslatePids  ? "TranslatePids"
                         : m == kListNamespaces ? "ListNamespaces"
                         : m == kGetProcess     ? "GetProcess"
                                                : "DescribeProcess";
    int r = sd_bus_message_new_method_call(bus, &msg, "org.pidns", "/org/pidns",
                                           ping              ? "org.freedesktop.DBus.Peer"
                                           : m == kVersion ? "org.freedesktop.DBus.Properties"
                                                           : "org.pidns.Manager1",
                                           method);
    if (r >= 0) switch (m) {
        case kPing: break;
        case kVersion: r = sd_bus_message_append(msg, "ss", "org.pidns.Manager1", "Version"); break;
        case kTranslatePid: r = sd_bus_message_append(msg, "utt", self, std::uint64_t{0}, std::uint64_t{0}); break;
        case kTranslatePids:
            r = sd_bus_message_append_array(msg, 'u', batch.data(), batch.size() * sizeof(std::uint32_t));
            if (r >= 0) r = sd_bus_message_append(msg, "tt", std::uint64_t{0}, std::uint64_t{0});
            break;
        case kListNamespaces: r = sd_bus_message_append(msg, "s", ""); break;
        default: r = sd_bus_message_append(msg, "u", self); break;
        }
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    if (r >= 0) r = sd_bus_call(bus, msg, 30'000'000, &e, &reply);
    if (r < 0 && err.empty())
        err = std::string(method) + ": " + (e.name ? e.name : std::strerror(-r)) + (e.message ? std::string(" (") + e.message + ")" : "");
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
    sd_bus_message_unref(msg);
    return r >= 0;
}

bool become(Role role, std::string& err) {
    if (role == kRoot) return true;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) {
        err = std::string("becoming nobody: ") + std::strerror(errno);
        return false;
    }
    ::prctl(PR_SET_DUMPABLE, 1);  // its /proc/self files are its own again (setresuid made them root's)
    if (role == kNobody) return true;
    if (::unshare(CLONE_NEWUSER) != 0) {
        err = std::string("unshare(CLONE_NEWUSER): ") + std::strerror(errno);
        return false;
    }
    for (auto [file, text] : {std::pair{"/proc/self/setgroups", "deny"}, std::pair{"/proc/self/uid_map", "0 65534 1"},
                              std::pair{"/proc/self/gid_map", "0 65534 1"}}) {
        const int fd = ::open(file, O_WRONLY | O_CLOEXEC);
        const bool ok = fd >= 0 && ::write(fd, text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text));
        if (fd >= 0) ::close(fd);
        if (!ok) {
            err = std::string("writing ") + file + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

// The caller: in a child that became `role`; fills `out`.
void run_caller(Role role, const std::string& address, int schedstat_fd, const Options& opt, RoleResult& out) {
    std::string err;
    if (!become(role, err)) {
        std::snprintf(out.error, sizeof out.error, "%s", err.c_str());
        return;
    }
    sd_bus* bus = nullptr;
    if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address.c_str()) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
        sd_bus_start(bus) < 0) {
        std::snprintf(out.error, sizeof out.error, "cannot connect to %s", address.c_str());
        return;
    }
    const auto self = static_cast<std::uint32_t>(::getpid());
    const std::vector<std::uint32_t> batch(1000, self);
    out.reps = std::min(opt.reps, kMaxReps);
    std::vector<double> cpu[kMethods], lat[kMethods];
    for (int m = 0; m < kMethods; ++m)  // warm-up, and identification
        for (int i = 0; i < 20; ++i) (void)call(bus, static_cast<Method>(m), self, batch, err);
    err.clear();
    std::vector<double> inter_tp, inter_ping;
    for (int rep = 0; rep < out.reps; ++rep) {
        for (int k = 0; k < kMethods; ++k) {
            const auto m = static_cast<Method>((k + rep) % kMethods);  // rotate the order between reps
            if (!wanted(opt, m)) continue;
            const int n = m == kTranslatePids || m == kListNamespaces ? std::max(1, opt.calls / 10) : opt.calls;
            const double c0 = schedstat_us(schedstat_fd);
            for (int i = 0; i < n; ++i) {
                const auto t0 = Clock::now();
                if (!call(bus, m, self, batch, err)) ++out.cells[m].errors;
                lat[m].push_back(us_since(t0, Clock::now()));
            }
            cpu[m].push_back((schedstat_us(schedstat_fd) - c0) / n);
        }
        std::vector<double> tp, ping;
        for (int i = 0; i < opt.rounds; ++i) {
            const bool tp_first = i % 2 == 0;
            for (int j = 0; j < 2; ++j) {
                const bool is_tp = (j == 0) == tp_first;
                const auto t0 = Clock::now();
                if (!call(bus, is_tp ? kTranslatePid : kPing, self, batch, err)) ++out.cells[is_tp ? kTranslatePid : kPing].errors;
                (is_tp ? tp : ping).push_back(us_since(t0, Clock::now()));
            }
        }
        out.ratio[rep] = median(tp) / median(ping);
        inter_tp.insert(inter_tp.end(), tp.begin(), tp.end());
        inter_ping.insert(inter_ping.end(), ping.begin(), ping.end());
    }
    for (int m = 0; m < kMethods; ++m) {
        out.cells[m].cpu_us = median(cpu[m]);
        out.cells[m].med_us = median(lat[m]);
        out.cells[m].p99_us = quantile(lat[m], 0.99);
    }
    out.inter_tp_med = median(inter_tp);
    out.inter_ping_med = median(inter_ping);
    out.inter_tp_p99 = quantile(inter_tp, 0.99);
    out.inter_ping_p99 = quantile(inter_ping, 0.99);
    if (!err.empty()) std::snprintf(out.error, sizeof out.error, "%s", err.c_str());
    out.ok = true;
    sd_bus_flush_close_unref(bus);
}

RoleResult measure(Role role, const std::string& address, const Options& opt) {
    RoleResult r;
    const int stat_fd = ::open(("/proc/" + std::to_string(g_pidnsd) + "/schedstat").c_str(), O_RDONLY | O_CLOEXEC);
    int pipefd[2];
    if (stat_fd < 0 || ::pipe2(pipefd, O_CLOEXEC) != 0) {
        std::snprintf(r.error, sizeof r.error, "cannot open pidnsd's schedstat");
        return r;
    }
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child == 0) {
        die_with_parent(parent, SIGKILL);
        ::close(pipefd[0]);
        RoleResult out;
        run_caller(role, address, stat_fd, opt, out);
        const char* p = reinterpret_cast<const char*>(&out);
        std::size_t left = sizeof out;
        while (left > 0) {
            const ssize_t n = ::write(pipefd[1], p, left);
            if (n <= 0) break;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        ::_exit(0);
    }
    ::close(pipefd[1]);
    char* p = reinterpret_cast<char*>(&r);
    std::size_t got = 0;
    while (got < sizeof r) {
        const ssize_t n = ::read(pipefd[0], p + got, sizeof r - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got != sizeof r) {
        r = RoleResult{};
        std::snprintf(r.error, sizeof r.error, "the %s caller died", kRoleNames[role]);
    }
    ::close(pipefd[0]);
    ::close(stat_fd);
    ::waitpid(child, nullptr, 0);
    return r;
}

using Results = std::array<RoleResult, kRoles>;

Results run_daemon(const std::string& pidnsd, const Options& opt) {
    PrivateBus b;
    b.pidnsd_path = pidnsd;
    b.start();
    ::chmod(b.tmp.c_str(), 0755);  // nobody reaches the bus socket through it
    std::printf("pidnsd %s (pid %d), %u processes indexed\n", pidnsd.c_str(), static_cast<int>(g_pidnsd), b.processes());
    Results out;
    constexpr std::array<const char*, kRoles> kKeys = {"root", "nobody", "userns"};
    for (int role = 0; role < kRoles; ++role)
        if (("," + opt.roles + ",").find(std::string(",") + kKeys[static_cast<std::size_t>(role)] + ",") != std::string::npos)
            out[static_cast<std::size_t>(role)] = measure(static_cast<Role>(role), b.address, opt);
    for (const auto& l : b.daemon_complaints()) std::printf("pidnsd: %s\n", l.c_str());
    b.cleanup();
    return out;
}

void usage() {
    std::fprintf(stderr, "usage: bench_calls [--reps N] [--calls N] [--rounds N] [--roles root,nobody,userns]\n"
                         "                   [--methods Peer.Ping,TranslatePid,...] [--pidnsd PATH]\n"
                         "  --pidnsd PATH  also run another build's pidnsd and print it beside this one\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage();
        if (a == "--reps") opt.reps = std::clamp(std::atoi(argv[++i]), 1, kMaxReps);
        else if (a == "--calls") opt.calls = std::max(10, std::atoi(argv[++i]));
        else if (a == "--rounds") opt.rounds = std::max(10, std::atoi(argv[++i]));
        else if (a == "--pidnsd") opt.baseline = argv[++i];
        else if (a == "--roles") opt.roles = argv[++i];
        else if (a == "--methods") opt.methods = argv[++i];
        else usage();
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_calls runs as root (it starts pidnsd and callers as root, nobody, a user namespace's root)\n");
        return 2;
    }
    install_signal_handlers();
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("bench_calls: %s, load %s, %d reps of %d calls per row (TranslatePids/ListNamespaces: %d), %d interleaved rounds\n",
                now_text().c_str(), loadavg().c_str(), opt.reps, opt.calls, std::max(1, opt.calls / 10), opt.rounds);
    std::vector<std::pair<std::string, Results>> runs;
    runs.emplace_back("this build", run_daemon(PIDNSD_BIN, opt));
    if (!opt.baseline.empty()) runs.emplace_back("--pidnsd", run_daemon(opt.baseline, opt));

    auto measured = [&](std::size_t role) {  // not left out by --roles
        for (const auto& [name, res] : runs)
            if (res[role].ok || res[role].error[0]) return true;
        return false;
    };
    for (int role = 0; role < kRoles; ++role) {
        if (!measured(static_cast<std::size_t>(role))) continue;
        std::printf("\ncaller: %s\n", kRoleNames[static_cast<std::size_t>(role)]);
        std::printf("%-22s", "");
        for (const auto& [name, res] : runs) std::printf(" | %-36s", name.c_str());
        std::printf("\n%-22s", "");
        for (std::size_t k = 0; k < runs.size(); ++k) std::printf(" | %8s %8s %8s %9s", "CPU us", "med us", "p99 us", "CPU-Ping");
        std::printf("\n");
        for (const auto& [name, res] : runs)
            if (!res[static_cast<std::size_t>(role)].ok || res[static_cast<std::size_t>(role)].error[0])
                std::printf("  (%s: %s)\n", name.c_str(), res[static_cast<std::size_t>(role)].error);
        for (int m = 0; m < kMethods; ++m) {
            if (!wanted(opt, static_cast<Method>(m))) continue;
            std::printf("%-22s", kMethodNames[static_cast<std::size_t>(m)]);
            for (const auto& [name, res] : runs) {
                const RoleResult& r = res[static_cast<std::size_t>(role)];
                const Cell& c = r.cells[m];
                std::printf(" | %8.1f %8.1f %8.1f %+9.1f", c.cpu_us, c.med_us, c.p99_us, c.cpu_us - r.cells[kPing].cpu_us);
                if (c.errors) std::printf(" (%ld errors)", c.errors);
            }
            std::printf("\n");
        }
        std::printf("%-22s", "interleaved med/p99");
        for (const auto& [name, res] : runs) {
            const RoleResult& r = res[static_cast<std::size_t>(role)];
            std::printf(" | TP %.1f/%.1f Ping %.1f/%.1f us", r.inter_tp_med, r.inter_tp_p99, r.inter_ping_med, r.inter_ping_p99);
        }
        std::printf("\n%-22s", "TP/Ping med, per rep");
        for (const auto& [name, res] : runs) {
            const RoleResult& r = res[static_cast<std::size_t>(role)];
            std::string s;
            for (int i = 0; i < r.reps; ++i) {
                char b[16];
                std::snprintf(b, sizeof b, "%s%.2f", i ? " " : "", r.ratio[i]);
                s += b;
            }
            std::printf(" | %-36s", s.c_str());
        }
        std::printf("\n");
    }

    std::printf("\nfirst round (bench/README.md, bench_dbus, root): pidnsd CPU per call TranslatePid %.1f / Ping %.1f us "
                "(%+.1f), round-trip ratio %s\n",
                kRound1TranslateCpu, kRound1PingCpu, kRound1TranslateCpu - kRound1PingCpu, kRound1Ratio);
    const Results& now = runs.front().second;
    // pidnsd CPU per call of `m` beyond `floor`'s, for caller `r`.
    auto beyond = [&](Role r, Method m, Method floor) { return now[r].cells[m].cpu_us - now[r].cells[floor].cpu_us; };
    auto extra = [&](Role r) { return beyond(r, kTranslatePid, kPing); };
    int ratios_met = 0, ratios = 0;
    for (int i = 0; i < now[kRoot].reps; ++i, ++ratios) ratios_met += now[kRoot].ratio[i] <= 1.2;
    std::string targets = "targets (this build):";
    char b[160];
    if (now[kRoot].ok) {
        std::snprintf(b, sizeof b, " TranslatePid/Ping median <= 1.2 (root, interleaved): %d of %d reps %s;", ratios_met,
                      ratios, met(ratios_met == ratios));
        targets += b;
    }
    targets += " CPU TranslatePid - Ping:";
    if (now[kRoot].ok) {
        std::snprintf(b, sizeof b, " root %+.1f us (<= 5 %s)", extra(kRoot), met(extra(kRoot) <= 5));
        targets += b;
    }
    if (now[kNobody].ok) {
        std::snprintf(b, sizeof b, " nobody %+.1f us (<= 10 %s)", extra(kNobody), met(extra(kNobody) <= 10));
        targets += b;
    }
    if (now[kUsernsRoot].ok) {
        std::snprintf(b, sizeof b, " userns root %+.1f us", extra(kUsernsRoot));
        targets += b;
    }
    std::printf("%s\n", targets.c_str());
    // Where TranslatePid's extra goes: the dispatch every method call pays (Get(Version) - Ping), and
    // pidnsd's own work (caller check, quotas, queue, translation: TranslatePid - Get(Version)).
    std::string split = "split (this build): dispatch Get(Version) - Ping / pidnsd's work TranslatePid - Get(Version):";
    for (Role r : {kRoot, kNobody, kUsernsRoot}) {
        if (!now[r].ok) continue;
        std::snprintf(b, sizeof b, " %s %+.1f / %+.1f us;", kRoleNames[r], beyond(r, kVersion, kPing),
                      beyond(r, kTranslatePid, kVersion));
        split += b;
    }
    std::printf("%s\n", split.c_str());
    return 0;
}
