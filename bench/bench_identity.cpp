// What namespace identity checks cost (issue 22), per operation, as on this kernel (nsfs handles, NS_GET_ID)
// and as on 6.1 (opened and compared), side by side: the link read itself three ways, an access
// decision's credential re-read, a fork child read (its namespaces taken from its parent, unchecked),
// a process read that enters namespaces the index holds for others (checked), a verify with and
// without its periodic confirmation, and the index's eviction of a stale namespace at 10k and 100k
// processes. Medians of --reps runs (5); run as root.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "nsfs.h"

using namespace pidns;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// ns per call of f, over `n` calls, median of `reps`.
double per_call(int reps, int n, const std::function<void()>& f) {
    std::vector<double> runs;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < n; ++i) f();
        runs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n);
    }
    return median(runs);
}

// A child that pauses (in new namespaces `flags`, or setns()ed into `join`'s net namespace).
pid_t child(int flags = 0, pid_t join = 0) {
    int p[2];
    if (pipe(p) != 0) std::exit(1);
    const pid_t c = fork();
    if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (flags && unshare(flags) != 0) _exit(1);
        if (join) {
            const int fd = open(("/proc/" + std::to_string(join) + "/ns/net").c_str(), O_RDONLY);
            if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(1);
        }
        (void)!write(p[1], "x", 1);
        for (;;) pause();
    }
    char x;
    (void)!read(p[0], &x, 1);
    close(p[0]);
    close(p[1]);
    return c;
}

void end(pid_t c) {
    kill(c, SIGKILL);
    waitpid(c, nullptr, 0);
}

// A synthetic index of `n` processes over 100 pid namespaces, one of which holds an fd to a net
// namespace: the eviction walks every process (fd holders are not listed per namespace).
double evict_ms(std::size_t n, int reps) {
    std::vector<double> runs;
    for (int r = 0; r < reps; ++r) {
        Index idx;
        (void)idx.add_namespace(NamespaceMeta{2, NsType::user, 1002, 4, 0, 0, 0, 0});
        NsId id = 1;
        for (auto t : kAllNsTypes) {
            if (t != NsType::user) (void)idx.add_namespace(NamespaceMeta{id, t, 1000 + id, 4, 0, 2, 0, 0});
            ++id;
        }
        idx.set_self({1, 2, 3, 4, 5, 6, 7, 8});
        for (NsId p = 0; p < 100; ++p) (void)idx.add_namespace(NamespaceMeta{100 + p, NsType::pid, 2000 + p, 4, 1, 2, 0, 1});
        (void)idx.add_namespace(NamespaceMeta{999, NsType::net, 9999, 4, 0, 2, 0, 0});
        for (std::size_t i = 0; i < n; ++i) {
            ProcessData d;
            d.tgid = static_cast<std::int32_t>(i + 10);
            d.ns = {100 + i % 100, 2, 3, 4, 5, 6, 7, 8};
            d.nstgid = d.nspid = d.nspgid = d.nssid = {d.tgid, static_cast<std::int32_t>(i / 100 + 1)};
            if (i == n / 2) d.ns_fds = {{5, 999}};
            (void)idx.upsert_process(std::move(d));
        }
        std::vector<std::int32_t> stale;
        const auto t0 = Clock::now();
        (void)idx.evict(999, stale);
        runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    return median(runs);
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 5;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    if (geteuid() != 0) {
        std::fprintf(stderr, "bench_identity: run as root\n");
        return 1;
    }
    std::printf("pidns bench_identity: medians of %d runs, ns per operation unless said\n\n", reps);
    const pid_t self = getpid();
    const std::string user_link = std::to_string(self) + "/ns/user";
    const int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);

    // The link read three ways.
    char buf[64];
    const double t_readlink = per_call(reps, 20000, [&] { (void)!readlinkat(proc, user_link.c_str(), buf, sizeof buf); });
    const double t_handle = per_call(reps, 20000, [&] { (void)ns_handle_at(proc, user_link.c_str()); });
    const double t_open = per_call(reps, 5000, [&] {
        auto fd = open_ns_link(proc, user_link);
        if (fd) (void)ns_get_owner_uid(fd->get()), (void)ns_get_userns(fd->get());
    });
    std::printf("%-62s %10.0f\n", "readlink /proc/PID/ns/user (what a read always did)", t_readlink);
    std::printf("%-62s %10.0f\n", "its nsfs file handle (6.18: id, type, inode in one call)", t_handle);
    std::printf("%-62s %10.0f\n", "opened checked + owner uid + owner (before 6.18, one level)", t_open);

    // Both modes' models side by side; every measurement alternates between them within a rep
    // (the machine's load then weighs on both alike).
    DiscoveryOptions native, old, native_eager, old_eager;
    old.assume_kernel = old_eager.assume_kernel = KernelVersion{6, 1};
    native_eager.confirm_interval = old_eager.confirm_interval = std::chrono::seconds(0);
    std::vector<std::unique_ptr<Model>> models, eager;
    for (const auto* o : {&native, &old}) {
        auto m = Model::create(*o);
        if (!m || !(*m)->rescan()) return 1;
        models.push_back(std::move(*m));
    }
    for (const auto* o : {&native_eager, &old_eager}) {
        auto m = Model::create(*o);
        if (!m || !(*m)->rescan()) return 1;
        eager.push_back(std::move(*m));
    }
    const pid_t netns_owner = child(CLONE_NEWNET | CLONE_NEWUTS);
    const pid_t kid = child();
    const pid_t joiner = child(0, netns_owner);
    for (auto* set : {&models, &eager})
        for (auto& m : *set) {
            (void)m->add_process(netns_owner);
            (void)m->add_process(kid);
            (void)m->add_process(joiner);
        }
    // ns per call of f(model m), n calls per rep, the two models alternating by rep.
    auto both = [&](std::vector<std::unique_ptr<Model>>& set, int n, const std::function<void(Model&)>& f) {
        std::vector<std::vector<double>> runs(2);
        for (int r = 0; r < reps; ++r)
            for (std::size_t m = 0; m < 2; ++m) {
                const auto t0 = Clock::now();
                for (int i = 0; i < n; ++i) f(*set[m]);
                runs[m].push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n);
            }
        return std::vector<double>{median(runs[0]), median(runs[1])};
    };
    // An access decision's re-read of the target's credentials and user namespace.
    const auto cred = both(models, 5000, [&](Model& m) { (void)m.refresh_credentials(self); });
    // A fork child: its namespaces are its parent's (this process, indexed): no check.
    const auto fork_read = both(models, 300, [&](Model& m) {
        (void)m.remove_task(kid, kid);
        (void)m.add_process(kid);
    });
    // A process that setns()ed into a net namespace the index holds for another (and whose parent
    // does not hold it): each read checks that namespace with the kernel.
    const auto entering = both(models, 300, [&](Model& m) {
        (void)m.remove_task(joiner, joiner);
        (void)m.add_process(joiner);
    });
    // The verify pass on a settled process, and with its namespaces due for confirmation.
    const auto verify_settled = both(models, 2000, [&](Model& m) { (void)m.verify_process(joiner); });
    const auto verify_confirm = both(eager, 2000, [&](Model& m) { (void)m.verify_process(joiner); });
    end(kid);
    end(joiner);
    end(netns_owner);
    std::printf("\n%-62s %12s %12s\n", "", "this kernel", "as 6.1");
    auto row = [](const char* what, const std::vector<double>& v) { std::printf("%-62s %12.0f %12.0f\n", what, v[0], v[1]); };
    row("refresh_credentials (per access decision)", cred);
    row("remove + read a fork child (parent holds all: unchecked)", fork_read);
    row("remove + read a process in another's net ns (checked)", entering);
    row("verify_process, settled (confirmed < 10 s ago)", verify_settled);
    row("verify_process, its 8 namespaces due for confirmation", verify_confirm);

    std::printf("\n%-62s %12s\n", "Index::evict of an fd-held namespace (walks every process)", "ms");
    for (std::size_t n : {10000u, 100000u})
        std::printf("%-62s %12.2f\n", (std::to_string(n) + " processes").c_str(), evict_ms(n, reps));
    return 0;
}
