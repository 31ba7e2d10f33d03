// Access control against the kernel's own answer: for every (caller, target) cell, can the caller
// open /proc/T/ns/pid (proc_ns_get_link -> ptrace_may_access READ_FSCREDS)? pidnsd must answer
// the same: allowed, AccessDenied where the kernel says EACCES, NoSuchProcess where it says ENOENT.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace pidns::harness;
using namespace std::chrono_literals;

namespace {

enum class Verdict { allowed, denied, absent, other };
char letter(Verdict v) { return v == Verdict::allowed ? 'A' : v == Verdict::denied ? 'D' : v == Verdict::absent ? '-' : '?'; }

// The kernel's answer: open /proc/T/ns/pid as the caller.
Verdict kernel_says(const Argv& prefix, pid_t target) {
    auto r = open_ns_pid_as(prefix, target);
    if (r.status == 0) return Verdict::allowed;
    if (r.err.find("Permission denied") != std::string::npos) return Verdict::denied;
    if (r.err.find("No such file") != std::string::npos) return Verdict::absent;
    return Verdict::other;
}

Verdict pidnsd_says(const std::string& address, const Argv& prefix, const std::string& method,
                    const Argv& args) {
    auto r = dbus_send(address, method, args, prefix);
    if (r.ok) return Verdict::allowed;
    if (r.error_name == "org.freedesktop.DBus.Error.AccessDenied") return Verdict::denied;
    if (r.error_name == "org.pidns.Error.NoSuchProcess") return Verdict::absent;
    return Verdict::other;
}

}  // namespace

TEST_CASE("differential matrix: pidnsd allows exactly what the kernel allows, for every caller and target") {
    PrivateBus bus;
    Daemon d(bus);
    const Argv as_daemon = as_uid(1);
    const Argv sleep = {"sleep", "1000"};
    const Argv userns_sleep = {"unshare", "-U", "-r", "-p", "-f", "sleep", "1000"};

    // Targets.
    Proc t_root(sleep), t_nobody(concat(kAsNobody, sleep)), t_daemon(concat(as_daemon, sleep));
    Proc t_nondump(Proc::NonDumpable{});
    Proc u_root(userns_sleep), u_nobody(concat(kAsNobody, userns_sleep)), u_daemon(concat(as_daemon, userns_sleep));
    for (const Proc* p : {&t_root, &t_nobody, &t_daemon}) wait_comm(p->pid(), "sleep");
    struct Target {
        std::string name;
        pid_t pid;
    };
    std::vector<Target> targets = {{"root", t_root.pid()}, {"nobody", t_nobody.pid()}, {"daemon", t_daemon.pid()},
                                   {"nobody-nondumpable", t_nondump.pid()}};
    // The sleeps inside are pid 1 of their namespaces: killing them ends the namespaces.
    struct KillAtEnd {
        std::vector<pid_t> pids;
        ~KillAtEnd() {
            for (pid_t p : pids) kill(p, SIGKILL);
        }
    } inner;
    for (auto [name, p] : {std::pair{"userns(root)", &u_root}, std::pair{"userns(nobody)", &u_nobody},
                           std::pair{"userns(daemon)", &u_daemon}}) {
        const pid_t c = child_of(p->pid());
        inner.pids.push_back(c);
        wait_comm(c, "sleep");
        targets.push_back({name, c});
    }
    // The non-dumpable one really is (its /proc directory belongs to root, its euid is nobody's).
    {
        std::this_thread::sleep_for(50ms);
        REQUIRE(read_file("/proc/" + std::to_string(t_nondump.pid()) + "/status").find("Uid:\t65534") != std::string::npos);
    }

    struct CallerKind {
        std::string name;
        Argv prefix;
    };
    const std::vector<CallerKind> callers = {
        {"root", {}},
        {"nobody", kAsNobody},
        {"daemon", as_daemon},
        {"nobody, gid daemon", {"setpriv", "--reuid=65534", "--regid=1", "--clear-groups"}},
        {"uid daemon, euid nobody",
         {"setpriv", "--ruid=1", "--euid=65534", "--rgid=65534", "--egid=65534", "--clear-groups"}},
        {"root in a user ns", {"unshare", "-U", "-r"}},
        {"root in a user+pid ns", {"unshare", "-U", "-r", "-p", "-f", "--mount-proc"}},
        {"nobody + CAP_SYS_PTRACE", concat(kAsNobody, {"--inh-caps=+sys_ptrace", "--ambient-caps=+sys_ptrace"})},
    };

    int cells = 0, differing = 0, allowed = 0, denied = 0, absent = 0;
    std::ostringstream table;
    table << "caller \\ target";
    for (const auto& t : targets) table << " | " << t.name;
    table << "\n";
    for (const auto& c : callers) {
        table << c.name;
        for (const auto& t : targets) {
            const std::string pid = std::to_string(t.pid);
            const Verdict k = kernel_says(c.prefix, t.pid);
            const Verdict gp = pidnsd_says(bus.address(), c.prefix, "GetProcess", {"uint32:" + pid});
            const Verdict tp = pidnsd_says(bus.address(), c.prefix, "TranslatePid", {"uint32:" + pid, "uint64:0", "uint64:0"});
            // TranslatePids answers 0 alike for a task refused and one absent.
            const auto batch = busctl_call(bus.address(), "TranslatePids", "autt", {"1", pid, "0", "0"}, c.prefix)
                                   .at(0)
                                   .get<std::vector<std::uint32_t>>();
            const Verdict tps = batch.size() == 1 && batch[0] != 0 ? Verdict::allowed : Verdict::absent;
            const bool tps_agrees = (tps == Verdict::allowed) == (k == Verdict::allowed);
            ++cells;
            (k == Verdict::allowed ? allowed : k == Verdict::denied ? denied : absent)++;
            table << " | " << letter(k) << letter(gp) << letter(tp) << letter(tps);
            if (k == Verdict::other || gp != k || tp != k || !tps_agrees) {
                ++differing;
                std::cout << "DIFFERS: caller " << c.name << ", target " << t.name << " (" << pid << "): kernel "
                          << letter(k) << ", GetProcess " << letter(gp) << ", TranslatePid " << letter(tp)
                          << ", TranslatePids " << letter(tps) << "\n";
            }
        }
        table << "\n";
    }
    std::cout << "access matrix: " << callers.size() << " callers x " << targets.size() << " targets = " << cells
              << " cells (kernel: " << allowed << " allowed, " << denied << " denied, " << absent
              << " absent); each cell: kernel, GetProcess, TranslatePid, TranslatePids (A allowed, D AccessDenied, - no "
                 "such process; TranslatePids: A or -, its 0 for both)\n"
              << table.str() << differing << " differing cells\n";
    CHECK(differing == 0);
    // The matrix is not degenerate: all three answers occur.
    CHECK(allowed > 0);
    CHECK(denied > 0);
    CHECK(absent > 0);

    // Namespaces: nobody sees the pid namespace nobody made, not daemon's; by id, by inode or made
    // up, an invisible one is the same NoSuchNamespace. Every process it is shown, the kernel lets
    // it open.
    auto pidns_of = [&](pid_t p) {
        auto r = run({"stat", "-L", "-c", "%i", "/proc/" + std::to_string(p) + "/ns/pid"});
        return r.out.substr(0, r.out.find('\n'));
    };
    const std::string mine = pidns_of(targets[5].pid), theirs = pidns_of(targets[6].pid);
    auto listed = busctl_call(bus.address(), "ListNamespaces", "s", {"pid"}, kAsNobody).at(0);
    bool sees_mine = false, sees_theirs = false;
    for (const auto& e : listed) {
        sees_mine = sees_mine || std::to_string(e.at(1).get<std::uint64_t>()) == mine;
        sees_theirs = sees_theirs || std::to_string(e.at(1).get<std::uint64_t>()) == theirs;
    }
    CHECK(sees_mine);
    CHECK_FALSE(sees_theirs);
    CHECK(dbus_send(bus.address(), "GetNamespace", {"uint64:" + theirs}, kAsNobody).error_name ==
          "org.pidns.Error.NoSuchNamespace");
    CHECK(dbus_send(bus.address(), "ListProcesses", {"uint64:" + theirs}, kAsNobody).error_name ==
          "org.pidns.Error.NoSuchNamespace");
    CHECK(dbus_send(bus.address(), "GetNamespace", {"uint64:" + mine}, kAsNobody).ok);
    CHECK(dbus_send(bus.address(), "GetNamespace", {"uint64:" + theirs}).ok);  // root sees it
    auto shown = busctl_call(bus.address(), "ListProcesses", "t", {"0"}, kAsNobody).at(0).get<std::vector<std::uint32_t>>();
    CHECK(!shown.empty());
    int refused = 0;
    for (auto p : shown) {
        const Verdict k = kernel_says(kAsNobody, static_cast<pid_t>(p));
        if (k == Verdict::denied) {
            ++refused;
            std::cout << "nobody was shown process " << p << " but the kernel refuses it\n";
        }
    }
    CHECK(refused == 0);
    const auto count = busctl_property(bus.address(), "Processes", kAsNobody).get<std::uint32_t>();
    CHECK(count >= shown.size());  // + nobody's process in its own user+pid namespace
    CHECK(count < busctl_property(bus.address(), "Processes").get<std::uint32_t>());
}

TEST_CASE("a target whose credentials change between two calls is judged on the new ones (found once it became nobody, refused once not dumpable)") {
    // pidnsd reads a target's credentials at most once for the calls received before the read
    // (CallerView::decide): a call received after a change must not be answered from a read made
    // before it, whichever way the change goes. The index read this target as root at its fork;
    // it then becomes nobody without an event (CI once answered nobody's batch from that read).
    PrivateBus bus;
    Daemon d(bus);
    int go[2], ack[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(ack, O_CLOEXEC) == 0);
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) _exit(1);
        char c = 0;
        if (::write(ack[1], "0", 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(1);
        // Becoming nobody made it not dumpable (fs.suid_dumpable): dumpable again, then not.
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
            _exit(1);
        ::prctl(PR_SET_DUMPABLE, 1);
        if (::write(ack[1], "r", 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(1);
        ::prctl(PR_SET_DUMPABLE, 0);
        if (::write(ack[1], "d", 1) != 1) _exit(1);
        for (;;) ::pause();
    }
    struct Reap {
        pid_t pid;
        ~Reap() {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    } reap{child};
    ::close(go[0]);
    ::close(ack[1]);
    char c = 0;
    REQUIRE(::read(ack[0], &c, 1) == 1);
    const std::string pid = std::to_string(child);
    // Indexed (and so read) while it is still root: root's call finds it.
    REQUIRE(pidnsd_says(bus.address(), {}, "TranslatePid", {"uint32:" + pid, "uint64:0", "uint64:0"}) == Verdict::allowed);
    REQUIRE(kernel_says(kAsNobody, child) == Verdict::denied);
    REQUIRE(::write(go[1], "n", 1) == 1);
    REQUIRE(::read(ack[0], &c, 1) == 1);
    auto batch = [&] {
        return busctl_call(bus.address(), "TranslatePids", "autt", {"1", pid, "0", "0"}, kAsNobody)
            .at(0)
            .get<std::vector<std::uint32_t>>();
    };
    const std::vector<std::uint32_t> found{static_cast<std::uint32_t>(child)}, refused{0};
    REQUIRE(kernel_says(kAsNobody, child) == Verdict::allowed);
    CHECK(batch() == found);
    CHECK(batch() == found);
    CHECK(pidnsd_says(bus.address(), kAsNobody, "TranslatePid", {"uint32:" + pid, "uint64:0", "uint64:0"}) == Verdict::allowed);
    REQUIRE(::write(go[1], "g", 1) == 1);
    REQUIRE(::read(ack[0], &c, 1) == 1);
    ::close(go[1]);
    ::close(ack[0]);
    REQUIRE(kernel_says(kAsNobody, child) == Verdict::denied);
    CHECK(batch() == refused);
    CHECK(pidnsd_says(bus.address(), kAsNobody, "TranslatePid", {"uint32:" + pid, "uint64:0", "uint64:0"}) == Verdict::denied);
    CHECK(batch() == refused);
}

TEST_CASE("signals reach only the clients that may see the namespace") {
    PrivateBus bus;
    Daemon d(bus);
    TempDir dir;
    auto listener = [&](const Argv& prefix, const std::string& out) {
        return concat(prefix, {"sh", "-c", std::string("exec ") + PIDNS_LISTENER_BIN + " " + bus.address() + " 60 > " + out});
    };
    const std::string root_out = dir.path() + "/root", nobody_out = dir.path() + "/nobody";
    for (const auto& f : {root_out, nobody_out}) {
        close(open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666));
        chmod(f.c_str(), 0666);  // nobody's listener writes its own
    }
    Proc root_l(listener({}, root_out));
    Proc nobody_l(listener(kAsNobody, nobody_out));
    auto wait_for = [&](const std::string& file, const std::string& line) {
        for (int i = 0; i < 1000; ++i) {
            if (read_file(file).find(line) != std::string::npos) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    };
    // On a miss, what each listener got and what pidnsd logged, to tell a lost signal from a wrong decision.
    auto expect = [&](const std::string& file, const std::string& line) {
        const bool got = wait_for(file, line);
        INFO("waited for \"" << line << "\" in " << file << ", which holds:\n"
                              << read_file(file) << "pidnsd's log:\n" << d.log());
        CHECK(got);
    };
    REQUIRE(wait_for(root_out, "ready\n"));
    REQUIRE(wait_for(nobody_out, "ready\n"));

    auto ns_id = [](pid_t p, const char* type) { return std::to_string(expected_ns_id(p, type)); };
    // root's net namespace, and nobody's user+net namespaces.
    auto root_ns = std::make_unique<Proc>(Argv{"unshare", "-n", "sleep", "1000"});
    auto nobody_ns = std::make_unique<Proc>(concat(kAsNobody, {"unshare", "-U", "-r", "-n", "sleep", "1000"}));
    wait_comm(root_ns->pid(), "sleep");
    wait_comm(nobody_ns->pid(), "sleep");
    const std::string root_net = ns_id(root_ns->pid(), "net");
    const std::string nobody_net = ns_id(nobody_ns->pid(), "net"), nobody_user = ns_id(nobody_ns->pid(), "user");
    expect(root_out, "added " + root_net + " net\n");
    expect(root_out, "added " + nobody_net + " net\n");
    expect(nobody_out, "added " + nobody_net + " net\n");
    expect(nobody_out, "added " + nobody_user + " user\n");
    root_ns.reset();
    nobody_ns.reset();
    expect(root_out, "removed " + root_net + " net\n");
    expect(root_out, "removed " + nobody_net + " net\n");
    expect(nobody_out, "removed " + nobody_net + " net\n");
    // nobody never heard of root's namespace, either way.
    INFO("nobody's listener got:\n" << read_file(nobody_out));
    CHECK(read_file(nobody_out).find(" " + root_net + " ") == std::string::npos);

    // NamespaceAdded means "created": a namespace that becomes visible to nobody only after it was
    // created (root makes it, then its process becomes nobody's) is not announced to nobody; a
    // listing shows it.
    auto handed = std::make_unique<Proc>(Argv{"unshare", "-n", "sh", "-c",
                                              "sleep 0.5; exec setpriv --reuid=65534 --regid=65534 --clear-groups sleep 1000"});
    wait_comm(handed->pid(), "sh");
    const std::string handed_net = ns_id(handed->pid(), "net");
    expect(root_out, "added " + handed_net + " net\n");
    wait_comm(handed->pid(), "sleep");
    const auto listed = busctl_call(bus.address(), "ListNamespaces", "s", {"net"}, kAsNobody).dump();
    CHECK(listed.find(handed_net) != std::string::npos);
    handed.reset();
    expect(root_out, "removed " + handed_net + " net\n");
    INFO("nobody's listener got:\n" << read_file(nobody_out));
    CHECK(read_file(nobody_out).find(" " + handed_net + " ") == std::string::npos);
}

TEST_CASE("callers that change identity or vanish mid-call get no answer computed for another process") {
    PrivateBus bus;
    Daemon d(bus);
    // Connected as root, then setresuid(nobody): the bus says uid 0, the process's euid is 65534.
    auto r = run({PIDNS_LISTENER_BIN, bus.address(), "--become", "65534"});
    CHECK(r.out == "org.freedesktop.DBus.Error.AccessDenied\n");
    // Connected as nobody and calling as nobody: accepted.
    auto ok = run(concat(kAsNobody, {PIDNS_LISTENER_BIN, bus.address(), "--become", "65534"}));
    CHECK(ok.out == "ok\n");

    // 200 callers that send and exit without waiting for the reply (dbus-send without
    // --print-reply): pidnsd finds them gone, answers nobody, and keeps serving.
    for (int i = 0; i < 200; ++i) {
        auto s = run(concat(kAsNobody, {"dbus-send", "--bus=" + bus.address(), "--dest=org.pidns", "/org/pidns",
                                        "org.pidns.Manager1.GetProcess", "uint32:" + std::to_string(getpid())}));
        REQUIRE(s.status == 0);
    }
    Client c(bus.address());
    CHECK(c.TranslatePid(static_cast<std::uint32_t>(getpid()), 0, 0) == static_cast<std::uint32_t>(getpid()));
    // Every caller pidnsd did identify was who the bus said: nobody (or this test, root).
    std::istringstream log(d.log());
    std::string line;
    int identified = 0;
    while (std::getline(log, line)) {
        const auto at = line.find("debug: caller :");
        if (at == std::string::npos || line.find(" left the bus") != std::string::npos) continue;
        ++identified;
        const bool nobody = line.find(" uid 65534 ") != std::string::npos;
        const bool root = line.find(" uid 0 ") != std::string::npos;
        INFO(line);
        CHECK((nobody || root));
    }
    std::cout << "vanishing callers: " << identified << " identified (the rest had left the bus first)\n";
}
