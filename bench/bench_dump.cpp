// bench_dump: DumpPidTree of 1,000 and 10,000 tasks over 5 nested pid namespaces, next to reading
// every task's /proc status directly (the floor of any dump read fresh from the kernel).
//
//   sudo ./build/bench/bench_dump [--reps N] [--tasks N]...
//
// For each size (1,000 and 10,000 tasks, or those given with --tasks) it builds a tree below the
// bench: 5 pid namespaces nested in each other, in each an init and sleepers (size/5 tasks per
// level), starts a private dbus-daemon and pidnsd on it (bench_bus.h), waits until pidnsd lists
// the top namespace, then times, N times each, alternating:
//   - dump:  DumpPidTree(top namespace) over the bus, the whole answer received and decoded, with
//     the CPU time it took in pidnsd (all its threads), in dbus-daemon and in this process;
//   - floor: open + read + close of /proc/TID/status for every task the dump listed, in this process
//     (one read each, as pidnsd reads status: procfs makes it whole); and the same plus a readlink
//     of each task's ns/pid_for_children, which no status line gives;
//   - library: the same dump by pidns::PidTreeDump in this process, on a Model scanned just
//     before (no bus, no event loop), and its CPU time: what the bus and pidnsd's slicing add is
//     the difference.
// It checks that each dump lists every task of the tree, prints the medians and their ratio
// (target: dump within 1.5x the floor), and exits non-zero when a dump was incomplete.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_bus.h"
#include "model.h"
#include "pid_dump.h"

using namespace bench;

namespace {

constexpr int kLevels = 5;

[[noreturn]] void sleeper() {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) ::pause();
}

// One level's init: per_level - 1 sleepers, then the next level's init (CLONE_NEWPID); the
// deepest tells `ready_fd` when everything exists.
[[noreturn]] void level_init(int depth, int per_level, int ready_fd) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int i = 0; i < per_level - 1; ++i) {
        const pid_t p = ::fork();
        if (p < 0) ::_exit(2);
        if (p == 0) sleeper();
    }
    if (depth + 1 < kLevels) {
        clone_args a{};
        a.flags = CLONE_NEWPID;
        a.exit_signal = SIGCHLD;
        const pid_t p = static_cast<pid_t>(::syscall(SYS_clone3, &a, sizeof a));
        if (p < 0) ::_exit(3);
        if (p == 0) level_init(depth + 1, per_level, ready_fd);
    } else {
        (void)!::write(ready_fd, "x", 1);
    }
    for (;;) ::pause();
}

// The top init (host pid) of a fresh 5-level tree of `tasks` tasks; exits on failure.
pid_t build_tree(int tasks) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) std::exit(1);
    clone_args a{};
    a.flags = CLONE_NEWPID;
    a.exit_signal = SIGCHLD;
    const pid_t top = static_cast<pid_t>(::syscall(SYS_clone3, &a, sizeof a));
    if (top < 0) {
        std::perror("clone3(CLONE_NEWPID)");
        std::exit(1);
    }
    if (top == 0) {
        ::close(p[0]);
        level_init(0, tasks / kLevels, p[1]);
    }
    ::close(p[1]);
    char c;
    pollfd pfd{p[0], POLLIN, 0};
    if (::poll(&pfd, 1, 60000) != 1 || ::read(p[0], &c, 1) != 1) {
        std::fprintf(stderr, "the tree of %d tasks was not built within 60 s\n", tasks);
        ::kill(top, SIGKILL);
        std::exit(1);
    }
    ::close(p[0]);
    return top;
}

std::uint64_t inode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Reads /proc/TID/status of every task, as a checkpointer would without pidnsd.
std::size_t read_statuses(const std::vector<std::uint32_t>& tids) {
    static char buf[8192];
    std::size_t bytes = 0;
    for (auto tid : tids) {
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%u/status", tid);
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        // procfs makes status whole: a read that does not fill the buffer is the last (as pidnsd reads it).
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
            bytes += static_cast<std::size_t>(n);
            if (static_cast<std::size_t>(n) < sizeof buf) break;
        }
        ::close(fd);
    }
    return bytes;
}

// The floor plus what status does not say: readlink of each task's ns/pid_for_children (the
// unshared-pid mark and the pid_for_children field need it; the kernel shows it nowhere else).
std::size_t read_statuses_and_links(const std::vector<std::uint32_t>& tids) {
    std::size_t n = read_statuses(tids);
    char link[64];
    for (auto tid : tids) {
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%u/ns/pid_for_children", tid);
        if (::readlink(path, link, sizeof link) > 0) ++n;
    }
    return n;
}

struct Row {
    int tasks = 0;
    std::size_t dumped = 0;
    double dump_ms = 0, floor_ms = 0, lib_ms = 0, links_ms = 0;
    double pidnsd_ms = 0, bus_ms = 0, client_ms = 0, lib_cpu_ms = 0;  // CPU per dump: pidnsd (all threads), dbus-daemon, this process
    bool complete = true;
};

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    std::vector<int> sizes;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--tasks") == 0 && i + 1 < argc) {
            const int n = std::atoi(argv[++i]);
            if (n < kLevels || n > 50000) {
                std::fprintf(stderr, "--tasks: %d..50000 tasks\n", kLevels);
                return 2;
            }
            sizes.push_back(n);
        } else {
            std::fprintf(stderr, "usage: %s [--reps N] [--tasks N]...\n", argv[0]);
            return 2;
        }
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "bench_dump makes pid namespaces: run it as root\n");
        return 2;
    }
    install_signal_handlers();
    std::vector<Row> rows;
    if (sizes.empty()) sizes = {1000, 10000};
    for (const int tasks : sizes) {
        const pid_t top = build_tree(tasks);
        PrivateBus bus;
        bus.start();
        Row r;
        r.tasks = tasks;
        std::uint64_t ns = 0;
        const auto inode = inode_of("/proc/" + std::to_string(top) + "/ns/pid");
        for (int i = 0; i < 1000 && ns == 0; ++i) {
            try {
                ns = bus.c->get_namespace(inode).id;
            } catch (const pidns::client::Error&) {
                ::usleep(10000);
            }
        }
        if (ns == 0) {
            std::printf("pidnsd never listed the tree's top pid namespace\n");
            bus.report_failure();
            bus.cleanup();
            ::kill(top, SIGKILL);
            return 1;
        }
        auto first = bus.c->dump_pid_tree(ns);  // warm-up (and the task list for the floor)
        std::vector<std::uint32_t> tids;
        for (const auto& e : first) tids.push_back(e.rpid);
        std::vector<double> dump_ms, floor_ms, links_ms, pidnsd_ms, bus_ms, client_ms;
        for (int k = 0; k < reps; ++k) {
            const double p0 = cpu_us(g_pidnsd), b0 = cpu_us(g_dbus), c0 = cpu_us(0);
            auto t0 = Clock::now();
            const auto d = bus.c->dump_pid_tree(ns);
            auto t1 = Clock::now();
            pidnsd_ms.push_back((cpu_us(g_pidnsd) - p0) / 1000.0);
            bus_ms.push_back((cpu_us(g_dbus) - b0) / 1000.0);
            client_ms.push_back((cpu_us(0) - c0) / 1000.0);
            (void)read_statuses(tids);
            auto t2 = Clock::now();
            (void)read_statuses_and_links(tids);
            auto t3 = Clock::now();
            dump_ms.push_back(us_since(t0, t1) / 1000.0);
            floor_ms.push_back(us_since(t1, t2) / 1000.0);
            links_ms.push_back(us_since(t2, t3) / 1000.0);
            r.dumped = d.size();
            r.complete = r.complete && d.size() == static_cast<std::size_t>(tasks / kLevels * kLevels);
        }
        r.dump_ms = median(dump_ms);
        r.floor_ms = median(floor_ms);
        r.links_ms = median(links_ms);
        r.pidnsd_ms = median(pidnsd_ms);
        r.bus_ms = median(bus_ms);
        r.client_ms = median(client_ms);
        {
            auto model = pidns::Model::create();
            if (!model) {
                std::printf("cannot open /proc in-process\n");
                return 1;
            }
            std::vector<double> lib_ms, lib_cpu_ms;
            for (int k = 0; k < reps; ++k) {
                // A fresh scan first (not timed), as current as pidnsd's index kept by events.
                if (!(*model)->rescan()) break;
                const auto id = (*model)->index().find_by_inode((*model)->features().nsfs_dev, inode);
                if (!id) break;
                const double c0 = cpu_us(0);
                auto t0 = Clock::now();
                pidns::PidTreeDump dump(**model, *id);
                for (;;) {
                    auto step = dump.step(Clock::time_point::max());
                    if (!step || *step) break;
                }
                const auto entries = dump.entries(0);
                lib_ms.push_back(us_since(t0, Clock::now()) / 1000.0);
                lib_cpu_ms.push_back((cpu_us(0) - c0) / 1000.0);
                r.complete = r.complete && entries.size() == r.dumped;
            }
            r.lib_ms = lib_ms.empty() ? 0 : median(lib_ms);
            r.lib_cpu_ms = lib_cpu_ms.empty() ? 0 : median(lib_cpu_ms);
        }
        rows.push_back(r);
        bus.cleanup();
        ::kill(top, SIGKILL);
        ::waitpid(top, nullptr, 0);
    }
    std::printf("pidns bench_dump: %d nested pid namespaces, medians of %d runs (%s)\n\n", kLevels, reps, now_text().c_str());
    auto line = [&](const char* what, auto value, const char* fmt) {
        std::printf("%-44s", what);
        for (const auto& r : rows) std::printf(fmt, value(r));
        std::printf("\n");
    };
    std::printf("%-44s", "");
    for (const auto& r : rows) std::printf(" %9d tasks", r.tasks);
    std::printf("\n");
    line("tasks dumped", [](const Row& r) { return r.dumped; }, " %15zu");
    line("DumpPidTree over the bus (ms)", [](const Row& r) { return r.dump_ms; }, " %15.1f");
    line("floor: read every /proc/TID/status (ms)", [](const Row& r) { return r.floor_ms; }, " %15.1f");
    line("floor + readlink ns/pid_for_children (ms)", [](const Row& r) { return r.links_ms; }, " %15.1f");
    line("  CPU per dump in pidnsd, all threads (ms)", [](const Row& r) { return r.pidnsd_ms; }, " %15.1f");
    line("  CPU per dump in dbus-daemon (ms)", [](const Row& r) { return r.bus_ms; }, " %15.1f");
    line("  CPU per dump in the client (ms)", [](const Row& r) { return r.client_ms; }, " %15.1f");
    line("library: PidTreeDump in-process, no bus (ms)", [](const Row& r) { return r.lib_ms; }, " %15.1f");
    line("  CPU per library dump, all threads (ms)", [](const Row& r) { return r.lib_cpu_ms; }, " %15.1f");
    bool ok = true;
    for (const auto& r : rows) ok = ok && r.complete;
    line("ratio dump/floor (target <= 1.5)", [](const Row& r) { return r.dump_ms / r.floor_ms; }, " %15.2f");
    line("target", [](const Row& r) { return met(r.dump_ms / r.floor_ms <= 1.5); }, " %15s");
    line("ratio dump/(floor + pid_for_children)", [](const Row& r) { return r.dump_ms / r.links_ms; }, " %15.2f");
    std::printf("load: %s\n", loadavg().c_str());
    if (!ok) std::printf("A DUMP WAS INCOMPLETE: it must list every task of the tree\n");
    return ok ? 0 : 1;
}
