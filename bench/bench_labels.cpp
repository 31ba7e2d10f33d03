// bench_labels: what issue 23 adds to each Describe* entry: the cgroup owner walk in read_labels
// (lib/cgroup_owner.h) and the escaping of its strings (lib/escape.h), next to the reads it joins.
//
// Makes 64 sleeping processes in a rootless container's cgroup as systemd shapes it
// (bench-PID.slice/user-1000.slice/user@1000.service/app.slice/libpod-<id>.scope, 5 levels: the
// walk's every step is taken) and reads their labels, interleaved: without the walk (no hierarchy
// fd) and with it; then escapes those labels' strings, against copying them. Medians of --reps
// rounds (default 21), per process, and their ratio. Root (cgroups); removes what it made.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "escape.h"
#include "labels.h"
#include "proc_reader.h"
#include "proc_stat.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 21;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--reps N (21)]\n", argv[0]);
            return 2;
        }
    }
    const int proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    const int hierarchy = pidns::systemd_hierarchy_fd();
    if (hierarchy < 0) {
        std::fprintf(stderr, "bench_labels: no systemd cgroup hierarchy to walk\n");
        return 1;
    }
    namespace fs = std::filesystem;
    const fs::path root = fs::read_symlink("/proc/self/fd/" + std::to_string(hierarchy));
    const std::string top = "bench-labels-" + std::to_string(::getpid()) + ".slice";
    const fs::path leaf = root / top / "user-1000.slice/user@1000.service/app.slice" /
                          "libpod-4f1d3c2b9a8e7f6d5c4b3a29180716253a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9.scope";
    fs::create_directories(leaf);
    struct Target {
        std::int32_t pid;
        std::uint64_t start;
    };
    std::vector<Target> targets;
    for (int i = 0; i < 64; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;) ::pause();
        }
        std::ofstream(leaf / "cgroup.procs") << pid << std::flush;
        if (auto text = pidns::read_file_at(proc, (std::to_string(pid) + "/stat").c_str()))
            if (auto st = pidns::parse_proc_stat(*text)) targets.push_back({pid, st->start_time});
    }
    std::printf("bench_labels: %zu processes in /%s/.../libpod-<id>.scope, %d rounds\n", targets.size(),
                top.c_str(), reps);

    std::vector<double> without, with, copy_ns, escape_ns;
    std::vector<pidns::Labels> labels;
    std::size_t owned = 0;
    for (int r = 0; r < reps; ++r) {
        for (const int fd : {-1, hierarchy}) {  // interleaved: the machine's noise falls on both
            const auto t0 = Clock::now();
            std::vector<pidns::Labels> got;
            for (const auto& t : targets)
                if (auto l = pidns::read_labels(proc, t.pid, t.start, fd)) got.push_back(std::move(*l));
            const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / targets.size();
            (fd < 0 ? without : with).push_back(us);
            if (fd >= 0) labels = std::move(got);
        }
        // The strings of one reply's worth of labels: copied, then escaped.
        std::size_t sink = 0;
        auto t0 = Clock::now();
        for (const auto& l : labels)
            for (const auto* s : {&l.command, &l.cgroup, &l.unit, &l.slice}) sink += std::string(*s).size();
        copy_ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / labels.size());
        pidns::TextBudget budget;
        t0 = Clock::now();
        for (const auto& l : labels)
            for (const auto* s : {&l.command, &l.cgroup, &l.unit, &l.slice}) sink += budget.escape(*s).size();
        escape_ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / labels.size());
        if (sink == 0) std::printf(" ");
    }
    for (const auto& l : labels) owned += l.unit_owner.has_value() || l.container_owner.has_value();
    for (const auto& t : targets) ::kill(t.pid, SIGKILL);
    for (const auto& t : targets) ::waitpid(t.pid, nullptr, 0);
    for (fs::path p = leaf; p != root; p = p.parent_path()) ::rmdir(p.c_str());
    const double a = median(without), b = median(with), c = median(copy_ns), e = median(escape_ns);
    std::printf("%-44s %12s %12s %8s\n", "per process (medians)", "before", "issue 23", "ratio");
    std::printf("%-44s %10.2f us %10.2f us %7.2fx\n", "read_labels (comm, cgroup, stat)", a, b, b / a);
    std::printf("%-44s %10.0f ns %10.0f ns %7.2fx\n", "its 4 strings: copied / escaped", c, e, e / c);
    std::printf("owner walk adds %.2f us a process (%zu of %zu labelled with an owner: none expected, root made these)\n",
                b - a, owned, labels.size());
    return 0;
}
