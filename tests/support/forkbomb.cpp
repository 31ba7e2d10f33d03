// pidns-forkbomb: seed 003's `pidns_exec -F N` fork bomb as a small uninstrumented load generator.
// Forks N children that exit at once (every 64th execs /bin/true), at most 256 alive at a time
// (pid_max is 32768 on the test machines). --nested: first unshare(CLONE_NEWPID) and run the bomb
// as pid 1 of the new namespace. Exit 0 when every fork succeeded.
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int bomb(long n) {
    int alive = 0;
    long failed = 0;
    for (long i = 0; i < n; ++i) {
        while (alive >= 256 && wait(nullptr) > 0) --alive;
        pid_t p = fork();
        if (p == 0) {
            if (i % 64 == 0) {
                char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
                execv("/bin/true", argv);
            }
            _exit(0);
        }
        if (p > 0) ++alive;
        else ++failed;
    }
    while (wait(nullptr) > 0) {
    }
    if (failed) std::fprintf(stderr, "pidns-forkbomb: %ld forks failed: %s\n", failed, std::strerror(errno));
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && std::strcmp(argv[2], "--nested") != 0)) {
        std::fprintf(stderr, "usage: pidns-forkbomb N [--nested]\n");
        return 2;
    }
    const long n = std::strtol(argv[1], nullptr, 10);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc == 2) return bomb(n);
    if (unshare(CLONE_NEWPID) != 0) {
        std::perror("pidns-forkbomb: unshare(CLONE_NEWPID)");
        return 1;
    }
    pid_t init = fork();
    if (init < 0) return 1;
    if (init == 0) _exit(bomb(n));  // pid 1 of the new namespace
    int st = 0;
    waitpid(init, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
