// bench_bus.h: what the D-Bus benchmarks (bench_dbus, bench_events) share: timing helpers, the
// processes they start, and a private dbus-daemon with a pidnsd on it, reached through the
// client library (dbus/client). Each bench is one translation unit; everything here is inline.
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
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "client.h"
#include "support/bus_users.h"

#ifndef PIDNSD_PATH
#error "PIDNSD_PATH must name the pidnsd binary"
#endif
#ifndef BUS_CONF_IN
#error "BUS_CONF_IN must name tests/dbus/system-bus.conf.in"
#endif
#ifndef BUS_POLICY
#error "BUS_POLICY must name dbus/org.pidns.conf"
#endif

namespace bench {

using Clock = std::chrono::steady_clock;

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

// ---------------------------------------------------------------------------------------------
// Processes a bench starts. The daemons get SIGTERM and the sleepers SIGKILL when the bench
// dies (PR_SET_PDEATHSIG); on SIGINT/SIGTERM the handler also stops the daemons and removes the
// temporary directory (unlink/rmdir/kill are async-signal-safe).

inline char g_tmp[256];
inline volatile pid_t g_dbus = 0;
inline volatile pid_t g_pidnsd = 0;

inline void remove_tmp() {
    if (!g_tmp[0]) return;
    for (const char* f : {"/bus", "/bus.conf", "/pidnsd.log", "/bus.log", "/passwd", "/group"}) {
        char p[300];
        std::size_t n = std::strlen(g_tmp);
        std::memcpy(p, g_tmp, n);
        std::memcpy(p + n, f, std::strlen(f) + 1);
        ::unlink(p);
    }
    ::rmdir(g_tmp);
}

inline void on_signal(int sig) {
    if (g_pidnsd > 0) ::kill(g_pidnsd, SIGTERM);
    if (g_dbus > 0) ::kill(g_dbus, SIGTERM);
    remove_tmp();
    ::_exit(128 + sig);
}

// SIGINT/SIGTERM stop the daemons (on_signal); SIGPIPE is ignored.
inline void install_signal_handlers() {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
}

// In a freshly forked child: die with the parent (which must still be `parent`).
inline void die_with_parent(pid_t parent, int sig) {
    ::prctl(PR_SET_PDEATHSIG, sig);
    if (::getppid() != parent) ::_exit(1);
}

// fork + exec, with stdout/stderr to `out_fd` (if >= 0) and PR_SET_PDEATHSIG SIGTERM.
inline pid_t start_program(const std::vector<std::string>& args, int out_fd, int keep_fd = -1) {
    const pid_t parent = ::getpid();
    // Made before fork(): the child of a multi-threaded process must not allocate before it execs.
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("fork");
        std::exit(1);
    }
    if (pid == 0) {
        die_with_parent(parent, SIGTERM);
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        if (out_fd >= 0) {
            ::dup2(out_fd, 1);
            ::dup2(out_fd, 2);
        }
        if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
        ::execvp(argv[0], argv.data());
        std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    return pid;
}

inline void stop_program(volatile pid_t& pid, const char* name) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 500; ++i) {  // 5 s, then SIGKILL
        pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0))
                std::printf("note: %s ended with %s %d\n", name, WIFSIGNALED(st) ? "signal" : "status",
                            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            pid = 0;
            return;
        }
        ::usleep(10000);
    }
    std::printf("note: %s ignored SIGTERM for 5 s; killed\n", name);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = 0;
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

inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
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

inline void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
}

// ---------------------------------------------------------------------------------------------
// The client: libpidns-client's Client on our own connection (no event-loop thread; synchronous
// calls only; nobody subscribes). Its generated methods (TranslatePid, ...) throw sdbus::Error.

using Client = pidns::client::Client;

// ---------------------------------------------------------------------------------------------
// A private bus: `dbus-daemon --config-file=TMP/bus.conf --nofork` (tests/dbus/system-bus.conf.in
// with the project's policy) and `pidnsd --bus=unix:path=TMP/bus` on it, and a client connection.

struct PrivateBus {
    std::string tmp, bus_path, address, conf_path, log_path, bus_log_path;
    std::vector<std::string> daemon_args;  // pidnsd's arguments after --bus=
    std::vector<std::uint32_t> bus_users;  // uids without a passwd entry that may connect (bus_users.h)
    std::string pidnsd_path = PIDNSD_PATH;  // another build's, to compare
    std::unique_ptr<Client> c;
    double start_timeout_s = 10;  // how long start() waits for pidnsd's first answer (its scan comes first)

    // Starts both daemons in /tmp/NAME.XXXXXX and waits until pidnsd answers; exits the process
    // (after cleaning up) if either fails to start.
    void start(const char* name, std::vector<std::string> extra_daemon_args = {}) {
        std::snprintf(g_tmp, sizeof g_tmp, "/tmp/%s.XXXXXX", name);
        if (!::mkdtemp(g_tmp)) {
            std::perror("mkdtemp");
            std::exit(1);
        }
        tmp = g_tmp;
        bus_path = tmp + "/bus";
        address = "unix:path=" + bus_path;
        conf_path = tmp + "/bus.conf";
        log_path = tmp + "/pidnsd.log";
        bus_log_path = tmp + "/bus.log";
        std::string conf = read_file(BUS_CONF_IN);
        if (conf.empty()) {
            std::fprintf(stderr, "cannot read %s\n", BUS_CONF_IN);
            std::exit(1);
        }
        replace_all(conf, "@SOCKET@", bus_path);
        replace_all(conf, "@POLICY@", BUS_POLICY);
        std::ofstream(conf_path) << conf;

        int addr_pipe[2];
        if (::pipe2(addr_pipe, O_CLOEXEC) != 0) std::exit(1);
        int bus_log = ::open(bus_log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        g_dbus = start_program(pidns::testsupport::with_bus_users(tmp, bus_users,
                                                                  {"dbus-daemon", "--config-file=" + conf_path, "--nofork",
                                                                   "--print-address=" + std::to_string(addr_pipe[1])}),
                               bus_log, addr_pipe[1]);
        ::close(addr_pipe[1]);
        ::close(bus_log);
        pollfd pfd{addr_pipe[0], POLLIN, 0};
        char buf[512] = {};
        if (::poll(&pfd, 1, 10000) != 1 || ::read(addr_pipe[0], buf, sizeof buf - 1) <= 0) {
            std::fprintf(stderr, "dbus-daemon did not start\n");
            cleanup();
            std::exit(1);
        }
        ::close(addr_pipe[0]);

        daemon_args = {"--bus=" + address};
        daemon_args.insert(daemon_args.end(), extra_daemon_args.begin(), extra_daemon_args.end());
        std::vector<std::string> argv{pidnsd_path};
        argv.insert(argv.end(), daemon_args.begin(), daemon_args.end());
        int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        g_pidnsd = start_program(argv, log);
        ::close(log);

        c = std::make_unique<Client>(address);
        for (int i = 0;; ++i) {
            try {
                (void)c->Version();
                break;
            } catch (const sdbus::Error& e) {
                int st;
                if (::waitpid(g_pidnsd, &st, WNOHANG) == g_pidnsd) {
                    g_pidnsd = 0;
                    std::fprintf(stderr, "pidnsd exited during start-up:\n%s\n", read_file(log_path).c_str());
                    cleanup();
                    std::exit(1);
                }
                if (i > start_timeout_s * 100) {
                    std::fprintf(stderr, "pidnsd not on the bus after %.0f s (%s)\n", start_timeout_s, e.getMessage().c_str());
                    cleanup();
                    std::exit(1);
                }
                ::usleep(10000);
            }
        }
    }

    void cleanup() {
        c.reset();
        stop_program(g_pidnsd, "pidnsd");
        stop_program(g_dbus, "dbus-daemon");
        remove_tmp();
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
        int st = 0;
        if (g_pidnsd > 0 && ::waitpid(g_pidnsd, &st, WNOHANG) == g_pidnsd) {
            std::printf("pidnsd is gone: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit status",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            g_pidnsd = 0;
        }
        std::printf("pidnsd log:\n%s\n", read_file(log_path).c_str());
    }
};

}  // namespace bench
