// pidns-churn: steady process, thread and namespace churn for the soak test (tests/dbus/test_soak.cpp),
// built uninstrumented like pidns-forkbomb: it only makes load.
//
//   pidns-churn RATE
//
// Starts RATE operations per second until SIGTERM or SIGINT (or its parent dies: PR_SET_PDEATHSIG),
// then reaps every child and prints one summary line on stdout. Each operation forks one child;
// out of every 20 operations:
//   1  unshares a net and a uts namespace (and sets a hostname in it), then exits;
//   2  unshare(CLONE_NEWPID) and fork a pid 1 there, which forks 3 children that exit;
//   4  start 4 threads that live about 1 ms, join them, and exit;
//   1  exec /bin/true;
//   2  live 50..500 ms before exiting (so that clients can find a live pid);
//   10 exit at once.
// Besides, every 25th operation the churner itself starts a thread and joins it after ~1 ms.
// At most 256 children are alive at a time. Exit status 0 when every fork, unshare and thread
// creation succeeded, else 1 (the summary says which failed).
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

volatile sig_atomic_t g_stop = 0;

void on_stop(int) { g_stop = 1; }

void sleep_us(long us) {
    timespec ts{us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void* short_thread(void*) {
    sleep_us(1000);
    return nullptr;
}

// Starts n threads and joins them; false if one could not be created.
bool thread_burst(int n) {
    pthread_t t[8];
    int made = 0;
    for (; made < n && made < 8; ++made)
        if (pthread_create(&t[made], nullptr, short_thread, nullptr) != 0) break;
    for (int i = 0; i < made; ++i) pthread_join(t[i], nullptr);
    return made == n;
}

// Exit codes of the children: 0 fine, 10 + kind when the namespace or thread work failed.
enum Kind { kPlain = 0, kNetUts = 1, kPidNs = 2, kThreads = 3, kExec = 4, kLonger = 5, kKinds = 6 };

Kind kind_of(unsigned long i) {
    switch (i % 20) {
    case 0: return kNetUts;
    case 1: case 11: return kPidNs;
    case 2: case 7: case 12: case 17: return kThreads;
    case 5: return kExec;
    case 3: case 13: return kLonger;
    default: return kPlain;
    }
}

[[noreturn]] void child(Kind k, unsigned long i) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    switch (k) {
    case kNetUts:
        if (unshare(CLONE_NEWNET | CLONE_NEWUTS) != 0) _exit(10 + k);
        sethostname("churn", 5);
        sleep_us(2000);
        _exit(0);
    case kPidNs: {
        if (unshare(CLONE_NEWPID) != 0) _exit(10 + k);
        pid_t init = fork();
        if (init < 0) _exit(10 + k);
        if (init == 0) {  // pid 1 of the new namespace
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int failed = 0;
            for (int j = 0; j < 3; ++j) {
                pid_t p = fork();
                if (p == 0) {
                    sleep_us(500);
                    _exit(0);
                }
                if (p < 0) ++failed;
            }
            while (wait(nullptr) > 0) {
            }
            _exit(failed ? 10 + k : 0);
        }
        int st = 0;
        waitpid(init, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 10 + k);
    }
    case kThreads:
        _exit(thread_burst(4) ? 0 : 10 + k);
    case kExec: {
        char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
        execv("/bin/true", argv);
        _exit(10 + k);
    }
    case kLonger:
        sleep_us(50'000 + static_cast<long>((i * 7919) % 450'000));
        _exit(0);
    default:
        _exit(0);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const double rate = argc == 2 ? std::strtod(argv[1], nullptr) : 0;
    if (argc != 2 || !(rate > 0 && rate <= 100000)) {
        std::fprintf(stderr, "usage: pidns-churn RATE (operations per second)\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    unsigned long ops = 0, started[kKinds] = {}, failed[kKinds] = {}, fork_failed = 0, own_threads = 0,
                  own_thread_failed = 0;
    int alive = 0;
    auto reap = [&](bool block) {
        int st = 0;
        pid_t p;
        while (alive > 0 && (p = waitpid(-1, &st, block ? 0 : WNOHANG)) > 0) {
            --alive;
            if (WIFEXITED(st) && WEXITSTATUS(st) >= 10 && WEXITSTATUS(st) < 10 + kKinds)
                ++failed[WEXITSTATUS(st) - 10];
            block = false;
        }
    };
    const double t0 = now_s();
    while (!g_stop) {
        const double due = t0 + static_cast<double>(ops) / rate;
        const double wait = due - now_s();
        if (wait > 0) sleep_us(static_cast<long>(wait * 1e6));
        if (g_stop) break;
        reap(false);
        while (alive >= 256 && !g_stop) reap(true);
        const Kind k = kind_of(ops);
        pid_t p = fork();
        if (p == 0) child(k, ops);
        if (p > 0) {
            ++alive;
            ++started[k];
        } else {
            ++fork_failed;
        }
        if (ops % 25 == 24) {
            ++own_threads;
            if (!thread_burst(1)) ++own_thread_failed;
        }
        ++ops;
    }
    while (alive > 0) reap(true);
    const double secs = now_s() - t0;
    unsigned long bad = fork_failed + own_thread_failed;
    for (unsigned long f : failed) bad += f;
    std::printf(
        "churn: %lu operations in %.1f s (%.0f/s): %lu plain, %lu net+uts, %lu pid ns (4 processes each), "
        "%lu thread bursts, %lu exec, %lu longer-lived, %lu own threads; failed: %lu forks, %lu net+uts, %lu pid ns, "
        "%lu thread bursts, %lu exec, %lu own threads\n",
        ops, secs, static_cast<double>(ops) / secs, started[kPlain], started[kNetUts], started[kPidNs],
        started[kThreads], started[kExec], started[kLonger], own_threads, fork_failed, failed[kNetUts],
        failed[kPidNs], failed[kThreads], failed[kExec], own_thread_failed);
    return bad ? 1 : 0;
}
