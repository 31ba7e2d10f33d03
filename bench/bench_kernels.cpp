// bench_kernels: the library as on each kernel pidnsd supports (--assume-kernel): full scan, translation misses, big batches.
//
// Makes N processes in pid namespaces (default 10,000 in 100), then for the running kernel and as
// on 6.11, 6.6, 6.1 and 5.14 (DiscoveryOptions::assume_kernel, what pidnsd --assume-kernel does):
// a full scan, the cost of one translation the index misses (an absent pid: answered by the pid
// ioctls, or by a /proc listing without them), and TranslatePids of 65,536 absent pids through a
// root caller's view (one listing per request without the ioctls). Medians; every mode's index is
// checked against the kernel (NS_GET_PID_FROM_PIDNS) on a sample first.
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "caller.h"
#include "kernel_version.h"
#include "model.h"
#include "nsfs.h"
#include "pods.h"
#include "query.h"
#include "view.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Row {
    std::string kernel;
    std::size_t processes = 0;
    bool kernel_ids = false, pid_ioctls = false;
    double scan_ms = 0, miss_us = 0, batch_ms = 0;
};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_kernels: %s\n", what.c_str());
    std::exit(1);
}

Row measure(std::optional<pidns::KernelVersion> kernel, const std::vector<pidns_bench::Pod>& pods, int reps) {
    Row row;
    row.kernel = kernel ? kernel->str() : std::string("running");
    pidns::DiscoveryOptions opts;
    opts.assume_kernel = kernel;
    auto model = pidns::Model::create(opts);
    if (!model) fail(model.error().describe());
    auto& m = **model;
    row.kernel_ids = m.features().ns_get_id;
    row.pid_ioctls = m.features().pid_ioctls;

    std::vector<double> scans;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        if (auto s = m.rescan(); !s) fail("scan: " + s.error().describe());
        scans.push_back(ms_since(t0));
    }
    row.scan_ms = median(scans);
    row.processes = m.index().process_count();

    // The index is right in this mode: a sample of pods' pids against the kernel.
    const pidns::NsId root = m.index().root_pidns();
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        const auto& pod = pods[rng() % pods.size()];
        auto fd = pidns::open_ns_link(m.proc_fd(), std::to_string(pod.init) + "/ns/pid");
        if (!fd) fail("cannot open a pod's namespace");
        auto ident = pidns::ns_identity(fd->get());
        auto ns = m.index().find_by_inode(ident->dev, ident->inode);
        const int nr = 1 + static_cast<int>(rng() % static_cast<unsigned>(pod.nprocs));
        auto mine = ns ? m.translate(nr, *ns, root) : pidns::Result<std::int32_t>(pidns::make_error(pidns::Errc::not_found, ""));
        auto kernel_answer = pidns::ns_pid_from_pidns(fd->get(), nr);
        if (!mine || !kernel_answer || *mine != *kernel_answer) fail("a translation differs from the kernel's in mode " + row.kernel);
    }

    // One miss: a pid no process has (pid_max is at most 2^22), in the host's namespace.
    std::vector<double> misses;
    for (int r = 0; r < std::max(reps * 4, 20); ++r) {
        pidns::TranslateScratch scratch;  // a request of its own
        const auto t0 = Clock::now();
        auto res = m.translate(5'000'000 + r, root, root, &scratch);
        misses.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        if (res) fail("an absent pid translated");
    }
    row.miss_us = median(misses);

    // TranslatePids of 65,536 absent pids, as root asks it (the daemon runs it in slices).
    const int raw = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
    if (raw < 0) fail("pidfd_open");
    pidns::Fd pidfd(raw);
    auto caller = pidns::identify_caller(m, pidfd.get(), ::getpid(), ::geteuid(), 0);
    if (!caller) fail("identify_caller: " + caller.error().describe());
    std::vector<std::uint32_t> absent(pidns::kMaxBatch);
    for (std::size_t i = 0; i < absent.size(); ++i) absent[i] = static_cast<std::uint32_t>(5'000'000 + i);
    std::vector<double> batches;
    for (int r = 0; r < std::max(reps / 2, 3); ++r) {
        pidns::TranslateScratch scratch;
        pidns::CallerView view(m, *caller);
        view.set_translate_scratch(&scratch);
        const auto t0 = Clock::now();
        auto out = pidns::translate_many(view, absent, 0, 0);
        batches.push_back(ms_since(t0));
        if (!out || std::any_of(out->begin(), out->end(), [](std::uint32_t v) { return v != 0; }))
            fail("TranslatePids of absent pids answered something");
    }
    row.batch_ms = median(batches);
    return row;
}

}  // namespace

int main(int argc, char** argv) {
    int processes = 10000, namespaces = 100, reps = 5;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--processes") && i + 1 < argc) processes = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--namespaces") && i + 1 < argc) namespaces = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else {
            std::puts("usage: bench_kernels [--processes N] [--namespaces N] [--reps N]   (root)");
            return 2;
        }
    }
    auto pods = pidns_bench::spawn_pods(namespaces, std::max(1, processes / namespaces));
    const auto& probed = pidns::kernel_features();
    std::printf("pidns bench_kernels: %d processes in %d pid namespaces, medians of %d; this kernel: NS_GET_ID %s, "
                "pid ioctls %s\n\n",
                processes, namespaces, reps, probed.ns_get_id ? "yes" : "no", probed.pid_ioctls ? "yes" : "no");
    std::vector<Row> rows;
    const std::array<std::optional<pidns::KernelVersion>, 5> kernels = {
        std::nullopt, pidns::KernelVersion{6, 11}, pidns::KernelVersion{6, 6}, pidns::KernelVersion{6, 1},
        pidns::KernelVersion{5, 14}};
    for (const auto& k : kernels) rows.push_back(measure(k, pods, reps));
    pidns_bench::kill_pods(pods);

    std::printf("%-9s %9s %10s %10s %13s %14s %22s\n", "as Linux", "indexed", "kernel ids", "pid ioctls",
                "full scan ms", "one miss (us)", "65536 absent pids (ms)");
    for (const auto& r : rows)
        std::printf("%-9s %9zu %10s %10s %13.1f %14.1f %22.1f\n", r.kernel.c_str(), r.processes, r.kernel_ids ? "yes" : "no",
                    r.pid_ioctls ? "yes" : "no", r.scan_ms, r.miss_us, r.batch_ms);
    return 0;
}
