// bench_ctl: `pidnsctl list` and `pidnsctl tree` against `lsns` and `lsns --tree` (issue 13's figure).
//
// Makes N processes in M pid namespaces (pods.h), starts a private dbus-daemon with the project's
// policy and the real pidnsd on it (bench_bus.h), waits until pidnsd has indexed them, then times
// each command as a fresh process (posix_spawn to waitpid, stdin, stdout and stderr on /dev/null):
// one warm-up run each, then R reps, the commands interleaved within a rep so that a change of
// load hits both sides of a pair alike. Prints median and p90 wall time per command, the ratio
// lsns / pidnsctl of the medians per pair (target >= 50x), and the process and namespace counts
// that pidnsd reports and that lsns saw. It never fails on a missed target (prints MET / NOT MET);
// it exits 1 if a program is missing, pidnsd does not index the processes, or a pidnsctl run fails.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_bus.h"
#include "pods.h"

#ifndef PIDNSCTL_PATH
#error "PIDNSCTL_PATH must name the pidnsctl binary"
#endif

extern char** environ;

namespace {

using namespace bench;

struct Options {
    int procs = 10000;
    int namespaces = 100;
    int reps = 7;
};

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: bench_ctl [--procs N] [--namespaces M] [--reps R]   (root)\n"
                 "  Times `pidnsctl list` / `pidnsctl tree` (and --json=short) against `lsns` / `lsns --tree`\n"
                 "  (and -J) with N processes (default 10000) in M new pid namespaces (default 100);\n"
                 "  medians of R runs (default 7) after one warm-up each.\n"
                 "  pidnsctl: %s\n"
                 "  pidnsd:   %s\n",
                 PIDNSCTL_PATH, PIDNSD_BIN);
}

// --opt N or --opt=N, a positive integer.
bool parse_int(int argc, char** argv, int& i, const char* name, int& out) {
    const std::size_t n = std::strlen(name);
    const char* value = nullptr;
    if (!std::strcmp(argv[i], name)) {
        if (i + 1 >= argc) return false;
        value = argv[++i];
    } else if (!std::strncmp(argv[i], name, n) && argv[i][n] == '=') {
        value = argv[i] + n + 1;
    } else {
        return false;
    }
    char* end = nullptr;
    const long v = std::strtol(value, &end, 10);
    if (*end != '\0' || v < 1 || v > 1'000'000) {
        std::fprintf(stderr, "bench_ctl: %s wants a positive integer, not \"%s\"\n", name, value);
        std::exit(2);
    }
    out = static_cast<int>(v);
    return true;
}

// The programs: pidnsctl and pidnsd as built, lsns and dbus-daemon from PATH; "" if missing.
std::string in_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin:/usr/sbin:/sbin");
    for (std::string dir; std::getline(ss, dir, ':');) {
        const std::string p = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// ---------------------------------------------------------------------------------------------
// kernel.pid_max: raised only if the processes would not fit, and put back on every exit path
// (the signal handler too: open/write/close are async-signal-safe).

char g_pid_max_old[32];  // the value to write back, "" if unchanged

void restore_pid_max() {
    if (!g_pid_max_old[0]) return;
    int fd = ::open("/proc/sys/kernel/pid_max", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)!::write(fd, g_pid_max_old, std::strlen(g_pid_max_old));
        ::close(fd);
    }
    g_pid_max_old[0] = '\0';
}

void on_signal_restore(int sig) {
    restore_pid_max();
    on_signal(sig);  // bench_bus.h: stops the daemons, removes the temp directory, _exit
}

long read_long(const char* path) { return std::strtol(read_file(path).c_str(), nullptr, 10); }

std::size_t proc_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc")) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9') ++n;
        ::closedir(d);
    }
    return n;
}

// Makes room for `extra` more processes: fails on threads-max, raises pid_max (noted for restore).
void make_room(int extra) {
    const long have = static_cast<long>(proc_count());
    const long need = have + extra + 1000;  // the bench's own runs, other users of the host, pids < 300
    const long threads_max = read_long("/proc/sys/kernel/threads-max");
    if (threads_max > 0 && need > threads_max) {
        std::fprintf(stderr, "bench_ctl: %ld processes would exceed kernel.threads-max (%ld); not raised, use --procs\n",
                     need, threads_max);
        std::exit(1);
    }
    const long pid_max = read_long("/proc/sys/kernel/pid_max");
    if (pid_max <= 0 || need <= pid_max) return;
    const long want = std::min(4194304L, std::max(2 * need, 65536L));
    std::snprintf(g_pid_max_old, sizeof g_pid_max_old, "%ld", pid_max);
    std::ofstream f("/proc/sys/kernel/pid_max");
    f << want;
    f.close();
    if (!f) {
        g_pid_max_old[0] = '\0';
        std::fprintf(stderr, "bench_ctl: kernel.pid_max is %ld, too small for %ld processes, and cannot be raised\n",
                     pid_max, need);
        std::exit(1);
    }
    std::printf("note: kernel.pid_max raised from %ld to %ld for the run (restored at the end)\n", pid_max, want);
}

// ---------------------------------------------------------------------------------------------
// Running the commands.

struct Command {
    std::string label;              // as printed
    std::vector<std::string> argv;  // argv[0] is an absolute path
    std::vector<double> ms;         // one per rep
    int bad_status = 0;             // the last non-zero exit status (wait status form), 0 if none
};

// Wall time (ms) of one run: posix_spawn (clone + exec) to waitpid, stdio on /dev/null.
double run_ms(const std::vector<std::string>& args, int& status) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const auto t0 = Clock::now();
    const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        std::fprintf(stderr, "posix_spawn %s: %s\n", argv[0], std::strerror(rc));
        status = -1;
        return 0;
    }
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return us_since(t0, Clock::now()) / 1000.0;
}

// The whole output of a command (stderr left alone), and its wait status.
std::string capture(const std::vector<std::string>& args, int& status) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) std::exit(1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    std::string out;
    if (rc == 0) {
        char buf[65536];
        for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            out.append(buf, static_cast<std::size_t>(n));
        }
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    } else {
        status = -1;
    }
    ::close(p[0]);
    return out;
}

std::string status_text(int st) {
    if (st == -1) return "could not start";
    if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
    return "exit status " + std::to_string(WEXITSTATUS(st));
}

// What lsns saw, from `lsns -r -n -o NS,TYPE,NPROCS`: rows, pid-namespace rows, and the sum of
// NPROCS over those (every process is in exactly one pid namespace).
struct LsnsCounts {
    std::size_t namespaces = 0, pid_namespaces = 0, processes = 0;
    int status = 0;
};

LsnsCounts lsns_counts(const std::string& lsns) {
    LsnsCounts c;
    std::istringstream in(capture({lsns, "-r", "-n", "-o", "NS,TYPE,NPROCS"}, c.status));
    for (std::string line; std::getline(in, line);) {
        std::istringstream row(line);
        std::string ns, type;
        std::size_t nprocs = 0;
        if (!(row >> ns >> type >> nprocs)) continue;
        ++c.namespaces;
        if (type == "pid") {
            ++c.pid_namespaces;
            c.processes += nprocs;
        }
    }
    return c;
}

std::string version_of(const std::string& program) {
    int st = 0;
    std::string v = capture({program, "--version"}, st);
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
}

struct DaemonCounts {
    std::uint32_t processes = 0, namespaces = 0;
    std::size_t pid_namespaces = 0;
};

DaemonCounts daemon_counts(Client& c) {
    DaemonCounts d;
    d.processes = c.process_count();
    d.namespaces = c.namespace_count();
    d.pid_namespaces = c.list_namespaces("pid").size();
    return d;
}

// Waits until pidnsd's Processes property holds at least `want` and then stays put for 0.5 s;
// `reached_s`: when it first held `want`, from the call.
bool wait_indexed(Client& c, std::uint32_t want, double& reached_s) {
    const auto t0 = Clock::now();
    std::uint32_t last = 0;
    int steady = 0;
    reached_s = -1;
    while (us_since(t0, Clock::now()) < 60e6) {
        const std::uint32_t n = c.process_count();
        if (n >= want && reached_s < 0) reached_s = us_since(t0, Clock::now()) / 1e6;
        steady = (n == last && n >= want) ? steady + 1 : 0;
        last = n;
        if (steady >= 5) return true;
        ::usleep(100000);
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (parse_int(argc, argv, i, "--procs", opt.procs) || parse_int(argc, argv, i, "--namespaces", opt.namespaces) ||
            parse_int(argc, argv, i, "--reps", opt.reps))
            continue;
        std::fprintf(stderr, "bench_ctl: unknown argument \"%s\"\n", argv[i]);
        usage(stderr);
        return 2;
    }
    if (opt.namespaces > opt.procs) {
        std::fprintf(stderr, "bench_ctl: --namespaces (%d) must not exceed --procs (%d)\n", opt.namespaces, opt.procs);
        return 2;
    }

    // Everything it runs must be there before anything is made.
    const std::string lsns = in_path("lsns");
    std::vector<std::string> missing;
    if (::access(PIDNSCTL_PATH, X_OK) != 0) missing.push_back(std::string("pidnsctl (") + PIDNSCTL_PATH + ")");
    if (::access(PIDNSD_BIN, X_OK) != 0) missing.push_back(std::string("pidnsd (") + PIDNSD_BIN + ")");
    if (lsns.empty()) missing.push_back("lsns (util-linux, in PATH)");
    if (in_path("dbus-daemon").empty()) missing.push_back("dbus-daemon (in PATH)");
    if (!missing.empty()) {
        for (const auto& m : missing) std::fprintf(stderr, "bench_ctl: missing %s\n", m.c_str());
        std::fprintf(stderr, "bench_ctl: build the targets pidnsd and pidnsctl (cmake --build BUILD --target bench_ctl "
                             "pidnsd pidnsctl) and install util-linux and dbus\n");
        return 1;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_ctl: run as root (it makes pid namespaces, and pidnsd must see every process)\n");
        return 1;
    }

    // From here on SIGINT/SIGTERM put pid_max back and stop the daemons (the pods die with us).
    struct sigaction sa{};
    sa.sa_handler = on_signal_restore;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    const int per_ns = opt.procs / opt.namespaces;
    const int made = per_ns * opt.namespaces;
    std::atexit(restore_pid_max);  // also on the std::exit paths of spawn_pods and PrivateBus::start
    make_room(made);
    const std::size_t host_before = proc_count();
    const auto f0 = Clock::now();
    auto pods = pidns_bench::spawn_pods(opt.namespaces, per_ns);  // before the bus: they keep none of its fds
    const double fork_s = us_since(f0, Clock::now()) / 1e6;

    PrivateBus bus;
    bus.start();
    int rc = 0;
    double index_s = 0;
    if (!wait_indexed(*bus.c, static_cast<std::uint32_t>(made), index_s)) {
        std::printf("pidnsd did not index the %d processes within 60 s (Processes = %u)\n", made, bus.c->process_count());
        bus.report_failure();
        rc = 1;
    }

    utsname u{};
    ::uname(&u);
    std::printf("pidns bench_ctl: %s, Linux %s %s, %ld CPUs, load %s\n", now_text().c_str(), u.release, u.machine,
                ::sysconf(_SC_NPROCESSORS_ONLN), loadavg().c_str());
    std::printf("%d processes made in %d new pid namespaces (%d each: init + sleepers) in %.2f s; /proc had %zu before\n",
                made, opt.namespaces, per_ns, fork_s, host_before);
    std::printf("pidnsctl %s --address=%s\nlsns %s (%s)\n\n", PIDNSCTL_PATH, bus.address.c_str(), lsns.c_str(),
                version_of(lsns).c_str());

    const std::string addr = "--address=" + bus.address;
    std::vector<Command> cmds = {
        {"pidnsctl list", {PIDNSCTL_PATH, addr, "--no-pager", "list"}, {}, 0},
        {"lsns", {lsns}, {}, 0},
        {"pidnsctl tree", {PIDNSCTL_PATH, addr, "--no-pager", "tree"}, {}, 0},
        {"lsns --tree", {lsns, "--tree"}, {}, 0},
        {"pidnsctl --json=short list", {PIDNSCTL_PATH, addr, "--no-pager", "--json=short", "list"}, {}, 0},
        {"lsns -J", {lsns, "-J"}, {}, 0},
        {"pidnsctl --json=short tree", {PIDNSCTL_PATH, addr, "--no-pager", "--json=short", "tree"}, {}, 0},
        {"lsns -J --tree", {lsns, "-J", "--tree"}, {}, 0},
    };
    // Not compared, where pidnsctl's time goes: a run that never connects, and the cost of any process.
    std::vector<Command> floors = {
        {"pidnsctl --version", {PIDNSCTL_PATH, "--version"}, {}, 0},
        {"/bin/true", {"/bin/true"}, {}, 0},
    };

    DaemonCounts d_before, d_after;
    LsnsCounts l_before, l_after;
    if (rc == 0) {
        d_before = daemon_counts(*bus.c);
        l_before = lsns_counts(lsns);
        const std::size_t proc_before = proc_count();
        const auto stats_before = bus.c->statistics();
        const double psi0 = cpu_pressure_us(), d_cpu0 = cpu_us(g_pidnsd), b_cpu0 = cpu_us(g_dbus);

        // A warm-up run each (page cache, dentries, the dynamic loader), then the reps, interleaved.
        const auto t0 = Clock::now();
        for (int rep = -1; rep < opt.reps; ++rep)
            for (auto* list : {&cmds, &floors})
                for (auto& c : *list) {
                    int st = 0;
                    const double ms = run_ms(c.argv, st);
                    if (st != 0) c.bad_status = st;
                    if (rep >= 0) c.ms.push_back(ms);
                }
        const double total_s = us_since(t0, Clock::now()) / 1e6;
        const double psi_ms = (cpu_pressure_us() - psi0) / 1000, d_cpu_ms = (cpu_us(g_pidnsd) - d_cpu0) / 1000,
                     b_cpu_ms = (cpu_us(g_dbus) - b_cpu0) / 1000;
        const auto stats_after = bus.c->statistics();
        d_after = daemon_counts(*bus.c);
        l_after = lsns_counts(lsns);

        std::printf("wall time (ms) of each command as a fresh process (posix_spawn -> waitpid, output to /dev/null),\n"
                    "%d reps after 1 warm-up (%.0f s); ratio = median lsns / median pidnsctl, in brackets the lowest\n"
                    "and highest ratio of the same rep\n\n",
                    opt.reps, total_s);
        std::printf("%-27s %8s %8s   %-15s %9s %9s %8s %17s  %s\n", "pidnsctl", "median", "p90", "lsns", "median", "p90",
                    "ratio", "(per rep)", "target >=50x");
        for (std::size_t k = 0; k + 1 < cmds.size(); k += 2) {
            auto& p = cmds[k];
            auto& l = cmds[k + 1];
            double lo = 1e300, hi = 0;
            for (std::size_t r = 0; r < p.ms.size(); ++r) {
                const double q = p.ms[r] > 0 ? l.ms[r] / p.ms[r] : 0;
                lo = std::min(lo, q);
                hi = std::max(hi, q);
            }
            std::vector<double> ps = p.ms, ls = l.ms;  // quantile sorts; the per-rep lines below keep the order
            const double pm = median(ps), lm = median(ls);
            const double ratio = pm > 0 ? lm / pm : 0;
            char range[64];
            std::snprintf(range, sizeof range, "(%.0f-%.0f)", lo, hi);
            std::printf("%-27s %8.1f %8.1f   %-15s %9.1f %9.1f %7.0fx %17s  %s\n", p.label.c_str(), pm, quantile(ps, 0.9),
                        l.label.c_str(), lm, quantile(ls, 0.9), ratio, range, met(ratio >= 50));
        }

        const char* floor_notes[] = {"starts, parses, exits: no bus, no pidnsd", "any process: spawn, exec, exit"};
        for (std::size_t k = 0; k < floors.size(); ++k) {
            std::vector<double> v = floors[k].ms;
            std::printf("%-27s %8.1f %8.1f   (%s)\n", floors[k].label.c_str(), median(v), quantile(v, 0.9), floor_notes[k]);
        }

        std::printf("\nper rep (ms):\n");
        for (const auto& c : cmds) {
            std::printf("  %-27s", c.label.c_str());
            for (double v : c.ms) std::printf(" %8.1f", v);
            std::printf("\n");
        }

        std::printf("\nwhat each side saw (before the timed runs | after)\n");
        std::printf("%-44s %17s %17s %17s\n", "", "processes", "namespaces", "pid namespaces");
        std::printf("%-44s %8u |%7u %8u |%7u %8zu |%7zu\n", "pidnsd (Processes, Namespaces, ListNs pid)", d_before.processes,
                    d_after.processes, d_before.namespaces, d_after.namespaces, d_before.pid_namespaces,
                    d_after.pid_namespaces);
        std::printf("%-44s %8zu |%7zu %8zu |%7zu %8zu |%7zu\n", "lsns (sum of pid NPROCS, rows, pid rows)", l_before.processes,
                    l_after.processes, l_before.namespaces, l_after.namespaces, l_before.pid_namespaces,
                    l_after.pid_namespaces);
        std::printf("%-44s %8zu\n", "/proc entries", proc_before);
        std::printf("pidnsd's Processes reached the %d made %.2f s after it answered on the bus\n", made, index_s);
        std::printf("(lsns counts itself, pidnsd does not yet; neither sees a process whose ns links it may not read)\n");
        std::printf("\nduring the timed runs: tasks waited for a CPU %.0f ms of %.0f s (PSI); pidnsd used %.0f ms CPU, "
                    "dbus-daemon %.0f ms; load %s\n",
                    psi_ms, total_s, d_cpu_ms, b_cpu_ms, loadavg().c_str());
        std::printf("pidnsd GetStatistics, before -> after:");
        for (const char* key : {"EventsReceived", "Rescans", "VerifyPasses", "VerifyMismatches", "SlowLoopTurns"}) {
            auto b = stats_before.find(key), a = stats_after.find(key);
            if (b != stats_before.end() && a != stats_after.end())
                std::printf(" %s %s -> %s", key, pidns::client::to_string(b->second).c_str(),
                            pidns::client::to_string(a->second).c_str());
        }
        std::printf("\n");
        if (l_before.status != 0) std::printf("note: lsns -r (the counts) ended with %s\n", status_text(l_before.status).c_str());

        // The calls themselves, on this client's connection: ListNamespaces("") next to
        // DescribeNamespaces("") (issue 14's figure), interleaved, 5 times the reps.
        std::vector<double> list_ms, describe_ms;
        std::size_t listed = 0, described = 0;
        for (int rep = -1; rep < 5 * opt.reps; ++rep) {
            auto t0 = std::chrono::steady_clock::now();
            listed = bus.c->list_namespaces("").size();
            auto t1 = std::chrono::steady_clock::now();
            described = bus.c->describe_namespaces("").size();
            auto t2 = std::chrono::steady_clock::now();
            if (rep < 0) continue;  // warm-up
            list_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            describe_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
        }
        std::printf("\nround trips on one connection (%d each, medians): ListNamespaces(\"\") %.2f ms (p90 %.2f, %zu entries), "
                    "DescribeNamespaces(\"\") %.2f ms (p90 %.2f, %zu entries): %.1fx\n",
                    5 * opt.reps, median(list_ms), quantile(list_ms, 0.9), listed, median(describe_ms),
                    quantile(describe_ms, 0.9), described, median(describe_ms) / median(list_ms));

        for (auto& c : floors)
            if (c.bad_status != 0) std::printf("%s: %s in at least one run\n", c.label.c_str(), status_text(c.bad_status).c_str());
        for (auto& c : cmds) {
            if (c.bad_status == 0) continue;
            std::printf("%s: %s in at least one run\n", c.label.c_str(), status_text(c.bad_status).c_str());
            if (c.label.rfind("pidnsctl", 0) == 0) rc = 1;
        }
        if (rc != 0) {  // once more with stderr on ours, to show why
            for (auto& c : cmds)
                if (c.bad_status != 0 && c.label.rfind("pidnsctl", 0) == 0) {
                    int st = 0;
                    (void)capture(c.argv, st);
                }
        }
    }

    const auto complaints = bus.daemon_complaints();
    std::printf("pidnsd log: %zu lines above info\n", complaints.size());
    for (std::size_t i = 0; i < complaints.size() && i < 10; ++i) std::printf("  %s\n", complaints[i].c_str());
    bus.cleanup();
    pidns_bench::kill_pods(pods);
    restore_pid_max();
    return rc;
}
