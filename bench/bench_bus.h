// bench_bus.h: what the D-Bus benchmarks share: timing and CPU figures, and a private dbus-daemon
// with the pidnsd on it from the test harness (tests/harness: the same bus, policy and start as the
// tests), reached through the client library (dbus/client). Each bench is one translation unit.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "client.h"
#include "harness.h"

namespace bench {

using Clock = std::chrono::steady_clock;
using pidns::harness::read_file;

inline double us_since(Clock::time_point t0, Clock::time_point t1) {
    return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// The q-quantile (nearest rank) of v, sorted in place.
inline double quantile(std::vector<double>& v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

inline const char* met(bool ok) { return ok ? "MET" : "NOT MET"; }

// The bench's command line as typed, for its report.
inline std::string command_line(int argc, char** argv) {
    std::string s = argv[0];
    if (const auto slash = s.rfind('/'); slash != std::string::npos) s.erase(0, slash + 1);
    for (int i = 1; i < argc; ++i) s += std::string(" ") + argv[i];
    return s;
}

// One option at argv[i]: "--name=value", "--name value", or one of `flags` (no value). Moves i past
// what it read; nullopt for a name missing its value.
struct Option {
    std::string name, value;
};
inline std::optional<Option> next_option(int argc, char** argv, int& i,
                                         std::initializer_list<std::string_view> flags = {}) {
    Option o{argv[i], ""};
    if (const auto eq = o.name.find('='); eq != std::string::npos) {
        o.value = o.name.substr(eq + 1);
        o.name.resize(eq);
        return o;
    }
    if (std::find(flags.begin(), flags.end(), o.name) != flags.end()) return o;
    if (i + 1 >= argc) return std::nullopt;
    o.value = argv[++i];
    return o;
}

// ---------------------------------------------------------------------------------------------
// Processes a bench starts (tests/harness/process.h): they die with the bench; on SIGINT/SIGTERM
// the harness removes the temporary directories too.

inline volatile pid_t g_dbus = 0;
inline volatile pid_t g_pidnsd = 0;

// SIGINT/SIGTERM remove the harness's temp dirs and exit (the daemons die with us); SIGPIPE is ignored.
inline void install_signal_handlers() { pidns::harness::remove_temp_dirs_on_signal(); }
// What that handler does, for a bench's own handler to end with (async-signal-safe).
[[noreturn]] inline void on_signal(int sig) { pidns::harness::exit_on_signal(sig); }

// A bench's body run with install_signal_handlers(); an exception is a failed run (exit status 1).
template <class F>
int guarded_main(F&& body) {
    install_signal_handlers();
    try {
        return body();
    } catch (const std::exception& e) {
        std::printf("\nFAILED: %s\n", e.what());
        return 1;
    }
}

// In a freshly forked child: die with the parent (which must still be `parent`).
inline void die_with_parent(pid_t parent, int sig) {
    ::prctl(PR_SET_PDEATHSIG, sig);
    if (::getppid() != parent) ::_exit(1);
}

// A command with stdout and stderr to `out_fd` (if >= 0), SIGTERMed when the bench ends.
inline pid_t start_program(const std::vector<std::string>& args, int out_fd) {
    pidns::harness::SpawnOptions o;
    o.out_fd = o.err_fd = out_fd;
    o.death_signal = SIGTERM;
    try {
        return pidns::harness::spawn(args, o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        std::exit(1);
    }
}

// CPU time (user + system, all threads: utime + stime of /proc/PID/stat, in ns resolution) of a
// process in µs, from its CPU-time clock; pid 0 is this process.
inline double cpu_us(pid_t pid) {
    clockid_t cid;
    if (pid == 0) {
        cid = CLOCK_PROCESS_CPUTIME_ID;
    } else if (::clock_getcpuclockid(pid, &cid) != 0) {
        return 0;
    }
    timespec ts{};
    ::clock_gettime(cid, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

inline std::string loadavg() {
    std::string s = read_file("/proc/loadavg");
    std::istringstream in(s);
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// CPU pressure stall (PSI "some": time in which at least one runnable task waited for a CPU), µs
// since boot; 0 without /proc/pressure.
inline double cpu_pressure_us() {
    std::string s = read_file("/proc/pressure/cpu");
    auto p = s.find("total=");
    return p == std::string::npos ? 0 : std::strtod(s.c_str() + p + 6, nullptr);
}

inline std::string now_text() {
    time_t t = ::time(nullptr);
    char b[64];
    std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
    return b;
}

// ---------------------------------------------------------------------------------------------
// The client: libpidns-client's Client on our own connection (no event-loop thread; synchronous
// calls only; nobody subscribes). Its generated methods (TranslatePid, ...) throw sdbus::Error.

using Client = pidns::client::Client;

// ---------------------------------------------------------------------------------------------
// A private bus and pidnsd on it (pidns::harness::PrivateBus and Daemon: READY seen), no debug
// log and none of the test suite's PIDNS_TEST_DAEMON_ARGS, and a client connection.

struct PrivateBus {
    std::string tmp, bus_path, address, conf_path, log_path, bus_log_path;
    std::vector<std::string> daemon_args;  // pidnsd's arguments after --bus=
    std::vector<std::uint32_t> bus_users;  // uids without a passwd entry that may connect (bus_users.h)
    // This build's pidnsd, or the one PIDNS_BENCH_PIDNSD names (another build's, to compare:
    // bench/before-after.sh runs a bench with each in turn).
    std::string pidnsd_path = default_pidnsd();
    static std::string default_pidnsd() {
        const char* other = std::getenv("PIDNS_BENCH_PIDNSD");
        return other != nullptr && *other != '\0' ? std::string(other) : std::string(PIDNSD_BIN);
    }
    std::unique_ptr<Client> c;
    double start_timeout_s = 10;  // how long start() waits for pidnsd's READY (its scan comes first)
    std::unique_ptr<pidns::harness::PrivateBus> bus;
    std::unique_ptr<pidns::harness::Daemon> daemon;

    // Starts both daemons and waits until pidnsd is ready; exits the process (after cleaning up)
    // if either fails to start.
    void start(std::vector<std::string> extra_daemon_args = {}) {
        try {
            bus = std::make_unique<pidns::harness::PrivateBus>(bus_users);
            g_dbus = bus->pid();
            tmp = bus->dir();
            bus_path = tmp + "/bus";
            address = bus->address();
            conf_path = tmp + "/bus.conf";
            bus_log_path = bus->log_path();
            pidns::harness::DaemonOptions o;
            o.args = extra_daemon_args;
            o.ready_timeout = std::chrono::milliseconds(static_cast<long long>(start_timeout_s * 1000));
            o.binary = pidnsd_path;
            o.debug_log = false;
            o.suite_args = false;
            daemon = std::make_unique<pidns::harness::Daemon>(*bus, o);
            g_pidnsd = daemon->pid();
            if (pidnsd_path != PIDNSD_BIN) std::printf("pidnsd: %s (not this build's)\n", pidnsd_path.c_str());
            log_path = daemon->log_path();
            daemon_args = {"--bus=" + address};
            daemon_args.insert(daemon_args.end(), extra_daemon_args.begin(), extra_daemon_args.end());
            c = std::make_unique<Client>(address);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            cleanup();
            std::exit(1);
        }
    }

    void cleanup() {
        c.reset();
        if (daemon) {
            const int st = daemon->stop(SIGTERM, std::chrono::seconds(5));
            if (st != 0) std::printf("note: pidnsd ended with status %d\n", st);
        }
        daemon.reset();
        if (bus) {
            const int st = bus->stop();
            if (st != 0) std::printf("note: dbus-daemon ended with status %d\n", st);
        }
        bus.reset();
        g_pidnsd = 0;
        g_dbus = 0;
    }

    // Whether pidnsd still runs (reaped and forgotten if it ended).
    bool pidnsd_alive() {
        if (daemon && !daemon->exited()) return true;
        g_pidnsd = 0;
        return false;
    }

    // pidnsd's log lines at warn and above (start-up lines are info).
    std::vector<std::string> daemon_complaints() {
        std::vector<std::string> out;
        std::istringstream in(read_file(log_path));
        for (std::string line; std::getline(in, line);)
            if (line.find(" info: ") == std::string::npos && line.find(" debug: ") == std::string::npos) out.push_back(line);
        return out;
    }

    std::uint32_t processes() { return c->Processes(); }

    // After a failed run: whether pidnsd died (and how), and its log.
    void report_failure() {
        if (daemon)
            if (const auto st = daemon->exited()) {
                std::printf("pidnsd is gone: exit status %d (128+N: signal N)\n", *st);
                g_pidnsd = 0;
            }
        std::printf("pidnsd log:\n%s\n", read_file(log_path).c_str());
    }
};

}  // namespace bench
