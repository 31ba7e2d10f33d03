// Test support: recreates a DumpPidTree dump with clone3(set_tid), setsid/setpgid, threads, zombies and setns.
#include "support/restore_tree.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace pidns::testing {
namespace {

constexpr std::uint32_t kThread = 1, kZombie = 2, kEntered = 4, kUnshared = 8;

// Lives in MAP_SHARED memory: every restored task and R report through it.
struct Shared {
    std::atomic<int> created;  // tasks set up
    std::atomic<int> failed;
    std::atomic<int> done;     // R: 1 every task exists
    std::atomic<int> init;     // host pid of the restored init
    char error[1024];
    std::atomic<int> ready[1];  // per entry (allocated to the dump's size): set up
};

std::size_t shared_size(std::size_t n) { return sizeof(Shared) + sizeof(std::atomic<int>) * (n > 0 ? n : 1); }

// What each task needs to play its part, computed before anything is forked.
struct Plan {
    std::vector<RestoreEntry> e;
    std::vector<std::vector<std::size_t>> threads, same, deeper;  // per entry
    std::vector<std::size_t> entered;                               // created by R, in dump order
    std::size_t root = SIZE_MAX;
    std::map<std::uint32_t, std::size_t> leader;  // vtgid -> leader entry
};

std::string who(const RestoreEntry& e) {
    std::string s;
    for (auto v : e.vpids) s += (s.empty() ? "" : "/") + std::to_string(v);
    return "task " + s;
}

Plan make_plan(const std::vector<RestoreEntry>& dump) {
    Plan p;
    p.e = dump;
    const auto n = dump.size();
    p.threads.resize(n);
    p.same.resize(n);
    p.deeper.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& e = dump[i];
        if (e.vpids.size() != e.depth + 1) throw std::runtime_error(who(e) + ": vpids do not match its depth");
        if (!(e.flags & kThread)) p.leader[e.vtgid] = i;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const auto& e = dump[i];
        if (e.flags & kThread) {
            auto l = p.leader.find(e.vtgid);
            if (l == p.leader.end()) throw std::runtime_error(who(e) + ": thread without its leader in the dump");
            p.threads[l->second].push_back(i);
            continue;
        }
        if (e.depth == 0 && e.vpids[0] == 1) {
            p.root = i;
            continue;
        }
        if (e.flags & kEntered) {
            p.entered.push_back(i);
            continue;
        }
        auto parent = p.leader.find(e.vppid);
        if (e.vppid == 0 || parent == p.leader.end())
            throw std::runtime_error(who(e) + ": its parent is not in the dump, yet it is not marked entered-from-outside");
        const auto& pe = dump[parent->second];
        if (e.depth == pe.depth) p.same[parent->second].push_back(i);
        else if (e.depth == pe.depth + 1) p.deeper[parent->second].push_back(i);
        else throw std::runtime_error(who(e) + ": more than one level below its parent");
    }
    if (p.root == SIZE_MAX) throw std::runtime_error("the dump has no init (pid 1 at depth 0)");
    // Group and session leaders before their members; a namespace's init before its other members.
    for (std::size_t i = 0; i < n; ++i) {
        auto leaders_first = [&](std::size_t a, std::size_t b) {
            const bool la = dump[a].vpgid == dump[a].vtgid || dump[a].vsid == dump[a].vtgid;
            const bool lb = dump[b].vpgid == dump[b].vtgid || dump[b].vsid == dump[b].vtgid;
            if (la != lb) return la;
            return dump[a].vpids.back() < dump[b].vpids.back();
        };
        std::stable_sort(p.same[i].begin(), p.same[i].end(), leaders_first);
        std::stable_sort(p.deeper[i].begin(), p.deeper[i].end(), [&](std::size_t a, std::size_t b) {
            if (dump[a].vpids.back() == 1 || dump[b].vpids.back() == 1) return dump[a].vpids.back() == 1 && dump[b].vpids.back() != 1;
            return leaders_first(a, b);
        });
    }
    return p;
}

Shared* g_shared = nullptr;

[[noreturn]] void fail(const std::string& what) {
    int expected = 0;
    if (g_shared->failed.compare_exchange_strong(expected, 1))
        std::snprintf(g_shared->error, sizeof g_shared->error, "%s", what.c_str());
    ::_exit(1);
}

[[noreturn]] void fail_errno(const std::string& what) { fail(what + ": " + std::strerror(errno)); }

// set_tid as clone3 wants it: the pid in the task's own (innermost) namespace first.
std::vector<pid_t> set_tid_of(const RestoreEntry& e) {
    std::vector<pid_t> t(e.vpids.rbegin(), e.vpids.rend());
    return t;
}

pid_t clone3_fork(const RestoreEntry& e, std::uint64_t flags) {
    auto tids = set_tid_of(e);
    clone_args a{};
    a.flags = flags;
    a.exit_signal = SIGCHLD;
    a.set_tid = reinterpret_cast<std::uint64_t>(tids.data());
    a.set_tid_size = tids.size();
    return static_cast<pid_t>(::syscall(SYS_clone3, &a, sizeof a));
}

#if defined(__x86_64__)
// clone3 for a thread whose only job is to exist: the new thread loops on pause() without
// touching memory, so it needs no C++ runtime (no TLS of its own); its stack only takes signal frames.
long clone3_idle_thread(clone_args* args, std::size_t size) {
    long ret;
    asm volatile(
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "2:\n\t"
        "mov $34, %%eax\n\t"  // SYS_pause
        "syscall\n\t"
        "jmp 2b\n\t"
        "1:\n\t"
        : "=a"(ret)
        : "0"(static_cast<long>(SYS_clone3)), "D"(args), "S"(size)
        : "rcx", "r11", "memory");
    return ret;
}
#endif

void make_thread(const RestoreEntry& e) {
#if defined(__x86_64__)
    constexpr std::size_t kStack = 64 * 1024;
    void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) fail_errno(who(e) + ": mmap of a thread stack");
    auto tids = set_tid_of(e);
    clone_args a{};
    a.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    a.stack = reinterpret_cast<std::uint64_t>(stack);
    a.stack_size = kStack;
    a.set_tid = reinterpret_cast<std::uint64_t>(tids.data());
    a.set_tid_size = tids.size();
    const long r = clone3_idle_thread(&a, sizeof a);
    if (r < 0) {
        errno = static_cast<int>(-r);
        fail_errno(who(e) + ": clone3(CLONE_THREAD, set_tid)");
    }
#else
    fail(who(e) + ": restoring threads needs x86-64");
#endif
}

void wait_ready(std::size_t i) {
    for (int k = 0; k < 200000 && !g_shared->ready[i].load(); ++k) {
        if (g_shared->failed.load()) ::_exit(1);
        ::usleep(50);
    }
    if (!g_shared->ready[i].load()) fail("timed out waiting for a restored task to set itself up");
}

// The pid, in the task's own pid namespace, of the group leader `vtgid` (a pid in the dump's root).
pid_t own_pid_of(const Plan& p, const RestoreEntry& e, std::uint32_t vtgid) {
    auto l = p.leader.find(vtgid);
    if (l == p.leader.end()) fail(who(e) + ": its process group or session leader " + std::to_string(vtgid) + " is not in the dump");
    const auto& le = p.e[l->second];
    if (le.depth < e.depth)
        fail(who(e) + ": its process group leader is in an outer pid namespace, where it cannot setpgid() to it");
    return static_cast<pid_t>(le.vpids[e.depth]);
}

// Session and process group, as the dump says, from what it inherited from its parent.
void set_groups(const Plan& p, std::size_t i, std::uint32_t inherited_pgid, std::uint32_t inherited_sid) {
    const auto& e = p.e[i];
    if (e.vsid != inherited_sid) {
        if (e.vsid != e.vtgid) fail(who(e) + ": its session is neither its parent's nor its own");
        if (::setsid() < 0) fail_errno(who(e) + ": setsid");
    }
    if (e.vpgid == e.vtgid) {
        if (::getpgid(0) != ::getpid() && ::setpgid(0, 0) != 0) fail_errno(who(e) + ": setpgid(0, 0)");
    } else if (e.vpgid != (e.vsid != inherited_sid ? e.vtgid : inherited_pgid)) {
        if (e.vpgid == 0) fail(who(e) + ": its process group leader is outside the dump, unlike its parent's");
        if (::setpgid(0, own_pid_of(p, e, e.vpgid)) != 0) fail_errno(who(e) + ": setpgid to its group");
    }
}

[[noreturn]] void run_task(const Plan& p, std::size_t i, std::uint32_t inherited_pgid, std::uint32_t inherited_sid);

// A zombie child is one once this returns: waitid(WNOWAIT) waits for its exit without reaping it.
void wait_zombie(const Plan& p, std::size_t child, pid_t pid) {
    if (!(p.e[child].flags & kZombie)) return;
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0)
        if (errno != EINTR) fail_errno(who(p.e[child]) + ": waitid(WNOWAIT) for the zombie");
}

void spawn_child(const Plan& p, std::size_t parent, std::size_t child, std::uint64_t flags) {
    const auto& pe = p.e[parent];
    const pid_t pid = clone3_fork(p.e[child], flags);
    if (pid < 0) fail_errno(who(p.e[child]) + ": clone3(set_tid) by its parent");
    if (pid == 0) run_task(p, child, pe.vpgid, pe.vsid);
    wait_ready(child);
    wait_zombie(p, child, pid);
}

void run_task(const Plan& p, std::size_t i, std::uint32_t inherited_pgid, std::uint32_t inherited_sid) {
    const auto& e = p.e[i];
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    set_groups(p, i, inherited_pgid, inherited_sid);
    g_shared->ready[i].store(1);
    if (e.flags & kZombie) {
        g_shared->created.fetch_add(1);
        ::_exit(0);  // its parent never waits: it stays a zombie
    }
    for (auto t : p.threads[i]) {
        make_thread(p.e[t]);
        g_shared->ready[t].store(1);
        g_shared->created.fetch_add(1);
    }
    for (auto c : p.same[i]) spawn_child(p, i, c, 0);
    if (!p.deeper[i].empty()) {
        if (e.flags & kUnshared) {
            if (!p.threads[i].empty()) fail(who(e) + ": a task with threads cannot unshare(CLONE_NEWPID) and keep them");
            if (::unshare(CLONE_NEWPID) != 0) fail_errno(who(e) + ": unshare(CLONE_NEWPID)");
            for (auto c : p.deeper[i]) spawn_child(p, i, c, 0);
        } else {
            for (auto c : p.deeper[i]) {
                if (p.e[c].vpids.back() != 1)
                    fail(who(p.e[c]) + ": in a nested pid namespace its parent neither made (clone CLONE_NEWPID) nor unshared");
                spawn_child(p, i, c, CLONE_NEWPID);
            }
        }
    }
    g_shared->created.fetch_add(1);
    for (;;) ::pause();
}

std::vector<pid_t> read_nspid(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::vector<pid_t> out;
    while (std::getline(f, line))
        if (line.rfind("NSpid:", 0) == 0) {
            std::istringstream ss(line.substr(6));
            for (pid_t v; ss >> v;) out.push_back(v);
        }
    return out;
}

ino_t inode_of_fd(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

// A host pid of a restored task in the restored pid namespace the dump calls `pidns` (R sees
// every task from the test's pid namespace): its NSpid ends with the entry's vpids and its pid
// namespace is `depth` levels below the restored root's.
pid_t find_restored(const Plan& p, std::uint64_t pidns, ino_t root_ino) {
    for (const auto& e : p.e) {
        if (e.pidns != pidns || (e.flags & (kZombie | kEntered))) continue;
        DIR* d = ::opendir("/proc");
        if (!d) return 0;
        pid_t found = 0;
        while (auto* de = ::readdir(d)) {
            const pid_t pid = static_cast<pid_t>(std::atoi(de->d_name));
            if (pid <= 0) continue;
            const auto chain = read_nspid(pid);
            if (chain.size() != e.vpids.size() + 1) continue;
            if (!std::equal(e.vpids.begin(), e.vpids.end(), chain.begin() + 1,
                            [](std::uint32_t a, pid_t b) { return static_cast<pid_t>(a) == b; }))
                continue;
            const int fd = ::open(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            int cur = fd;
            for (std::uint32_t k = 0; k < e.depth && cur >= 0; ++k) {
                const int up = ::ioctl(cur, NS_GET_PARENT);
                ::close(cur);
                cur = up;
            }
            if (cur >= 0) {
                if (inode_of_fd(cur) == root_ino) found = pid;
                ::close(cur);
            }
            if (found) break;
        }
        ::closedir(d);
        if (found) return found;
    }
    return 0;
}

[[noreturn]] void run_restorer(const Plan& p) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int own = ::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
    if (own < 0) fail_errno("restorer: open /proc/self/ns/pid");
    const auto& root = p.e[p.root];
    const pid_t init = clone3_fork(root, CLONE_NEWPID);
    if (init < 0) fail_errno("restorer: clone3(CLONE_NEWPID, set_tid {1}) of the init");
    if (init == 0) run_task(p, p.root, 0, 0);
    g_shared->init.store(init);
    const int init_ns = ::open(("/proc/" + std::to_string(init) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
    if (init_ns < 0) fail_errno("restorer: open the init's ns/pid");
    const ino_t root_ino = inode_of_fd(init_ns);
    // Everything the init's subtree holds, then the tasks entered from outside.
    std::size_t from_inside = p.e.size();
    std::vector<std::size_t> todo = p.entered;
    while (!todo.empty()) {  // the entered tasks' own subtrees are counted by them
        const auto k = todo.back();
        todo.pop_back();
        --from_inside;
        for (auto t : p.threads[k]) (void)t, --from_inside;
        todo.insert(todo.end(), p.same[k].begin(), p.same[k].end());
        todo.insert(todo.end(), p.deeper[k].begin(), p.deeper[k].end());
    }
    auto wait_created = [&](std::size_t n) {
        for (int k = 0; k < 1200000 && static_cast<std::size_t>(g_shared->created.load()) < n; ++k) {
            if (g_shared->failed.load()) ::_exit(1);
            ::usleep(50);
        }
        if (static_cast<std::size_t>(g_shared->created.load()) < n) fail("restorer: timed out waiting for the tasks");
    };
    wait_created(from_inside);
    for (const auto k : p.entered) {
        const auto& e = p.e[k];
        const pid_t in_ns = find_restored(p, e.pidns, root_ino);
        if (in_ns == 0) fail(who(e) + ": no restored task shows the pid namespace it entered");
        const int fd = ::open(("/proc/" + std::to_string(in_ns) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::setns(fd, CLONE_NEWPID) != 0) fail_errno(who(e) + ": restorer setns into its pid namespace");
        ::close(fd);
        const pid_t pid = clone3_fork(e, 0);
        if (pid < 0) fail_errno(who(e) + ": clone3(set_tid) by the restorer");
        if (pid == 0) run_task(p, k, 0, 0);
        if (::setns(own, CLONE_NEWPID) != 0) fail_errno("restorer: setns back");
        wait_ready(k);
        wait_zombie(p, k, pid);
    }
    wait_created(p.e.size());
    g_shared->done.store(1);
    for (;;) ::pause();  // never reaps: zombies it parents stay
}

}  // namespace

std::vector<RestoreEntry> restore_entries_from_json(const std::string& json_text) {
    const auto j = nlohmann::json::parse(json_text);
    const auto& tasks = j.is_object() ? j.at("tasks") : j;
    std::vector<RestoreEntry> out;
    for (const auto& t : tasks) {
        RestoreEntry e;
        e.depth = t.at("depth").get<std::uint32_t>();
        e.vpids = t.at("vpids").get<std::vector<std::uint32_t>>();
        e.vtgid = t.at("vtgid").get<std::uint32_t>();
        e.vppid = t.at("vppid").get<std::uint32_t>();
        e.vpgid = t.at("vpgid").get<std::uint32_t>();
        e.vsid = t.at("vsid").get<std::uint32_t>();
        e.pidns = t.at("pidns").get<std::uint64_t>();
        e.pid_for_children = t.at("pid_for_children").get<std::uint64_t>();
        e.flags = t.at("flags").get<std::uint32_t>();
        out.push_back(std::move(e));
    }
    return out;
}

RestoredTree::RestoredTree(const std::vector<RestoreEntry>& dump, std::chrono::milliseconds timeout) {
    const Plan plan = make_plan(dump);
    shared_size_ = shared_size(dump.size());
    shared_ = ::mmap(nullptr, shared_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared_ == MAP_FAILED) throw std::runtime_error("mmap of the restore's shared memory failed");
    auto* sh = new (shared_) Shared{};
    for (std::size_t i = 0; i < dump.size(); ++i) new (&sh->ready[i]) std::atomic<int>(0);
    restorer_ = ::fork();
    if (restorer_ < 0) throw std::runtime_error("fork of the restorer failed");
    if (restorer_ == 0) {
        g_shared = sh;
        run_restorer(plan);
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (sh->done.load() == 0 && sh->failed.load() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    init_ = sh->init.load();
    if (sh->done.load() == 1) return;
    const std::string why = sh->failed.load() ? std::string(sh->error) : "timed out";
    this->~RestoredTree();
    throw std::runtime_error("restore failed: " + why);
}

RestoredTree::~RestoredTree() {
    if (init_ > 0) ::kill(init_, SIGKILL);
    if (restorer_ > 0) {
        ::kill(restorer_, SIGKILL);
        ::waitpid(restorer_, nullptr, 0);
        restorer_ = -1;
    }
    init_ = -1;
    if (shared_ && shared_ != MAP_FAILED) ::munmap(shared_, shared_size_);
    shared_ = nullptr;
}

}  // namespace pidns::testing
