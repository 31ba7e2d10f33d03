// bench_labels: what issue 23 adds to each Describe* entry: the cgroup owner walk in read_labels
// (lib/cgroup_owner.h) and the escaping of its strings (lib/escape.h), next to the reads it joins.
//
// Reads the labels of every process on the host, interleaved: without the walk (no hierarchy fd)
// and with it; then escapes those labels' strings, against copying them. Medians of --reps rounds
// (default 21), per process, and their ratio. Root, to read every process.
#include <fcntl.h>
#include <unistd.h>

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
    auto pids = pidns::list_proc_pids(proc);
    if (!pids) return 1;
    struct Target {
        std::int32_t pid;
        std::uint64_t start;
    };
    std::vector<Target> targets;
    for (auto pid : *pids)
        if (auto text = pidns::read_file_at(proc, (std::to_string(pid) + "/stat").c_str()))
            if (auto st = pidns::parse_proc_stat(*text)) targets.push_back({pid, st->start_time});
    const int hierarchy = pidns::systemd_hierarchy_fd();
    std::printf("bench_labels: %zu processes, %d rounds, hierarchy fd %s\n", targets.size(), reps,
                hierarchy >= 0 ? "open" : "missing (the walk is skipped: nothing to compare)");

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
    const double a = median(without), b = median(with), c = median(copy_ns), e = median(escape_ns);
    std::printf("%-44s %12s %12s %8s\n", "per process (medians)", "before", "issue 23", "ratio");
    std::printf("%-44s %10.2f us %10.2f us %7.2fx\n", "read_labels (comm, cgroup, stat)", a, b, b / a);
    std::printf("%-44s %10.0f ns %10.0f ns %7.2fx\n", "its 4 strings: copied / escaped", c, e, e / c);
    std::printf("owner walk adds %.2f us a process; %zu of %zu processes have a labelled cgroup a user could name\n",
                b - a, owned, labels.size());
    return 0;
}
