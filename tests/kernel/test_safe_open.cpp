// Opening namespace files as root without following what users control: FIFOs, devices, sockets,
// symlinks and directories in place of an nsfs mount are refused without blocking or being opened,
// swapped fds are refused, real nsfs mounts and links are accepted, and a walk that hangs (FUSE)
// costs one deadline.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model.h"
#include "nsfs.h"
#include "prerequisites.h"  // tests/harness
#include "process.h"
#include "skip.h"
#include "timing.h"
#include "safe_open.h"
#include "support/script_agent.h"

using namespace pidns;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A regression must fail the test, not hang it: SIGALRM's default action ends the process.
struct Alarm {
    explicit Alarm(unsigned seconds) { ::alarm(seconds); }
    ~Alarm() { ::alarm(0); }
};

using pidns::harness::TempDir;

// `unshare -m --propagation private sh -c SCRIPT`: a shell in a private mount namespace that
// builds mounts, prints "key=value" lines (inode numbers) and waits.
class MountNsShell : public pidns::testing::ScriptAgent {
public:
    explicit MountNsShell(const std::string& script)
        : ScriptAgent({"unshare", "-m", "--propagation", "private"}, script) {}
    [[nodiscard]] std::uint64_t number(const std::string& key) const { return std::stoull(value(key)); }
};

struct ProcDir {
    Fd fd{::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
};

std::uint64_t inode_of_fd(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_ino;
}

std::uint64_t ns_inode(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_ino;
}

// Shell lines: bind-mount a net namespace held by nothing else (its `unshare -n` process exits)
// onto the new file PATH, and print KEY=its inode.
std::string nsfs_mount_line(const std::string& path, const std::string& key) {
    return "touch " + path + "\nunshare -n mount --bind /proc/self/ns/net " + path + "\necho " + key +
           "=$(stat -c %i " + path + ")\n";
}

// Nobody holds the FIFO open for reading: a writer's nonblocking open fails with ENXIO.
bool fifo_has_no_reader(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    const int e = errno;
    if (fd >= 0) ::close(fd);
    return fd < 0 && e == ENXIO;
}

// Whether this process has an fd on `path` (compared by device and inode).
bool we_hold_fd_on(const std::string& path) {
    struct stat target {};
    REQUIRE(::stat(path.c_str(), &target) == 0);
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino) return true;
    }
    return false;
}

void make_socket_file(const std::string& path) {
    const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(s >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(s);
}

}  // namespace

TEST_CASE("mount paths: anything but an nsfs file in place of a mount is refused at once, never opened") {
    const Alarm alarm(30);
    TempDir tmp;
    const std::string& d = tmp.path();
    REQUIRE(::mkfifo((d + "/fifo").c_str(), 0600) == 0);
    REQUIRE(::symlink((d + "/fifo").c_str(), (d + "/link-to-fifo").c_str()) == 0);
    make_socket_file(d + "/sock");
    REQUIRE(::mkdir((d + "/dir").c_str(), 0700) == 0);
    { std::ofstream(d + "/file") << "x"; }
    REQUIRE(::mkdir((d + "/sub").c_str(), 0700) == 0);
    REQUIRE(::symlink((d + "/sub").c_str(), (d + "/link-to-sub").c_str()) == 0);
    // In the shell's mount namespace: /dev/null over a file, and a real nsfs mount in sub/.
    MountNsShell sh("touch " + d + "/dev\nmount --bind /dev/null " + d + "/dev\n" + nsfs_mount_line(d + "/sub/ns", "ns"));
    const ProcDir proc;

    struct Case {
        const char* what;
        std::string path;
    };
    const std::vector<Case> refused = {
        {"FIFO", d + "/fifo"},
        {"symlink to a FIFO", d + "/link-to-fifo"},
        {"char device (/dev/null bind-mounted)", d + "/dev"},
        {"unix socket", d + "/sock"},
        {"directory", d + "/dir"},
        {"regular file", d + "/file"},
        {"symlink component in the middle", d + "/link-to-sub/ns"},
    };
    // A long deadline: what is checked here is the refusal, not the deadline (a FIFO opened
    // for reading would block for good, and the alarm end the test).
    MountPathOpener opener(5s);
    for (const auto& c : refused) {
        INFO(c.what << ": " << c.path);
        const auto t0 = Clock::now();
        auto r = opener.open(proc.fd.get(), sh.pid(), c.path);
        CHECK(Clock::now() - t0 < pidns::harness::bound(1s));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::access_denied);
        // The component-by-component walk (kernels without openat2) refuses the same.
        int root = ::openat(proc.fd.get(), (std::to_string(sh.pid()) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(root >= 0);
        const Fd root_fd(root);
        auto walked = open_beneath_by_walk(root_fd.get(), c.path);
        auto reopened = walked ? reopen_nsfs(proc.fd.get(), walked->get()) : Result<Fd>(walked.error());
        REQUIRE_FALSE(reopened.ok());
        CHECK(reopened.error().code == Errc::access_denied);
    }
    CHECK(opener.abandoned() == 0);
    CHECK(fifo_has_no_reader(d + "/fifo"));
    CHECK_FALSE(we_hold_fd_on(d + "/fifo"));

    SECTION("a real nsfs bind mount is accepted, by both walks, and is the mounted namespace") {
        auto r = opener.open(proc.fd.get(), sh.pid(), d + "/sub/ns");
        INFO((r ? std::string("ok") : r.error().describe()));
        REQUIRE(r.ok());
        CHECK(inode_of_fd(r->get()) == sh.number("ns"));
        auto ident = ns_identity(r->get());
        REQUIRE(ident.ok());
        CHECK(ident->type == NsType::net);
        int root = ::openat(proc.fd.get(), (std::to_string(sh.pid()) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(root >= 0);
        const Fd root_fd(root);
        auto walked = open_beneath_by_walk(root_fd.get(), d + "/sub/ns");
        REQUIRE(walked.ok());
        auto reopened = reopen_nsfs(proc.fd.get(), walked->get());
        REQUIRE(reopened.ok());
        CHECK(inode_of_fd(reopened->get()) == sh.number("ns"));
    }
    SECTION("missing paths and vanished processes are not_found, not refusals") {
        auto missing = opener.open(proc.fd.get(), sh.pid(), d + "/no/such/ns");
        REQUIRE_FALSE(missing.ok());
        CHECK(missing.error().code == Errc::not_found);
        const pid_t gone = sh.pid();
        sh.kill();
        auto vanished = opener.open(proc.fd.get(), gone, d + "/sub/ns");
        REQUIRE_FALSE(vanished.ok());
        CHECK(vanished.error().code == Errc::not_found);
    }
    SECTION("\"..\" is refused by the walk; openat2 refuses what leaves the root") {
        int root = ::openat(proc.fd.get(), (std::to_string(sh.pid()) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(root >= 0);
        const Fd root_fd(root);
        auto walked = open_beneath_by_walk(root_fd.get(), d + "/sub/../sub/ns");
        REQUIRE_FALSE(walked.ok());
        CHECK(walked.error().code == Errc::access_denied);
        int sub = ::openat(root_fd.get(), (d.substr(1) + "/sub").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(sub >= 0);
        const Fd sub_fd(sub);
        auto escaped = open_beneath(sub_fd.get(), "../fifo");
        REQUIRE_FALSE(escaped.ok());
        CHECK(escaped.error().code == Errc::access_denied);
    }
}

TEST_CASE("magic links: ns links and an fd on a namespace are opened, an fd on a FIFO or device is refused, never opened") {
    const Alarm alarm(30);
    TempDir tmp;
    const std::string fifo = tmp.path() + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // A process holding an fd on a namespace, one on the FIFO (O_RDWR: no wait for a partner) and
    // one on /dev/null, as an attacker would after dup2() swapped them under a reader.
    const int ns_fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    const int fifo_fd = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE((ns_fd >= 0 && fifo_fd >= 0 && null_fd >= 0));
    const pid_t holder = ::fork();
    REQUIRE(holder >= 0);
    if (holder == 0) {
        for (int fd : {ns_fd, fifo_fd, null_fd}) ::fcntl(fd, F_SETFD, 0);
        ::execlp("sleep", "sleep", "100000", nullptr);
        ::_exit(127);
    }
    pidns::harness::Reap reap{holder};
    const std::uint64_t net_inode = inode_of_fd(ns_fd);
    for (int fd : {ns_fd, fifo_fd, null_fd}) ::close(fd);
    // The fds are the holder's once it runs sleep.
    for (int i = 0; i < 500 && std::filesystem::read_symlink("/proc/" + std::to_string(holder) + "/exe").filename() != "sleep"; ++i)
        std::this_thread::sleep_for(10ms);
    const ProcDir proc;
    const std::string h = std::to_string(holder);

    auto link = open_ns_link(proc.fd.get(), h + "/ns/net");
    REQUIRE(link.ok());
    CHECK(inode_of_fd(link->get()) == ns_inode("/proc/" + h + "/ns/net"));
    CHECK(ns_identity(link->get())->type == NsType::net);
    auto pidns = open_ns_link(proc.fd.get(), "self/ns/pid");
    REQUIRE(pidns.ok());
    CHECK(inode_of_fd(pidns->get()) == ns_inode("/proc/self/ns/pid"));

    auto by_fd = open_ns_link(proc.fd.get(), h + "/fd/" + std::to_string(ns_fd));
    REQUIRE(by_fd.ok());
    CHECK(inode_of_fd(by_fd->get()) == net_inode);

    for (int fd : {fifo_fd, null_fd}) {
        INFO("fd " << fd);
        const auto t0 = Clock::now();
        auto r = open_ns_link(proc.fd.get(), h + "/fd/" + std::to_string(fd));
        CHECK(Clock::now() - t0 < pidns::harness::bound(1s));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::access_denied);
    }
    CHECK_FALSE(we_hold_fd_on(fifo));
    auto closed = open_ns_link(proc.fd.get(), h + "/fd/999");
    REQUIRE_FALSE(closed.ok());
    CHECK(closed.error().code == Errc::not_found);

    reap.now();
    // The holder's O_RDWR was the only reader: none is left, so we never opened it.
    CHECK(fifo_has_no_reader(fifo));
    auto vanished = open_ns_link(proc.fd.get(), h + "/ns/net");
    REQUIRE_FALSE(vanished.ok());
    CHECK(vanished.error().code == Errc::not_found);
}

TEST_CASE("model: covered nsfs mounts (FIFO, symlink to a host FIFO) are skipped and counted, an uncovered one is indexed") {
    const Alarm alarm(60);
    TempDir tmp;
    const std::string& d = tmp.path();
    const std::string host_fifo = d + "/host-fifo";
    REQUIRE(::mkfifo(host_fifo.c_str(), 0600) == 0);
    // Covered mounts the host has already (another user's, or a killed test's) count too.
    std::uint64_t host = 0;
    {
        auto before = Model::create();
        REQUIRE(before.ok());
        REQUIRE((*before)->rescan().ok());
        host = (*before)->unsafe_paths_skipped();
    }
    MountNsShell sh("mkdir " + d + "/a " + d + "/b " + d + "/c\n" +  //
                    nsfs_mount_line(d + "/a/ns", "a") +              //
                    nsfs_mount_line(d + "/b/ns", "b") + "mount -t tmpfs none " + d + "/b\nmkfifo " + d + "/b/ns\n" +
                    nsfs_mount_line(d + "/c/ns", "c") + "mount -t tmpfs none " + d + "/c\nln -s " + host_fifo + " " + d +
                    "/c/ns\n");
    auto created = Model::create();
    REQUIRE(created.ok());
    auto& m = **created;
    const auto t0 = Clock::now();
    auto r = m.rescan();
    REQUIRE(r.ok());
    CHECK(Clock::now() - t0 < pidns::harness::bound(5s));
    const auto dev = kernel_features().nsfs_dev;
    CHECK(m.index().find_by_inode(dev, sh.number("a")));
    CHECK_FALSE(m.index().find_by_inode(dev, sh.number("b")));
    CHECK_FALSE(m.index().find_by_inode(dev, sh.number("c")));
    CHECK(m.unsafe_paths_skipped() == host + 2);
    CHECK(m.mount_walks_abandoned() == 0);

    REQUIRE(m.refresh_mounts().ok());
    CHECK(m.unsafe_paths_skipped() == 2 * (host + 2));  // each walk counts them again
    CHECK(m.index().find_by_inode(dev, sh.number("a")));
    CHECK(fifo_has_no_reader(host_fifo));
    CHECK_FALSE(we_hold_fd_on(host_fifo));
}

TEST_CASE("a walk that never returns (unanswered FUSE lookup) costs one deadline, once, and the model's scan goes on") {
    PIDNS_REQUIRE_PREREQUISITE(pidns::harness::fuse_missing());
    const Alarm alarm(60);
    TempDir tmp;
    const std::string& d = tmp.path();
    // An nsfs mount, covered by a FUSE mount whose server never reads /dev/fuse: every lookup
    // below it waits (for the INIT answer) until the device is closed.
    MountNsShell sh("mkdir " + d + "/f\n" + nsfs_mount_line(d + "/f/ns", "ns") +
                    "exec 3<>/dev/fuse\nmount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 none " + d + "/f\n");
    const ProcDir proc;
    // A deadline well above what a loaded host adds to a call (harness::bound), so that "waited
    // one deadline" and "returned at once" stay apart; the model below uses the default one.
    constexpr auto kStuck = 1s;
    MountPathOpener opener(kStuck);

    auto t0 = Clock::now();
    auto first = opener.open(proc.fd.get(), sh.pid(), d + "/f/ns");
    const auto took = Clock::now() - t0;
    REQUIRE_FALSE(first.ok());
    CHECK(first.error().code == Errc::access_denied);
    CHECK(first.error().sys_errno == ETIMEDOUT);
    CHECK(took >= kStuck);
    CHECK(took < kStuck + pidns::harness::bound(400ms));
    CHECK(opener.abandoned() == 1);
    CHECK(opener.stuck());

    t0 = Clock::now();
    auto second = opener.open(proc.fd.get(), sh.pid(), d + "/f/ns");
    CHECK(Clock::now() - t0 < pidns::harness::bound(50ms));  // at once: not another deadline
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == Errc::access_denied);
    CHECK(second.error().sys_errno == EBUSY);
    CHECK(opener.abandoned() == 1);

    SECTION("the model: a rescan and mount refreshes go on, one walk abandoned, the rest skipped") {
        auto created = Model::create();
        REQUIRE(created.ok());
        auto& m = **created;
        t0 = Clock::now();
        REQUIRE(m.rescan().ok());
        CHECK(Clock::now() - t0 < pidns::harness::bound(2s));
        CHECK(m.mount_walks_abandoned() == 1);
        // Other nsfs mounts of the host met after the stuck walk are skipped too.
        const auto skipped = m.unsafe_paths_skipped();
        CHECK(skipped >= 1);
        CHECK_FALSE(m.index().find_by_inode(kernel_features().nsfs_dev, sh.number("ns")));
        // Skipped at once, the first walk still waiting: no second walk was abandoned.
        REQUIRE(m.refresh_mounts().ok());
        CHECK(m.mount_walks_abandoned() == 1);
        CHECK(m.unsafe_paths_skipped() >= skipped + 1);
    }
    SECTION("once the filesystem goes away, the abandoned walk returns and walks resume") {
        sh.kill();  // closes /dev/fuse: the connection is aborted, the waiting lookup fails
        for (int i = 0; i < 200 && opener.stuck(); ++i) std::this_thread::sleep_for(10ms);
        CHECK_FALSE(opener.stuck());
        auto after = opener.open(proc.fd.get(), ::getpid(), "/proc/self/ns/net");  // a symlink: refused, not skipped
        REQUIRE_FALSE(after.ok());
        CHECK(after.error().sys_errno != EBUSY);
    }
}
