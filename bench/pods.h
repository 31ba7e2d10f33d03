// Pid namespaces full of sleeping processes, made by the benchmarks (root): spawn_pods / kill_pods.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace pidns_bench {

// One pid namespace made for the run: its init (host pid) and how many processes it has.
struct Pod {
    pid_t init = 0;
    int nprocs = 0;
};

// Makes `n_ns` pid namespaces with `per_ns` processes each (init + sleepers). The caller's fd of
// its own pid namespace (used here to come back to it) is closed in them unless `hold_ns_fd`:
// then every process holds a namespace fd, as none does on a usual host (a rescan's fd source
// costs most then; bench_translate --hold-ns-fd).
inline std::vector<Pod> spawn_pods(int n_ns, int per_ns, bool hold_ns_fd = false) {
    std::vector<Pod> pods;
    int self_pidns = ::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < n_ns; ++i) {
        int ready[2];
        if (::pipe(ready) != 0) std::exit(1);
        if (::unshare(CLONE_NEWPID) != 0) {
            std::perror("unshare(CLONE_NEWPID) (run as root)");
            std::exit(1);
        }
        pid_t init = ::fork();
        if (init == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close(ready[0]);
            if (!hold_ns_fd) ::close(self_pidns);
            for (int k = 1; k < per_ns; ++k) {
                pid_t c = ::fork();
                if (c == 0) {
                    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
                    for (;;) ::pause();
                }
            }
            char b = 1;
            (void)!::write(ready[1], &b, 1);
            ::close(ready[1]);
            for (;;) ::pause();
        }
        ::setns(self_pidns, CLONE_NEWPID);
        ::close(ready[1]);
        char b;
        if (::read(ready[0], &b, 1) != 1) {
            std::fprintf(stderr, "pod %d failed to start\n", i);
            std::exit(1);
        }
        ::close(ready[0]);
        pods.push_back({init, per_ns});
    }
    ::close(self_pidns);
    return pods;
}

inline void kill_pods(std::vector<Pod>& pods) {
    for (auto& p : pods) ::kill(p.init, SIGKILL);
    for (auto& p : pods) ::waitpid(p.init, nullptr, 0);
    pods.clear();
}

}  // namespace pidns_bench
