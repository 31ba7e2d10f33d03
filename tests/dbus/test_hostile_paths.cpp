// Hostile mount paths against the real pidnsd: as nobody in its own user and mount namespaces, a
// net namespace held only by an nsfs bind mount, covered by a tmpfs that puts a FIFO, or a symlink
// to a root-only host FIFO, at the mount's path. pidnsd must keep answering through verify passes,
// SIGHUP rescans and mountinfo changes, never open the FIFO, and exit promptly on SIGTERM.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "skip.h"
#include "support/script_agent.h"

using namespace pidns::harness;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using Setup = pidns::testing::ScriptAgent;  // the attacker's script: mounts, then it waits

const Argv kAsNobodyInOwnNamespaces = concat(kAsNobody, {"unshare", "-Urm", "--propagation", "private"});
const Argv kAsRootInOwnMountNs = {"unshare", "-m", "--propagation", "private"};

// A root-owned temp dir holding `nobody/`, a directory that nobody owns.
struct Playground {
    TempDir tmp;
    std::string dir = tmp.path() + "/nobody";
    Playground() {
        REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
        REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    }
};

// Shell lines: DIR/trap/ns is an nsfs bind mount of a net namespace nothing else holds (its
// `unshare -n` process exits), then `cover` (shell lines) mounts something over DIR/trap.
// DIR/other is left for later mount changes.
std::string covered_nsfs_mount(const std::string& dir, const std::string& cover) {
    const std::string trap = dir + "/trap";
    return "mkdir " + trap + " " + dir + "/other\ntouch " + trap + "/ns\nunshare -n mount --bind /proc/self/ns/net " +
           trap + "/ns\necho inode=$(stat -c %i " + trap + "/ns)\n" + cover + "\n";
}

// Shell lines: a tmpfs over DIR/trap, with `make_ns` (e.g. "mkfifo") making DIR/trap/ns in it.
std::string tmpfs_cover(const std::string& dir, const std::string& make_ns) {
    return "mount -t tmpfs none " + dir + "/trap\n" + make_ns + " " + dir + "/trap/ns";
}

// Root's TranslatePid(our pid, 0, 0) through busctl (which gives up after 5 s): how long it took,
// and what went wrong (empty if the answer was our pid).
std::chrono::milliseconds timed_translate(const std::string& address, std::string& failure) {
    const std::string self = std::to_string(::getpid());
    const auto t0 = Clock::now();
    auto r = run({"busctl", "--json=short", "--timeout=5", "--address=" + address, "call", "org.pidns", "/org/pidns",
                  "org.pidns.Manager1", "TranslatePid", "utt", self, "0", "0"},
                 6s);
    const bool answered = r.status == 0 && r.out.find("\"data\":[" + self + "]") != std::string::npos;
    failure = answered ? "" : "status " + std::to_string(r.status) + ": " + r.out + r.err;
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// Calls TranslatePid `n` times, `gap` apart; each must be answered within a second (bound(1s)).
void keeps_answering(const std::string& address, int n, std::chrono::milliseconds gap, const char* phase) {
    for (int i = 0; i < n; ++i) {
        std::string failure;
        const auto took = timed_translate(address, failure);
        INFO(phase << ", call " << i << ": " << took.count() << " ms");
        REQUIRE(failure == "");  // a stalled pidnsd fails here at the first call, after 5 s
        CHECK(took < bound(1s));
        std::this_thread::sleep_for(gap);
    }
}

// Whether `pid` has an fd on the file with this device and inode.
bool holds_fd_on(pid_t pid, dev_t dev, ino_t ino) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) return true;
    }
    return false;
}

// No reader holds the FIFO open (a reader blocked in open counts): a writer's nonblocking open
// fails with ENXIO.
bool fifo_has_no_reader(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    const int e = errno;
    if (fd >= 0) ::close(fd);
    return fd < 0 && e == ENXIO;
}

// The wait channels of pidnsd's threads ("fuse_get_req", "do_epoll_wait", ...).
std::vector<std::string> thread_wchans(pid_t pid) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
        out.push_back(read_file(e.path().string() + "/wchan"));
    return out;
}

bool net_listed(Client& c, std::uint64_t inode) {
    for (const auto& e : c.ListNamespaces("net"))
        if (std::get<1>(e) == inode) return true;
    return false;
}

// The attack's run against pidnsd: verify passes, a SIGHUP rescan, a mountinfo change.
void survives(PrivateBus& bus, Daemon& d, const Setup& attacker, const std::string& dir) {
    Client c(bus.address());
    // Answers all along three verify passes (each re-reads the mounts), however long they take.
    const auto passes = stat_of(c, "VerifyPasses");
    const auto until = Clock::now() + 20s;
    while (stat_of(c, "VerifyPasses") < passes + 3 && Clock::now() < until)
        keeps_answering(bus.address(), 1, 200ms, "verify passes");
    REQUIRE(stat_of(c, "VerifyPasses") >= passes + 3);

    d.signal(SIGHUP);
    keeps_answering(bus.address(), 5, 200ms, "after SIGHUP");

    // A mount change in the attacker's namespace: pidnsd watches its mountinfo and re-reads it.
    auto r = run({"nsenter", "-t", std::to_string(attacker.pid()), "-m", "--", "mount", "-t", "tmpfs", "none",
                  dir + "/other"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    keeps_answering(bus.address(), 5, 200ms, "after a mountinfo change");

    // Never reached through the covered mount (nothing else holds that namespace).
    CHECK_FALSE(net_listed(c, std::stoull(attacker.value("inode"))));
}

void stops_promptly(Daemon& d) {
    const auto t0 = Clock::now();
    CHECK(d.stop(SIGTERM, 10s) == 0);
    CHECK(Clock::now() - t0 < bound(2s));
}

bool waits_in_fuse(const std::string& wchan) {
    return wchan.find("fuse") != std::string::npos || wchan.find("request_wait_answer") != std::string::npos;
}

}  // namespace

TEST_CASE("as nobody: a FIFO over a covered nsfs mount neither stalls pidnsd nor is opened by it") {
    PrivateBus bus;
    Daemon d(bus, {"--verify-interval=200ms"});
    Playground play;
    Setup attacker(kAsNobodyInOwnNamespaces, covered_nsfs_mount(play.dir, tmpfs_cover(play.dir, "mkfifo")));
    // The FIFO as the attacker sees it (the test reaches it through the attacker's root).
    const std::string fifo = "/proc/" + std::to_string(attacker.pid()) + "/root" + play.dir + "/trap/ns";
    struct stat st {};
    REQUIRE(::stat(fifo.c_str(), &st) == 0);
    REQUIRE(S_ISFIFO(st.st_mode));

    // While pidnsd runs: it holds no fd on the FIFO, and no reader waits in it.
    keeps_answering(bus.address(), 6, 200ms, "verify passes");
    CHECK_FALSE(holds_fd_on(d.pid(), st.st_dev, st.st_ino));
    CHECK(fifo_has_no_reader(fifo));

    survives(bus, d, attacker, play.dir);
    stops_promptly(d);
    CHECK(fifo_has_no_reader(fifo));
}

TEST_CASE("as nobody: a symlink to a root-only host FIFO over a covered nsfs mount is never followed") {
    PrivateBus bus;
    Daemon d(bus, {"--verify-interval=200ms"});
    Playground play;
    const std::string host_fifo = play.tmp.path() + "/host-fifo";
    REQUIRE(::mkfifo(host_fifo.c_str(), 0600) == 0);
    Setup attacker(kAsNobodyInOwnNamespaces, covered_nsfs_mount(play.dir, tmpfs_cover(play.dir, "ln -s " + host_fifo)));
    struct stat st {};
    REQUIRE(::stat(host_fifo.c_str(), &st) == 0);

    // While pidnsd runs: it holds no fd on the host FIFO, and no reader waits in it.
    keeps_answering(bus.address(), 6, 200ms, "verify passes");
    CHECK_FALSE(holds_fd_on(d.pid(), st.st_dev, st.st_ino));
    CHECK(fifo_has_no_reader(host_fifo));

    survives(bus, d, attacker, play.dir);
    stops_promptly(d);
    CHECK(fifo_has_no_reader(host_fifo));
}

TEST_CASE("an nsfs mount covered by a FUSE mount that never answers costs pidnsd one deadline, and SIGTERM still works") {
    PIDNS_REQUIRE_PREREQUISITE(fuse_missing());
    PrivateBus bus;
    Daemon d(bus, {"--verify-interval=200ms"});
    Playground play;
    // Built by root in its own mount namespace (here /dev/fuse is root's only; where users may
    // open it they can do the same in a user namespace): every lookup below DIR/trap waits
    // forever for the FUSE server's INIT answer.
    const std::string fuse_cover =
        "exec 3<>/dev/fuse\nmount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 none " + play.dir + "/trap";
    Setup holder(kAsRootInOwnMountNs, covered_nsfs_mount(play.dir, fuse_cover));
    keeps_answering(bus.address(), 6, 200ms, "verify passes");
    // Exactly one of pidnsd's threads waits for the FUSE server: the first walk, abandoned.
    const auto wchans = thread_wchans(d.pid());
    std::string all;
    for (const auto& w : wchans) all += w + " ";
    INFO("pidnsd's threads wait in: " << all);
    CHECK(std::count_if(wchans.begin(), wchans.end(), waits_in_fuse) == 1);
    survives(bus, d, holder, play.dir);
#if defined(__SANITIZE_ADDRESS__)
    // LeakSanitizer's check at exit stops every thread with ptrace, and a thread in a FUSE wait
    // never stops: under ASan, end the FUSE server (the abandoned walk then returns) first.
    holder.kill();
    for (int i = 0; i < 200; ++i) {
        const auto w = thread_wchans(d.pid());
        if (std::none_of(w.begin(), w.end(), waits_in_fuse)) break;
        std::this_thread::sleep_for(10ms);
    }
#endif
    stops_promptly(d);
}
