// pidns-ns-tool: namespaces held by an fd or a bind mount, freed without any process event, and
// their nsfs inode handed to a new namespace (of any type), for the identity tests (issue 22).
//
// The kernel hands out nsfs inode numbers lowest-free-first across all namespace types (and
// /proc entries): a freed one comes back with the next namespace made, unless a lower one is free.
// `reuse` makes namespaces until one gets the wanted inode, keeping the others alive meanwhile
// (so that their lower inodes are not handed out again), then ends them.
//
//   pidns-ns-tool hold TYPE [--userns]
//       A child makes a namespace of TYPE (with --userns, or for TYPE user: in a new user
//       namespace where the caller's uid is root), this process opens /proc/CHILD/ns/TYPE, ends
//       the child and re-executes itself holding the fd (the exec event makes pidnsd read it):
//       then prints "held INODE" and obeys lines on stdin:
//         close                  closes the fd (no process event)          -> "closed"
//         bind PATH              bind-mounts the fd onto the file PATH      -> "bound"
//         reuse TYPE2 [--userns] makes namespaces of TYPE2 until one has the held inode (close it
//                                first); the winner lives on               -> "reused PID" | "failed N"
//         hold-reused            takes the winner's namespace as the held fd, ends the winner
//                                                                           -> "held INODE"
//         open PID TYPE          opens /proc/PID/ns/TYPE at the lowest free fd (no event)
//                                                                           -> "opened FD"
//         pid                    -> "pid PID" (this process)
//   pidns-ns-tool reuse TYPE INODE [--userns] [-- CMD ARGS...]
//       Makes namespaces of TYPE until one has INODE; the winner execs CMD there (or pauses).
//       Prints "reused PID" or "failed N" (exit 2); ends the winner at EOF on stdin.
//   pidns-ns-tool traced
//       A child stopped under ptrace (state "t (tracing stop)"): prints "traced PID", ends it at EOF.
//
// Load for the stress test (each runs SECONDS, prints "done N" with the operations it made):
//   pidns-ns-tool churn-held SECONDS
//       A namespace (user, uts, ipc, cgroup in turn; in a new user namespace unless root) held by an
//       fd, the fd's maker ended, this process re-executed (an exec event: pidnsd reads the fd),
//       then the fd closed without any event and the next one made; about 40 a second.
//   pidns-ns-tool churn-mounts SECONDS DIR
//       (In a user and mount namespace of its own, DIR a tmpfs there.) Namespaces bind-mounted on
//       files in DIR, the oldest unmounted, the makers ended; every 8th in a new mount namespace
//       of a child that lives on a while; about 40 a second.
//   pidns-ns-tool zombies SECONDS
//       (With CAP_SYS_ADMIN in its user namespace.) Processes whose leader exits while one thread
//       lives on and setns()es back and forth between two mount namespaces, then exits; 5 a second.
//
// TYPE: user net uts ipc cgroup mnt. Every child has PR_SET_PDEATHSIG; at EOF or SIGTERM every
// child is ended.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr int kTries = 600;

int clone_flag(const std::string& type) {
    if (type == "user") return CLONE_NEWUSER;
    if (type == "net") return CLONE_NEWNET;
    if (type == "uts") return CLONE_NEWUTS;
    if (type == "ipc") return CLONE_NEWIPC;
    if (type == "cgroup") return CLONE_NEWCGROUP;
    if (type == "mnt") return CLONE_NEWNS;
    std::cerr << "pidns-ns-tool: unknown type " << type << "\n";
    std::exit(64);
}

void write_file(const std::string& path, const std::string& text) {
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) _exit(3);
    close(fd);
}

ino_t inode_of(pid_t pid, const std::string& type) {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid) + "/ns/" + type).c_str(), &st) != 0) return 0;
    return st.st_ino;
}

// A child in a new namespace of `type`, stopped until told: 'g' execs `cmd` (or pauses), anything
// else (or EOF) ends it.
struct Child {
    pid_t pid = -1;
    int go = -1;
};

Child make(const std::string& type, bool userns, const std::vector<std::string>& cmd) {
    int flags = clone_flag(type);
    if (userns) flags |= CLONE_NEWUSER;
    const std::string uid = std::to_string(geteuid()), gid = std::to_string(getegid());
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return {};
    std::vector<char*> argv;
    for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return {};
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ready[0]);
        close(go[1]);
        if (unshare(flags) != 0) _exit(4);
        if (flags & CLONE_NEWUSER) {
            write_file("/proc/self/setgroups", "deny");
            write_file("/proc/self/uid_map", "0 " + uid + " 1");
            write_file("/proc/self/gid_map", "0 " + gid + " 1");
        }
        char c = 'r';
        if (write(ready[1], &c, 1) != 1) _exit(5);
        if (read(go[0], &c, 1) != 1 || c != 'g') _exit(0);
        if (argv.size() > 1) {
            execvp(argv[0], argv.data());
            _exit(127);
        }
        for (;;) pause();
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    const bool ok = read(ready[0], &c, 1) == 1;
    close(ready[0]);
    if (!ok) {
        close(go[1]);
        waitpid(pid, nullptr, 0);
        return {};
    }
    return Child{pid, go[1]};
}

void end(Child& c) {
    if (c.pid <= 0) return;
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    close(c.go);
    c = Child{};
}

void start(Child& c) {
    const char g = 'g';
    if (write(c.go, &g, 1) != 1) std::perror("pidns-ns-tool: start");
}

// Children of `type` until one's namespace has inode `want` (the others held meanwhile, then
// ended); an invalid Child after kTries. `tries` says how many were made.
Child reuse(const std::string& type, bool userns, ino_t want, const std::vector<std::string>& cmd, int& tries) {
    std::vector<Child> held;
    Child winner;
    for (tries = 1; tries <= kTries; ++tries) {
        Child c = make(type, userns, cmd);
        if (c.pid <= 0) break;
        if (inode_of(c.pid, type) == want) {
            winner = c;
            break;
        }
        held.push_back(c);
    }
    for (auto& c : held) end(c);
    return winner;
}

void say(const std::string& line) {
    std::cout << line << std::endl;
}

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> out;
    std::string w;
    for (char ch : line) {
        if (ch == ' ') {
            if (!w.empty()) out.push_back(w);
            w.clear();
        } else {
            w += ch;
        }
    }
    if (!w.empty()) out.push_back(w);
    return out;
}

[[noreturn]] void exec_held(int fd, ino_t inode) {
    const std::string fds = std::to_string(fd), ino = std::to_string(inode);
    std::vector<char*> argv = {const_cast<char*>("pidns-ns-tool"), const_cast<char*>("held"), const_cast<char*>(fds.c_str()),
                               const_cast<char*>(ino.c_str()), nullptr};
    execv("/proc/self/exe", argv.data());
    std::perror("pidns-ns-tool: exec");
    _exit(1);
}

// Opens /proc/PID/ns/TYPE without O_CLOEXEC (it must survive the exec).
int open_ns(pid_t pid, const std::string& type) {
    return open(("/proc/" + std::to_string(pid) + "/ns/" + type).c_str(), O_RDONLY);
}

int hold(const std::string& type, bool userns) {
    Child c = make(type, userns || type == "user", {});
    if (c.pid <= 0) {
        say("failed 0");
        return 2;
    }
    const int fd = open_ns(c.pid, type);
    const ino_t inode = inode_of(c.pid, type);
    end(c);
    if (fd < 0) {
        say("failed 0");
        return 2;
    }
    exec_held(fd, inode);
}

int held(int fd, ino_t inode) {
    say("held " + std::to_string(inode));
    Child winner;
    std::string winner_type;
    for (std::string line; std::getline(std::cin, line);) {
        const auto w = split(line);
        if (w.empty()) continue;
        if (w[0] == "close") {
            close(fd);
            fd = -1;
            say("closed");
        } else if (w[0] == "bind" && w.size() == 2 && fd >= 0) {
            const std::string src = "/proc/self/fd/" + std::to_string(fd);
            say(mount(src.c_str(), w[1].c_str(), nullptr, MS_BIND, nullptr) == 0 ? "bound" : "failed 0");
        } else if (w[0] == "reuse" && w.size() >= 2) {
            end(winner);
            int tries = 0;
            winner = reuse(w[1], w.size() > 2 && w[2] == "--userns", inode, {}, tries);
            winner_type = w[1];
            if (winner.pid > 0) {
                start(winner);
                say("reused " + std::to_string(winner.pid));
            } else {
                say("failed " + std::to_string(tries));
            }
        } else if (w[0] == "hold-reused" && winner.pid > 0) {
            const int nfd = open_ns(winner.pid, winner_type);
            end(winner);
            if (fd >= 0) close(fd);
            // Re-executed, so that pidnsd reads the new fd (an exec event).
            exec_held(nfd, inode);
        } else if (w[0] == "open" && w.size() == 3) {
            const int nfd = open_ns(static_cast<pid_t>(std::atoi(w[1].c_str())), w[2]);
            say(nfd >= 0 ? "opened " + std::to_string(nfd) : "failed 0");
        } else if (w[0] == "pid") {
            say("pid " + std::to_string(getpid()));
        } else {
            say("unknown " + line);
        }
    }
    end(winner);
    return 0;
}


double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void nap_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int traced() {
    const pid_t c = fork();
    if (c < 0) return 1;
    if (c == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) pause();
    }
    if (ptrace(PTRACE_SEIZE, c, nullptr, nullptr) != 0 || ptrace(PTRACE_INTERRUPT, c, nullptr, nullptr) != 0) {
        kill(c, SIGKILL);
        say("failed 0");
        return 2;
    }
    int status = 0;
    waitpid(c, &status, __WALL);
    say("traced " + std::to_string(c));
    for (std::string line; std::getline(std::cin, line);) {
    }
    kill(c, SIGKILL);
    waitpid(c, nullptr, __WALL);
    return 0;
}

const char* const kChurnTypes[] = {"user", "uts", "ipc", "cgroup"};

// One step of churn-held: `fd` (or -1) is the last one held; the process re-executes itself.
[[noreturn]] void churn_held_step(double until, int fd, long n) {
    if (fd >= 0) close(fd);  // no event: the namespace dies unseen
    if (now_s() >= until) {
        say("done " + std::to_string(n));
        _exit(0);
    }
    nap_ms(25);
    const std::string type = kChurnTypes[n % 4];
    Child c = make(type, geteuid() != 0 || type == "user", {});
    int nfd = c.pid > 0 ? open_ns(c.pid, type) : -1;
    end(c);
    const std::string u = std::to_string(until), fds = std::to_string(nfd), ns = std::to_string(n + 1);
    std::vector<char*> argv = {const_cast<char*>("pidns-ns-tool"), const_cast<char*>("churn-held-step"),
                               const_cast<char*>(u.c_str()), const_cast<char*>(fds.c_str()), const_cast<char*>(ns.c_str()),
                               nullptr};
    execv("/proc/self/exe", argv.data());
    _exit(1);
}

int churn_mounts(double seconds, const std::string& dir) {
    const double until = now_s() + seconds;
    std::deque<std::string> mounted;
    std::vector<pid_t> livers;
    long n = 0;
    for (; now_s() < until; ++n) {
        nap_ms(25);
        const std::string type = kChurnTypes[n % 4];
        Child c = make(type, type == "user", {});
        if (c.pid <= 0) continue;
        const std::string file = dir + "/m" + std::to_string(n);
        close(open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        const std::string src = "/proc/" + std::to_string(c.pid) + "/ns/" + type;
        if (mount(src.c_str(), file.c_str(), nullptr, MS_BIND, nullptr) == 0) mounted.push_back(file);
        end(c);
        while (mounted.size() > 6) {
            umount2(mounted.front().c_str(), MNT_DETACH);
            unlink(mounted.front().c_str());
            mounted.pop_front();
        }
        if (n % 8 == 0) {
            // A child in a new mount namespace (with a copy of these mounts) that lives 300 ms.
            const pid_t k = fork();
            if (k == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(CLONE_NEWNS) == 0) umount2((dir + "/m" + std::to_string(n)).c_str(), MNT_DETACH);
                nap_ms(300);
                _exit(0);
            }
            if (k > 0) livers.push_back(k);
        }
        for (auto it = livers.begin(); it != livers.end();)
            it = waitpid(*it, nullptr, WNOHANG) == *it ? livers.erase(it) : std::next(it);
    }
    for (auto k : livers) waitpid(k, nullptr, 0);
    say("done " + std::to_string(n));
    return 0;
}

struct Zombie {
    int mnt[2];
    double until;
};

void* zombie_thread(void* arg) {
    const auto* z = static_cast<Zombie*>(arg);
    nap_ms(5);  // the leader exits meanwhile
    for (int i = 0; now_s() < z->until; ++i) {
        setns(z->mnt[i % 2], CLONE_NEWNS);  // works once the leader is gone: fs no longer shared
        nap_ms(2);
    }
    syscall(SYS_exit, 0);
    return nullptr;
}

int zombies(double seconds) {
    const double until = now_s() + seconds;
    std::vector<pid_t> kids;
    long n = 0;
    for (; now_s() < until; ++n) {
        nap_ms(200);
        Child a = make("mnt", false, {}), b = make("mnt", false, {});
        if (a.pid > 0 && b.pid > 0) {
            const pid_t z = fork();
            if (z == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                static Zombie arg;
                arg.mnt[0] = open_ns(a.pid, "mnt");
                arg.mnt[1] = open_ns(b.pid, "mnt");
                arg.until = std::min(until, now_s() + 0.6);
                pthread_t t;
                if (pthread_create(&t, nullptr, zombie_thread, &arg) != 0) _exit(1);
                syscall(SYS_exit, 0);  // the leader alone: a zombie while its thread lives
            }
            if (z > 0) kids.push_back(z);
        }
        end(a);
        end(b);
        for (auto it = kids.begin(); it != kids.end();)
            it = waitpid(*it, nullptr, WNOHANG) == *it ? kids.erase(it) : std::next(it);
    }
    for (auto k : kids) waitpid(k, nullptr, 0);
    say("done " + std::to_string(n));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() >= 2 && args[0] == "hold") return hold(args[1], args.size() > 2 && args[2] == "--userns");
    if (args.size() == 3 && args[0] == "held") return held(std::atoi(args[1].c_str()), std::strtoull(args[2].c_str(), nullptr, 10));
    if (args.size() >= 3 && args[0] == "reuse") {
        bool userns = false;
        std::vector<std::string> cmd;
        for (std::size_t i = 3; i < args.size(); ++i) {
            if (args[i] == "--userns") userns = true;
            if (args[i] == "--") {
                cmd.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
                break;
            }
        }
        int tries = 0;
        Child winner = reuse(args[1], userns || args[1] == "user", std::strtoull(args[2].c_str(), nullptr, 10), cmd, tries);
        if (winner.pid <= 0) {
            say("failed " + std::to_string(tries));
            return 2;
        }
        start(winner);
        say("reused " + std::to_string(winner.pid));
        for (std::string line; std::getline(std::cin, line);) {
        }
        end(winner);
        return 0;
    }
    if (args.size() == 1 && args[0] == "traced") return traced();
    if (args.size() == 2 && args[0] == "churn-held") churn_held_step(now_s() + std::atof(args[1].c_str()), -1, 0);
    if (args.size() == 4 && args[0] == "churn-held-step")
        churn_held_step(std::atof(args[1].c_str()), std::atoi(args[2].c_str()), std::atol(args[3].c_str()));
    if (args.size() == 3 && args[0] == "churn-mounts") return churn_mounts(std::atof(args[1].c_str()), args[2]);
    if (args.size() == 2 && args[0] == "zombies") return zombies(std::atof(args[1].c_str()));
    std::cerr << "usage: pidns-ns-tool hold TYPE [--userns] | reuse TYPE INODE [--userns] [-- CMD...] | traced | "
                 "churn-held S | churn-mounts S DIR | zombies S\n";
    return 64;
}
