// bench_translate: index translation vs the kernel's ioctl pair vs a /proc scan, plus scan time and memory per process.
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "model.h"
#include "nsfs_fd_iter.h"
#include "pods.h"
#include "nsfs.h"
#include "proc_reader.h"
#include "proc_status.h"

namespace {

using Clock = std::chrono::steady_clock;
using pidns_bench::kill_pods;
using pidns_bench::Pod;
using pidns_bench::spawn_pods;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The status quo: find the host pid of `nr` in the pid namespace with inode `ns_inode` by
// reading every /proc/*/status and readlink-ing its pid namespace.
pid_t proc_scan_lookup(int nr, std::uint64_t ns_inode) {
    DIR* d = ::opendir("/proc");
    pid_t found = 0;
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::string base = std::string("/proc/") + e->d_name;
        int fd = ::open((base + "/status").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        const char* l = std::strstr(buf, "\nNSpid:");
        if (!l) continue;
        std::vector<long> chain;
        for (char* p = const_cast<char*>(l) + 7; *p && *p != '\n';) {
            char* end;
            long v = std::strtol(p, &end, 10);
            if (end == p) break;
            chain.push_back(v);
            p = end;
        }
        if (chain.empty() || chain.back() != nr) continue;
        char link[64];
        ssize_t ln = ::readlink((base + "/ns/pid").c_str(), link, sizeof link - 1);
        if (ln <= 0) continue;
        link[ln] = 0;
        if (std::strtoull(link + 5, nullptr, 10) == ns_inode) {
            found = static_cast<pid_t>(chain.front());
            break;
        }
    }
    ::closedir(d);
    return found;
}

// The rescan with each source on in turn (DiscoveryOptions): what each adds to the processes' own reads.
bool g_hold_ns_fd = false;  // --hold-ns-fd

// fds are found by the BPF pass (DiscoveryOptions::fds_by_bpf) unless `proc_fds`.
struct Sources {
    const char* name;
    bool tasks, fds, bind_mounts, ancestors, proc_fds;
};
constexpr Sources kSources[] = {
    {"  processes only (/proc/PID/ns, status)", false, false, false, false, false},
    {"  processes + tasks", true, false, false, false, false},
    {"  processes + fds (BPF pass)", false, true, false, false, false},
    {"  processes + fds (/proc/PID/fd listed)", false, true, false, false, true},
    {"  processes + mounts", false, false, true, false, false},
    {"  processes + ancestors", false, false, false, true, false},
    {"  all, fds listed in /proc (ms)", true, true, true, true, true},
    {"  all: full scan (ms)", true, true, true, true, false},
};
constexpr std::size_t kSourceCount = std::size(kSources);

struct Figures {
    int procs;
    double index_ns, ioctl_ns, scan_ms, bytes_per_proc;
    double source_ms[kSourceCount];  // medians, kSources order; the last is the full scan
    double build_ms;    // the full scan's index build alone (RescanReport::build), median
    double fd_pass_ms;  // the BPF fd pass alone (NsfsFdIter::list), median
    double floor_ms, floor10_ms, required_ms, required_fds_ms, accounted_bytes;
    std::size_t index_procs;
    [[nodiscard]] double fullscan_ms() const { return source_ms[kSourceCount - 1]; }
};

// The kernel's floor for a scan: list /proc, then readlink `links` ns/* links of each process
// (and, with `status`, read its /proc/PID/status: the NSpid chain no link gives; with `fds`, list
// its /proc/PID/fd and readlink every entry: the namespace fds no other file shows), the pids
// split between 2 threads (as Model::rescan reads on 2 threads). Milliseconds.
double readlink_floor(int proc_fd, int links, bool status = false, bool fds = false) {
    std::vector<std::string> names;  // the ten ns/* links, the types' first
    for (auto t : pidns::kAllNsTypes) names.emplace_back(pidns::ns_type_link(t));
    names.emplace_back("ns/pid_for_children");
    names.emplace_back("ns/time_for_children");
    const auto t0 = Clock::now();
    std::vector<int> pids;
    DIR* d = ::opendir("/proc");
    while (auto* e = ::readdir(d))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9') pids.push_back(std::atoi(e->d_name));
    ::closedir(d);
    auto work = [&](std::size_t from, std::size_t step) {
        char path[64], buf[64];
        std::vector<char> text(4096);
        for (std::size_t i = from; i < pids.size(); i += step) {
            for (int l = 0; l < links; ++l) {
                std::snprintf(path, sizeof path, "%d/%s", pids[i], names[static_cast<std::size_t>(l)].c_str());
                (void)!::readlinkat(proc_fd, path, buf, sizeof buf);
            }
            if (status) {
                std::snprintf(path, sizeof path, "%d/status", pids[i]);
                if (const int fd = ::openat(proc_fd, path, O_RDONLY | O_CLOEXEC); fd >= 0) {
                    (void)!::read(fd, text.data(), text.size());
                    ::close(fd);
                }
            }
            if (!fds) continue;
            std::snprintf(path, sizeof path, "%d/fd", pids[i]);
            const int dfd = ::openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0) continue;
            DIR* fd_dir = ::fdopendir(dfd);
            if (!fd_dir) {
                ::close(dfd);
                continue;
            }
            while (auto* e = ::readdir(fd_dir))
                if (e->d_name[0] != '.') (void)!::readlinkat(dfd, e->d_name, buf, sizeof buf);
            ::closedir(fd_dir);
        }
    };
    std::thread other(work, 1, 2);
    work(0, 2);
    other.join();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

Figures run(int n_ns, int per_ns, int reps) {
    // Every pod process is a fork of this one and copies its page tables: hand the heap of the
    // previous column's models back first (at 100k, 100,000 copies of a bloated heap's tables
    // took 20 GB).
    ::malloc_trim(0);
    auto pods = spawn_pods(n_ns, per_ns, g_hold_ns_fd);
    Figures f{};
    f.procs = n_ns * per_ns;

    auto model = pidns::Model::create();
    if (!model) {
        std::fprintf(stderr, "%s\n", model.error().describe().c_str());
        std::exit(1);
    }
    auto& m = **model;
    // Memory: allocated bytes before and after the first full scan, per indexed process.
    ::malloc_trim(0);
    const auto before = ::mallinfo2().uordblks;
    auto first = m.rescan();
    const auto after = ::mallinfo2().uordblks;
    if (!first) {
        std::fprintf(stderr, "scan failed: %s\n", first.error().describe().c_str());
        std::exit(1);
    }
    f.index_procs = m.index().process_count();
    f.bytes_per_proc = static_cast<double>(after - before) / static_cast<double>(f.index_procs);
    f.accounted_bytes = static_cast<double>(m.index().memory().total()) / static_cast<double>(f.index_procs);

    // The rescan with each set of sources, and the floors, interleaved rep by rep (the host's
    // load then weighs on all alike). Each model scanned once before (a rescan replaces an index).
    {
        std::vector<std::unique_ptr<pidns::Model>> models;
        for (const auto& src : kSources) {
            pidns::DiscoveryOptions o;
            o.tasks = src.tasks;
            o.fds = src.fds;
            o.bind_mounts = src.bind_mounts;
            o.ancestors = src.ancestors;
            o.fds_by_bpf = !src.proc_fds;
            auto made = pidns::Model::create(o);
            if (!made || !(*made)->rescan()) {
                std::fprintf(stderr, "scan failed (%s)\n", src.name);
                std::exit(1);
            }
            if (src.fds && o.fds_by_bpf && !(*made)->fd_pass_in_use()) {
                std::fprintf(stderr, "the BPF fd pass is not in use: %s\n", (*made)->fd_source_reason().c_str());
                std::exit(1);
            }
            models.push_back(std::move(*made));
        }
        std::vector<std::vector<double>> scans(kSourceCount);
        std::vector<double> one, ten, required, required_fds, build, fd_pass;
        auto iter = pidns::NsfsFdIter::load();
        if (!iter) {
            std::fprintf(stderr, "%s\n", iter.error().describe().c_str());
            std::exit(1);
        }
        for (int r = 0; r < reps; ++r) {
            for (std::size_t k = 0; k < kSourceCount; ++k) {
                auto t0 = Clock::now();
                auto rep = models[k]->rescan();
                scans[k].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
                if (!rep) std::exit(1);
                if (k == kSourceCount - 1) build.push_back(static_cast<double>(rep->build.count()) / 1000.0);
            }
            auto t0 = Clock::now();
            if (!(*iter)->list()) std::exit(1);
            fd_pass.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            one.push_back(readlink_floor(m.proc_fd(), 1));
            ten.push_back(readlink_floor(m.proc_fd(), 10));
            required.push_back(readlink_floor(m.proc_fd(), 10, true));
            required_fds.push_back(readlink_floor(m.proc_fd(), 10, true, true));
        }
        for (std::size_t k = 0; k < kSourceCount; ++k) f.source_ms[k] = median(scans[k]);
        f.build_ms = median(build);
        f.fd_pass_ms = median(fd_pass);
        f.floor_ms = median(one);
        f.floor10_ms = median(ten);
        f.required_ms = median(required);
        f.required_fds_ms = median(required_fds);
    }

    // The queries: (pid namespace of a pod, pid in it) -> host pid.
    struct Query {
        pidns::NsId ns;
        int fd;
        std::uint64_t inode;
        int nr;
    };
    std::vector<Query> pool;
    std::vector<pidns::Fd> fds;
    const pidns::NsId root = m.index().root_pidns();
    for (auto& p : pods) {
        auto fd = pidns::open_ns_link(m.proc_fd(), std::to_string(p.init) + "/ns/pid");
        auto ident = pidns::ns_identity(fd->get());
        auto id = m.index().find_by_inode(ident->dev, ident->inode);
        if (!id) {
            std::fprintf(stderr, "pod namespace %llu not indexed (%zu namespaces, %zu processes, %zu unreadable)\n", (unsigned long long)ident->inode, m.index().namespace_count(), m.index().process_count(), first->unreadable);
            std::exit(1);
        }
        for (int nr = 1; nr <= p.nprocs; ++nr) pool.push_back({*id, fd->get(), ident->inode, nr});
        fds.push_back(std::move(*fd));
    }
    std::mt19937 rng(42);
    std::vector<Query> queries(100000);
    for (auto& q : queries) q = pool[rng() % pool.size()];
    auto root_fd = pidns::open_ns_link(m.proc_fd(), "self/ns/pid");

    std::vector<double> idx_runs, ioctl_runs;
    long long sink = 0;
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        for (const auto& q : queries) {
            auto res = m.translate(q.nr, q.ns, root);
            sink += res ? *res : -1;
        }
        auto t1 = Clock::now();
        for (const auto& q : queries) {
            auto host = pidns::ns_pid_from_pidns(q.fd, q.nr);
            auto back = pidns::ns_pid_in_pidns(root_fd->get(), host ? *host : 1);
            sink += back ? *back : -1;
        }
        auto t2 = Clock::now();
        idx_runs.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / queries.size());
        ioctl_runs.push_back(std::chrono::duration<double, std::nano>(t2 - t1).count() / queries.size());
    }
    f.index_ns = median(idx_runs);
    f.ioctl_ns = median(ioctl_runs);

    // Check a sample against the kernel before timing the slow path (the figures mean nothing if wrong).
    for (int i = 0; i < 1000; ++i) {
        const auto& q = queries[static_cast<std::size_t>(i)];
        auto a = m.translate(q.nr, q.ns, root);
        auto k = pidns::ns_pid_from_pidns(q.fd, q.nr);
        if (!a || !k || *a != *k) {
            std::fprintf(stderr, "MISMATCH: pid %d in ns %llu: index %d kernel %d\n", q.nr,
                         static_cast<unsigned long long>(q.ns), a ? *a : -1, k ? *k : -1);
            std::exit(1);
        }
    }
    std::vector<double> scan_runs;
    for (int r = 0; r < std::max(3, reps / 2); ++r) {
        const auto& q = queries[static_cast<std::size_t>(r)];
        auto t0 = Clock::now();
        pid_t host = proc_scan_lookup(q.nr, q.inode);
        scan_runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        auto k = pidns::ns_pid_from_pidns(q.fd, q.nr);
        if (!k || *k != host) {
            std::fprintf(stderr, "MISMATCH in /proc scan: %d vs %d\n", host, k ? *k : -1);
            std::exit(1);
        }
    }
    f.scan_ms = median(scan_runs);
    if (sink == 42) std::puts("");
    kill_pods(pods);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    int n_ns = 100;
    bool big = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--namespaces") && i + 1 < argc) n_ns = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--big")) big = true;
        else if (!std::strcmp(argv[i], "--hold-ns-fd")) g_hold_ns_fd = true;
        else {
            std::puts("usage: bench_translate [--reps N] [--namespaces N] [--big] [--hold-ns-fd]   (root; makes 1k and\n"
                      "       10k processes; --big: also 100k in 1000 pid namespaces, kernel.pid_max raised for the run\n"
                      "       and restored; --hold-ns-fd: every process made holds a namespace fd, as none does usually)");
            return 2;
        }
    }
    std::printf("pidns bench_translate: %d pid namespaces, medians of %d runs, kernel ids: %s, pid ioctls: %s, "
                "processes made hold a namespace fd: %s\n\n",
                n_ns, reps, pidns::kernel_features().ns_get_id ? "yes" : "no",
                pidns::kernel_features().pid_ioctls ? "yes" : "no", g_hold_ns_fd ? "every one" : "none");
    std::vector<Figures> all;
    for (int total : {1000, 10000}) all.push_back(run(n_ns, total / n_ns, reps));
    if (big) {
        // 100,000 processes need more pids than the default 32768: raised for this column only.
        std::string saved;
        if (FILE* pf = std::fopen("/proc/sys/kernel/pid_max", "r")) {
            char b[32] = {};
            if (std::fgets(b, sizeof b, pf)) saved = b;
            std::fclose(pf);
        }
        auto write_max = [](const std::string& v) {
            if (FILE* pf = std::fopen("/proc/sys/kernel/pid_max", "w")) {
                std::fputs(v.c_str(), pf);
                std::fclose(pf);
            }
        };
        write_max("400000");
        all.push_back(run(1000, 100, std::max(1, reps / 2)));
        if (!saved.empty()) write_max(saved);
    }
    std::printf("%-40s %14s %14s%s\n", "", "1k processes", "10k processes", big ? "   100k (1000 ns)" : "");
    auto row = [&](const char* name, auto get, const char* fmt) {
        std::printf("%-40s", name);
        for (const auto& f : all) {
            char b[64];
            std::snprintf(b, sizeof b, fmt, get(f));
            std::printf(" %14s", b);
        }
        std::printf("\n");
    };
    row("processes made (indexed)", [](const Figures& f) { return static_cast<double>(f.index_procs); }, "%.0f");
    row("translate, index (ns/op)", [](const Figures& f) { return f.index_ns; }, "%.0f");
    row("translate, ioctl pair (ns/op)", [](const Figures& f) { return f.ioctl_ns; }, "%.0f");
    row("ratio index/ioctl (target <=1.0)", [](const Figures& f) { return f.index_ns / f.ioctl_ns; }, "%.3f");
    row("translate, /proc scan (ms/op)", [](const Figures& f) { return f.scan_ms; }, "%.1f");
    row("speed-up vs /proc scan (>=1e5)", [](const Figures& f) { return f.scan_ms * 1e6 / f.index_ns; }, "%.0f");
    std::printf("rescan (ms), by source:\n");
    for (std::size_t k = 0; k < kSourceCount; ++k)
        row(kSources[k].name, [k](const Figures& f) { return f.source_ms[k]; }, "%.1f");
    row("    of which the index build (1 thread)", [](const Figures& f) { return f.build_ms; }, "%.1f");
    row("  the BPF fd pass alone", [](const Figures& f) { return f.fd_pass_ms; }, "%.2f");
    std::printf("floors (ms), the same reads with nothing else, 2 threads:\n");
    row("  1 ns readlink/process", [](const Figures& f) { return f.floor_ms; }, "%.1f");
    row("  10 ns readlinks/process", [](const Figures& f) { return f.floor10_ms; }, "%.1f");
    row("  FLOOR: 10 readlinks + status/process", [](const Figures& f) { return f.required_ms; }, "%.1f");
    row("  FLOOR + every fd listed and read", [](const Figures& f) { return f.required_fds_ms; }, "%.1f");
    row("processes only / FLOOR", [](const Figures& f) { return f.source_ms[0] / f.required_ms; }, "%.2f");
    row("full scan / FLOOR (target <=1.5)", [](const Figures& f) { return f.fullscan_ms() / f.required_ms; }, "%.2f");
    row("full scan / FLOOR + fds", [](const Figures& f) { return f.fullscan_ms() / f.required_fds_ms; }, "%.2f");
    row("index bytes/process, malloc (<=300)", [](const Figures& f) { return f.bytes_per_proc; }, "%.0f");
    row("index bytes/process, containers (<=300)", [](const Figures& f) { return f.accounted_bytes; }, "%.0f");
    std::printf("\n");
    for (const auto& f : all)
        std::printf("full scan <= 1.5x FLOOR (every ns link and status, what any /proc index must read) at %zu "
                    "processes: %.1f / %.1f ms = %.2fx: %s\n", f.index_procs, f.fullscan_ms(), f.required_ms,
                    f.fullscan_ms() / f.required_ms, f.fullscan_ms() <= 1.5 * f.required_ms ? "MET" : "NOT MET");
    const auto& ten = all[1];
    std::printf("full scan of 10k <= 150 ms: %.1f ms: %s\n", ten.fullscan_ms(), ten.fullscan_ms() <= 150 ? "MET" : "NOT MET");
    for (const auto& f : all)
        std::printf("index <= 300 bytes/process at %zu processes: %.0f (malloc) / %.0f (containers): %s\n", f.index_procs,
                    f.bytes_per_proc, f.accounted_bytes, f.bytes_per_proc <= 300 && f.accounted_bytes <= 300 ? "MET" : "NOT MET");
    return 0;
}
