// bench_dbus: pidnsd over D-Bus, on a private bus it starts itself. TranslatePid against the bus
// floor (Peer.Ping), TranslatePids against single calls, ListNamespaces against `lsns -J` at the
// host's process count and with 10k more, and TranslatePid latency under a fork bomb.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
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
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_bus.h"

extern char** environ;

namespace {

using namespace bench;

// Processes in /proc; `unreadable` counts those whose ns/pid link we may not read (pidnsd, as
// root too, cannot index them either), `zombies` those that exited and wait to be reaped (their
// namespaces are gone; pidnsd does not count them).
std::size_t proc_count(std::size_t* unreadable = nullptr, std::size_t* zombies = nullptr) {
    std::size_t n = 0;
    if (unreadable) *unreadable = 0;
    if (zombies) *zombies = 0;
    DIR* d = ::opendir("/proc");
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        ++n;
        const std::string base = std::string("/proc/") + e->d_name;
        if (zombies) {
            char st[512];
            int fd = ::open((base + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
            ssize_t len = fd >= 0 ? ::read(fd, st, sizeof st - 1) : -1;
            if (fd >= 0) ::close(fd);
            if (len > 0) {
                st[len] = 0;
                const char* paren = std::strrchr(st, ')');
                if (paren && paren[1] == ' ' && paren[2] == 'Z') {
                    ++*zombies;
                    continue;
                }
            }
        }
        char link[64];
        if (unreadable && ::readlink((base + "/ns/pid").c_str(), link, sizeof link) < 0 && errno == EACCES)
            ++*unreadable;
    }
    ::closedir(d);
    return n;
}

// ---------------------------------------------------------------------------------------------
// Extra processes: sleepers in our pid namespace, and holders that are the init of a new pid
// namespace with sleepers (one of them with a nested, level-2 namespace).

struct Holder {
    pid_t init = 0;                // host pid of the level-1 init
    std::uint64_t inode = 0;       // its pid namespace
    int nprocs = 0;                // processes in it (init included)
    std::uint64_t inner_inode = 0; // the level-2 namespace, if any
    int inner_nprocs = 0;
};

struct Extras {
    std::vector<pid_t> sleepers;  // direct children in our pid namespace
    std::vector<Holder> holders;
    int total() const {
        int n = static_cast<int>(sleepers.size());
        for (const auto& h : holders) n += h.nprocs + h.inner_nprocs;
        return n;
    }
};

// A sleeper keeps no fds (not the client's bus socket, not the pipes).
[[noreturn]] void sleep_forever() {
    ::close_range(0, ~0U, 0);
    for (;;) ::pause();
}

// One sleeper that dies with `parent` (this process); its pid, or -1 (reported) if fork failed.
pid_t fork_sleeper(pid_t parent) {
    pid_t c = ::fork();
    if (c == 0) {
        die_with_parent(parent, SIGKILL);
        sleep_forever();
    }
    if (c < 0) std::perror("fork (sleeper)");
    return c;
}

// In a pid namespace's init: fork n-1 sleepers that die with it.
void fork_sleepers(int n) {
    const pid_t me = ::getpid();
    for (int k = 1; k < n; ++k)
        if (fork_sleeper(me) < 0) return;
}

std::uint64_t ns_inode(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// unshare(CLONE_NEWPID) then fork: the child is the init of a new pid namespace, as with
// clone(CLONE_NEWPID), and the bench's own pid namespace is restored right after.
Holder spawn_holder(int nprocs, int inner_nprocs) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) std::exit(1);
    int self_pidns = ::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (::unshare(CLONE_NEWPID) != 0) {
        std::perror("unshare(CLONE_NEWPID) (run as root)");
        std::exit(1);
    }
    pid_t init = ::fork();
    if (init == 0) {
        die_with_parent(0, SIGKILL);  // getppid() is 0 across the namespace boundary
        ::close(ready[0]);
        fork_sleepers(nprocs);
        char b = 1;
        (void)!::write(ready[1], &b, 1);
        if (inner_nprocs > 0 && ::unshare(CLONE_NEWPID) == 0) {
            pid_t inner = ::fork();
            if (inner == 0) {
                ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // its parent is the holder, alive until it is killed
                fork_sleepers(inner_nprocs);
                (void)!::write(ready[1], &b, 1);
                sleep_forever();
            }
        }
        ::close(ready[1]);
        sleep_forever();
    }
    if (::setns(self_pidns, CLONE_NEWPID) != 0) std::perror("setns back");
    ::close(self_pidns);
    ::close(ready[1]);
    Holder h;
    h.init = init;
    h.nprocs = nprocs;
    h.inner_nprocs = inner_nprocs;
    char b;
    for (int want = inner_nprocs > 0 ? 2 : 1; want > 0; --want)
        if (::read(ready[0], &b, 1) != 1) {
            std::fprintf(stderr, "holder %d did not start\n", init);
            std::exit(1);
        }
    ::close(ready[0]);
    h.inode = ns_inode("/proc/" + std::to_string(init) + "/ns/pid");
    // The holder unshared again before forking the inner init: its pid_for_children is level 2.
    if (inner_nprocs > 0) h.inner_inode = ns_inode("/proc/" + std::to_string(init) + "/ns/pid_for_children");
    return h;
}

Extras spawn_extras(int total) {
    Extras x;
    const int direct = total / 2;
    const int nested = total - direct;
    const pid_t me = ::getpid();
    x.sleepers.reserve(static_cast<std::size_t>(direct));
    for (int i = 0; i < direct; ++i) {
        const pid_t c = fork_sleeper(me);
        if (c < 0) break;
        x.sleepers.push_back(c);
    }
    // Four level-1 namespaces; the last also holds a level-2 namespace with a fifth of its share.
    const int per = nested / 4;
    for (int i = 0; i < 4; ++i) {
        int share = i < 3 ? per : nested - 3 * per;
        int inner = i == 3 ? share / 5 : 0;
        x.holders.push_back(spawn_holder(share - inner, inner));
    }
    return x;
}

void kill_extras(Extras& x) {
    for (pid_t p : x.sleepers) ::kill(p, SIGKILL);
    for (const auto& h : x.holders) ::kill(h.init, SIGKILL);
    for (pid_t p : x.sleepers) ::waitpid(p, nullptr, 0);
    for (const auto& h : x.holders) ::waitpid(h.init, nullptr, 0);  // returns once its namespace is empty
}

// ---------------------------------------------------------------------------------------------

struct Options {
    int reps = 5;
    bool quick = false;
};

struct Bench : PrivateBus {
    Options opt;
    pid_t self = ::getpid();

    // ---- 1. TranslatePid vs Peer.Ping ----
    // Puts the client, dbus-daemon and pidnsd (every thread) on one CPU, or back on all the CPUs
    // the bench started with.
    cpu_set_t all_cpus{};
    void pin_all(bool one_cpu) {
        if (CPU_COUNT(&all_cpus) == 0) ::sched_getaffinity(0, sizeof all_cpus, &all_cpus);
        cpu_set_t set = all_cpus;
        if (one_cpu) {
            CPU_ZERO(&set);
            for (int i = 0; i < CPU_SETSIZE; ++i)
                if (CPU_ISSET(i, &all_cpus)) {
                    CPU_SET(i, &set);
                    break;
                }
        }
        for (pid_t pid : {self, static_cast<pid_t>(g_dbus), static_cast<pid_t>(g_pidnsd)}) {
            DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
            if (!d) continue;
            while (auto* e = ::readdir(d))
                if (e->d_name[0] != '.') ::sched_setaffinity(std::atoi(e->d_name), sizeof set, &set);
            ::closedir(d);
        }
    }

    struct RoundTrip {
        // [0]: free scheduling, [1]: all three on one CPU
        std::vector<double> tp_med[2], ping_med[2];  // per rep, µs
        std::vector<double> cpu_d[2][2], cpu_b[2][2], cpu_c[2][2];  // [mode][tp/ping], per rep, µs/call
        std::vector<double> tp_all;                  // every TranslatePid latency (free), µs
        long wrong = 0;
        int n = 0;
    };

    RoundTrip round_trip(int n) {
        RoundTrip r;
        r.n = n;
        std::vector<double> lat(static_cast<std::size_t>(n));
        const auto want = static_cast<std::uint32_t>(self);
        for (int i = 0; i < n / 10; ++i) {  // warm-up
            (void)c->TranslatePid(want, 0, 0);
            c->ping();
        }
        for (int rep = 0; rep < opt.reps; ++rep) {
            for (int mode = 0; mode < 2; ++mode) {
                pin_all(mode == 1);
                for (int k = 0; k < 2; ++k) {
                    const bool tp = (k == 0) == (rep % 2 == 0);  // alternate the order between reps
                    const double d0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus), c0 = cpu_us(0);
                    for (int i = 0; i < n; ++i) {
                        auto t0 = Clock::now();
                        if (tp) {
                            if (c->TranslatePid(want, 0, 0) != want) ++r.wrong;
                        } else {
                            c->ping();
                        }
                        lat[static_cast<std::size_t>(i)] = us_since(t0, Clock::now());
                    }
                    const int j = tp ? 0 : 1;
                    r.cpu_d[mode][j].push_back((cpu_us(g_pidnsd) - d0) / n);
                    r.cpu_b[mode][j].push_back((cpu_us(g_dbus) - b0) / n);
                    r.cpu_c[mode][j].push_back((cpu_us(0) - c0) / n);
                    (tp ? r.tp_med : r.ping_med)[mode].push_back(median(lat));
                    if (tp && mode == 0) r.tp_all.insert(r.tp_all.end(), lat.begin(), lat.end());
                }
            }
            pin_all(false);
        }
        return r;
    }

    // ---- 2. TranslatePids(1000) vs 1000 x TranslatePid ----
    struct Batch {
        // [0] 1000 x TranslatePid(pids[i]), [1] 1000 x TranslatePid(own pid), [2] 1000 x Peer.Ping:
        // total ms, and CPU µs per call of pidnsd, dbus-daemon and the client; per rep.
        std::vector<double> ms[3], cpu_d[3], cpu_b[3], cpu_c[3];
        std::vector<double> batch_ms, batch_cpu_d;  // one TranslatePids(pids) call
        long wrong = 0;
        std::size_t n = 0;
    };

    Batch batch(const std::vector<std::uint32_t>& pids) {
        Batch b;
        b.n = pids.size();
        constexpr int kBatchCalls = 10;
        const auto own = static_cast<std::uint32_t>(self);
        for (int i = 0; i < 3; ++i) (void)c->TranslatePids(pids, 0, 0);
        for (int rep = 0; rep < opt.reps; ++rep) {
            for (int j = 0; j < 3; ++j) {
                const int k = (j + rep) % 3;  // rotate the order between reps
                const double d0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus), c0 = cpu_us(0);
                auto t0 = Clock::now();
                for (auto p : pids) {
                    if (k == 0 && c->TranslatePid(p, 0, 0) != p) ++b.wrong;
                    if (k == 1 && c->TranslatePid(own, 0, 0) != own) ++b.wrong;
                    if (k == 2) c->ping();
                }
                b.ms[k].push_back(us_since(t0, Clock::now()) / 1e3);
                const double n = static_cast<double>(pids.size());
                b.cpu_d[k].push_back((cpu_us(g_pidnsd) - d0) / n);
                b.cpu_b[k].push_back((cpu_us(g_dbus) - b0) / n);
                b.cpu_c[k].push_back((cpu_us(0) - c0) / n);
            }
            const double d0 = cpu_us(g_pidnsd);
            auto t1 = Clock::now();
            for (int i = 0; i < kBatchCalls; ++i)
                if (c->TranslatePids(pids, 0, 0) != pids) ++b.wrong;
            b.batch_ms.push_back(us_since(t1, Clock::now()) / 1e3 / kBatchCalls);
            b.batch_cpu_d.push_back((cpu_us(g_pidnsd) - d0) / kBatchCalls);
        }
        return b;
    }

    // ---- 3. ListNamespaces("") vs lsns -J ----
    struct Listing {
        std::size_t procs_daemon = 0, procs_proc = 0, procs_unreadable = 0, procs_zombie = 0, entries = 0;
        double list_ms = 0, lsns_ms = 0;
        int lsns_status = 0;
    };

    double run_lsns(int& status) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        char a0[] = "lsns", a1[] = "-J";
        char* argv[] = {a0, a1, nullptr};
        auto t0 = Clock::now();
        pid_t pid = 0;
        int rc = ::posix_spawnp(&pid, "lsns", &fa, nullptr, argv, environ);
        int st = 0;
        if (rc == 0) ::waitpid(pid, &st, 0);
        auto t1 = Clock::now();
        posix_spawn_file_actions_destroy(&fa);
        status = rc != 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return us_since(t0, t1) / 1e3;
    }

    Listing listing() {
        Listing l;
        l.procs_daemon = processes();
        l.procs_proc = proc_count(&l.procs_unreadable, &l.procs_zombie);
        constexpr int kCalls = 20;
        l.entries = c->ListNamespaces("").size();
        int st = 0;
        (void)run_lsns(st);  // warm-up (page cache, dentries)
        std::vector<double> lists, lsnss;
        for (int rep = 0; rep < opt.reps; ++rep) {
            auto t0 = Clock::now();
            for (int i = 0; i < kCalls; ++i) (void)c->ListNamespaces("");
            lists.push_back(us_since(t0, Clock::now()) / 1e3 / kCalls);
            lsnss.push_back(run_lsns(st));
            if (st != 0) l.lsns_status = st;
        }
        l.list_ms = median(lists);
        l.lsns_ms = median(lsnss);
        return l;
    }

    // Whether every holder's pid namespace is listed with its process count.
    bool holders_indexed(const Extras& x) {
        auto list = c->ListNamespaces("pid");
        for (const auto& h : x.holders)
            for (auto [inode, n] : {std::pair{h.inode, h.nprocs}, std::pair{h.inner_inode, h.inner_nprocs}}) {
                if (!inode) continue;
                bool found = false;
                for (const auto& e : list)
                    if (std::get<1>(e) == inode) found = std::get<7>(e) == static_cast<std::uint32_t>(n);
                if (!found) return false;
            }
        return true;
    }

    // Waits until the index holds the extras: every sleeper in ListProcesses(0) (answered from the
    // index alone; TranslatePid would ask the kernel on a miss) and every holder's namespace with
    // its process count. Returns the seconds it took, or -1 after `limit_s`.
    double wait_indexed(const Extras& x, double limit_s) {
        auto t0 = Clock::now();
        std::vector<std::uint32_t> want(x.sleepers.begin(), x.sleepers.end());
        std::sort(want.begin(), want.end());
        for (;;) {
            auto have = c->ListProcesses(0);  // ascending
            bool ok = std::includes(have.begin(), have.end(), want.begin(), want.end()) && holders_indexed(x);
            const double s = us_since(t0, Clock::now()) / 1e6;
            if (ok) return s;
            if (s > limit_s) return -1;
            ::usleep(20000);
        }
    }

    // Waits until the index forgot the extras: their pid namespaces gone from ListNamespaces and
    // TranslatePids of the sleepers' pids all 0 (an index hit would answer with the stale pid).
    double wait_forgotten(const Extras& x, double limit_s) {
        auto t0 = Clock::now();
        std::vector<std::uint32_t> pids(x.sleepers.begin(), x.sleepers.end());
        for (;;) {
            auto got = c->TranslatePids(pids, 0, 0);
            bool ok = std::all_of(got.begin(), got.end(), [](std::uint32_t v) { return v == 0; });
            if (ok)
                for (const auto& e : c->ListNamespaces("pid"))
                    for (const auto& h : x.holders)
                        if (std::get<1>(e) == h.inode || (h.inner_inode && std::get<1>(e) == h.inner_inode)) ok = false;
            const double s = us_since(t0, Clock::now()) / 1e6;
            if (ok) return s;
            if (s > limit_s) return -1;
            ::usleep(20000);
        }
    }

    // ---- 4. TranslatePid under a fork bomb ----
    struct Bomb {
        std::vector<double> lat;  // µs
        long wrong = 0, errors = 0;
        long forks = 0, fork_failures = 0;
        double bomb_s = 0, pidnsd_cpu_share = 0;
        std::string first_error;
    };

    Bomb fork_bomb(int total, int max_alive) {
        Bomb b;
        int done[2];
        if (::pipe2(done, O_CLOEXEC) != 0) std::exit(1);
        const pid_t parent = ::getpid();
        const double d0 = cpu_us(g_pidnsd);
        const auto w0 = Clock::now();
        pid_t bomber = ::fork();
        if (bomber == 0) {
            die_with_parent(parent, SIGKILL);
            // Keep only the result pipe, so the forks copy a small fd table.
            ::dup2(done[1], 3);
            ::close_range(4, ~0U, 0);
            long made = 0, failed = 0;
            int alive = 0;
            auto t0 = Clock::now();
            for (int i = 0; i < total; ++i) {
                if (alive >= max_alive && ::waitpid(-1, nullptr, 0) > 0) --alive;
                pid_t k = ::fork();
                if (k == 0) ::_exit(0);
                if (k < 0) {
                    ++failed;
                    if (alive > 0 && ::waitpid(-1, nullptr, 0) > 0) --alive;
                    continue;
                }
                ++alive;
                ++made;
            }
            while (alive > 0 && ::waitpid(-1, nullptr, 0) > 0) --alive;
            long out[3] = {made, failed, static_cast<long>(us_since(t0, Clock::now()))};
            (void)!::write(3, out, sizeof out);
            ::_exit(0);
        }
        ::close(done[1]);
        const auto want = static_cast<std::uint32_t>(self);
        pollfd pfd{done[0], POLLIN, 0};
        b.lat.reserve(1 << 20);
        while (::poll(&pfd, 1, 0) == 0) {
            auto t0 = Clock::now();
            try {
                if (c->TranslatePid(want, 0, 0) != want) ++b.wrong;
            } catch (const sdbus::Error& e) {
                if (b.errors++ == 0) b.first_error = e.getName() + ": " + e.getMessage();
            }
            b.lat.push_back(us_since(t0, Clock::now()));
        }
        const double wall = us_since(w0, Clock::now());
        b.pidnsd_cpu_share = (cpu_us(g_pidnsd) - d0) / wall;
        long out[3] = {};
        if (::read(done[0], out, sizeof out) == static_cast<ssize_t>(sizeof out)) {
            b.forks = out[0];
            b.fork_failures = out[1];
            b.bomb_s = static_cast<double>(out[2]) / 1e6;
        }
        ::close(done[0]);
        ::waitpid(bomber, nullptr, 0);
        return b;
    }
};

Extras* g_extras = nullptr;  // alive extra processes, for the error path

// Everything after start-up; throws sdbus::Error if the daemon fails a call.
int run(Bench& b, const Options& opt, const std::string& cmdline) {
    const int n_rt = opt.quick ? 2000 : 20000;
    const int n_extra = opt.quick ? 1000 : 10000;
    const int n_batch = 1000;
    const int n_bomb = opt.quick ? 4096 : 32768;
    const int bomb_alive = 256;


    utsname u{};
    ::uname(&u);
    std::printf("pidnsd bench_dbus: %s\n", cmdline.c_str());
    std::printf("kernel %s %s (%s), %u cpus, pid_max %s", u.sysname, u.release, u.version,
                std::thread::hardware_concurrency(), read_file("/proc/sys/kernel/pid_max").c_str());
    std::printf("date   %s, load average %s\n", now_text().c_str(), loadavg().c_str());
    std::printf("bus    dbus-daemon --config-file=%s --nofork\n", b.conf_path.c_str());
    std::printf("       (%s with @SOCKET@=%s, @POLICY@=%s)\n", pidns::harness::bus_conf_template().c_str(),
                b.bus_path.c_str(), PIDNS_SOURCE_DIR "/dbus/org.pidns.conf");
    std::printf("daemon %s --bus=%s  (pid %d; version %s, event source %s, kernel ids %s)\n", b.pidnsd_path.c_str(),
                b.address.c_str(), static_cast<int>(g_pidnsd), b.c->Version().c_str(), b.c->EventSource().c_str(),
                b.c->KernelNamespaceIds() ? "yes" : "no");
    std::printf("client sdbus-c++ generated proxy org::pidns::Manager1_proxy on its own connection, pid %d\n",
                static_cast<int>(b.self));
    std::printf("lsns   lsns -J > /dev/null (posix_spawn + waitpid)\n");
    std::printf("medians of %d reps%s\n\n", opt.reps, opt.quick ? " (--quick: small counts, a smoke run)" : "");
    std::fflush(stdout);

    // 1.
    const double psi1 = cpu_pressure_us();
    const auto w1 = Clock::now();
    auto rt = b.round_trip(n_rt);
    const double psi1_ms = (cpu_pressure_us() - psi1) / 1e3, wall1_ms = us_since(w1, Clock::now()) / 1e3;
    const double tp = median(rt.tp_med[0]), ping = median(rt.ping_med[0]);
    std::printf("1. round trip, %d calls per rep, median latency per call\n", n_rt);
    std::printf("%-40s %14s %14s %8s\n", "", "TranslatePid", "Peer.Ping", "ratio");
    auto reps_text = [](const std::vector<double>& v) {
        std::string s;
        for (double x : v) {
            char t[32];
            std::snprintf(t, sizeof t, "%s%.1f", s.empty() ? "" : " ", x);
            s += t;
        }
        return s;
    };
    for (int mode = 0; mode < 2; ++mode) {
        const double a = median(rt.tp_med[mode]), p = median(rt.ping_med[mode]);
        if (mode == 0)
            std::printf("%-40s %14.1f %14.1f %8.2f   target <=1.2: %s\n", "latency (us)", a, p, a / p, met(a / p <= 1.2));
        else
            std::printf("%-40s %14.1f %14.1f %8.2f\n", "latency (us), all three on one CPU", a, p, a / p);
        std::printf("%-40s %s | %s\n", "  per rep (us)", reps_text(rt.tp_med[mode]).c_str(), reps_text(rt.ping_med[mode]).c_str());
        auto row = [&](const char* name, const std::vector<double>* v) {
            std::printf("%-40s %14.1f %14.1f %8.2f\n", name, median(v[0]), median(v[1]), median(v[0]) / median(v[1]));
        };
        row("  pidnsd CPU per call (us)", rt.cpu_d[mode]);
        row("  dbus-daemon CPU per call (us)", rt.cpu_b[mode]);
        row("  client CPU per call (us)", rt.cpu_c[mode]);
    }
    std::printf("%-40s %14ld\n", "wrong TranslatePid answers", rt.wrong);
    std::printf("CPU pressure during 1: tasks waited for a CPU %.0f ms of %.0f ms (/proc/pressure/cpu some)\n\n", psi1_ms,
                wall1_ms);
    std::fflush(stdout);

    // 3 at the host's count.
    auto host = b.listing();

    // The extra processes; then 2 and 3 with them.
    const std::uint32_t base = b.processes();
    auto t_spawn = Clock::now();
    Extras x = spawn_extras(n_extra);
    g_extras = &x;
    const double spawn_s = us_since(t_spawn, Clock::now()) / 1e6;
    const double caught_s = b.wait_indexed(x, 120);
    std::vector<std::uint32_t> pids(x.sleepers.begin(), x.sleepers.begin() + std::min<std::size_t>(n_batch, x.sleepers.size()));
    auto bt = b.batch(pids);
    auto big = b.listing();
    kill_extras(x);
    g_extras = nullptr;
    const double forgot_s = b.wait_forgotten(x, 60);

    std::printf("2. %zu pids of live processes (our sleepers), from 0 to 0; total time per %zu translations\n", bt.n, bt.n);
    std::printf("%-40s %14s %14s %8s\n", "", "1 x TranslatePids", "N x TranslatePid", "ratio");
    const double bm = median(bt.batch_ms), sm = median(bt.ms[0]);
    std::printf("%-40s %14.2f %14.1f %8.1f   (single calls / batch)\n", "total (ms)", bm, sm, sm / bm);
    std::printf("%-40s %14.2f %14.2f\n", "per pid (us)", bm * 1e3 / static_cast<double>(bt.n), sm * 1e3 / static_cast<double>(bt.n));
    std::printf("%-40s %14.1f %14.1f\n", "pidnsd CPU (us per call)", median(bt.batch_cpu_d), median(bt.cpu_d[0]));
    std::printf("%-40s %14ld\n", "wrong answers", bt.wrong);
    std::printf("  the same number of single calls, same moment (%zu extra processes alive):\n", static_cast<std::size_t>(x.total()));
    std::printf("%-40s %14s %14s %14s\n", "", "TranslatePid(p)", "TranslatePid(own)", "Peer.Ping");
    std::printf("%-40s %14.1f %14.1f %14.1f\n", "  total (ms)", sm, median(bt.ms[1]), median(bt.ms[2]));
    std::printf("%-40s %14.1f %14.1f %14.1f\n", "  pidnsd CPU per call (us)", median(bt.cpu_d[0]), median(bt.cpu_d[1]), median(bt.cpu_d[2]));
    std::printf("%-40s %14.1f %14.1f %14.1f\n", "  dbus-daemon CPU per call (us)", median(bt.cpu_b[0]), median(bt.cpu_b[1]), median(bt.cpu_b[2]));
    std::printf("%-40s %14.1f %14.1f %14.1f\n\n", "  client CPU per call (us)", median(bt.cpu_c[0]), median(bt.cpu_c[1]), median(bt.cpu_c[2]));

    std::printf("3. ListNamespaces(\"\") (mean of 20 calls per rep) vs lsns -J (one run per rep)\n");
    std::printf("%-40s %14s %14s\n", "", "host", "+extra procs");
    std::printf("%-40s %14zu %14zu\n", "processes, pidnsd Processes property", host.procs_daemon, big.procs_daemon);
    std::printf("%-40s %14zu %14zu\n", "processes, /proc", host.procs_proc, big.procs_proc);
    std::printf("%-40s %14zu %14zu\n", "  of which zombies", host.procs_zombie, big.procs_zombie);
    std::printf("%-40s %14zu %14zu\n", "  of which ns links unreadable (EACCES)", host.procs_unreadable, big.procs_unreadable);
    std::printf("%-40s %14zu %14zu\n", "namespaces listed", host.entries, big.entries);
    std::printf("%-40s %14.3f %14.3f\n", "ListNamespaces(\"\") (ms)", host.list_ms, big.list_ms);
    std::printf("%-40s %14.1f %14.1f\n", "lsns -J (ms)", host.lsns_ms, big.lsns_ms);
    const double sp_host = host.lsns_ms / host.list_ms, sp_big = big.lsns_ms / big.list_ms;
    std::printf("%-40s %14.0f %14.0f   target >=100x with %d extra: %s\n", "speed-up (lsns / ListNamespaces)", sp_host, sp_big,
                n_extra, met(sp_big >= 100));
    if (host.lsns_status || big.lsns_status) std::printf("note: lsns -J exited %d / %d\n", host.lsns_status, big.lsns_status);
    std::printf("extra processes: %d (%zu in our pid namespace, %zu in 4 level-1 and 1 level-2 pid namespaces), forked in %.2f s\n",
                x.total(), x.sleepers.size(), static_cast<std::size_t>(x.total()) - x.sleepers.size(), spawn_s);
    if (caught_s >= 0)
        std::printf("pidnsd indexed them %.2f s after the last fork\n", caught_s);
    else
        std::printf("pidnsd had NOT indexed them 120 s after the last fork (Processes %u, base %u + %d)\n", b.processes(),
                    base, x.total());
    if (forgot_s >= 0)
        std::printf("pidnsd forgot them %.2f s after they were reaped\n\n", forgot_s);
    else
        std::printf("pidnsd still had them 60 s after they were reaped (Processes %u, base %u)\n\n", b.processes(), base);
    std::fflush(stdout);

    // 4.
    const std::uint32_t before_bomb = b.processes();
    const double psi4 = cpu_pressure_us();
    const auto w4 = Clock::now();
    auto bomb = b.fork_bomb(n_bomb, bomb_alive);
    const double psi4_ms = (cpu_pressure_us() - psi4) / 1e3, wall4_ms = us_since(w4, Clock::now()) / 1e3;
    std::vector<double> idle = rt.tp_all;
    const double i50 = quantile(idle, 0.5), i99 = quantile(idle, 0.99), imax = idle.empty() ? 0 : idle.back();
    const double b50 = quantile(bomb.lat, 0.5), b99 = quantile(bomb.lat, 0.99), bmax = bomb.lat.empty() ? 0 : bomb.lat.back();
    std::printf("4. TranslatePid(own pid, 0, 0) in a loop while a child forks %d children (_exit(0) at once, <= %d alive)\n",
                n_bomb, bomb_alive);
    std::printf("%-40s %14s %14s\n", "", "idle (part 1)", "fork bomb");
    std::printf("%-40s %14zu %14zu\n", "calls", idle.size(), bomb.lat.size());
    std::printf("%-40s %14.1f %14.1f\n", "p50 (us)", i50, b50);
    std::printf("%-40s %14.1f %14.1f   target <=5000: %s\n", "p99 (us)", i99, b99, met(b99 <= 5000 && !bomb.lat.empty()));
    std::printf("%-40s %14.1f %14.1f\n", "max (us)", imax, bmax);
    auto over = [](const std::vector<double>& v, double lim) {
        return static_cast<long>(std::count_if(v.begin(), v.end(), [&](double t) { return t > lim; }));
    };
    std::printf("%-40s %14ld %14ld\n", "calls over 1 ms", over(idle, 1000), over(bomb.lat, 1000));
    std::printf("%-40s %14ld %14ld\n", "calls over 5 ms", over(idle, 5000), over(bomb.lat, 5000));
    std::printf("%-40s %14ld %14ld\n", "wrong answers", rt.wrong, bomb.wrong);
    std::printf("%-40s %14d %14ld\n", "errors", 0, bomb.errors);
    if (bomb.errors) std::printf("  first error: %s\n", bomb.first_error.c_str());
    std::printf("%-40s %14s %14.0f   (%ld forks in %.2f s, %ld failed)\n", "forks/s", "", bomb.bomb_s > 0 ? bomb.forks / bomb.bomb_s : 0,
                bomb.forks, bomb.bomb_s, bomb.fork_failures);
    std::printf("%-40s %14s %14.0f\n", "pidnsd CPU during the bomb (% of a core)", "", bomb.pidnsd_cpu_share * 100);
    std::printf("%-40s %14s %14s\n", "all answers correct", "", bomb.wrong == 0 && bomb.errors == 0 ? "yes" : "NO");
    std::printf("CPU pressure during 4: tasks waited for a CPU %.0f ms of %.0f ms (during 1: %.0f of %.0f)\n", psi4_ms,
                wall4_ms, psi1_ms, wall1_ms);
    // Did the index come back to the host's count once the bomb's children were gone?
    std::uint32_t after = 0;
    auto t_settle = Clock::now();
    do {
        after = b.processes();
        if (after <= before_bomb + 3) break;
        ::usleep(50000);
    } while (us_since(t_settle, Clock::now()) < 10e6);
    std::size_t unreadable = 0, zombies = 0;
    const std::size_t in_proc = proc_count(&unreadable, &zombies);
    std::printf("processes before / after the bomb: %u / %u (pidnsd); /proc now %zu (%zu zombies, %zu unreadable)\n\n",
                before_bomb, after, in_proc, zombies, unreadable);

    auto complaints = b.daemon_complaints();
    std::printf("pidnsd log: %zu lines above info%s\n", complaints.size(), complaints.empty() ? "" : ":");
    for (std::size_t i = 0; i < complaints.size() && i < 10; ++i) std::printf("  %s\n", complaints[i].c_str());
    if (complaints.size() > 10) std::printf("  ... (%zu more)\n", complaints.size() - 10);
    std::istringstream bus_log(read_file(b.bus_log_path));
    for (std::string line; std::getline(bus_log, line);) std::printf("dbus-daemon: %s\n", line.c_str());

    std::printf("\nload average at the end: %s\n", loadavg().c_str());
    std::printf("summary: round trip ratio %.2f (<=1.2 %s), batch speed-up %.0fx, ListNamespaces %.0fx faster than lsns -J "
                "(>=100x %s), fork-bomb p99 %.2f ms (<=5 ms %s)\n",
                tp / ping, met(tp / ping <= 1.2), sm / bm, sp_big, met(sp_big >= 100), b99 / 1e3, met(b99 <= 5000));
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    std::string cmdline = "bench_dbus";
    for (int i = 1; i < argc; ++i) {
        cmdline += std::string(" ") + argv[i];
        if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
            opt.reps = std::max(1, std::atoi(argv[++i]));
            cmdline += std::string(" ") + argv[i];
        } else if (!std::strcmp(argv[i], "--quick")) {
            opt.quick = true;
        } else {
            std::puts("usage: bench_dbus [--reps N] [--quick]   (root; starts its own dbus-daemon and pidnsd)");
            return 2;
        }
    }
    install_signal_handlers();

    Bench b;
    b.opt = opt;
    b.start();
    int rc = 1;
    try {
        rc = run(b, opt, cmdline);
    } catch (const std::exception& e) {
        std::printf("\nFAILED: %s\n", e.what());
        if (g_extras) kill_extras(*g_extras);
        b.report_failure();
    }
    b.cleanup();
    return rc;
}
