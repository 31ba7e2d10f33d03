// bench_flood: root's TranslatePid latency while N unprivileged clients flood pidnsd (issue 11,
// "Benchmark"), on a private bus it starts itself. The flooders are tests/support/bus_flood.cpp
// (`pidns-flood`), run as nobody through setpriv; per row: kind of flood (65536-pid TranslatePids
// batches, or small TranslatePid calls), N flooding clients (processes, one connection each).
// Per rep: root's idle p50/p99 (spaced calls, nothing else on the bus), then the same spaced calls
// while the N flooders run, pidnsd's and dbus-daemon's CPU over that window, and the flooders'
// own replies/s and LimitsExceeded/s. Medians of reps. Never fails on a missed target.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_bus.h"

#ifndef PIDNS_FLOOD_PATH
#error "PIDNS_FLOOD_PATH must name the pidns-flood binary (tests/support/bus_flood.cpp)"
#endif

namespace {

using namespace bench;

constexpr double kTargetRatio = 10;  // p99 under flood <= 10x idle p99
constexpr std::uint32_t kCrowdUid = 2401;  // --crowd: uids the private bus alone knows (bus_users.h)

struct Options {
    int reps = 3;
    int calls = 300;        // root's TranslatePid calls per measurement (idle, and under flood at most)
    double gap_ms = 10;     // pause after each of them
    double seconds = 7;     // each flooder's run time (pidns-flood MODE SECONDS INFLIGHT)
    double warmup = 1.5;    // after starting the flooders, before measuring
    int inflight = 30;      // calls each flooder keeps in flight
    std::vector<int> clients{1, 10, 100};
    std::vector<std::string> kinds{"batches", "calls"};
    std::vector<std::string> daemon_args;
    std::string as_user = "65534";  // setpriv --reuid/--regid
    bool crowd = false;             // flooder i runs as uid kCrowdUid + i instead (distinct principals)
    int conns = 1;                  // connections per flooder, `inflight` calls on each
};

// ---------------------------------------------------------------------------------------------
// Root's side: spaced TranslatePid(own pid, 0, 0) round trips on the bench's own connection.

struct Latency {
    std::vector<double> us;
    long wrong = 0, errors = 0;
    std::string first_error;
    double p(double q) {
        return quantile(us, q) / 1e3;  // ms
    }
    double max() {
        return us.empty() ? 0 : *std::max_element(us.begin(), us.end()) / 1e3;
    }
};

// Each step: TranslatePid, then the bus's own GetId (answered by dbus-daemon, not pidnsd: it tells
// the bus's delay from the wait in pidnsd's queue), then `gap_ms` of sleep.
std::pair<Latency, Latency> measure(Client& c, sdbus::IProxy& bus, int calls, double gap_ms, Clock::time_point until) {
    Latency l, b;
    const auto me = static_cast<std::uint32_t>(::getpid());
    const timespec gap{static_cast<time_t>(gap_ms / 1e3), static_cast<long>(std::fmod(gap_ms, 1e3) * 1e6)};
    for (int i = 0; i < calls && Clock::now() < until; ++i) {
        auto t0 = Clock::now();
        bool failed = false;
        try {
            if (c.TranslatePid(me, 0, 0) != me) ++l.wrong;
        } catch (const sdbus::Error& e) {
            failed = true;
            if (l.errors++ == 0) l.first_error = e.getName() + ": " + e.getMessage();
        }
        if (!failed) l.us.push_back(us_since(t0, Clock::now()));  // failures count in `errors` only
        t0 = Clock::now();
        failed = false;
        try {
            std::string id;
            bus.callMethod("GetId").onInterface("org.freedesktop.DBus").storeResultsTo(id);
        } catch (const sdbus::Error& e) {
            failed = true;
            if (b.errors++ == 0) b.first_error = e.getName() + ": " + e.getMessage();
        }
        if (!failed) b.us.push_back(us_since(t0, Clock::now()));
        if (gap_ms > 0) ::nanosleep(&gap, nullptr);
    }
    return {std::move(l), std::move(b)};
}

// CPU time all CPUs spent busy (not idle or iowait) since boot, µs, from the "cpu" line of /proc/stat.
double host_busy_us() {
    std::istringstream in(read_file("/proc/stat"));
    std::string cpu;
    double v[8] = {};
    in >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / ticks * 1e6;  // user nice system irq softirq steal
}

std::uint64_t stat_u64(Client& c, const char* key) {
    auto m = c.GetStatistics();
    auto it = m.find(key);
    return it != m.end() && it->second.containsValueOfType<std::uint64_t>() ? it->second.get<std::uint64_t>() : 0;
}

// ---------------------------------------------------------------------------------------------
// The flooders: `setpriv --reuid=U --regid=U --clear-groups pidns-flood ADDRESS KIND SECONDS INFLIGHT`,
// stdout and stderr to a memfd each. (setpriv's uid change clears PR_SET_PDEATHSIG: a flooder
// outlives a killed bench by at most SECONDS, and fails at once when the bus goes.)

struct Flooder {
    pid_t pid = 0;
    int out = -1;
    int status = -1;
    rusage ru{};
};

struct FloodResult {
    int started = 0, summaries = 0, failed = 0, killed = 0;
    std::uint64_t replies = 0, ok = 0, errors = 0, limits = 0;
    std::map<std::string, std::uint64_t> error_names;
    double cpu_s = 0;  // the flooders' own user+system time
    std::string first_failure;
};

std::uint64_t field(const std::string& line, const std::string& name) {
    const auto at = line.find(name + " ");
    return at == std::string::npos ? 0 : std::strtoull(line.c_str() + at + name.size() + 1, nullptr, 10);
}

// Forks the N flooders, each stopped (SIGSTOP) before its exec, then lets them all go at once: the
// flood starts together rather than spread over the time N forks take on a busy machine.
std::vector<Flooder> start_flooders(const Options& o, const std::string& address, const std::string& kind, int n) {
    std::vector<Flooder> fs;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", o.seconds);
    // Every flooder's command line, made before the forks (a child must not allocate before exec).
    std::vector<std::unique_ptr<pidns::harness::ExecArgs>> cmds;
    for (int i = 0; i < n; ++i) {
        const std::string uid = o.crowd ? std::to_string(kCrowdUid + static_cast<std::uint32_t>(i)) : o.as_user;
        cmds.push_back(std::make_unique<pidns::harness::ExecArgs>(
            pidns::harness::Argv{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", PIDNS_FLOOD_PATH, address,
                                 kind, secs, std::to_string(o.inflight), std::to_string(o.conns)}));
    }
    const pid_t parent = ::getpid();
    for (int i = 0; i < n; ++i) {
        Flooder f;
        f.out = ::memfd_create("pidns-flood", MFD_CLOEXEC);
        if (f.out < 0) {
            std::perror("memfd_create");
            std::exit(1);
        }
        f.pid = ::fork();
        if (f.pid < 0) {
            std::perror("fork (flooder)");
            std::exit(1);
        }
        if (f.pid == 0) {
            die_with_parent(parent, SIGKILL);  // (delivered even while stopped; setpriv's uid change clears it)
            ::signal(SIGINT, SIG_DFL);
            ::signal(SIGTERM, SIG_DFL);
            ::dup2(f.out, 1);
            ::dup2(f.out, 2);
            ::raise(SIGSTOP);
            cmds[static_cast<std::size_t>(i)]->exec();  // _exit(127) if it fails
        }
        int st = 0;
        ::waitpid(f.pid, &st, WUNTRACED);  // stopped (or, if exec never came, exited: reaped in finish)
        if (!WIFSTOPPED(st)) {
            f.status = st;
            f.pid = -f.pid;  // already reaped
        }
        fs.push_back(f);
    }
    for (auto& f : fs)
        if (f.pid > 0) ::kill(f.pid, SIGCONT);
    return fs;
}

FloodResult finish_flooders(std::vector<Flooder>& fs, double limit_s) {
    FloodResult r;
    r.started = static_cast<int>(fs.size());
    const auto t0 = Clock::now();
    std::size_t left = 0;
    for (auto& f : fs) {
        if (f.pid > 0) ++left;
        else f.pid = 0;  // reaped in start_flooders
    }
    while (left > 0) {
        for (auto& f : fs) {
            if (f.pid <= 0) continue;
            int st = 0;
            if (::wait4(f.pid, &st, WNOHANG, &f.ru) == f.pid) {
                f.status = st;
                f.pid = 0;
                --left;
            }
        }
        if (left == 0) break;
        if (us_since(t0, Clock::now()) > limit_s * 1e6) {
            for (auto& f : fs)
                if (f.pid > 0) {
                    ::kill(f.pid, SIGKILL);
                    ::wait4(f.pid, &f.status, 0, &f.ru);
                    f.pid = 0;
                    ++r.killed;
                }
            break;
        }
        ::usleep(20000);
    }
    for (auto& f : fs) {
        r.cpu_s += static_cast<double>(f.ru.ru_utime.tv_sec + f.ru.ru_stime.tv_sec) +
                   static_cast<double>(f.ru.ru_utime.tv_usec + f.ru.ru_stime.tv_usec) / 1e6;
        std::string out;
        ::lseek(f.out, 0, SEEK_SET);
        char buf[4096];
        for (ssize_t k; (k = ::read(f.out, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(k));
        ::close(f.out);
        const bool exited_ok = WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0;
        const auto at = out.find("replies ");
        if (!exited_ok || at == std::string::npos) {
            ++r.failed;
            if (r.first_failure.empty()) {
                char st[64];
                std::snprintf(st, sizeof st, "%s %d: ", WIFSIGNALED(f.status) ? "signal" : "exit status",
                              WIFSIGNALED(f.status) ? WTERMSIG(f.status) : WEXITSTATUS(f.status));
                r.first_failure = st + out.substr(0, 200);
            }
            if (at == std::string::npos) continue;
        }
        ++r.summaries;
        std::string line = out.substr(at, out.find('\n', at) - at);
        r.replies += field(line, "replies");
        r.ok += field(line, "ok");
        r.errors += field(line, "errors");
        r.limits += field(line, "limits");
        std::istringstream in(line);
        for (std::string tok; in >> tok;)
            if (auto eq = tok.find('='); eq != std::string::npos)
                r.error_names[tok.substr(0, eq)] += std::strtoull(tok.c_str() + eq + 1, nullptr, 10);
    }
    return r;
}

// ---------------------------------------------------------------------------------------------

struct Rep {
    double idle50 = 0, idle99 = 0, idle_max = 0, fl50 = 0, fl99 = 0, fl_max = 0;  // ms
    double bus_idle99 = 0, bus_fl50 = 0, bus_fl99 = 0;                              // ms, GetId
    std::size_t idle_n = 0, fl_n = 0;
    long wrong = 0, errors = 0, fl_errors = 0;  // root's TranslatePid: wrong answers, failed calls (idle + flood), under flood
    double pidnsd_cpu = 0, bus_cpu = 0, flood_cpu = 0;  // share of one core
    double replies_s = 0, limits_s = 0, other_errors_s = 0, daemon_limits_s = 0;
    double us_per_reply = 0;  // pidnsd CPU over the window / the flooders' replies per second
    std::uint64_t daemon_limits = 0;  // pidnsd's LimitsExceeded counter, delta over the rep
    double psi_ms = 0, window_ms = 0, settle_s = 0, host_busy = 0, start_ms = 0;
    double others = 0;  // CPU of everything else on the host (% of a core basis, as a share): busy - ours  // host_busy: share of all CPUs
    int connected = 0, n = 0;
};

struct Row {
    std::string kind;
    int n = 0;
    std::vector<Rep> reps;
    // Median over the reps that measured anything under flood (a rep whose window closed before its
    // first call is reported, and left out).
    double med(double Rep::*f) const {
        std::vector<double> v;
        for (const auto& r : reps)
            if (r.fl_n > 0) v.push_back(r.*f);
        return median(v);
    }
    std::size_t valid() const {
        return static_cast<std::size_t>(std::count_if(reps.begin(), reps.end(), [](const Rep& r) { return r.fl_n > 0; }));
    }
};

struct Bench : PrivateBus {
    Options opt;
    std::unique_ptr<sdbus::IProxy> bus_proxy;  // org.freedesktop.DBus on the bench's connection

    sdbus::IProxy& bus() {
        if (!bus_proxy) bus_proxy = sdbus::createProxy(c->connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
        return *bus_proxy;
    }

    // Waits until pidnsd has nothing left of an earlier flood: no call in flight but ours, and
    // pidnsd plus dbus-daemon below 5% of a core over 200 ms. Returns the seconds it took (-1: 30 s).
    double settle() {
        const auto t0 = Clock::now();
        for (;;) {
            const double d0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus);
            ::usleep(200000);
            const double busy = (cpu_us(g_pidnsd) - d0) + (cpu_us(g_dbus) - b0);
            if (busy < 10000 && stat_u64(*c, "CallsInFlight") <= 1) return us_since(t0, Clock::now()) / 1e6;
            if (us_since(t0, Clock::now()) > 30e6) return -1;
        }
    }

    Rep rep(const std::string& kind, int n) {
        Rep r;
        r.n = n;
        r.settle_s = settle();
        const auto far = Clock::now() + std::chrono::hours(1);
        auto [idle, bus_idle] = measure(*c, bus(), opt.calls, opt.gap_ms, far);
        r.bus_idle99 = bus_idle.p(0.99);
        r.idle50 = idle.p(0.5);
        r.idle99 = idle.p(0.99);
        r.idle_max = idle.max();
        r.idle_n = idle.us.size();
        r.wrong = idle.wrong;
        r.errors = idle.errors;

        const std::uint64_t lim0 = stat_u64(*c, "LimitsExceeded");
        const auto t_start = Clock::now();
        auto fs = start_flooders(opt, address, kind, n);
        const auto t_go = Clock::now();
        r.start_ms = us_since(t_start, t_go) / 1e3;
        std::this_thread::sleep_for(std::chrono::duration<double>(opt.warmup));
        // Measure until the flooders are due to stop, less a margin (they stop on their own clock,
        // which starts once they are connected, a little after t_go).
        const auto until = t_go + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.seconds - 0.5));
        const double d0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus), psi0 = cpu_pressure_us(), h0 = host_busy_us(),
                     me0 = cpu_us(0);
        const auto w0 = Clock::now();
        auto [fl, bus_fl] = measure(*c, bus(), opt.calls, opt.gap_ms, until);
        r.bus_fl50 = bus_fl.p(0.5);
        r.bus_fl99 = bus_fl.p(0.99);
        const double wall = us_since(w0, Clock::now());
        r.pidnsd_cpu = (cpu_us(g_pidnsd) - d0) / wall;
        r.bus_cpu = (cpu_us(g_dbus) - b0) / wall;
        const double me = (cpu_us(0) - me0) / wall;
        r.psi_ms = (cpu_pressure_us() - psi0) / 1e3;
        r.host_busy = (host_busy_us() - h0) / wall / std::max(1u, std::thread::hardware_concurrency());
        r.window_ms = wall / 1e3;
        r.fl50 = fl.p(0.5);
        r.fl99 = fl.p(0.99);
        r.fl_max = fl.max();
        r.fl_n = fl.us.size();
        r.wrong += fl.wrong;
        r.errors += fl.errors;
        r.fl_errors = fl.errors;

        FloodResult f = finish_flooders(fs, opt.seconds + 60);
        r.connected = f.summaries;
        r.flood_cpu = f.cpu_s / opt.seconds;
        r.replies_s = static_cast<double>(f.replies) / opt.seconds;
        r.limits_s = static_cast<double>(f.limits) / opt.seconds;
        r.other_errors_s = static_cast<double>(f.errors - f.limits) / opt.seconds;
        r.daemon_limits = stat_u64(*c, "LimitsExceeded") - lim0;
        r.daemon_limits_s = static_cast<double>(r.daemon_limits) / opt.seconds;
        r.us_per_reply = r.replies_s > 0 ? r.pidnsd_cpu * 1e6 / r.replies_s : 0;
        // The flooders' CPU is over their whole run, the rest over the window: an estimate.
        r.others = std::max(0.0, r.host_busy * std::max(1u, std::thread::hardware_concurrency()) - r.pidnsd_cpu - r.bus_cpu -
                                     r.flood_cpu - me);

        std::string names;
        for (const auto& [name, count] : f.error_names) names += " " + name + "=" + std::to_string(count);
        std::printf("%-7s N=%-3d idle p50/p99/max %.3f/%.3f/%.3f ms (%zu); flood p50/p99/max %.3f/%.3f/%.3f ms (%zu calls"
                    " in %.1f s, %ld wrong, %ld errors)\n",
                    kind.c_str(), n, r.idle50, r.idle99, r.idle_max, r.idle_n, r.fl50, r.fl99, r.fl_max, r.fl_n,
                    r.window_ms / 1e3, r.wrong, r.errors);
        std::printf("        CPU %% of a core: pidnsd %.1f, dbus-daemon %.1f, flooders %.1f (their run), the rest of the host ~%.0f;"
                    " all CPUs %.0f%% busy, tasks waited for a CPU %.0f of %.0f ms; flooders %d/%d ok, %llu replies (%llu ok,"
                    " %llu errors:%s), pidnsd LimitsExceeded +%llu\n",
                    r.pidnsd_cpu * 100, r.bus_cpu * 100, r.flood_cpu * 100, r.others * 100, r.host_busy * 100, r.psi_ms, r.window_ms,
                    f.summaries, f.started,
                    static_cast<unsigned long long>(f.replies), static_cast<unsigned long long>(f.ok),
                    static_cast<unsigned long long>(f.errors), names.empty() ? " none" : names.c_str(),
                    static_cast<unsigned long long>(r.daemon_limits));
        std::printf("        flooders started in %.0f ms; pidnsd CPU per flood reply %.1f us; N x %d in flight x that = %.1f ms\n",
                    r.start_ms, r.us_per_reply, opt.inflight, n * opt.inflight * r.us_per_reply / 1e3);
        std::printf("        bus GetId p99 idle %.3f ms, flood p50/p99 %.3f/%.3f ms%s\n", r.bus_idle99, r.bus_fl50, r.bus_fl99,
                    bus_fl.errors + bus_idle.errors ? (" (errors: " + bus_fl.first_error + bus_idle.first_error + ")").c_str() : "");
        if (fl.errors) std::printf("        first error: %s\n", fl.first_error.c_str());
        if (idle.errors) std::printf("        first idle error: %s\n", idle.first_error.c_str());
        if (f.failed || f.killed)
            std::printf("        %d flooders failed, %d killed after %.0f s; first: %s\n", f.failed, f.killed, opt.seconds + 60,
                        f.first_failure.c_str());
        if (r.settle_s < 0) std::printf("        note: pidnsd was still busy 30 s after the previous flood\n");
        std::fflush(stdout);
        return r;
    }
};

int run(Bench& b, const Options& o, const std::string& cmdline) {
    utsname u{};
    ::uname(&u);
    std::printf("pidnsd bench_flood: %s\n", cmdline.c_str());
    std::printf("kernel %s %s, %u cpus; date %s, load average %s\n", u.sysname, u.release, std::thread::hardware_concurrency(),
                now_text().c_str(), loadavg().c_str());
    std::printf("bus    dbus-daemon --config-file=%s --nofork  (%s, policy %s)\n", b.conf_path.c_str(),
                pidns::harness::bus_conf_template().c_str(), PIDNS_SOURCE_DIR "/dbus/org.pidns.conf");
    std::string dargs;
    for (const auto& a : b.daemon_args) dargs += " " + a;
    std::printf("daemon %s%s  (pid %d, version %s)\n", b.pidnsd_path.c_str(), dargs.c_str(), static_cast<int>(g_pidnsd),
                b.c->Version().c_str());
    if (o.crowd)
        std::printf("flood  N x setpriv --reuid=U --regid=U --clear-groups %s ADDRESS KIND %g %d %d, U = %u + i: a crowd of"
                    " distinct uids\n",
                    PIDNS_FLOOD_PATH, o.seconds, o.inflight, o.conns, kCrowdUid);
    else
        std::printf("flood  N x setpriv --reuid=%s --regid=%s --clear-groups %s ADDRESS KIND %g %d %d\n", o.as_user.c_str(),
                    o.as_user.c_str(), PIDNS_FLOOD_PATH, o.seconds, o.inflight, o.conns);
    std::printf("       batches: TranslatePids of 65536 pids; calls: TranslatePid(1, 0, 0); lists: ListProcesses(0); %d in"
                " flight on each of %d connections per client\n",
                o.inflight, o.conns);
    std::printf("root   TranslatePid(own pid, 0, 0) on the bench's connection, %d calls %.0f ms apart idle; under flood\n"
                "       from %.1f s after the start until %d calls or %.1f s (the flood's end less 0.5 s)\n",
                o.calls, o.gap_ms, o.warmup, o.calls, o.seconds - 0.5);
    std::printf("CPU    pidnsd/dbus-daemon CPU-time clocks (utime+stime) over that window / its wall time\n");
    std::printf("medians of %d reps; reps interleaved (rep 1 of every row, then rep 2, ...)\n\n", o.reps);
    std::fflush(stdout);

    std::vector<Row> rows;
    for (const auto& k : o.kinds)
        for (int n : o.clients) rows.push_back(Row{k, n, {}});
    const auto t0 = Clock::now();
    for (int rep = 0; rep < o.reps; ++rep) {
        std::printf("-- rep %d/%d\n", rep + 1, o.reps);
        for (auto& row : rows) row.reps.push_back(b.rep(row.kind, row.n));
    }
    const double total_s = us_since(t0, Clock::now()) / 1e6;

    std::printf("\nroot TranslatePid (ms), medians of %d reps; CPU in %% of one core over the flood window\n", o.reps);
    std::printf("%-7s %4s %8s %8s %9s %9s %8s %6s %-7s %7s %7s %6s %9s %9s %9s %8s %7s %6s\n", "kind", "N", "idle p50", "idle p99",
                "flood p50", "flood p99", "p99/idle", "target", "met?", "pidnsd%", "/client", "bus%", "replies/s",
                "refused/s", "by pidnsd", "us/reply", "bus p99", "failed");
    int missed = 0;
    long wrong = 0, errors = 0;
    for (const auto& row : rows) {
        const double i99 = row.med(&Rep::idle99), f99 = row.med(&Rep::fl99);
        const double ratio = i99 > 0 ? f99 / i99 : 0;
        long failed = 0;
        for (const auto& r : row.reps) {
            wrong += r.wrong;
            errors += r.errors;
            failed += r.fl_errors;
        }
        const bool ok = ratio <= kTargetRatio && failed == 0 && row.valid() > 0;
        if (!ok) ++missed;
        const double cpu = row.med(&Rep::pidnsd_cpu);
        std::printf("%-7s %4d %8.3f %8.3f %9.3f %9.3f %8.1f %6s %-7s %7.1f %7.2f %6.1f %9.0f %9.0f %9.0f %8.1f %7.3f %6ld%s\n",
                    row.kind.c_str(), row.n, row.med(&Rep::idle50), i99, row.med(&Rep::fl50), f99, ratio, "<=10x", met(ok),
                    cpu * 100, cpu * 100 / row.n, row.med(&Rep::bus_cpu) * 100, row.med(&Rep::replies_s),
                    row.med(&Rep::limits_s), row.med(&Rep::daemon_limits_s), row.med(&Rep::us_per_reply),
                    row.med(&Rep::bus_fl99), failed,
                    row.valid() < row.reps.size() ? ("  (" + std::to_string(row.valid()) + " reps measured)").c_str() : "");
    }
    std::printf("(p99/idle: median flood p99 / median idle p99; /client: pidnsd%% / N; bus%%: dbus-daemon; replies/s: all\n"
                " the flooders got, refused/s: of which LimitsExceeded, by pidnsd: pidnsd's LimitsExceeded counter per s;\n"
                " us/reply: pidnsd CPU / replies/s; bus p99: the bus's own GetId under flood, ms; failed: root calls under\n"
                " flood that got an error, all reps (left out of the latencies; any makes the row NOT MET))\n");
    std::printf("\nper rep, flood p99 / idle p99:\n");
    for (const auto& row : rows) {
        std::printf("  %-7s N=%-3d", row.kind.c_str(), row.n);
        for (const auto& r : row.reps) std::printf(" %7.1f", r.idle99 > 0 ? r.fl99 / r.idle99 : 0);
        std::printf("   (flood calls measured:");
        for (const auto& r : row.reps) std::printf(" %zu", r.fl_n);
        std::printf("; CPU of the rest of the host, %% of a core:");
        for (const auto& r : row.reps) std::printf(" %.0f", r.others * 100);
        std::printf(")\n");
    }

    // Logs: the per-client "exceeded a limit" lines and the bus's "full message queue" rejections are
    // counted, the rest shown (the first 10).
    auto complaints = b.daemon_complaints();
    std::size_t limit_lines = 0;
    std::vector<std::string> other;
    for (const auto& l : complaints) (l.find("exceeded a limit") != std::string::npos ? (void)++limit_lines : other.push_back(l));
    std::printf("\npidnsd log: %zu lines above info: %zu \"exceeded a limit\", %zu others%s\n", complaints.size(), limit_lines,
                other.size(), other.empty() ? "" : " (first 10):");
    for (std::size_t i = 0; i < other.size() && i < 10; ++i) std::printf("  %s\n", other[i].c_str());
    std::istringstream bus_log(read_file(b.bus_log_path));
    std::size_t full = 0, shown = 0;
    std::string first_full;
    for (std::string line; std::getline(bus_log, line);) {
        if (line.find("full message queue") != std::string::npos) {
            if (full++ == 0) first_full = line;
        } else if (shown++ < 10) {
            std::printf("dbus-daemon: %s\n", line.c_str());
        }
    }
    if (full) std::printf("dbus-daemon: %zu \"destination has a full message queue\" rejections; the first:\n  %s\n", full,
                          first_full.c_str());
    std::printf("load average at the end: %s\n", loadavg().c_str());
    const bool alive = b.pidnsd_alive();
    std::printf("summary: %zu rows, p99 under flood <= %gx idle p99 and no failed call in %zu (%s); root calls: %ld wrong,"
                " %ld failed; pidnsd %s; measured in %.0f s\n",
                rows.size(), kTargetRatio, rows.size() - static_cast<std::size_t>(missed), missed ? "NOT MET in some" : "MET in all",
                wrong, errors, alive ? "alive" : "GONE", total_s);
    std::fflush(stdout);
    return wrong || !alive ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------

template <class T, class F>
std::optional<std::vector<T>> parse_list(const std::string& s, F conv) {
    std::vector<T> out;
    std::istringstream in(s);
    for (std::string item; std::getline(in, item, ',');) {
        auto v = conv(item);
        if (!v) return std::nullopt;
        out.push_back(*v);
    }
    if (out.empty()) return std::nullopt;
    return out;
}

// --opt=value or --opt value; each also from the environment as BENCH_FLOOD_OPT (e.g. BENCH_FLOOD_SECONDS=4),
// the command line winning. nullopt: print the usage.
std::optional<Options> parse_options(int argc, char** argv) {
    Options o;
    std::vector<std::pair<std::string, std::string>> given;
    for (const char* name : {"reps", "calls", "gap-ms", "seconds", "warmup", "inflight", "clients", "kinds", "user", "conns"}) {
        std::string env = std::string("BENCH_FLOOD_") + name;
        for (auto& ch : env) ch = ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (const char* v = std::getenv(env.c_str())) given.emplace_back(std::string("--") + name, v);
    }
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i], v;
        if (auto eq = a.find('='); eq != std::string::npos) {
            v = a.substr(eq + 1);
            a.resize(eq);
        } else if (a == "--quick" || a == "--crowd") {
            given.emplace_back(a, "");
            continue;
        } else {
            if (i + 1 >= argc) return std::nullopt;
            v = argv[++i];
        }
        given.emplace_back(a, v);
    }
    auto num = [](const std::string& s) -> std::optional<double> {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end || v < 0) return std::nullopt;
        return v;
    };
    for (const auto& [a, v] : given) {
        if (a == "--quick") {  // a smoke run: 1 rep, fewer calls, shorter floods, N = 1 and 10
            o.reps = 1;
            o.calls = 100;
            o.seconds = 3;
            o.warmup = 1;
            o.clients = {1, 10};
            continue;
        }
        if (a == "--crowd") {
            o.crowd = true;
            continue;
        }
        if (a == "--daemon-arg") {
            o.daemon_args.push_back(v);
            continue;
        }
        if (a == "--user") {
            o.as_user = v;
            continue;
        }
        if (a == "--clients") {
            auto l = parse_list<int>(v, [&](const std::string& s) -> std::optional<int> {
                auto d = num(s);
                return d && *d >= 1 ? std::optional<int>(static_cast<int>(*d)) : std::nullopt;
            });
            if (!l) return std::nullopt;
            o.clients = *l;
            continue;
        }
        if (a == "--kinds") {
            auto l = parse_list<std::string>(v, [](const std::string& s) -> std::optional<std::string> {
                return s == "batches" || s == "calls" || s == "lists" ? std::optional<std::string>(s) : std::nullopt;
            });
            if (!l) return std::nullopt;
            o.kinds = *l;
            continue;
        }
        auto d = num(v);
        if (!d) return std::nullopt;
        if (a == "--reps") o.reps = std::max(1, static_cast<int>(*d));
        else if (a == "--calls") o.calls = std::max(10, static_cast<int>(*d));
        else if (a == "--gap-ms") o.gap_ms = *d;
        else if (a == "--seconds") o.seconds = std::max(1.0, *d);
        else if (a == "--warmup") o.warmup = *d;
        else if (a == "--inflight") o.inflight = std::max(1, static_cast<int>(*d));
        else if (a == "--conns") o.conns = std::max(1, static_cast<int>(*d));
        else return std::nullopt;
    }
    if (o.warmup > o.seconds - 1) o.warmup = std::max(0.0, o.seconds - 1);
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    auto opt = parse_options(argc, argv);
    if (!opt) {
        std::puts("usage: bench_flood [--reps N (3)] [--calls N (300)] [--gap-ms MS (10)] [--seconds S (7)] [--warmup S (1.5)]\n"
                  "                   [--inflight N (30)] [--clients 1,10,100] [--kinds batches,calls,lists] [--user UID (65534)]\n"
                  "                   [--conns N (1)] [--crowd] [--daemon-arg=X]... [--quick]\n"
                  "  each option also as BENCH_FLOOD_<NAME> in the environment (BENCH_FLOOD_GAP_MS=5); root; starts its own\n"
                  "  dbus-daemon and pidnsd; the flooders run as UID through setpriv");
        return 2;
    }
    const std::string cmdline = command_line(argc, argv);
    install_signal_handlers();

    Bench b;
    b.opt = *opt;
    if (opt->crowd) {
        int most = 0;
        for (int n : opt->clients) most = std::max(most, n);
        for (int i = 0; i < most; ++i) b.bus_users.push_back(kCrowdUid + static_cast<std::uint32_t>(i));
    }
    b.start(opt->daemon_args);
    int rc = 1;
    try {
        rc = run(b, *opt, cmdline);
    } catch (const sdbus::Error& e) {
        std::printf("\nFAILED: %s: %s\n", e.getName().c_str(), e.getMessage().c_str());
    } catch (const std::exception& e) {
        std::printf("\nFAILED: %s\n", e.what());
    }
    if (rc != 0) b.report_failure();
    b.cleanup();
    return rc;
}
